package protocol

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// distinctHashes returns the distinct VocabHash values of n made-up terms,
// sorted.
func distinctHashes(prefix string, n int) []uint32 {
	out := make([]uint32, 0, n)
	for i := range n {
		out = append(out, VocabHash(fmt.Sprintf("%s%d", prefix, i)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestVocabSketchEstimate: the estimate of a sketch is within a few
// standard errors (0.8%) of the true count, from tiny to a million, and
// exactly 0 when empty. The inputs are fixed, so the figures are too.
func TestVocabSketchEstimate(t *testing.T) {
	if got := sketchEstimate(sketchOf(nil)); got != 0 {
		t.Fatalf("empty sketch estimates %v", got)
	}
	for _, n := range []int{1, 10, 100, 1000, 10000, 40000, 100000, 1000000} {
		hs := distinctHashes("term", n)
		est := sketchEstimate(sketchOf(hs))
		tol := max(0.03*float64(len(hs)), 1)
		if math.Abs(est-float64(len(hs))) > tol {
			t.Errorf("%d distinct hashes: estimate %.1f, off by more than %.0f", len(hs), est, tol)
		}
		t.Logf("%d distinct: estimate %.1f (%+.2f%%)", len(hs), est, 100*(est/float64(len(hs))-1))
	}
}

// TestVocabSketchUnion: the union of two sketches is exactly the sketch of
// the union of their sets, and Merge of lists and sketches gives it too.
func TestVocabSketchUnion(t *testing.T) {
	a, b := distinctHashes("a", 20000), distinctHashes("b", 30000)
	u := sketchOf(a)
	sketchMerge(u, sketchOf(b))
	all := sketchOf(slices.Concat(a, b))
	if !slices.Equal(u, all) {
		t.Fatal("sketch(a) ∪ sketch(b) differs from sketch(a ∪ b)")
	}
	// A list, a sketch, and a list again, in any order: the same sketch.
	c := distinctHashes("c", 500)
	s1 := &SearchStats{Vocab: c}
	s1.Merge(&SearchStats{VocabSketch: sketchOf(a)})
	s1.Merge(&SearchStats{Vocab: b})
	s2 := &SearchStats{VocabSketch: sketchOf(b)}
	s2.Merge(&SearchStats{Vocab: a})
	s2.Merge(&SearchStats{Vocab: c})
	if !slices.Equal(s1.VocabSketch, s2.VocabSketch) || s1.Vocab != nil || s2.Vocab != nil {
		t.Fatal("merge order changed the sketch, or left a list beside it")
	}
	if !slices.Equal(s1.VocabSketch, sketchOf(slices.Concat(a, b, c))) {
		t.Fatal("merged sketch is not the sketch of the union")
	}
}

// TestSearchStatsSketchOverMax: lists stay exact up to MaxSearchVocab
// hashes, then become a sketch whose cardinality is close; a merge never
// writes into a sketch it was given.
func TestSearchStatsSketchOverMax(t *testing.T) {
	hs := distinctHashes("v", MaxSearchVocab+1000)
	a := &SearchStats{Vocab: hs[:MaxSearchVocab-10]}
	a.Merge(&SearchStats{Vocab: hs[MaxSearchVocab-10 : MaxSearchVocab]})
	if a.Sketched() || a.Cardinality() != MaxSearchVocab {
		t.Fatalf("a union of exactly MaxSearchVocab hashes: sketched %v, cardinality %d", a.Sketched(), a.Cardinality())
	}
	a.Merge(&SearchStats{Vocab: hs[MaxSearchVocab:]})
	if !a.Sketched() || a.Vocab != nil {
		t.Fatal("a union over MaxSearchVocab hashes is still a list")
	}
	if c := a.Cardinality(); math.Abs(float64(c)-float64(len(hs))) > 0.03*float64(len(hs)) {
		t.Fatalf("cardinality %d of %d", c, len(hs))
	}
	shared := sketchOf(hs[:10])
	before := slices.Clone(shared)
	b := &SearchStats{VocabSketch: shared}
	b.Merge(&SearchStats{Vocab: hs[10:5000]})
	o := &SearchStats{VocabSketch: shared}
	c := &SearchStats{Vocab: hs[:3]}
	c.Merge(o)
	if !slices.Equal(shared, before) {
		t.Fatal("Merge wrote into a sketch it did not own")
	}
}

// TestSearchStatsWireSketch: a vocabulary of more than MaxWireVocab hashes
// travels as a sketch of fixed size, whatever the vocabulary; one of at
// most MaxWireVocab travels as its exact list.
func TestSearchStatsWireSketch(t *testing.T) {
	df := map[string]int64{"cargo": 1}
	small := &SearchStats{Docs: 10, Tokens: 99, Vocab: distinctHashes("w", MaxWireVocab), DocFreq: df}
	b, err := small.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"vocab":"`) || strings.Contains(string(b), "vocabSketch") {
		t.Fatal("a vocabulary of MaxWireVocab hashes did not travel as a list")
	}
	var sizes []int
	for _, n := range []int{MaxWireVocab + 1, 100000, MaxSearchVocab} {
		s := &SearchStats{Docs: 10, Tokens: 99, Vocab: distinctHashes("w", n), DocFreq: df}
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > s.EncodedSizeBound() {
			t.Fatalf("%d bytes, over the bound %d", len(b), s.EncodedSizeBound())
		}
		sizes = append(sizes, len(b))
		resp, err := DecodeSearchResponse(fmt.Appendf(nil, `{"type":"searchResponse","requestId":"r","results":[],"stats":%s}`, b))
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Stats
		if got.Vocab != nil || !slices.Equal(got.VocabSketch, sketchOf(s.Vocab)) {
			t.Fatalf("%d hashes: did not arrive as their sketch", n)
		}
		if c := got.Cardinality(); math.Abs(float64(c)-float64(len(s.Vocab))) > 0.03*float64(len(s.Vocab)) {
			t.Fatalf("%d hashes arrive as cardinality %d", len(s.Vocab), c)
		}
		checkStatsEncoding(t, s)
	}
	if sizes[0] != sizes[1] || sizes[1] != sizes[2] {
		t.Fatalf("sketched statistics vary in size: %v", sizes)
	}
}

// TestVocabSketchVectors pins the hash-to-register mapping, the sketch of a
// fixed vocabulary and its estimate: they are a wire format (the protocol
// README gives the same vectors).
func TestVocabSketchVectors(t *testing.T) {
	for _, v := range []struct {
		h    uint32
		j    int
		rank uint8
	}{
		{0, 14472, 3}, {1, 9282, 1}, {VocabHash("cargo"), 8417, 2},
	} {
		if j, r := vocabRegister(v.h); j != v.j || r != v.rank {
			t.Errorf("hash %#08x: register %d, rank %d; want %d, %d", v.h, j, r, v.j, v.rank)
		}
	}
	if h := VocabHash("cargo"); h != 0x85f3a527 {
		t.Errorf("VocabHash(cargo) = %#08x", h)
	}
	regs := sketchOf(distinctHashes("t", 100000))
	sum := sha256.Sum256(regs)
	if got := hex.EncodeToString(sum[:]); got != "1f7c959ac36c9f6938a3e44c13cfed471b4a9e41a5f78798b26e0feec2b97e35" {
		t.Errorf("sketch of t0..t99999: sha256 %s", got)
	}
	if got := sketchEstimate(regs); math.Abs(got-98667.266) > 0.001 {
		t.Errorf("estimate %.3f, want 98667.266", got)
	}
}

func TestDecodeVocabSketchErrors(t *testing.T) {
	wrap := func(stats string) string {
		return `{"type":"searchResponse","requestId":"r","results":[],"stats":` + stats + `}`
	}
	regs := make([]byte, VocabSketchRegisters)
	ok := base64.StdEncoding.EncodeToString(regs)
	bad := slices.Clone(regs)
	bad[77] = maxVocabRank + 1
	for _, tc := range []struct{ in, msg string }{
		{`{"docs":1,"tokens":1,"df":{},"vocabSketch":1}`, "want a string"},
		{`{"docs":1,"tokens":1,"df":{},"vocabSketch":"AAAA"}`, "4 characters, want 21848"},
		{`{"docs":1,"tokens":1,"df":{},"vocabSketch":"` + "!" + ok[1:] + `"}`, "standard base64"},
		{`{"docs":1,"tokens":1,"df":{},"vocabSketch":"` + base64.StdEncoding.EncodeToString(bad) + `"}`, "register 77 is 52, the largest rank is 51"},
		{`{"docs":1,"tokens":1,"df":{},"vocab":"AQ==","vocabSketch":"` + ok + `"}`, "send one"},
	} {
		_, err := DecodeSearchResponse([]byte(wrap(tc.in)))
		wantErr(t, err, ErrInvalid, tc.msg)
	}
	r, err := DecodeSearchResponse([]byte(wrap(`{"docs":1,"tokens":1,"df":{},"vocabSketch":"` + ok + `"}`)))
	if err != nil || r.Stats.Cardinality() != 0 || !r.Stats.Sketched() {
		t.Fatalf("an empty sketch: %+v %v", r, err)
	}
}
