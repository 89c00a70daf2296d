package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

var statsWords = strings.Fields("cargo build parallel crash memory sensor humidity drift borrow checker clone lifetime " +
	"kernel panic swap disk cache evict page fault network socket timeout retry backoff queue worker thread lock")

// publishFake stores a record and a public publication of it (with a
// fake signature: the store does not verify) and returns the lesson.
func publishFake(t *testing.T, s *Store, id, title, content, visibility string) *protocol.Lesson {
	t.Helper()
	ctx := context.Background()
	mustPut(t, s, &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: title, Content: content})
	rec, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sl := &protocol.SignedLesson{Lesson: *rec, Publication: protocol.Publication{Visibility: visibility, PublishedAt: 1},
		Signature: protocol.Signature{Algorithm: "ed25519", NodeID: "node", PublicKey: "key", Timestamp: 1, Sig: "sig"}}
	if err := s.PutPublication(ctx, sl); err != nil {
		t.Fatal(err)
	}
	return &sl.Lesson
}

// TestScorerMatchesCentralIndex: the statistics of three stores, added up,
// let Scorer score every lesson exactly (bit for bit) as one store holding
// all of them in one index scores it; records that are not public or not
// published do not count.
func TestScorerMatchesCentralIndex(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = statsWords[rng.IntN(len(statsWords))]
		}
		return strings.Join(w, " ")
	}
	var all []*protocol.Lesson
	nodes := make([]*Store, 3)
	for i := range nodes {
		nodes[i] = openStore(t, "", newClock())
		for j := range 5 + 10*i {
			l := publishFake(t, nodes[i], fmt.Sprintf("n%dl%d", i, j), text(2), text(3+rng.IntN(40)), protocol.VisibilityPublic)
			all = append(all, l)
		}
	}
	// Not part of the public corpus: a private record, a public record never
	// published, an unlisted publication.
	mustPut(t, nodes[0], &protocol.Lesson{ID: "private", Type: "lesson", Content: "cargo cargo cargo secret"})
	mustPut(t, nodes[0], &protocol.Lesson{ID: "unpublished", Type: "lesson", Content: "cargo build", Visibility: "public"})
	publishFake(t, nodes[1], "unlisted", "cargo", "cargo build by link", protocol.VisibilityUnlisted)

	central := openStore(t, "", newClock())
	var recs []*protocol.Lesson
	byID := map[string]*protocol.Lesson{}
	for _, l := range all {
		c := l.Clone()
		c.Visibility = protocol.VisibilityPublic
		recs = append(recs, c)
		byID[l.ID] = l
	}
	if _, err := central.PutBatch(ctx, recs); err != nil { // one batch: one segment
		t.Fatal(err)
	}

	for _, q := range []string{"cargo build", "sensor humidity drift", "memory", "kernel panic swap disk", "lock", "cargo build parallel crash memory"} {
		pq, err := ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		var sum *protocol.SearchStats
		for _, n := range nodes {
			st, err := n.SearchStats(ctx, q, OriginLocal)
			if err != nil {
				t.Fatal(err)
			}
			if sum == nil {
				sum = st.Clone()
			} else {
				sum.Merge(st)
			}
		}
		if sum.Docs != int64(len(all)) {
			t.Fatalf("%q: %d documents in the stats, want the %d published public lessons", q, sum.Docs, len(all))
		}
		sc := NewScorer(pq, sum)
		res, err := central.Search(ctx, Query{Text: q, Limit: MaxSearchLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) == 0 {
			t.Fatalf("%q: no hits", q)
		}
		matches := 0
		for _, l := range all {
			if _, ok := sc.Score(l); ok {
				matches++
			}
		}
		if matches != len(res.Hits) {
			t.Errorf("%q: scorer matches %d lessons, the central index %d", q, matches, len(res.Hits))
		}
		for _, h := range res.Hits {
			s, ok := sc.Score(byID[h.ID])
			if !ok || Relevance(s) != h.Score {
				t.Errorf("%q: %s scores %v (match %v), the central index %v", q, h.ID, Relevance(s), ok, h.Score)
			}
			// The same from the text alone, as a requester reads it.
			f, read := sc.FeaturesOf(func(b []byte) ([]byte, bool) { return append(b, indexedText(byID[h.ID])...), true })
			if s2, ok := sc.ScoreFeatures(nil, f); !read || !ok || s2 != s {
				t.Errorf("%q: %s scores %v (match %v) from its text, %v from the lesson", q, h.ID, s2, ok, s)
			}
		}
		if _, read := sc.FeaturesOf(func(b []byte) ([]byte, bool) { return append(b, "cargo"...), false }); read {
			t.Errorf("%q: features of a text that did not read", q)
		}
	}
}

// TestSearchStatsCache: the statistics follow the store's writes, and bad
// input is refused.
func TestSearchStatsCache(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", newClock())
	publishFake(t, s, "a", "cargo", "cargo build crash", protocol.VisibilityPublic)
	st, err := s.SearchStats(ctx, "cargo crashes", OriginLocal)
	if err != nil || st.Docs != 1 || st.DocFreq["cargo"] != 1 || st.DocFreq["crash"] != 1 || len(st.Vocab) != 3 || st.Tokens != 4 {
		t.Fatalf("%+v %v", st, err)
	}
	publishFake(t, s, "b", "memory", "out of memory", protocol.VisibilityPublic)
	if err := s.RefreshSearchStats(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = s.SearchStats(ctx, "cargo crashes", OriginAll)
	if err != nil || st.Docs != 2 || st.DocFreq["cargo"] != 1 || len(st.Vocab) != 4 {
		t.Fatalf("after a publication: %+v %v", st, err)
	}
	if _, err := s.SearchStats(ctx, "x", "remote"); err == nil {
		t.Fatal("origin remote accepted")
	}
	if _, err := s.SearchStats(ctx, `"unterminated`, ""); err == nil {
		t.Fatal("bad query accepted")
	}
}

// TestSearchStatsServedStaleWhileRefreshing: after a write, a search is
// answered from the cached statistics while they are young, without a
// pass over the corpus on its path; RefreshSearchStats makes them exact;
// and once they are older than the max age a stale answer starts a
// background pass, after which they are exact without anyone asking.
func TestSearchStatsServedStaleWhileRefreshing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", newClock())
	s.SetStatsMaxAge(time.Hour)
	publishFake(t, s, "a", "cargo", "cargo build crash", protocol.VisibilityPublic)
	st, err := s.SearchStats(ctx, "cargo", OriginLocal)
	if err != nil || st.Docs != 1 {
		t.Fatalf("first stats (computed, no cache yet): %+v %v", st, err)
	}
	publishFake(t, s, "b", "cargo", "cargo again", protocol.VisibilityPublic)
	if st, err = s.SearchStats(ctx, "cargo", OriginLocal); err != nil || st.Docs != 1 {
		t.Fatalf("young cached stats after a write: %+v %v, want the cached 1 document", st, err)
	}
	if err := s.RefreshSearchStats(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err = s.SearchStats(ctx, "cargo", OriginLocal); err != nil || st.Docs != 2 || st.DocFreq["cargo"] != 2 {
		t.Fatalf("after RefreshSearchStats: %+v %v", st, err)
	}
	// Old enough: the next search starts a background pass.
	s.SetStatsMaxAge(time.Nanosecond)
	publishFake(t, s, "c", "cargo", "cargo three", protocol.VisibilityPublic)
	fresh := false
	for i := 0; i < 2000 && !fresh; i++ {
		st, err = s.SearchStats(ctx, "cargo", OriginLocal)
		if err != nil {
			t.Fatal(err)
		}
		fresh = st.Docs == 3
		if !fresh {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !fresh {
		t.Fatalf("the stats never caught up with the write: %+v", st)
	}
}
