package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/protocol"
)

// The dht scenario: lookups in a private MESH DHT on mocknet.
//
// Setup. -nodes real libp2p hosts with Ed25519 identities on loopback
// mocknet addresses, each running the MESH DHT (package dht, /mesh/kad/1.0.0,
// server mode, since mocknet has no AutoNAT). Node 0 is the bootstrap node:
// every other node knows only it, connects to it and refreshes its routing
// table. Each node then publishes its signed node record, and -topics topics
// are each provided by -providers random nodes. All of this runs on links
// without latency, to be quick; then every link gets -latency (one way), and
// the measurement starts.
//
// Measurement. -lookups lookups, one after another, each from a random node:
// even ones look up the node record of a random other node (DHT.NodeRecord:
// GetValue of /mesh-node/<id>, the full Kademlia lookup, every value checked
// by the validator), odd ones the providers of a random topic
// (DHT.TopicProviders with the default limit, which runs the lookup to its
// end as discovery does). The latency of each is the wall-clock time of the
// call.
//
// Hops. Every lookup records its routing query events and counts the
// sequential round trips it made: a query the lookup starts before any
// answer came back is in round 1; a query started after an answer (which
// freed a slot of the lookup's concurrency, or named closer peers) is in the
// round after that answer's. A query that must dial its peer first is
// started when the dial is, so the time a dial and identify take is
// overhead, not a round. hops is the largest round of a query that was
// answered before the call returned: the round trips the lookup had to wait
// for, one after another. (depth_p50 is the Kademlia depth instead: a peer
// from the requester's own routing table is at depth 1, a peer first named
// by a peer at depth d at d+1. Depth ignores the rounds a lookup spends
// waiting for a free slot, so it is smaller.) bound_ms = hops_p50 x 2 x
// latency is what those sequential round trips cost on the wire; the
// target is p50_ms <= 1.5 x bound_ms, the rest being the cost of the nodes
// themselves: dialling, identify, CPU.
//
// -timeout bounds each lookup; the scenario stops by itself.

// dhtBenchResult is the JSON line of the dht scenario.
type dhtBenchResult struct {
	Scenario      string  `json:"scenario"`
	Nodes         int     `json:"nodes"`
	LatencyMs     int     `json:"latency_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	HopsP50       float64 `json:"hops_p50"`
	BoundMs       float64 `json:"bound_ms"`
	Ratio         float64 `json:"ratio"` // p50_ms / bound_ms
	HopsP99       float64 `json:"hops_p99"`
	Lookups       int     `json:"lookups"`
	Found         float64 `json:"found"` // fraction of lookups that found what they looked for
	RecordP50Ms   float64 `json:"record_p50_ms"`
	ProviderP50Ms float64 `json:"provider_p50_ms"`
	DepthP50      float64 `json:"depth_p50"`  // Kademlia depth of the deepest peer that answered
	DialsMean     float64 `json:"dials_mean"` // peers dialled per lookup
	RoutingTable  float64 `json:"routing_table_mean"`
	SetupS        float64 `json:"setup_s"`
	RSSMB         float64 `json:"rss_mb"`
}

type dhtBenchConfig struct {
	nodes     int
	latency   time.Duration
	lookups   int
	topics    int
	providers int
	seed      uint64
	timeout   time.Duration
}

func dhtFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c dhtBenchConfig
	fs.IntVar(&c.nodes, "nodes", 200, "number of DHT nodes (real libp2p hosts on mocknet)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "one-way latency of every link")
	fs.IntVar(&c.lookups, "lookups", 200, "lookups measured: half node records, half topic providers")
	fs.IntVar(&c.topics, "topics", 20, "topics provided")
	fs.IntVar(&c.providers, "providers", 3, "providers of each topic")
	fs.Uint64Var(&c.seed, "seed", 1, "seed for the requesters, targets and providers")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "bound on one lookup")
	return func(e *env) (any, error) { return runDHT(context.Background(), e, c) }
}

func init() {
	scenarios = append(scenarios, scenario{"dht", dhtFlags})
}

func runDHT(ctx context.Context, e *env, c dhtBenchConfig) (*dhtBenchResult, error) {
	if c.nodes < 3 || c.lookups < 1 || c.topics < 1 || c.providers < 1 || c.providers > c.nodes || c.latency < 0 || c.timeout <= 0 {
		return nil, errors.New("-nodes must be at least 3, -lookups, -topics and -providers positive (providers at most nodes), -latency not negative")
	}
	rng := mrand.New(mrand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15))
	t0 := time.Now()
	mn := mocknet.New()
	defer mn.Close()

	e.logf("starting %d DHT nodes on mocknet", c.nodes)
	hosts := make([]peer.AddrInfo, c.nodes)
	keys := make([]ed25519.PrivateKey, c.nodes)
	dhts := make([]*dht.DHT, c.nodes)
	defer func() {
		for _, d := range dhts {
			if d != nil {
				d.Close()
			}
		}
	}()
	for i := range dhts {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			return nil, err
		}
		raw, _ := priv.Raw()
		keys[i] = ed25519.PrivateKey(raw)
		h, err := mn.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip4/127.0.%d.%d/tcp/4001", i/250, i%250+1)))
		if err != nil {
			return nil, err
		}
		hosts[i] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		cfg := dht.Config{Mode: dht.ModeServer}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{hosts[0]}
		}
		if dhts[i], err = dht.New(h, cfg); err != nil {
			return nil, err
		}
	}
	if err := mn.LinkAll(); err != nil {
		return nil, err
	}
	e.logf("bootstrapping: every node knows node 0 only")
	if err := dhtEach(ctx, 16, c.nodes-1, func(ctx context.Context, i int) error {
		return dhts[i+1].Bootstrap(ctx, []peer.AddrInfo{hosts[0]})
	}); err != nil {
		return nil, err
	}
	// Identify must finish before node 0 enters a routing table; on a
	// loaded machine that takes a while. A node still without peers is
	// nudged (kad-dht then re-adds its connected peers) every 2 s.
	for k := 0; ; k++ {
		empty := 0
		for _, d := range dhts {
			if d.RoutingTableSize() == 0 {
				empty++
				if k%100 == 99 {
					_ = d.Kad().Bootstrap(ctx)
				}
			}
		}
		if empty == 0 {
			break
		}
		if k >= 6000 {
			return nil, fmt.Errorf("%d nodes still have an empty routing table after 2 minutes", empty)
		}
		time.Sleep(20 * time.Millisecond)
	}
	refreshErrs := 0
	var mu sync.Mutex
	_ = dhtEach(ctx, 8, c.nodes, func(ctx context.Context, i int) error {
		if err := dhts[i].Refresh(ctx); err != nil {
			mu.Lock()
			refreshErrs++
			mu.Unlock()
		}
		return nil
	})
	if refreshErrs > 0 {
		e.logf("%d routing table refreshes failed", refreshErrs)
	}
	e.logf("publishing %d node records and %d topics x %d providers", c.nodes, c.topics, c.providers)
	now := time.Now()
	if err := dhtEach(ctx, 16, c.nodes, func(ctx context.Context, i int) error {
		addrs := []string{hosts[i].Addrs[0].String()}
		rec, err := protocol.SignNodeRecord(keys[i], addrs, nil, nil, now, time.Hour)
		if err != nil {
			return err
		}
		return dhts[i].PutNodeRecord(ctx, rec)
	}); err != nil {
		return nil, err
	}
	type provide struct{ node, topic int }
	var provides []provide
	for t := 0; t < c.topics; t++ {
		for _, n := range rng.Perm(c.nodes)[:c.providers] {
			provides = append(provides, provide{n, t})
		}
	}
	if err := dhtEach(ctx, 16, len(provides), func(ctx context.Context, i int) error {
		return dhts[provides[i].node].ProvideTopic(ctx, benchTopic(provides[i].topic))
	}); err != nil {
		return nil, err
	}
	var rtSum int
	for _, d := range dhts {
		rtSum += d.RoutingTableSize()
	}
	for _, byPeer := range mn.Links() {
		for _, links := range byPeer {
			for l := range links {
				l.SetOptions(mocknet.LinkOptions{Latency: c.latency})
			}
		}
	}
	setup := time.Since(t0)
	e.logf("setup took %s; mean routing table %.1f; measuring %d lookups with %s links", setup.Round(time.Millisecond), float64(rtSum)/float64(c.nodes), c.lookups, c.latency)

	stop := e.profile("dht")
	var all, recs, provs, hops, depths []float64
	dialSum := 0
	found := 0
	for q := 0; q < c.lookups; q++ {
		from := rng.IntN(c.nodes)
		lctx, cancel := context.WithTimeout(ctx, c.timeout)
		lctx, events := routing.RegisterForQueryEvents(lctx)
		tr := newHopTracer(events)
		start := time.Now()
		ok := false
		if q%2 == 0 {
			target := rng.IntN(c.nodes - 1)
			if target >= from {
				target++
			}
			rec, err := dhts[from].NodeRecord(lctx, hosts[target].ID)
			ok = err == nil && rec.NodeID == hosts[target].ID.String()
		} else {
			topic := rng.IntN(c.topics)
			ps, err := dhts[from].TopicProviders(lctx, benchTopic(topic), 0)
			n := 0
			for _, p := range ps {
				for _, pr := range provides {
					if pr.topic == topic && hosts[pr.node].ID == p.ID {
						n++
					}
				}
			}
			ok = err == nil && n == c.providers
		}
		d := time.Since(start)
		h, dh, dials := tr.done(cancel)
		if ok {
			found++
		}
		all = append(all, ms(d))
		if q%2 == 0 {
			recs = append(recs, ms(d))
		} else {
			provs = append(provs, ms(d))
		}
		hops = append(hops, float64(h))
		depths = append(depths, float64(dh))
		dialSum += dials
	}
	stop()
	for _, xs := range [][]float64{all, recs, provs, hops, depths} {
		sort.Float64s(xs)
	}
	res := &dhtBenchResult{
		Scenario:      "dht",
		Nodes:         c.nodes,
		LatencyMs:     int(c.latency / time.Millisecond),
		P50Ms:         round(quantile(all, 0.5), 1),
		P99Ms:         round(quantile(all, 0.99), 1),
		HopsP50:       quantile(hops, 0.5),
		HopsP99:       quantile(hops, 0.99),
		Lookups:       c.lookups,
		Found:         round(float64(found)/float64(c.lookups), 3),
		RecordP50Ms:   round(quantile(recs, 0.5), 1),
		ProviderP50Ms: round(quantile(provs, 0.5), 1),
		DepthP50:      quantile(depths, 0.5),
		DialsMean:     round(float64(dialSum)/float64(c.lookups), 2),
		RoutingTable:  round(float64(rtSum)/float64(c.nodes), 1),
		SetupS:        round(setup.Seconds(), 1),
		RSSMB:         rssMB(),
	}
	res.BoundMs = round(res.HopsP50*2*float64(c.latency)/float64(time.Millisecond), 1)
	if res.BoundMs > 0 {
		res.Ratio = round(res.P50Ms/res.BoundMs, 2)
	}
	e.logf("p50 %.1f ms, p99 %.1f ms, hops p50 %.0f (p99 %.0f; depth p50 %.0f), bound %.1f ms, p50/bound %.2f (target <= 1.5), found %.3f, %.2f dials per lookup",
		res.P50Ms, res.P99Ms, res.HopsP50, res.HopsP99, res.DepthP50, res.BoundMs, res.Ratio, res.Found, res.DialsMean)
	return res, nil
}

func benchTopic(i int) string { return fmt.Sprintf("topic-%d", i) }

// dhtEach runs f(0..n-1) on k goroutines (parallel), each call bounded by a
// minute.
func dhtEach(ctx context.Context, k, n int, f func(ctx context.Context, i int) error) error {
	return parallel(k, n, func(i int) error {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := f(cctx, i); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	})
}

// hopTracer follows one lookup's routing query events (see the scenario's
// comment) and counts its hops two ways.
type hopTracer struct {
	done_   chan struct{}
	depth   map[peer.ID]int
	round   map[peer.ID]int
	dialled map[peer.ID]bool
	last    int // round of the latest answer (or failure) seen
	hops    int // largest round of a query that was answered
	deep    int // largest depth of a peer that answered
	dials   int // peers the lookup had to dial
}

func newHopTracer(events <-chan *routing.QueryEvent) *hopTracer {
	t := &hopTracer{done_: make(chan struct{}), depth: map[peer.ID]int{}, round: map[peer.ID]int{}, dialled: map[peer.ID]bool{}}
	go func() {
		defer close(t.done_)
		for ev := range events {
			switch ev.Type {
			case routing.SendingQuery:
				// The query loop starts a query when an answer frees a slot
				// or names closer peers: the latest answer seen set it off.
				// A query that had to dial first was started when the dial
				// was: the time the dial and identify took is not a round.
				if !t.dialled[ev.ID] {
					t.round[ev.ID] = t.last + 1
				}
				if _, ok := t.depth[ev.ID]; !ok {
					t.depth[ev.ID] = 1 // from the requester's own routing table
				}
			case routing.PeerResponse:
				r, d := t.round[ev.ID], t.depth[ev.ID]
				t.last = r
				t.hops = max(t.hops, r)
				t.deep = max(t.deep, d)
				for _, a := range ev.Responses {
					if _, ok := t.depth[a.ID]; !ok {
						t.depth[a.ID] = d + 1
					}
				}
			case routing.QueryError:
				if r, ok := t.round[ev.ID]; ok {
					t.last = r
				}
			case routing.DialingPeer:
				t.dials++
				t.dialled[ev.ID] = true
				t.round[ev.ID] = t.last + 1
			}
		}
	}()
	return t
}

// done ends the lookup's event stream (cancel) and returns its counts.
func (t *hopTracer) done(cancel context.CancelFunc) (hops, depth, dials int) {
	cancel()
	<-t.done_
	return t.hops, t.deep, t.dials
}
