package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search/query"
	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// Limits of Search and List.
const (
	DefaultSearchLimit = 10
	MaxSearchLimit     = 100
	DefaultListLimit   = 20
	MaxListLimit       = 1000
	// MaxListOffset caps ListOptions.Offset: deep pages cost memory in
	// proportion to Offset+Limit.
	MaxListOffset = 100000
)

// Query is a search over the store's records.
type Query struct {
	// Text holds words, "quoted phrases" and numeric comparisons on record
	// fields (`humidity > 60`); see ParseQuery. Words are OR'ed and ranked
	// by BM25; every phrase and comparison must match. Words are stemmed
	// English; a query whose words are all stop words ("the of") matches
	// nothing. Empty Text (or Text with comparisons only) matches every
	// record that passes the filters, newest first, each with Score 1.
	Text string
	// Parsed, if set, is ParseQuery(Text), parsed once at the edge: the
	// store then matches it and does not parse Text again.
	Parsed *ParsedQuery

	// Type and Types restrict the record type: a record matches if its type
	// is Type or any of Types. Both empty: any type.
	Type  string
	Types []string
	// Tags: a record must carry every one of them. Empty: no restriction.
	Tags []string
	// Project and Agent, when set, must equal the record's.
	Project, Agent string
	// Visibility, when set, lists the visibilities a record may have
	// ("private", "unlisted", "public"); e.g. []string{"public"}.
	Visibility []string
	// Since and Until bound created_at (Unix ms, both inclusive); 0 means
	// unbounded.
	Since, Until int64
	// MinScore drops hits scoring below it, in [0, 1]. 0 keeps every hit.
	MinScore float64
	// Limit is the maximum number of hits: 0 means DefaultSearchLimit, at
	// most MaxSearchLimit.
	Limit int

	// Origin selects where hits come from: "" or OriginLocal, this node's
	// own records only (the AMP default, so remote lessons never mix into
	// AMP listings unless asked); OriginRemote, the cache of remote lessons
	// only; OriginAll, both.
	Origin string
	// Publisher, when set, keeps only the lessons of this node ID; this
	// node's own records count as published by Options.SelfID.
	Publisher string
	// IDs, when set, keeps only these records: own record ids, or remote
	// lessons' keys lessonId@nodeId (a standing query matches one lesson
	// this way). At most MaxSearchLimit.
	IDs []string
}

// parsed returns q.Parsed, or parses q.Text.
func (q *Query) parsed() (ParsedQuery, error) {
	if q.Parsed != nil {
		return *q.Parsed, nil
	}
	return ParseQuery(q.Text)
}

// Values of Query.Origin and ListOptions.Origin.
const (
	OriginLocal  = "local"
	OriginRemote = "remote"
	OriginAll    = "all"
)

// Hit is one search result.
type Hit struct {
	// ID is the record's id; of a remote lesson, its lesson id.
	ID string
	// Key is a remote lesson's key, lessonId@nodeId; "" for own records.
	Key string
	// Publisher is a remote lesson's publisher (node ID); for own records,
	// Options.SelfID (which may be "").
	Publisher string
	// Score is the relevance, in (0, 1]: the BM25 score s of the record
	// mapped through s/(s+1), which keeps the order of BM25 scores. It is
	// comparable between queries on the same store only roughly, and not
	// at all between stores. Queries without words or phrases score 1.
	Score float64
	// Record is the record; of a remote lesson, the signed lesson with its
	// Visibility set to the publication's.
	Record *protocol.Lesson
	// Signed is a remote lesson as it was signed; nil for own records
	// (see Store.Publication, Store.SharedPublication).
	Signed *protocol.SignedLesson
	// Encoded is Signed's JSON as stored, to send as it is (see
	// protocol.SearchResult.UseEncoding); nil for own records.
	Encoded []byte

	// entry is an own record's cached decoding (SharedPublicationOf).
	entry *recordEntry
}

// SearchResult is the answer to a Search.
type SearchResult struct {
	Hits []Hit
	// Total is the number of records matching the query and filters,
	// before Limit and MinScore.
	Total int
}

// ListOptions select records for List. Empty fields do not restrict.
type ListOptions struct {
	Type, Agent, Project string
	// Visibility is "private", "unlisted", "public", or "" for any.
	Visibility string
	// Tags: a record must carry every one of them.
	Tags []string
	// Limit is the page size: 0 means DefaultListLimit, at most
	// MaxListLimit. Offset skips that many records, at most MaxListOffset.
	Limit, Offset int
	// Order is "desc" (newest first, the default) or "asc", by created_at.
	Order string
	// Origin is as in Query: "" (OriginLocal) lists own records only.
	Origin string
	// Publisher, when set, keeps only the lessons of this node ID, as in
	// Query.
	Publisher string
}

// ListResult is one page of List.
type ListResult struct {
	Records []*protocol.Lesson
	// Keys holds, for each of Records, the key lessonId@nodeId of a remote
	// lesson, or "" for an own record.
	Keys    []string
	Total   int  // records matching the options
	HasMore bool // more records follow this page
}

// Search finds records by words, phrases, comparisons and filters. Expired
// records never match.
func (s *Store) Search(ctx context.Context, q Query) (*SearchResult, error) {
	s.flushIndex()
	pq, err := q.parsed()
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	limit, err := checkQuery(&q)
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	defer leave()
	if s.idx == nil {
		return nil, fmt.Errorf("store: search: %w", ErrIndexUnavailable)
	}
	now := s.nowMS()

	var filters []query.Query
	types := q.Types
	if q.Type != "" {
		types = append([]string{q.Type}, types...)
	}
	if f := anyTerm(fieldType, types); f != nil {
		filters = append(filters, f)
	}
	if f := anyTerm(fieldVisibility, q.Visibility); f != nil {
		filters = append(filters, f)
	}
	filters, onlyLocal, none := s.appendOriginBut(filters, q.Origin, q.Publisher)
	if none {
		return &SearchResult{Hits: []Hit{}}, nil
	}
	var exclude []query.Query
	expiring := s.an.expiring.Load()
	if expiring {
		exclude = append(exclude, expiredQuery(now))
	}
	if onlyLocal {
		exclude = append(exclude, term(fieldOrigin, originRemote))
	}
	filters = appendCommon(filters, q.Project, q.Agent, q.Tags)
	if len(q.IDs) > 0 {
		filters = append(filters, query.NewDocIDQuery(q.IDs))
	}
	if q.Since != 0 || q.Until != 0 {
		var lo, hi *float64
		if q.Since != 0 {
			lo = ptr(float64(q.Since))
		}
		if q.Until != 0 {
			hi = ptr(float64(q.Until))
		}
		filters = append(filters, numRange(fieldCreated, lo, hi, true, true))
	}
	for _, c := range pq.Comparisons {
		filters = append(filters, comparisonQuery(c))
	}

	var must, should []query.Query
	for _, p := range pq.Phrases {
		if len(s.an.text.Analyze([]byte(p))) == 0 {
			continue // only stop words: nothing to look for
		}
		mp := query.NewMatchPhraseQuery(p)
		mp.SetField(fieldText)
		must = append(must, mp)
	}
	seen := map[string]bool{}
	var terms []string
	for _, w := range pq.Terms {
		for _, tok := range s.an.text.Analyze([]byte(w)) {
			t := string(tok.Term)
			if seen[t] {
				continue
			}
			seen[t] = true
			terms = append(terms, t)
			tq := query.NewTermQuery(t)
			tq.SetField(fieldText)
			should = append(should, tq)
		}
	}
	scored := len(must) > 0 || len(should) > 0
	if !scored && (len(pq.Terms) > 0 || len(pq.Phrases) > 0) {
		// Words were given, but none is searchable (stop words, punctuation).
		return &SearchResult{Hits: []Hit{}}, nil
	}
	if !scored {
		must = []query.Query{query.NewMatchAllQuery()}
	}
	bq := query.NewBooleanQuery(must, should, exclude)
	addFilters(bq, filters)

	req := bleve.NewSearchRequestOptions(bq, limit, 0, false)
	if !scored {
		req.Score = "none"
		req.SortBy([]string{"-" + fieldCreated, "-_id"})
	}
	var res *bleve.SearchResult
	ranked := false
	// Words, with or without filters on keyword fields (the usual
	// search): ranked from the postings directly, with the same
	// exclusions and filters. Phrases, comparisons, dates and IDs go
	// through bleve.
	if tf, simple := termFilters(filters); scored && len(must) == 0 && simple && !s.noRankTerms {
		ex := exclusions{remote: onlyLocal, expiry: expiring, now: now, filters: tf}
		if res, ranked, err = rankTerms(ctx, s.idx, terms, ex, limit); err != nil {
			return nil, fmt.Errorf("store: search: %w", err)
		}
	}
	if !ranked {
		if res, err = s.idx.SearchInContext(ctx, req); err != nil {
			return nil, fmt.Errorf("store: search: %w", err)
		}
	}
	out := &SearchResult{Hits: make([]Hit, 0, len(res.Hits)), Total: int(res.Total)}
	for _, h := range res.Hits {
		score := 1.0
		if scored {
			score = normalizeScore(h.Score)
		}
		if score < q.MinScore {
			if scored {
				break // sorted by score
			}
			continue
		}
		hit, err := s.loadHit(ctx, h.ID, now)
		if err != nil {
			// The index ran ahead of a concurrent delete or sweep; or the
			// stored record is damaged. Either way it is not a result.
			if !errors.Is(err, ErrNotFound) {
				s.log.Warn("search hit unreadable", "id", h.ID, "err", err)
			}
			out.Total--
			continue
		}
		hit.Score = score
		out.Hits = append(out.Hits, hit)
	}
	if out.Total < len(out.Hits) {
		out.Total = len(out.Hits)
	}
	return out, nil
}

// loadHit reads the record of an index document, or the remote lesson of a
// document id lessonId@nodeId. Missing or expired: ErrNotFound.
func (s *Store) loadHit(ctx context.Context, docID string, now int64) (Hit, error) {
	if isRemoteDoc(docID) {
		sl, data, err := s.loadRemoteData(ctx, docID)
		if err == nil && expired(&sl.Lesson, now) {
			err = ErrNotFound
		}
		if err != nil {
			return Hit{}, err
		}
		rec := sl.Lesson.Clone()
		rec.Visibility = sl.Publication.Visibility
		return Hit{ID: sl.Lesson.ID, Key: docID, Publisher: sl.Signature.NodeID, Record: rec, Signed: sl, Encoded: data}, nil
	}
	e, err := s.loadEntry(ctx, docID)
	if err == nil && expired(e.rec, now) {
		err = ErrNotFound
	}
	if err != nil {
		return Hit{}, err
	}
	return Hit{ID: docID, Publisher: s.selfID, Record: e.rec.Clone(), entry: e}, nil
}

// appendOrigin adds the filters of an origin and a publisher. none reports
// that nothing can match.
func (s *Store) appendOrigin(filters []query.Query, origin, publisher string) (_ []query.Query, none bool) {
	filters, onlyLocal, none := s.appendOriginBut(filters, origin, publisher)
	if onlyLocal {
		filters = append(filters, term(fieldOrigin, originLocal))
	}
	return filters, none
}

// appendOriginBut is appendOrigin, except that it leaves out the filter
// that keeps this node's own records only (the default origin): it
// reports onlyLocal instead, for the caller to exclude remote lessons.
// A scored search excludes them (a must-not clause, which costs a look-up
// per candidate only while remote lessons remain ahead of it) rather than
// filtering on origin:local, which matches nearly every document of a
// node's own store and cost a third of a query's time at a million
// records.
func (s *Store) appendOriginBut(filters []query.Query, origin, publisher string) (_ []query.Query, onlyLocal, none bool) {
	local := origin == "" || origin == OriginLocal || origin == OriginAll
	remote := origin == OriginRemote || origin == OriginAll
	if publisher != "" {
		if s.selfID != "" && publisher == s.selfID {
			remote = false // PutRemote refuses this node's lessons
		} else {
			local = false
		}
	}
	switch {
	case local && remote:
	case local:
		return filters, true, false
	case remote:
		filters = append(filters, term(fieldOrigin, originRemote))
		if publisher != "" {
			filters = append(filters, term(fieldPublisher, publisher))
		}
	default:
		return filters, false, true
	}
	return filters, false, false
}

func checkOrigin(origin, publisher string) error {
	switch origin {
	case "", OriginLocal, OriginRemote, OriginAll:
	default:
		return invalidf("origin %q: want local, remote or all", truncate(origin))
	}
	return checkName("publisher", publisher, 128)
}

// normalizeScore maps a BM25 score s >= 0 into (0, 1] with s/(s+1): it is
// monotonic, so it keeps the ranking. A degenerate score maps to the
// smallest positive value.
func normalizeScore(s float64) float64 {
	if math.IsNaN(s) || s <= 0 {
		return math.SmallestNonzeroFloat64
	}
	if math.IsInf(s, 1) {
		return 1
	}
	v := s / (s + 1)
	if v <= 0 {
		return math.SmallestNonzeroFloat64
	}
	return v
}

// checkQuery validates the filters of q and returns its limit.
func checkQuery(q *Query) (int, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultSearchLimit
	case limit < 0 || limit > MaxSearchLimit:
		return 0, invalidf("limit %d: want 1 to %d (0 for %d)", q.Limit, MaxSearchLimit, DefaultSearchLimit)
	}
	if math.IsNaN(q.MinScore) || q.MinScore < 0 || q.MinScore > 1 {
		return 0, invalidf("min_score %v: want 0 to 1", q.MinScore)
	}
	if q.Since < 0 || q.Until < 0 {
		return 0, invalidf("since/until: want Unix milliseconds, not negative")
	}
	if q.Since != 0 && q.Until != 0 && q.Since > q.Until {
		return 0, invalidf("since %d is after until %d", q.Since, q.Until)
	}
	if len(q.IDs) > MaxSearchLimit {
		return 0, invalidf("%d ids, the limit is %d", len(q.IDs), MaxSearchLimit)
	}
	if len(q.Types) > protocol.MaxTags {
		return 0, invalidf("%d types, the limit is %d", len(q.Types), protocol.MaxTags)
	}
	if q.Type != "" {
		if err := checkName("type", q.Type, protocol.MaxTypeLength); err != nil {
			return 0, err
		}
	}
	for _, t := range q.Types {
		if err := checkName("type", t, protocol.MaxTypeLength); err != nil {
			return 0, err
		}
	}
	if len(q.Visibility) > 3 {
		return 0, invalidf("%d visibilities: want at most private, unlisted and public", len(q.Visibility))
	}
	for _, v := range q.Visibility {
		if v == "" || !protocol.ValidVisibility(v) {
			return 0, invalidf("visibility %q: want private, unlisted or public", truncate(v))
		}
	}
	if err := checkCommon(q.Project, q.Agent, q.Tags); err != nil {
		return 0, err
	}
	if err := checkOrigin(q.Origin, q.Publisher); err != nil {
		return 0, err
	}
	return limit, nil
}

func checkCommon(project, agent string, tags []string) error {
	if err := checkName("project", project, protocol.MaxTagLength); err != nil {
		return err
	}
	if err := checkName("agent", agent, protocol.MaxTagLength); err != nil {
		return err
	}
	if len(tags) > protocol.MaxTags {
		return invalidf("%d tags, the limit is %d", len(tags), protocol.MaxTags)
	}
	for _, t := range tags {
		if t == "" {
			return invalidf("empty tag in filter")
		}
		if err := checkName("tag", t, protocol.MaxTagLength); err != nil {
			return err
		}
	}
	return nil
}

// checkName bounds a filter value. Longer values cannot be stored, so they
// would only waste a lookup; the cap is generous.
func checkName(what, v string, max int) error {
	if len(v) > 4*max {
		return invalidf("%s filter is %d bytes, the limit is %d", what, len(v), 4*max)
	}
	if v != "" && strings.ContainsRune(v, 0) {
		return invalidf("%s filter contains a NUL byte", what)
	}
	return nil
}

// expiredQuery matches the records expired at now. Searches exclude it as
// a must-not clause: only records with an expiry have the field, so the
// clause costs little however large the store.
func expiredQuery(now int64) query.Query {
	return numRange(fieldExpires, ptr(0.0), ptr(float64(now)), true, true)
}

// liveQuery matches every record not expired at now. Until the index has
// held a record with an expiry (analyzers.expiring) it has no expiry clause.
// A record that gains one while a search runs may be counted by it, but
// not returned: loadHit checks every hit's expiry.
func (s *Store) liveQuery(now int64) *query.BooleanQuery {
	var exclude []query.Query
	if s.an.expiring.Load() {
		exclude = append(exclude, expiredQuery(now))
	}
	return query.NewBooleanQuery([]query.Query{query.NewMatchAllQuery()}, nil, exclude)
}

// addFilters adds filters to q as a non-scoring filter clause.
func addFilters(q *query.BooleanQuery, filters []query.Query) {
	switch len(filters) {
	case 0:
	case 1:
		q.AddFilter(filters[0])
	default:
		q.AddFilter(query.NewConjunctionQuery(filters))
	}
}

func appendCommon(filters []query.Query, project, agent string, tags []string) []query.Query {
	if project != "" {
		filters = append(filters, term(fieldProject, project))
	}
	if agent != "" {
		filters = append(filters, term(fieldAgent, agent))
	}
	for _, t := range tags {
		filters = append(filters, term(fieldTag, t))
	}
	return filters
}

func term(field, v string) query.Query {
	q := query.NewTermQuery(v)
	q.SetField(field)
	return q
}

// anyTerm matches records whose field equals one of vs; nil if vs is empty.
func anyTerm(field string, vs []string) query.Query {
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return term(field, vs[0])
	}
	qs := make([]query.Query, len(vs))
	for i, v := range vs {
		qs[i] = term(field, v)
	}
	return query.NewDisjunctionQuery(qs)
}

func numRange(field string, lo, hi *float64, loIncl, hiIncl bool) query.Query {
	q := query.NewNumericRangeInclusiveQuery(lo, hi, &loIncl, &hiIncl)
	q.SetField(field)
	return q
}

func comparisonQuery(c Comparison) query.Query {
	f := numericFieldName(c.Field)
	v := c.Value
	switch c.Op {
	case OpGreater:
		return numRange(f, &v, nil, false, false)
	case OpGreaterEqual:
		return numRange(f, &v, nil, true, false)
	case OpLess:
		return numRange(f, nil, &v, false, false)
	case OpLessEqual:
		return numRange(f, nil, &v, false, true)
	default:
		return numRange(f, &v, &v, true, true)
	}
}

func ptr[T any](v T) *T { return &v }

// List returns records matching opts, ordered by created_at (then id), a
// page at a time. Expired records are left out.
func (s *Store) List(ctx context.Context, o ListOptions) (*ListResult, error) {
	s.flushIndex()
	limit := o.Limit
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, fmt.Errorf("store: list: %w", invalidf("limit %d: want 1 to %d (0 for %d)", o.Limit, MaxListLimit, DefaultListLimit))
	}
	if o.Offset < 0 || o.Offset > MaxListOffset {
		return nil, fmt.Errorf("store: list: %w", invalidf("offset %d: want 0 to %d", o.Offset, MaxListOffset))
	}
	desc := true
	switch o.Order {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return nil, fmt.Errorf("store: list: %w", invalidf("order %q: want asc or desc", truncate(o.Order)))
	}
	if o.Visibility != "" && !protocol.ValidVisibility(o.Visibility) {
		return nil, fmt.Errorf("store: list: %w", invalidf("visibility %q: want private, unlisted or public", truncate(o.Visibility)))
	}
	if err := checkName("type", o.Type, protocol.MaxTypeLength); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	if err := checkCommon(o.Project, o.Agent, o.Tags); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	if err := checkOrigin(o.Origin, o.Publisher); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer leave()
	if s.idx == nil {
		return nil, fmt.Errorf("store: list: %w", ErrIndexUnavailable)
	}
	now := s.nowMS()
	var filters []query.Query
	if o.Type != "" {
		filters = append(filters, term(fieldType, o.Type))
	}
	if o.Visibility != "" {
		filters = append(filters, term(fieldVisibility, o.Visibility))
	}
	filters, none := s.appendOrigin(filters, o.Origin, o.Publisher)
	if none {
		return &ListResult{}, nil
	}
	filters = appendCommon(filters, o.Project, o.Agent, o.Tags)
	bq := s.liveQuery(now)
	addFilters(bq, filters)
	req := bleve.NewSearchRequestOptions(bq, limit, o.Offset, false)
	req.Score = "none"
	if desc {
		req.SortBy([]string{"-" + fieldCreated, "-_id"})
	} else {
		req.SortBy([]string{fieldCreated, "_id"})
	}
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	out := &ListResult{Records: make([]*protocol.Lesson, 0, len(res.Hits)), Keys: make([]string, 0, len(res.Hits)), Total: int(res.Total)}
	for _, h := range res.Hits {
		hit, err := s.loadHit(ctx, h.ID, now)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Warn("listed record unreadable", "id", h.ID, "err", err)
			}
			out.Total--
			continue
		}
		out.Records = append(out.Records, hit.Record)
		out.Keys = append(out.Keys, hit.Key)
	}
	out.HasMore = o.Offset+len(res.Hits) < int(res.Total)
	return out, nil
}

// Status counts the records that have not expired.
type Status struct {
	// Counts maps each record type (lesson, checkpoint, snippet, or any
	// other) to its number of this node's records.
	Counts map[string]int
	// Total is the number of this node's records.
	Total int
	// Remote is the number of remote lessons in the cache, expired ones
	// left out.
	Remote int
	// Tombstones is the number of revocations kept.
	Tombstones int
	// LastRecovery says what the last recovery of the datastore did
	// (a damaged write-ahead log found at start-up, or Repair), with its
	// time; "" if there was none (see RecoveryFile).
	LastRecovery string
}

// maxStatusTypes caps the number of distinct types Status reports.
const maxStatusTypes = 10000

// IndexSegments is how many segments the search index has now: a search
// walks each, so more segments (a build or a merge still under way) make
// searches slower. Zero if the index is unavailable.
func (s *Store) IndexSegments() int {
	leave, err := s.beginRead()
	if err != nil {
		return 0
	}
	defer leave()
	if s.idx == nil {
		return 0
	}
	// From a snapshot: scorch's own counters lag one write behind.
	adv, err := s.idx.Advanced()
	if err != nil {
		return 0
	}
	r, err := adv.Reader()
	if err != nil {
		return 0
	}
	defer r.Close()
	if snap, ok := r.(*scorch.IndexSnapshot); ok {
		return len(snap.Segments())
	}
	return 0
}

// Status counts live own records per type, cached remote lessons and
// tombstones.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	s.flushIndex()
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	defer leave()
	if s.idx == nil {
		return nil, fmt.Errorf("store: status: %w", ErrIndexUnavailable)
	}
	now := s.nowMS()
	rq := s.liveQuery(now)
	rq.AddFilter(term(fieldOrigin, originRemote))
	rreq := bleve.NewSearchRequestOptions(rq, 0, 0, false)
	rreq.Score = "none"
	rres, err := s.idx.SearchInContext(ctx, rreq)
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	lq := s.liveQuery(now)
	lq.AddFilter(term(fieldOrigin, originLocal))
	req := bleve.NewSearchRequestOptions(lq, 0, 0, false)
	req.Score = "none"
	req.AddFacet("types", bleve.NewFacetRequest(fieldType, maxStatusTypes))
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("store: status: %w", err)
	}
	st := &Status{Counts: map[string]int{}, Total: int(res.Total), Remote: int(rres.Total), LastRecovery: LastRecovery(s.dir)}
	s.fedMu.RLock()
	st.Tombstones = len(s.fed.tombs)
	s.fedMu.RUnlock()
	if f := res.Facets["types"]; f != nil && f.Terms != nil {
		for _, t := range f.Terms.Terms() {
			st.Counts[t.Term] = t.Count
		}
	}
	return st, nil
}

// Agent states reported by AgentStatus.
const (
	StatusIdle       = "idle"
	StatusInProgress = "in_progress"
	StatusBlocked    = "blocked"
)

// Checkpoint flags AgentStatus understands (compared case-insensitively).
const (
	FlagBlocked    = "BLOCKED"
	FlagInProgress = "IN_PROGRESS"
)

// AgentStatus is what an agent is doing, from its latest checkpoint.
type AgentStatus struct {
	Agent        string
	Status       string // StatusIdle, StatusInProgress or StatusBlocked
	WorkingOn    string
	Blockers     []string
	CheckpointID string // "" if the agent has no live checkpoint
	UpdatedAt    int64  // of the checkpoint: updated_at, else created_at
}

// AgentStatus reports an agent's state from its latest live checkpoint (by
// updated_at, else created_at): blocked if the checkpoint's state lists
// blockers or its flags hold BLOCKED; in progress if its flags hold
// IN_PROGRESS or working_on is set; idle otherwise, and when the agent has
// no checkpoint.
func (s *Store) AgentStatus(ctx context.Context, agent string) (*AgentStatus, error) {
	s.flushIndex()
	if agent == "" {
		return nil, fmt.Errorf("store: agent status: %w", invalidf("agent is required"))
	}
	if err := checkName("agent", agent, protocol.MaxTagLength); err != nil {
		return nil, fmt.Errorf("store: agent status: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: agent status: %w", err)
	}
	defer leave()
	if s.idx == nil {
		return nil, fmt.Errorf("store: agent status: %w", ErrIndexUnavailable)
	}
	now := s.nowMS()
	out := &AgentStatus{Agent: agent, Status: StatusIdle}
	bq := s.liveQuery(now)
	addFilters(bq, []query.Query{term(fieldType, protocol.TypeCheckpoint), term(fieldAgent, agent), term(fieldOrigin, originLocal)})
	req := bleve.NewSearchRequestOptions(bq, 1, 0, false)
	req.Score = "none"
	req.SortBy([]string{"-" + fieldModified, "-" + fieldCreated, "-_id"})
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("store: agent status: %w", err)
	}
	if len(res.Hits) == 0 {
		return out, nil
	}
	rec, err := s.load(ctx, res.Hits[0].ID)
	if err != nil || expired(rec, now) {
		return out, nil
	}
	out.CheckpointID = rec.ID
	out.WorkingOn = rec.WorkingOn
	out.UpdatedAt = rec.UpdatedAt
	if out.UpdatedAt == 0 {
		out.UpdatedAt = rec.CreatedAt
	}
	st, err := rec.CheckpointState()
	if err != nil {
		s.log.Warn("checkpoint state unreadable", "id", rec.ID, "err", err)
	}
	out.Blockers = st.Blockers
	switch {
	case len(st.Blockers) > 0 || hasFlag(st.Flags, FlagBlocked):
		out.Status = StatusBlocked
	case hasFlag(st.Flags, FlagInProgress) || rec.WorkingOn != "":
		out.Status = StatusInProgress
	}
	return out, nil
}

func hasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if strings.EqualFold(strings.TrimSpace(f), flag) {
			return true
		}
	}
	return false
}

// sweepPage is the number of expired records Sweep deletes per batch.
const sweepPage = 500

// Sweep deletes expired records, and their publications, and expired remote
// lessons from the datastore and the index, and returns how many it
// deleted. The background
// sweeper calls it every Options.SweepInterval.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	total, err := s.sweepEncrypted(ctx)
	if err != nil {
		return total, fmt.Errorf("store: sweep: %w", err)
	}
	for {
		n, more, err := s.sweepPage(ctx)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: sweep: %w", err)
		}
		if !more {
			return total, nil
		}
	}
}

func (s *Store) sweepPage(ctx context.Context) (n int, more bool, err error) {
	s.flushIndex()
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	leave, err := s.beginWrite()
	if err != nil {
		return 0, false, err
	}
	defer leave()
	if s.idx == nil {
		return 0, false, ErrIndexUnavailable
	}
	if !s.an.expiring.Load() {
		return 0, false, nil // nothing in the index can expire
	}
	now := s.nowMS()
	req := bleve.NewSearchRequestOptions(expiredQuery(now), sweepPage, 0, false)
	req.Score = "none"
	res, err := s.idx.SearchInContext(ctx, req)
	if err != nil {
		return 0, false, err
	}
	if len(res.Hits) == 0 {
		return 0, false, nil
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	unlock := s.lockIDs(ids...)
	defer unlock()
	// The datastore decides: only records that are expired there go.
	var gone, goneRemote, stale []string
	for _, id := range ids {
		if isRemoteDoc(id) {
			sl, err := s.loadRemote(ctx, id)
			switch {
			case err == nil && expired(&sl.Lesson, now):
				goneRemote = append(goneRemote, id)
			case err == nil, errors.Is(err, ErrNotFound):
				stale = append(stale, id)
			default:
				s.log.Warn("sweep: remote lesson unreadable", "err", err)
				stale = append(stale, id)
			}
			continue
		}
		rec, err := s.load(ctx, id)
		switch {
		case err == nil && expired(rec, now):
			gone = append(gone, id)
		case err == nil:
			stale = append(stale, id)
		case errors.Is(err, ErrNotFound):
			stale = append(stale, id)
		default:
			s.log.Warn("sweep: record unreadable", "id", id, "err", err)
			stale = append(stale, id)
		}
	}
	if len(gone) > 0 {
		if err := s.deleteLocked(ctx, gone); err != nil {
			return 0, false, err
		}
	}
	if len(goneRemote) > 0 {
		if err := s.deleteRemoteLocked(ctx, goneRemote); err != nil {
			return 0, false, err
		}
	}
	if len(stale) > 0 {
		// The index disagrees with the datastore about these: repair it.
		s.reindexLocked(ctx, stale)
	}
	n = len(gone) + len(goneRemote)
	return n, n > 0 && len(res.Hits) == sweepPage, nil
}

// reindexLocked re-indexes ids from the datastore (removing those that are
// gone or unreadable). Their stripes are locked.
func (s *Store) reindexLocked(ctx context.Context, ids []string) {
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return
	}
	ib := s.idx.NewBatch()
	var markers []ds.Key
	for _, id := range ids {
		if s.indexDir != "" {
			k := s.markerKey(id)
			if b.Put(ctx, k, markerValue) != nil {
				return
			}
			markers = append(markers, k)
		}
		doc, err := s.loadDoc(ctx, id)
		if err != nil {
			ib.Delete(id)
			continue
		}
		_ = ib.IndexAdvanced(doc)
	}
	if b.Commit(ctx) != nil {
		return
	}
	s.applyIndex(ib, markers)
}

// deleteRemoteLocked deletes remote lessons, signed or encrypted, from the datastore (one
// batch), the index and memory. Their log entries stay, skipped, until a
// newer version or a tombstone replaces them. The keys' stripes are locked.
func (s *Store) deleteRemoteLocked(ctx context.Context, keys []string) error {
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return err
	}
	var markers []ds.Key
	for _, key := range keys {
		if err := b.Delete(ctx, keyPath(nsRemote, key)); err != nil {
			return err
		}
		// The key may name an encrypted lesson: its copy has its own key.
		if id, node, err := protocol.ParseKey(key); err == nil {
			if err := b.Delete(ctx, encRemoteKey(node, id)); err != nil {
				return err
			}
		}
		if s.indexDir != "" {
			k := s.markerKey(key)
			if err := b.Put(ctx, k, markerValue); err != nil {
				return err
			}
			markers = append(markers, k)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	s.fedMu.Lock()
	for _, key := range keys {
		if v, ok := s.fed.remote[key]; ok {
			delete(s.fed.remote, key)
			if v.seq != 0 {
				s.fed.log.dead++
			}
		}
	}
	s.fedMu.Unlock()
	if s.idx != nil {
		ib := s.idx.NewBatch()
		for _, key := range keys {
			ib.Delete(key)
		}
		s.applyIndex(ib, markers)
	}
	return nil
}
