package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// decoders lists every decoder with its cap, for the table tests and fuzzers.
var decoders = []struct {
	name   string
	max    int
	decode func([]byte) error
}{
	{"DecodeLesson", MaxRecordSize, func(b []byte) error { _, err := DecodeLesson(b); return err }},
	{"DecodeSignedLesson", MaxSignedLessonSize, func(b []byte) error { _, err := DecodeSignedLesson(b); return err }},
	{"DecodeRevocation", MaxRevocationSize, func(b []byte) error { _, err := DecodeRevocation(b); return err }},
	{"DecodeIdentity", MaxIdentitySize, func(b []byte) error { _, err := DecodeIdentity(b); return err }},
	{"json.Unmarshal(Lesson)", MaxRecordSize, func(b []byte) error { var v Lesson; return json.Unmarshal(b, &v) }},
	{"json.Unmarshal(SignedLesson)", MaxSignedLessonSize, func(b []byte) error { var v SignedLesson; return json.Unmarshal(b, &v) }},
	{"json.Unmarshal(Revocation)", MaxRevocationSize, func(b []byte) error { var v Revocation; return json.Unmarshal(b, &v) }},
	{"json.Unmarshal(Identity)", MaxIdentitySize, func(b []byte) error { var v Identity; return json.Unmarshal(b, &v) }},
}

// padTo returns a JSON object of exactly n bytes.
func padTo(n int) []byte {
	const head, tail = `{"type":"lesson","pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestDecodersSizeCap(t *testing.T) {
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			wantErr(t, d.decode(padTo(d.max+1)), ErrTooLarge, "the limit is")
			if c := CodeOf(d.decode(padTo(d.max + 1))); c != CodeTooLarge {
				t.Fatalf("CodeOf = %s", c)
			}
			// At the cap, the input is parsed (and here rejected for its content).
			if err := d.decode(padTo(d.max)); errors.Is(err, ErrTooLarge) {
				t.Fatalf("at the cap: %v", err)
			}
		})
	}
	// A lesson at its cap fits in a SignedLesson.
	l, err := DecodeLesson(padTo(MaxRecordSize))
	if err != nil {
		t.Fatal(err)
	}
	l.ID = "a"
	l.Extra["pad"] = json.RawMessage(`"` + strings.Repeat("x", MaxRecordSize-100) + `"`)
	s := mustSign(t, testKey(1), l)
	if _, err := DecodeSignedLesson(mustEncode(t, s)); err != nil {
		t.Fatalf("a lesson near its cap does not fit a SignedLesson: %v", err)
	}
}

func TestDecodersRejectGarbage(t *testing.T) {
	inputs := []struct{ name, in, msg string }{
		{"empty", ``, "not I-JSON"},
		{"whitespace", "  \n", "not I-JSON"},
		{"truncated", `{"type":`, "not I-JSON"},
		{"array", `[]`, "must be a JSON object"},
		{"string", `"x"`, "must be a JSON object"},
		{"number", `1`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"two values", `{} {}`, "not I-JSON"},
		{"bad utf-8", "{\"a\":\"\xff\"}", "UTF-8"},
		{"lone surrogate", `{"a":"\udc00"}`, "surrogate"},
		{"duplicate keys", `{"a":1,"a":1}`, "Duplicate key"},
		{"deep nesting", strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000), "levels deep"},
		{"NaN", `{"a":NaN}`, "not I-JSON"},
		{"leading zero", `{"a":01}`, "not I-JSON"},
	}
	for _, d := range decoders {
		for _, in := range inputs {
			t.Run(d.name+"/"+in.name, func(t *testing.T) {
				err := d.decode([]byte(in.in))
				if strings.HasPrefix(d.name, "json.Unmarshal") {
					// encoding/json checks syntax itself before calling
					// UnmarshalJSON; only require a rejection.
					if err == nil {
						t.Fatal("accepted")
					}
					return
				}
				if len(in.in) > d.max {
					wantErr(t, err, ErrTooLarge, "")
					return
				}
				wantErr(t, err, ErrInvalid, in.msg)
			})
		}
	}
}

func TestDecodeSignedLessonRejects(t *testing.T) {
	s := mustSign(t, testKey(1), testLesson())
	g := string(mustEncode(t, s))
	sigAt := strings.Index(g, `"signature":`)
	tests := []struct{ name, in, msg string }{
		{"mis-cased member", replaceOnce(t, g, `"lesson":`, `"Lesson":`), `unknown field "Lesson"`},
		{"member twice in two cases", replaceOnce(t, g, `"lesson":`, `"LESSON":{},"lesson":`), `unknown field "LESSON"`},
		{"unknown member", replaceOnce(t, g, `"lesson":`, `"x":1,"lesson":`), `unknown field "x"`},
		{"missing signature", g[:sigAt-1] + `}`, "signed lesson.signature is missing"},
		{"signature null", g[:sigAt] + `"signature":null}`, "signature: must be a JSON object"},
		{"lesson null", replaceOnce(t, g, `"lesson":{`, `"lesson":null,"l":{`), "unknown field"},
		{"mis-cased signature field", replaceOnce(t, g, `"nodeId":`, `"NodeID":`), `signature: unknown field "NodeID"`},
		{"signature field twice", replaceOnce(t, g, `"nodeId":`, `"NODEID":"x","nodeId":`), `signature: unknown field "NODEID"`},
		{"missing timestamp", replaceOnce(t, g, `"timestamp":1767225600000,`, ``), "signature.timestamp is missing"},
		{"timestamp null", replaceOnce(t, g, `"timestamp":1767225600000`, `"timestamp":null`), "signature.timestamp: want a number"},
		{"timestamp beyond 2^53", replaceOnce(t, g, `"timestamp":1767225600000`, `"timestamp":9007199254740993`), "2^53"},
		{"timestamp fraction", replaceOnce(t, g, `"timestamp":1767225600000`, `"timestamp":1767225600000.5`), "signature.timestamp"},
		{"sig not a string", replaceOnce(t, g, `"sig":"`+s.Signature.Sig+`"`, `"sig":1`), "signature.sig: want a string"},
		{"publication mis-cased", replaceOnce(t, g, `"publishedAt"`, `"PublishedAt"`), `publication: unknown field "PublishedAt"`},
		{"publication visibility missing", replaceOnce(t, g, `,"visibility":"public"}`, `}`), "publication.visibility is missing"},
		{"publication topics null", replaceOnce(t, g, `"topics":["rust"]`, `"topics":null`), "publication.topics: want an array of strings"},
		{"publication topic null", replaceOnce(t, g, `"topics":["rust"]`, `"topics":[null]`), "publication.topics: want an array of strings"},
		{"publishedAt string", replaceOnce(t, g, `"publishedAt":1767225600000`, `"publishedAt":"1"`), "publication.publishedAt"},
		{"lesson title ill-typed", replaceOnce(t, g, `"title":"Borrow checker: clone is not a fix"`, `"title":["x"]`), "record field title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeSignedLesson([]byte(tt.in))
			if d != nil {
				t.Fatalf("accepted %s", tt.in)
			}
			wantErr(t, err, ErrInvalid, tt.msg)
			if !strings.HasPrefix(err.Error(), "signed lesson: ") && !strings.HasPrefix(err.Error(), "invalid: signed lesson") {
				t.Fatalf("error %q does not say what was being decoded", err)
			}
		})
	}
}

// TestDecodeIsExact: a decoded record re-encodes to the same canonical form.
func TestDecodeIsExact(t *testing.T) {
	s := mustSign(t, testKey(1), testLesson())
	b := mustEncode(t, s)
	d, err := DecodeSignedLesson(b)
	if err != nil {
		t.Fatal(err)
	}
	b2 := mustEncode(t, d)
	if !bytes.Equal(mustCanonical(t, b), mustCanonical(t, b2)) {
		t.Fatalf("\n%s\n%s", b, b2)
	}
}

// TestReencodingDoesNotGrow: a lesson at its cap must still fit after we
// re-encode it. encoding/json writes U+2028 as the 6-byte \u2028, which
// tripled such a lesson on the way out.
func TestReencodingDoesNotGrow(t *testing.T) {
	content := strings.Repeat("\u2028", (MaxRecordSize-100)/3)
	in := []byte(`{"id":"a","type":"lesson","content":"` + content + `"}`)
	l, err := DecodeLesson(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > len(in) {
		t.Fatalf("re-encoding grew the lesson from %d to %d bytes", len(in), len(out))
	}
	s := mustSign(t, testKey(1), l)
	if _, err := DecodeSignedLesson(mustEncode(t, s)); err != nil {
		t.Fatalf("signed lesson does not decode: %v", err)
	}
}

// FuzzDecodeEnvelope: DecodeEnvelope never panics; what it accepts is one
// JSON object of valid UTF-8 with distinct member names, whose members but
// the later ones are I-JSON within MaxDepth, as encoding/json finds them.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"operation":"store","record":{"type":"lesson"}}`, `{"record":{},"record":{}}`, "{\"a\":\"\xff\"}",
		`{"record":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `[]`, `null`, `{"a":1} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeEnvelope(data, "record")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatal("accepted invalid UTF-8")
		}
		var want map[string]json.RawMessage
		if json.Unmarshal(data, &want) != nil && m["record"] == nil {
			t.Fatalf("accepted what encoding/json refuses: %q", data)
		}
		for name, v := range m {
			if name == "record" {
				continue
			}
			if err := checkIJSON(v); err != nil {
				t.Fatalf("member %q not I-JSON: %v", name, err)
			}
		}
	})
}
