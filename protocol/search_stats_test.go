package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func testStats() *SearchStats {
	return &SearchStats{Docs: 120, Tokens: 2531, Vocab: []uint32{0, 7, 300, 1 << 20, 0xFFFFFFFF}, Terms: 3,
		DocFreq: map[string]int64{"cargo": 4, "build": 0, "parallel": 17}}
}

// TestSearchStatsGolden: the wire form of a response with stats is fixed
// (testdata/search/response-stats.json; -update rewrites it), decodes to
// the same value, and round-trips.
func TestSearchStatsGolden(t *testing.T) {
	resp := &SearchResponse{Type: MsgSearchResponse, RequestID: "r1", Stats: testStats()}
	b, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "search", "response-stats.json")
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden = bytes.TrimSuffix(golden, []byte("\n"))
	if !bytes.Equal(b, golden) {
		t.Fatalf("encoding changed:\n%s\nwant\n%s", b, golden)
	}
	got, err := DecodeSearchResponse(golden)
	if err != nil {
		t.Fatal(err)
	}
	resp.Results = []SearchResult{}
	if !reflect.DeepEqual(got, resp) {
		t.Fatalf("decoded %+v\nwant %+v", got.Stats, resp.Stats)
	}
	// A vocabulary is read in place, or unescaped where a sender escaped
	// it (JSON lets '/' be written "\/", and any character as \u00XX).
	i := bytes.Index(golden, []byte(`"vocab":"`)) + len(`"vocab":"`)
	escaped := slices.Concat(golden[:i], []byte(fmt.Sprintf(`\u%04x`, golden[i])), golden[i+1:])
	if got, err := DecodeSearchResponse(escaped); err != nil || !reflect.DeepEqual(got.Stats, resp.Stats) {
		t.Fatalf("with an escape in the vocabulary (%s): %+v, %v", escaped, got, err)
	}
	// Without stats, as older nodes answer, it still decodes.
	old := []byte(`{"type":"searchResponse","requestId":"r1","results":[],"truncated":false}`)
	if got, err := DecodeSearchResponse(old); err != nil || got.Stats != nil {
		t.Fatalf("%+v %v", got, err)
	}
}

// statsByReflection is the encoding of s by encoding/json from its wire
// struct, which SearchStats.appendJSON writes by hand.
func statsByReflection(t *testing.T, s *SearchStats) []byte {
	t.Helper()
	w := searchStatsJSON{Docs: s.Docs, Tokens: s.Tokens, Terms: s.Terms, DocFreq: s.DocFreq}
	if w.DocFreq == nil {
		w.DocFreq = map[string]int64{}
	}
	if regs := s.wireSketch(); regs != nil {
		w.Sketch = base64.StdEncoding.EncodeToString(regs)
	} else if len(s.Vocab) > 0 {
		var buf []byte
		var prev uint32
		for _, h := range s.Vocab {
			buf = binary.AppendUvarint(buf, uint64(h-prev))
			prev = h
		}
		w.Vocab = base64.StdEncoding.EncodeToString(buf)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkStatsEncoding: the hand-written encoder writes what encoding/json
// would, both alone and inside a response.
func checkStatsEncoding(t *testing.T, s *SearchStats) {
	t.Helper()
	want := statsByReflection(t, s)
	got, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hand encoding differs:\n%s\nencoding/json:\n%s", got, want)
	}
	resp, err := (&SearchResponse{Type: MsgSearchResponse, RequestID: "r", Stats: s}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(resp, append([]byte(`,"stats":`), want...)) {
		t.Fatalf("response does not carry the stats as encoding/json writes them:\n%s", resp)
	}
}

// TestSearchStatsEncodingMatchesEncodingJSON: appendJSON is byte for byte
// encoding/json's output for the wire struct, escapes included.
func TestSearchStatsEncodingMatchesEncodingJSON(t *testing.T) {
	for _, s := range []*SearchStats{
		testStats(),
		{},
		{Docs: 1, DocFreq: map[string]int64{}},
		{Docs: 9, Tokens: 1 << 40, Terms: -1, Vocab: []uint32{5}, DocFreq: map[string]int64{"<a&b>": 2, "é\"\\": 1, "\u2028x": 0, "": 3}},
	} {
		checkStatsEncoding(t, s)
	}
}

func TestSearchStatsMerge(t *testing.T) {
	a := &SearchStats{Docs: 2, Tokens: 10, Vocab: []uint32{1, 5, 9}, DocFreq: map[string]int64{"x": 1, "y": 0}}
	b := &SearchStats{Docs: 3, Tokens: 20, Vocab: []uint32{2, 5, 10}, Terms: 4, DocFreq: map[string]int64{"x": 2, "z": 9}}
	a.Merge(b)
	a.Merge(nil)
	want := &SearchStats{Docs: 5, Tokens: 30, Vocab: []uint32{1, 2, 5, 9, 10}, Terms: 4, DocFreq: map[string]int64{"x": 3, "y": 0}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("%+v, want %+v (a term only the other side has is ignored)", a, want)
	}
	if a.Cardinality() != 9 {
		t.Fatalf("cardinality %d", a.Cardinality())
	}
	c := a.Clone()
	c.DocFreq["x"] = 100
	c.Vocab[0] = 100
	if a.DocFreq["x"] != 3 || a.Vocab[0] != 1 {
		t.Fatal("Clone shares memory")
	}
	// Counts saturate instead of overflowing.
	big := &SearchStats{Docs: maxSafeInt, DocFreq: map[string]int64{}}
	big.Merge(&SearchStats{Docs: maxSafeInt})
	if big.Docs != maxSafeInt {
		t.Fatalf("docs %d", big.Docs)
	}
	if VocabHash("cargo") != VocabHash("cargo") || VocabHash("cargo") == VocabHash("build") {
		t.Fatal("VocabHash")
	}
}

// TestSearchStatsMergeAll: merging many at once is merging them one by
// one, with lists, sketches, nil and empty statistics, and a union that
// outgrows a list.
func TestSearchStatsMergeAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	list := func(n int, span uint32) []uint32 {
		set := map[uint32]bool{}
		for range n {
			set[rng.Uint32N(span)] = true
		}
		return slices.Sorted(maps.Keys(set))
	}
	stats := func(n int, span uint32) *SearchStats {
		return &SearchStats{Docs: rng.Int64N(100), Tokens: rng.Int64N(1000), Terms: rng.Int64N(3), Vocab: list(n, span),
			DocFreq: map[string]int64{"x": rng.Int64N(5), "y": rng.Int64N(5)}}
	}
	for i, tc := range []struct {
		others int
		n      int
		span   uint32
		sketch bool
	}{
		{0, 10, 100, false}, {1, 10, 100, false}, {2, 50, 100, false}, {8, 300, 1000, false},
		{8, 3000, 1 << 31, false}, {5, 100, 1000, true}, {3, MaxSearchVocab / 2, 1 << 31, false},
	} {
		s := stats(tc.n, tc.span)
		var others []*SearchStats
		for j := range tc.others {
			o := stats(tc.n, tc.span)
			if j == 1 {
				others = append(others, nil, &SearchStats{DocFreq: map[string]int64{}})
			}
			if tc.sketch && j == 2 {
				o.VocabSketch, o.Vocab = sketchOf(o.Vocab), nil
			}
			others = append(others, o)
		}
		one := s.Clone()
		for _, o := range others {
			one.Merge(o)
		}
		s.MergeAll(others)
		if !reflect.DeepEqual(s, one) {
			t.Fatalf("case %d: MergeAll and Merge one by one differ: docs %d/%d, %d/%d hashes, sketch %v/%v",
				i, s.Docs, one.Docs, len(s.Vocab), len(one.Vocab), s.VocabSketch != nil, one.VocabSketch != nil)
		}
		if i == 6 && s.VocabSketch == nil {
			t.Fatalf("case %d: a union of %d hashes stayed a list", i, len(s.Vocab))
		}
	}
}

func TestDecodeSearchStatsErrors(t *testing.T) {
	wrap := func(stats string) string {
		return `{"type":"searchResponse","requestId":"r","results":[],"stats":` + stats + `}`
	}
	var manyTerms []string
	for i := range MaxSearchStatsTerms + 1 {
		manyTerms = append(manyTerms, `"t`+strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26))+`":1`)
	}
	b64 := func(b ...byte) string { return base64.StdEncoding.EncodeToString(b) }
	for _, tc := range []struct{ in, msg string }{
		{`[]`, "stats: must be a JSON object"},
		{`{"docs":1,"tokens":1}`, "stats.df is missing"},
		{`{"docs":-1,"tokens":1,"df":{}}`, "stats.docs"},
		{`{"docs":1,"tokens":1.5,"df":{}}`, "stats.tokens"},
		{`{"docs":1,"tokens":1,"terms":-2,"df":{}}`, "stats.terms"},
		{`{"docs":1,"tokens":1,"df":{"x":-1}}`, "stats.df.x"},
		{`{"docs":1,"tokens":1,"df":{"x":2}}`, "stats.df.x: 2 lessons of 1"},
		{`{"docs":1,"tokens":1,"df":{"":1}}`, "each term"},
		{`{"docs":1,"tokens":1,"df":{"` + strings.Repeat("x", MaxSearchStatsTermLength+1) + `":1}}`, "each term"},
		{`{"docs":1,"tokens":1,"df":{` + strings.Join(manyTerms, ",") + `}}`, "terms, the limit"},
		{`{"docs":1,"tokens":1,"df":{},"Docs":1}`, `unknown field "Docs"`},
		{`{"docs":1,"tokens":1,"df":{},"vocab":1}`, "want a string"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"!!"}`, "standard base64"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":""}`, "empty"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"` + b64(1, 0) + `"}`, "repeats"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"` + b64(0x80) + `"}`, "bad varint"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"` + b64(0xff, 0xff, 0xff, 0xff, 0x0f, 1) + `"}`, "over 32 bits"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"` + b64(0x80, 0x80, 0x80, 0x80, 0x80, 0x01) + `"}`, "bad varint"},
	} {
		_, err := DecodeSearchResponse([]byte(wrap(tc.in)))
		wantErr(t, err, ErrInvalid, tc.msg)
	}
	// Too many hashes.
	many := make([]byte, MaxSearchVocab+1)
	for i := range many {
		many[i] = 1
	}
	_, err := DecodeSearchResponse([]byte(wrap(`{"docs":1,"tokens":1,"df":{},"vocab":"` + base64.StdEncoding.EncodeToString(many) + `"}`)))
	wantErr(t, err, ErrInvalid, "more than")
}

func FuzzDecodeSearchStats(f *testing.F) {
	b, err := (&SearchResponse{Type: MsgSearchResponse, RequestID: "r", Stats: testStats()}).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"type":"searchResponse","requestId":"r","results":[],"stats":{"docs":0,"tokens":0,"df":{}}}`))
	f.Add([]byte(`{"type":"searchResponse","requestId":"r","results":[],"stats":{"docs":1,"tokens":2,"terms":3,"vocab":"AQID","df":{"a":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeSearchResponse(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		r2, err := DecodeSearchResponse(enc)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, enc)
		}
		want := r.Stats
		if r.Stats != nil && r.Stats.wireSketch() != nil {
			// An older node's list over MaxWireVocab travels on as a sketch.
			want = r.Stats.Clone()
			want.VocabSketch, want.Vocab = want.wireSketch(), nil
		}
		if !reflect.DeepEqual(want, r2.Stats) {
			t.Fatalf("stats changed in a round trip:\n%+v\n%+v", r.Stats, r2.Stats)
		}
		if r.Stats != nil {
			checkStatsEncoding(t, r.Stats)
			for i := 1; i < len(r.Stats.Vocab); i++ {
				if r.Stats.Vocab[i] <= r.Stats.Vocab[i-1] {
					t.Fatalf("vocab not strictly ascending: %v", r.Stats.Vocab)
				}
			}
			s := r.Stats.Clone()
			s.Merge(r2.Stats)
			if !s.Sketched() && s.Cardinality() < int64(len(r.Stats.Vocab)) {
				t.Fatalf("merging lost hashes")
			}
		}
	})
}

// TestSearchResultPassesRawLessonOn: a decoded result re-encodes its lesson
// as received (a forwarder does not encode it again), and as encoded once
// the lesson is replaced.
func TestSearchResultPassesRawLessonOn(t *testing.T) {
	sl := mustSign(t, testKey(7), testLesson())
	b, err := (&SearchResponse{Type: MsgSearchResponse, RequestID: "r", Results: []SearchResult{{SignedLesson: sl}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	// An equivalent spelling: an escaped character in the title.
	title := []byte(`"title":"`)
	i := bytes.Index(b, title)
	if i < 0 {
		t.Fatalf("no title in %s", b)
	}
	i += len(title)
	spelled := append(append(append([]byte{}, b[:i]...), []byte(`\u0041`)...), b[i:]...)
	resp, err := DecodeSearchResponse(spelled)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Results[0]
	if r.EncodedSize() == 0 || !strings.HasPrefix(r.SignedLesson.Lesson.Title, "A") {
		t.Fatalf("size %d, title %q", r.EncodedSize(), r.SignedLesson.Lesson.Title)
	}
	again, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(again, []byte(`\u0041`)) {
		t.Fatalf("the lesson was encoded again instead of passed on:\n%s", again)
	}
	resp.Results[0].SignedLesson = sl
	again, err = resp.Encode()
	if err != nil || bytes.Contains(again, []byte(`\u0041`)) {
		t.Fatalf("a replaced lesson must be encoded: %v\n%s", err, again)
	}
	if got, err := DecodeSearchResponse(again); err != nil || Verify(got.Results[0].SignedLesson, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("%v", err)
	}
}
