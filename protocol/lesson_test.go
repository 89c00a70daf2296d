package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLessonUnknownFieldsPreserved: fields this code does not know survive
// decode and encode exactly and are covered by the signature.
func TestLessonUnknownFieldsPreserved(t *testing.T) {
	in := `{"id":"r1","type":"reading","humidity":61.5,"big":1E21,"tiny":0.1,"neg":-0.0,` +
		`"sensor":{"room":"cuisine \u00e9","calib":[1,2.50,{"k":null}]},"ok":true,"note":"\u2028 🦀 <&>",` +
		`"created_at":1767225500000}`
	l, err := DecodeLesson([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != "r1" || l.Type != "reading" || l.CreatedAt != 1767225500000 {
		t.Fatalf("typed fields: %+v", l)
	}
	if len(l.Extra) != 7 {
		t.Fatalf("Extra = %v", l.Extra)
	}
	if f, ok := l.Number("humidity"); !ok || f != 61.5 {
		t.Fatalf("Number(humidity) = %v %v", f, ok)
	}
	out, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if c1, c2 := mustCanonical(t, []byte(in)), mustCanonical(t, out); !bytes.Equal(c1, c2) {
		t.Fatalf("canonical forms differ:\n in %s\nout %s", c1, c2)
	}

	key := testKey(1)
	s := mustSign(t, key, l)
	enc := string(mustEncode(t, s))
	for _, tt := range []struct{ name, old, new string }{
		{"number", `"humidity":61.5`, `"humidity":61.4`},
		{"nested", `"room":"cuisine \u00e9"`, `"room":"salon"`},
		{"type of value", `"ok":true`, `"ok":"true"`},
		{"removed", `"ok":true,`, ``},
		{"renamed", `"ok":true`, `"Ok":true`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeSignedLesson([]byte(replaceOnce(t, enc, tt.old, tt.new)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			wantErr(t, Verify(d, VerifyOptions{Now: testNow}), ErrInvalidSignature, "")
		})
	}
}

// TestLessonEmptyKnownFields: a known field arriving empty ("", 0, [],
// null) is not the same document as the field absent, so it must round-trip
// exactly and stay covered by the signature.
func TestLessonEmptyKnownFields(t *testing.T) {
	empties := map[fieldKind][]string{
		kindString:  {`""`, `null`},
		kindInt:     {`0`, `-0`, `0.0`, `0e5`, `null`},
		kindStrings: {`[]`, `[ ]`, `null`},
		kindRaw:     {`{}`, `[]`, `null`, `""`, `0`},
	}
	key := testKey(1)
	for name, kf := range knownFields {
		for _, v := range empties[kf.kind] {
			t.Run(name+"="+v, func(t *testing.T) {
				var in string
				switch name {
				case "id":
					in = `{"type":"lesson","id":` + v + `}`
				case "type":
					in = `{"id":"a","type":` + v + `}`
				default:
					in = `{"id":"a","type":"lesson",` + `"` + name + `":` + v + `}`
				}
				var l Lesson
				if err := json.Unmarshal([]byte(in), &l); err != nil {
					t.Fatalf("decode %s: %v", in, err)
				}
				out, err := json.Marshal(l)
				if err != nil {
					t.Fatal(err)
				}
				if c1, c2 := mustCanonical(t, []byte(in)), mustCanonical(t, out); !bytes.Equal(c1, c2) {
					t.Fatalf("canonical forms differ:\n in %s\nout %s", c1, c2)
				}
				if name == "id" || name == "type" || name == "visibility" {
					return // not signable, or dropped by Sign
				}
				s := mustSign(t, key, &l)
				enc := string(mustEncode(t, s))
				if !strings.Contains(enc, `"`+name+`":`) {
					t.Fatalf("%s lost in %s", name, enc)
				}
				// Dropping the empty field breaks the signature.
				field := `"` + name + `":` + compact(t, v)
				stripped := strings.Replace(enc, field+`,`, ``, 1)
				if stripped == enc {
					stripped = replaceOnce(t, enc, `,`+field, ``)
				}
				d, err := DecodeSignedLesson([]byte(stripped))
				if err != nil {
					t.Fatal(err)
				}
				wantErr(t, Verify(d, VerifyOptions{Now: testNow}), ErrInvalidSignature, "")
			})
		}
	}
}

func compact(t *testing.T, v string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(v)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDecodeLessonRejects(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"not an object", `[1]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"empty input", ``, "not I-JSON"},
		{"trailing data", `{"type":"lesson"} {}`, "not I-JSON"},
		{"duplicate key", `{"type":"lesson","type":"lesson"}`, "Duplicate key"},
		{"duplicate key via escape", `{"type":"lesson","\u0074ype":"x"}`, "Duplicate key"},
		{"invalid utf-8", "{\"type\":\"lesson\",\"x\":\"\xff\"}", "UTF-8"},
		{"lone surrogate", `{"type":"lesson","x":"\ud800"}`, "surrogate"},
		{"number out of range", `{"type":"lesson","x":1e400}`, "out of range"},
		{"no type", `{"id":"a"}`, "type is required"},
		{"bad type", `{"type":"a b"}`, "type"},
		{"title not a string", `{"type":"lesson","title":5}`, "record field title: want a string"},
		{"title empty of the wrong type", `{"type":"lesson","title":0}`, "record field title: want a string"},
		{"tags empty object", `{"type":"lesson","tags":{}}`, "record field tags: want an array of strings"},
		{"tags not an array", `{"type":"lesson","tags":"a"}`, "record field tags"},
		{"tag null", `{"type":"lesson","tags":["a",null]}`, "record field tags"},
		{"tag number", `{"type":"lesson","tags":["a",1]}`, "record field tags"},
		{"created_at fraction", `{"type":"lesson","created_at":1.5}`, "created_at"},
		{"created_at string", `{"type":"lesson","created_at":"1"}`, "created_at"},
		{"created_at string zero", `{"type":"lesson","created_at":""}`, "created_at"},
		{"created_at beyond 2^53", `{"type":"lesson","created_at":9007199254740993}`, "2^53"},
		{"created_at negative", `{"type":"lesson","created_at":-1}`, "created_at"},
		{"bad id", `{"type":"lesson","id":"a/b"}`, "record id"},
		{"dot id", `{"type":"lesson","id":".a"}`, "record id"},
		{"severity", `{"type":"lesson","severity":"meh"}`, "severity"},
		{"visibility", `{"type":"lesson","visibility":"secret"}`, "visibility"},
		{"checkpoint state", `{"type":"checkpoint","state":{"decisions":"x"}}`, "state"},
		{"empty field name", `{"type":"lesson","":1}`, "field name"},
		{"long field name", `{"type":"lesson","` + strings.Repeat("k", 129) + `":1}`, "field name"},
		{"too many tags", `{"type":"lesson","tags":[` + strings.Repeat(`"t",`, MaxTags) + `"t"]}`, "tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := DecodeLesson([]byte(tt.in))
			if l != nil {
				t.Fatalf("accepted: %+v", l)
			}
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
}

func TestLessonHelpers(t *testing.T) {
	l, err := DecodeLesson([]byte(`{"type":"checkpoint","state":{"decisions":["a"],"flags":["f"]},"start_line":7,"t":"x","n":"3"}`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.CheckpointState()
	if err != nil || len(st.Decisions) != 1 || st.Flags[0] != "f" {
		t.Fatalf("CheckpointState = %+v, %v", st, err)
	}
	if f, ok := l.Number("start_line"); !ok || f != 7 {
		t.Fatalf("Number(start_line) = %v %v", f, ok)
	}
	for _, name := range []string{"t", "n", "missing", "created_at"} {
		if _, ok := l.Number(name); ok {
			t.Fatalf("Number(%s) ok", name)
		}
	}
	c := l.Clone()
	c.State[2] = 'X'
	c.Extra["t"][1] = 'y'
	if bytes.Equal(c.State, l.State) || bytes.Equal(c.Extra["t"], l.Extra["t"]) {
		t.Fatal("Clone shares memory")
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "A-b_c.d", strings.Repeat("x", MaxIDLength)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".a", "a b", "a@b", "é", strings.Repeat("x", MaxIDLength+1)} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
}

func TestLessonInvalidUTF8(t *testing.T) {
	for _, l := range []*Lesson{
		{ID: "a", Type: "lesson", Content: "a\xffb"},
		{ID: "a", Type: "lesson", Tags: []string{"\xc3"}},
	} {
		wantErr(t, l.Validate(), ErrInvalid, "UTF-8")
		if _, err := Sign(testKey(1), l, testPublication(), testNow); err == nil {
			t.Fatal("signed a lesson with invalid UTF-8")
		}
		b, err := json.Marshal(l)
		if err != nil || !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("MarshalJSON = %q, %v", b, err)
		}
	}
}

func TestLessonExtraShadowingKnownField(t *testing.T) {
	for _, v := range []string{`5`, `"x"`, `["a"]`, `{}`} {
		l := &Lesson{ID: "a", Type: "lesson", Extra: map[string]json.RawMessage{"title": json.RawMessage(v)}}
		wantErr(t, l.Validate(), ErrInvalid, "record field title")
	}
	l := &Lesson{ID: "a", Type: "lesson", Extra: map[string]json.RawMessage{"title": json.RawMessage(`""`), "tags": json.RawMessage(`null`)}}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
}
