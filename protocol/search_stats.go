package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync"
)

// Caps of SearchStats.
const (
	// MaxSearchStatsTerms caps the terms of SearchStats.DocFreq.
	MaxSearchStatsTerms = 256
	// MaxSearchStatsTermLength caps one term of SearchStats.DocFreq, in
	// bytes.
	MaxSearchStatsTermLength = 256
	// MaxSearchVocab caps the hashes of SearchStats.Vocab, in memory and
	// as decoded (older nodes sent lists this long). A larger vocabulary
	// is kept as a sketch (VocabSketch); on the wire, one over
	// MaxWireVocab already is.
	MaxSearchVocab = 1 << 18
)

// SearchStats are the statistics BM25 needs of the corpus a search
// response was drawn from: the public lessons of the answering node, and
// of the nodes it forwarded to, added up. A requester adds up the
// statistics of every answer and scores all the candidates with them, so
// that scores from different nodes compare: each candidate is scored as
// one index over the union of the answering nodes' lessons would score it.
//
// The statistics are of the one scored text field of the store's index
// (title, content and tags, analyzed by the English analyzer). Terms are
// analyzed terms (stems), as the index holds them.
type SearchStats struct {
	// Docs is the number of lessons searched.
	Docs int64
	// Tokens is their total text length, in analyzed tokens.
	Tokens int64
	// Vocab holds the distinct terms of those lessons, each as
	// VocabHash(term), sorted ascending, without repeats. A set, so that
	// forwarders can merge vocabularies that overlap; bleve's BM25 takes
	// its average field length from the number of distinct terms.
	Vocab []uint32
	// VocabSketch, when not nil, is a HyperLogLog sketch of more of the
	// vocabulary (VocabSketchRegisters registers; see vocab_sketch.go):
	// the vocabulary is the union of Vocab and the sketch's set, and its
	// size is then an estimate. A vocabulary too large to list exactly
	// is sketched, so that statistics stay small however large the
	// corpus.
	VocabSketch []uint8
	// Terms counts distinct terms outside Vocab and VocabSketch: those
	// older nodes counted instead of listing them. Such terms are counted
	// once per node holding them, not once overall.
	Terms int64
	// DocFreq gives, for each term of the query, the number of lessons
	// holding it.
	DocFreq map[string]int64
}

// VocabHash is the hash of a term in SearchStats.Vocab: 32-bit FNV-1a of
// its UTF-8 bytes.
func VocabHash(term string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(term))
	return h.Sum32()
}

// Cardinality is the number of distinct terms of the corpus: the hashes of
// Vocab (with those of VocabSketch, estimated, if there is one) plus
// Terms.
func (s *SearchStats) Cardinality() int64 {
	if s == nil {
		return 0
	}
	if s.VocabSketch == nil {
		return addSat(int64(len(s.Vocab)), s.Terms)
	}
	regs := slices.Clone(s.VocabSketch)
	sketchAdd(regs, s.Vocab)
	return addSat(int64(math.Round(sketchEstimate(regs))), s.Terms)
}

// VocabStats returns statistics holding only the vocabulary of the term
// hashes (VocabHash values, in any order, repeats allowed): its sorted
// list, or its sketch if that holds more than MaxSearchVocab hashes.
func VocabStats(hashes []uint32) *SearchStats {
	slices.Sort(hashes)
	hashes = slices.Compact(hashes) // 32-bit hashes of distinct terms may collide
	switch {
	case len(hashes) == 0:
		return &SearchStats{}
	case len(hashes) > MaxSearchVocab:
		return &SearchStats{VocabSketch: sketchOf(hashes)}
	}
	return &SearchStats{Vocab: hashes}
}

// Sketched reports whether the vocabulary's size is an estimate.
func (s *SearchStats) Sketched() bool { return s != nil && s.VocabSketch != nil }

// wireSketch returns the sketch s travels with, nil if its vocabulary
// travels as a list: the union of VocabSketch and Vocab, for a sketch or
// a list over MaxWireVocab.
func (s *SearchStats) wireSketch() []uint8 {
	if s.VocabSketch == nil && len(s.Vocab) <= MaxWireVocab {
		return nil
	}
	regs := make([]uint8, VocabSketchRegisters)
	if s.VocabSketch != nil {
		copy(regs, s.VocabSketch)
	}
	sketchAdd(regs, s.Vocab)
	return regs
}

// EncodedSizeBound bounds the size of s's JSON encoding.
func (s *SearchStats) EncodedSizeBound() int {
	if s == nil {
		return 0
	}
	n := 256 + len(s.DocFreq)*(MaxSearchStatsTermLength+32)
	if s.VocabSketch != nil || len(s.Vocab) > MaxWireVocab {
		return n + base64.StdEncoding.EncodedLen(VocabSketchRegisters)
	}
	return n + base64.StdEncoding.EncodedLen(binary.MaxVarintLen32*len(s.Vocab))
}

// Merge adds o to s: counts add up, vocabularies are united, and the
// document frequencies of the terms s already has add up (terms only o has
// are ignored, so a peer cannot grow the map). The vocabulary stays an
// exact list while both are lists and their union holds at most
// MaxSearchVocab hashes; otherwise it becomes a sketch.
func (s *SearchStats) Merge(o *SearchStats) {
	if o == nil {
		return
	}
	s.addCounts(o)
	if len(o.Vocab) == 0 && o.VocabSketch == nil {
		return
	}
	if s.VocabSketch == nil && o.VocabSketch == nil {
		u := unionSorted(s.Vocab, o.Vocab)
		if len(u) <= MaxSearchVocab {
			s.Vocab = u
			return
		}
		s.VocabSketch, s.Vocab = sketchOf(u), nil
		return
	}
	// A sketch is written afresh, never in place: s's may be shared with
	// a cache (see Clone).
	regs := make([]uint8, VocabSketchRegisters)
	if s.VocabSketch != nil {
		copy(regs, s.VocabSketch)
	}
	sketchAdd(regs, s.Vocab)
	sketchAdd(regs, o.Vocab)
	if o.VocabSketch != nil {
		sketchMerge(regs, o.VocabSketch)
	}
	s.VocabSketch, s.Vocab = regs, nil
}

// Clone returns a deep copy of s.
func (s *SearchStats) Clone() *SearchStats {
	if s == nil {
		return nil
	}
	c := *s
	c.Vocab = slices.Clone(s.Vocab)
	c.VocabSketch = slices.Clone(s.VocabSketch)
	if s.DocFreq != nil {
		c.DocFreq = make(map[string]int64, len(s.DocFreq))
		for t, n := range s.DocFreq {
			c.DocFreq[t] = n
		}
	}
	return &c
}

func addSat(a, b int64) int64 {
	if a > maxSafeInt-b {
		return maxSafeInt
	}
	return a + b
}

// addCounts adds o's counts to s's: documents, tokens, terms left out of
// the vocabulary, and the document frequencies of s's own terms.
func (s *SearchStats) addCounts(o *SearchStats) {
	s.Docs = addSat(s.Docs, o.Docs)
	s.Tokens = addSat(s.Tokens, o.Tokens)
	s.Terms = addSat(s.Terms, o.Terms)
	for t := range s.DocFreq {
		s.DocFreq[t] = addSat(s.DocFreq[t], o.DocFreq[t])
	}
}

// MergeAll merges every one of others into s, as Merge does one after the
// other, but unites vocabulary lists in one pass: merging k answers' lists
// one by one writes the growing union k times.
func (s *SearchStats) MergeAll(others []*SearchStats) {
	lists := [][]uint32{s.Vocab}
	total := len(s.Vocab)
	sketch := s.VocabSketch != nil
	for _, o := range others {
		if o == nil {
			continue
		}
		lists = append(lists, o.Vocab)
		total += len(o.Vocab)
		sketch = sketch || o.VocabSketch != nil
	}
	if sketch || len(lists) <= 2 {
		for _, o := range others {
			s.Merge(o)
		}
		return
	}
	for _, o := range others {
		if o != nil {
			s.addCounts(o)
		}
	}
	u := unionSortedAll(lists, total)
	if len(u) <= MaxSearchVocab {
		s.Vocab = u
		return
	}
	s.VocabSketch, s.Vocab = sketchOf(u), nil
}

// unionSortedAll unites sorted sets of hashes, of total length total, in
// one pass: a k-way merge over a heap of the lists' heads.
func unionSortedAll(lists [][]uint32, total int) []uint32 {
	type head struct {
		v    uint32
		list int
		pos  int
	}
	h := make([]head, 0, len(lists))
	for i, l := range lists {
		if len(l) > 0 {
			h = append(h, head{l[0], i, 0})
		}
	}
	less := func(i, j int) bool { return h[i].v < h[j].v }
	down := func(i int) {
		for {
			m := i
			if l := 2*i + 1; l < len(h) && less(l, m) {
				m = l
			}
			if r := 2*i + 2; r < len(h) && less(r, m) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	out := make([]uint32, 0, total)
	for len(h) > 0 {
		top := &h[0]
		if n := len(out); n == 0 || out[n-1] != top.v {
			out = append(out, top.v)
		}
		if top.pos++; top.pos < len(lists[top.list]) {
			top.v = lists[top.list][top.pos]
		} else {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	return out
}

// unionSorted unites two sorted sets of hashes.
func unionSorted(a, b []uint32) []uint32 {
	out := make([]uint32, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// searchStatsJSON is the wire form of SearchStats.
type searchStatsJSON struct {
	Docs    int64            `json:"docs"`
	Tokens  int64            `json:"tokens"`
	Vocab   string           `json:"vocab,omitempty"`
	Sketch  string           `json:"vocabSketch,omitempty"`
	Terms   int64            `json:"terms,omitempty"`
	DocFreq map[string]int64 `json:"df"`
}

// MarshalJSON encodes s; Vocab travels as base64 (standard, padded) of the
// varint deltas of the sorted hashes: the first hash, then each hash less
// the one before. A vocabulary with a sketch, or of more than
// MaxWireVocab hashes, travels instead as the base64 of the registers of
// its sketch (vocabSketch).
func (s SearchStats) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := s.appendJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// vocab is s.Vocab, nil for nil s.
func (s *SearchStats) vocab() []uint32 {
	if s == nil {
		return nil
	}
	return s.Vocab
}

// appendJSON writes s's JSON encoding to b, as encoding/json would write
// searchStatsJSON (members in that order, df keys sorted, strings escaped
// alike), without the reflection and the re-validation encoding/json does
// of a Marshaler's output: a forwarder's vocabulary can be tens of
// kilobytes, and every search answer carries one.
func (s *SearchStats) appendJSON(b *bytes.Buffer) error {
	b.WriteString(`{"docs":`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), s.Docs, 10))
	b.WriteString(`,"tokens":`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), s.Tokens, 10))
	if regs := s.wireSketch(); regs != nil {
		b.WriteString(`,"vocabSketch":"`)
		n := base64.StdEncoding.EncodedLen(len(regs))
		b.Grow(n + 1)
		out := b.AvailableBuffer()[:n]
		base64.StdEncoding.Encode(out, regs)
		b.Write(out)
		b.WriteByte('"')
	} else if len(s.Vocab) > 0 {
		sp := vocabScratch.Get().(*[]byte)
		buf := (*sp)[:0]
		var prev uint32
		for _, h := range s.Vocab {
			buf = binary.AppendUvarint(buf, uint64(h-prev))
			prev = h
		}
		b.WriteString(`,"vocab":"`)
		n := base64.StdEncoding.EncodedLen(len(buf))
		b.Grow(n + 1)
		out := b.AvailableBuffer()[:n]
		base64.StdEncoding.Encode(out, buf)
		b.Write(out)
		b.WriteByte('"')
		putVocabScratch(sp, buf)
	}
	if s.Terms != 0 {
		b.WriteString(`,"terms":`)
		b.Write(strconv.AppendInt(b.AvailableBuffer(), s.Terms, 10))
	}
	b.WriteString(`,"df":{`)
	keys := make([]string, 0, len(s.DocFreq))
	for k := range s.DocFreq {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(strconv.AppendInt(b.AvailableBuffer(), s.DocFreq[k], 10))
	}
	b.WriteString("}}")
	return nil
}

// decodeSearchStats decodes and checks the stats of a search response:
// non-negative counts, no document frequency over docs, at most
// MaxSearchStatsTerms terms of 1 to
// MaxSearchStatsTermLength bytes, at most MaxSearchVocab hashes, strictly
// ascending.
func decodeSearchStats(raw []byte) (*SearchStats, error) {
	const path = "search response.stats"
	o, err := splitObject(path, raw)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"docs", "tokens", "df"}, "vocab", "vocabSketch", "terms"); err != nil {
		return nil, err
	}
	s := &SearchStats{}
	if s.Docs, err = o.nonNegative("docs"); err != nil {
		return nil, err
	}
	if s.Tokens, err = o.nonNegative("tokens"); err != nil {
		return nil, err
	}
	if o.has("terms") {
		if s.Terms, err = o.nonNegative("terms"); err != nil {
			return nil, err
		}
	}
	dfo, err := splitObject(path+".df", o.get("df"))
	if err != nil {
		return nil, err
	}
	if len(dfo.members) > MaxSearchStatsTerms {
		return nil, invalidf("%s.df: %d terms, the limit is %d", path, len(dfo.members), MaxSearchStatsTerms)
	}
	s.DocFreq = make(map[string]int64, len(dfo.members))
	for i, m := range dfo.members {
		t := m.name
		if t == "" || len(t) > MaxSearchStatsTermLength {
			return nil, invalidf("%s.df: each term must be 1 to %d bytes", path, MaxSearchStatsTermLength)
		}
		// The member on its own: a look-up by name per term would scan them all.
		one := object{path: dfo.path, members: dfo.members[i : i+1]}
		if s.DocFreq[t], err = one.nonNegative(t); err != nil {
			return nil, err
		}
		if s.DocFreq[t] > s.Docs {
			return nil, invalidf("%s.df.%s: %d lessons of %d", path, truncate(t), s.DocFreq[t], s.Docs)
		}
	}
	if o.has("vocab") {
		v, err := o.strBytes("vocab")
		if err != nil {
			return nil, err
		}
		if s.Vocab, err = decodeVocab(v); err != nil {
			return nil, err
		}
	}
	if o.has("vocabSketch") {
		if o.has("vocab") {
			return nil, invalidf("%s: vocab and vocabSketch: send one (a sketch of the whole vocabulary)", path)
		}
		v, err := o.strBytes("vocabSketch")
		if err != nil {
			return nil, err
		}
		if s.VocabSketch, err = decodeVocabSketch(string(v)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// decodeVocab decodes the wire form of SearchStats.Vocab.
// vocabScratch pools the buffers of varint-coded vocabularies, between
// the hashes and their base64.
var vocabScratch = sync.Pool{New: func() any { return new([]byte) }}

// putVocabScratch gives buf, taken from sp, back to the pool, unless it
// grew past the largest vocabulary list.
func putVocabScratch(sp *[]byte, buf []byte) {
	if cap(buf) <= binary.MaxVarintLen32*MaxSearchVocab {
		*sp = buf[:0]
		vocabScratch.Put(sp)
	}
}

func decodeVocab(v []byte) ([]uint32, error) {
	const path = "search response.stats.vocab"
	if len(v) > base64.StdEncoding.EncodedLen(binary.MaxVarintLen32*MaxSearchVocab) {
		return nil, invalidf("%s: %d bytes, the limit is %d hashes", path, len(v), MaxSearchVocab)
	}
	sp := vocabScratch.Get().(*[]byte)
	buf := slices.Grow((*sp)[:0], base64.StdEncoding.DecodedLen(len(v)))
	buf = buf[:base64.StdEncoding.DecodedLen(len(v))]
	dn, err := base64.StdEncoding.Strict().Decode(buf, v)
	defer putVocabScratch(sp, buf)
	if err != nil {
		return nil, invalidf("%s: want standard base64", path)
	}
	buf = buf[:dn]
	if len(buf) == 0 {
		return nil, invalidf("%s: empty (leave it out instead)", path)
	}
	// Every varint ends in the one byte of it under 0x80: that many
	// hashes, at most.
	n := 0
	for _, c := range buf {
		if c < 0x80 {
			n++
		}
	}
	out := make([]uint32, 0, min(n, MaxSearchVocab))
	var prev uint64
	for len(buf) > 0 {
		d, n := binary.Uvarint(buf)
		if n <= 0 || n > binary.MaxVarintLen32 {
			return nil, invalidf("%s: bad varint at hash %d", path, len(out))
		}
		buf = buf[n:]
		if len(out) > 0 && d == 0 {
			return nil, invalidf("%s: hash %d repeats the one before: want strictly ascending", path, len(out))
		}
		h := prev + d
		if h > 0xFFFFFFFF {
			return nil, invalidf("%s: hash %d over 32 bits", path, len(out))
		}
		if len(out) == MaxSearchVocab {
			return nil, invalidf("%s: more than %d hashes", path, MaxSearchVocab)
		}
		out = append(out, uint32(h))
		prev = h
	}
	return out, nil
}
