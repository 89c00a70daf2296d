package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	"github.com/meshprotocol/mesh/protocol"
)

// rankVocab is a vocabulary whose words are drawn with Zipf-like
// frequencies: a few in most records, most in a few.
func rankVocab() []string {
	var v []string
	for i := range 300 {
		v = append(v, fmt.Sprintf("w%cq%d", 'a'+i%26, i))
	}
	return v
}

func rankText(rng *rand.Rand, vocab []string, words int) string {
	var b strings.Builder
	for range words {
		// Word i with probability about 1/(i+1).
		i := int(float64(len(vocab)) * rng.Float64() * rng.Float64() * rng.Float64())
		b.WriteString(vocab[i])
		b.WriteByte(' ')
	}
	return b.String()
}

// rankTerms must return what bleve returns for the same words: the same
// records in the same order, the same scores to the bit, the same Total,
// over own and remote lessons, deleted and replaced records (obsolete
// documents in older segments), records expired and not yet swept,
// repeated words, words in no record, stop words, every limit, with and
// without remote lessons excluded.
func TestRankTermsMatchesBleve(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	me, p := newPeer(t, 1), newPeer(t, 2)
	s := openFed(t, "", clk, me.id)
	rng := rand.New(rand.NewPCG(7, 8))
	vocab := rankVocab()
	var ids []string
	for i := range 1200 {
		l := lesson(rankText(rng, vocab, 1+rng.IntN(5)), rankText(rng, vocab, 2+rng.IntN(80)))
		if i%7 == 0 {
			l.Tags = []string{vocab[rng.IntN(len(vocab))]}
		}
		ids = append(ids, mustPut(t, s, l))
		if i%100 == 99 {
			for range 10 { // delete and replace some, leaving obsolete documents
				id := ids[rng.IntN(len(ids))]
				if rng.IntN(2) == 0 {
					if _, err := s.Delete(ctx, id); err != nil {
						t.Fatal(err)
					}
					continue
				}
				r := lesson(rankText(rng, vocab, 3), rankText(rng, vocab, 10))
				r.ID = id
				mustPut(t, s, r)
			}
		}
	}
	// Fields that are one word over and over: a term's bound is reached
	// when a field holds nothing else.
	for i := range 20 {
		w := vocab[i*7]
		mustPut(t, s, lesson(w, strings.Repeat(w+" ", 1+i%9)))
	}
	// Records with an expiry: a third will have expired, unswept (the
	// store sweeps never here), when the searches run.
	for i := range 150 {
		l := lesson(rankText(rng, vocab, 2), rankText(rng, vocab, 2+rng.IntN(30)))
		l.ExpiresAt = clk.MS() + int64(1000*(1+i%3))
		mustPut(t, s, l)
	}
	for i := range 300 {
		mustPutRemote(t, s, p.sign(t, fmt.Sprintf("r%d", i), rankText(rng, vocab, 2), rankText(rng, vocab, 2+rng.IntN(40)), "public", clk.MS()))
	}

	clk.Add(1500 * time.Millisecond)
	// Without filters, every match is a candidate unless skipped; a
	// filter's rejects are candidates that do not match.
	var candidates, matches uint64
	count := func(c, m uint64) { candidates, matches = candidates+c, matches+m }
	t.Cleanup(func() { rankVisited = nil })
	ranked := 0
	for qi := range 400 {
		var words []string
		for range 1 + rng.IntN(5) {
			words = append(words, vocab[int(float64(len(vocab))*rng.Float64()*rng.Float64())])
		}
		switch qi % 10 {
		case 3:
			words = append(words, "zzznowhere")
		case 5:
			words = append(words, "the", words[0])
		}
		q := Query{Text: strings.Join(words, " "), Limit: []int{1, 3, 10, 50}[qi%4]}
		if qi%3 == 0 {
			q.Origin = OriginAll
		}
		switch qi % 7 { // filters on keyword fields
		case 1:
			q.Type = protocol.TypeLesson
		case 2:
			q.Tags = []string{vocab[rng.IntN(8)]}
		case 4:
			q.Types = []string{protocol.TypeLesson, "checkpoint"}
			q.Visibility = []string{"public", "private"}
		case 6:
			q.Origin, q.Publisher = OriginRemote, p.id
		}
		rankVisited = nil
		if q.Type == "" && q.Types == nil && q.Tags == nil && q.Publisher == "" {
			rankVisited = count
		}
		got, want, ok := bothWays(t, s, q)
		if !ok {
			t.Fatalf("%+v refused", q)
		}
		if got.Total != want.Total || len(got.Hits) != len(want.Hits) {
			t.Fatalf("%+v: total %d, %d hits; bleve: total %d, %d hits", q, got.Total, len(got.Hits), want.Total, len(want.Hits))
		}
		for i := range got.Hits {
			g, w := got.Hits[i], want.Hits[i]
			if g.ID != w.ID || g.Key != w.Key || g.Score != w.Score {
				t.Fatalf("%+v: hit %d is %s %s %v; bleve: %s %s %v", q, i, g.ID, g.Key, g.Score, w.ID, w.Key, w.Score)
			}
		}
		if len(got.Hits) > 0 {
			ranked++
		}
	}
	if ranked < 300 {
		t.Fatalf("only %d of 400 queries found anything", ranked)
	}
	// MaxScore skipped documents (without skipping, every match is a
	// candidate, and so is every remote lesson), or this test does not
	// test skipping.
	t.Logf("rankTerms took %d candidates for %d matching documents", candidates, matches)
	if candidates == 0 || candidates >= matches {
		t.Fatalf("rankTerms took %d candidates for %d matching documents: it skipped none", candidates, matches)
	}

	// The raw scores, before Search maps them into (0, 1], and proof that
	// rankTerms itself answered.
	s.noRankTerms = false
	terms := []string{"wbq1", "waq0", "wzq25"}
	var should []query.Query
	for _, term := range terms {
		tq := query.NewTermQuery(term)
		tq.SetField(fieldText)
		should = append(should, tq)
	}
	bq := query.NewBooleanQuery(nil, should, []query.Query{expiredQuery(clk.MS()), term(fieldOrigin, originRemote)})
	var res, bres *bleve.SearchResult
	for try := 0; ; try++ { // on one snapshot: see bothWays
		before := rootEpoch(s)
		var ok bool
		var err error
		res, ok, err = rankTerms(ctx, s.idx, terms, exclusions{remote: true, expiry: true, now: clk.MS()}, 10)
		if err != nil || !ok {
			t.Fatalf("rankTerms: ok %v, %v", ok, err)
		}
		if bres, err = s.idx.SearchInContext(ctx, bleve.NewSearchRequestOptions(bq, 10, 0, false)); err != nil {
			t.Fatal(err)
		}
		if rootEpoch(s) == before {
			break
		}
		if try == 100 {
			t.Fatal("the index changed under 100 tries")
		}
	}
	if res.Total != bres.Total || len(res.Hits) != len(bres.Hits) || len(res.Hits) != 10 {
		t.Fatalf("rankTerms: total %d, %d hits; bleve: total %d, %d hits", res.Total, len(res.Hits), bres.Total, len(bres.Hits))
	}
	for i := range res.Hits {
		if res.Hits[i].ID != bres.Hits[i].ID || res.Hits[i].Score != bres.Hits[i].Score {
			t.Fatalf("hit %d: %s %v; bleve %s %v", i, res.Hits[i].ID, res.Hits[i].Score, bres.Hits[i].ID, bres.Hits[i].Score)
		}
	}
}

// bothWays runs q ranked by rankTerms and then through bleve alone, on
// the same index snapshot: bleve's BM25 takes its mean field length from
// the sum of the segments' distinct terms, which a background merge
// between the two searches changes (a 435-document index measured 326,
// 374 and 465 in three snapshots), and with it every score. So both run
// again until the index's root epoch is the same before and after. ok
// is false if both refused q; one refusing alone fails the test.
func bothWays(t testing.TB, s *Store, q Query) (got, want *SearchResult, ok bool) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		before := rootEpoch(s)
		s.noRankTerms = false
		g, gerr := s.Search(ctx, q)
		s.noRankTerms = true
		w, werr := s.Search(ctx, q)
		s.noRankTerms = false
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%+v: error %v; bleve: %v", q, gerr, werr)
		}
		if rootEpoch(s) == before {
			return g, w, gerr == nil
		}
	}
	t.Fatalf("%+v: the index changed under 100 tries", q)
	return nil, nil, false
}

// rootEpoch is the epoch of the index's current snapshot.
func rootEpoch(s *Store) uint64 {
	m, _ := s.idx.StatsMap()["index"].(map[string]any)
	e, _ := m["CurRootEpoch"].(uint64)
	return e
}

// BenchmarkSearchWords compares a search of words alone ranked by
// rankTerms with the same search through bleve's searchers, over 20,000
// records.
func BenchmarkSearchWords(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, "", newClock())
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := rankVocab()
	var batch []*protocol.Lesson
	for i := range 20000 {
		batch = append(batch, lesson(rankText(rng, vocab, 4), rankText(rng, vocab, 60)))
		if len(batch) == 1000 || i == 19999 {
			if _, err := s.PutBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	queries := make([]string, 64)
	for i := range queries {
		queries[i] = fmt.Sprintf("%s %s %s", vocab[rng.IntN(20)], vocab[20+rng.IntN(100)], vocab[100+rng.IntN(200)])
	}
	for _, bleveOnly := range []bool{false, true} {
		name := map[bool]string{false: "rankTerms", true: "bleve"}[bleveOnly]
		b.Run(name, func(b *testing.B) {
			s.noRankTerms = bleveOnly
			for i := 0; b.Loop(); i++ {
				if _, err := s.Search(ctx, Query{Text: queries[i%len(queries)]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzRankTerms searches a small store with any text and limit, ranked by
// rankTerms and by bleve: the answers must be the same.
func FuzzRankTerms(f *testing.F) {
	clk := newClock()
	me, p := newPeer(f, 1), newPeer(f, 2)
	s := openFed(f, "", clk, me.id)
	rng := rand.New(rand.NewPCG(3, 4))
	vocab := rankVocab()
	for i := range 300 {
		l := lesson(rankText(rng, vocab, 2), rankText(rng, vocab, 1+rng.IntN(30)))
		if i%3 == 0 {
			l.Tags, l.Visibility = []string{"waq0"}, "public"
		}
		mustPut(f, s, l)
		if i%5 == 0 {
			mustPutRemote(f, s, p.sign(f, fmt.Sprintf("r%d", i), rankText(rng, vocab, 2), rankText(rng, vocab, 8), "public", clk.MS()))
		}
		if i%4 == 0 { // expired by the searches below, or not
			l = lesson(rankText(rng, vocab, 2), rankText(rng, vocab, 6))
			l.ExpiresAt = clk.MS() + int64(1000*(1+i%2))
			mustPut(f, s, l)
		}
	}
	clk.Add(1500 * time.Millisecond)
	f.Add("waq0 wbq1", uint8(3), false, uint8(0))
	f.Add("wcq2 wcq2 the zzz", uint8(1), true, uint8(1))
	f.Add("waq0 wbq1 wcq2 wdq3 weq4 wfq5 wgq6 whq7 wiq8 wjq9 wkq10", uint8(10), false, uint8(2))
	f.Add("wbq1 wdq3", uint8(5), true, uint8(3))
	f.Fuzz(func(t *testing.T, text string, limit uint8, all bool, filter uint8) {
		// Past ten words both answers come from bleve's heap disjunction,
		// whose sums follow the segments' layout: a background merge
		// between the two searches may move a score's last bit.
		words := map[string]bool{}
		for _, tok := range s.an.text.Analyze([]byte(text)) {
			words[string(tok.Term)] = true
		}
		if len(words) > searcher.DisjunctionHeapTakeover {
			return
		}
		q := Query{Text: text, Limit: int(limit%60) + 1}
		if all {
			q.Origin = OriginAll
		}
		switch filter % 4 {
		case 1:
			q.Type = protocol.TypeLesson
		case 2:
			q.Tags = []string{"waq0"}
		case 3:
			q.Visibility = []string{"public"}
		}
		got, want, ok := bothWays(t, s, q)
		if !ok {
			return // an invalid query: both refused it
		}
		if got.Total != want.Total || len(got.Hits) != len(want.Hits) {
			t.Fatalf("%q: total %d, %d hits; bleve: total %d, %d hits", text, got.Total, len(got.Hits), want.Total, len(want.Hits))
		}
		for i := range got.Hits {
			if g, w := got.Hits[i], want.Hits[i]; g.ID != w.ID || g.Key != w.Key || g.Score != w.Score {
				t.Fatalf("%q: hit %d is %s %s %v; bleve: %s %s %v", text, i, g.ID, g.Key, g.Score, w.ID, w.Key, w.Score)
			}
		}
	})
}

// IndexSegments counts the index's segments: none in an empty store's,
// at least one once something is indexed.
func TestIndexSegments(t *testing.T) {
	s := openStore(t, "", newClock())
	before := s.IndexSegments()
	mustPut(t, s, lesson("one", "record"))
	s.flushIndex()
	if after := s.IndexSegments(); after < 1 || after < before {
		t.Fatalf("IndexSegments: %d before a write, %d after", before, after)
	}
	_ = s.Close()
	if n := s.IndexSegments(); n != 0 {
		t.Fatalf("IndexSegments after Close = %d", n)
	}
}

// An in-memory store's index (scorch without a directory) is ranked by
// rankTerms too: federated-search leaves in tests and benchmarks use one.
func TestRankTermsInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	mustPut(t, s, lesson("gossip mesh", "the mesh forwards gossip"))
	mustPut(t, s, lesson("gossip only", "nothing else here"))
	s.flushIndex()
	res, ok, err := rankTerms(ctx, s.idx, []string{"gossip", "mesh"}, exclusions{remote: true}, 10)
	if err != nil || !ok || res.Total != 2 || len(res.Hits) != 2 {
		t.Fatalf("rankTerms in memory: ok %v, %+v, %v", ok, res, err)
	}
}

// Filters on keyword fields (type, tags, visibility, project, agent,
// publisher) are ranked by rankTerms; dates, IDs, comparisons and
// phrases by bleve. Both find what they should, and leave out what
// expired.
func TestRankTermsFilters(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	a := mustPut(t, s, lesson("gossip mesh", "the mesh forwards gossip", "net"))
	mustPut(t, s, lesson("gossip only", "nothing else here"))
	ranked := false
	rankVisited = func(uint64, uint64) { ranked = true }
	t.Cleanup(func() { rankVisited = nil })
	for _, c := range []struct {
		q      Query
		ranked bool
	}{
		{Query{Text: "gossip", Tags: []string{"net"}}, true},
		{Query{Text: "gossip", Type: "lesson", Tags: []string{"net"}, Visibility: []string{"private", "public"}}, true},
		{Query{Text: "gossip", Tags: []string{"net"}, Since: clk.MS() - 1000}, false},
		{Query{Text: "gossip", Tags: []string{"net"}, IDs: []string{a}}, false},
		{Query{Text: `"mesh forwards" gossip`, Tags: []string{"net"}}, false},
		{Query{Text: "gossip mesh", Project: "none"}, true},
	} {
		ranked = false
		res, err := s.Search(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if ranked != c.ranked {
			t.Errorf("%+v: ranked by rankTerms %v, want %v", c.q, ranked, c.ranked)
		}
		want := 1
		if c.q.Project != "" {
			want = 0
		}
		if len(res.Hits) != want || res.Total != want || want == 1 && res.Hits[0].ID != a {
			t.Errorf("%+v: %d hits, total %d, want %d", c.q, len(res.Hits), res.Total, want)
		}
	}
	l := lesson("gossip soon gone", "expiring gossip")
	l.ExpiresAt = clk.MS() + 1000
	mustPut(t, s, l)
	clk.Add(2 * time.Second)
	ranked = false
	res, err := s.Search(ctx, Query{Text: "gossip"})
	if err != nil || !ranked || len(res.Hits) != 2 || res.Total != 2 {
		t.Fatalf("after expiry: ranked by rankTerms %v, %+v, %v", ranked, res, err)
	}
}

// Searches ranked by rankTerms while records are written, replaced and
// deleted: each search reads one snapshot, and the race detector watches.
func TestRankTermsConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", newClock())
	vocab := rankVocab()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var ids []string
			for i := range 150 {
				l := lesson(rankText(rng, vocab, 2), rankText(rng, vocab, 10))
				if i%5 == 4 && len(ids) > 0 {
					l.ID = ids[rng.IntN(len(ids))] // a replacement
				}
				id, _, err := s.Put(ctx, l)
				if err != nil {
					errs <- err
					return
				}
				ids = append(ids, id)
				if i%7 == 6 {
					if _, err := s.Delete(ctx, ids[rng.IntN(len(ids))]); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 10))
			for range 150 {
				q := Query{Text: vocab[rng.IntN(20)] + " " + vocab[rng.IntN(100)], Limit: 5}
				res, err := s.Search(ctx, q)
				if err != nil {
					errs <- err
					return
				}
				if res.Total < len(res.Hits) || len(res.Hits) > 5 {
					errs <- fmt.Errorf("%q: %d hits of %d", q.Text, len(res.Hits), res.Total)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
