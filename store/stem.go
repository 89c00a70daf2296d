package store

import (
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
)

// A requester analyzes the text of every candidate of a federated search
// (Scorer.Features), hundreds per search, and a fifth of that time went to
// the Porter stemmer: the same words, stemmed again and again. The scoring
// analyzer is the index's text analyzer with its stemmer behind a memo.

var (
	scoringAnalyzerOnce sync.Once
	scoringAnalyzerV    analysis.Analyzer
)

// scoringAnalyzer analyzes text exactly as the index's text analyzer does
// (TestScoringAnalyzerMatchesIndex, FuzzScoringAnalyzer), faster on text
// whose words it has seen.
func scoringAnalyzer() analysis.Analyzer {
	scoringAnalyzerOnce.Do(func() {
		text := textAnalyzers().text
		scoringAnalyzerV = text
		da, ok := text.(*analysis.DefaultAnalyzer)
		if !ok {
			return
		}
		c := *da
		c.TokenFilters = make([]analysis.TokenFilter, len(da.TokenFilters))
		for i, f := range da.TokenFilters {
			if p, ok := f.(*porter.PorterStemmer); ok {
				f = &memoStemmer{stem: p}
			}
			c.TokenFilters[i] = f
		}
		scoringAnalyzerV = &c
	})
	return scoringAnalyzerV
}

// maxMemoStems bounds memoStemmer's memo; past it, the memo starts over.
const maxMemoStems = 1 << 16

// memoStemmer is a Porter stemmer that remembers the stems of the words it
// has stemmed. The terms it sets are shared between token streams: they
// must not be modified (no filter comes after the stemmer).
type memoStemmer struct {
	stem *porter.PorterStemmer
	mu   sync.RWMutex
	memo map[string][]byte
}

func (m *memoStemmer) Filter(input analysis.TokenStream) analysis.TokenStream {
	var miss analysis.TokenStream
	m.mu.RLock()
	for _, tok := range input {
		if tok.KeyWord {
			continue
		}
		if s, ok := m.memo[string(tok.Term)]; ok {
			tok.Term = s
		} else {
			miss = append(miss, tok)
		}
	}
	m.mu.RUnlock()
	if len(miss) == 0 {
		return input
	}
	words := make([]string, len(miss))
	for i, tok := range miss {
		words[i] = string(tok.Term)
	}
	m.stem.Filter(miss) // stems the tokens in place
	m.mu.Lock()
	if m.memo == nil || len(m.memo)+len(miss) > maxMemoStems {
		m.memo = make(map[string][]byte)
	}
	for i, tok := range miss {
		m.memo[words[i]] = tok.Term
	}
	m.mu.Unlock()
	return input
}
