package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/meshprotocol/mesh/protocol"
)

func TestPutInvalid(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	tests := []struct {
		name string
		rec  *protocol.Lesson
	}{
		{"nil", nil},
		{"no type", &protocol.Lesson{Title: "x"}},
		{"bad type", &protocol.Lesson{Type: "a b"}},
		{"bad id", &protocol.Lesson{ID: "a/b", Type: "lesson"}},
		{"dot id", &protocol.Lesson{ID: ".hidden", Type: "lesson"}},
		{"bad visibility", &protocol.Lesson{Type: "lesson", Visibility: "secret"}},
		{"bad severity", &protocol.Lesson{Type: "lesson", Severity: "meh"}},
		{"empty tag", &protocol.Lesson{Type: "lesson", Tags: []string{""}}},
		{"bad checkpoint state", &protocol.Lesson{Type: "checkpoint", State: json.RawMessage(`{"blockers":7}`)}},
		{"negative expiry", &protocol.Lesson{Type: "lesson", ExpiresAt: -1}},
		{"too large", &protocol.Lesson{Type: "lesson", Content: strings.Repeat("x", protocol.MaxRecordSize)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Put(ctx, tc.rec)
			if !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if st, _ := s.Status(ctx); st.Total != 0 {
		t.Fatalf("invalid puts wrote %d records", st.Total)
	}
	for _, id := range []string{"", "a/b", strings.Repeat("x", 200)} {
		if _, err := s.Get(ctx, id); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Get(%q) = %v", id, err)
		}
		if _, err := s.Delete(ctx, id); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
}

func TestPutKeepsFields(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	rec := &protocol.Lesson{ID: "given", Type: "reading", CreatedAt: 42, Visibility: "unlisted",
		Extra: map[string]json.RawMessage{"humidity": json.RawMessage("55"), "nested": json.RawMessage(`{"a":[1,2]}`)}}
	id, created, err := s.Put(ctx, rec)
	if err != nil || !created || id != "given" {
		t.Fatalf("Put = %q %v %v", id, created, err)
	}
	got, _ := s.Get(ctx, id)
	if got.CreatedAt != 42 || got.Visibility != "unlisted" || string(got.Extra["nested"]) != `{"a":[1,2]}` {
		t.Fatalf("Get = %+v", got)
	}
	// An update that gives created_at keeps it.
	rec.CreatedAt = 7
	if _, created, _ := s.Put(ctx, rec); created {
		t.Fatal("update reported created")
	}
	got, _ = s.Get(ctx, id)
	if got.CreatedAt != 7 || got.UpdatedAt != clk.MS() {
		t.Fatalf("after update: %+v", got)
	}
	// Mutating the returned record does not touch the store.
	got.Title = "changed"
	again, _ := s.Get(ctx, id)
	if again.Title != "" {
		t.Fatal("Get returned shared state")
	}
}

func TestPutBatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	existing := mustPut(t, s, lesson("old", "existing"))
	res, err := s.PutBatch(ctx, []*protocol.Lesson{
		lesson("one", "first"),
		{ID: existing, Type: "lesson", Content: "replaced"},
		{ID: "dup", Type: "lesson", Content: "dup v1"},
		{ID: "dup", Type: "lesson", Content: "dup v2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, true, false}
	for i, r := range res {
		if r.Created != want[i] || r.ID == "" {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if res[1].ID != existing || res[2].ID != "dup" {
		t.Fatalf("ids %+v", res)
	}
	if got, _ := s.Get(ctx, "dup"); got.Content != "dup v2" {
		t.Fatalf("dup = %q", got.Content)
	}
	if ids := searchIDs(t, s, Query{Text: "dup"}); len(ids) != 1 {
		t.Fatalf("dup indexed %d times", len(ids))
	}

	// One bad record: nothing is written, the error names it.
	_, err = s.PutBatch(ctx, []*protocol.Lesson{lesson("fine", "unique1"), {Type: ""}, lesson("fine", "unique2")})
	if !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("err = %v", err)
	}
	_, err = s.PutBatch(ctx, []*protocol.Lesson{lesson("fine", "unique3"), {Type: "lesson", Content: strings.Repeat("x", protocol.MaxRecordSize)}})
	if !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("err = %v", err)
	}
	if ids := searchIDs(t, s, Query{Text: "unique1 unique2 unique3"}); len(ids) != 0 {
		t.Fatalf("failed batch wrote %v", ids)
	}
	if res, err := s.PutBatch(ctx, nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch = %v, %v", res, err)
	}
	if _, err := s.PutBatch(ctx, make([]*protocol.Lesson, MaxBatch+1)); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestPublication(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	id := mustPut(t, s, lesson("published", "shared knowledge"))
	rec, _ := s.Get(ctx, id)
	sl := &protocol.SignedLesson{
		Lesson:      *rec,
		Publication: protocol.Publication{Visibility: "public", PublishedAt: clk.MS(), Topics: []string{"go"}},
		Signature:   protocol.Signature{Algorithm: "ed25519", NodeID: "node", PublicKey: "key", Timestamp: clk.MS(), Sig: "sig"},
	}
	if _, err := s.Publication(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Publication before put: %v", err)
	}
	if err := s.PutPublication(ctx, sl); err != nil {
		t.Fatal(err)
	}
	got, err := s.Publication(ctx, id)
	if err != nil || got.Publication.Visibility != "public" || got.Signature.Sig != "sig" || got.Lesson.ID != id {
		t.Fatalf("Publication = %+v, %v", got, err)
	}
	if r, _ := s.Get(ctx, id); r.Visibility != "public" {
		t.Fatalf("record visibility %q, want public", r.Visibility)
	}
	if ids := searchIDs(t, s, Query{Text: "knowledge", Visibility: []string{"public"}}); len(ids) != 1 {
		t.Fatalf("public search: %v", ids)
	}

	// Making the record private drops the publication.
	r, _ := s.Get(ctx, id)
	r.Visibility = ""
	mustPut(t, s, r)
	if _, err := s.Publication(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publication of a private record: %v", err)
	}

	// Deleting the record deletes its publication.
	if err := s.PutPublication(ctx, sl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, &protocol.Lesson{ID: id, Type: "lesson", Visibility: "public"})
	if _, err := s.Publication(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publication outlived its record: %v", err)
	}

	bad := []struct {
		name string
		sl   *protocol.SignedLesson
		is   error
	}{
		{"nil", nil, protocol.ErrInvalid},
		{"no id", &protocol.SignedLesson{Publication: sl.Publication}, protocol.ErrInvalid},
		{"private", &protocol.SignedLesson{Lesson: *rec, Publication: protocol.Publication{Visibility: "private", PublishedAt: 1}}, protocol.ErrInvalid},
		{"no time", &protocol.SignedLesson{Lesson: *rec, Publication: protocol.Publication{Visibility: "public"}}, protocol.ErrInvalid},
		{"unknown record", &protocol.SignedLesson{Lesson: protocol.Lesson{ID: "nope", Type: "lesson"}, Publication: sl.Publication}, ErrNotFound},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutPublication(ctx, tc.sl); !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

// TestConcurrent runs writers, deleters and readers at once and then checks
// that the index and the datastore agree.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("r%d", (w*each+i)%50) // overlapping ids
				rec := &protocol.Lesson{ID: id, Type: "lesson", Content: fmt.Sprintf("concurrent v%d", i)}
				if _, _, err := s.Put(ctx, rec); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if _, err := s.Delete(ctx, id); err != nil {
						t.Error(err)
						return
					}
				}
				if i%10 == 0 {
					if _, err := s.PutBatch(ctx, []*protocol.Lesson{lesson("batch", "concurrent batch"), rec}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Search(ctx, Query{Text: "concurrent"}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.List(ctx, ListOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Reindex(ctx); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	n, _ := s.countRecords(ctx)
	dc, _ := s.idx.DocCount()
	if uint64(n) != dc {
		t.Fatalf("datastore has %d records, index %d", n, dc)
	}
	res, err := s.Search(ctx, Query{Text: "concurrent", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Status(ctx)
	if res.Total != n || st.Total != n {
		t.Fatalf("search total %d, status %d, datastore %d", res.Total, st.Total, n)
	}
	// Each record's indexed version is the stored one.
	for _, h := range res.Hits {
		ids := searchIDs(t, s, Query{Text: `"` + h.Record.Content + `"`, Limit: 100})
		found := false
		for _, id := range ids {
			found = found || id == h.ID
		}
		if !found {
			t.Fatalf("%s: stored content %q not what the index holds", h.ID, h.Record.Content)
		}
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, _, checks["Put"] = s.Put(ctx, lesson("a", "b"))
	_, checks["PutBatch"] = s.PutBatch(ctx, []*protocol.Lesson{lesson("a", "b")})
	_, checks["Get"] = s.Get(ctx, "a")
	_, checks["Delete"] = s.Delete(ctx, "a")
	_, checks["List"] = s.List(ctx, ListOptions{})
	_, checks["Search"] = s.Search(ctx, Query{Text: "a"})
	_, checks["Status"] = s.Status(ctx)
	_, checks["AgentStatus"] = s.AgentStatus(ctx, "a")
	_, checks["Sweep"] = s.Sweep(ctx)
	_, checks["Publication"] = s.Publication(ctx, "a")
	checks["Reindex"] = s.Reindex(ctx)
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

func TestGivenDatastore(t *testing.T) {
	d := newMemDS()
	s, err := Open(Options{Datastore: d})
	if err != nil {
		t.Fatal(err)
	}
	id := mustPut(t, s, lesson("kept", "in the caller's datastore"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The datastore is still open, and a new store rebuilds its in-memory
	// index from it.
	s2, err := Open(Options{Datastore: d})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ids := searchIDs(t, s2, Query{Text: "caller"}); len(ids) != 1 || ids[0] != id {
		t.Fatalf("search: %v", ids)
	}
}

// FuzzDecodeRecord checks the decoder of stored records: no panic, and a
// record it accepts encodes and decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","type":"lesson","title":"t","content":"c","tags":["x"],"created_at":1}`,
		`{"id":"r","type":"reading","humidity":72.5,"nested":{"a":[1,2]}}`,
		`{"id":"c","type":"checkpoint","state":{"blockers":["b"],"flags":["BLOCKED"]}}`,
		`{"id":"a","type":"lesson","id":"b"}`, `{"id":"../x","type":"lesson"}`, `[]`, `null`, `{`, "\xff",
		`{"id":"a","type":"lesson","created_at":1e300}`, `{"id":"a","type":"lesson","visibility":"secret"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeRecord(data)
		if err != nil {
			return
		}
		enc, err := encodeRecord(rec)
		if err != nil {
			if errors.Is(err, protocol.ErrTooLarge) {
				return
			}
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decodeRecord(enc)
		if err != nil {
			t.Fatalf("decode of own encoding: %v", err)
		}
		enc2, _ := encodeRecord(again)
		if string(enc) != string(enc2) {
			t.Fatalf("not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// TestSharedPublication: a search hit's record is matched on behalf of its
// publication only while it is exactly what was signed; an edit, a
// re-publication or a deletion shows at once, cached decodings
// notwithstanding. SharedPublication (of a record) and SharedPublicationOf
// (of a hit, from the cached decoding) agree at every step.
func TestSharedPublication(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)
	id := mustPut(t, s, lesson("published", "shared knowledge"))
	hit := func() Hit {
		t.Helper()
		res, err := s.Search(ctx, Query{Text: "published", Visibility: []string{"public"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			if h.ID == id {
				return h
			}
		}
		t.Fatal("no hit")
		return Hit{}
	}
	// shared asks both ways and checks that they agree.
	shared := func(h Hit) (*protocol.SignedLesson, []byte, error) {
		t.Helper()
		sl, enc, err := s.SharedPublication(ctx, h.Record)
		sl2, enc2, err2 := s.SharedPublicationOf(ctx, h)
		if (err == nil) != (err2 == nil) || sl != sl2 || !bytes.Equal(enc, enc2) {
			t.Fatalf("SharedPublication: %v, %v; SharedPublicationOf: %v, %v", sl, err, sl2, err2)
		}
		return sl, enc, err
	}
	rec, _ := s.Get(ctx, id)
	if _, _, err := s.SharedPublication(ctx, rec); !errors.Is(err, ErrNotShared) {
		t.Fatalf("never published: %v", err)
	}
	sign := func(l *protocol.Lesson) *protocol.SignedLesson {
		return &protocol.SignedLesson{
			Lesson:      *l,
			Publication: protocol.Publication{Visibility: "public", PublishedAt: clk.MS()},
			Signature:   protocol.Signature{Algorithm: "ed25519", NodeID: "node", PublicKey: "key", Timestamp: clk.MS(), Sig: "sig"},
		}
	}
	if err := s.PutPublication(ctx, sign(rec)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is served from the caches
		h := hit()
		sl, enc, err := shared(h)
		if err != nil || sl.Lesson.Content != "shared knowledge" {
			t.Fatalf("published as is: %+v, %v", sl, err)
		}
		if dec, err := protocol.DecodeSignedLesson(enc); err != nil || !reflect.DeepEqual(dec, sl) {
			t.Fatalf("encoding %s does not decode to the lesson: %v", enc, err)
		}
		h.Record.Content = "changed by a caller" // a copy: the cache and the next hit keep the stored text
	}

	// Edited after publication, visibility kept: not shared any more.
	edited, _ := s.Get(ctx, id)
	edited.Content = "shared knowledge and a secret"
	mustPut(t, s, edited)
	h := hit()
	if h.Record.Content != edited.Content {
		t.Fatalf("hit = %+v", h.Record)
	}
	if _, _, err := shared(h); !errors.Is(err, ErrNotShared) {
		t.Fatalf("edited record: %v", err)
	}
	// Published again as edited: shared again, with the new text.
	edited, _ = s.Get(ctx, id)
	if err := s.PutPublication(ctx, sign(edited)); err != nil {
		t.Fatal(err)
	}
	if sl, _, err := shared(hit()); err != nil || sl.Lesson.Content != edited.Content {
		t.Fatalf("re-published: %+v, %v", sl, err)
	}
	// Deleted: gone with its publication.
	last := hit()
	if _, err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := shared(last); !errors.Is(err, ErrNotShared) {
		t.Fatalf("deleted record: %v", err)
	}
	if _, _, err := s.SharedPublication(ctx, &protocol.Lesson{ID: "../x"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	if _, _, err := s.SharedPublication(ctx, nil); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("nil record: %v", err)
	}
}
