package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// rankTerms answers the most common search, words and nothing else, over
// the index's postings directly: it returns what bleve would for
//
//	BooleanQuery{Should: terms in fieldText, MustNot: the exclusions}
//
// scored with BM25 (the same scores, to the bit, in the same order, ties
// broken by index order), and the same Total. Bleve walks that query
// through a tree of searchers that allocate, pool, compare and score a
// DocumentMatch for every posting of every word: at a million lessons
// that walk was 87% of a search's CPU (meshbench search -n 1000000).
// Here the documents are taken in index order from the words' readers,
// scored as bleve's scorers would, operation for operation, and MaxScore
// skips the documents that could not enter the best limit; Total comes
// from the segments' postings bitmaps (countMatches).
//
// Filters on keyword fields (ex.filters) are checked per candidate and
// ANDed into the bitmaps Total is counted on.
//
// ok is false when the index is not one this can rank the way bleve
// does (not scorch, or no BM25 field statistics), when the words are more
// than bleve ranks with its slice disjunction (which adds up in another
// order), or when more than maxExpiredExcluded records are expired and
// not yet swept; the caller then asks bleve. Every term gets a reader, those
// absent from the index too: they count in BM25's query norm and
// coordination factor as they do in bleve.
func rankTerms(ctx context.Context, idx bleve.Index, terms []string, ex exclusions, limit int) (_ *bleve.SearchResult, ok bool, err error) {
	if len(terms) == 0 || len(terms) > searcher.DisjunctionHeapTakeover || limit <= 0 {
		return nil, false, nil
	}
	adv, err := idx.Advanced()
	if err != nil {
		return nil, false, err
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	bm, isBM := r.(index.BM25Reader)
	if !isBM {
		return nil, false, nil
	}
	docs, err := r.DocCount()
	if err != nil {
		return nil, false, err
	}
	card, err := bm.FieldCardinality(fieldText)
	if err != nil {
		return nil, false, err
	}
	if docs == 0 || card == 0 {
		return nil, false, nil // bleve falls back to TF-IDF here
	}
	// As bleve's bm25ScoreMetrics: the mean field length, rounded up.
	avg := math.Ceil(float64(card) / float64(docs))

	cursors, err := openCursors(ctx, r, terms, docs)
	defer func() {
		for i := range cursors {
			if cerr := cursors[i].tfr.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	if err != nil {
		return nil, false, err
	}
	total, ok, err := countMatches(r, terms, ex)
	if err != nil || !ok {
		return nil, false, err
	}
	var skip excluder
	defer skip.close()
	if ex.remote {
		if skip.remote, err = openDocSet(ctx, r, fieldOrigin, []string{originRemote}); err != nil {
			return nil, false, err
		}
	}
	for _, f := range ex.filters {
		set, err := openDocSet(ctx, r, f.field, f.values)
		if err != nil {
			return nil, false, err
		}
		skip.filters = append(skip.filters, set)
	}
	if ex.expiry {
		if skip.expired, ok, err = expiredDocs(ctx, r, idx.Mapping(), ex.now); err != nil || !ok {
			return nil, false, err
		}
		n, err := countHolding(ctx, r, terms, skip.expired, ex)
		if err != nil {
			return nil, false, err
		}
		total -= n
	}

	ms := newMaxScore(cursors, avg)
	top := bestOf{limit: limit}
	polled := uint64(0) // candidates taken
	for doc := ms.candidate(); doc != math.MaxUint64; polled, doc = polled+1, ms.candidate() {
		if polled&1023 == 0 && ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		score, in, err := ms.score(doc, top.threshold())
		if err != nil {
			return nil, false, err
		}
		if !in {
			continue
		}
		if out, err := skip.excluded(doc); err != nil || out {
			if err != nil {
				return nil, false, err
			}
			continue
		}
		if top.offer(doc, score) {
			ms.raise(top.threshold())
		}
	}

	if rankVisited != nil {
		rankVisited(polled, total)
	}
	res := &bleve.SearchResult{Total: total, Hits: make(search.DocumentMatchCollection, 0, len(top.kept))}
	for _, t := range top.kept {
		id, err := r.ExternalID(index.NewIndexInternalID(nil, t.doc))
		if err != nil {
			return nil, false, fmt.Errorf("document %d: %w", t.doc, err)
		}
		res.Hits = append(res.Hits, &search.DocumentMatch{ID: id, Score: t.score})
	}
	return res, true, nil
}

// openCursors opens a reader on each term in fieldText, scored as bleve's
// TermQueryScorer under BM25 in an index of docs documents, ordered as
// bleve's disjunction orders them, each on its first posting. The caller
// closes the readers of what is returned, on error too.
func openCursors(ctx context.Context, r index.IndexReader, terms []string, docs uint64) ([]termCursor, error) {
	cursors := make([]termCursor, 0, len(terms))
	for _, t := range terms {
		tfr, err := r.TermFieldReader(ctx, []byte(t), fieldText, true, true, false)
		if err != nil {
			return cursors, err
		}
		cursors = append(cursors, termCursor{tfr: tfr})
		c := &cursors[len(cursors)-1]
		// bleve's NewTermQueryScorer: BM25 idf.
		c.count = tfr.Count()
		c.idf = math.Log(1 + (float64(docs)-float64(c.count)+0.5)/(float64(c.count)+0.5))
	}
	// The disjunction orders its terms by their document counts, with
	// sort.Sort as here, and adds up in that order: the weights (boost ×
	// idf)² with boost 1 for the query norm, the terms' scores for a
	// document's. (Before any next: doc points into the cursor's buf.)
	sort.Sort(byCount(cursors))
	var sumSquares float64
	for i := range cursors {
		w := 1 * cursors[i].idf
		sumSquares += w * w
	}
	// The query norm the disjunction (or the boolean around it) gives
	// every term: queryWeight = boost × idf × norm.
	norm := 1.0 / math.Sqrt(sumSquares)
	for i := range cursors {
		c := &cursors[i]
		c.weight = 1 * c.idf * norm
		if err := c.next(); err != nil {
			return cursors, err
		}
	}
	return cursors, nil
}

// maxScore walks the documents of a disjunction of terms with MaxScore
// (Turtle and Flood): a term's score never exceeds its bound
// (termBound). Ordered by bound, the first terms are non-essential once a
// document holding only them could not score above the last of the best
// so far, ties going to the earlier document: the candidates then come
// from the other, essential terms only, and the non-essential ones are
// advanced to a candidate, from the highest bound down, only while the
// candidate could still get in.
type maxScore struct {
	cursors   []termCursor // in the disjunction's order
	avg, nf   float64      // mean field length; number of terms
	byBound   []int        // cursor indexes by bound, lowest first
	prefix    []float64    // prefix[k]: the bounds of byBound[:k] added up
	below     []float64    // below[k]: the most a document holding only byBound[:k] scores
	essential int          // byBound[:essential] are not
	contrib   []float64    // the current document's score for each term that holds it
	holds     []bool
}

func newMaxScore(cursors []termCursor, avg float64) *maxScore {
	n := len(cursors)
	m := &maxScore{
		cursors: cursors, avg: avg, nf: float64(n), byBound: make([]int, n),
		prefix: make([]float64, n+1), below: make([]float64, n+1),
		contrib: make([]float64, n), holds: make([]bool, n),
	}
	for i := range cursors {
		cursors[i].bound = termBound(&cursors[i], avg)
		m.byBound[i] = i
	}
	slices.SortStableFunc(m.byBound, func(a, b int) int { return cmp.Compare(cursors[a].bound, cursors[b].bound) })
	for k, i := range m.byBound {
		m.prefix[k+1] = m.prefix[k] + cursors[i].bound
		m.below[k+1] = m.prefix[k+1] * (float64(k+1) / m.nf)
	}
	return m
}

// candidate is the next document an essential term holds;
// math.MaxUint64 when there is none.
func (m *maxScore) candidate() uint64 {
	next := uint64(math.MaxUint64)
	for _, i := range m.byBound[m.essential:] {
		next = min(next, m.cursors[i].at)
	}
	return next
}

// score scores doc, the candidate, and moves the essential terms past it.
// in is false if doc cannot score above threshold: the non-essential
// terms were then left where they were.
func (m *maxScore) score(doc uint64, threshold float64) (score float64, in bool, err error) {
	clear(m.holds)
	partial, matched := 0.0, 0
	for _, i := range m.byBound[m.essential:] {
		c := &m.cursors[i]
		if c.at == doc {
			m.contrib[i], m.holds[i] = c.score(m.avg), true
			partial += m.contrib[i]
			matched++
			if err := c.next(); err != nil {
				return 0, false, err
			}
		}
	}
	for k := m.essential - 1; k >= 0; k-- {
		// What the rest could add: their bounds, and their share.
		if mayNotEnter((partial+m.prefix[k+1])*(float64(matched+k+1)/m.nf), threshold) {
			return 0, false, nil
		}
		i := m.byBound[k]
		c := &m.cursors[i]
		if c.at < doc {
			if err := c.advance(doc); err != nil {
				return 0, false, err
			}
		}
		if c.at == doc {
			m.contrib[i], m.holds[i] = c.score(m.avg), true
			partial += m.contrib[i]
			matched++
		}
	}
	// bleve's DisjunctionQueryScorer: the matching terms' scores summed
	// in the disjunction's order, times the share of terms that match.
	for i := range m.cursors {
		if m.holds[i] {
			score += m.contrib[i]
		}
	}
	return score * (float64(matched) / m.nf), true, nil
}

// raise takes a new threshold: the terms whose documents can no longer
// score above it become non-essential.
func (m *maxScore) raise(threshold float64) {
	for m.essential < len(m.cursors) && mayNotEnter(m.below[m.essential+1], threshold) {
		m.essential++
	}
}

// excluder skips the documents a search's must-not clauses exclude
// (remote lessons, nil if not excluded; expired records) and those its
// filters do not pass.
type excluder struct {
	remote  *docSet
	expired []uint64 // in index order, those before the last document asked about dropped
	filters []*docSet
}

// excluded reports whether doc is excluded. Documents are asked about in
// index order.
func (x *excluder) excluded(doc uint64) (bool, error) {
	if x.remote != nil {
		if remote, err := x.remote.holds(doc); err != nil || remote {
			return remote, err
		}
	}
	for len(x.expired) > 0 && x.expired[0] < doc {
		x.expired = x.expired[1:]
	}
	if len(x.expired) > 0 && x.expired[0] == doc {
		return true, nil
	}
	for _, f := range x.filters {
		if passes, err := f.holds(doc); err != nil || !passes {
			return !passes, err
		}
	}
	return false, nil
}

// close closes the readers of x.
func (x *excluder) close() {
	x.remote.close()
	for _, f := range x.filters {
		f.close()
	}
}

// docSet is the documents that hold one of some values in a field, asked
// about in index order: a filter, the remote lessons, a search's words.
type docSet struct {
	values []valueCursor
}

// valueCursor walks the documents holding one value.
type valueCursor struct {
	tfr  index.TermFieldReader
	at   uint64 // the current document; math.MaxUint64 past the last
	seek index.IndexInternalID
	buf  index.TermFieldDoc
}

// openDocSet opens a reader on each of values in field, each on its first
// document.
func openDocSet(ctx context.Context, r index.IndexReader, field string, values []string) (*docSet, error) {
	set := &docSet{values: make([]valueCursor, 0, len(values))}
	for _, v := range values {
		tfr, err := r.TermFieldReader(ctx, []byte(v), field, false, false, false)
		if err != nil {
			set.close()
			return nil, err
		}
		set.values = append(set.values, valueCursor{tfr: tfr})
		c := &set.values[len(set.values)-1]
		if err := c.advance(0); err != nil {
			set.close()
			return nil, err
		}
	}
	return set, nil
}

// holds reports whether doc holds one of the values. doc must not be
// before a document asked about earlier.
func (s *docSet) holds(doc uint64) (bool, error) {
	held := false
	for i := range s.values {
		c := &s.values[i]
		if c.at < doc {
			if err := c.advance(doc); err != nil {
				return false, err
			}
		}
		held = held || c.at == doc
	}
	return held, nil
}

// advance moves c to its first document at or after doc, which must be
// past its current one: scorch restarts a reader asked to go back.
func (c *valueCursor) advance(doc uint64) error {
	c.seek = index.NewIndexInternalID(c.seek, doc)
	d, err := c.tfr.Advance(c.seek, &c.buf)
	if err != nil {
		return err
	}
	c.at = math.MaxUint64
	if d != nil {
		c.at = d.ID.Value()
	}
	return nil
}

// close closes the readers of s; a nil s has none.
func (s *docSet) close() {
	if s == nil {
		return
	}
	for _, c := range s.values {
		_ = c.tfr.Close()
	}
}

// bestOf keeps the best limit documents offered, by score, then by index
// order: a later document that ties the last kept one does not displace
// it, as in bleve's collector.
type bestOf struct {
	limit int
	kept  []ranked // best first
}

// threshold is the score a document must beat to be kept: the last kept
// one's once limit are kept, -Inf before.
func (b *bestOf) threshold() float64 {
	if len(b.kept) < b.limit {
		return math.Inf(-1)
	}
	return b.kept[b.limit-1].score
}

// offer keeps doc if it is among the best so far, and reports whether
// the threshold may have risen.
func (b *bestOf) offer(doc uint64, score float64) bool {
	if len(b.kept) == b.limit && score <= b.kept[b.limit-1].score {
		return false
	}
	at, _ := slices.BinarySearchFunc(b.kept, score, func(e ranked, s float64) int {
		if e.score >= s {
			return -1
		}
		return 1
	})
	if len(b.kept) < b.limit {
		b.kept = append(b.kept, ranked{})
	}
	copy(b.kept[at+1:], b.kept[at:len(b.kept)-1])
	b.kept[at] = ranked{doc: doc, score: score}
	return len(b.kept) == b.limit
}

// byCount is bleve's OrderedSearcherList for cursors.
type byCount []termCursor

func (b byCount) Len() int           { return len(b) }
func (b byCount) Less(i, j int) bool { return b[i].count < b[j].count }
func (b byCount) Swap(i, j int)      { b[i], b[j] = b[j], b[i] }

// exclusions are the must-not clauses of a words-only search: remote
// lessons (origin:remote) when only this node's records are asked for,
// and records expired at now once the index has held one with an expiry.
type exclusions struct {
	remote bool
	expiry bool
	now    int64
	// filters must all hold: a document passes one if it holds one of
	// its values (termFilters reads them off bleve's filter queries).
	filters []termFilter
}

// termFilter is a filter on a keyword field: the document holds one of
// values in field.
type termFilter struct {
	field  string
	values []string
}

// termFilters reads filters built for bleve (a term query, or a
// disjunction of term queries on one field) as termFilters. ok is false
// if one is anything else: a range, a comparison, document IDs.
func termFilters(filters []query.Query) (out []termFilter, ok bool) {
	for _, f := range filters {
		switch q := f.(type) {
		case *query.TermQuery:
			out = append(out, termFilter{field: q.Field(), values: []string{q.Term}})
		case *query.DisjunctionQuery:
			var tf termFilter
			for i, d := range q.Disjuncts {
				tq, isTerm := d.(*query.TermQuery)
				if !isTerm || (i > 0 && tq.Field() != tf.field) {
					return nil, false
				}
				tf.field = tq.Field()
				tf.values = append(tf.values, tq.Term)
			}
			if len(tf.values) == 0 || q.Min > 1 {
				return nil, false
			}
			out = append(out, tf)
		default:
			return nil, false
		}
	}
	return out, true
}

// maxExpiredExcluded caps the expired records, not yet swept, that
// rankTerms excludes one by one; past it, bleve ranks the search. The
// sweep deletes them every Options.SweepInterval.
const maxExpiredExcluded = 4096

// expiredDocs lists the documents expired at now, in index order, as
// bleve's expiry clause finds them. ok is false past maxExpiredExcluded.
func expiredDocs(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, now int64) (docs []uint64, ok bool, err error) {
	sr, err := expiredQuery(now).Searcher(ctx, r, m, search.SearcherOptions{Score: "none"})
	if err != nil {
		return nil, false, err
	}
	defer sr.Close()
	sctx := &search.SearchContext{DocumentMatchPool: search.NewDocumentMatchPool(sr.DocumentMatchPoolSize(), 0)}
	for {
		d, err := sr.Next(sctx)
		if err != nil {
			return nil, false, err
		}
		if d == nil {
			return docs, true, nil
		}
		if len(docs) == maxExpiredExcluded {
			return nil, false, nil
		}
		docs = append(docs, d.IndexInternalID.Value())
		sctx.DocumentMatchPool.Put(d)
	}
}

// countHolding counts the documents of docs (in index order) that the
// search would count: they hold one of terms in fieldText, pass every
// filter, and are not remote lessons when those are excluded.
func countHolding(ctx context.Context, r index.IndexReader, terms []string, docs []uint64, ex exclusions) (n uint64, err error) {
	if len(docs) == 0 {
		return 0, nil
	}
	// holding reports, for each of docs, whether it holds one of values
	// in field.
	holding := func(field string, values []string) ([]bool, error) {
		set, err := openDocSet(ctx, r, field, values)
		if err != nil {
			return nil, err
		}
		defer set.close()
		out := make([]bool, len(docs))
		for i, d := range docs {
			if out[i], err = set.holds(d); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	counted, err := holding(fieldText, terms)
	if err != nil {
		return 0, err
	}
	for _, f := range ex.filters {
		passes, err := holding(f.field, f.values)
		if err != nil {
			return 0, err
		}
		for i := range counted {
			counted[i] = counted[i] && passes[i]
		}
	}
	if ex.remote {
		remote, err := holding(fieldOrigin, []string{originRemote})
		if err != nil {
			return 0, err
		}
		for i := range counted {
			counted[i] = counted[i] && !remote[i]
		}
	}
	for _, c := range counted {
		if c {
			n++
		}
	}
	return n, nil
}

// rankVisited, if set (by tests), is told how many candidates a
// rankTerms took and how many documents matched.
var rankVisited func(candidates, matches uint64)

// ranked is one of the best documents so far.
type ranked struct {
	doc   uint64
	score float64
}

// termCursor walks one term's postings in index order.
type termCursor struct {
	tfr    index.TermFieldReader
	buf    index.TermFieldDoc
	doc    *index.TermFieldDoc   // the current posting; nil past the last
	at     uint64                // doc's document number; math.MaxUint64 past the last
	count  uint64                // documents holding the term
	bound  float64               // termBound
	seek   index.IndexInternalID // advance's argument, kept apart from buf
	idf    float64
	weight float64 // boost × idf × query norm
	once   [64]onceScore
}

// onceScore is a term's score in a field of one length (its norm's bits)
// that holds the term once.
type onceScore struct {
	norm  uint64
	score float64
	set   bool
}

// advance moves c to its first posting at or after doc, which must be
// past its current one.
func (c *termCursor) advance(doc uint64) error {
	c.seek = index.NewIndexInternalID(c.seek, doc)
	return c.land(c.tfr.Advance(c.seek, &c.buf))
}

// next moves c to its next posting.
func (c *termCursor) next() error { return c.land(c.tfr.Next(&c.buf)) }

// land puts c on d, the posting its reader returned; nil is past the last.
func (c *termCursor) land(d *index.TermFieldDoc, err error) error {
	if err != nil {
		return err
	}
	c.doc = d
	c.at = math.MaxUint64
	if d != nil {
		c.at = d.ID.Value()
	}
	return nil
}

// score is bleve's TermQueryScorer under BM25 for the current posting,
// operation for operation: idf × tf·k1 / (tf + k1·(1 − b + b·len/avg)),
// with tf the square root of the term's frequency and len the field's
// length, 1/norm², then times the query weight.
func (c *termCursor) score(avg float64) float64 {
	// Most postings hold the word once, and fields have few distinct
	// lengths: a score for frequency 1 is kept by its norm's bits.
	var slot *onceScore
	if c.doc.Freq == 1 {
		bits := math.Float64bits(c.doc.Norm)
		slot = &c.once[(bits>>29^bits>>37)%uint64(len(c.once))]
		if slot.set && slot.norm == bits {
			return slot.score
		}
	}
	s := c.compute(avg)
	if slot != nil {
		*slot = onceScore{norm: math.Float64bits(c.doc.Norm), score: s, set: true}
	}
	return s
}

// compute is score without the cache.
func (c *termCursor) compute(avg float64) float64 {
	tf := math.Sqrt(float64(c.doc.Freq))
	fieldLength := 1 / (c.doc.Norm * c.doc.Norm)
	s := c.idf * (tf * search.BM25_k1) /
		(tf + search.BM25_k1*(1-search.BM25_b+(search.BM25_b*fieldLength/avg)))
	if c.weight != 1.0 {
		s = s * c.weight
	}
	return s
}

// mayNotEnter reports whether a document whose score is at most bound
// cannot enter the best so far, whose last scores threshold: it would
// at best tie, and a tie goes to the earlier document. The bound is
// widened by a millionth, more than the rounding of the sums and of the
// field lengths read back from float32 norms.
func mayNotEnter(bound, threshold float64) bool {
	return bound*(1+1e-6) <= threshold
}

// termBound is the most c's term can score in any document: BM25's
// saturation tf·k1 / (tf + k1·(1 − b + b·len/avg)), with tf = √freq and
// len ≥ freq = tf² (a field holds at least its term's occurrences), is
// largest at tf = √(avg·(1 − b)/b) (or 1, if that is less).
func termBound(c *termCursor, avg float64) float64 {
	if c.count == 0 {
		return 0
	}
	k1, b := search.BM25_k1, search.BM25_b
	a, q := k1*(1-b), k1*b/avg // saturation's denominator: tf + a + q·tf²
	tf := max(1, math.Sqrt(a/q))
	s := c.idf * k1 * tf / (tf + a + q*tf*tf)
	if c.weight != 1.0 {
		s *= c.weight
	}
	return s
}

// countMatches is bleve's Total for the words alone: the documents that
// hold any of terms in fieldText, less the remote lessons if onlyLocal,
// counted from each segment's postings bitmaps (less its deleted
// documents) rather than one document at a time. ok is false for an
// index that is not scorch's.
func countMatches(r index.IndexReader, terms []string, ex exclusions) (total uint64, ok bool, err error) {
	snap, isScorch := r.(*scorch.IndexSnapshot)
	if !isScorch {
		return 0, false, nil
	}
	union, other := roaring.New(), roaring.New()
	// postings sets bm to the documents holding one of values in field.
	postings := func(bm *roaring.Bitmap, seg segment.Segment, deleted *roaring.Bitmap, field string, values []string) (bool, error) {
		dict, err := seg.Dictionary(field)
		if err != nil {
			return false, err
		}
		bm.Clear()
		for _, v := range values {
			if ok, err := addPostings(bm, dict, v, deleted); err != nil || !ok {
				return ok, err
			}
		}
		return true, nil
	}
	for _, ss := range snap.Segments() {
		seg, deleted := ss.Segment(), ss.Deleted()
		if ok, err := postings(union, seg, deleted, fieldText, terms); err != nil || !ok {
			return 0, ok, err
		}
		for _, f := range ex.filters {
			if union.IsEmpty() {
				break
			}
			if ok, err := postings(other, seg, deleted, f.field, f.values); err != nil || !ok {
				return 0, ok, err
			}
			union.And(other)
		}
		if ex.remote && !union.IsEmpty() {
			if ok, err := postings(other, seg, deleted, fieldOrigin, []string{originRemote}); err != nil || !ok {
				return 0, ok, err
			}
			union.AndNot(other)
		}
		total += union.GetCardinality()
	}
	return total, true, nil
}

// addPostings adds to bm the documents of a segment's dictionary that
// hold term, less deleted. ok is false if the segment does not expose its
// postings as a bitmap.
func addPostings(bm *roaring.Bitmap, dict segment.TermDictionary, term string, deleted *roaring.Bitmap) (ok bool, err error) {
	pl, err := dict.PostingsList([]byte(term), deleted, nil)
	if err != nil {
		return false, err
	}
	if pl == nil || pl.Count() == 0 {
		return true, nil
	}
	it, isOpt := pl.Iterator(false, false, false, nil).(segment.OptimizablePostingsIterator)
	if !isOpt {
		return false, nil
	}
	if n, one := it.DocNum1Hit(); one {
		bm.Add(uint32(n))
	} else if a := it.ActualBitmap(); a != nil {
		bm.Or(a)
	}
	return true, nil
}
