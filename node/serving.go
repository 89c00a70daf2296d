package node

import (
	"context"
	"fmt"
	"time"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// serving is the node's one serving policy: what it hands out to others,
// by federated search, by fetch, and on the public API. A node serves its
// own public publications as it signed them; a directory serves every
// verified public lesson it holds. An unlisted lesson is handed out only by
// its exact key; a private record never. A directory's retention cuts off
// what was published before it. It implements fedsearch.Local and
// directory.Local.
type serving struct{ n *Node }

// servesAll reports whether the node answers searches from every verified
// public lesson it holds (its own and the remote cache), as a directory
// does, rather than from its own public lessons only.
func (s serving) servesAll() bool { return s.n.cfg.Directory.Enabled }

func (s serving) origin() string {
	if s.servesAll() {
		return store.OriginAll
	}
	return store.OriginLocal
}

// RetentionCutoff is the oldest publishedAt served, Unix ms; 0 for any.
func (s serving) RetentionCutoff() int64 {
	d := s.n.cfg.Directory.RetentionDays
	if d <= 0 {
		return 0
	}
	return s.n.now().Add(-time.Duration(d) * 24 * time.Hour).UnixMilli()
}

// Revoked reports whether the node holds a revocation of key.
func (s serving) Revoked(ctx context.Context, key string) bool { return s.n.store.Revoked(ctx, key) }

// SearchStats are the BM25 statistics of what the node serves, for pq.
func (s serving) SearchStats(ctx context.Context, pq store.ParsedQuery) (*protocol.SearchStats, error) {
	return s.n.store.SearchStatsOf(ctx, pq, s.origin())
}

// PublicResults is PublicSearch without its more flag.
func (s serving) PublicResults(ctx context.Context, pq store.ParsedQuery, f *protocol.SearchFilters, limit int) ([]protocol.SearchResult, error) {
	out, _, err := s.PublicSearch(ctx, pq, f, limit)
	return out, err
}

// PublicSearch answers a search from what the node serves: public lessons
// only, as their publishers signed them, best first by the local index, at
// most limit, and whether more match.
//
// Every hit is checked here, whatever the index says: a remote lesson must
// be published public, an own record must have a public publication that
// is exactly the record as it is now (a private record has none; an edited
// one's new words were never shared). That check, not the index query, is
// what keeps private records out, so the index may be asked without a
// visibility filter first: a filter that matches nearly every document
// makes the index walk all of them, and a directory holds public lessons
// almost only. If that first answer is not enough to tell (hits that are
// not public crowd the top), the index is asked again, filtered. Nothing in
// the answer depends on what was not public: more counts public lessons
// only.
func (s serving) PublicSearch(ctx context.Context, pq store.ParsedQuery, f *protocol.SearchFilters, limit int) ([]protocol.SearchResult, bool, error) {
	limit = min(max(limit, 1), store.MaxSearchLimit)
	cutoff := s.RetentionCutoff()
	q := store.Query{Parsed: &pq, Origin: s.origin()}
	if f != nil {
		q.Types, q.Tags = f.Types, f.Tags
		if len(f.Nodes) == 1 {
			q.Publisher = f.Nodes[0]
		}
	}
	// Filters the index does not know (topics, since, several publishers,
	// retention) are applied to the hits: ask for as many as allowed.
	post := cutoff > 0 || f != nil && (len(f.Topics) > 0 || f.Since != 0 || len(f.Nodes) > 1)
	if !post {
		q.Limit = min(limit+1, store.MaxSearchLimit)
		res, err := s.n.store.Search(ctx, q)
		if err != nil {
			return nil, false, fmt.Errorf("search: %w", err)
		}
		results, skipped := s.publicHits(ctx, res.Hits, f, cutoff, limit+1)
		if skipped == 0 || len(results) > limit || len(res.Hits) < q.Limit {
			return results[:min(len(results), limit)], len(results) > limit, nil
		}
	}
	q.Visibility = []string{protocol.VisibilityPublic}
	q.Limit = min(limit+1, store.MaxSearchLimit)
	if post {
		q.Limit = store.MaxSearchLimit
	}
	res, err := s.n.store.Search(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("search: %w", err)
	}
	results, _ := s.publicHits(ctx, res.Hits, f, cutoff, limit+1)
	return results[:min(len(results), limit)], len(results) > limit || res.Total > len(res.Hits), nil
}

// publicHits turns store hits into results: public lessons only, passing
// the filters and the retention cutoff, at most max. skipped counts the
// hits left out.
func (s serving) publicHits(ctx context.Context, hits []store.Hit, f *protocol.SearchFilters, cutoff int64, max int) (out []protocol.SearchResult, skipped int) {
	for _, h := range hits {
		if len(out) == max {
			break
		}
		sl, enc := h.Signed, h.Encoded
		if h.Key == "" {
			var err error
			// The index holds the record as it is now: it must still be
			// public (the first pass asks without a visibility filter)
			// and exactly what was published, or its words were never
			// shared. A record never published (a private one) is not
			// shared at all.
			if h.Record == nil || h.Record.Visibility != protocol.VisibilityPublic {
				skipped++
				continue
			}
			if sl, enc, err = s.n.store.SharedPublicationOf(ctx, h); err != nil {
				skipped++
				continue
			}
		}
		if sl == nil || sl.Publication.Visibility != protocol.VisibilityPublic || !f.Match(sl) || sl.Publication.PublishedAt < cutoff {
			skipped++
			continue
		}
		r := protocol.SearchResult{SignedLesson: sl, Score: h.Score}
		if enc != nil {
			r.UseEncoding(enc)
		}
		out = append(out, r)
	}
	return out, skipped
}

// Fetchable finds what may be handed out for key: a tombstone first, then
// this node's own publication, then a cached remote lesson; public or
// unlisted only. A private record has no publication and so is unknown
// here; so is, here, a lesson published encrypted (FetchableEncrypted).
func (s serving) Fetchable(ctx context.Context, key string) (*protocol.SignedLesson, *protocol.Revocation, error) {
	sl, el, rev, err := s.published(ctx, key)
	if el != nil {
		return nil, nil, fmt.Errorf("%w: %s", protocol.ErrUnknownLesson, key)
	}
	return sl, rev, err
}

// FetchableEncrypted is Fetchable for a lesson published encrypted: its
// EncryptedLesson, the ciphertext anyone may hold, public or unlisted;
// else an error wrapping protocol.ErrUnknownLesson.
func (s serving) FetchableEncrypted(ctx context.Context, key string) (*protocol.EncryptedLesson, error) {
	_, el, _, err := s.published(ctx, key)
	if err == nil && el == nil {
		err = fmt.Errorf("%w: %s", protocol.ErrUnknownLesson, key)
	}
	return el, err
}

// published finds what may be handed out for key, in the form it is held:
// a tombstone first, then this node's own publication (signed or
// encrypted), then a cached remote lesson (signed or encrypted); public or
// unlisted only.
func (s serving) published(ctx context.Context, key string) (*protocol.SignedLesson, *protocol.EncryptedLesson, *protocol.Revocation, error) {
	if rev, err := s.n.store.Tombstone(ctx, key); err == nil {
		return nil, nil, rev, nil
	}
	lessonID, nodeID, err := protocol.ParseKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	shared := func(p *protocol.Publication) bool {
		return p.Visibility == protocol.VisibilityPublic || p.Visibility == protocol.VisibilityUnlisted
	}
	if s.n.store.Encrypted(key) {
		var el *protocol.EncryptedLesson
		if nodeID == s.n.id.String() {
			el, err = s.n.store.EncryptedPublication(ctx, lessonID)
		} else {
			el, err = s.n.store.RemoteEncrypted(ctx, key)
		}
		if err == nil && shared(&el.Publication) {
			return nil, el, nil, nil
		}
		return nil, nil, nil, fmt.Errorf("%w: %s", protocol.ErrUnknownLesson, key)
	}
	var sl *protocol.SignedLesson
	if nodeID == s.n.id.String() {
		sl, err = s.n.store.Publication(ctx, lessonID)
	} else {
		sl, err = s.n.store.Remote(ctx, key)
	}
	if err != nil || !shared(&sl.Publication) {
		return nil, nil, nil, fmt.Errorf("%w: %s", protocol.ErrUnknownLesson, key)
	}
	return sl, nil, nil, nil
}
