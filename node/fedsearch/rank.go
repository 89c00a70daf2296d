package fedsearch

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

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
	copies []*protocol.SearchResult
	next   int // the copy to try next
	trust  float64
	path   []string
	score  float64
	rel    float64
	fresh  float64
}

// ranking ranks the candidates of one search and returns the best limit
// of them, verified. Cheap checks come first: revoked, untrusted and
// filtered-out lessons are dropped (and counted into res) before any
// signature is checked. Each lesson key is scored by its newest copy with
// BM25 under the statistics of all answering nodes (stats; those of the
// candidates themselves when no answer carried any), times trust and
// freshness. The keys are then taken best first and their copy verified: a
// copy that fails is counted invalid and the key falls back on its next
// newest copy, re-scored. So only the copies that could be returned are
// verified, and the result is exactly the best limit of the valid copies.
// Verifying stops at ctx's deadline; the answer is then marked truncated.
//
// The peers' results come decoded for relaying only (see fanOut): the
// candidates are keyed, admitted and scored from what is read of each
// copy in place (its key, publisher, publication time and searchable
// text), and a copy is decoded in full only when it is verified, so for
// about the limit of them rather than for every result. A query with
// filters or comparisons, or without statistics to score by, needs more
// of every lesson: then every copy is decoded first (eager).
type ranking struct {
	s        *Service
	pq       store.ParsedQuery
	stats    *protocol.SearchStats
	feats    *featureCache
	filters  *protocol.SearchFilters
	limit    int
	halfLife time.Duration
	res      *api.FedSearchResponse

	now     time.Time
	eager   bool
	bm25    map[*protocol.SearchResult]float64
	checked map[string]bool // signedIdentity -> valid: each distinct copy is verified once
}

func (rk *ranking) rank(ctx context.Context, lists [][]protocol.SearchResult) []api.FedSearchHit {
	rk.eager = rk.stats == nil || rk.stats.Docs == 0 || !rk.filters.Empty() || len(rk.pq.Comparisons) > 0
	cands, lessons := rk.candidates(ctx, lists)
	if rk.stats == nil || rk.stats.Docs == 0 {
		rk.stats = store.StatsOf(lessons, rk.pq)
	}
	rk.now = rk.s.now()
	rk.bm25 = scoreAll(store.NewScorer(rk.pq, rk.stats), rk.feats, cands)
	rk.checked = map[string]bool{}
	h := &candHeap{}
	for _, c := range cands {
		if len(c.copies) == 0 {
			continue
		}
		slices.SortStableFunc(c.copies, func(a, b *protocol.SearchResult) int {
			return cmp.Compare(publishedAt(b), publishedAt(a))
		})
		if rk.ready(c) {
			*h = append(*h, c)
		}
	}
	heap.Init(h)
	hits := []api.FedSearchHit{}
	for h.Len() > 0 && len(hits) < rk.limit {
		// Verifying is bounded by the search's deadline too: past it,
		// what is verified so far is the answer, marked truncated.
		if ctx.Err() != nil {
			rk.res.Truncated = true
			break
		}
		c := heap.Pop(h).(*candidate)
		r := c.copies[c.next]
		if !rk.verify(r) {
			rk.res.Invalid++
			c.next++
			if rk.ready(c) {
				heap.Push(h, c)
			}
			continue
		}
		hits = append(hits, api.FedSearchHit{Key: c.key, SignedLesson: r.SignedLesson, Relevance: c.rel, Trust: c.trust,
			Freshness: c.fresh, Score: c.score, Via: r.Via, TrustPath: c.path})
	}
	return hits
}

// candidates groups the results by lesson key, dropping (and counting)
// those revoked, untrusted or outside the filters. It returns the
// candidates and, when eager, every copy's lesson, for statistics.
func (rk *ranking) candidates(ctx context.Context, lists [][]protocol.SearchResult) ([]*candidate, []*protocol.Lesson) {
	byKey := map[string]*candidate{}
	var cands []*candidate
	var lessons []*protocol.Lesson
	for _, l := range lists {
		for i := range l {
			r := &l[i]
			if rk.eager && r.DecodeLesson() != nil {
				rk.res.Invalid++
				continue
			}
			key, _, ok := r.Lesson()
			if !ok {
				rk.res.Invalid++
				continue
			}
			c := byKey[key]
			if c == nil {
				c = rk.admit(ctx, key, r.Publisher())
				byKey[key] = c
				if c.trust < 0 {
					continue
				}
				cands = append(cands, c)
			} else if c.trust < 0 {
				rk.countDropped(ctx, key)
				continue
			}
			if rk.eager {
				if !rk.filters.Match(r.SignedLesson) {
					continue // a peer that ignored the filters
				}
				lessons = append(lessons, &r.SignedLesson.Lesson)
			}
			c.copies = append(c.copies, r)
		}
	}
	return cands, lessons
}

// admit makes the candidate of a key seen first: trust -1 (and counted)
// for a revoked lesson or an untrusted publisher.
func (rk *ranking) admit(ctx context.Context, key, publisher string) *candidate {
	c := &candidate{key: key, trust: 1}
	if rk.s.local.Revoked(ctx, key) {
		rk.res.Revoked++
		c.trust = -1
		return c
	}
	if publisher != rk.s.selfS {
		path, score, ok := rk.s.trust.Path(publisher)
		if !ok || rk.s.trust.Blocked(publisher) || score <= 0 {
			rk.res.Untrusted++
			c.trust = -1
			return c
		}
		c.trust, c.path = score, path
	}
	return c
}

// countDropped counts another copy of a key that was dropped.
func (rk *ranking) countDropped(ctx context.Context, key string) {
	if rk.s.local.Revoked(ctx, key) {
		rk.res.Revoked++
	} else {
		rk.res.Untrusted++
	}
}

// score sets c's score from its copy c.next; false if it does not match
// the query.
func (rk *ranking) score(c *candidate) bool {
	r := c.copies[c.next]
	s, ok := rk.bm25[r]
	if !ok {
		return false
	}
	c.rel = 1
	if len(rk.pq.Terms) > 0 || len(rk.pq.Phrases) > 0 {
		c.rel = store.Relevance(s)
	}
	c.fresh = freshness(rk.now, publishedAt(r), rk.halfLife)
	c.score = c.rel * c.trust * c.fresh
	return true
}

// freshness is 0.5^(age/halfLife), 1 when halfLife is 0.
func freshness(now time.Time, publishedAt int64, halfLife time.Duration) float64 {
	if halfLife <= 0 {
		return 1
	}
	if age := now.Sub(time.UnixMilli(publishedAt)); age > 0 {
		return math.Pow(0.5, float64(age)/float64(halfLife))
	}
	return 1
}

// publishedAt is the publication time of a result's lesson.
func publishedAt(r *protocol.SearchResult) int64 {
	_, at, _ := r.Lesson()
	return at
}

// verify decodes a copy in full if it was not, and checks its signature
// and that it is public, once per distinct copy.
func (rk *ranking) verify(r *protocol.SearchResult) bool {
	if r.DecodeLesson() != nil {
		return false
	}
	sl := r.SignedLesson
	id, err := signedIdentity(sl)
	if err != nil {
		return false
	}
	valid, done := rk.checked[id]
	if !done {
		valid = protocol.Verify(sl, protocol.VerifyOptions{Now: rk.now, AllowOld: true}) == nil && sl.Publication.Visibility == protocol.VisibilityPublic
		rk.checked[id] = valid
	}
	return valid
}

// ready advances c to its next copy that matches the query, verifying (and
// counting if invalid) the newer copies that do not match: a valid one
// means the lesson's current version does not match. It reports whether c
// has a copy to rank.
func (rk *ranking) ready(c *candidate) bool {
	for ; c.next < len(c.copies); c.next++ {
		if rk.score(c) {
			return true
		}
		if rk.verify(c.copies[c.next]) {
			return false
		}
		rk.res.Invalid++
	}
	return false
}

// scoreAll scores every copy of every candidate, in parallel: the text
// analysis it takes is most of the requester's work. Copies that do not
// match the query (or whose text does not read) are left out.
func scoreAll(sc *store.Scorer, feats *featureCache, cands []*candidate) map[*protocol.SearchResult]float64 {
	var all []*protocol.SearchResult
	for _, c := range cands {
		all = append(all, c.copies...)
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
					f, ok = sc.FeaturesOf(all[i].AppendSearchText)
				}
				if ok {
					var l *protocol.Lesson // read for comparisons only: decoded then (eager)
					if all[i].SignedLesson != nil {
						l = &all[i].SignedLesson.Lesson
					}
					scores[i], matched[i] = sc.ScoreFeatures(l, f)
				}
			}
		}()
	}
	wg.Wait()
	out := make(map[*protocol.SearchResult]float64, len(all))
	for i, r := range all {
		if matched[i] {
			out[r] = scores[i]
		}
	}
	return out
}

// featureCache holds the Features of the results analyzed so far, by
// their place in their answer's Results (which the ranking reads in place).
type featureCache struct {
	sc *store.Scorer // of the query, without statistics
	mu sync.Mutex
	m  map[*protocol.SearchResult]features
}

type features struct {
	f  store.Features
	ok bool // false: the text did not read, the copy cannot match
}

func newFeatureCache(sc *store.Scorer) *featureCache {
	return &featureCache{sc: sc, m: map[*protocol.SearchResult]features{}}
}

// analyze takes the Features of every result of resp, reading their text
// in place.
func (c *featureCache) analyze(resp *protocol.SearchResponse) {
	fs := make([]features, len(resp.Results))
	for i := range resp.Results {
		fs[i].f, fs[i].ok = c.sc.FeaturesOf(resp.Results[i].AppendSearchText)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range resp.Results {
		c.m[&resp.Results[i]] = fs[i]
	}
}

// get returns the Features of r; ok false if r was not analyzed, or its
// text did not read (then f.ok is false too).
func (c *featureCache) get(r *protocol.SearchResult) (f store.Features, ok bool) {
	if c == nil {
		return store.Features{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	x, seen := c.m[r]
	return x.f, seen && x.ok
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

// Rank scores hits against the query with BM25 under the statistics of the
// hits themselves (as one index holding exactly them would), then sorts
// them by relevance × trust × freshness, ties by key. Hits that do not
// match the query's words, phrases or comparisons are removed. Each hit's
// Trust must be set. It verifies nothing: the caller has.
func Rank(hits []api.FedSearchHit, pq store.ParsedQuery, halfLife time.Duration, now time.Time) []api.FedSearchHit {
	lessons := make([]*protocol.Lesson, len(hits))
	for i, h := range hits {
		lessons[i] = &h.SignedLesson.Lesson
	}
	sc := store.NewScorer(pq, store.StatsOf(lessons, pq))
	scored := len(pq.Terms) > 0 || len(pq.Phrases) > 0
	kept := hits[:0]
	for _, h := range hits {
		s, ok := sc.Score(&h.SignedLesson.Lesson)
		if !ok {
			continue
		}
		h.Relevance = 1
		if scored {
			h.Relevance = store.Relevance(s)
		}
		h.Freshness = freshness(now, h.SignedLesson.Publication.PublishedAt, halfLife)
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
