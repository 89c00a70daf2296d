package fedsearch

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// seenIDs remembers recent request IDs, at most seenSize for at most
// seenTTL.
type seenIDs struct {
	mu    sync.Mutex
	ids   map[string]*list.Element // request ID -> element of order
	order list.List                // of seenID, oldest first
}

type seenID struct {
	id string
	at time.Time
}

// first records a request ID and reports whether it is new.
func (s *seenIDs) first(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]*list.Element{}
	}
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		se := e.Value.(seenID)
		if now.Sub(se.at) < seenTTL && s.order.Len() < seenSize {
			break
		}
		delete(s.ids, se.id)
		s.order.Remove(e)
	}
	if _, dup := s.ids[id]; dup {
		return false
	}
	s.ids[id] = s.order.PushBack(seenID{id: id, at: now})
	return true
}

// handle answers one search request: from this node's store and, while
// the request's ttl is above 1, from its trusted peers other than the
// sender and the origin, with ttl-1 and a smaller budget. It waits for them
// no longer than its own budget: what arrived in time is merged into the
// answer, which is marked truncated if anything was missing. A request ID
// seen recently is answered empty and not forwarded, so diamonds and loops
// in the peer graph cost one answer each.
func (s *Service) handle(ctx context.Context, r *streamrpc.Request) []byte {
	resp := &protocol.SearchResponse{Type: protocol.MsgSearchResponse}
	var req *protocol.SearchRequest
	err := r.Err
	switch {
	case err != nil:
	case s.trust.Blocked(s.idString(r.From)):
		err = fmt.Errorf("search: %w", protocol.ErrUntrusted)
	case !s.limit.Allow(s.idString(r.From), r.Received):
		err = fmt.Errorf("search: %w: at most %d searches a second", protocol.ErrRateLimited, peerRate)
	default:
		req, err = protocol.DecodeSearchRequest(r.Body)
	}
	if err == nil {
		req.Clamp()
		if r.Protocol != protocol.ProtocolSearchLate {
			req.LateMs = 0
		}
		resp.RequestID = req.RequestID
		r.SetDeadline(r.Received.Add(time.Duration(max(req.DeadlineMs, req.LateMs))*time.Millisecond + time.Second))
		select {
		case s.inFlight <- struct{}{}:
			if req.Origin != s.selfS && s.seen.first(req.RequestID, r.Received) {
				err = s.serve(ctx, r, req, resp)
			} // else seen before, or our own search come back: answered already
			<-s.inFlight
		default:
			err = fmt.Errorf("search: %w: too many searches at once", protocol.ErrRateLimited)
		}
	}
	s.metrics.serve(err)
	if err != nil {
		resp.Results = nil
		resp.Stats = nil
		resp.More = false
		resp.Error = protocol.ErrorOf(err)
	}
	b, release, err := encodeAnswer(resp)
	if err != nil {
		return nil // the stream is reset
	}
	r.AfterAnswer(release)
	return b
}

// answerBufs pools the buffers answers are encoded in: every node encodes
// one for every search it serves.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer bounds the buffers that go back to answerBufs.
const maxPooledAnswer = 1 << 20

// encodeAnswer encodes resp in a pooled buffer, which release gives back:
// the bytes are not to be used after.
func encodeAnswer(resp *protocol.SearchResponse) (b []byte, release func(), err error) {
	buf := answerBufs.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledAnswer {
			answerBufs.Put(buf)
		}
	}
	if err := resp.EncodeTo(buf); err != nil {
		release()
		return nil, nil, err
	}
	return buf.Bytes(), release, nil
}

// serve fills resp, the answer to a new request r, due DeadlineMs after
// r was received: it waits for the peers it forwards to until shortly
// before then. If some have not answered and the request allows late
// answers, it sends resp as the first frame, and what those peers answer
// later in further ones (answerLate); resp is then the last.
//
// Sending this node's own results at once, and each peer's answer as it
// comes, was tried: in meshbench fedsearch (100 nodes) it took six frames
// per forwarder, the median search went from 98 to 115 ms and more
// answers were truncated (4 of 200, not 1), all of it decoding, merging
// and sending small frames.
func (s *Service) serve(ctx context.Context, r *streamrpc.Request, req *protocol.SearchRequest, resp *protocol.SearchResponse) error {
	pq, err := store.ParseQuery(req.Query)
	if err != nil {
		return err
	}
	deadline := r.Received.Add(time.Duration(req.DeadlineMs) * time.Millisecond)
	answerBy, cancel := context.WithDeadline(ctx, deadline.Add(-answerMargin(time.Until(deadline))))
	defer cancel()
	var late time.Time
	if req.LateMs > 0 {
		late = r.Received.Add(time.Duration(req.LateMs) * time.Millisecond)
	}

	var fwd *gathering
	if req.TTL > 1 {
		budget := shrinkBudget(time.Until(deadline))
		if budget >= minForward {
			f := *req
			f.TTL--
			f.DeadlineMs = budget.Milliseconds()
			f.LateMs = 0
			peersCtx := answerBy // their streams are reset when we stop reading
			if !late.IsZero() {
				// Late answers that reach this node by late can still be
				// passed on; the peers' own late answers too.
				f.LateMs = time.Until(late).Milliseconds()
				var stop context.CancelFunc
				peersCtx, stop = context.WithDeadline(ctx, late)
				defer stop()
			}
			fwd = s.fanOut(peersCtx, s.peers(s.idString(r.From), req.Origin), &f, nil) // relays: see exchange
			defer fwd.close()
		}
	}
	local, err := s.local.PublicResults(answerBy, pq, req.Filters, req.Limit)
	if err != nil {
		if errors.Is(err, protocol.ErrInvalid) {
			return err
		}
		s.log.Warn("search local store", "err", err)
	}
	s.setTrustScores(local)
	stats, err := s.local.SearchStats(answerBy, pq)
	if err != nil {
		s.log.Warn("search local stats", "err", err)
		stats = emptyStats(pq)
	}
	lists := [][]protocol.SearchResult{local}
	if fwd != nil {
		fr := fwd.collect(answerBy, false)
		lists = append(lists, fr.lists...)
		resp.Truncated = fr.truncated
		stats = addStats(stats, fr.stats, pq)
		if fwd.pending > 0 {
			if late.IsZero() {
				resp.Truncated = true
			} else {
				resp.More = true
			}
		}
	}
	resp.Stats = stats
	var cut bool
	resp.Results, cut = mergeResults(lists, protocol.MaxSearchResults, responseBudget-statsSize(stats))
	resp.Truncated = resp.Truncated || cut
	if !resp.More {
		return nil
	}
	return s.answerLate(ctx, r, late, fwd, pq, resp)
}

// answerLate sends resp, an answer's first frame, then the answers of
// the peers still pending, a frame as soon as some come in (the last
// frames may hold several), until every peer answered or late. resp is
// then the last frame, More false, Truncated if a peer never answered.
// The frames together stay under the answer's size cap. An asker gone
// (resp does not send) ends it with that error.
func (s *Service) answerLate(ctx context.Context, r *streamrpc.Request, late time.Time, fwd *gathering, pq store.ParsedQuery, resp *protocol.SearchResponse) error {
	ctx, cancel := context.WithDeadline(ctx, late)
	defer cancel()
	sent := 0
	for frames := 1; ; frames++ {
		b, release, err := encodeAnswer(resp)
		if err != nil {
			return err
		}
		err = r.Send(b)
		sent += len(b)
		release()
		if err != nil {
			return fmt.Errorf("search: sending an answer: %w", err)
		}
		// The frame before the last waits for every peer: the last must
		// be one of MaxSearchFrames.
		fr := fwd.collect(ctx, frames < protocol.MaxSearchFrames-1)
		next := protocol.SearchResponse{Type: protocol.MsgSearchResponse, RequestID: resp.RequestID, Truncated: fr.truncated}
		next.Stats = addStats(nil, fr.stats, pq)
		var cut bool
		next.Results, cut = mergeResults(fr.lists, protocol.MaxSearchResults, responseBudget-sent-statsSize(next.Stats))
		next.More = fwd.pending > 0 && ctx.Err() == nil
		next.Truncated = next.Truncated || cut || (fwd.pending > 0 && !next.More)
		*resp = next
		s.metrics.lateFrame()
		if !resp.More {
			return nil
		}
	}
}

// setTrustScores fills in this node's trust in each result's publisher.
func (s *Service) setTrustScores(rs []protocol.SearchResult) {
	for i := range rs {
		rs[i].TrustScore = s.trustScore(rs[i].SignedLesson.Signature.NodeID)
	}
}

// trustScore is this node's trust in a publisher, 0 for none.
func (s *Service) trustScore(nodeID string) float64 {
	if nodeID == s.selfS {
		return 1
	}
	if s.trust.Blocked(nodeID) {
		return 0
	}
	_, score, ok := s.trust.Path(nodeID)
	if !ok {
		return 0
	}
	return score
}

// emptyStats are the statistics of an empty corpus for pq, to add others'
// to.
func emptyStats(pq store.ParsedQuery) *protocol.SearchStats {
	st := &protocol.SearchStats{DocFreq: map[string]int64{}}
	for _, t := range store.QueryTerms(pq) {
		st.DocFreq[t] = 0
	}
	return st
}

// addStats adds more to st, starting from emptyStats(pq) when st is nil;
// with nothing to add it returns st as it is (nil stays nil).
func addStats(st *protocol.SearchStats, more []*protocol.SearchStats, pq store.ParsedQuery) *protocol.SearchStats {
	if len(more) == 0 {
		return st
	}
	if st == nil {
		st = emptyStats(pq)
	}
	st.MergeAll(more)
	return st
}

// statsSize bounds the encoded size of stats.
func statsSize(st *protocol.SearchStats) int { return st.EncodedSizeBound() }

// shrinkBudget is the budget a node gives the peers it forwards to.
func shrinkBudget(d time.Duration) time.Duration {
	return time.Duration(float64(d)*hopFactor) - hopMargin
}

// answerMargin is the time kept, out of a budget of d, to merge and send
// an answer. A forwarder's answer carries its whole subtree's: better to
// give up on one late peer than to be late with all of them.
func answerMargin(d time.Duration) time.Duration {
	return min(max(d/8, 2*time.Millisecond), 50*time.Millisecond)
}

// peers lists the connected peers to forward a search to: those with a
// trust path, not blocked, other than the ones in except, and not known to
// lack the search protocol.
func (s *Service) peers(except ...string) []peer.ID {
	var out []peer.ID
	for _, p := range s.host.Network().Peers() {
		id := s.idString(p)
		if p == s.self || slices.Contains(except, id) || s.trust.Blocked(id) {
			continue
		}
		if _, _, ok := s.trust.Path(id); !ok {
			continue
		}
		if !s.speaksSearch(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// speaksSearch is false only for a peer identify says lacks the protocol.
// Whether identify has answered is told by the agent version it records,
// not by an empty protocol list: a stream this node opened to the peer
// before then (a vouch, a sync) already put that one protocol there.
func (s *Service) speaksSearch(p peer.ID) bool {
	ps := s.host.Peerstore()
	if _, err := ps.Get(p, "AgentVersion"); err != nil {
		return true // not identified yet: try
	}
	ok, err := ps.SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolSearchLate), libp2pproto.ID(protocol.ProtocolSearch))
	return err != nil || len(ok) > 0
}

// mergeResults merges lists of results, each best first: it takes them in
// turn, one from each list, so every source's best come first, keeps one
// of each copy (byte for byte), and stops at max results or maxBytes of
// encoded lessons (cut is then true). Different copies of one lesson key
// are all kept: a forwarder verifies nothing, so the newest copy may be a
// forgery (with the genuine signature) that would otherwise shadow the
// genuine one; the requester verifies the copies newest first.
func mergeResults(lists [][]protocol.SearchResult, max, maxBytes int) (out []protocol.SearchResult, cut bool) {
	seed := maphash.MakeSeed()
	pos := map[uint64][]int{} // hash of a copy's bytes -> the copies taken with it, by index in out
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
			b := r.LessonBytes()
			if b == nil { // no lesson, or one that does not encode
				continue
			}
			h := maphash.Bytes(seed, b)
			if slices.ContainsFunc(pos[h], func(j int) bool { return bytes.Equal(out[j].LessonBytes(), b) }) {
				continue
			}
			if len(out) == max {
				return out, true
			}
			if total += size + 256; total > maxBytes {
				return out, true
			}
			pos[h] = append(pos[h], len(out))
			out = append(out, r)
		}
		if !more {
			return out, false
		}
	}
}
