package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	key := testKey(1)
	tests := []struct {
		name   string
		lesson *Lesson
		pub    Publication
	}{
		{"minimal", &Lesson{ID: "a", Type: TypeLesson}, Publication{Visibility: VisibilityPublic}},
		{"full", testLesson(), testPublication()},
		{"unlisted without topics", &Lesson{ID: "b", Type: TypeSnippet, FilePath: "main.go", StartLine: 3, EndLine: 9, Language: "go"}, Publication{Visibility: VisibilityUnlisted, PublishedAt: 1}},
		{"empty topics", &Lesson{ID: "c", Type: "reading", Extra: map[string]json.RawMessage{"humidity": json.RawMessage(`61`)}}, Publication{Visibility: VisibilityPublic, Topics: []string{}}},
		{"checkpoint", &Lesson{ID: "d", Type: TypeCheckpoint, WorkingOn: "x", State: json.RawMessage(`{"decisions":["a"],"blockers":[]}`)}, Publication{Visibility: VisibilityPublic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Sign(key, tt.lesson, tt.pub, testNow)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := Verify(s, VerifyOptions{Now: testNow}); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if s.Signature.NodeID != testNodeID(t, key) || s.Signature.Timestamp != testNow.UnixMilli() {
				t.Fatalf("signature block %+v", s.Signature)
			}
			if got, want := s.Key(), tt.lesson.ID+"@"+testNodeID(t, key); got != want {
				t.Fatalf("Key() = %s, want %s", got, want)
			}
			// Over the wire and back.
			b := mustEncode(t, s)
			d, err := DecodeSignedLesson(b)
			if err != nil {
				t.Fatalf("DecodeSignedLesson(%s): %v", b, err)
			}
			if err := Verify(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatalf("Verify after decode: %v", err)
			}
			if b2 := mustEncode(t, d); !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
			}
			// Through encoding/json as part of a larger message.
			var msg struct{ Lessons []SignedLesson }
			if err := json.Unmarshal([]byte(`{"Lessons":[`+string(b)+`]}`), &msg); err != nil {
				t.Fatalf("json.Unmarshal: %v", err)
			}
			if err := Verify(&msg.Lessons[0], VerifyOptions{Now: testNow}); err != nil {
				t.Fatalf("Verify after json.Unmarshal: %v", err)
			}
		})
	}
}

func TestSignDoesNotAliasOrMutate(t *testing.T) {
	key := testKey(1)
	l := testLesson()
	l.Visibility = VisibilityPublic
	pub := testPublication()
	s := mustSign(t, key, l)
	if l.Visibility != VisibilityPublic {
		t.Fatal("Sign changed the caller's lesson")
	}
	if s.Lesson.Visibility != "" {
		t.Fatal("Sign kept the lesson's visibility")
	}
	s2, err := Sign(key, l, pub, testNow)
	if err != nil {
		t.Fatal(err)
	}
	l.Tags[0] = "changed"
	l.Extra["humidity"][0] = '9'
	pub.Topics[0] = "changed"
	if err := Verify(s2, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("mutating the inputs after Sign broke the signed lesson: %v", err)
	}
}

func TestSignRejects(t *testing.T) {
	key := testKey(1)
	bad := append(ed25519.PrivateKey(nil), key...)
	bad[40] ^= 1 // public half no longer matches the seed
	tests := []struct {
		name   string
		key    ed25519.PrivateKey
		lesson *Lesson
		pub    Publication
		now    time.Time
		msg    string
	}{
		{"short key", key[:32], testLesson(), testPublication(), testNow, "private key"},
		{"mismatched key", bad, testLesson(), testPublication(), testNow, "public half"},
		{"nil lesson", key, nil, testPublication(), testNow, "nil lesson"},
		{"no id", key, &Lesson{Type: TypeLesson}, testPublication(), testNow, "no id"},
		{"no type", key, &Lesson{ID: "a"}, testPublication(), testNow, "type is required"},
		{"private", key, testLesson(), Publication{Visibility: VisibilityPrivate}, testNow, "want public or unlisted"},
		{"no visibility", key, testLesson(), Publication{}, testNow, "want public or unlisted"},
		{"bad topic", key, testLesson(), Publication{Visibility: VisibilityPublic, Topics: []string{"a b"}}, testNow, "topic"},
		{"bad extra", key, &Lesson{ID: "a", Type: "x", Extra: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}, testPublication(), testNow, "not valid JSON"},
		{"before 1970", key, testLesson(), testPublication(), time.UnixMilli(-5), "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Sign(tt.key, tt.lesson, tt.pub, tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Sign error = %v, want one mentioning %q", err, tt.msg)
			}
			if c := CodeOf(err); c != CodeInvalidRequest {
				t.Fatalf("CodeOf = %s", c)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	key := testKey(1)
	other := testKey(2)
	tests := []struct {
		name   string
		tamper func(s *SignedLesson)
	}{
		{"content", func(s *SignedLesson) { s.Lesson.Content += "!" }},
		{"title", func(s *SignedLesson) { s.Lesson.Title = "other" }},
		{"id", func(s *SignedLesson) { s.Lesson.ID = "other" }},
		{"tags", func(s *SignedLesson) { s.Lesson.Tags = s.Lesson.Tags[:1] }},
		{"created_at", func(s *SignedLesson) { s.Lesson.CreatedAt++ }},
		{"visibility added to lesson", func(s *SignedLesson) { s.Lesson.Visibility = VisibilityPrivate }},
		{"extra changed", func(s *SignedLesson) { s.Lesson.Extra["humidity"] = json.RawMessage(`61.6`) }},
		{"extra removed", func(s *SignedLesson) { delete(s.Lesson.Extra, "nested") }},
		{"extra added", func(s *SignedLesson) { s.Lesson.Extra["new"] = json.RawMessage(`true`) }},
		{"publication visibility", func(s *SignedLesson) { s.Publication.Visibility = VisibilityUnlisted }},
		{"publishedAt", func(s *SignedLesson) { s.Publication.PublishedAt++ }},
		{"topics", func(s *SignedLesson) { s.Publication.Topics = []string{"go"} }},
		{"topics emptied", func(s *SignedLesson) { s.Publication.Topics = []string{} }},
		{"topics dropped", func(s *SignedLesson) { s.Publication.Topics = nil }},
		{"timestamp", func(s *SignedLesson) { s.Signature.Timestamp++ }},
		{"sig bit flip", func(s *SignedLesson) {
			b, _ := base64.StdEncoding.DecodeString(s.Signature.Sig)
			b[10] ^= 1
			s.Signature.Sig = base64.StdEncoding.EncodeToString(b)
		}},
		{"sig truncated", func(s *SignedLesson) { s.Signature.Sig = s.Signature.Sig[:40] }},
		{"sig not base64", func(s *SignedLesson) { s.Signature.Sig = "!!" }},
		{"sig unpadded", func(s *SignedLesson) { s.Signature.Sig = strings.TrimRight(s.Signature.Sig, "=") }},
		{"sig empty", func(s *SignedLesson) { s.Signature.Sig = "" }},
		{"algorithm", func(s *SignedLesson) { s.Signature.Algorithm = "Ed25519" }},
		{"publicKey garbage", func(s *SignedLesson) { s.Signature.PublicKey = "AAAA" }},
		{"signed by another key, claimed by it", func(s *SignedLesson) {
			// Another key's identity, but the signature is still key's.
			s.Signature.PublicKey = base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
			s.Signature.NodeID = testNodeID(t, other)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSign(t, key, testLesson())
			tt.tamper(s)
			wantErr(t, Verify(s, VerifyOptions{Now: testNow}), ErrInvalidSignature, "")
			if c := CodeOf(Verify(s, VerifyOptions{Now: testNow})); c != CodeInvalidSignature {
				t.Fatalf("CodeOf = %s", c)
			}
		})
	}
}

// TestVerifyTamperedWire tampers with the encoded form, as an attacker on the
// wire would: the result still decodes but no longer verifies.
func TestVerifyTamperedWire(t *testing.T) {
	key := testKey(1)
	s := mustSign(t, key, testLesson())
	enc := string(mustEncode(t, s))
	tests := []struct{ name, old, new string }{
		{"content", `"content":"Prefer`, `"content":"Avoid`},
		{"extra number", `"humidity":61.5`, `"humidity":61.50001`},
		{"nested extra", `"z":null`, `"z":false`},
		{"extra added", `"humidity":61.5`, `"humidity":61.5,"x":1`},
		{"publication", `"visibility":"public"`, `"visibility":"unlisted"`},
		{"timestamp", `"timestamp":` + strconv.FormatInt(testNow.UnixMilli(), 10), `"timestamp":` + strconv.FormatInt(testNow.UnixMilli()-1, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeSignedLesson([]byte(replaceOnce(t, enc, tt.old, tt.new)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			wantErr(t, Verify(d, VerifyOptions{Now: testNow}), ErrInvalidSignature, "")
		})
	}
	// Changing only the spelling of a value, not the value, keeps the
	// signature: the signature covers the canonical form.
	respelled := replaceOnce(t, enc, `"humidity":61.5`, `"humidity":6.15e1`)
	respelled = replaceOnce(t, respelled, `"created_at":1767225500000`, `"created_at":1.7672255e12`)
	respelled = replaceOnce(t, respelled, `"title":"Borrow`, `"title":"\u0042orrow`)
	d, err := DecodeSignedLesson([]byte(" \n" + respelled + "\t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(d, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("re-spelled but equal values: %v", err)
	}
}

func TestVerifyKeyMismatch(t *testing.T) {
	key, other := testKey(1), testKey(2)
	tests := []struct {
		name   string
		tamper func(s *SignedLesson)
	}{
		{"nodeId of another key", func(s *SignedLesson) { s.Signature.NodeID = testNodeID(t, other) }},
		{"publicKey of another key", func(s *SignedLesson) {
			s.Signature.PublicKey = base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
		}},
		{"nodeId empty", func(s *SignedLesson) { s.Signature.NodeID = "" }},
		{"nodeId garbage", func(s *SignedLesson) { s.Signature.NodeID = "12D3KooWnotapeerid" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSign(t, key, testLesson())
			tt.tamper(s)
			wantErr(t, Verify(s, VerifyOptions{Now: testNow}), ErrKeyMismatch, "nodeId")
			if c := CodeOf(Verify(s, VerifyOptions{Now: testNow})); c != CodeInvalidSignature {
				t.Fatalf("CodeOf = %s", c)
			}
		})
	}
}

func TestVerifyTimestampWindow(t *testing.T) {
	key := testKey(1)
	const h = time.Hour
	tests := []struct {
		name     string
		signedAt time.Duration // relative to the verifier's clock
		opts     VerifyOptions
		ok       bool
		msg      string
	}{
		{"now", 0, VerifyOptions{}, true, ""},
		{"59m ago", -59 * time.Minute, VerifyOptions{}, true, ""},
		{"exactly 1h ago", -h, VerifyOptions{}, true, ""},
		{"59m ahead", 59 * time.Minute, VerifyOptions{}, true, ""},
		{"exactly 1h ahead", h, VerifyOptions{}, true, ""},
		{"future", h + time.Millisecond, VerifyOptions{}, false, "in the future"},
		{"stale", -h - time.Millisecond, VerifyOptions{}, false, "ago"},
		{"stale, AllowOld", -1000 * h, VerifyOptions{AllowOld: true}, true, ""},
		{"future, AllowOld", 2 * h, VerifyOptions{AllowOld: true}, false, "in the future"},
		{"custom window ok", -5 * h, VerifyOptions{Window: 6 * h}, true, ""},
		{"custom window stale", -7 * h, VerifyOptions{Window: 6 * h}, false, "ago"},
		{"negative window means default", -30 * time.Minute, VerifyOptions{Window: -1}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Sign(key, testLesson(), testPublication(), testNow.Add(tt.signedAt))
			if err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			opts.Now = testNow
			err = Verify(s, opts)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, ErrTimestamp, tt.msg)
		})
	}
	t.Run("zero Now is the wall clock", func(t *testing.T) {
		s, err := Sign(key, testLesson(), testPublication(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(s, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, Verify(mustSign(t, key, testLesson()), VerifyOptions{}), ErrTimestamp, "")
	})
	t.Run("timestamp beyond 2^53", func(t *testing.T) {
		// 2^53 and 2^53+1 canonicalize to the same bytes: refuse both ambiguity and value.
		s := mustSign(t, key, testLesson())
		s.Signature.Timestamp = maxSafeInt + 2
		wantErr(t, Verify(s, VerifyOptions{AllowOld: true, Now: testNow}), ErrTimestamp, "2^53")
		s.Signature.Timestamp = 0
		wantErr(t, Verify(s, VerifyOptions{AllowOld: true, Now: testNow}), ErrTimestamp, "")
	})
}

// TestVerifyValidatesAfterSignature: a well-signed but invalid record is
// still refused (a buggy or hostile signer).
func TestVerifyValidatesContent(t *testing.T) {
	key := testKey(1)
	l := &Lesson{ID: "a", Type: TypeLesson, Severity: "apocalyptic"}
	pub := testPublication()
	payload, err := SigningPayload(l, &pub, testNow.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	s := &SignedLesson{Lesson: *l, Publication: pub, Signature: Signature{
		Algorithm: AlgorithmEd25519,
		NodeID:    testNodeID(t, key),
		PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
		Timestamp: testNow.UnixMilli(),
		Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}}
	wantErr(t, Verify(s, VerifyOptions{Now: testNow}), ErrInvalid, "severity")
	wantErr(t, Verify(nil, VerifyOptions{}), ErrInvalid, "nil")
}

func TestSigningPayload(t *testing.T) {
	l := &Lesson{ID: "a", Type: "lesson", Extra: map[string]json.RawMessage{"n": json.RawMessage(`1E21`), "é": json.RawMessage(`"\u00e9"`)}}
	p := &Publication{Visibility: "public", PublishedAt: 5, Topics: []string{}}
	got, err := SigningPayload(l, p, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"lesson":{"id":"a","n":1e+21,"type":"lesson","é":"é"},"publication":{"publishedAt":5,"topics":[],"visibility":"public"},"timestamp":7}`
	if string(got) != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}
	if _, err := SigningPayload(nil, p, 7); err == nil {
		t.Fatal("nil lesson accepted")
	}
}

func TestEncodeNoHTMLEscape(t *testing.T) {
	b := mustEncode(t, mustSign(t, testKey(1), testLesson()))
	if !bytes.Contains(b, []byte("<&>")) || bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("Encode = %s", b)
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":[0.1, 1e21, 1E-7, -0, 100]}`, `{"a":[0.1,1e+21,1e-7,0,100],"b":1}`},
		{`{"\u00e9":"\u0041\n","a":"😀"}`, `{"a":"😀","é":"A\n"}`},
		{`{"€":1,"\r":2,"ö":3,"1":4}`, `{"\r":2,"1":4,"ö":3,"€":1}`},
	}
	for _, tt := range tests {
		got, err := Canonical([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `"\ud800"`, `[1,]`, `{"a":1} x`, "\"\xff\"", `1e400`} {
		if _, err := Canonical([]byte(bad)); err == nil {
			t.Errorf("Canonical(%q) accepted", bad)
		}
	}
}
