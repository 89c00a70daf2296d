package protocol

import (
	"encoding/base64"
	"math"
	"math/bits"
)

// A vocabulary sketch is a HyperLogLog sketch of a set of vocabulary
// hashes (see SearchStats): a fixed-size summary of a vocabulary too large
// to list, whose union with another is exact (register by register, the
// larger value) and whose cardinality is estimated within about 1%
// (standard error 1.04/√VocabSketchRegisters = 0.8%).
//
// The wire form is VocabSketchRegisters bytes, one a register. A hash h
// (VocabHash, 32 bits) goes to a register through a 64-bit mix, SplitMix64's
// finalizer of uint64(h) + 0x9e3779b97f4a7c15:
//
//	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
//	z = (z ^ z>>27) * 0x94d049bb133111eb
//	z = z ^ z>>31
//
// The top VocabSketchBits bits of z name the register; the register keeps
// the largest rank seen, the rank being 1 + the number of leading zero bits
// of the remaining 50 (so 1 to 51). An empty register is 0.
//
// The cardinality is Ertl's improved raw estimator ("New cardinality
// estimation algorithms for HyperLogLog sketches", 2017, algorithm 6),
// which needs no bias tables and is unbiased from empty to 2^50.
//
// MESH implements the sketch itself rather than use a HyperLogLog library
// because the register layout is a wire format: it must be exactly this,
// documented, and stable across versions, which no library's own
// serialization promises.

// Sizes of a vocabulary sketch.
const (
	// VocabSketchBits is the number of hash bits that name a register.
	VocabSketchBits = 14
	// VocabSketchRegisters is the number of registers of a sketch, and
	// the size of its wire form in bytes.
	VocabSketchRegisters = 1 << VocabSketchBits
	// maxVocabRank is the largest register value.
	maxVocabRank = 64 - VocabSketchBits + 1
	// MaxWireVocab is the largest vocabulary that travels as a list of
	// hashes (SearchStats.Vocab, exact): a larger one travels as a
	// sketch, of fixed size. At this size the list's wire form (about 3
	// bytes a hash) is about 1.5 times the sketch's.
	MaxWireVocab = 8192
)

// vocabRegister returns the register of hash h and its rank.
func vocabRegister(h uint32) (int, uint8) {
	z := uint64(h) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	j := int(z >> (64 - VocabSketchBits))
	rank := bits.LeadingZeros64(z<<VocabSketchBits|1<<(VocabSketchBits-1)) + 1
	return j, uint8(rank)
}

// sketchAdd adds hashes to the sketch regs.
func sketchAdd(regs []uint8, hashes []uint32) {
	for _, h := range hashes {
		j, r := vocabRegister(h)
		if r > regs[j] {
			regs[j] = r
		}
	}
}

// sketchOf returns the sketch of hashes.
func sketchOf(hashes []uint32) []uint8 {
	regs := make([]uint8, VocabSketchRegisters)
	sketchAdd(regs, hashes)
	return regs
}

// sketchMerge unites the sketch o into regs.
func sketchMerge(regs, o []uint8) {
	for j, r := range o {
		if r > regs[j] {
			regs[j] = r
		}
	}
}

// sketchEstimate estimates the number of distinct hashes added to regs.
func sketchEstimate(regs []uint8) float64 {
	const m = float64(VocabSketchRegisters)
	var c [maxVocabRank + 1]int
	for _, r := range regs {
		c[r]++
	}
	z := m * sketchTau(1-float64(c[maxVocabRank])/m)
	for k := maxVocabRank - 1; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * sketchSigma(float64(c[0])/m)
	if math.IsInf(z, 1) {
		return 0 // every register empty
	}
	return m * m / (2 * math.Ln2) / z
}

// sketchSigma is Ertl's σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1).
func sketchSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

// sketchTau is Ertl's τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))²·2^-k) / 3.
func sketchTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// decodeVocabSketch decodes the wire form of SearchStats.VocabSketch:
// standard base64 of exactly VocabSketchRegisters bytes, each at most
// 51.
func decodeVocabSketch(v string) ([]uint8, error) {
	const path = "search response.stats.vocabSketch"
	if len(v) != base64.StdEncoding.EncodedLen(VocabSketchRegisters) {
		return nil, invalidf("%s: %d characters, want %d (base64 of %d registers)", path, len(v), base64.StdEncoding.EncodedLen(VocabSketchRegisters), VocabSketchRegisters)
	}
	regs, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil {
		return nil, invalidf("%s: want standard base64", path)
	}
	if len(regs) != VocabSketchRegisters {
		return nil, invalidf("%s: %d registers, want %d", path, len(regs), VocabSketchRegisters)
	}
	for j, r := range regs {
		if r > maxVocabRank {
			return nil, invalidf("%s: register %d is %d, the largest rank is %d", path, j, r, maxVocabRank)
		}
	}
	return regs, nil
}
