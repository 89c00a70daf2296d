package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Message types of federated search (ProtocolSearch).
const (
	MsgSearch         = "search"
	MsgSearchResponse = "searchResponse"
)

// Size caps, defaults and clamps of federated search.
//
// A node serving a search first decodes it (DecodeSearchRequest refuses
// what is malformed or over a cap: a request over MaxSearchRequestSize, a
// query over MaxSearchQueryLength, negative numbers), then clamps it
// (SearchRequest.Clamp): a zero limit, hops, ttl or deadline takes its
// default, and anything above its maximum is lowered to it. Clamping, not
// refusing, keeps newer requesters with bigger defaults working against
// older nodes, and bounds what a hostile requester can make the network do.
const (
	// MaxSearchRequestSize caps an encoded SearchRequest.
	MaxSearchRequestSize = 8 << 10
	// MaxSearchResponseSize caps an encoded SearchResponse.
	MaxSearchResponseSize = 16 << 20
	// MaxSearchResults caps the results in one SearchResponse.
	MaxSearchResults = 500
	// MaxSearchQueryLength caps SearchRequest.Query, in bytes.
	MaxSearchQueryLength = 1 << 10
	// MaxRequestIDLength caps SearchRequest.RequestID, in bytes.
	MaxRequestIDLength = 128

	// DefaultSearchLimit is the limit of a request that gives none.
	DefaultSearchLimit = 20
	// MaxSearchLimit is the largest limit a node honours.
	MaxSearchLimit = 100
	// DefaultSearchHops is the hops of a request that gives none.
	DefaultSearchHops = 2
	// MaxSearchHops is the largest hops and ttl a node honours.
	MaxSearchHops = 3
	// DefaultSearchDeadlineMs is the budget of a request that gives none.
	DefaultSearchDeadlineMs = 2000
	// MaxSearchDeadlineMs is the largest budget a node honours, and the
	// largest lateMs.
	MaxSearchDeadlineMs = 10000
	// MaxSearchFrames caps the answer frames of one ProtocolSearchLate
	// exchange, the first included; their sizes together are capped at
	// MaxSearchResponseSize.
	MaxSearchFrames = 16
)

// SearchFilters restrict a federated search. Empty fields do not restrict.
type SearchFilters struct {
	// Types: the lesson's type must be one of them.
	Types []string `json:"types,omitempty"`
	// Tags: the lesson must carry every one of them.
	Tags []string `json:"tags,omitempty"`
	// Topics: the publication must be on one of them.
	Topics []string `json:"topics,omitempty"`
	// Since: published at or after this time (Unix ms); 0 is unbounded.
	Since int64 `json:"since,omitempty"`
	// Nodes: the publisher must be one of these node IDs.
	Nodes []string `json:"nodes,omitempty"`
}

// Empty reports whether f restricts nothing.
func (f *SearchFilters) Empty() bool {
	return f == nil || len(f.Types) == 0 && len(f.Tags) == 0 && len(f.Topics) == 0 && f.Since == 0 && len(f.Nodes) == 0
}

// Match reports whether a signed lesson passes the filters; every lesson
// passes nil or empty filters. Topics compare case-insensitively.
func (f *SearchFilters) Match(sl *SignedLesson) bool {
	if f.Empty() {
		return true
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, sl.Lesson.Type) {
		return false
	}
	for _, t := range f.Tags {
		if !slices.Contains(sl.Lesson.Tags, t) {
			return false
		}
	}
	if len(f.Topics) > 0 && !slices.ContainsFunc(sl.Publication.Topics, func(t string) bool {
		return slices.Contains(f.Topics, strings.ToLower(t))
	}) {
		return false
	}
	if f.Since != 0 && sl.Publication.PublishedAt < f.Since {
		return false
	}
	return len(f.Nodes) == 0 || slices.Contains(f.Nodes, sl.Signature.NodeID)
}

// SearchRequest asks a node, and through it its trusted peers, for public
// lessons matching a query (ProtocolSearch).
type SearchRequest struct {
	Type    string         `json:"type"` // MsgSearch
	Query   string         `json:"query"`
	Filters *SearchFilters `json:"filters,omitempty"`
	// Limit is the number of results wanted: 0 means DefaultSearchLimit, at
	// most MaxSearchLimit.
	Limit int `json:"limit,omitempty"`
	// Hops is how far the requester asked the search to go: 0 means
	// DefaultSearchHops, at most MaxSearchHops.
	Hops int `json:"hops,omitempty"`
	// RequestID identifies the search across the network; a node answers
	// a request ID it has seen recently with no results.
	RequestID string `json:"requestId"`
	// Origin is the node ID of the requester.
	Origin string `json:"origin,omitempty"`
	// TTL is the number of hops left, this one included: 1 answers from
	// the receiving node alone. 0 means Hops; at most MaxSearchHops.
	TTL int `json:"ttl,omitempty"`
	// DeadlineMs is the time left to answer, in ms, from when the request
	// is received (a MESH addition to the seed). 0 means
	// DefaultSearchDeadlineMs, at most MaxSearchDeadlineMs.
	DeadlineMs int64 `json:"deadlineMs,omitempty"`
	// LateMs, over ProtocolSearchLate only, is how long after receipt the
	// asker still reads late answers (0: not at all). A forwarder answers
	// by DeadlineMs with what it has, marking the answer More if some
	// peers have not answered; what they answer before LateMs follows in
	// further frames. Meaningful only above DeadlineMs; at most
	// MaxSearchDeadlineMs.
	LateMs int64 `json:"lateMs,omitempty"`
}

// Clamp applies the defaults and caps of limit, hops, ttl and deadline.
func (r *SearchRequest) Clamp() {
	r.Limit = clampInt(r.Limit, DefaultSearchLimit, MaxSearchLimit)
	r.Hops = clampInt(r.Hops, DefaultSearchHops, MaxSearchHops)
	r.TTL = clampInt(r.TTL, r.Hops, MaxSearchHops)
	switch {
	case r.DeadlineMs <= 0:
		r.DeadlineMs = DefaultSearchDeadlineMs
	case r.DeadlineMs > MaxSearchDeadlineMs:
		r.DeadlineMs = MaxSearchDeadlineMs
	}
	r.LateMs = min(r.LateMs, MaxSearchDeadlineMs)
	if r.LateMs <= r.DeadlineMs {
		r.LateMs = 0
	}
}

func clampInt(v, def, max int) int {
	switch {
	case v <= 0:
		return def
	case v > max:
		return max
	}
	return v
}

// Encode returns the JSON encoding of r.
func (r *SearchRequest) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeSearchRequest decodes and checks a search request: size cap,
// I-JSON, exact field names and types, a query of at most
// MaxSearchQueryLength bytes, no negative numbers. It does not clamp: see
// Clamp.
func DecodeSearchRequest(data []byte) (*SearchRequest, error) {
	if len(data) > MaxSearchRequestSize {
		return nil, fmt.Errorf("search request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSearchRequestSize)
	}
	o, err := parseObject("search request", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "query", "requestId"}, "filters", "limit", "hops", "origin", "ttl", "deadlineMs", "lateMs"); err != nil {
		return nil, err
	}
	r := &SearchRequest{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgSearch {
		return nil, invalidf("search request: type %q, want %q", truncate(r.Type), MsgSearch)
	}
	if r.Query, err = o.str("query"); err != nil {
		return nil, err
	}
	if len(r.Query) > MaxSearchQueryLength {
		return nil, invalidf("search request.query: %d bytes, the limit is %d", len(r.Query), MaxSearchQueryLength)
	}
	if r.RequestID, err = o.str("requestId"); err != nil {
		return nil, err
	}
	if r.RequestID == "" || len(r.RequestID) > MaxRequestIDLength {
		return nil, invalidf("search request.requestId: want 1 to %d bytes", MaxRequestIDLength)
	}
	if o.has("origin") {
		if r.Origin, err = o.str("origin"); err != nil {
			return nil, err
		}
		if len(r.Origin) > MaxRequestIDLength {
			return nil, invalidf("search request.origin: %d bytes, the limit is %d", len(r.Origin), MaxRequestIDLength)
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"limit", &r.Limit}, {"hops", &r.Hops}, {"ttl", &r.TTL}} {
		if !o.has(f.name) {
			continue
		}
		v, err := o.nonNegative(f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = int(min(v, math.MaxInt32))
	}
	if o.has("deadlineMs") {
		if r.DeadlineMs, err = o.nonNegative("deadlineMs"); err != nil {
			return nil, err
		}
	}
	if o.has("lateMs") {
		if r.LateMs, err = o.nonNegative("lateMs"); err != nil {
			return nil, err
		}
	}
	if o.has("filters") {
		fo, err := splitObject("search request.filters", o.get("filters"))
		if err != nil {
			return nil, err
		}
		if r.Filters, err = decodeSearchFilters(fo); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func decodeSearchFilters(o object) (*SearchFilters, error) {
	if err := o.only(nil, "types", "tags", "topics", "since", "nodes"); err != nil {
		return nil, err
	}
	f := &SearchFilters{}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"types", &f.Types}, {"tags", &f.Tags}, {"topics", &f.Topics}, {"nodes", &f.Nodes}} {
		if !o.has(l.name) {
			continue
		}
		ss, err := o.strs(l.name)
		if err != nil {
			return nil, err
		}
		if len(ss) > MaxTags {
			return nil, invalidf("%s.%s: %d values, the limit is %d", o.path, l.name, len(ss), MaxTags)
		}
		for _, s := range ss {
			if s == "" || len(s) > MaxTagLength {
				return nil, invalidf("%s.%s: each value must be 1 to %d bytes", o.path, l.name, MaxTagLength)
			}
		}
		if len(ss) > 0 {
			*l.dst = ss // [] decodes as nil, as it encodes
		}
	}
	if o.has("since") {
		var err error
		if f.Since, err = o.nonNegative("since"); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// nonNegative returns an integer member that is at least 0.
func (o object) nonNegative(name string) (int64, error) {
	v, err := o.int(name)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, invalidf("%s.%s: %d, must not be negative", o.path, name, v)
	}
	return v, nil
}

// float returns a number member.
func (o object) float(name string) (float64, error) {
	raw := o.get(name)
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, invalidf("%s.%s: want a number", o.path, name)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, invalidf("%s.%s: want a finite number", o.path, name)
	}
	return v, nil
}

// SearchResult is one lesson in a SearchResponse. Score and TrustScore are
// the answering node's view, for information only: a requester verifies the
// lesson and ranks it itself.
type SearchResult struct {
	SignedLesson *SignedLesson `json:"signedLesson"`
	// Score is the relevance the answering node's index gave the lesson.
	Score float64 `json:"score"`
	// TrustScore is the answering node's trust in the lesson's publisher.
	TrustScore float64 `json:"trustScore"`
	// Via is the node ID of the node whose store held the lesson; ""
	// means the node that sent the response.
	Via string `json:"via,omitempty"`

	// raw is the signedLesson member as received, when DecodeSearchResponse
	// made SignedLesson from it: a forwarder passes it on as is instead of
	// encoding the lesson again.
	raw    json.RawMessage
	rawFor *SignedLesson
	// relay is set, and SignedLesson nil, on a result DecodeSearchRelay
	// made: what a forwarder needs of the lesson it passes on as raw.
	relay *relayedLesson
}

// relayedLesson is what DecodeSearchRelay reads of a result's lesson.
type relayedLesson struct {
	key         string // lessonId@nodeId
	publishedAt int64
}

// Lesson reports the key (lessonId@nodeId) and the publication time of
// the result's lesson, whether it was decoded in full or for relaying; ok
// is false for a result without one. Nothing is verified.
func (r *SearchResult) Lesson() (key string, publishedAt int64, ok bool) {
	switch {
	case r.SignedLesson != nil:
		return r.SignedLesson.Key(), r.SignedLesson.Publication.PublishedAt, true
	case r.relay != nil && r.raw != nil:
		return r.relay.key, r.relay.publishedAt, true
	}
	return "", 0, false
}

// Publisher is the node ID in the signature of the result's lesson,
// whether it was decoded in full or for relaying; "" for a result without
// one. Nothing is verified.
func (r *SearchResult) Publisher() string {
	switch {
	case r.SignedLesson != nil:
		return r.SignedLesson.Signature.NodeID
	case r.relay != nil && r.raw != nil:
		return r.relay.key[strings.LastIndexByte(r.relay.key, '@')+1:]
	}
	return ""
}

// DecodeLesson decodes in full the lesson of a result DecodeSearchRelay
// made, checked as DecodeSearchResponse checks it, and sets SignedLesson
// (which then keeps the bytes received for encoding). A result already
// decoded is left as it is.
func (r *SearchResult) DecodeLesson() error {
	if r.SignedLesson != nil {
		return nil
	}
	if r.relay == nil || r.raw == nil {
		return invalidf("search result: no lesson")
	}
	sl := new(SignedLesson)
	if err := sl.unmarshalChecked(r.raw); err != nil {
		return fmt.Errorf("search result: %w", err)
	}
	r.SignedLesson, r.rawFor = sl, sl
	return nil
}

// AppendSearchText appends to dst the text the result's lesson is
// searched by (Lesson.AppendSearchText), unescaped, as it would decode.
// It reads it in place from the bytes of a result DecodeSearchRelay made,
// without decoding the lesson (or from SignedLesson, if decoded). ok is
// false when the title, the content or the tags are not of their types:
// the full decoder refuses such a lesson.
func (r *SearchResult) AppendSearchText(dst []byte) (_ []byte, ok bool) {
	if r.SignedLesson != nil {
		return r.SignedLesson.Lesson.AppendSearchText(dst), true
	}
	if r.relay == nil || r.raw == nil {
		return dst, false
	}
	lesson, _ := memberValue(r.raw, "lesson")
	str := func(dst, raw []byte) ([]byte, bool) {
		if len(raw) < 2 || raw[0] != '"' {
			return dst, false
		}
		return unescapeJSON(dst, raw[1:len(raw)-1]), true
	}
	for i, name := range [2]string{"title", "content"} {
		if i > 0 {
			dst = append(dst, '\n')
		}
		if v, has := memberValue(lesson, name); has {
			if dst, ok = str(dst, v); !ok {
				return dst, false
			}
		}
	}
	tags, has := memberValue(lesson, "tags")
	if !has {
		return dst, true
	}
	elems, isArray := splitArray(tags, MaxTags+1)
	if !isArray {
		return dst, false
	}
	for _, e := range elems {
		dst = append(dst, '\n')
		if dst, ok = str(dst, e); !ok {
			return dst, false
		}
	}
	return dst, true
}

// LessonBytes is the JSON of the result's lesson as it would be sent: as
// received, or encoded now (then kept, as EncodedSize does); nil if there
// is none or it does not encode.
func (r *SearchResult) LessonBytes() []byte {
	if r.EncodedSize() == 0 {
		return nil
	}
	return r.raw
}

// searchResultJSON is the wire form of SearchResult.
type searchResultJSON struct {
	SignedLesson json.RawMessage `json:"signedLesson"`
	Score        float64         `json:"score"`
	TrustScore   float64         `json:"trustScore"`
	Via          string          `json:"via,omitempty"`
}

// MarshalJSON encodes r. A result decoded from a response, whose lesson
// has not been replaced since, re-uses the lesson's bytes as received
// (they were checked when decoded).
func (r SearchResult) MarshalJSON() ([]byte, error) {
	w := searchResultJSON{Score: r.Score, TrustScore: r.TrustScore, Via: r.Via}
	if r.raw != nil && r.rawFor == r.SignedLesson {
		w.SignedLesson = r.raw
	} else {
		b, err := json.Marshal(r.SignedLesson)
		if err != nil {
			return nil, err
		}
		w.SignedLesson = b
	}
	return json.Marshal(w)
}

// UseEncoding makes b, which must be a JSON encoding of r.SignedLesson as
// decoded (a stored publication's bytes, say), the bytes r sends for its
// lesson, sparing an encoding. Replacing SignedLesson later drops it.
func (r *SearchResult) UseEncoding(b []byte) {
	r.raw, r.rawFor = b, r.SignedLesson
}

// EncodedSize is the size in bytes of the result's lesson in JSON: as
// received if it was decoded from a response, else as encoded now (0 if
// it does not encode). The encoding is kept for encoding r later, until
// SignedLesson is replaced: the lesson must not be modified meanwhile.
func (r *SearchResult) EncodedSize() int {
	if r.raw != nil && r.rawFor == r.SignedLesson {
		return len(r.raw)
	}
	if r.SignedLesson == nil {
		return 0
	}
	b, err := r.SignedLesson.Encode()
	if err != nil {
		return 0
	}
	r.raw, r.rawFor = b, r.SignedLesson
	return len(b)
}

// SearchResponse answers a SearchRequest: results, or an error
// (INVALID_REQUEST, RATE_LIMITED, ...). Truncated says some peers did not
// answer in time.
type SearchResponse struct {
	Type      string         `json:"type"` // MsgSearchResponse
	RequestID string         `json:"requestId"`
	Results   []SearchResult `json:"results"`
	Truncated bool           `json:"truncated"`
	// More, over ProtocolSearchLate only, says further frames follow on
	// the stream: the late answers of peers that had not answered when
	// this frame was sent. Each frame carries the results and Stats of the
	// peers that answered since the one before; the last has More false
	// and Truncated set if some peer never answered.
	More  bool   `json:"more,omitempty"`
	Error *Error `json:"error,omitempty"`
	// Stats, optional, are the statistics of the corpus the results were
	// drawn from (the answering node's and those of the nodes it
	// forwarded to, added up), for the requester to score every
	// candidate alike. Absent from a repeated request's empty answer and
	// from nodes that predate it.
	Stats *SearchStats `json:"stats,omitempty"`
	// Invalid counts the results of a decoded answer that were left out
	// because they did not decode (a record nested too deep, say). Never
	// sent.
	Invalid int `json:"-"`
}

// Encode returns the JSON encoding of r; nil Results encode as []. The
// results come last, each lesson decoded from a response spliced in as
// received: re-encoding (or even re-validating, as encoding/json does with
// raw JSON) every lesson would be most of a forwarder's work.
func (r *SearchResponse) Encode() ([]byte, error) {
	var b bytes.Buffer
	if err := r.EncodeTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// EncodeTo appends Encode's encoding of r to b, growing it once: for a
// caller that reuses its buffers. On an error b holds part of it.
func (r *SearchResponse) EncodeTo(b *bytes.Buffer) error {
	head, err := encodeJSON(&struct {
		Type      string `json:"type"`
		RequestID string `json:"requestId"`
		Truncated bool   `json:"truncated"`
		More      bool   `json:"more,omitempty"`
		Error     *Error `json:"error,omitempty"`
	}{r.Type, r.RequestID, r.Truncated, r.More, r.Error})
	if err != nil {
		return err
	}
	size := len(head) + 32 + r.Stats.EncodedSizeBound()
	for i := range r.Results {
		size += r.Results[i].EncodedSize() + 128 // score, trustScore, via
	}
	b.Grow(size)
	b.Write(head[:len(head)-1]) // without the closing brace
	if r.Stats != nil {
		b.WriteString(`,"stats":`)
		if err := r.Stats.appendJSON(b); err != nil {
			return err
		}
	}
	b.WriteString(`,"results":[`)
	for i := range r.Results {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := r.Results[i].appendJSON(b); err != nil {
			return err
		}
	}
	b.WriteString("]}")
	return nil
}

// appendJSON writes r's JSON encoding, as MarshalJSON does, to b.
func (r *SearchResult) appendJSON(b *bytes.Buffer) error {
	lesson := []byte(r.raw)
	if r.raw == nil || r.rawFor != r.SignedLesson {
		var err error
		if r.SignedLesson == nil {
			lesson = []byte("null")
		} else if lesson, err = r.SignedLesson.Encode(); err != nil {
			return err
		}
	}
	score, err := encodeJSON(r.Score)
	if err != nil {
		return err
	}
	trust, err := encodeJSON(r.TrustScore)
	if err != nil {
		return err
	}
	b.WriteString(`{"signedLesson":`)
	b.Write(lesson)
	b.WriteString(`,"score":`)
	b.Write(score)
	b.WriteString(`,"trustScore":`)
	b.Write(trust)
	if r.Via != "" {
		via, err := encodeJSON(r.Via)
		if err != nil {
			return err
		}
		b.WriteString(`,"via":`)
		b.Write(via)
	}
	b.WriteByte('}')
	return nil
}

// DecodeSearchResponse decodes a search answer: size cap, at most
// MaxSearchResults results, exact field names, stats within their caps
// (see SearchStats). A result that does not decode is left out and counted
// in Invalid. It does not verify the lessons.
func DecodeSearchResponse(data []byte) (*SearchResponse, error) {
	return decodeSearchResponse(data, false)
}

// DecodeSearchRelay is DecodeSearchResponse for a forwarder, which passes
// the results on rather than reading them: each result is checked as
// I-JSON and its envelope as in full, but of its lesson only the size, the
// three parts being objects, the lesson ID, the publisher's node ID and the
// publication time are read (SearchResult.Lesson), so that what is not a
// lesson at all is dropped here; other field names and values are not
// checked. SignedLesson is nil;
// the lesson's bytes are sent on as received. The requester decodes and
// verifies every lesson it ranks, so a malformed one costs it one Invalid,
// as it would have cost the forwarder.
func DecodeSearchRelay(data []byte) (*SearchResponse, error) {
	return decodeSearchResponse(data, true)
}

func decodeSearchResponse(data []byte, relay bool) (*SearchResponse, error) {
	if len(data) > MaxSearchResponseSize {
		return nil, fmt.Errorf("search response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSearchResponseSize)
	}
	o, err := parseEnvelope("search response", data, "type", "requestId", "truncated", "more", "error", "stats")
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "requestId", "results"}, "truncated", "more", "error", "stats"); err != nil {
		return nil, err
	}
	r := &SearchResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgSearchResponse {
		return nil, invalidf("search response: type %q, want %q", truncate(r.Type), MsgSearchResponse)
	}
	if r.RequestID, err = o.str("requestId"); err != nil {
		return nil, err
	}
	elems, isArray := splitArray(o.get("results"), MaxSearchResults+1)
	if !isArray {
		return nil, invalidf("search response.results: want an array")
	}
	if len(elems) > MaxSearchResults {
		return nil, fmt.Errorf("search response: %w: %d results, the limit is %d", ErrTooLarge, len(elems), MaxSearchResults)
	}
	r.Results = make([]SearchResult, 0, len(elems))
	for i, raw := range elems {
		// Each result is checked on its own (parseEnvelope did not): a
		// bad one is left out and counted, the others kept.
		if checkIJSONDepth(raw, 2) != nil {
			r.Invalid++
			continue
		}
		res, err := decodeResult(fmt.Sprintf("search response.results[%d]", i), raw, relay)
		if err != nil {
			r.Invalid++
			continue
		}
		r.Results = append(r.Results, res)
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"truncated", &r.Truncated}, {"more", &r.More}} {
		if !o.has(f.name) {
			continue
		}
		switch string(bytes.TrimSpace(o.get(f.name))) {
		case "true":
			*f.dst = true
		case "false":
		default:
			return nil, invalidf("search response.%s: want true or false", f.name)
		}
	}
	if o.has("error") {
		r.Error = new(Error)
		if err := decodeError(o.get("error"), r.Error); err != nil {
			return nil, prefixErr("search response", err)
		}
	}
	if o.has("stats") {
		if r.Stats, err = decodeSearchStats(o.get("stats")); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func decodeSearchResult(path string, raw []byte) (SearchResult, error) {
	return decodeResult(path, raw, false)
}

// decodeResult decodes one result of a search response: its lesson in
// full, or, for relay, only its key and publication time.
func decodeResult(path string, raw []byte, relay bool) (SearchResult, error) {
	var res SearchResult
	o, err := splitObject(path, raw)
	if err != nil {
		return res, err
	}
	if err := o.only([]string{"signedLesson"}, "score", "trustScore", "via"); err != nil {
		return res, err
	}
	if relay {
		if res.relay, err = relayLesson(path+".signedLesson", o.get("signedLesson")); err != nil {
			return res, err
		}
		res.raw = o.get("signedLesson")
	} else {
		res.SignedLesson = new(SignedLesson)
		if err := res.SignedLesson.unmarshalChecked(o.get("signedLesson")); err != nil {
			return res, fmt.Errorf("%s: %w", path, err)
		}
		res.raw, res.rawFor = o.get("signedLesson"), res.SignedLesson
	}
	if o.has("score") {
		if res.Score, err = o.float("score"); err != nil {
			return res, err
		}
	}
	if o.has("trustScore") {
		if res.TrustScore, err = o.float("trustScore"); err != nil {
			return res, err
		}
	}
	if o.has("via") {
		if res.Via, err = o.str("via"); err != nil {
			return res, err
		}
		if len(res.Via) > MaxRequestIDLength {
			return res, invalidf("%s.via: %d bytes, the limit is %d", path, len(res.Via), MaxRequestIDLength)
		}
	}
	return res, nil
}

// splitArray returns the elements of a JSON array, at most max of them.
// raw must be valid I-JSON: a member value the decoders split out of
// checked input.
func splitArray(raw []byte, max int) (elems [][]byte, isArray bool) {
	i := 0
	for i < len(raw) && isJSONSpace(raw[i]) {
		i++
	}
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	for i++; len(elems) < max; {
		for i < len(raw) && (isJSONSpace(raw[i]) || raw[i] == ',') {
			i++
		}
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		end := skipJSONValue(raw, i)
		elems = append(elems, raw[i:end])
		i = end
	}
	return elems, true
}

// relayLesson reads what a forwarder needs of a signed lesson it relays
// (see DecodeSearchRelay); data is checked I-JSON. It looks the members up
// in place, allocating only the key.
func relayLesson(path string, data []byte) (*relayedLesson, error) {
	if len(data) > MaxSignedLessonSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", path, ErrTooLarge, len(data), MaxSignedLessonSize)
	}
	part := func(obj []byte, name string) ([]byte, error) {
		v, ok := memberValue(obj, name)
		if !ok || len(v) == 0 || v[0] != '{' {
			return nil, invalidf("%s.%s: want an object", path, name)
		}
		return v, nil
	}
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 || bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return nil, invalidf("%s: must be a JSON object", path)
	}
	lesson, err := part(data, "lesson")
	if err != nil {
		return nil, err
	}
	pub, err := part(data, "publication")
	if err != nil {
		return nil, err
	}
	sig, err := part(data, "signature")
	if err != nil {
		return nil, err
	}
	idRaw, _ := memberValue(lesson, "id")
	id, err := jsonString(idRaw)
	if err != nil {
		return nil, invalidf("%s.lesson.id: want a string", path)
	}
	if err := ValidateID(id); err != nil {
		return nil, prefixErr(path+".lesson.id", err)
	}
	nodeRaw, _ := memberValue(sig, "nodeId")
	nodeID, err := jsonString(nodeRaw)
	if err != nil || nodeID == "" || len(nodeID) > MaxRequestIDLength || !safeName(nodeID) {
		return nil, invalidf("%s.signature.nodeId: want a node ID", path)
	}
	atRaw, _ := memberValue(pub, "publishedAt")
	at, err := parseSafeInt(atRaw)
	if err != nil || at <= 0 {
		return nil, invalidf("%s.publication.publishedAt: want Unix milliseconds", path)
	}
	return &relayedLesson{key: id + "@" + nodeID, publishedAt: at}, nil
}
