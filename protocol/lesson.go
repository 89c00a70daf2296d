package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Lesson is one AMP memory record: a lesson, checkpoint, snippet, or any other
// type (a sensor "reading", say). The typed fields are the ones AMP and MESH
// define; every other field is kept in Extra and re-encoded unchanged, so a
// record written by another implementation survives decode and encode with its
// signature intact.
//
// An empty typed field is not encoded. A known field that arrives empty
// ("", 0, [], or null; an empty value of another type, such as "title": 0, is
// refused) is kept in Extra so that re-encoding reproduces it. Extra holds a
// known field's name only in that form: Validate refuses anything else there.
type Lesson struct {
	ID        string   `json:"id,omitempty"`
	Type      string   `json:"type,omitempty"`
	Title     string   `json:"title,omitempty"`
	Content   string   `json:"content,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Severity  string   `json:"severity,omitempty"` // info, warning or critical
	CreatedAt int64    `json:"created_at,omitempty"`
	UpdatedAt int64    `json:"updated_at,omitempty"`
	Agent     string   `json:"agent,omitempty"`
	Project   string   `json:"project,omitempty"`

	// Checkpoint fields.
	WorkingOn string          `json:"working_on,omitempty"`
	State     json.RawMessage `json:"state,omitempty"` // see CheckpointState
	SessionID string          `json:"session_id,omitempty"`

	// Snippet fields.
	FilePath  string `json:"file_path,omitempty"`
	Language  string `json:"language,omitempty"`
	StartLine int64  `json:"start_line,omitempty"`
	EndLine   int64  `json:"end_line,omitempty"`
	Repo      string `json:"repo,omitempty"`

	// MESH fields. Visibility "" means private. ExpiresAt (Unix ms, 0 = never)
	// makes the record vanish from every read once passed.
	Visibility string `json:"visibility,omitempty"`
	ExpiresAt  int64  `json:"expires_at,omitempty"`

	// Extra holds every other field, as raw JSON.
	Extra map[string]json.RawMessage `json:"-"`
}

// CheckpointState is the structured form of a checkpoint's state field.
type CheckpointState struct {
	Decisions []string `json:"decisions,omitempty"`
	Blockers  []string `json:"blockers,omitempty"`
	Artifacts []string `json:"artifacts,omitempty"`
	Flags     []string `json:"flags,omitempty"`
}

// CheckpointState parses l.State. A record without state gives a zero value.
func (l *Lesson) CheckpointState() (CheckpointState, error) {
	var s CheckpointState
	if len(l.State) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(l.State, &s); err != nil {
		return s, invalidf("record field state: %v", err)
	}
	return s, nil
}

// Number returns the numeric value of a field of the record, typed or extra,
// for comparisons such as "humidity > 60".
func (l *Lesson) Number(field string) (float64, bool) {
	switch field {
	case "created_at":
		return float64(l.CreatedAt), l.CreatedAt != 0
	case "updated_at":
		return float64(l.UpdatedAt), l.UpdatedAt != 0
	case "start_line":
		return float64(l.StartLine), l.StartLine != 0
	case "end_line":
		return float64(l.EndLine), l.EndLine != 0
	case "expires_at":
		return float64(l.ExpiresAt), l.ExpiresAt != 0
	}
	raw, ok := l.Extra[field]
	if !ok || len(raw) == 0 {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, false
	}
	return f, true
}

// Clone returns a deep copy of l.
// AppendSearchText appends to dst the text the lesson is searched by: its
// title, a newline, its content, then a newline and a tag for each tag.
// A store indexes it as one field, and a federated-search requester
// scores it (SearchResult.AppendSearchText reads it without decoding).
func (l *Lesson) AppendSearchText(dst []byte) []byte {
	dst = append(dst, l.Title...)
	dst = append(dst, '\n')
	dst = append(dst, l.Content...)
	for _, t := range l.Tags {
		dst = append(dst, '\n')
		dst = append(dst, t...)
	}
	return dst
}

func (l *Lesson) Clone() *Lesson {
	c := *l
	c.Tags = append([]string(nil), l.Tags...)
	if l.Tags == nil {
		c.Tags = nil
	}
	c.State = append(json.RawMessage(nil), l.State...)
	if l.State == nil {
		c.State = nil
	}
	if l.Extra != nil {
		c.Extra = make(map[string]json.RawMessage, len(l.Extra))
		for k, v := range l.Extra {
			c.Extra[k] = append(json.RawMessage(nil), v...)
		}
	}
	return &c
}

type fieldKind int

const (
	kindString fieldKind = iota
	kindInt
	kindStrings
	kindRaw
)

type knownField struct {
	kind fieldKind
	str  func(*Lesson) *string
	num  func(*Lesson) *int64
}

var knownFields = map[string]knownField{
	"id":         {kind: kindString, str: func(l *Lesson) *string { return &l.ID }},
	"type":       {kind: kindString, str: func(l *Lesson) *string { return &l.Type }},
	"title":      {kind: kindString, str: func(l *Lesson) *string { return &l.Title }},
	"content":    {kind: kindString, str: func(l *Lesson) *string { return &l.Content }},
	"tags":       {kind: kindStrings},
	"severity":   {kind: kindString, str: func(l *Lesson) *string { return &l.Severity }},
	"created_at": {kind: kindInt, num: func(l *Lesson) *int64 { return &l.CreatedAt }},
	"updated_at": {kind: kindInt, num: func(l *Lesson) *int64 { return &l.UpdatedAt }},
	"agent":      {kind: kindString, str: func(l *Lesson) *string { return &l.Agent }},
	"project":    {kind: kindString, str: func(l *Lesson) *string { return &l.Project }},
	"working_on": {kind: kindString, str: func(l *Lesson) *string { return &l.WorkingOn }},
	"state":      {kind: kindRaw},
	"session_id": {kind: kindString, str: func(l *Lesson) *string { return &l.SessionID }},
	"file_path":  {kind: kindString, str: func(l *Lesson) *string { return &l.FilePath }},
	"language":   {kind: kindString, str: func(l *Lesson) *string { return &l.Language }},
	"start_line": {kind: kindInt, num: func(l *Lesson) *int64 { return &l.StartLine }},
	"end_line":   {kind: kindInt, num: func(l *Lesson) *int64 { return &l.EndLine }},
	"repo":       {kind: kindString, str: func(l *Lesson) *string { return &l.Repo }},
	"visibility": {kind: kindString, str: func(l *Lesson) *string { return &l.Visibility }},
	"expires_at": {kind: kindInt, num: func(l *Lesson) *int64 { return &l.ExpiresAt }},
}

// maxSafeInt is the largest integer every JSON implementation holds exactly
// (I-JSON, RFC 7493).
const maxSafeInt = 1<<53 - 1

// UnmarshalJSON decodes a record. It rejects input over MaxRecordSize or
// nested deeper than MaxRecordDepth, input that is not I-JSON (invalid UTF-8, duplicate keys), a non-object, and known
// fields of the wrong type.
func (l *Lesson) UnmarshalJSON(data []byte) error {
	if len(data) > MaxRecordSize {
		return fmt.Errorf("record: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxRecordSize)
	}
	if err := checkRecordDepth(data); err != nil {
		return err
	}
	ms, isObject, err := parseIJSONObject(data)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return l.decodeMembers(ms, isObject)
}

// checkRecordDepth refuses a record nested deeper than MaxRecordDepth.
func checkRecordDepth(data []byte) error {
	if d := jsonDepth(data); d > MaxRecordDepth {
		return invalidf("record: nested %d levels deep, the limit is %d", d, MaxRecordDepth)
	}
	return nil
}

// unmarshalChecked is UnmarshalJSON for data already checked as I-JSON as
// part of a larger document (the lesson member of a SignedLesson): it does
// not check it again. Never call it on anything else.
func (l *Lesson) unmarshalChecked(data []byte) error {
	if len(data) > MaxRecordSize {
		return fmt.Errorf("record: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxRecordSize)
	}
	if err := checkRecordDepth(data); err != nil {
		return err
	}
	ms, isObject, err := splitIJSONObject(data)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return l.decodeMembers(ms, isObject)
}

// decodeMembers decodes the members of a record, checked I-JSON.
func (l *Lesson) decodeMembers(ms []member, isObject bool) error {
	if !isObject {
		return invalidf("record: must be a JSON object")
	}
	var out Lesson
	for _, m := range ms {
		name, raw := m.name, json.RawMessage(m.value)
		kf, known := knownFields[name]
		empty := isEmptyJSON(raw)
		if known && empty {
			// A known field that arrives empty is kept verbatim, so that
			// re-encoding reproduces it; but only an empty value of the
			// field's own type (or null): "title": 0 is ill-typed.
			if !emptyOfKind(kf.kind, raw) {
				return invalidf("record field %s: %s", name, kf.kind.want())
			}
		}
		if !known || empty {
			if out.Extra == nil {
				out.Extra = make(map[string]json.RawMessage)
			}
			out.Extra[name] = append(json.RawMessage(nil), raw...)
			continue
		}
		switch kf.kind {
		case kindString:
			s, err := jsonString(raw)
			if err != nil {
				return invalidf("record field %s: want a string", name)
			}
			*kf.str(&out) = s
		case kindInt:
			n, err := parseSafeInt(raw)
			if err != nil {
				return invalidf("record field %s: %v", name, err)
			}
			*kf.num(&out) = n
		case kindStrings:
			ss, err := jsonStrings(raw)
			if err != nil {
				return invalidf("record field %s: want an array of strings", name)
			}
			out.Tags = ss
		case kindRaw:
			out.State = append(json.RawMessage(nil), raw...)
		}
	}
	*l = out
	return nil
}

func (k fieldKind) want() string {
	switch k {
	case kindString:
		return "want a string"
	case kindInt:
		return "want an integer"
	case kindStrings:
		return "want an array of strings"
	}
	return "want a JSON value"
}

// emptyOfKind reports whether raw, an empty JSON value (see isEmptyJSON), is
// null or the empty value of kind k.
func emptyOfKind(k fieldKind, raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == 'n' || k == kindRaw:
		return true
	case k == kindString:
		return c == '"'
	case k == kindInt:
		return c == '-' || (c >= '0' && c <= '9')
	case k == kindStrings:
		return c == '['
	}
	return false
}

// isEmptyJSON reports whether raw is a value the typed field would not
// re-encode: null, "", 0, [] or {}.
func isEmptyJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	switch string(t) {
	case "null", `""`, "[]", "{}", "0", "-0":
		return true
	}
	if len(t) == 0 {
		return false
	}
	switch c := t[0]; {
	case c == '"' || c == 't' || c == 'f' || c == 'n':
		return false
	case c == '-' || (c >= '0' && c <= '9'):
		if isDigits(t) {
			// A plain integer other than 0 and -0 is not zero, or not
			// JSON (01).
			return false
		}
		f, err := strconv.ParseFloat(string(t), 64)
		return err == nil && f == 0 && json.Valid(t)
	case (c == '[' || c == '{') && len(t) > 1:
		return len(bytes.TrimSpace(t[1:len(t)-1])) == 0
	}
	return false
}

// isDigits reports whether t is an optional '-' and one or more digits.
func isDigits(t []byte) bool {
	if len(t) > 0 && t[0] == '-' {
		t = t[1:]
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(t) > 0
}

func parseSafeInt(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, fmt.Errorf("want a number")
	}
	if digits := bytes.TrimPrefix(raw, []byte("-")); isDigits(raw) && len(digits) <= 15 && (digits[0] != '0' || len(digits) == 1) {
		// A plain integer of at most 15 digits: exact, and within 2^53.
		var n int64
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if raw[0] == '-' {
			n = -n
		}
		return n, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("want a number")
	}
	if f != math.Trunc(f) || math.Abs(f) > maxSafeInt {
		return 0, fmt.Errorf("want an integer of at most 2^53-1")
	}
	return int64(f), nil
}

// MarshalJSON encodes the record: typed fields that are set, plus Extra.
// A typed field that is set wins over an Extra entry of the same name.
// Members are in byte order of their names; Extra values are compacted.
func (l Lesson) MarshalJSON() ([]byte, error) {
	type entry struct {
		name string
		kf   knownField
		typ  bool
		raw  json.RawMessage
	}
	var buf [32]entry
	entries := buf[:0]
	size := 2
	for _, name := range lessonFieldOrder {
		if kf := knownFields[name]; lessonFieldSet(&l, kf) {
			entries = append(entries, entry{name: name, kf: kf, typ: true})
		}
	}
	sorted := true
	for k, v := range l.Extra {
		if kf, known := knownFields[k]; known && lessonFieldSet(&l, kf) {
			continue
		}
		entries = append(entries, entry{name: k, raw: v})
		size += len(k) + len(v) + 4
		sorted = false
	}
	if !sorted {
		slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	}
	size += signingPayloadSizeHint(&l, &Publication{})
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteByte('{')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(appendJSONString(b.AvailableBuffer(), e.name))
		b.WriteByte(':')
		switch {
		case e.typ && e.kf.kind == kindString:
			b.Write(appendJSONString(b.AvailableBuffer(), *e.kf.str(&l)))
		case e.typ && e.kf.kind == kindInt:
			b.Write(strconv.AppendInt(b.AvailableBuffer(), *e.kf.num(&l), 10))
		case e.typ && e.kf.kind == kindStrings:
			b.Write(appendJSONStrings(b.AvailableBuffer(), l.Tags))
		default:
			v := e.raw
			if e.typ {
				v = l.State
			}
			if err := json.Compact(b, v); err != nil {
				return nil, invalidf("record field %s: not valid JSON", e.name)
			}
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalString encodes s as a JSON string the way RFC 8785 does: only '"',
// '\\' and control characters are escaped. encoding/json also escapes
// <, >, & and U+2028/U+2029, which can make a record six times longer on the
// way out than on the way in, and push it over its size cap.
func marshalString(s string) []byte { return appendJSONString(nil, s) }

func marshalStrings(ss []string) []byte { return appendJSONStrings(nil, ss) }

// DecodeLesson decodes and validates one AMP record.
func DecodeLesson(data []byte) (*Lesson, error) {
	var l Lesson
	if err := l.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Validate checks the record's fields against MESH's rules: a type, an ID
// (when set) of safe characters, bounded tags, a known visibility and severity,
// and sane numbers. It does not require an ID: the store assigns one.
func (l *Lesson) Validate() error {
	if l.Type == "" {
		return invalidf("record: type is required (lesson, checkpoint, snippet, ...)")
	}
	if len(l.Type) > MaxTypeLength || !safeName(l.Type) {
		return invalidf("record: type %q: use at most %d letters, digits, '_', '-' or '.'", truncate(l.Type), MaxTypeLength)
	}
	if l.ID != "" {
		if err := ValidateID(l.ID); err != nil {
			return err
		}
	}
	if len(l.Tags) > MaxTags {
		return invalidf("record: %d tags, the limit is %d", len(l.Tags), MaxTags)
	}
	for _, t := range l.Tags {
		if t == "" || len(t) > MaxTagLength {
			return invalidf("record: tag %q: tags are 1 to %d bytes", truncate(t), MaxTagLength)
		}
	}
	switch l.Severity {
	case "", "info", "warning", "critical":
	default:
		return invalidf("record: severity %q: want info, warning or critical", truncate(l.Severity))
	}
	if !ValidVisibility(l.Visibility) {
		return invalidf("record: visibility %q: want private, unlisted or public", truncate(l.Visibility))
	}
	if l.Type == TypeCheckpoint {
		if _, err := l.CheckpointState(); err != nil {
			return err
		}
	}
	for name, v := range map[string]int64{"created_at": l.CreatedAt, "updated_at": l.UpdatedAt, "expires_at": l.ExpiresAt} {
		if v < 0 || v > maxSafeInt {
			return invalidf("record: %s %d: want Unix milliseconds", name, v)
		}
	}
	for name, v := range map[string]int64{"start_line": l.StartLine, "end_line": l.EndLine} {
		if v < -maxSafeInt || v > maxSafeInt {
			return invalidf("record: %s %d: want an integer of at most 2^53-1", name, v)
		}
	}
	for name, kf := range knownFields {
		if kf.kind == kindString && !utf8.ValidString(*kf.str(l)) {
			return invalidf("record field %s: not valid UTF-8", name)
		}
	}
	for _, t := range l.Tags {
		if !utf8.ValidString(t) {
			return invalidf("record field tags: not valid UTF-8")
		}
	}
	for name, raw := range l.Extra {
		// Decoding puts a known field in Extra only when it arrives empty;
		// anything else there would encode to a record that decodes
		// differently (or not at all).
		if kf, known := knownFields[name]; known && !(isEmptyJSON(raw) && emptyOfKind(kf.kind, raw)) {
			return invalidf("record field %s: set the typed field, Extra may hold it only as null or an empty %s", name, strings.TrimPrefix(kf.kind.want(), "want "))
		}
		if name == "" || len(name) > MaxTagLength || !utf8.ValidString(name) {
			return invalidf("record: field name %q is empty or too long", truncate(name))
		}
	}
	return nil
}

// ValidateID checks a record ID: 1 to MaxIDLength letters, digits, '_', '-' or '.'.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLength || !safeName(id) || strings.HasPrefix(id, ".") {
		return invalidf("record id %q: use 1 to %d letters, digits, '_', '-' or '.', not starting with '.'", truncate(id), MaxIDLength)
	}
	return nil
}

func safeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
