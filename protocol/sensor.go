package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ProtocolSensors answers structured questions about a sensor node's
// streams (SensorQuery in, SensorAnswer out). The source evaluates the
// question on its plaintext and answers only the readers it granted, with
// the readings still encrypted under the stream's epoch keys
// (ProtocolKeys serves those keys to the same readers).
const ProtocolSensors = "/mesh/sensors/1.0.0"

// Message types of ProtocolSensors.
const (
	MsgSensorQuery  = "sensorQuery"
	MsgSensorAnswer = "sensorAnswer"
)

// Limits of sensor streams and their messages.
const (
	// MaxStreamNameLength caps a stream name ("basement/humidity").
	MaxStreamNameLength = 64
	// MaxStreamSegments caps the '/'-separated segments of a stream name.
	MaxStreamSegments = 4
	// MaxUnitLength caps a stream's unit ("%", "°C", "kWh").
	MaxUnitLength = 16
	// MaxSensorQuerySize caps an encoded SensorQuery.
	MaxSensorQuerySize = 8 << 10
	// MaxSensorQueryClauses caps the streams, words and comparisons of a
	// SensorQuery, each.
	MaxSensorQueryClauses = 32
	// MaxSensorReadings caps the readings of one SensorAnswer, and
	// SensorQuery.Limit.
	MaxSensorReadings = 1000
	// DefaultSensorReadings is SensorQuery.Limit when it is 0.
	DefaultSensorReadings = 100
	// MaxSensorStreams caps the streams listed in one SensorAnswer.
	MaxSensorStreams = 256
	// MaxSensorAnswerSize caps an encoded SensorAnswer.
	MaxSensorAnswerSize = 8 << 20
)

// maxSensorAnswerDepth: the answer, readings, one EncryptedLesson and its
// blocks, topics.
const maxSensorAnswerDepth = 2 + maxEncryptedDepth

// ValidateStreamName checks a stream name: 1 to MaxStreamSegments
// segments joined by '/', each of lower-case ASCII letters, digits, '_' or
// '-', at most MaxStreamNameLength bytes in all ("basement/humidity").
func ValidateStreamName(name string) error { return validateStream(name, false) }

// ValidateStreamPattern checks a stream pattern: a stream name whose
// segments may be "*" (any one segment; a last "*" also matches deeper
// names), or "*" alone for every stream.
func ValidateStreamPattern(p string) error { return validateStream(p, true) }

func validateStream(name string, pattern bool) error {
	what := "stream name"
	if pattern {
		what = "stream pattern"
	}
	if name == "" || len(name) > MaxStreamNameLength {
		return invalidf("%s %q: want 1 to %d bytes", what, truncate(name), MaxStreamNameLength)
	}
	segs := strings.Split(name, "/")
	if len(segs) > MaxStreamSegments {
		return invalidf("%s %q: %d segments, the limit is %d", what, truncate(name), len(segs), MaxStreamSegments)
	}
	for _, s := range segs {
		if pattern && s == "*" {
			continue
		}
		if s == "" {
			return invalidf("%s %q: an empty segment (no leading, trailing or double '/')", what, truncate(name))
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return invalidf("%s %q: use lower-case letters, digits, '_' and '-' between the '/'", what, truncate(name))
			}
		}
	}
	return nil
}

// StreamMatches reports whether stream (a valid name) matches pattern (a
// valid pattern): segment by segment, "*" standing for any one segment;
// a pattern ending in "*" also matches longer names.
func StreamMatches(pattern, stream string) bool {
	if pattern == "*" {
		return true
	}
	ps, ss := strings.Split(pattern, "/"), strings.Split(stream, "/")
	for i, p := range ps {
		if i >= len(ss) {
			return false
		}
		if p == "*" {
			if i == len(ps)-1 {
				return true
			}
			continue
		}
		if p != ss[i] {
			return false
		}
	}
	return len(ps) == len(ss)
}

// ValidateUnit checks a stream's unit: empty, or 1 to MaxUnitLength bytes
// of printable UTF-8 without spaces ("%", "°C", "W").
func ValidateUnit(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > MaxUnitLength || !utf8.ValidString(u) {
		return invalidf("unit %q: want at most %d bytes of UTF-8", truncate(u), MaxUnitLength)
	}
	for _, r := range u {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return invalidf("unit %q: no spaces or control characters", truncate(u))
		}
	}
	return nil
}

// SensorComparison is a numeric condition on the readings of the streams
// whose name has a segment Field names ("humidity > 60%": field humidity,
// op >, value 60, unit %). A unit, if given, must be the stream's.
type SensorComparison struct {
	Field string  `json:"field"`
	Op    string  `json:"op"` // > >= < <= =
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Match reports whether v satisfies the comparison.
func (c SensorComparison) Match(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case "=":
		return v == c.Value
	}
	return false
}

// SensorQuery asks a source for readings of its streams:
//
//	{"type":"sensorQuery","streams":["basement/*"],"words":["humidity"],
//	 "comparisons":[{"field":"humidity","op":">","value":60,"unit":"%"}],
//	 "since":1767225600000,"until":1767312000000,"limit":100}
//
// Every clause must hold for a reading to match: its stream matches one of
// streams (none: any), each word names a segment of its stream (a prefix
// either way: "temp" and "temperature" match) or is "anomaly" and the
// reading is marked so, each comparison holds, and it was taken in
// [since, until] (Unix ms, 0 = open). The answer holds the newest limit
// matches (0 means DefaultSensorReadings, at most MaxSensorReadings).
type SensorQuery struct {
	Type        string             `json:"type"`
	Streams     []string           `json:"streams,omitempty"`
	Words       []string           `json:"words,omitempty"`
	Comparisons []SensorComparison `json:"comparisons,omitempty"`
	Since       int64              `json:"since,omitempty"`
	Until       int64              `json:"until,omitempty"`
	Limit       int                `json:"limit,omitempty"`
}

// Validate checks the query's rules.
func (q *SensorQuery) Validate() error {
	if q.Type != MsgSensorQuery {
		return invalidf("sensor query: type %q, want %q", truncate(q.Type), MsgSensorQuery)
	}
	if len(q.Streams) > MaxSensorQueryClauses || len(q.Words) > MaxSensorQueryClauses || len(q.Comparisons) > MaxSensorQueryClauses {
		return invalidf("sensor query: over %d streams, words or comparisons", MaxSensorQueryClauses)
	}
	for _, s := range q.Streams {
		if err := ValidateStreamPattern(s); err != nil {
			return fmt.Errorf("sensor query.streams: %w", err)
		}
	}
	for _, w := range q.Words {
		if w == "" || len(w) > MaxStreamNameLength || !utf8.ValidString(w) || strings.ContainsAny(w, " \t\r\n") {
			return invalidf("sensor query.words: %q: want one word of 1 to %d bytes", truncate(w), MaxStreamNameLength)
		}
	}
	for _, c := range q.Comparisons {
		if c.Field == "" || len(c.Field) > MaxStreamNameLength || ValidateStreamName(c.Field) != nil || strings.Contains(c.Field, "/") {
			return invalidf("sensor query.comparisons: field %q: want one stream name segment", truncate(c.Field))
		}
		switch c.Op {
		case ">", ">=", "<", "<=", "=":
		default:
			return invalidf("sensor query.comparisons: op %q: want > >= < <= or =", truncate(c.Op))
		}
		if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
			return invalidf("sensor query.comparisons: the value must be a finite number")
		}
		if err := ValidateUnit(c.Unit); err != nil {
			return fmt.Errorf("sensor query.comparisons: %w", err)
		}
	}
	if q.Since < 0 || q.Until < 0 || q.Since > maxSafeInt || q.Until > maxSafeInt || (q.Until != 0 && q.Until < q.Since) {
		return invalidf("sensor query: since and until are Unix ms, since not after until")
	}
	if q.Limit < 0 || q.Limit > MaxSensorReadings {
		return invalidf("sensor query.limit %d: want 0 to %d", q.Limit, MaxSensorReadings)
	}
	return nil
}

// Encode returns the JSON encoding of q.
func (q *SensorQuery) Encode() ([]byte, error) { return encodeJSON(q) }

// DecodeSensorQuery decodes and checks a SensorQuery: size cap, depth,
// I-JSON, no unknown fields, the query's rules.
func DecodeSensorQuery(data []byte) (*SensorQuery, error) {
	if len(data) > MaxSensorQuerySize {
		return nil, fmt.Errorf("sensor query: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSensorQuerySize)
	}
	if _, err := parseObjectDepth("sensor query", data, 3); err != nil {
		return nil, err
	}
	var q SensorQuery
	if err := strictUnmarshal(data, &q); err != nil {
		return nil, invalidf("sensor query: %v", err)
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return &q, nil
}

// StreamInfo describes one stream in a SensorAnswer.
type StreamInfo struct {
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
	// TTLMs is how long its readings are kept, in ms.
	TTLMs int64 `json:"ttlMs"`
}

// SensorAnswer answers a SensorQuery:
//
//	{"type":"sensorAnswer","streams":[{"name":"basement/humidity","unit":"%","ttlMs":604800000}],
//	 "readings":[EncryptedLesson, …],"truncated":false}
//	{"type":"sensorAnswer","error":"ACCESS_DENIED","message":"…"}
//
// Streams are the streams the requester may read that the query names;
// readings are the matches, newest first, each an EncryptedLesson signed by
// the source and encrypted under its stream's epoch key (the requester
// fetches the key over ProtocolKeys, decrypts and verifies). Truncated says
// more readings matched than the answer holds.
type SensorAnswer struct {
	Type      string             `json:"type"`
	Streams   []StreamInfo       `json:"streams,omitempty"`
	Readings  []*EncryptedLesson `json:"readings,omitempty"`
	Truncated bool               `json:"truncated,omitempty"`
	Error     Code               `json:"error,omitempty"`
	Message   string             `json:"message,omitempty"`
}

// SensorErrorAnswer is the answer that says err.
func SensorErrorAnswer(err error) *SensorAnswer {
	return &SensorAnswer{Type: MsgSensorAnswer, Error: CodeOf(err), Message: err.Error()}
}

// Err is the answer's error, matching its code's sentinel, or nil.
func (a *SensorAnswer) Err() error {
	if a.Error == "" {
		return nil
	}
	return fmt.Errorf("the source says: %w", ErrorFor(a.Error, a.Message))
}

// Encode returns the JSON encoding of a.
func (a *SensorAnswer) Encode() ([]byte, error) { return encodeJSON(a) }

// DecodeSensorAnswer decodes and checks a SensorAnswer: size cap, depth,
// I-JSON, no unknown fields, each reading decoded as DecodeEncryptedLesson
// does (not verified: the requester verifies what it decrypts).
func DecodeSensorAnswer(data []byte) (*SensorAnswer, error) {
	if len(data) > MaxSensorAnswerSize {
		return nil, fmt.Errorf("sensor answer: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSensorAnswerSize)
	}
	if _, err := parseObjectDepth("sensor answer", data, maxSensorAnswerDepth); err != nil {
		return nil, err
	}
	var a SensorAnswer
	if err := strictUnmarshal(data, &a); err != nil {
		return nil, invalidf("sensor answer: %v", err)
	}
	if a.Type != MsgSensorAnswer {
		return nil, invalidf("sensor answer: type %q, want %q", truncate(a.Type), MsgSensorAnswer)
	}
	if len(a.Readings) > MaxSensorReadings || len(a.Streams) > MaxSensorStreams {
		return nil, invalidf("sensor answer: %d readings and %d streams, the limits are %d and %d", len(a.Readings), len(a.Streams), MaxSensorReadings, MaxSensorStreams)
	}
	for i, r := range a.Readings {
		if r == nil {
			return nil, invalidf("sensor answer.readings[%d]: null", i)
		}
	}
	for _, s := range a.Streams {
		if err := ValidateStreamName(s.Name); err != nil {
			return nil, fmt.Errorf("sensor answer.streams: %w", err)
		}
		if err := ValidateUnit(s.Unit); err != nil {
			return nil, fmt.Errorf("sensor answer.streams: %w", err)
		}
		if s.TTLMs < 0 {
			return nil, invalidf("sensor answer.streams: ttlMs must not be negative")
		}
	}
	if a.Error != "" && (len(a.Readings) > 0 || len(a.Streams) > 0) {
		return nil, invalidf("sensor answer: an error answer carries no readings")
	}
	return &a, nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown fields
// and trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}
