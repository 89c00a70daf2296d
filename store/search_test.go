package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// TestSearchFeatures is a sanity test of every search feature on a small
// store.
func TestSearchFeatures(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	t0 := clk.MS()

	put := func(rec *protocol.Lesson) string {
		t.Helper()
		id := mustPut(t, s, rec)
		clk.Add(time.Minute) // distinct created_at, in put order
		return id
	}
	retry := put(&protocol.Lesson{ID: "retry", Type: "lesson", Title: "Retry with exponential backoff",
		Content: "When the upstream API rate-limits, retry with exponential backoff and jitter.",
		Tags:    []string{"http", "resilience"}, Project: "mesh", Agent: "claude", Visibility: "public"})
	cache := put(&protocol.Lesson{ID: "cache", Type: "lesson", Title: "Cache invalidation",
		Content: "Invalidate the cache when the upstream record changes.",
		Tags:    []string{"cache"}, Project: "mesh", Agent: "gpt"})
	snippet := put(&protocol.Lesson{ID: "snip", Type: "snippet", Title: "Backoff helper",
		Content: "func backoff(attempt int) time.Duration { return time.Second << attempt }",
		Tags:    []string{"go", "http"}, Project: "other", Agent: "claude", Language: "go", StartLine: 10, EndLine: 12,
		Visibility: "unlisted"})
	humid := put(&protocol.Lesson{ID: "reading-1", Type: "reading", Title: "Living room sensor",
		Content: "humidity reading from the living room",
		Extra:   map[string]json.RawMessage{"humidity": json.RawMessage("72.5"), "temp": json.RawMessage("21")}})
	dry := put(&protocol.Lesson{ID: "reading-2", Type: "reading", Title: "Cellar sensor",
		Content: "humidity reading from the cellar",
		Extra:   map[string]json.RawMessage{"humidity": json.RawMessage("40"), "temp": json.RawMessage("12.5")}})
	soon := put(&protocol.Lesson{ID: "ephemeral", Type: "lesson", Title: "Temporary backoff note",
		Content: "backoff backoff backoff", ExpiresAt: clk.MS() + int64(time.Hour/time.Millisecond)})

	tests := []struct {
		name string
		q    Query
		want []string // in order; nil means "exactly none"
		set  bool     // compare as a set
	}{
		{"one word", Query{Text: "jitter"}, []string{retry}, false},
		{"stemmed word", Query{Text: "invalidating"}, []string{cache}, false},
		{"words are OR'ed", Query{Text: "jitter invalidate"}, []string{retry, cache}, true},
		{"phrase", Query{Text: `"exponential backoff"`}, []string{retry}, false},
		{"phrase order matters", Query{Text: `"backoff exponential"`}, nil, false},
		{"phrase and word", Query{Text: `"the cache" upstream`}, []string{cache}, false},
		{"type", Query{Text: "backoff", Type: "snippet"}, []string{snippet}, false},
		{"types", Query{Text: "backoff", Types: []string{"snippet", "lesson"}}, []string{retry, snippet, soon}, true},
		{"tags all required", Query{Text: "backoff", Tags: []string{"http", "go"}}, []string{snippet}, false},
		{"tag", Query{Text: "backoff", Tags: []string{"http"}}, []string{retry, snippet}, true},
		{"project", Query{Text: "upstream", Project: "mesh"}, []string{retry, cache}, true},
		{"agent", Query{Text: "backoff", Agent: "claude"}, []string{retry, snippet}, true},
		{"visibility", Query{Text: "backoff", Visibility: []string{"public"}}, []string{retry}, false},
		{"visibility private default", Query{Text: "upstream", Visibility: []string{"private"}}, []string{cache}, false},
		{"since", Query{Text: "backoff", Since: t0 + 60_000}, []string{snippet, soon}, true},
		{"until", Query{Text: "backoff", Until: t0 + 60_000}, []string{retry}, false},
		{"since and until", Query{Text: "upstream backoff", Since: t0 + 60_000, Until: t0 + 120_000}, []string{cache, snippet}, true},
		{"comparison", Query{Text: "humidity > 60"}, []string{humid}, false},
		{"comparison percent", Query{Text: "humidity > 60%"}, []string{humid}, false},
		{"comparison no space", Query{Text: "temp<=20.5"}, []string{dry}, false},
		{"comparison equal", Query{Text: "temp = 21"}, []string{humid}, false},
		{"comparison and word", Query{Text: "cellar humidity < 50"}, []string{dry}, false},
		{"comparison typed field", Query{Text: "start_line >= 10 end_line < 13"}, []string{snippet}, false},
		{"comparison created_at", Query{Text: "created_at < " + itoa(t0+1), Type: "lesson"}, []string{retry}, false},
		{"comparison missing field", Query{Text: "pressure > 1"}, nil, false},
		{"filters only, newest first", Query{Type: "reading"}, []string{dry, humid}, false},
		{"limit", Query{Type: "lesson", Limit: 2}, []string{soon, cache}, false},
		{"stop words only", Query{Text: "the of and"}, nil, false},
		{"unknown word", Query{Text: "xylophone"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := searchIDs(t, s, tc.q)
			want := tc.want
			if tc.set {
				slices.Sort(got)
				want = slices.Clone(want)
				slices.Sort(want)
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}

	t.Run("scores", func(t *testing.T) {
		res, err := s.Search(ctx, Query{Text: "backoff jitter"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) < 2 || res.Total != len(res.Hits) {
			t.Fatalf("hits %d total %d", len(res.Hits), res.Total)
		}
		if res.Hits[0].ID != retry {
			t.Errorf("best hit %s, want %s (matches both words)", res.Hits[0].ID, retry)
		}
		for i, h := range res.Hits {
			if h.Score <= 0 || h.Score > 1 {
				t.Errorf("hit %d score %v outside (0,1]", i, h.Score)
			}
			if i > 0 && h.Score > res.Hits[i-1].Score {
				t.Errorf("hits not sorted by score")
			}
			if h.Record == nil || h.Record.ID != h.ID {
				t.Errorf("hit %d record %+v", i, h.Record)
			}
		}
		// MinScore between the best and the worst hit drops the worst.
		min := (res.Hits[0].Score + res.Hits[len(res.Hits)-1].Score) / 2
		res2, err := s.Search(ctx, Query{Text: "backoff jitter", MinScore: min})
		if err != nil {
			t.Fatal(err)
		}
		if len(res2.Hits) == 0 || len(res2.Hits) >= len(res.Hits) {
			t.Fatalf("MinScore %v kept %d of %d hits", min, len(res2.Hits), len(res.Hits))
		}
		for _, h := range res2.Hits {
			if h.Score < min {
				t.Errorf("hit below MinScore: %v", h.Score)
			}
		}
		if res2.Total != res.Total {
			t.Errorf("Total with MinScore = %d, want %d (Total ignores MinScore)", res2.Total, res.Total)
		}
		if ids := searchIDs(t, s, Query{Text: "backoff", MinScore: 1}); len(ids) != 0 {
			t.Errorf("MinScore 1 kept %v", ids)
		}
		res3, _ := s.Search(ctx, Query{Type: "reading"})
		for _, h := range res3.Hits {
			if h.Score != 1 {
				t.Errorf("filter-only hit score %v, want 1", h.Score)
			}
		}
	})

	t.Run("expiry", func(t *testing.T) {
		if ids := searchIDs(t, s, Query{Text: "temporary"}); !slices.Equal(ids, []string{soon}) {
			t.Fatalf("before expiry: %v", ids)
		}
		clk.Add(2 * time.Hour)
		if ids := searchIDs(t, s, Query{Text: "temporary"}); len(ids) != 0 {
			t.Fatalf("expired record found: %v", ids)
		}
		if ids := searchIDs(t, s, Query{Type: "lesson"}); slices.Contains(ids, soon) {
			t.Fatalf("expired record found by filters: %v", ids)
		}
		if _, err := s.Get(ctx, soon); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get expired: %v", err)
		}
	})
}

func itoa(v int64) string { return json.Number(jsonInt(v)).String() }

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSearchInvalid(t *testing.T) {
	s := openStore(t, "", nil)
	mustPut(t, s, lesson("a", "b"))
	tests := []struct {
		name string
		q    Query
	}{
		{"negative limit", Query{Text: "a", Limit: -1}},
		{"limit too large", Query{Text: "a", Limit: MaxSearchLimit + 1}},
		{"min score above 1", Query{Text: "a", MinScore: 1.5}},
		{"negative min score", Query{Text: "a", MinScore: -0.1}},
		{"since after until", Query{Since: 10, Until: 5}},
		{"negative since", Query{Since: -1}},
		{"bad visibility", Query{Visibility: []string{"secret"}}},
		{"empty visibility", Query{Visibility: []string{""}}},
		{"empty tag", Query{Tags: []string{""}}},
		{"unterminated phrase", Query{Text: `"open`}},
		{"comparison without number", Query{Text: "humidity >"}},
		{"comparison with word", Query{Text: "humidity > high"}},
		{"too many clauses", Query{Text: stringsRepeat("w ", MaxQueryClauses+1)}},
		{"too long", Query{Text: stringsRepeat("x", MaxQueryLength+1)}},
		{"invalid utf-8", Query{Text: "\xff\xfe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Search(context.Background(), tc.q)
			if !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func stringsRepeat(s string, n int) string {
	out := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		out = append(out, s...)
	}
	return string(out)
}

func TestList(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	var ids []string
	for i := 0; i < 25; i++ {
		rec := lesson("title", "content")
		if i%5 == 0 {
			rec.Type = "checkpoint"
			rec.Tags = []string{"cp"}
		}
		if i%2 == 0 {
			rec.Agent = "even"
		}
		if i == 3 {
			rec.Visibility = "public"
			rec.Project = "p3"
		}
		ids = append(ids, mustPut(t, s, rec))
		clk.Add(time.Second)
	}
	listIDs := func(o ListOptions) ([]string, *ListResult) {
		t.Helper()
		res, err := s.List(ctx, o)
		if err != nil {
			t.Fatalf("List(%+v): %v", o, err)
		}
		var out []string
		for _, r := range res.Records {
			out = append(out, r.ID)
		}
		return out, res
	}
	got, res := listIDs(ListOptions{})
	if res.Total != 25 || !res.HasMore || len(got) != DefaultListLimit {
		t.Fatalf("default page: %d records, total %d, more %v", len(got), res.Total, res.HasMore)
	}
	rev := slices.Clone(ids)
	slices.Reverse(rev)
	if !slices.Equal(got, rev[:20]) {
		t.Fatalf("desc order: %v", got)
	}
	got, res = listIDs(ListOptions{Order: "asc", Limit: 10, Offset: 20})
	if !slices.Equal(got, ids[20:]) || res.HasMore || res.Total != 25 {
		t.Fatalf("asc last page: %v more=%v", got, res.HasMore)
	}
	got, _ = listIDs(ListOptions{Type: "checkpoint", Order: "asc"})
	if !slices.Equal(got, []string{ids[0], ids[5], ids[10], ids[15], ids[20]}) {
		t.Fatalf("type filter: %v", got)
	}
	got, _ = listIDs(ListOptions{Tags: []string{"cp"}, Agent: "even", Order: "asc"})
	if !slices.Equal(got, []string{ids[0], ids[10], ids[20]}) {
		t.Fatalf("tag+agent filter: %v", got)
	}
	got, _ = listIDs(ListOptions{Visibility: "public"})
	if !slices.Equal(got, []string{ids[3]}) {
		t.Fatalf("visibility filter: %v", got)
	}
	got, _ = listIDs(ListOptions{Project: "p3"})
	if !slices.Equal(got, []string{ids[3]}) {
		t.Fatalf("project filter: %v", got)
	}

	for _, o := range []ListOptions{{Limit: -1}, {Limit: MaxListLimit + 1}, {Offset: -1}, {Order: "up"}, {Visibility: "secret"}, {Tags: []string{""}}} {
		if _, err := s.List(ctx, o); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("List(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

func TestStatusAndExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	hour := int64(time.Hour / time.Millisecond)
	mustPut(t, s, lesson("a", "alpha"))
	mustPut(t, s, lesson("b", "beta"))
	mustPut(t, s, &protocol.Lesson{Type: "checkpoint", Agent: "x", WorkingOn: "w"})
	mustPut(t, s, &protocol.Lesson{Type: "snippet", Content: "code"})
	eph := mustPut(t, s, &protocol.Lesson{Type: "reading", Content: "gamma", ExpiresAt: clk.MS() + hour})
	mustPut(t, s, &protocol.Lesson{Type: "reading", Content: "delta"})

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"lesson": 2, "checkpoint": 1, "snippet": 1, "reading": 2}
	if st.Total != 6 || !mapsEqual(st.Counts, want) {
		t.Fatalf("Status = %+v", st)
	}
	clk.Add(time.Hour) // expires_at == now: expired
	st, _ = s.Status(ctx)
	want["reading"] = 1
	if st.Total != 5 || !mapsEqual(st.Counts, want) {
		t.Fatalf("Status after expiry = %+v", st)
	}
	if _, err := s.Get(ctx, eph); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get expired = %v", err)
	}
	if res, _ := s.List(ctx, ListOptions{Type: "reading"}); res.Total != 1 || len(res.Records) != 1 {
		t.Fatalf("List after expiry: %+v", res)
	}
	if del, err := s.Delete(ctx, eph); err != nil || del {
		t.Fatalf("Delete expired = %v, %v; want false, nil", del, err)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openStore(t, dir, clk)
	hour := int64(time.Hour / time.Millisecond)
	var expiring []string
	for i := 0; i < 1200; i++ { // more than one sweep page
		expiring = append(expiring, "") // ids generated
	}
	recs := make([]*protocol.Lesson, len(expiring))
	for i := range recs {
		recs[i] = &protocol.Lesson{Type: "reading", Content: "sensor", ExpiresAt: clk.MS() + hour}
	}
	res, err := s.PutBatch(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	keep := mustPut(t, s, &protocol.Lesson{Type: "reading", Content: "sensor", ExpiresAt: clk.MS() + 3*hour})
	forever := mustPut(t, s, lesson("x", "sensor"))
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early Sweep = %d, %v", n, err)
	}
	clk.Add(2 * time.Hour)
	n, err := s.Sweep(ctx)
	if err != nil || n != len(recs) {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, len(recs))
	}
	if n, _ := s.Sweep(ctx); n != 0 {
		t.Fatalf("second Sweep = %d", n)
	}
	// Gone from disk: a datastore scan and the raw index agree.
	if c, _ := s.countRecords(ctx); c != 2 {
		t.Fatalf("%d records in the datastore, want 2", c)
	}
	if dc, _ := s.idx.DocCount(); dc != 2 {
		t.Fatalf("%d documents in the index, want 2", dc)
	}
	if _, err := s.ds.Get(ctx, recordKey(res[0].ID)); err == nil {
		t.Fatal("swept record still in the datastore")
	}
	if ids := searchIDs(t, s, Query{Text: "sensor"}); len(ids) != 2 || !slices.Contains(ids, keep) || !slices.Contains(ids, forever) {
		t.Fatalf("after sweep: %v", ids)
	}
}

func TestBackgroundSweeper(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, err := Open(Options{Now: clk.Now, SweepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := mustPut(t, s, &protocol.Lesson{Type: "reading", Content: "x", ExpiresAt: clk.MS() + 1000})
	clk.Add(time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.ds.Get(ctx, recordKey(id))
		if err != nil {
			break // swept
		}
		if time.Now().After(deadline) {
			t.Fatal("background sweeper did not delete the expired record")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAgentStatus(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	cp := func(agent, workingOn, state string) string {
		t.Helper()
		rec := &protocol.Lesson{Type: "checkpoint", Agent: agent, WorkingOn: workingOn}
		if state != "" {
			rec.State = json.RawMessage(state)
		}
		id := mustPut(t, s, rec)
		clk.Add(time.Second)
		return id
	}
	st, err := s.AgentStatus(ctx, "nobody")
	if err != nil || st.Status != StatusIdle || st.CheckpointID != "" {
		t.Fatalf("no checkpoint: %+v, %v", st, err)
	}
	cp("a", "", "")
	cp("b", "the parser", "")
	cp("c", "", `{"flags":["IN_PROGRESS"]}`)
	cp("d", "x", `{"blockers":["waiting for review"]}`)
	cp("e", "", `{"flags":["blocked"]}`)
	older := cp("f", "", `{"blockers":["old"]}`)
	newer := cp("f", "", `{}`)
	mustPut(t, s, &protocol.Lesson{Type: "lesson", Agent: "g", Content: "not a checkpoint"})

	tests := []struct {
		agent, status, workingOn string
		blockers                 []string
	}{
		{"a", StatusIdle, "", nil},
		{"b", StatusInProgress, "the parser", nil},
		{"c", StatusInProgress, "", nil},
		{"d", StatusBlocked, "x", []string{"waiting for review"}},
		{"e", StatusBlocked, "", nil},
		{"f", StatusIdle, "", nil},
		{"g", StatusIdle, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.agent, func(t *testing.T) {
			st, err := s.AgentStatus(ctx, tc.agent)
			if err != nil {
				t.Fatal(err)
			}
			if st.Agent != tc.agent || st.Status != tc.status || st.WorkingOn != tc.workingOn || !slices.Equal(st.Blockers, tc.blockers) {
				t.Fatalf("got %+v", st)
			}
		})
	}
	st, _ = s.AgentStatus(ctx, "f")
	if st.CheckpointID != newer || st.UpdatedAt == 0 {
		t.Fatalf("latest checkpoint of f: %+v", st)
	}
	// Updating the older checkpoint makes it the latest (by updated_at).
	rec, _ := s.Get(ctx, older)
	if _, _, err := s.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	st, _ = s.AgentStatus(ctx, "f")
	if st.CheckpointID != older || st.Status != StatusBlocked || st.UpdatedAt != clk.MS() {
		t.Fatalf("after update: %+v", st)
	}
	if _, err := s.AgentStatus(ctx, ""); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("empty agent: %v", err)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestExpiryClauseOnlyOnceNeeded: searches leave out the expiry clause
// until the index holds a record with an expiry, and a reopened index that
// holds one has the clause again.
func TestExpiryClauseOnlyOnceNeeded(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openStore(t, dir, clk)
	mustPut(t, s, lesson("a", "alpha"))
	if s.an.expiring.Load() {
		t.Fatal("no record has an expiry, yet searches carry the clause")
	}
	if n, _, err := s.sweepPage(ctx); err != nil || n != 0 {
		t.Fatalf("sweep with nothing to expire: %d, %v", n, err)
	}
	mustPut(t, s, &protocol.Lesson{Type: "reading", Content: "gamma", ExpiresAt: clk.MS() + 1000})
	if !s.an.expiring.Load() {
		t.Fatal("a record with an expiry is indexed, and searches do not exclude expired ones")
	}
	clk.Add(time.Second)
	total := func(s *Store) int {
		st, err := s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Total
	}
	if n := total(s); n != 1 {
		t.Fatalf("Status counts %d records, want 1 (the reading expired)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, clk) // the expired reading is still in the index: not swept
	if !s.an.expiring.Load() {
		t.Fatal("reopened over an index holding a record with an expiry, searches lack the clause")
	}
	if n := total(s); n != 1 {
		t.Fatalf("after reopening, Status counts %d records, want 1", n)
	}
	if n, _, err := s.sweepPage(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want the expired reading", n, err)
	}
}
