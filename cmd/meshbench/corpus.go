package main

import (
	"github.com/meshprotocol/mesh/internal/corpus"
)

// corpusInfo names the corpus a result was measured on, so that results from
// two machines can be compared: the same hash is the same docs.
type corpusInfo struct {
	CorpusHash string `json:"corpus_hash"`
	CorpusDocs int    `json:"corpus_docs"`
}

// loadCorpus samples n docs with seed from the repository's corpus (see
// internal/corpus) and says which corpus that is. The corpus is built for
// the call and not kept (corpus.Open would keep it for the process), so that
// only the docs drawn stay in memory while a scenario measures.
func loadCorpus(e *env, n int, seed int64) ([]corpus.Doc, corpusInfo, error) {
	c, err := corpus.Build(corpus.Config{})
	if err != nil {
		return nil, corpusInfo{}, err
	}
	e.logf("corpus %s: %d docs (%d paragraphs of Go %s and %d modules, the rest generated from them)",
		c.Hash(), c.Len(), c.Paragraphs(), c.GoVersion(), len(c.Modules()))
	docs, err := c.Load(n, seed)
	if err != nil {
		return nil, corpusInfo{}, err
	}
	return docs, corpusInfo{CorpusHash: c.Hash(), CorpusDocs: c.Len()}, nil
}
