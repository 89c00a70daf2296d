package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/internal/corpus"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// The fedsearch scenario: federated search (/mesh/search/1.0.0) over real
// nodes on mocknet.
//
// Setup. -nodes nodes on a sparse random connected graph (a random spanning
// tree plus random edges up to -degree connections per node on average),
// every link with -latency. Each node trusts its graph neighbours fully
// (trust.Graph.Set before connecting, so the signed vouches are fetched on
// connect) with trust depth -depth; the scenario waits until every node has
// a trust path to every node within -depth graph hops. Each node publishes
// -lessons public lessons of real text (internal/corpus), with no topics, so
// nothing is gossiped or synced: every node's store holds its own lessons
// only, and a lesson can be found only by asking its publisher. With
// -compact (the default) each node's index is then rebuilt into one
// segment, as a settled node's would be.
//
// Mocknet charges the link latency only to writes that fill its 256-byte
// stream buffer: a smaller write followed by a close is delivered at once.
// A search request is such a write, so by default (-pad) each query is
// padded with trailing spaces, which the query parser ignores, to make every
// request pay the latency as it would on a real link; -pad=false measures
// what plain mocknet gives.
//
// Measurement. -queries queries (internal/corpus Queries: 2 to 4 words) are
// run one after another, each from a random node, with FederatedSearch
// {Hops: -hops, Limit: -limit, Deadline: -deadline, Sources: "trusted"}; the
// latency of each is the wall-clock time of the call. They are preceded by
// -warmup unmeasured queries. Then a fraction -dead of the nodes is
// black-holed (their search handlers read the request and never answer)
// and the same queries run again from the same nodes.
//
// Reference. A lesson is reachable for a requester R when its publisher P is
// R itself, or when both hold:
//   - R has a trust path to P (trust.Graph.Path, at most -depth hops), which
//     is what FederatedSearch requires of every result's publisher; and
//   - the search reaches P: there is a chain R -> A1 -> ... -> P of at most
//     -hops connections in which each node forwards to the next, i.e. each
//     Ai is connected to Ai+1 and has a trust path to it (the rule of
//     searchPeers, evaluated in each Ai's own trust graph).
//
// With trust edges equal to the connection edges this is the set of nodes
// within min(-hops, -depth) graph hops, but it is computed from the nodes'
// actual trust graphs, so a missing vouch shows up in the reference rather
// than being assumed away. For each requester a fresh in-memory store.Store
// holds exactly the reachable lessons, and each query is searched there. As
// FederatedSearch ranks by relevance × trust (freshness is off), the
// reference ranks the same way: relevance is the store's s/(s+1) mapping of
// bleve's BM25 over the reference set, trust is the requester's score for the
// publisher (1 for itself and at one hop, halved per further hop). To get the
// exact top -limit under that product, every record carries its trust class
// in the (unscored, filter-only) project field, each class is searched for
// its own top -limit, and the classes are merged by score; ties go to the
// smaller key, as in FederatedSearch. recall_at_10 is |fed ∩ ref| / |ref| over
// the sets of lesson keys, averaged over the queries with a non-empty ref.
//
// How the federated answer can match the reference: each node answers with
// its own top -limit under its own BM25 (statistics of its own lessons) and
// with the BM25 statistics of its public lessons (protocol.SearchStats:
// document count, distinct terms, per query term the document frequency),
// which forwarders add up. The requester adds up every answer's statistics
// and scores each candidate as one bleve index over the union of the
// answering nodes' lessons would: with every reachable node answering, that
// is exactly the reference's score (store.Scorer; bleve's average length
// depends on the index's segments, and the reference store is one segment,
// written by one batch, so its cardinality is the distinct terms of the
// union, which the vocabularies give; over store.MaxBatch reachable lessons
// it takes several batches, and scores differ slightly). recall_untruncated
// is recall_at_10 over the answers not marked truncated, i.e. those to
// which every reachable node contributed. Where recall can still fall short,
// the scenario separates the losses: candidate_recall is the share of the
// reference top 10 present in the union of the local top -limits of the
// reachable nodes (computed offline from their stores: a lesson its own
// node does not rank in its top -limit cannot be found); ideal_recall is the
// recall of the reference's own ranking restricted to those candidates (1
// when candidate_recall is); fed_vs_ideal is the agreement of the real
// federated answer with that ideal one, i.e. what the network (deadlines,
// truncation, dedup) lost. candidate_stats_recall, for comparison, is the
// recall of re-scoring the candidates under their own statistics only (an
// in-memory store of exactly the candidates), as federated search did
// before the statistics were exchanged.
//
// The Go heap. The 100 nodes run in this one process, on one heap, so a
// collection cycle (its mark workers, and the assists it asks of every
// goroutine that allocates) slows them all at the same moment: forwarders'
// timers were seen firing 11-15 ms late together, and the leaves behind
// them missing their budget, which separate daemons, each with its own
// small heap, would not do in step. -gogc (recorded as gogc) defaults to
// Go's 100, which the figures are held to; -gogc 400 makes those cycles
// rarer and shows how much of a miss is the shared heap. On this 2-core
// machine, with 100 the healthy run truncated 0-3 answers of 200 (recall
// 0.985-1.0), with 400 none (recall 1.0).
type fedsearchResult struct {
	Scenario       string  `json:"scenario"`
	Nodes          int     `json:"nodes"`
	LatencyMs      int     `json:"latency_ms"`
	Hops           int     `json:"hops"`
	TrustDepth     int     `json:"trust_depth"`
	Degree         float64 `json:"degree"`
	Lessons        int     `json:"lessons"`
	Queries        int     `json:"queries"`
	DeadlineMs     float64 `json:"deadline_ms"`
	MeanReachNodes float64 `json:"mean_reach_nodes"`
	MeanRefLessons float64 `json:"mean_ref_lessons"`
	// GOGC is the GC target percentage the run used (see -gogc).
	GOGC            int     `json:"gogc"`
	MaxMs           float64 `json:"max_ms"`
	Truncated       int     `json:"truncated"`
	CandidateRecall float64 `json:"candidate_recall"`
	IdealRecall     float64 `json:"ideal_recall"`
	FedVsIdeal      float64 `json:"fed_vs_ideal"`
	CandStatsRecall float64 `json:"candidate_stats_recall"`
	// RecallUntruncated is recall_at_10 over the answers not truncated.
	RecallUntruncated float64 `json:"recall_untruncated"`
	DeadNodes         int     `json:"dead_nodes"`
	DeadP50Ms         float64 `json:"dead_p50_ms"`
	DeadP99Ms         float64 `json:"dead_p99_ms"`
	DeadMaxMs         float64 `json:"dead_max_ms"`
	DeadRecall        float64 `json:"dead_recall_at_10"`
	DeadTruncated     int     `json:"dead_truncated"`
	// The healthy run's timer probe (see timerProbe): p99 and max of how
	// late its timers fired, the queries during which one fired at least
	// 10 ms late, and how many of the truncated answers were among them.
	TimerLateP99Ms      float64 `json:"timer_late_p99_ms"`
	TimerLateMaxMs      float64 `json:"timer_late_max_ms"`
	QueriesLateTimers   int     `json:"queries_late_timers"`
	TruncatedLateTimers int     `json:"truncated_late_timers"`
	corpusInfo
	// The keys of the issue, last so that they are easy to find.
	BoundMs         float64 `json:"bound_ms"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	RecallAt10      float64 `json:"recall_at_10"`
	DeadPeerExtraMs float64 `json:"dead_peer_extra_ms"`
}

type fedsearchConfig struct {
	nodes     int
	degree    int
	lessons   int
	queries   int
	warmup    int
	limit     int
	hops      int
	depth     int
	latency   time.Duration
	deadline  time.Duration
	trustWait time.Duration
	dead      float64
	seed      uint64
	pad       bool
	compact   bool
	gogc      int
}

func fedsearchFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c fedsearchConfig
	fs.IntVar(&c.nodes, "nodes", 100, "number of nodes (real libp2p hosts on mocknet)")
	fs.IntVar(&c.degree, "degree", 8, "mean connections per node (sparse random graph)")
	fs.IntVar(&c.lessons, "lessons", 100, "public lessons published by each node")
	fs.IntVar(&c.queries, "queries", 200, "measured queries, each from a random node, one after another")
	fs.IntVar(&c.warmup, "warmup", 20, "unmeasured queries run first")
	fs.IntVar(&c.limit, "limit", 10, "results per search (FedQuery.Limit); recall is measured at this rank")
	fs.IntVar(&c.hops, "hops", 2, "FedQuery.Hops: how far the search is forwarded")
	fs.IntVar(&c.depth, "depth", 2, "trust depth of every node (node.Config.TrustDepth)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency of every link")
	fs.DurationVar(&c.deadline, "deadline", 0, "FedQuery.Deadline; 0 picks the smallest that lets every hop forward and answer in time (see stderr)")
	fs.DurationVar(&c.trustWait, "trust-wait", 60*time.Second, "how long to wait for the vouches to arrive")
	fs.Float64Var(&c.dead, "dead", 0.1, "fraction of nodes black-holed in the second run")
	fs.BoolVar(&c.pad, "pad", true, "pad queries with trailing spaces so that every search request pays the link latency (mocknet delivers a write under 256 bytes followed by a close without it)")
	fs.BoolVar(&c.compact, "compact", true, "rebuild each node's index after publishing, into one segment, as a settled node's is (scorch merges an index on disk; the in-memory store folds its one-segment-per-write index only after 512 writes): otherwise every search of a node walks its ~200 one-write segments")
	fs.Uint64Var(&c.seed, "seed", 1, "seed for the graph, the corpus sample, the queries and the requesters")
	fs.IntVar(&c.gogc, "gogc", 100, "GC target percentage of this process (debug.SetGCPercent; 100, the default, is Go's): the nodes share one heap here, so each collection cycle slows all of them at once, which separate daemons would not do; a larger value shows that effect; the GOGC environment variable, if set, wins")
	return func(e *env) (any, error) { return runFedsearch(context.Background(), e, c) }
}

// Mirrors of the budget rules of node/fedsearch.go (searchHopFactor,
// searchHopMargin, searchMinForward, rankMargin, answerMargin), used only to
// pick the default deadline; keep them in step with the node.
const (
	fedHopFactor  = 0.7
	fedHopMargin  = 10 * time.Millisecond
	fedMinForward = 30 * time.Millisecond
	// fedSlack is the time allowed, per hop, for work other than the link
	// latency: reading, searching a store, merging, encoding. A search
	// waits for the slowest of some fifty nodes: on mocknet with 20 ms links
	// and a loaded 2-core machine, a leaf's round trip measured 43 ms at the
	// median and 53 ms at the 90th percentile, so the slowest of fifty
	// takes some 20 ms over the link latency.
	fedSlack = 20 * time.Millisecond
)

func fedShrink(d time.Duration) time.Duration {
	return time.Duration(float64(d)*fedHopFactor) - fedHopMargin
}
func fedRankMargin(d time.Duration) time.Duration {
	return min(max(d/10, 5*time.Millisecond), 100*time.Millisecond)
}
func fedAnswerMargin(d time.Duration) time.Duration {
	return min(max(d/8, 2*time.Millisecond), 50*time.Millisecond)
}

// deadlineFits reports whether a requester deadline d lets a search of hops
// hops over links of latency lat complete without truncation: the requester
// collects for d - rankMargin(d), which must cover hops round trips; each
// forwarding node, given the shrunk budget b, still forwards (shrink(b), less
// fedSlack for the time to get there, is at least searchMinForward) and waits
// for its subtree's round trips before its answer margin. It returns the
// budgets given at each hop, in ms, for the log.
func deadlineFits(d, lat time.Duration, hops int) (bool, []int64) {
	collect := d - fedRankMargin(d)
	ok := collect >= time.Duration(hops)*(2*lat+fedSlack)
	b := time.Duration(max(fedShrink(collect).Milliseconds(), 1)) * time.Millisecond
	budgets := []int64{b.Milliseconds()}
	for k := 1; k < hops; k++ {
		left := time.Duration(hops - k)
		if fedShrink(b-fedSlack) < fedMinForward || b-fedAnswerMargin(b) < left*(2*lat+fedSlack) {
			ok = false
		}
		b = fedShrink(b)
		budgets = append(budgets, b.Milliseconds())
	}
	return ok, budgets
}

// autoDeadline is the smallest deadline, in steps of 5 ms, that fits.
func autoDeadline(lat time.Duration, hops int) time.Duration {
	for d := 5 * time.Millisecond; d < time.Duration(protocol.MaxSearchDeadlineMs)*time.Millisecond; d += 5 * time.Millisecond {
		if ok, _ := deadlineFits(d, lat, hops); ok {
			return d
		}
	}
	return api.DefaultFedDeadline
}

// fedRef is the reference of one requester: an in-memory store of exactly
// the lessons it can reach, with each record's trust class.
type fedRef struct {
	st      *store.Store
	keys    map[string]string  // record id -> lesson key
	classes map[string]float64 // project (trust class) -> trust score
	reach   int                // nodes whose lessons are in the store
	lessons int
}

func runFedsearch(ctx context.Context, e *env, c fedsearchConfig) (*fedsearchResult, error) {
	switch {
	case c.nodes < 3 || c.degree < 2 || c.lessons <= 0 || c.queries <= 0 || c.warmup < 0:
		return nil, errors.New("-nodes must be at least 3, -degree at least 2, -lessons and -queries positive, -warmup not negative")
	case c.limit <= 0 || c.limit > protocol.MaxSearchLimit:
		return nil, fmt.Errorf("-limit must be 1 to %d", protocol.MaxSearchLimit)
	case c.hops < 1 || c.hops > protocol.MaxSearchHops:
		return nil, fmt.Errorf("-hops must be 1 to %d", protocol.MaxSearchHops)
	case c.depth < 1 || c.depth > trust.MaxDepthLimit:
		return nil, fmt.Errorf("-depth must be 1 to %d", trust.MaxDepthLimit)
	case c.latency < 0 || c.deadline < 0 || c.dead < 0 || c.dead >= 1:
		return nil, errors.New("-latency and -deadline must not be negative, -dead in [0, 1)")
	}
	if env, ok := os.LookupEnv("GOGC"); ok {
		c.gogc, _ = strconv.Atoi(env) // "off" reads as 0: shown as such
	} else if c.gogc > 0 {
		debug.SetGCPercent(c.gogc)
	}
	e.logf("GC target %d%% (100 nodes share one heap: see -gogc)", c.gogc)
	bound := time.Duration(c.hops) * 2 * c.latency
	if c.deadline == 0 {
		c.deadline = autoDeadline(c.latency, c.hops)
	}
	fits, budgets := deadlineFits(c.deadline, c.latency, c.hops)
	e.logf("bound %s (hops × 2 × latency); deadline %s (%.2f × bound), budgets given per hop %v ms, fits: %v",
		bound, c.deadline, float64(c.deadline)/float64(max(bound, 1)), budgets, fits)

	rng := mrand.New(mrand.NewPCG(c.seed, c.seed^0x6665647365617263)) // "fedsearc"
	start := time.Now()
	docs, info, err := loadCorpus(e, c.nodes*c.lessons, int64(c.seed))
	if err != nil {
		return nil, err
	}
	queries := corpus.Queries(docs, c.queries, int64(c.seed))
	warm := corpus.Queries(docs, c.warmup, int64(c.seed)+1)
	if len(queries) < c.queries {
		return nil, fmt.Errorf("could only make %d of %d queries from the corpus", len(queries), c.queries)
	}
	e.logf("loaded %d corpus docs and %d queries in %s", len(docs), len(queries), time.Since(start).Round(time.Millisecond))

	net := nodetest.NewNet(c.latency)
	net.LinkNone() // links only along the trust graph's edges, below
	mn := net.Mocknet()
	nodes := make([]*node.Node, c.nodes)
	holeDone := make(chan struct{})
	var closeHoles sync.Once
	defer func() {
		closeHoles.Do(func() { close(holeDone) })
		net.Close()
	}()
	e.logf("starting %d nodes on mocknet, %s links", c.nodes, c.latency)
	for i := range nodes {
		var err error
		if nodes[i], err = net.Start(ctx, node.Config{TrustDepth: c.depth}); err != nil {
			return nil, err
		}
	}
	ids := make([]string, c.nodes)
	index := make(map[string]int, c.nodes)
	for i, n := range nodes {
		ids[i] = n.ID().String()
		index[ids[i]] = i
	}

	// The graph, and trust along its edges, set before connecting.
	adj := randomGraph(rng, c.nodes, c.degree)
	edges := 0
	for a := range adj {
		for b := range adj[a] {
			if err := nodes[a].Trust().Set(ids[b], trust.LevelFull, "meshbench neighbour"); err != nil {
				return nil, err
			}
			if a < b {
				edges++
				if _, err := mn.LinkPeers(nodes[a].ID(), nodes[b].ID()); err != nil {
					return nil, err
				}
			}
		}
	}
	degree := 2 * float64(edges) / float64(c.nodes)

	// Lessons, published before connecting: nothing to gossip or sync.
	start = time.Now()
	published := make([][]*protocol.SignedLesson, c.nodes)
	if err := forEach(c.nodes, func(i int) error {
		for _, d := range docs[i*c.lessons : (i+1)*c.lessons] {
			id, _, err := nodes[i].Put(ctx, &protocol.Lesson{ID: d.ID, Type: protocol.TypeLesson, Title: d.Title, Content: d.Content, Tags: d.Tags})
			if err != nil {
				return err
			}
			sl, err := nodes[i].Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityPublic})
			if err != nil {
				return err
			}
			published[i] = append(published[i], sl)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	e.logf("published %d lessons (%d per node) in %s", c.nodes*c.lessons, c.lessons, time.Since(start).Round(time.Millisecond))
	if c.compact {
		start = time.Now()
		if err := forEach(c.nodes, func(i int) error { return nodes[i].Store().Reindex(ctx) }); err != nil {
			return nil, fmt.Errorf("compact: %w", err)
		}
		e.logf("rebuilt every node's index (one segment) in %s", time.Since(start).Round(time.Millisecond))
	}

	e.logf("connecting %d edges (mean degree %.1f)", edges, degree)
	if err := connectGraph(mn, nodes, adj); err != nil {
		return nil, err
	}
	start = time.Now()
	missing, err := waitTrust(ctx, nodes, ids, adj, c.depth, c.trustWait)
	if err != nil {
		return nil, err
	}
	if missing > 0 {
		return nil, fmt.Errorf("after %s, %d trust paths within depth %d are still missing: vouches did not arrive", c.trustWait, missing, c.depth)
	}
	e.logf("every trust path within %d hops known after %s", c.depth, time.Since(start).Round(time.Millisecond))

	requesters := make([]int, len(queries))
	for i := range requesters {
		requesters[i] = rng.IntN(c.nodes)
	}
	warmFrom := make([]int, len(warm))
	for i := range warmFrom {
		warmFrom[i] = rng.IntN(c.nodes)
	}

	ref, err := references(ctx, e, c, nodes, ids, index, published, requesters, queries)
	if err != nil {
		return nil, err
	}
	refTop, ideal := ref.top, ref.ideal
	candRec, idealRec, candStats, fedIdeal := ref.candRec, ref.idealRec, ref.candStats, newAvg()

	// Healthy run.
	for i, q := range warm {
		if _, err := fedQuery(ctx, nodes[warmFrom[i]], q, c); err != nil {
			return nil, fmt.Errorf("warm-up query %q: %w", q, err)
		}
	}
	runtime.GC()
	e.heapProfile("fedsearch-before") // -diff_base for the next one: what the healthy run allocated
	healthy, err := runFedQueries(ctx, e, "fedsearch-healthy", nodes, requesters, queries, c)
	e.heapProfile("fedsearch-healthy")
	if err != nil {
		return nil, err
	}
	recall, complete := newAvg(), newAvg()
	for i := range queries {
		if len(refTop[i]) > 0 {
			recall.add(overlapKeys(refTop[i], healthy.keys[i]) / float64(len(refTop[i])))
			if !healthy.cut[i] {
				complete.add(overlapKeys(refTop[i], healthy.keys[i]) / float64(len(refTop[i])))
			}
		}
		if len(ideal[i]) > 0 {
			fedIdeal.add(overlapKeys(ideal[i], healthy.keys[i]) / float64(len(ideal[i])))
		}
	}
	e.logf("healthy: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; %d truncated; recall@%d %.4f (untruncated answers %.4f; candidates %.4f, ideal %.4f, fed vs ideal %.4f; candidates under their own statistics %.4f)",
		quantile(healthy.ms, 0.5), quantile(healthy.ms, 0.9), quantile(healthy.ms, 0.99), healthy.max(), healthy.truncated,
		c.limit, recall.mean(), complete.mean(), candRec.mean(), idealRec.mean(), fedIdeal.mean(), candStats.mean())
	if recall.mean() < 1 {
		logMisses(e, queries, requesters, refTop, ideal, healthy.keys, 5)
	}

	// Dead run: black-hole a fraction of the nodes.
	nDead := int(math.Round(c.dead * float64(c.nodes)))
	if c.dead > 0 {
		nDead = max(nDead, 1)
	}
	dead := rng.Perm(c.nodes)[:nDead]
	hole := func(s network.Stream) {
		_, _ = io.Copy(io.Discard, io.LimitReader(s, protocol.MaxSearchRequestSize+16))
		<-holeDone // accepted and read, never answered
		s.Reset()
	}
	for _, i := range dead {
		for _, proto := range []string{protocol.ProtocolSearchLate, protocol.ProtocolSearch} {
			nodes[i].Host().SetStreamHandler(libp2pproto.ID(proto), hole)
		}
	}
	e.logf("black-holed %d nodes: %v", nDead, dead)
	runtime.GC()
	deadRun, err := runFedQueries(ctx, e, "fedsearch-dead", nodes, requesters, queries, c)
	if err != nil {
		return nil, err
	}
	closeHoles.Do(func() { close(holeDone) })
	deadRecall := newAvg()
	for i := range queries {
		if len(refTop[i]) > 0 {
			deadRecall.add(overlapKeys(refTop[i], deadRun.keys[i]) / float64(len(refTop[i])))
		}
	}
	e.logf("dead: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (deadline %s); %d truncated; recall@%d %.4f",
		quantile(deadRun.ms, 0.5), quantile(deadRun.ms, 0.9), quantile(deadRun.ms, 0.99), deadRun.max(), c.deadline, deadRun.truncated, c.limit, deadRecall.mean())

	p50 := quantile(healthy.ms, 0.5)
	return &fedsearchResult{
		Scenario: "fedsearch", Nodes: c.nodes, LatencyMs: int(c.latency.Milliseconds()),
		Hops: c.hops, TrustDepth: c.depth, Degree: round(degree, 2),
		Lessons: c.nodes * c.lessons, Queries: len(queries),
		DeadlineMs:     round(ms(c.deadline), 1),
		MeanReachNodes: round(ref.meanReach, 1),
		MeanRefLessons: round(ref.meanLessons, 1),
		GOGC:           c.gogc,
		MaxMs:          round(healthy.max(), 1),
		Truncated:      healthy.truncated,
		TimerLateP99Ms: round(healthy.timerP99, 1), TimerLateMaxMs: round(healthy.timerMax, 1),
		QueriesLateTimers: healthy.lateQueries, TruncatedLateTimers: healthy.lateTruncated,
		CandidateRecall: round(candRec.mean(), 4), IdealRecall: round(idealRec.mean(), 4),
		FedVsIdeal: round(fedIdeal.mean(), 4), CandStatsRecall: round(candStats.mean(), 4), RecallUntruncated: round(complete.mean(), 4),
		DeadNodes: nDead, DeadP50Ms: round(quantile(deadRun.ms, 0.5), 1), DeadP99Ms: round(quantile(deadRun.ms, 0.99), 1),
		DeadMaxMs: round(deadRun.max(), 1), DeadRecall: round(deadRecall.mean(), 4), DeadTruncated: deadRun.truncated,
		corpusInfo: info, BoundMs: round(ms(bound), 1),
		P50Ms: round(p50, 1), P99Ms: round(quantile(healthy.ms, 0.99), 1),
		RecallAt10:      round(recall.mean(), 4),
		DeadPeerExtraMs: round(quantile(deadRun.ms, 0.5)-p50, 1),
	}, nil
}

// fedRun is the outcome of one pass over the queries.
type fedRun struct {
	ms        []float64  // latencies, sorted
	keys      [][]string // result keys of each query, in rank order
	cut       []bool     // whether each query's answer was truncated
	truncated int
	// What the timer probe saw (see timerProbe): the lateness of its
	// timers, and how many queries, and truncated ones, had one fire at
	// least lateTimer late while they ran.
	timerP99, timerMax         float64
	lateQueries, lateTruncated int
}

// lateTimer is how late a probe timer must fire for a query to count as
// run with late timers: a path of a two-hop search crosses four links,
// each a timer, and has about 46 ms of slack.
const lateTimer = 10 * time.Millisecond

func (r *fedRun) max() float64 {
	if len(r.ms) == 0 {
		return 0
	}
	return r.ms[len(r.ms)-1]
}

// mocknetWriteBuffer is the write buffer of a mocknet stream: a write that
// leaves less than this buffered is held, and delivered at once, without
// the link latency, by a following close (go-libp2p p2p/net/mock
// stream.transport). A search request is a single small write followed by
// CloseWrite, so unpadded it would cross a mocknet link in no time while
// the answers pay the latency.
const mocknetWriteBuffer = 256

// fedQuery runs one federated search. With c.pad the query is padded with
// trailing spaces (which the query parser ignores) so that every request
// is over mocknetWriteBuffer and pays the link latency, as on a real link.
func fedQuery(ctx context.Context, n *node.Node, q string, c fedsearchConfig) (*api.FedSearchResponse, error) {
	if c.pad && len(q) < mocknetWriteBuffer {
		q += strings.Repeat(" ", mocknetWriteBuffer-len(q))
	}
	return n.SearchNetwork(ctx, api.FedSearchRequest{Query: q, Hops: c.hops, Limit: c.limit, Deadline: c.deadline, Sources: "trusted"})
}

// runFedQueries runs the queries one after another, each from its
// requester, under a CPU profile named phase.
func runFedQueries(ctx context.Context, e *env, phase string, nodes []*node.Node, requesters []int, queries []string, c fedsearchConfig) (*fedRun, error) {
	run := &fedRun{keys: make([][]string, len(queries)), cut: make([]bool, len(queries))}
	stop := e.profile(phase)
	defer stop()
	probe := startTimerProbe(4, 10*time.Millisecond)
	windows := make([][2]time.Time, 0, len(queries))
	for i, q := range queries {
		t0 := time.Now()
		res, err := fedQuery(ctx, nodes[requesters[i]], q, c)
		d := time.Since(t0)
		if err != nil {
			probe.Stop()
			return nil, fmt.Errorf("%s: query %q: %w", phase, q, err)
		}
		windows = append(windows, [2]time.Time{t0, t0.Add(d)})
		run.ms = append(run.ms, ms(d))
		if res.Truncated {
			run.truncated++
			run.cut[i] = true
		}
		for _, h := range res.Results {
			run.keys[i] = append(run.keys[i], h.Key)
		}
	}
	samples := probe.Stop()
	run.timerP99, run.timerMax = probeLate(samples, 0.99), probeLate(samples, 1)
	for i, w := range windows {
		if lateIn(samples, w[0], w[1], lateTimer) {
			run.lateQueries++
			if run.cut[i] {
				run.lateTruncated++
			}
		}
	}
	e.logf("%s: probe timers late p99 %.1f ms, max %.1f ms; %d queries ran with one %s late or more, %d of the %d truncated",
		phase, run.timerP99, run.timerMax, run.lateQueries, lateTimer, run.lateTruncated, run.truncated)
	sort.Float64s(run.ms)
	return run, nil
}

// fedReferences are the reference answers of a run's queries, and what
// the offline re-scoring of them found (see fedsearchResult).
type fedReferences struct {
	top, ideal                   [][]string // per query: the reference top -limit, and the ideal one among the candidates
	candRec, idealRec, candStats *avg
	meanReach, meanLessons       float64 // nodes and lessons reachable per query
}

// references builds one reference store per requester, answers every
// query from its requester's, and closes the stores. Kept through the
// runs, they were most of the heap the nodes share (766 MB of 987 MB live
// at 100 nodes), which every GC cycle's mark phase, slowing every node at
// once, had to go through.
func references(ctx context.Context, e *env, c fedsearchConfig, nodes []*node.Node, ids []string, index map[string]int, published [][]*protocol.SignedLesson, requesters []int, queries []string) (*fedReferences, error) {
	start := time.Now()
	refs := map[int]*fedRef{}
	defer func() {
		for _, r := range refs {
			r.st.Close()
		}
	}()
	var distinct []int
	for _, r := range requesters {
		if !slices.Contains(distinct, r) {
			distinct = append(distinct, r)
		}
	}
	built := make([]*fedRef, len(distinct))
	err := forEach(len(distinct), func(i int) error {
		var err error
		built[i], err = buildRef(ctx, nodes, ids, index, published, distinct[i], c.hops)
		return err
	})
	for i, ref := range built {
		if ref != nil {
			refs[distinct[i]] = ref
		}
	}
	if err != nil {
		return nil, err
	}
	out := &fedReferences{top: make([][]string, len(queries)), ideal: make([][]string, len(queries)),
		candRec: newAvg(), idealRec: newAvg(), candStats: newAvg()}
	var reachSum, refSum float64
	for _, r := range requesters {
		reachSum += float64(refs[r].reach)
		refSum += float64(refs[r].lessons)
	}
	out.meanReach, out.meanLessons = reachSum/float64(len(queries)), refSum/float64(len(queries))
	e.logf("built %d reference stores in %s: %.1f nodes and %.0f lessons reachable per query on average",
		len(refs), time.Since(start).Round(time.Millisecond), out.meanReach, out.meanLessons)

	start = time.Now()
	for i, q := range queries {
		ref := refs[requesters[i]]
		if out.top[i], err = ref.top(ctx, q, c.limit); err != nil {
			return nil, fmt.Errorf("reference query %q: %w", q, err)
		}
		cand, err := candidates(ctx, nodes, ids, ref, q, c.limit)
		if err != nil {
			return nil, fmt.Errorf("candidates of %q: %w", q, err)
		}
		if out.ideal[i], err = ref.topAmong(ctx, q, c.limit, cand); err != nil {
			return nil, fmt.Errorf("reference query %q: %w", q, err)
		}
		own, err := rescore(ctx, cand, ref, q, c.limit)
		if err != nil {
			return nil, fmt.Errorf("re-scoring %q: %w", q, err)
		}
		if top := out.top[i]; len(top) > 0 {
			out.candRec.add(overlap(top, cand) / float64(len(top)))
			out.idealRec.add(overlapKeys(top, out.ideal[i]) / float64(len(top)))
			out.candStats.add(overlapKeys(top, own) / float64(len(top)))
		}
	}
	e.logf("reference and offline re-scoring of %d queries in %s", len(queries), time.Since(start).Round(time.Millisecond))
	return out, nil
}

// buildRef builds the reference store of requester r: the lessons of r and
// of every publisher r has a trust path to and the search reaches within
// hops (see the comment of fedsearchResult).
func buildRef(ctx context.Context, nodes []*node.Node, ids []string, index map[string]int, published [][]*protocol.SignedLesson, r, hops int) (*fedRef, error) {
	reached := searchReach(nodes, ids, index, r, hops)
	st, err := store.Open(store.Options{SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	ref := &fedRef{st: st, keys: map[string]string{}, classes: map[string]float64{}}
	var recs []*protocol.Lesson
	for p := range nodes {
		var class string
		var score float64
		switch {
		case p == r:
			class, score = "hop0", 1
		case reached[p]:
			path, s, ok := nodes[r].Trust().Path(ids[p])
			if !ok || nodes[r].Trust().Blocked(ids[p]) {
				continue
			}
			class, score = fmt.Sprintf("hop%d", len(path)-1), s
		default:
			continue
		}
		ref.classes[class] = score
		ref.reach++
		for _, sl := range published[p] {
			l := sl.Lesson.Clone()
			l.Visibility = protocol.VisibilityPublic
			l.Project = class
			ref.keys[l.ID] = sl.Key()
			recs = append(recs, l)
		}
	}
	ref.lessons = len(recs)
	for len(recs) > 0 {
		n := min(len(recs), store.MaxBatch)
		if _, err := st.PutBatch(ctx, recs[:n]); err != nil {
			st.Close()
			return nil, err
		}
		recs = recs[n:]
	}
	return ref, nil
}

// searchReach returns the nodes a search from r reaches within hops: those
// connected to r or to a node reached before, forwarded to because the
// forwarding node has a trust path to them and does not block them.
func searchReach(nodes []*node.Node, ids []string, index map[string]int, r, hops int) map[int]bool {
	reached := map[int]bool{r: true}
	frontier := []int{r}
	for h := 0; h < hops; h++ {
		var next []int
		for _, a := range frontier {
			for _, p := range nodes[a].Host().Network().Peers() {
				b, ok := index[p.String()]
				if !ok || reached[b] {
					continue
				}
				if _, _, ok := nodes[a].Trust().Path(ids[b]); !ok || nodes[a].Trust().Blocked(ids[b]) {
					continue
				}
				reached[b] = true
				next = append(next, b)
			}
		}
		frontier = next
	}
	return reached
}

// top returns the keys of the best limit lessons of ref for q, ranked by
// relevance × trust, ties to the smaller key.
func (ref *fedRef) top(ctx context.Context, q string, limit int) ([]string, error) {
	return ref.topAmong(ctx, q, limit, nil)
}

// topAmong is top restricted to the keys of among (nil: all): the
// reference's own ranking of those lessons.
func (ref *fedRef) topAmong(ctx context.Context, q string, limit int, among map[string]bool) ([]string, error) {
	type scored struct {
		key   string
		score float64
	}
	var all []scored
	for class, trustScore := range ref.classes {
		n := min(2*limit, store.MaxSearchLimit)
		if among != nil {
			n = store.MaxSearchLimit
		}
		res, err := ref.st.Search(ctx, store.Query{Text: q, Visibility: []string{protocol.VisibilityPublic}, Project: class, Limit: n})
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			if among == nil || among[ref.keys[h.ID]] {
				all = append(all, scored{ref.keys[h.ID], h.Score * trustScore})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].score != all[j].score {
			return all[i].score > all[j].score
		}
		return all[i].key < all[j].key
	})
	var out []string
	for _, s := range all[:min(limit, len(all))] {
		out = append(out, s.key)
	}
	return out, nil
}

// candidates returns the keys each node of ref would answer q with when
// serving a search: its own top limit public lessons by its own BM25, as
// node.publicResults picks them.
func candidates(ctx context.Context, nodes []*node.Node, ids []string, ref *fedRef, q string, limit int) (map[string]bool, error) {
	out := map[string]bool{}
	publishers := map[string]bool{}
	for _, key := range ref.keys {
		publishers[key[strings.LastIndexByte(key, '@')+1:]] = true
	}
	for i, n := range nodes {
		if !publishers[ids[i]] {
			continue
		}
		res, err := n.Store().Search(ctx, store.Query{Text: q, Origin: store.OriginAll, Visibility: []string{protocol.VisibilityPublic}, Limit: limit})
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			key := h.Key
			if key == "" {
				key = h.ID + "@" + ids[i]
			}
			out[key] = true
		}
	}
	return out, nil
}

// rescore ranks exactly the candidate lessons for q as the reference ranks
// its set, and returns the top limit keys: what a federated search that
// received every candidate should answer.
func rescore(ctx context.Context, cand map[string]bool, ref *fedRef, q string, limit int) ([]string, error) {
	if len(cand) == 0 {
		return nil, nil
	}
	st, err := store.Open(store.Options{SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var recs []*protocol.Lesson
	for id, key := range ref.keys {
		if !cand[key] {
			continue
		}
		l, err := ref.st.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		recs = append(recs, l)
	}
	if _, err := st.PutBatch(ctx, recs); err != nil {
		return nil, err
	}
	r := &fedRef{st: st, keys: ref.keys, classes: ref.classes}
	return r.top(ctx, q, limit)
}

// logMisses prints a few queries whose federated answer differs from the
// reference.
func logMisses(e *env, queries []string, requesters []int, ref, ideal, fed [][]string, n int) {
	for i := range queries {
		if n == 0 {
			return
		}
		if len(ref[i]) == 0 || overlapKeys(ref[i], fed[i]) == float64(len(ref[i])) {
			continue
		}
		n--
		e.logf("miss: query %q from node %d: ref %v, ideal %v, fed %v", queries[i], requesters[i], short(ref[i]), short(ideal[i]), short(fed[i]))
	}
}

func short(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		id, node, _ := strings.Cut(k, "@")
		out[i] = id[:min(len(id), 7)] + "@" + node[max(len(node)-4, 0):]
	}
	return out
}

// overlap counts the keys present in set.
func overlap(keys []string, set map[string]bool) float64 {
	n := 0
	for _, k := range keys {
		if set[k] {
			n++
		}
	}
	return float64(n)
}

// overlapKeys counts the keys of a present in b.
func overlapKeys(a, b []string) float64 {
	n := 0
	for _, k := range a {
		if slices.Contains(b, k) {
			n++
		}
	}
	return float64(n)
}

type avg struct {
	sum float64
	n   int
}

func newAvg() *avg           { return &avg{} }
func (a *avg) add(x float64) { a.sum += x; a.n++ }

// mean is the average, 1 if nothing was added (no query had anything to
// find, so nothing was missed).
func (a *avg) mean() float64 {
	if a.n == 0 {
		return 1
	}
	return a.sum / float64(a.n)
}

// randomGraph is a sparse random connected graph over n nodes: a random
// spanning tree, then random edges up to mean degree.
func randomGraph(rng *mrand.Rand, n, degree int) []map[int]bool {
	adj := make([]map[int]bool, n)
	for i := range adj {
		adj[i] = map[int]bool{}
	}
	perm := rng.Perm(n)
	for i := 1; i < n; i++ {
		a, b := perm[i], perm[rng.IntN(i)]
		adj[a][b], adj[b][a] = true, true
	}
	want := min(n*degree/2, n*(n-1)/2)
	for edges := n - 1; edges < want; {
		a, b := rng.IntN(n), rng.IntN(n)
		if a != b && !adj[a][b] {
			adj[a][b], adj[b][a] = true, true
			edges++
		}
	}
	return adj
}

// connectGraph connects every edge, in parallel.
func connectGraph(mn mocknet.Mocknet, nodes []*node.Node, adj []map[int]bool) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for a := range adj {
		for b := range adj[a] {
			if b < a {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := mn.ConnectPeers(nodes[a].ID(), nodes[b].ID()); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return first
}

// waitTrust waits until every node has a trust path to every node within
// depth hops of the graph, or timeout; it returns how many are missing.
func waitTrust(ctx context.Context, nodes []*node.Node, ids []string, adj []map[int]bool, depth int, timeout time.Duration) (int, error) {
	want := make([][]int, len(nodes))
	for i := range nodes {
		dist := map[int]int{i: 0}
		queue := []int{i}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			if dist[v] == depth {
				continue
			}
			for w := range adj[v] {
				if _, seen := dist[w]; !seen {
					dist[w] = dist[v] + 1
					queue = append(queue, w)
					want[i] = append(want[i], w)
				}
			}
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for i, ws := range want {
			for _, w := range ws {
				if _, _, ok := nodes[i].Trust().Path(ids[w]); !ok {
					missing++
				}
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing, nil
		}
		select {
		case <-ctx.Done():
			return missing, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// forEach runs f(0..n-1) on GOMAXPROCS goroutines and returns the first
// error.
func forEach(n int, f func(i int) error) error {
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f(i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}
