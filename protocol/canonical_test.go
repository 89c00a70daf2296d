package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceMarshalLesson is Lesson.MarshalJSON as it was written first: a
// map of every member, sorted, each value checked and compacted. The
// rewritten MarshalJSON must produce the same bytes.
func referenceMarshalLesson(l Lesson) ([]byte, error) {
	fields := make(map[string]json.RawMessage, len(l.Extra)+8)
	for k, v := range l.Extra {
		fields[k] = v
	}
	for name, kf := range knownFields {
		var raw []byte
		switch kf.kind {
		case kindString:
			if s := *kf.str(&l); s != "" {
				raw = referenceMarshalString(s)
			}
		case kindInt:
			if n := *kf.num(&l); n != 0 {
				raw = []byte(fmt.Sprint(n))
			}
		case kindStrings:
			if len(l.Tags) > 0 {
				var b bytes.Buffer
				b.WriteByte('[')
				for i, s := range l.Tags {
					if i > 0 {
						b.WriteByte(',')
					}
					b.Write(referenceMarshalString(s))
				}
				b.WriteByte(']')
				raw = b.Bytes()
			}
		case kindRaw:
			if len(l.State) > 0 {
				raw = l.State
			}
		}
		if raw != nil {
			fields[name] = raw
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(referenceMarshalString(k))
		b.WriteByte(':')
		v := fields[k]
		if !json.Valid(v) {
			return nil, invalidf("record field %s: not valid JSON", k)
		}
		if err := json.Compact(&b, v); err != nil {
			return nil, invalidf("record field %s: %v", k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func referenceMarshalString(s string) []byte {
	const hex = "0123456789abcdef"
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// referenceSigningPayload is SigningPayload as it was written first:
// re-encode, then canonicalize with jcs. The one-pass SigningPayload must
// produce the same bytes, and fail where it fails.
func referenceSigningPayload(l *Lesson, p *Publication, timestamp int64) ([]byte, error) {
	lb, err := referenceMarshalLesson(*l)
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"lesson":`)
	b.Write(lb)
	b.WriteString(`,"publication":`)
	b.Write(pb)
	fmt.Fprintf(&b, `,"timestamp":%d}`, timestamp)
	return Canonical(b.Bytes())
}

// checkAgainstReference compares MarshalJSON and SigningPayload of l with
// their reference implementations.
func checkAgainstReference(t *testing.T, l *Lesson, p *Publication, ts int64) {
	t.Helper()
	want, wantErr := referenceMarshalLesson(*l)
	got, gotErr := l.MarshalJSON()
	if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON = %s, %v\nreference    %s, %v", got, gotErr, want, wantErr)
	}
	want, wantErr = referenceSigningPayload(l, p, ts)
	got, gotErr = SigningPayload(l, p, ts)
	if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("SigningPayload = %s, %v\nreference      %s, %v", got, gotErr, want, wantErr)
	}
	if gotErr != nil && !errors.Is(gotErr, ErrInvalid) {
		t.Fatalf("SigningPayload error matches no sentinel: %v", gotErr)
	}
}

// FuzzSigningPayloadMatchesReference holds the one-pass SigningPayload and
// the rewritten MarshalJSON to the code they replace, on decoded records
// with an arbitrary extra member (any bytes, JSON or not, under any name,
// a known one included), an arbitrary title, number and timestamp.
func FuzzSigningPayloadMatchesReference(f *testing.F) {
	lessons, _, _, _ := fuzzSeeds(f)
	for _, b := range lessons {
		f.Add(b, "x", []byte(`1e21`), "t", int64(5), int64(1767225600000))
	}
	f.Add([]byte(`{"type":"x","a\u00e9":1,"\ud83e\udd80":2,"\uff61":3,"b":{"z":1,"\ud83e\udd80":[0.1,-0,1E400]}}`), "\xff", []byte(` "\u00e9" `), "\x00\"\\\u2028", int64(-1<<53-1), int64(1<<62))
	f.Add([]byte(`{"type":"x","\ufffd":1}`), "\xfe", []byte(`2`), "\xffa", int64(1<<53+1), int64(0))
	f.Add([]byte(`{"type":"x"}`), "title", []byte(`{`), "", int64(0), int64(-1))
	f.Add([]byte(`{"type":"x"}`), "state", []byte(`{"b":1,"a":[1e-7,1e21,123456789012345678]}`), "", int64(0), int64(1))
	f.Add([]byte(`{"type":"x"}`), "n", []byte(strings.Repeat("[", 9999)+strings.Repeat("]", 9999)), "", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, name string, value []byte, title string, n, ts int64) {
		var l Lesson
		if l.UnmarshalJSON(data) != nil {
			l = Lesson{Type: "x"}
		}
		if l.Extra == nil {
			l.Extra = map[string]json.RawMessage{}
		}
		l.Extra[name] = value
		if title != "" {
			l.Title = title
		}
		l.StartLine = n
		p := Publication{Visibility: title, PublishedAt: n ^ ts, Topics: l.Tags}
		checkAgainstReference(t, &l, &p, ts)
	})
}

func TestSigningPayloadMatchesReference(t *testing.T) {
	l := testLesson()
	p := testPublication()
	checkAgainstReference(t, l, &p, testNow.UnixMilli())
	l.State = json.RawMessage(` { "b" : [ 1 , 2.50 ] , "a" : "\u00e9" } `)
	l.Extra["\xff"] = json.RawMessage(`1`)
	l.Extra["\xfe"] = json.RawMessage(`2`)
	checkAgainstReference(t, l, &p, testNow.UnixMilli()) // duplicate key once repaired: both fail
	delete(l.Extra, "\xfe")
	l.Extra["title"] = json.RawMessage(`{`) // the typed field wins: never read
	l.Extra["project"] = json.RawMessage(`""`)
	l.Project = ""
	checkAgainstReference(t, l, &p, 1<<60)
}

func TestCompareUTF16(t *testing.T) {
	names := []string{"", "a", "ab", "b", "\u00e9", "\u2028", "\ud7ff", "\ue000", "\uff61", "\U0001F980", "\U0001F981", "\U00010000", "a\U0001F980", "a\uff61", "\ufb01"}
	for _, a := range names {
		for _, b := range names {
			want := compareUTF16Slow(a, b)
			if got := compareUTF16(a, b); sign(got) != sign(want) {
				t.Errorf("compareUTF16(%q, %q) = %d, want sign %d", a, b, got, want)
			}
		}
	}
}

func compareUTF16Slow(a, b string) int {
	enc := func(s string) []uint16 {
		var out []uint16
		for _, r := range s {
			if r >= 0x10000 {
				r -= 0x10000
				out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			} else {
				out = append(out, uint16(r))
			}
		}
		return out
	}
	ea, eb := enc(a), enc(b)
	for i := 0; i < len(ea) && i < len(eb); i++ {
		if ea[i] != eb[i] {
			return int(ea[i]) - int(eb[i])
		}
	}
	return len(ea) - len(eb)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
