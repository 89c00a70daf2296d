package corpus

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// The generator tops the real paragraphs up to targetDocs docs. A generated
// doc is two to maxGenSents sentences of one source file's paragraphs, in the
// order they were written: it starts at a sentence drawn at random, and each
// further sentence is one of the next four (the very next one half the time),
// so most generated docs are runs of consecutive sentences and the rest skip
// a sentence or three. It stops growing once it is as long as a real
// paragraph drawn at random, and never grows past maxChars, the limit of a
// real paragraph. A draw that repeats a paragraph or an earlier generated doc
// (ignoring case) is dropped. The draws come from a PCG generator with a
// fixed seed, reduced to a range by multiplication (not by the math/rand
// methods, whose algorithms Go may change), so the generated docs are a
// function of the paragraphs alone. Should the paragraphs allow too few
// distinct docs, generation stops after maxStall draws in a row that add
// nothing, and the corpus is smaller.
const (
	targetDocs  = 1_200_000
	maxGenSents = 6
	maxGap      = 3                   // a further sentence skips at most this many
	maxStall    = 1 << 16             // draws in a row that add nothing before giving up
	genSeed     = 0x6d657368_67656e31 // "meshgen1"
)

// A draw packs into 64 bits: the first sentence, k (4 bits) and the gaps (2
// bits each). These fail to compile if the limits outgrow that.
const (
	_ = uint(3 - maxGap)
	_ = uint(12 - 2*(maxGenSents-1))
	_ = uint(15 - maxGenSents)
)

// sentence is one sentence of a real paragraph: base[doc].Content[off:end].
type sentence struct {
	doc      int32
	off, end uint32
}

// gen is a generated doc: sentence first, then k-1 further sentences, the
// j-th of them gaps[j] sentences after the one before it plus one. key is the
// start of the SHA-256 of its lower-cased content, as in an ID.
type gen struct {
	first int32
	k     uint8
	gaps  [maxGenSents - 1]uint8
	key   [idBytes]byte
}

// generate splits the paragraphs into sentences and draws the generated docs,
// writing the record of each to h. groups are the file groups of c.base, as
// extractAll returns them.
func (c *Corpus) generate(groups []int32, h hash.Hash) error {
	if len(groups) == 0 || groups[0] != 0 || groups[len(groups)-1] != int32(len(c.base)) {
		return errors.New("corpus: inconsistent file groups")
	}
	c.sents = make([]sentence, 0, 2*len(c.base))
	// fileEnd[i] is the end of the sentences of sentence i's file.
	var fileEnd []int32
	for g := 0; g+1 < len(groups); g++ {
		if groups[g] >= groups[g+1] {
			return errors.New("corpus: inconsistent file groups")
		}
		for d := groups[g]; d < groups[g+1]; d++ {
			splitSentences(c.base[d].Content, func(off, end int) {
				c.sents = append(c.sents, sentence{doc: d, off: uint32(off), end: uint32(end)})
			})
		}
		end := int32(len(c.sents))
		for len(fileEnd) < len(c.sents) {
			fileEnd = append(fileEnd, end)
		}
	}

	want := targetDocs - len(c.base)
	if want <= 0 || len(c.sents) == 0 {
		return nil
	}
	// seen has the first 8 bytes of the hash of every doc's lower-cased
	// content, as in its ID.
	seen := make(map[uint64]struct{}, targetDocs)
	for i := range c.base {
		var key [8]byte
		id := c.base[i].ID
		if len(id) != len(realPrefix)+2*idBytes {
			return fmt.Errorf("corpus: bad id %q", id)
		}
		if _, err := hex.Decode(key[:], []byte(id[len(realPrefix):len(realPrefix)+16])); err != nil {
			return fmt.Errorf("corpus: bad id %q", id)
		}
		seen[binary.LittleEndian.Uint64(key[:])] = struct{}{}
	}

	src := rand.NewPCG(genSeed, genSeed)
	intN := func(n int) int {
		hi, _ := bits.Mul64(src.Uint64(), uint64(n))
		return int(hi)
	}
	// aims are the lengths of the real paragraphs, capped at maxChars.
	aims := make([]uint16, len(c.base))
	for i := range c.base {
		aims[i] = uint16(min(len(c.base[i].Content), maxChars))
	}
	c.gens = make([]gen, 0, want)
	// drawn[i] has a bit for each draw of two to four sentences from
	// sentence i made so far; drawnLong has the rarer longer ones.
	drawn := make([][2]uint64, len(c.sents))
	drawnLong := make(map[uint64]struct{})
	var rec, low, id []byte
	for stall := 0; len(c.gens) < want && stall < maxStall; {
		stall++
		first := int32(intN(len(c.sents)))
		aim := int(aims[intN(len(aims))])
		end := fileEnd[first]
		g := gen{first: first, k: 1}
		n := c.sentLen(first)
		for j := first; g.k < maxGenSents && (g.k < 2 || n < aim); g.k++ {
			// The gap: 0 half the time, 1 a quarter, 2 or 3 an eighth each.
			gap := bits.TrailingZeros64(src.Uint64() | 1<<maxGap)
			j += 1 + int32(gap)
			if j >= end || n+1+c.sentLen(j) > maxChars {
				break
			}
			n += 1 + c.sentLen(j)
			g.gaps[g.k-1] = uint8(gap)
		}
		if g.k < 2 || n < minChars {
			continue
		}
		// The same draw again is the same doc: a cheap test before the
		// content's hash, which also catches the same text from elsewhere.
		pattern := uint64(0)
		for m := range int(g.k) - 1 {
			pattern |= uint64(g.gaps[m]) << (2 * m)
		}
		if g.k <= 4 {
			bit := (uint64(1)<<(2*(g.k-1))-4)/3 + pattern // k=2: 0-3, k=3: 4-19, k=4: 20-83
			w := &drawn[first][bit/64]
			if *w&(1<<(bit%64)) != 0 {
				continue
			}
			*w |= 1 << (bit % 64)
		} else {
			draw := uint64(first)<<16 | uint64(g.k)<<12 | pattern
			if _, dup := drawnLong[draw]; dup {
				continue
			}
			drawnLong[draw] = struct{}{}
		}
		rec = c.appendGen(rec[:0], &g)
		low = appendLower(low[:0], rec)
		sum := sha256.Sum256(low)
		key := binary.LittleEndian.Uint64(sum[:])
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		copy(g.key[:], sum[:])
		c.gens = append(c.gens, g)
		stall = 0
		d := &c.base[c.sents[first].doc]
		id = hex.AppendEncode(append(id[:0], genPrefix...), g.key[:])
		h.Write(appendRecordTail(rec, d.Title, d.Tags, id))
	}
	return nil
}

func (c *Corpus) sentLen(i int32) int {
	s := c.sents[i]
	return int(s.end - s.off)
}

// appendGen appends the sentences of g, one space apart.
func (c *Corpus) appendGen(buf []byte, g *gen) []byte {
	j := g.first
	for m := 0; m < int(g.k); m++ {
		if m > 0 {
			buf = append(buf, ' ')
			j += 1 + int32(g.gaps[m-1])
		}
		s := c.sents[j]
		buf = append(buf, c.base[s.doc].Content[s.off:s.end]...)
	}
	return buf
}

// genContent returns the content of g: a substring of a paragraph when its
// sentences are consecutive ones of one paragraph, else a new string.
func (c *Corpus) genContent(g *gen) string {
	last := g.first
	for m := 1; m < int(g.k); m++ {
		last += 1 + int32(g.gaps[m-1])
	}
	first, end := c.sents[g.first], c.sents[last]
	if first.doc == end.doc && int(last-g.first) == int(g.k)-1 {
		return c.base[first.doc].Content[first.off:end.end] // one space apart
	}
	return string(c.appendGen(nil, g))
}

// appendLower appends b lower-cased as strings.ToLower would.
func appendLower(dst, b []byte) []byte {
	start := len(dst)
	for _, ch := range b {
		if ch >= utf8.RuneSelf {
			return append(dst[:start], strings.ToLower(string(b))...)
		}
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		dst = append(dst, ch)
	}
	return dst
}
