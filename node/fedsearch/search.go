package fedsearch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Search searches the public lessons of this node and its trusted network.
// It drops revoked and untrusted results, keeps the newest valid version of
// each lesson, and ranks them by relevance × trust × freshness; every
// result returned is verified. Relevance is BM25 computed here with the
// corpus statistics every answer carries, added up, since the scores of
// different indexes do not compare: each candidate scores as in one index
// over the union of the answering nodes' public lessons (see
// store.Scorer). It returns as soon as every peer asked has answered, and
// by q.Deadline even if some do not.
func (s *Service) Search(ctx context.Context, q api.FedSearchRequest) (*api.FedSearchResponse, error) {
	start := time.Now()
	res, asked, err := s.search(ctx, q)
	truncated := res != nil && res.Truncated
	s.metrics.search(asked, truncated, time.Since(start), err)
	return res, err
}

// search is Search; it also returns how many peers it asked.
func (s *Service) search(ctx context.Context, q api.FedSearchRequest) (_ *api.FedSearchResponse, asked int, _ error) {
	if len(q.Query) > protocol.MaxSearchQueryLength {
		return nil, 0, fmt.Errorf("federated search: %w: query is %d bytes, the limit is %d", protocol.ErrInvalid, len(q.Query), protocol.MaxSearchQueryLength)
	}
	pq, err := store.ParseQuery(q.Query)
	if err != nil {
		return nil, 0, fmt.Errorf("federated search: %w", err)
	}
	deadline := q.Deadline
	if deadline <= 0 {
		deadline = api.DefaultFedDeadline
	}
	start := time.Now()
	caller := ctx
	ctx, cancel := context.WithDeadline(ctx, start.Add(deadline))
	defer cancel()
	req, peers, askLocal, err := s.plan(q)
	if err != nil {
		return nil, 0, err
	}

	// Analyze the candidates' text as they arrive, while waiting for the
	// rest: ranking then only computes.
	feats := newFeatureCache(store.NewScorer(pq, nil))

	// Collect until the deadline, less the time to rank.
	collect, stop := context.WithDeadline(ctx, start.Add(deadline-rankMargin(deadline)))
	defer stop()
	var fwd *gathering
	if len(peers) > 0 {
		var id [16]byte
		_, _ = rand.Read(id[:])
		req.RequestID = hex.EncodeToString(id[:])
		window := deadline - rankMargin(deadline)
		req.DeadlineMs = max(shrinkBudget(window).Milliseconds(), 1)
		// Late answers are read until the end of the window: a forwarder
		// received the request after it started, so what it sends by
		// then is at worst too late and dropped.
		req.LateMs = window.Milliseconds()
		fwd = s.fanOut(collect, peers, req, feats.analyze)
		defer fwd.close()
	}
	var lists [][]protocol.SearchResult
	var stats *protocol.SearchStats
	res := &api.FedSearchResponse{Success: true, Results: []api.FedSearchHit{}}
	if askLocal {
		local, err := s.local.PublicResults(collect, pq, req.Filters, req.Limit)
		switch {
		case err != nil && collect.Err() != nil && caller.Err() == nil:
			res.Truncated = true // the store did not answer in time: the peers still may
		case err != nil:
			return nil, len(peers), fmt.Errorf("federated search: %w", err)
		}
		for i := range local {
			local[i].Via = s.selfS
		}
		lists = append(lists, local)
		feats.analyze(&protocol.SearchResponse{Results: local})
		if stats, err = s.local.SearchStats(collect, pq); err != nil {
			s.log.Warn("search local stats", "err", err)
			stats = nil
		}
	}
	if fwd != nil {
		r := fwd.collect(collect, false)
		r.truncated = r.truncated || fwd.pending > 0
		fwd.close()
		if !askLocal && len(r.lists) == 0 && r.err != nil {
			return nil, len(peers), fmt.Errorf("federated search: %w", r.err)
		}
		lists = append(lists, r.lists...)
		res.Truncated = res.Truncated || r.truncated
		res.Invalid += r.invalid
		stats = addStats(stats, r.stats, pq)
	}
	rk := ranking{s: s, pq: pq, stats: stats, feats: feats, filters: req.Filters, limit: req.Limit, halfLife: q.FreshnessHalfLife, res: res}
	res.Results = rk.rank(ctx, lists)
	return res, len(peers), nil
}

// plan turns a search into the request to send, the peers to send it to,
// and whether this node's own store answers too.
func (s *Service) plan(q api.FedSearchRequest) (req *protocol.SearchRequest, peers []peer.ID, askLocal bool, err error) {
	filters := q.Filters
	req = &protocol.SearchRequest{Type: protocol.MsgSearch, Query: q.Query, Limit: q.Limit, Hops: q.Hops, Origin: s.selfS}
	req.Clamp()
	req.TTL = req.Hops
	askLocal = true
	switch src := q.Sources; {
	case src == "" || src == "trusted":
	case looksLikeNodeID(src):
		p, _ := peer.Decode(src)
		if p == s.self {
			break
		}
		if s.host == nil {
			return nil, nil, false, fmt.Errorf("federated search: %w", api.ErrOffline)
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
	if askLocal && s.host != nil {
		peers = s.peers()
	}
	return req, peers, askLocal, nil
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

// fanOutResult is what came back from the peers of a fan-out: one list of
// results per answer frame, each with Via set, and whether any peer
// failed or answered truncated. A peer that has not answered yet is not
// counted here: see gathering.pending.
type fanOutResult struct {
	lists     [][]protocol.SearchResult
	stats     []*protocol.SearchStats // of the answers that carry them
	truncated bool
	err       error // the first peer's failure, if any
	// invalid counts the results the answers carried that did not
	// decode (protocol.SearchResponse.Invalid).
	invalid int
	// frames counts the answer frames taken in.
	frames int
}

// answer is one frame of one peer's answer, or the peer's failure.
type answer struct {
	p    string // the peer, as a string
	resp *protocol.SearchResponse
	err  error
	last bool // the peer's last frame, or its failure
}

// gathering is a fan-out under way: the peers' answers come in frame by
// frame, and the caller takes them in with collect until it has what it
// waits for, then calls close.
type gathering struct {
	answers chan answer
	pending int // peers whose last frame has not come in
	close   context.CancelFunc
}

// fanOut sends req to peers in parallel, over ProtocolSearchLate where
// they speak it. A peer that does not answer in time costs no more than
// ctx's deadline (or the gathering's close): its stream is reset then.
// each, if set, is called on every answer frame without an error as it
// arrives, in parallel. The answers are decoded for relaying only (their
// results have no SignedLesson, see protocol.DecodeSearchRelay): a
// forwarder passes them on as received, and a requester decodes in full
// only the lessons it verifies (see ranking).
func (s *Service) fanOut(ctx context.Context, peers []peer.ID, req *protocol.SearchRequest, each func(*protocol.SearchResponse)) *gathering {
	ctx, cancel := context.WithCancel(ctx)
	stopService := context.AfterFunc(s.ctx, cancel)
	g := &gathering{answers: make(chan answer, len(peers)), pending: len(peers), close: func() { stopService(); cancel() }}
	if len(peers) == 0 {
		return g
	}
	single := *req
	single.LateMs = 0
	late, err := req.Encode()
	one, err1 := single.Encode()
	if err = cmp.Or(err, err1); err != nil {
		for _, p := range peers {
			g.answers <- answer{p: s.idString(p), err: err, last: true}
		}
		return g
	}
	for _, p := range peers {
		ps := s.idString(p)
		s.goTracked(func() {
			err := s.exchange(ctx, p, late, one, func(resp *protocol.SearchResponse, last bool) bool {
				if resp.Error == nil && each != nil {
					each(resp)
				}
				select {
				case g.answers <- answer{p: ps, resp: resp, last: last}:
					return true
				case <-ctx.Done():
					return false
				}
			})
			if err != nil {
				select {
				case g.answers <- answer{p: ps, err: err, last: true}:
				case <-ctx.Done():
				}
			}
		})
	}
	return g
}

// collect takes in answer frames until every peer has sent its last or
// ctx is done (its error is then the result's, if none came before); with
// some, it returns as soon as it has taken in at least one frame and no
// other is waiting.
func (g *gathering) collect(ctx context.Context, some bool) fanOutResult {
	var r fanOutResult
	for g.pending > 0 {
		if some && r.frames > 0 && len(g.answers) == 0 {
			return r
		}
		select {
		case a := <-g.answers:
			r.add(a.p, a.resp, a.err)
			if a.last {
				g.pending--
			}
		case <-ctx.Done():
			r.err = cmp.Or(r.err, ctx.Err())
			return r
		}
	}
	return r
}

// exchange sends one search request to p and hands its answer frames to
// each, decoded, until the last or until each returns false. It gives up,
// resetting the stream, when ctx is done. late is the request for
// ProtocolSearchLate, one for ProtocolSearch (no late answers). Of each
// result only what a forwarder merges by is read
// (protocol.DecodeSearchRelay): the requester decodes and verifies the
// lessons it ranks. Frames over MaxSearchFrames, or over
// MaxSearchResponseSize together, are an error.
func (s *Service) exchange(ctx context.Context, p peer.ID, late, one []byte, each func(resp *protocol.SearchResponse, last bool) bool) error {
	frames, size := 0, 0
	return streamrpc.Exchange(ctx, s.host, p, []string{protocol.ProtocolSearchLate, protocol.ProtocolSearch},
		func(proto string) []byte {
			if proto == protocol.ProtocolSearchLate {
				return late
			}
			return one
		}, protocol.MaxSearchResponseSize,
		func(proto string, b []byte) (bool, error) {
			frames++
			if size += len(b); size > protocol.MaxSearchResponseSize {
				return false, fmt.Errorf("search answer: %w: %d bytes in %d frames, the limit is %d", protocol.ErrTooLarge, size, frames, protocol.MaxSearchResponseSize)
			}
			resp, err := protocol.DecodeSearchRelay(b)
			if err != nil {
				return false, err
			}
			if proto != protocol.ProtocolSearchLate || resp.Error != nil {
				resp.More = false
			}
			if resp.More && frames == protocol.MaxSearchFrames {
				return false, fmt.Errorf("search answer: %w: more than %d frames", protocol.ErrTooLarge, protocol.MaxSearchFrames)
			}
			if !each(resp, !resp.More) {
				return true, nil
			}
			return !resp.More, nil
		})
}

// add takes in one peer's answer.
func (r *fanOutResult) add(p string, resp *protocol.SearchResponse, err error) {
	r.frames++
	switch {
	case err != nil:
		r.truncated = true
		r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", p, err))
	case resp.Error != nil:
		r.truncated = true
		r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", p, protocol.ErrorFor(resp.Error.Code, resp.Error.Message)))
	default:
		for i := range resp.Results {
			if resp.Results[i].Via == "" {
				resp.Results[i].Via = p
			}
		}
		r.lists = append(r.lists, resp.Results)
		r.invalid += resp.Invalid
		if resp.Stats != nil {
			r.stats = append(r.stats, resp.Stats)
		}
		r.truncated = r.truncated || resp.Truncated
	}
}
