package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/meshprotocol/mesh/protocol"
)

// Corpus statistics and a scorer for federated search.
//
// BM25 scores from different indexes do not compare: each index weighs a
// word by its own document frequencies and lengths. A node answering a
// federated search therefore also returns the statistics of the corpus it
// searched (SearchStats), the requester adds them up over every answer,
// and Scorer scores each candidate exactly as Search would if one index
// held the union of the answering nodes' lessons.
//
// How bleve v2.6.3 scores BM25 (search/searcher/search_term.go,
// search/scorer/scorer_term.go), which Scorer reproduces bit for bit:
//   - N is the index's document count and df(t) the number of documents
//     whose text field holds t; idf(t) = ln(1 + (N - df + 0.5)/(df + 0.5));
//   - the "average document length" is ceil(C/N), where C is the field's
//     cardinality: the number of distinct terms of the field, summed over
//     the index's segments (one segment: the distinct terms of the
//     corpus). It is not the mean token count;
//   - a document's field length is 1/norm², norm being float32(1/√len);
//   - a term scores idf · tf·k1 / (tf + k1·(1 - b + b·len/avg)), tf = √freq,
//     times the query weight idf · queryNorm, queryNorm = 1/√(Σ idf²) over
//     every term of the query;
//   - the words (should clauses) are summed, in ascending order of document
//     frequency, and multiplied by the coord factor matched/words; phrases
//     (must clauses) add their words' scores (phrase scores are not checked
//     bit for bit against bleve).
//
// The statistics of one node's corpus count its distinct terms as a set of
// hashes (protocol.SearchStats.Vocab) so that the union over nodes is
// exact; a single-segment index over that union has exactly that
// cardinality. A vocabulary of more than protocol.MaxWireVocab hashes
// travels as a HyperLogLog sketch instead (protocol.SearchStats.VocabSketch),
// so that an answer's statistics do not grow with the corpus; the union's
// cardinality, and so the average length, is then an estimate (0.8%
// standard error).

// corpusStats are the statistics of one corpus, as of one index version.
type corpusStats struct {
	idx     bleve.Index
	version uint64
	docs    int64
	tokens  int64
	df      map[string]int64
	vocab   []uint32 // sorted
	sketch  []uint8  // the vocabulary's sketch instead, over protocol.MaxSearchVocab
	// computed is when the figures were computed (monotonic clock).
	computed time.Time
}

// statsCache holds the corpus statistics per origin. They are recomputed
// when the index changes, but not on the path of a search: a search is
// answered from the cached figures while they are younger than maxAge
// (DefaultStatsMaxAge) even if the index changed since, and a search that
// finds them stale starts one background recomputation and is answered
// from them all the same. Only a search with no figures at all waits for
// them. So the statistics lag the writes by about maxAge (plus the time a
// pass takes), and are exact for a store whose writes have settled.
type statsCache struct {
	mu         sync.Mutex // guards the fields below; never held while computing
	corpora    map[string]*corpusStats
	refreshing map[string]bool
	maxAge     time.Duration // 0: DefaultStatsMaxAge; < 0: always exact
	kick       chan struct{} // wakes the background refreshes

	computeMu sync.Mutex // held while computing: one computation at a time
}

// DefaultStatsMaxAge is how long the corpus statistics of federated search
// are served after a write before they are recomputed (in the background).
const DefaultStatsMaxAge = 5 * time.Second

// SetStatsMaxAge sets how long cached search statistics may be served
// after the index changed (DefaultStatsMaxAge for 0). A negative value
// makes every SearchStats after a write wait for exact figures, as a
// benchmark or a test may want; RefreshSearchStats does so once.
func (s *Store) SetStatsMaxAge(d time.Duration) {
	s.stats.mu.Lock()
	s.stats.maxAge = d
	s.stats.mu.Unlock()
	s.kickStatsRefresh()
}

// RefreshSearchStats computes the search statistics of both origins now
// if the index changed since they were, and returns when they are exact
// for the index as it is: what SearchStats then returns reflects every
// write made before the call.
func (s *Store) RefreshSearchStats(ctx context.Context) error {
	for _, origin := range []string{OriginLocal, OriginAll} {
		if _, err := s.refreshCorpus(ctx, origin); err != nil {
			return fmt.Errorf("store: refresh search stats: %w", err)
		}
	}
	return nil
}

// SearchStats returns the statistics of the public corpus for the query
// text: the public lessons this store would answer a federated search with
// (origin OriginLocal: this node's own records that are published public;
// OriginAll: those and the public remote lessons it caches), not expired,
// as indexed in the text field. DocFreq holds the query's analyzed words
// and the words of its phrases. The corpus figures are computed by a pass
// over the public lessons and cached; after a write they are recomputed in
// the background and may lag the writes by DefaultStatsMaxAge (see
// statsCache and SetStatsMaxAge), so federated scoring is exact for stores
// whose writes have settled. RefreshSearchStats makes them exact at once.
func (s *Store) SearchStats(ctx context.Context, text, origin string) (*protocol.SearchStats, error) {
	s.flushIndex()
	pq, err := ParseQuery(text)
	if err != nil {
		return nil, fmt.Errorf("store: search stats: %w", err)
	}
	return s.SearchStatsOf(ctx, pq, origin)
}

// SearchStatsOf is SearchStats for a query parsed already.
func (s *Store) SearchStatsOf(ctx context.Context, pq ParsedQuery, origin string) (*protocol.SearchStats, error) {
	s.flushIndex()
	switch origin {
	case "", OriginLocal:
		origin = OriginLocal
	case OriginAll:
	default:
		return nil, fmt.Errorf("store: search stats: %w", invalidf("origin %q: want local or all", truncate(origin)))
	}
	c, err := s.corpus(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("store: search stats: %w", err)
	}
	// Vocab and VocabSketch are shared with the cache: SearchStats.Merge
	// writes neither in place.
	out := &protocol.SearchStats{Docs: c.docs, Tokens: c.tokens, Vocab: c.vocab, VocabSketch: c.sketch, DocFreq: map[string]int64{}}
	for _, t := range QueryTerms(pq) {
		out.DocFreq[t] = c.df[t]
	}
	return out, nil
}

// corpus returns the statistics of the public corpus of origin: the
// cached ones if the index did not change since, or if it did but they
// can still be served (see statsCache), computing them otherwise.
func (s *Store) corpus(ctx context.Context, origin string) (*corpusStats, error) {
	s.mu.RLock()
	idx, version := s.idx, s.indexWrites.Load()
	s.mu.RUnlock()
	s.stats.mu.Lock()
	c := s.stats.corpora[origin]
	maxAge := s.stats.maxAge
	if maxAge == 0 {
		maxAge = DefaultStatsMaxAge
	}
	if c != nil && c.idx == idx && (c.version == version || maxAge > 0) {
		if c.version != version && !s.stats.refreshing[origin] && s.startStatsRefresh(origin) {
			if s.stats.refreshing == nil {
				s.stats.refreshing = map[string]bool{}
			}
			s.stats.refreshing[origin] = true
		}
		s.stats.mu.Unlock()
		return c, nil
	}
	s.stats.mu.Unlock()
	return s.refreshCorpus(ctx, origin)
}

// startStatsRefresh recomputes the statistics of origin in the background
// once they are maxAge old, and again as long as the index changed while
// it did; it reports false if the store is closing. stats.mu is held.
func (s *Store) startStatsRefresh(origin string) bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closing || s.life == nil {
		return false
	}
	if s.stats.kick == nil {
		s.stats.kick = make(chan struct{}, 2) // one per origin
	}
	kick := s.stats.kick
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.stats.mu.Lock()
			delete(s.stats.refreshing, origin)
			s.stats.mu.Unlock()
		}()
		// Bounded: each round either waits for the figures to age, or
		// computes them; a store written without pause gets a fresh pass
		// per max age.
		for range 10000 {
			s.stats.mu.Lock()
			c, maxAge := s.stats.corpora[origin], s.stats.maxAge
			s.stats.mu.Unlock()
			if maxAge == 0 {
				maxAge = DefaultStatsMaxAge
			}
			if c == nil || c.version == s.indexWrites.Load() {
				return
			}
			if wait := maxAge - time.Since(c.computed); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-s.life.Done():
					t.Stop()
					return
				case <-kick: // the max age changed, or figures were computed
				case <-t.C:
				}
				t.Stop()
				continue
			}
			if _, err := s.refreshCorpus(s.life, origin); err != nil {
				if s.life.Err() == nil {
					s.log.Warn("store: search stats refresh", "err", err)
				}
				return
			}
		}
	}()
	return true
}

// kickStatsRefresh wakes a background refresh waiting for the figures to
// age.
func (s *Store) kickStatsRefresh() {
	s.stats.mu.Lock()
	k := s.stats.kick
	s.stats.mu.Unlock()
	for range cap(k) {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// refreshCorpus computes the statistics of origin unless they are exact
// for the index as it is now, one computation at a time.
func (s *Store) refreshCorpus(ctx context.Context, origin string) (*corpusStats, error) {
	s.stats.computeMu.Lock()
	defer s.stats.computeMu.Unlock()
	s.mu.RLock()
	idx, version := s.idx, s.indexWrites.Load()
	s.mu.RUnlock()
	s.stats.mu.Lock()
	c := s.stats.corpora[origin]
	s.stats.mu.Unlock()
	if c != nil && c.idx == idx && c.version == version {
		return c, nil
	}
	// The figures serve every later search until the next write: compute
	// them to the end even if this search gives up; only the store's
	// closing stops a background pass.
	cctx := context.WithoutCancel(ctx)
	if ctx == s.life {
		cctx = ctx
	}
	c, err := s.computeCorpus(cctx, origin)
	if err != nil {
		return nil, err
	}
	c.idx, c.version, c.computed = idx, version, time.Now()
	s.stats.mu.Lock()
	if s.stats.corpora == nil {
		s.stats.corpora = map[string]*corpusStats{}
	}
	s.stats.corpora[origin] = c
	s.stats.mu.Unlock()
	s.kickStatsRefresh()
	return c, nil
}

// statsPage is the number of documents listed per index search.
const statsPage = 1000

func (s *Store) computeCorpus(ctx context.Context, origin string) (*corpusStats, error) {
	ids, err := s.publicDocIDs(ctx, origin)
	if err != nil {
		return nil, err
	}
	c := &corpusStats{df: map[string]int64{}}
	an := s.an.text
	for _, id := range ids {
		var sl *protocol.SignedLesson
		if isRemoteDoc(id) {
			sl, err = s.Remote(ctx, id)
		} else {
			sl, err = s.Publication(ctx, id)
		}
		if errors.Is(err, ErrNotFound) || err == nil && sl.Publication.Visibility != protocol.VisibilityPublic {
			continue // public record never published, or gone since listed
		}
		if err != nil {
			return nil, err
		}
		toks := an.Analyze(indexedText(&sl.Lesson))
		seen := make(map[string]bool, len(toks))
		for _, tok := range toks {
			t := string(tok.Term)
			if !seen[t] {
				seen[t] = true
				c.df[t]++
			}
		}
		c.docs++
		c.tokens += int64(len(toks))
	}
	vocab := make([]uint32, 0, len(c.df))
	for t := range c.df {
		vocab = append(vocab, protocol.VocabHash(t))
	}
	st := protocol.VocabStats(vocab)
	c.vocab, c.sketch = st.Vocab, st.VocabSketch
	return c, nil
}

// publicDocIDs lists the index documents of public, unexpired records and
// remote lessons of origin.
func (s *Store) publicDocIDs(ctx context.Context, origin string) ([]string, error) {
	leave, err := s.beginRead()
	if err != nil {
		return nil, err
	}
	defer leave()
	if s.idx == nil {
		return nil, ErrIndexUnavailable
	}
	filters, _ := s.appendOrigin([]query.Query{term(fieldVisibility, protocol.VisibilityPublic)}, origin, "")
	bq := s.liveQuery(s.nowMS())
	addFilters(bq, filters)
	var ids []string
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(bq, statsPage, 0, false)
		req.Score = "none"
		req.SortBy([]string{"_id"})
		if after != nil {
			req.SearchAfter = after
		}
		res, err := s.idx.SearchInContext(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
		}
		if len(res.Hits) < statsPage {
			return ids, nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// indexedText is the text a lesson's text field indexes: title, content
// and tags, one a line (protocol.Lesson.AppendSearchText).
func indexedText(l *protocol.Lesson) []byte {
	return l.AppendSearchText(make([]byte, 0, len(l.Title)+len(l.Content)+16*len(l.Tags)+2))
}

var (
	textAnalyzerOnce sync.Once
	textAnalyzerV    analyzers
)

// textAnalyzers are the analyzers of the index mapping, for scoring outside
// an index.
func textAnalyzers() analyzers {
	textAnalyzerOnce.Do(func() {
		a, err := newAnalyzers(newMapping())
		if err != nil {
			panic(err) // the analyzers are compiled in
		}
		textAnalyzerV = a
	})
	return textAnalyzerV
}

// QueryTerms returns the analyzed terms of a query whose document
// frequencies scoring needs: its words, then the words of its phrases,
// each once.
func QueryTerms(pq ParsedQuery) []string {
	sc := NewScorer(pq, nil)
	out := slices.Clone(sc.words)
	for _, ph := range sc.phrases {
		for _, w := range ph {
			if !slices.Contains(out, w.term) {
				out = append(out, w.term)
			}
		}
	}
	return out
}

// StatsOf computes the statistics of a set of lessons for a query, as
// SearchStats computes them of a store's corpus (a vocabulary over
// protocol.MaxSearchVocab is sketched).
func StatsOf(lessons []*protocol.Lesson, pq ParsedQuery) *protocol.SearchStats {
	an := textAnalyzers().text
	out := &protocol.SearchStats{DocFreq: map[string]int64{}}
	terms := QueryTerms(pq)
	for _, t := range terms {
		out.DocFreq[t] = 0
	}
	vocab := map[uint32]bool{}
	for _, l := range lessons {
		toks := an.Analyze(indexedText(l))
		seen := map[string]bool{}
		for _, tok := range toks {
			t := string(tok.Term)
			if seen[t] {
				continue
			}
			seen[t] = true
			vocab[protocol.VocabHash(t)] = true
			if _, ok := out.DocFreq[t]; ok {
				out.DocFreq[t]++
			}
		}
		out.Docs++
		out.Tokens += int64(len(toks))
	}
	hashes := make([]uint32, 0, len(vocab))
	for h := range vocab {
		hashes = append(hashes, h)
	}
	v := protocol.VocabStats(hashes)
	out.Vocab, out.VocabSketch = v.Vocab, v.VocabSketch
	return out
}

// Scorer scores lessons against a query with BM25 under given corpus
// statistics, exactly as Search scores the records of an index whose
// statistics they are (see the comment at the top of this file).
type Scorer struct {
	words       []string
	phrases     [][]phraseWord
	comparisons []Comparison
	unscored    bool // no words and no phrases: every match scores 1
	none        bool // words given, none searchable: nothing matches

	idf        map[string]float64
	weight     map[string]float64 // idf · queryNorm
	avg        float64            // bleve's average field length; 0: TF-IDF
	docs       float64
	normalized bool
}

type phraseWord struct {
	term string
	off  int // position relative to the phrase's first word
}

// NewScorer prepares the scoring of pq under st, the statistics of the
// corpus (nil: only QueryTerms may be used).
func NewScorer(pq ParsedQuery, st *protocol.SearchStats) *Scorer {
	an := textAnalyzers().text
	sc := &Scorer{comparisons: pq.Comparisons}
	for _, w := range pq.Terms {
		for _, tok := range an.Analyze([]byte(w)) {
			if t := string(tok.Term); !slices.Contains(sc.words, t) {
				sc.words = append(sc.words, t)
			}
		}
	}
	for _, p := range pq.Phrases {
		toks := an.Analyze([]byte(p))
		if len(toks) == 0 {
			continue // only stop words: nothing to look for
		}
		ph := make([]phraseWord, len(toks))
		for i, tok := range toks {
			ph[i] = phraseWord{string(tok.Term), tok.Position - toks[0].Position}
		}
		sc.phrases = append(sc.phrases, ph)
	}
	if len(sc.words) == 0 && len(sc.phrases) == 0 {
		sc.unscored = len(pq.Terms) == 0 && len(pq.Phrases) == 0
		sc.none = !sc.unscored
		return sc
	}
	if st == nil {
		return sc
	}
	// bm25ScoreMetrics and TermQueryScorer.computeIDF.
	sc.docs = float64(uint64(max(st.Docs, 0)))
	card := st.Cardinality()
	if st.Docs > 0 || card > 0 {
		sc.avg = math.Ceil(float64(card) / float64(st.Docs))
	}
	sc.idf = map[string]float64{}
	idf := func(t string) float64 {
		if v, ok := sc.idf[t]; ok {
			return v
		}
		df := float64(uint64(max(st.DocFreq[t], 0)))
		var v float64
		if sc.avg > 0 {
			v = math.Log(1 + (sc.docs-df+0.5)/(df+0.5))
		} else {
			v = 1.0 + math.Log(sc.docs/(df+1.0))
		}
		sc.idf[t] = v
		return v
	}
	// The disjunction of the words orders them by document frequency
	// (newDisjunctionSliceSearcher sorts its searchers by Count, stably
	// for the few words of a query), and sums in that order.
	slices.SortStableFunc(sc.words, func(a, b string) int {
		return cmp.Compare(uint64(max(st.DocFreq[a], 0)), uint64(max(st.DocFreq[b], 0)))
	})
	// BooleanSearcher.computeQueryNorm: must (the phrases) then should.
	weight := func(t string) float64 { w := 1.0 * idf(t); return w * w }
	var sum float64
	if len(sc.phrases) > 0 {
		var must float64
		for _, ph := range sc.phrases {
			var pw float64
			for _, w := range ph {
				pw += weight(w.term)
			}
			must += pw
		}
		sum += must
	}
	if len(sc.words) > 0 {
		var should float64
		for _, w := range sc.words {
			should += weight(w)
		}
		sum += should
	}
	norm := 1.0 / math.Sqrt(sum)
	sc.weight = map[string]float64{}
	for t := range sc.idf {
		sc.weight[t] = 1.0 * sc.idf[t] * norm
	}
	sc.normalized = true
	return sc
}

// Score returns the BM25 score of l, as Search's hits carry it before
// Relevance maps it, and whether l matches the query at all. A query
// without words or phrases scores every match 1.
func (sc *Scorer) Score(l *protocol.Lesson) (float64, bool) {
	return sc.ScoreFeatures(l, sc.Features(l))
}

// Features is what scoring needs of a lesson's text: its length in tokens
// and the positions of the query's terms. Taking them is most of the cost
// of scoring, and does not depend on the statistics.
type Features struct {
	length int
	pos    map[string][]int
}

// Features analyzes l's text for the query's terms. Any Scorer of the same
// query (whatever its statistics) can score them.
func (sc *Scorer) Features(l *protocol.Lesson) Features {
	f, _ := sc.FeaturesOf(func(b []byte) ([]byte, bool) { return l.AppendSearchText(b), true })
	return f
}

// FeaturesOf is Features of a lesson whose searchable text appendText
// appends to a buffer (protocol.SearchResult.AppendSearchText, say: the
// title, a newline, the content, then a newline and a tag for each tag);
// false if appendText fails.
func (sc *Scorer) FeaturesOf(appendText func([]byte) ([]byte, bool)) (Features, bool) {
	if len(sc.words) == 0 && len(sc.phrases) == 0 {
		return Features{}, true
	}
	terms := slices.Clone(sc.words)
	for _, ph := range sc.phrases {
		for _, w := range ph {
			terms = append(terms, w.term)
		}
	}
	var f Features
	ok := analyzeText(appendText, func(toks analysis.TokenStream) {
		f = Features{length: len(toks), pos: make(map[string][]int, len(terms))}
		for _, tok := range toks {
			if t := tok.Term; slices.ContainsFunc(terms, func(q string) bool { return q == string(t) }) {
				f.pos[string(t)] = append(f.pos[string(t)], tok.Position)
			}
		}
	})
	return f, ok
}

// ScoreFeatures is Score given l's Features (taken by a Scorer of the same
// query). l is read only for the query's comparisons: it may be nil for a
// query without any.
func (sc *Scorer) ScoreFeatures(l *protocol.Lesson, f Features) (float64, bool) {
	for _, c := range sc.comparisons {
		if v, ok := l.Number(c.Field); !ok || !c.Match(v) {
			return 0, false
		}
	}
	switch {
	case sc.none:
		return 0, false
	case sc.unscored:
		return 1, true
	case !sc.normalized:
		return 0, false
	}
	pos := f.pos
	// TermFieldDoc.Norm: the field length stored as float32 1/√len.
	norm := float64(float32(1.0 / math.Sqrt(float64(f.length))))
	fieldLength := 1 / (norm * norm)
	termScore := func(t string) float64 {
		freq := len(pos[t])
		tf := math.Sqrt(float64(freq))
		idf := sc.idf[t]
		var s float64
		if sc.avg > 0 {
			s = idf * (tf * search.BM25_k1) /
				(tf + search.BM25_k1*(1-search.BM25_b+(search.BM25_b*fieldLength/sc.avg)))
		} else {
			s = tf * norm * idf
		}
		if w := sc.weight[t]; w != 1.0 {
			s = s * w
		}
		return s
	}
	var parts []float64
	if len(sc.phrases) > 0 {
		var must float64
		for _, ph := range sc.phrases {
			if !phraseIn(pos, ph) {
				return 0, false
			}
			var ps float64
			for _, w := range ph {
				ps += termScore(w.term)
			}
			must += ps
		}
		parts = append(parts, must)
	}
	if len(sc.words) > 0 {
		var sum float64
		matched := 0
		for _, w := range sc.words {
			if len(pos[w]) > 0 {
				sum += termScore(w)
				matched++
			}
		}
		switch {
		case matched > 0:
			parts = append(parts, sum*(float64(matched)/float64(len(sc.words))))
		case len(sc.phrases) == 0:
			return 0, false
		}
	}
	var s float64
	for _, p := range parts {
		s += p
	}
	return s, true
}

// phraseIn reports whether the phrase occurs in a document's positions.
func phraseIn(pos map[string][]int, ph []phraseWord) bool {
	for _, start := range pos[ph[0].term] {
		ok := true
		for _, w := range ph[1:] {
			if !slices.Contains(pos[w.term], start+w.off) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Relevance maps a BM25 score into (0, 1] as Search's Hit.Score does.
func Relevance(score float64) float64 { return normalizeScore(score) }
