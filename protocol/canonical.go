package protocol

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// This file writes the RFC 8785 canonical form of a SignedLesson's signing
// payload straight from the decoded values, in one pass.
//
// It produces, byte for byte, what SigningPayload used to: the jcs canonical
// form of {"lesson": l.MarshalJSON(), "publication": p.MarshalJSON(),
// "timestamp": t}, errors included (FuzzSigningPayloadMatchesReference holds
// it to that reference). Nothing is cached: every call works from the values
// as they are, so a caller that changes a decoded SignedLesson before
// Verify gets the payload of what it changed it to.
//
// Typed fields are canonical as encoded: strings are escaped the way RFC 8785
// escapes them (marshalString), integers of at most 2^53 in magnitude are
// their decimal digits. Only the raw JSON a record carries (state and Extra)
// is canonicalized, and only when it is not already canonical.

// appendJSONString appends s as RFC 8785 writes a string: only '"', '\\'
// and control characters are escaped. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does (Validate refuses such a record).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendCanonicalInt appends the RFC 8785 form of n: the number n's decimal
// form denotes, as an IEEE 754 double, in ECMAScript notation.
func appendCanonicalInt(b []byte, n int64) []byte {
	if n >= -(1<<53) && n <= 1<<53 {
		return strconv.AppendInt(b, n, 10)
	}
	s, _ := jcs.NumberToJSON(float64(n)) // finite: never fails
	return append(b, s...)
}

// canonicalEntry is one member of a record being written canonically.
type canonicalEntry struct {
	name string // as encoded: valid UTF-8
	kf   knownField
	raw  json.RawMessage // state, or an Extra value
	typ  bool            // a typed field, written from the Lesson
}

// appendCanonicalLesson appends the canonical form of l.MarshalJSON().
func appendCanonicalLesson(b []byte, l *Lesson) ([]byte, error) {
	var buf [32]canonicalEntry
	entries := buf[:0]
	for _, name := range lessonFieldOrder {
		kf := knownFields[name]
		if lessonFieldSet(l, kf) {
			entries = append(entries, canonicalEntry{name: name, kf: kf, typ: true, raw: l.State})
		}
	}
	sorted := true
	for k, v := range l.Extra {
		if kf, known := knownFields[k]; known && lessonFieldSet(l, kf) {
			continue // the typed field wins
		}
		if !utf8.ValidString(k) {
			k = strings.ToValidUTF8(k, "\uFFFD")
		}
		entries = append(entries, canonicalEntry{name: k, raw: v})
		sorted = false
	}
	if !sorted {
		slices.SortFunc(entries, func(a, b canonicalEntry) int { return compareUTF16(a.name, b.name) })
		for i := 1; i < len(entries); i++ {
			if entries[i-1].name == entries[i].name {
				// Two Extra names that differ only in invalid UTF-8.
				return nil, invalidf("canonical JSON: Duplicate key: %q", truncate(entries[i].name))
			}
		}
	}
	b = append(b, '{')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.name)
		b = append(b, ':')
		if e.typ && e.kf.kind != kindRaw {
			switch e.kf.kind {
			case kindString:
				b = appendJSONString(b, *e.kf.str(l))
			case kindInt:
				b = appendCanonicalInt(b, *e.kf.num(l))
			case kindStrings:
				b = appendJSONStrings(b, l.Tags)
			}
			continue
		}
		var err error
		if b, err = appendCanonicalRaw(b, e.name, e.raw); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// lessonFieldOrder is the known field names in RFC 8785 order (they are
// ASCII, so byte order is UTF-16 order).
var lessonFieldOrder = func() []string {
	names := make([]string, 0, len(knownFields))
	for name := range knownFields {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// lessonFieldSet reports whether l's typed field kf is set: whether
// MarshalJSON writes it (rather than an Extra entry of its name).
func lessonFieldSet(l *Lesson, kf knownField) bool {
	switch kf.kind {
	case kindString:
		return *kf.str(l) != ""
	case kindInt:
		return *kf.num(l) != 0
	case kindStrings:
		return len(l.Tags) > 0
	}
	return len(l.State) > 0
}

// appendCanonicalRaw appends the canonical form of raw, the value of member
// name of a record (which sits two levels deep in the signing payload).
func appendCanonicalRaw(b []byte, name string, raw json.RawMessage) ([]byte, error) {
	if err := checkIJSONDepth(raw, 2); err != nil {
		if !json.Valid(raw) {
			return nil, invalidf("record field %s: not valid JSON", name)
		}
		return nil, invalidf("canonical JSON: %v", err)
	}
	t := bytes.Trim(raw, " \t\r\n")
	switch t[0] {
	case '"':
		return appendJSONString(b, jsonStringValue(t)), nil
	case 't', 'f', 'n':
		return append(b, t...), nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if d := bytes.TrimPrefix(t, []byte("-")); isDigits(t) && len(d) <= 15 && string(t) != "-0" {
			return append(b, t...), nil // an integer that is its own canonical form
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, invalidf("canonical JSON: %v", err) // checked above: unreachable
		}
		s, err := jcs.NumberToJSON(f)
		if err != nil {
			return nil, invalidf("canonical JSON: %v", err)
		}
		return append(b, s...), nil
	}
	c, err := jcs.Transform(t)
	if err != nil {
		return nil, invalidf("canonical JSON: %v", err) // checked above: unreachable
	}
	return append(b, c...), nil
}

// compareUTF16 orders two valid UTF-8 strings by their UTF-16 code units, as
// RFC 8785 sorts member names.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	// The strings share a[:i]; the runes that differ start at the same
	// place in both.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	ka, kb := utf16Lead(ra), utf16Lead(rb)
	if ka != kb {
		return int(ka) - int(kb)
	}
	return int(ra) - int(rb)
}

// utf16Lead is the first UTF-16 code unit of r.
func utf16Lead(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

// appendCanonicalPublication appends the canonical form of p.MarshalJSON().
func appendCanonicalPublication(b []byte, p *Publication) []byte {
	b = append(b, '{')
	if p.ExpiresAt != 0 {
		b = append(b, `"expiresAt":`...)
		b = appendCanonicalInt(b, p.ExpiresAt)
		b = append(b, ',')
	}
	b = append(b, `"publishedAt":`...)
	b = appendCanonicalInt(b, p.PublishedAt)
	if p.Topics != nil {
		b = append(b, `,"topics":`...)
		b = appendJSONStrings(b, p.Topics)
	}
	b = append(b, `,"visibility":`...)
	b = appendJSONString(b, p.Visibility)
	return append(b, '}')
}
