package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
)

// rankTerms answers the most common search, words and nothing else, over
// the index's postings directly: it returns what bleve would for
//
//	BooleanQuery{Should: terms in fieldText, MustNot: origin:remote if onlyLocal}
//
// scored with BM25 (the same scores, to the bit, in the same order, ties
// broken by index order), and the same Total, for about half bleve's CPU.
// Bleve walks that query through a tree of searchers that allocate,
// pool and compare a DocumentMatch per posting: at a million lessons that
// walk, not the postings, was most of a search (meshbench search, 1M).
//
// ok is false when the index is not one this can rank the way bleve
// does (not scorch, or no BM25 field statistics), or the words are more
// than bleve ranks with its slice disjunction (which adds up in another
// order); the caller then asks bleve. Every term gets a reader, those absent from the index too: they
// count in BM25's query norm and coordination factor as they do in bleve.
func rankTerms(ctx context.Context, idx bleve.Index, terms []string, onlyLocal bool, limit int) (_ *bleve.SearchResult, ok bool, err error) {
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

	cursors := make([]termCursor, len(terms))
	defer func() {
		for i := range cursors {
			if c := cursors[i].tfr; c != nil {
				if cerr := c.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}
		}
	}()
	for i, t := range terms {
		c := &cursors[i]
		if c.tfr, err = r.TermFieldReader(ctx, []byte(t), fieldText, true, true, false); err != nil {
			return nil, false, err
		}
		// bleve's NewTermQueryScorer: BM25 idf.
		c.count = c.tfr.Count()
		c.idf = math.Log(1 + (float64(docs)-float64(c.count)+0.5)/(float64(c.count)+0.5))
	}
	// The disjunction orders its terms by their document counts, with
	// sort.Sort as here, and adds up in that order: the weights (boost ×
	// idf)² with boost 1 for the query norm, the terms' scores for a
	// document's.
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
			return nil, false, err
		}
	}
	var remote index.TermFieldReader
	remoteAt := uint64(math.MaxUint64) // the remote document remote is on; math.MaxUint64 past the last, or with no reader
	if onlyLocal {
		if remote, err = r.TermFieldReader(ctx, []byte(originRemote), fieldOrigin, false, false, false); err != nil {
			return nil, false, err
		}
		defer remote.Close()
		if remoteAt, err = advanceTo(remote, 0); err != nil {
			return nil, false, err
		}
	}

	top := make([]ranked, 0, limit)
	var total uint64
	n := float64(len(cursors))
	next := uint64(math.MaxUint64) // the next document: the lowest any cursor is on
	for i := range cursors {
		next = min(next, cursors[i].at)
	}
	for polled := 0; next != math.MaxUint64; polled++ {
		if polled&1023 == 0 && ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		// bleve's DisjunctionQueryScorer: the matching terms' scores
		// summed in the disjunction's order, times the share of terms
		// that match.
		doc := next
		next = math.MaxUint64
		var sum float64
		matched := 0
		for i := range cursors {
			c := &cursors[i]
			if c.at == doc {
				sum += c.score(avg)
				matched++
				if err := c.next(); err != nil {
					return nil, false, err
				}
			}
			next = min(next, c.at)
		}
		if remoteAt < doc {
			if remoteAt, err = advanceTo(remote, doc); err != nil {
				return nil, false, err
			}
		}
		if remoteAt == doc {
			continue // a remote lesson, excluded
		}
		total++
		score := sum * (float64(matched) / n)
		// Keep the best limit, by score, then by index order: a later
		// document that ties the last kept one does not displace it.
		if len(top) == limit && score <= top[limit-1].score {
			continue
		}
		at, _ := slices.BinarySearchFunc(top, score, func(e ranked, s float64) int {
			if e.score >= s {
				return -1
			}
			return 1
		})
		if len(top) < limit {
			top = append(top, ranked{})
		}
		copy(top[at+1:], top[at:len(top)-1])
		top[at] = ranked{doc: doc, score: score}
	}

	res := &bleve.SearchResult{Total: total, Hits: make(search.DocumentMatchCollection, 0, len(top))}
	for _, t := range top {
		id, err := r.ExternalID(index.NewIndexInternalID(nil, t.doc))
		if err != nil {
			return nil, false, fmt.Errorf("document %d: %w", t.doc, err)
		}
		res.Hits = append(res.Hits, &search.DocumentMatch{ID: id, Score: t.score})
	}
	return res, true, nil
}

// byCount is bleve's OrderedSearcherList for cursors.
type byCount []termCursor

func (b byCount) Len() int           { return len(b) }
func (b byCount) Less(i, j int) bool { return b[i].count < b[j].count }
func (b byCount) Swap(i, j int)      { b[i], b[j] = b[j], b[i] }

// ranked is one of the best documents so far.
type ranked struct {
	doc   uint64
	score float64
}

// termCursor walks one term's postings in index order.
type termCursor struct {
	tfr    index.TermFieldReader
	buf    index.TermFieldDoc
	doc    *index.TermFieldDoc // the current posting; nil past the last
	at     uint64              // doc's document number; math.MaxUint64 past the last
	count  uint64              // documents holding the term
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

func (c *termCursor) next() error {
	d, err := c.tfr.Next(&c.buf)
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

// advanceTo moves tfr to its first document at or after doc and returns
// that document's number, or math.MaxUint64 when there is none. doc must
// be past the reader's current document: scorch restarts a reader asked
// to go back.
func advanceTo(tfr index.TermFieldReader, doc uint64) (uint64, error) {
	var buf index.TermFieldDoc
	d, err := tfr.Advance(index.NewIndexInternalID(nil, doc), &buf)
	if err != nil {
		return 0, err
	}
	if d == nil {
		return math.MaxUint64, nil
	}
	return d.ID.Value(), nil
}
