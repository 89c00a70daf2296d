package corpus

import (
	"math/rand/v2"
	"strings"
	"unicode"
)

// Queries returns n search queries of 2 to 4 words, each made of consecutive
// content words (stopwords skipped) of a doc picked at random from docs, the
// way a person would type a phrase they half remember. The result depends
// only on docs and seed. It returns fewer than n queries only if no doc has
// two content words.
func Queries(docs []Doc, n int, seed int64) []string {
	if len(docs) == 0 || n <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x71756572696573)) // "queries"
	out := make([]string, 0, n)
	// Every doc that passed clean has a dozen words, so failures are rare;
	// the bound only stops a loop over a degenerate input.
	for tries := 0; len(out) < n && tries < 20*n+100; tries++ {
		words := ContentWords(docs[rng.IntN(len(docs))].Content)
		if len(words) < 2 {
			continue
		}
		k := 2 + rng.IntN(3)
		if k > len(words) {
			k = len(words)
		}
		start := rng.IntN(len(words) - k + 1)
		out = append(out, strings.Join(words[start:start+k], " "))
	}
	return out
}

// ContentWords returns the lower-cased words of text that carry meaning: three
// to twenty ASCII letters, not a mixed-case identifier, not a stopword, each
// word once, in order.
func ContentWords(text string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(w) < 3 || len(w) > 20 || strings.IndexFunc(w, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsDigit(r) }) >= 0 {
			continue
		}
		if strings.IndexFunc(w[1:], unicode.IsUpper) >= 0 {
			continue // an identifier such as NewReader, not a word
		}
		w = strings.ToLower(w)
		if stopwords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// stopwords are common English words and doc-comment filler that make poor
// search terms.
var stopwords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`
a about above after again against all almost also although always am among an and another any
are aren as at be because been before being below between both but by can cannot could did
didn do does doesn doing don done down during each either else enough etc even ever every
few for from further had has hasn have haven having he her here hers herself him himself his
how however if in into is isn it its itself just least less let like likely made make makes
many may me might more most much must my myself neither never no nor not now of off often
on once one only or other others otherwise our ours ourselves out over own per perhaps
rather same several shall she should since so some something such than that the their
theirs them themselves then there therefore these they this those though through thus to
too two under until up upon us use used uses using very via was wasn we well were weren
what whatever when where whether which while who whom whose why will with within without
won would yet you your yours yourself yourselves
returns return returned called call calls new value values true false nil err non
given get gets set sets see note instead way ways already able need needs want
`) {
		m[w] = true
	}
	return m
}()
