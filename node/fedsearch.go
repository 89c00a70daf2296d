package node

import (
	"bufio"
	"cmp"
	"container/heap"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Federated search (/mesh/search/1.0.0).
//
// A node serving a search answers from its store with public lessons only,
// and while the request's ttl is above 1 forwards it, with ttl-1 and a
// smaller budget, to its trusted peers other than the sender and the
// origin. It waits for them no longer than its own budget: what arrived in
// time is merged into the answer, which is marked truncated if anything was
// missing. A request ID seen recently is answered empty and not forwarded,
// so diamonds and loops in the peer graph cost one answer each. Queries are
// never logged.

// Tuning of the search server and of the fan-out.
const (
	// DefaultFedDeadline is FedQuery.Deadline when it is zero.
	DefaultFedDeadline = 2 * time.Second

	// searchHopFactor and searchHopMargin shrinkBudget the budget at each hop:
	// a node given budget d gives its peers d*searchHopFactor -
	// searchHopMargin, which leaves the rest for the round trip back.
	searchHopFactor = 0.7
	searchHopMargin = 10 * time.Millisecond
	// searchMinForward is the smallest budget worth forwarding with.
	searchMinForward = 30 * time.Millisecond

	// searchSeenSize and searchSeenTTL bound the memory of request IDs.
	searchSeenSize = 8192
	searchSeenTTL  = 2 * time.Minute
	// searchRate and searchBurst are the token bucket of each peer:
	// requests per second, and how many may come at once.
	searchRate  = 10
	searchBurst = 20
	// searchMaxPeers bounds the per-peer buckets kept.
	searchMaxPeers = 4096
	// searchMaxInFlight bounds the searches served at once, all peers
	// together; more are answered RATE_LIMITED.
	searchMaxInFlight = 64
	// searchReadTimeout bounds reading a request.
	searchReadTimeout = 10 * time.Second
	// searchResponseBudget keeps an encoded answer under the cap.
	searchResponseBudget = protocol.MaxSearchResponseSize - 64<<10
)

// trustView is what federated search needs of the web of trust
// (*trust.Graph). It must be safe for concurrent use.
type trustView interface {
	// Path returns the trust path to nodeID, from this node (hops[0]) to
	// nodeID, and its score in (0, 1]; ok is false when there is none.
	Path(nodeID string) (hops []string, score float64, ok bool)
	// Blocked reports whether nodeID is at trust level none.
	Blocked(nodeID string) bool
}

// trustView returns the node's web of trust.
func (n *Node) trustView() trustView {
	if n.trust == nil {
		return selfOnly(n.id.String())
	}
	return n.trust
}

// selfOnly trusts this node alone.
type selfOnly string

func (s selfOnly) Path(nodeID string) ([]string, float64, bool) {
	if nodeID != string(s) {
		return nil, 0, false
	}
	return []string{nodeID}, 1, true
}
func (selfOnly) Blocked(string) bool { return false }

// startSearch registers the /mesh/search/1.0.0 handler.
func (n *Node) startSearch() error {
	srv := &searchServer{
		n:        n,
		seen:     map[string]*list.Element{},
		buckets:  map[peer.ID]*searchBucket{},
		inFlight: make(chan struct{}, searchMaxInFlight),
	}
	n.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearch), srv.handle)
	return nil
}

// searchServer serves /mesh/search/1.0.0.
type searchServer struct {
	n        *Node
	inFlight chan struct{} // a semaphore of searchMaxInFlight

	mu      sync.Mutex
	seen    map[string]*list.Element // request ID -> element of order
	order   list.List                // of searchSeen, oldest first
	buckets map[peer.ID]*searchBucket
}

type searchSeen struct {
	id string
	at time.Time
}

type searchBucket struct {
	tokens float64
	last   time.Time
}

// firstSeen records a request ID and reports whether it is new.
func (s *searchServer) firstSeen(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		se := e.Value.(searchSeen)
		if now.Sub(se.at) < searchSeenTTL && s.order.Len() < searchSeenSize {
			break
		}
		delete(s.seen, se.id)
		s.order.Remove(e)
	}
	if _, dup := s.seen[id]; dup {
		return false
	}
	s.seen[id] = s.order.PushBack(searchSeen{id: id, at: now})
	return true
}

// allow takes a token from p's searchBucket.
func (s *searchServer) allow(p peer.ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[p]
	if !ok {
		if len(s.buckets) >= searchMaxPeers {
			s.pruneBucketsLocked(now)
		}
		b = &searchBucket{tokens: searchBurst, last: now}
		s.buckets[p] = b
	}
	b.tokens = math.Min(searchBurst, b.tokens+now.Sub(b.last).Seconds()*searchRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// pruneBucketsLocked forgets the buckets that have refilled: forgetting
// them changes nothing. If none has, it forgets them all.
func (s *searchServer) pruneBucketsLocked(now time.Time) {
	for p, b := range s.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*searchRate >= searchBurst {
			delete(s.buckets, p)
		}
	}
	if len(s.buckets) >= searchMaxPeers {
		clear(s.buckets)
	}
}

// handle answers one search request.
func (s *searchServer) handle(st network.Stream) {
	defer st.Close()
	n := s.n
	from := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(searchReadTimeout))
	data, err := frame.Read(bufio.NewReader(st), protocol.MaxSearchRequestSize)
	received := time.Now()
	resp := &protocol.SearchResponse{Type: protocol.MsgSearchResponse}
	var req *protocol.SearchRequest
	switch {
	case err != nil && !errors.Is(err, protocol.ErrTooLarge):
		st.Reset()
		return
	case err != nil:
	case n.trustView().Blocked(from.String()):
		err = fmt.Errorf("search: %w", protocol.ErrUntrusted)
	case !s.allow(from, received):
		err = fmt.Errorf("search: %w: at most %d searches a second", protocol.ErrRateLimited, searchRate)
	default:
		req, err = protocol.DecodeSearchRequest(data)
	}
	if err == nil {
		req.Clamp()
		resp.RequestID = req.RequestID
		budget := time.Duration(req.DeadlineMs) * time.Millisecond
		_ = st.SetDeadline(received.Add(budget + time.Second))
		select {
		case s.inFlight <- struct{}{}:
			if req.Origin != n.id.String() && s.firstSeen(req.RequestID, received) {
				err = s.serve(received.Add(budget), from, req, resp)
			} // else seen before, or our own search come back: answered already
			<-s.inFlight
		default:
			err = fmt.Errorf("search: %w: too many searches at once", protocol.ErrRateLimited)
		}
	}
	if err != nil {
		resp.Results = nil
		e := protocol.NewError(err)
		resp.Error = &e
	}
	b, err := resp.Encode()
	if err != nil {
		st.Reset()
		return
	}
	_ = frame.Write(st, b)
}

// serve fills resp for a new request, to be answered by deadline.
func (s *searchServer) serve(deadline time.Time, from peer.ID, req *protocol.SearchRequest, resp *protocol.SearchResponse) error {
	n := s.n
	if _, err := store.ParseQuery(req.Query); err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(n.ctx, deadline.Add(-answerMargin(time.Until(deadline))))
	defer cancel()

	var fwd <-chan fanOutResult
	if req.TTL > 1 {
		budget := shrinkBudget(time.Until(deadline))
		if budget >= searchMinForward {
			f := *req
			f.TTL--
			f.DeadlineMs = budget.Milliseconds()
			peers := n.searchPeers(from.String(), req.Origin)
			fwd = n.fanOut(ctx, peers, &f, nil)
		}
	}
	local, err := n.publicResults(ctx, req.Query, req.Filters, req.Limit)
	if err != nil {
		if errors.Is(err, protocol.ErrInvalid) {
			return err
		}
		n.log.Warn("search local store", "err", err)
	}
	stats, err := n.store.SearchStats(ctx, req.Query, n.searchOrigin())
	if err != nil {
		n.log.Warn("search local stats", "err", err)
		stats = emptyStats(req.Query)
	}
	lists := [][]protocol.SearchResult{local}
	if fwd != nil {
		r := <-fwd
		lists = append(lists, r.lists...)
		resp.Truncated = r.truncated
		for _, st := range r.stats {
			stats.Merge(st)
		}
	}
	resp.Stats = stats
	var cut bool
	resp.Results, cut = mergeResults(lists, protocol.MaxSearchResults, searchResponseBudget-statsSize(stats))
	resp.Truncated = resp.Truncated || cut
	return nil
}

// emptyStats are the statistics of an empty corpus for query, to add
// others' to.
func emptyStats(query string) *protocol.SearchStats {
	st := &protocol.SearchStats{DocFreq: map[string]int64{}}
	if pq, err := store.ParseQuery(query); err == nil {
		for _, t := range store.QueryTerms(pq) {
			st.DocFreq[t] = 0
		}
	}
	return st
}

// searchOrigin is the part of the store this node answers searches from:
// its own public lessons, or, as a directory, every public lesson it holds.
func (n *Node) searchOrigin() string {
	if n.directoryServesAll() {
		return store.OriginAll
	}
	return store.OriginLocal
}

// statsSize bounds the encoded size of stats.
func statsSize(st *protocol.SearchStats) int {
	if st == nil {
		return 0
	}
	return 256 + len(st.Vocab)*binary.MaxVarintLen32*4/3 + len(st.DocFreq)*(protocol.MaxSearchStatsTermLength+32)
}

// shrinkBudget is the budget a node gives the peers it forwards to.
func shrinkBudget(d time.Duration) time.Duration {
	return time.Duration(float64(d)*searchHopFactor) - searchHopMargin
}

// answerMargin is the time kept, out of a budget of d, to merge and send
// an answer. A forwarder's answer carries its whole subtree's: better to
// give up on one late peer than to be late with all of them.
func answerMargin(d time.Duration) time.Duration {
	return min(max(d/8, 2*time.Millisecond), 50*time.Millisecond)
}

// searchPeers lists the connected peers to forward a search to: those with
// a trust path, not blocked, other than the ones in except, and not known
// to lack the search protocol.
func (n *Node) searchPeers(except ...string) []peer.ID {
	tv := n.trustView()
	var out []peer.ID
	for _, p := range n.host.Network().Peers() {
		id := p.String()
		if p == n.id || slices.Contains(except, id) || tv.Blocked(id) {
			continue
		}
		if _, _, ok := tv.Path(id); !ok {
			continue
		}
		if !n.speaksSearch(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// speaksSearch is false only for a peer identify says lacks the protocol.
func (n *Node) speaksSearch(p peer.ID) bool {
	ps := n.host.Peerstore()
	protos, err := ps.GetProtocols(p)
	if err != nil || len(protos) == 0 {
		return true // not identified yet: try
	}
	ok, err := ps.SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolSearch))
	return err != nil || len(ok) > 0
}

// fanOutResult is what came back from the peers of a fan-out: one list of
// results per answering peer, each with Via set, and whether any peer
// failed, was late, or answered truncated.
type fanOutResult struct {
	lists     [][]protocol.SearchResult
	stats     []*protocol.SearchStats // of the answers that carry them
	truncated bool
	err       error // the first peer's failure, if any
}

// fanOut sends req to peers in parallel and delivers, once all answered or
// ctx is done, what arrived. A peer that does not answer in time costs no
// more than ctx's deadline: its stream is reset then. each, if set, is
// called on every answer without an error as it arrives, in parallel.
func (n *Node) fanOut(ctx context.Context, peers []peer.ID, req *protocol.SearchRequest, each func(*protocol.SearchResponse)) <-chan fanOutResult {
	out := make(chan fanOutResult, 1)
	if len(peers) == 0 {
		out <- fanOutResult{}
		return out
	}
	b, err := req.Encode()
	if err != nil {
		out <- fanOutResult{truncated: true}
		return out
	}
	type answer struct {
		p    peer.ID
		resp *protocol.SearchResponse
		err  error
	}
	answers := make(chan answer, len(peers))
	ctx, cancel := context.WithCancel(ctx)
	stopNode := context.AfterFunc(n.ctx, cancel)
	for _, p := range peers {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			resp, err := n.searchRoundTrip(ctx, p, b)
			if err == nil && resp.Error == nil && each != nil {
				each(resp)
			}
			answers <- answer{p, resp, err}
		}()
	}
	go func() {
		defer cancel()
		defer stopNode()
		var r fanOutResult
		for pending := len(peers); pending > 0; pending-- {
			select {
			case a := <-answers:
				switch {
				case a.err != nil:
					r.truncated = true
					r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", a.p, a.err))
				case a.resp.Error != nil:
					r.truncated = true
					r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", a.p, protocol.ErrorFor(a.resp.Error.Code, a.resp.Error.Message)))
				default:
					via := a.p.String()
					for i := range a.resp.Results {
						if a.resp.Results[i].Via == "" {
							a.resp.Results[i].Via = via
						}
					}
					r.lists = append(r.lists, a.resp.Results)
					if a.resp.Stats != nil {
						r.stats = append(r.stats, a.resp.Stats)
					}
					r.truncated = r.truncated || a.resp.Truncated
				}
			case <-ctx.Done():
				r.truncated = true
				r.err = cmp.Or(r.err, ctx.Err())
				out <- r
				return
			}
		}
		out <- r
	}()
	return out
}

// searchRoundTrip sends one search request to p and reads its answer. It
// gives up, resetting the stream, when ctx is done.
func (n *Node) searchRoundTrip(ctx context.Context, p peer.ID, req []byte) (*protocol.SearchResponse, error) {
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, protocol.ProtocolSearch), p, libp2pproto.ID(protocol.ProtocolSearch))
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := frame.Write(s, req); err != nil {
		s.Reset()
		return nil, err
	}
	// The answer is what counts: a peer that answers before our half-close
	// lands may already have closed its side (over QUIC, CloseWrite then
	// fails with "canceled stream"), and its answer is still there to read.
	_ = s.CloseWrite()
	b, err := frame.Read(bufio.NewReader(s), protocol.MaxSearchResponseSize)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return protocol.DecodeSearchResponse(b)
}

// publicResults answers a search from the local store with public lessons
// only: this node's public publications, as signed, and, if it serves as a
// directory (directoryServesAll), the public lessons it caches too. At most
// limit, best first by the store's own ranking.
func (n *Node) publicResults(ctx context.Context, text string, f *protocol.SearchFilters, limit int) ([]protocol.SearchResult, error) {
	q := store.Query{Text: text, Origin: n.searchOrigin(), Visibility: []string{protocol.VisibilityPublic}, Limit: limit}
	cutoff := n.retentionCutoff() // a directory serves nothing older
	if cutoff > 0 {
		q.Limit = store.MaxSearchLimit // some hits will be filtered out below
	}
	if f != nil {
		q.Types, q.Tags = f.Types, f.Tags
		if len(f.Nodes) == 1 {
			q.Publisher = f.Nodes[0]
		}
		if len(f.Topics) > 0 || f.Since != 0 || len(f.Nodes) > 1 {
			q.Limit = store.MaxSearchLimit // some hits will be filtered out below
		}
	}
	q.Limit = min(max(q.Limit, 1), store.MaxSearchLimit)
	res, err := n.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []protocol.SearchResult
	for _, h := range res.Hits {
		if len(out) == limit {
			break
		}
		sl, enc := h.Signed, h.Encoded
		if h.Key == "" {
			// A public record never published, or edited since it was
			// published (the index holds words never shared), is not
			// matched.
			if sl, enc, err = n.store.SharedPublication(ctx, h.Record); err != nil {
				continue
			}
		}
		if sl == nil || sl.Publication.Visibility != protocol.VisibilityPublic || !matchSearchFilters(sl, f) || sl.Publication.PublishedAt < cutoff {
			continue
		}
		r := protocol.SearchResult{SignedLesson: sl, Score: h.Score, TrustScore: n.trustScore(sl.Signature.NodeID)}
		if enc != nil {
			r.UseEncoding(enc)
		}
		out = append(out, r)
	}
	return out, nil
}

// trustScore is this node's trust in a publisher, 0 for none.
func (n *Node) trustScore(nodeID string) float64 {
	if nodeID == n.id.String() {
		return 1
	}
	tv := n.trustView()
	if tv.Blocked(nodeID) {
		return 0
	}
	_, score, ok := tv.Path(nodeID)
	if !ok {
		return 0
	}
	return score
}

// matchSearchFilters reports whether a signed lesson passes the filters.
func matchSearchFilters(sl *protocol.SignedLesson, f *protocol.SearchFilters) bool {
	if f.Empty() {
		return true
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, sl.Lesson.Type) {
		return false
	}
	for _, t := range f.Tags {
		if !slices.Contains(sl.Lesson.Tags, t) {
			return false
		}
	}
	if len(f.Topics) > 0 {
		found := false
		for _, t := range sl.Publication.Topics {
			found = found || slices.Contains(f.Topics, strings.ToLower(t))
		}
		if !found {
			return false
		}
	}
	if f.Since != 0 && sl.Publication.PublishedAt < f.Since {
		return false
	}
	return len(f.Nodes) == 0 || slices.Contains(f.Nodes, sl.Signature.NodeID)
}

// mergeResults merges lists of results, each best first: it takes them in
// turn, one from each list, so every source's best come first, keeps the
// newest publication of each lesson key, and stops at max results or
// maxBytes of encoded lessons (cut is then true).
func mergeResults(lists [][]protocol.SearchResult, max, maxBytes int) (out []protocol.SearchResult, cut bool) {
	pos := map[string]int{} // lesson key -> index in out
	total := 0
	for i := 0; ; i++ {
		more := false
		for _, l := range lists {
			if i >= len(l) {
				continue
			}
			more = true
			size := l[i].EncodedSize() // kept in l[i], encoded once
			r := l[i]
			if r.SignedLesson == nil {
				continue
			}
			key := r.SignedLesson.Key()
			if j, ok := pos[key]; ok {
				if r.SignedLesson.Publication.PublishedAt > out[j].SignedLesson.Publication.PublishedAt {
					out[j] = r // sizes differ a little; the slack covers it
				}
				continue
			}
			if len(out) == max {
				return out, true
			}
			if size == 0 {
				continue
			}
			if total += size + 256; total > maxBytes {
				return out, true
			}
			pos[key] = len(out)
			out = append(out, r)
		}
		if !more {
			return out, false
		}
	}
}

// FedQuery is a federated search.
type FedQuery struct {
	// Query is as in store.Query.Text, at most
	// protocol.MaxSearchQueryLength bytes. Empty matches every public
	// lesson that passes the filters.
	Query string
	// Filters restrict the results; the zero value restricts nothing.
	Filters protocol.SearchFilters
	// Limit is the number of results: 0 means protocol.DefaultSearchLimit,
	// at most protocol.MaxSearchLimit.
	Limit int
	// Hops is how far the search goes: 1 asks the peers only, 2 their
	// peers too. 0 means protocol.DefaultSearchHops, at most
	// protocol.MaxSearchHops.
	Hops int
	// Deadline is how long the search may take: 0 means
	// DefaultFedDeadline. What arrived by then is returned, marked
	// Truncated if anything was missing.
	Deadline time.Duration
	// Sources is whom to ask: "" or "trusted" asks the connected peers with
	// a trust path (and this node's store); a node ID asks that node only;
	// anything else is a topic name, and keeps only the lessons published
	// on that topic.
	Sources string
	// FreshnessHalfLife, if set, halves a result's score for every such
	// age of its publication. 0 turns freshness off.
	FreshnessHalfLife time.Duration
}

// FedResult is the answer to a federated search.
type FedResult struct {
	// Results are ranked by Score, best first.
	Results []FedHit
	// Truncated says some peers did not answer in time, or answered
	// truncated themselves: more results may exist.
	Truncated bool
	// Invalid, Revoked and Untrusted count the results dropped: a bad
	// signature or a lesson that is not public, a lesson this node knows
	// revoked, and a publisher without a trust path or blocked. Signatures
	// are checked only of the results that could be returned (best first,
	// until Limit are valid), so Invalid counts the invalid ones among
	// those.
	Invalid, Revoked, Untrusted int
}

// FedHit is one result of a federated search.
type FedHit struct {
	// Key is the lesson's key, lessonId@nodeId.
	Key string
	// Lesson is the lesson as signed by its publisher, verified.
	Lesson *protocol.SignedLesson
	// Relevance is BM25 under the statistics of every answering node's
	// corpus added up (the score one index over the union of their public
	// lessons would give), mapped into (0, 1] as s/(s+1); 1 for a query
	// without words.
	Relevance float64
	// Trust is this node's trust in the publisher, in (0, 1].
	Trust float64
	// Freshness is 0.5^(age/FreshnessHalfLife), or 1 when that is off.
	Freshness float64
	// Score is Relevance × Trust × Freshness.
	Score float64
	// Via is the node whose store answered with the lesson (this node's
	// ID for its own store).
	Via string
	// TrustPath is the trust path to the publisher, from this node
	// (TrustPath[0]) to the publisher; nil for this node's own lessons.
	TrustPath []string
}

// FederatedSearch searches the public lessons of this node and its trusted
// network. It drops revoked and untrusted results, keeps the newest valid
// version of each lesson, and ranks them by relevance × trust × freshness;
// every result returned is verified. Relevance is BM25 computed here with
// the corpus statistics every answer carries, added up, since the scores
// of different indexes do not compare: each candidate scores as in one
// index over the union of the answering nodes' public lessons (see
// store.Scorer). It returns as soon as every peer asked has answered, and
// by q.Deadline even if some do not.
func (n *Node) FederatedSearch(ctx context.Context, q FedQuery) (*FedResult, error) {
	pq, err := store.ParseQuery(q.Query)
	if err != nil {
		return nil, fmt.Errorf("federated search: %w", err)
	}
	if len(q.Query) > protocol.MaxSearchQueryLength {
		return nil, fmt.Errorf("federated search: %w: query is %d bytes, the limit is %d", protocol.ErrInvalid, len(q.Query), protocol.MaxSearchQueryLength)
	}
	deadline := q.Deadline
	if deadline <= 0 {
		deadline = DefaultFedDeadline
	}
	start := time.Now()
	caller := ctx
	ctx, cancel := context.WithDeadline(ctx, start.Add(deadline))
	defer cancel()
	filters := q.Filters
	req := protocol.SearchRequest{Type: protocol.MsgSearch, Query: q.Query, Limit: q.Limit, Hops: q.Hops, Origin: n.id.String()}
	req.Clamp()
	req.TTL = req.Hops

	var peers []peer.ID
	askLocal := true
	switch src := q.Sources; {
	case src == "" || src == "trusted":
	case looksLikeNodeID(src):
		p, _ := peer.Decode(src)
		if p == n.id {
			break
		}
		askLocal = false
		peers = []peer.ID{p}
		req.TTL = 1 // that node's own store only
	default:
		filters.Topics = append(append([]string(nil), filters.Topics...), strings.ToLower(src))
	}
	if !filters.Empty() {
		req.Filters = &filters
	}
	if askLocal && n.host != nil {
		peers = n.searchPeers()
	}
	if !askLocal && n.host == nil {
		return nil, fmt.Errorf("federated search: %w", ErrOffline)
	}

	// Analyze the candidates' text as they arrive, while waiting for the
	// rest: ranking then only computes.
	feats := newFeatureCache(store.NewScorer(pq, nil))

	// Collect until the deadline, less the time to rank.
	collect, stop := context.WithDeadline(ctx, start.Add(deadline-rankMargin(deadline)))
	defer stop()
	var fwd <-chan fanOutResult
	if len(peers) > 0 {
		var id [16]byte
		_, _ = rand.Read(id[:])
		req.RequestID = hex.EncodeToString(id[:])
		req.DeadlineMs = max(shrinkBudget(deadline-rankMargin(deadline)).Milliseconds(), 1)
		fwd = n.fanOut(collect, peers, &req, feats.analyze)
	}
	var lists [][]protocol.SearchResult
	var stats *protocol.SearchStats
	res := &FedResult{}
	if askLocal {
		local, err := n.publicResults(collect, q.Query, req.Filters, req.Limit)
		switch {
		case err != nil && collect.Err() != nil && caller.Err() == nil:
			res.Truncated = true // the store did not answer in time: the peers still may
		case err != nil:
			return nil, fmt.Errorf("federated search: %w", err)
		}
		self := n.id.String()
		for i := range local {
			local[i].Via = self
		}
		lists = append(lists, local)
		feats.analyze(&protocol.SearchResponse{Results: local})
		if stats, err = n.store.SearchStats(collect, q.Query, n.searchOrigin()); err != nil {
			n.log.Warn("search local stats", "err", err)
			stats = nil
		}
	}
	if fwd != nil {
		r := <-fwd
		if !askLocal && len(r.lists) == 0 && r.err != nil {
			return nil, fmt.Errorf("federated search: %w", r.err)
		}
		lists = append(lists, r.lists...)
		res.Truncated = res.Truncated || r.truncated
		for _, st := range r.stats {
			if stats == nil {
				stats = emptyStats(q.Query)
			}
			stats.Merge(st)
		}
	}
	res.Results = n.rankResults(ctx, lists, pq, stats, feats, req.Filters, req.Limit, q.FreshnessHalfLife, res)
	return res, nil
}

// rankMargin is the time kept out of a requester's deadline to verify and
// rank what came back.
func rankMargin(d time.Duration) time.Duration {
	return min(max(d/10, 5*time.Millisecond), 100*time.Millisecond)
}

func looksLikeNodeID(s string) bool {
	if !strings.HasPrefix(s, "12D3KooW") && !strings.HasPrefix(s, "Qm") {
		return false
	}
	_, err := peer.Decode(s)
	return err == nil
}

// signedIdentity identifies a signed lesson by everything Verify looks
// at: the signature block and a digest of the signed payload. Copies with
// the same identity verify alike.
func signedIdentity(sl *protocol.SignedLesson) (string, error) {
	payload, err := protocol.SigningPayload(&sl.Lesson, &sl.Publication, sl.Signature.Timestamp)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(payload)
	sig := sl.Signature
	return strings.Join([]string{sig.Algorithm, sig.NodeID, sig.PublicKey, sig.Sig, string(sum[:])}, "\x00"), nil
}

// candidate is one lesson key among the results, with its distinct copies,
// newest publication first.
type candidate struct {
	key    string
	copies []protocol.SearchResult
	next   int // the copy to try next
	trust  float64
	path   []string
	score  float64
	rel    float64
	fresh  float64
}

// rankResults ranks the candidates and returns the best limit of them,
// verified. Cheap checks come first: revoked, untrusted and filtered-out
// lessons are dropped (and counted into res) before any signature is
// checked. Each lesson key is scored by its newest copy with BM25 under the
// statistics of all answering nodes (stats; those of the candidates
// themselves when no answer carried any), times trust and freshness. The
// keys are then taken best first and their copy verified: a copy that
// fails is counted invalid and the key falls back on its next newest copy,
// re-scored. So only the copies that could be returned are verified, and
// the result is exactly the best limit of the valid copies. Verifying stops
// at ctx's deadline; the answer is then marked truncated.
func (n *Node) rankResults(ctx context.Context, lists [][]protocol.SearchResult, pq store.ParsedQuery, stats *protocol.SearchStats,
	feats *featureCache, f *protocol.SearchFilters, limit int, halfLife time.Duration, res *FedResult) []FedHit {
	self := n.id.String()
	tv := n.trustView()
	byKey := map[string]*candidate{}
	var cands []*candidate
	var lessons []*protocol.Lesson
	for _, l := range lists {
		for _, r := range l {
			sl := r.SignedLesson
			if sl == nil {
				res.Invalid++
				continue
			}
			key := sl.Key()
			c := byKey[key]
			if c == nil {
				c = &candidate{key: key, trust: 1}
				publisher := sl.Signature.NodeID
				if n.store.Revoked(ctx, key) {
					res.Revoked++
					byKey[key] = &candidate{key: key, trust: -1}
					continue
				}
				if publisher != self {
					path, score, ok := tv.Path(publisher)
					if !ok || tv.Blocked(publisher) || score <= 0 {
						res.Untrusted++
						byKey[key] = &candidate{key: key, trust: -1}
						continue
					}
					c.trust, c.path = score, path
				}
				byKey[key] = c
				cands = append(cands, c)
			}
			if c.trust < 0 {
				if n.store.Revoked(ctx, key) {
					res.Revoked++
				} else {
					res.Untrusted++
				}
				continue
			}
			if !matchSearchFilters(sl, f) {
				continue // a peer that ignored the filters
			}
			c.copies = append(c.copies, r)
			lessons = append(lessons, &sl.Lesson)
		}
	}
	if stats == nil || stats.Docs == 0 {
		stats = store.StatsOf(lessons, pq)
	}
	sc := store.NewScorer(pq, stats)
	now := n.now()
	bm25 := scoreAll(sc, feats, cands)
	// score sets c's score from its copy c.next; false if it does not
	// match the query.
	score := func(c *candidate) bool {
		sl := c.copies[c.next].SignedLesson
		s, ok := bm25[sl]
		if !ok {
			return false
		}
		c.rel = 1
		if len(pq.Terms) > 0 || len(pq.Phrases) > 0 {
			c.rel = store.Relevance(s)
		}
		c.fresh = 1
		if halfLife > 0 {
			if age := now.Sub(time.UnixMilli(sl.Publication.PublishedAt)); age > 0 {
				c.fresh = math.Pow(0.5, float64(age)/float64(halfLife))
			}
		}
		c.score = c.rel * c.trust * c.fresh
		return true
	}
	opts := protocol.VerifyOptions{Now: now, AllowOld: true}
	checked := map[string]bool{} // signedIdentity -> valid: each distinct copy is verified once
	verify := func(r protocol.SearchResult) bool {
		sl := r.SignedLesson
		id, err := signedIdentity(sl)
		if err != nil {
			return false
		}
		valid, done := checked[id]
		if !done {
			valid = protocol.Verify(sl, opts) == nil && sl.Publication.Visibility == protocol.VisibilityPublic
			checked[id] = valid
		}
		return valid
	}
	// ready advances c to its next copy that matches the query, verifying
	// (and counting if invalid) the newer copies that do not match: a valid
	// one means the lesson's current version does not match. It reports
	// whether c has a copy to rank.
	ready := func(c *candidate) bool {
		for ; c.next < len(c.copies); c.next++ {
			if score(c) {
				return true
			}
			if verify(c.copies[c.next]) {
				return false
			}
			res.Invalid++
		}
		return false
	}
	h := &candHeap{}
	for _, c := range cands {
		if len(c.copies) == 0 {
			continue
		}
		slices.SortStableFunc(c.copies, func(a, b protocol.SearchResult) int {
			return cmp.Compare(b.SignedLesson.Publication.PublishedAt, a.SignedLesson.Publication.PublishedAt)
		})
		if ready(c) {
			*h = append(*h, c)
		}
	}
	heap.Init(h)
	var hits []FedHit
	for h.Len() > 0 && len(hits) < limit {
		// Verifying is bounded by the search's deadline too: past it,
		// what is verified so far is the answer, marked truncated.
		if ctx.Err() != nil {
			res.Truncated = true
			break
		}
		c := heap.Pop(h).(*candidate)
		r := c.copies[c.next]
		if !verify(r) {
			res.Invalid++
			c.next++
			if ready(c) {
				heap.Push(h, c)
			}
			continue
		}
		hits = append(hits, FedHit{Key: c.key, Lesson: r.SignedLesson, Relevance: c.rel, Trust: c.trust, Freshness: c.fresh,
			Score: c.score, Via: r.Via, TrustPath: c.path})
	}
	return hits
}

// scoreAll scores every copy of every candidate, in parallel: the text
// analysis it takes is most of the requester's work. Copies that do not
// match the query are left out.
func scoreAll(sc *store.Scorer, feats *featureCache, cands []*candidate) map[*protocol.SignedLesson]float64 {
	var all []*protocol.SignedLesson
	for _, c := range cands {
		for _, r := range c.copies {
			all = append(all, r.SignedLesson)
		}
	}
	scores := make([]float64, len(all))
	matched := make([]bool, len(all))
	workers := min(runtime.GOMAXPROCS(0), len(all)/16+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(all); i += workers {
				f, ok := feats.get(all[i])
				if !ok {
					f = sc.Features(&all[i].Lesson)
				}
				scores[i], matched[i] = sc.ScoreFeatures(&all[i].Lesson, f)
			}
		}()
	}
	wg.Wait()
	out := make(map[*protocol.SignedLesson]float64, len(all))
	for i, sl := range all {
		if matched[i] {
			out[sl] = scores[i]
		}
	}
	return out
}

// featureCache holds the Features of the candidates analyzed so far.
type featureCache struct {
	sc *store.Scorer // of the query, without statistics
	mu sync.Mutex
	m  map[*protocol.SignedLesson]store.Features
}

func newFeatureCache(sc *store.Scorer) *featureCache {
	return &featureCache{sc: sc, m: map[*protocol.SignedLesson]store.Features{}}
}

// analyze takes the Features of every result of resp.
func (c *featureCache) analyze(resp *protocol.SearchResponse) {
	fs := make([]store.Features, len(resp.Results))
	for i, r := range resp.Results {
		if r.SignedLesson != nil {
			fs[i] = c.sc.Features(&r.SignedLesson.Lesson)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range resp.Results {
		if r.SignedLesson != nil {
			c.m[r.SignedLesson] = fs[i]
		}
	}
}

func (c *featureCache) get(sl *protocol.SignedLesson) (store.Features, bool) {
	if c == nil {
		return store.Features{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[sl]
	return f, ok
}

// candHeap orders candidates best first: by score, then by key.
type candHeap []*candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].key < h[j].key
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(*candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// rankHits scores hits against the query with BM25 under the statistics of
// the hits themselves (as one index holding exactly them would), then sorts
// them by relevance × trust × freshness, ties by key. Hits that do not
// match the query's words, phrases or comparisons are removed. It verifies
// nothing: the caller has.
func rankHits(hits []FedHit, pq store.ParsedQuery, halfLife time.Duration, now time.Time) []FedHit {
	lessons := make([]*protocol.Lesson, len(hits))
	for i, h := range hits {
		lessons[i] = &h.Lesson.Lesson
	}
	sc := store.NewScorer(pq, store.StatsOf(lessons, pq))
	scored := len(pq.Terms) > 0 || len(pq.Phrases) > 0
	kept := hits[:0]
	for _, h := range hits {
		s, ok := sc.Score(&h.Lesson.Lesson)
		if !ok {
			continue
		}
		h.Relevance = 1
		if scored {
			h.Relevance = store.Relevance(s)
		}
		h.Freshness = 1
		if halfLife > 0 {
			if age := now.Sub(time.UnixMilli(h.Lesson.Publication.PublishedAt)); age > 0 {
				h.Freshness = math.Pow(0.5, float64(age)/float64(halfLife))
			}
		}
		h.Score = h.Relevance * h.Trust * h.Freshness
		kept = append(kept, h)
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if kept[i].Score != kept[j].Score {
			return kept[i].Score > kept[j].Score
		}
		return kept[i].Key < kept[j].Key
	})
	return kept
}
