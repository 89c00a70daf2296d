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
	var fwd <-chan fanOutResult
	if len(peers) > 0 {
		var id [16]byte
		_, _ = rand.Read(id[:])
		req.RequestID = hex.EncodeToString(id[:])
		req.DeadlineMs = max(shrinkBudget(deadline-rankMargin(deadline)).Milliseconds(), 1)
		fwd = s.fanOut(collect, peers, req, feats.analyze)
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
		r := <-fwd
		if !askLocal && len(r.lists) == 0 && r.err != nil {
			return nil, len(peers), fmt.Errorf("federated search: %w", r.err)
		}
		lists = append(lists, r.lists...)
		res.Truncated = res.Truncated || r.truncated
		res.Invalid += r.invalid
		for _, st := range r.stats {
			if stats == nil {
				stats = emptyStats(pq)
			}
			stats.Merge(st)
		}
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
// results per answering peer, each with Via set, and whether any peer
// failed, was late, or answered truncated.
type fanOutResult struct {
	lists     [][]protocol.SearchResult
	stats     []*protocol.SearchStats // of the answers that carry them
	truncated bool
	err       error // the first peer's failure, if any
	// invalid counts the results the answers carried that did not
	// decode (protocol.SearchResponse.Invalid).
	invalid int
}

// fanOut sends req to peers in parallel and delivers, once all answered or
// ctx is done, what arrived. A peer that does not answer in time costs no
// more than ctx's deadline: its stream is reset then. each, if set, is
// called on every answer without an error as it arrives, in parallel;
// without each, the answers are decoded for relaying only (their results
// have no SignedLesson, see protocol.DecodeSearchRelay).
func (s *Service) fanOut(ctx context.Context, peers []peer.ID, req *protocol.SearchRequest, each func(*protocol.SearchResponse)) <-chan fanOutResult {
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
	stopService := context.AfterFunc(s.ctx, cancel)
	for _, p := range peers {
		s.goTracked(func() {
			resp, err := s.roundTrip(ctx, p, b, each == nil)
			if err == nil && resp.Error == nil && each != nil {
				each(resp)
			}
			answers <- answer{p, resp, err}
		})
	}
	go func() {
		defer cancel()
		defer stopService()
		var r fanOutResult
		for pending := len(peers); pending > 0; pending-- {
			select {
			case a := <-answers:
				r.add(a.p, a.resp, a.err)
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

// add takes in one peer's answer.
func (r *fanOutResult) add(p peer.ID, resp *protocol.SearchResponse, err error) {
	switch {
	case err != nil:
		r.truncated = true
		r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", p, err))
	case resp.Error != nil:
		r.truncated = true
		r.err = cmp.Or(r.err, fmt.Errorf("%s: %w", p, protocol.ErrorFor(resp.Error.Code, resp.Error.Message)))
	default:
		via := p.String()
		for i := range resp.Results {
			if resp.Results[i].Via == "" {
				resp.Results[i].Via = via
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

// roundTrip sends one search request to p and reads its answer. It gives
// up, resetting the stream, when ctx is done. A forwarder (relay) reads of
// each result only what it merges by (protocol.DecodeSearchRelay): the
// requester decodes and verifies the lessons it ranks.
func (s *Service) roundTrip(ctx context.Context, p peer.ID, req []byte, relay bool) (*protocol.SearchResponse, error) {
	b, err := streamrpc.Call(ctx, s.host, p, protocol.ProtocolSearch, req, protocol.MaxSearchResponseSize)
	if err != nil {
		return nil, err
	}
	if relay {
		return protocol.DecodeSearchRelay(b)
	}
	return protocol.DecodeSearchResponse(b)
}
