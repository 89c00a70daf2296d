package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

// The fuzzers check more than "no panic": whatever a decoder accepts must
// canonicalize the same way after our decode/encode as the raw bytes do
// (what an independent verifier canonicalizes), and a signature that
// verifies here must verify over the raw bytes too, and after a round trip.

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("decode error matches no sentinel: %v", err)
	}
	if CodeOf(err) == CodeInternal {
		t.Fatalf("decode error maps to INTERNAL: %v", err)
	}
}

// sameCanonical fails unless a and b have the same RFC 8785 form.
func sameCanonical(t *testing.T, a, b []byte) {
	t.Helper()
	ca, err := Canonical(a)
	if err != nil {
		t.Fatalf("accepted input does not canonicalize: %v", err)
	}
	cb, err := Canonical(b)
	if err != nil {
		t.Fatalf("our encoding does not canonicalize: %v\n%s", err, b)
	}
	if !bytes.Equal(ca, cb) {
		t.Fatalf("canonical forms differ:\n in %s\nout %s", ca, cb)
	}
}

// rawMembers splits a JSON object into its raw members.
func rawMembers(t *testing.T, data []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("accepted input is not an object: %v", err)
	}
	return m
}

// rawVerify checks an Ed25519 signature over the canonical JSON of
// members, the way an implementation without our types would.
func rawVerify(t *testing.T, members map[string]json.RawMessage, publicKey, sig string) bool {
	t.Helper()
	b, err := json.Marshal(members)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Canonical(b)
	if err != nil {
		t.Fatal(err)
	}
	pk, err1 := base64.StdEncoding.DecodeString(publicKey)
	s, err2 := base64.StdEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(pk) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pk), payload, s)
}

func fuzzSeeds(f *testing.F) (lessons, signed, revocations, identities [][]byte) {
	key := testKey(1)
	for _, l := range []*Lesson{
		testLesson(),
		{ID: "a", Type: TypeLesson},
		{ID: "s1", Type: TypeSnippet, FilePath: "a.go", StartLine: 1, EndLine: -2, Language: "go", Repo: "r"},
		{ID: "c1", Type: TypeCheckpoint, State: json.RawMessage(`{"decisions":["x"],"flags":[]}`), SessionID: "s", WorkingOn: "w", UpdatedAt: 5, ExpiresAt: 9},
		{ID: "e1", Type: "reading", Extra: map[string]json.RawMessage{"title": json.RawMessage(`""`), "tags": json.RawMessage(`[]`), "n": json.RawMessage(`1e21`), "m": json.RawMessage(`0.1`), "u": json.RawMessage(`"\u00e9\ud83e\udd80"`)}},
	} {
		b, err := json.Marshal(l)
		if err != nil {
			f.Fatal(err)
		}
		lessons = append(lessons, b)
		s, err := Sign(key, l, testPublication(), testNow)
		if err != nil {
			f.Fatal(err)
		}
		sb, err := s.Encode()
		if err != nil {
			f.Fatal(err)
		}
		signed = append(signed, sb)
	}
	lessons = append(lessons, []byte(`{"type":"x","created_at":1.0,"start_line":-0,"tags":null,"k":{"a":[1,{"b":null}]}}`))
	for _, reason := range []string{"", ReasonPrivate} {
		r, err := SignRevocation(key, "a", reason, testNow)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(r)
		revocations = append(revocations, b)
	}
	for _, addrs := range [][]string{nil, {"/ip4/1.2.3.4/tcp/5", "/dns4/x/tcp/443/wss"}} {
		d, err := SignIdentity(key, addrs, []string{CapabilitySearch}, testNow)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(d)
		identities = append(identities, b)
	}
	return
}

func FuzzDecodeLesson(f *testing.F) {
	lessons, _, _, _ := fuzzSeeds(f)
	for _, b := range lessons {
		f.Add(b)
	}
	key := testKey(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLesson(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(l)
		if err != nil {
			t.Fatalf("decoded lesson does not encode: %v", err)
		}
		sameCanonical(t, data, out)
		l2, err := DecodeLesson(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(l2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
		// Whatever decodes can be signed, and the result verifies here,
		// over the raw bytes, and after a round trip.
		if l.ID == "" {
			l.ID = "fuzz"
		}
		s, err := Sign(key, l, testPublication(), testNow)
		if err != nil {
			t.Fatalf("a decoded lesson does not sign: %v", err)
		}
		checkSignedRoundTrip(t, s)
	})
}

func checkSignedRoundTrip(t *testing.T, s *SignedLesson) {
	t.Helper()
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeSignedLesson(enc)
	if err != nil {
		t.Fatalf("signed lesson does not decode: %v\n%s", err, enc)
	}
	if err := Verify(d, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("signed lesson does not verify after a round trip: %v\n%s", err, enc)
	}
	if !rawVerifySigned(t, enc) {
		t.Fatalf("signature does not verify over the raw bytes:\n%s", enc)
	}
}

func rawVerifySigned(t *testing.T, data []byte) bool {
	m := rawMembers(t, data)
	sig := rawMembers(t, m["signature"])
	var pk, s string
	_ = json.Unmarshal(sig["publicKey"], &pk)
	_ = json.Unmarshal(sig["sig"], &s)
	return rawVerify(t, map[string]json.RawMessage{"lesson": m["lesson"], "publication": m["publication"], "timestamp": sig["timestamp"]}, pk, s)
}

func FuzzDecodeSignedLesson(f *testing.F) {
	_, signed, _, _ := fuzzSeeds(f)
	for _, b := range signed {
		f.Add(b)
	}
	key := testKey(3)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSignedLesson(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("decoded signed lesson does not encode: %v", err)
		}
		sameCanonical(t, data, enc)
		s2, err := DecodeSignedLesson(enc)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, enc)
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		if err := Verify(s, opts); err == nil {
			if err := Verify(s2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			if !rawVerifySigned(t, data) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		} else if CodeOf(err) == CodeInternal {
			t.Fatalf("Verify error maps to INTERNAL: %v", err)
		}
		// Re-sign what decoded, if it is signable.
		if s.Lesson.Validate() == nil && s.Lesson.ID != "" && s.Publication.Validate() == nil {
			r, err := Sign(key, &s.Lesson, s.Publication, testNow)
			if err != nil {
				t.Fatalf("valid lesson does not sign: %v", err)
			}
			checkSignedRoundTrip(t, r)
		}
	})
}

func FuzzDecodeRevocation(f *testing.F) {
	_, _, revocations, _ := fuzzSeeds(f)
	for _, b := range revocations {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRevocation(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		r2, err := DecodeRevocation(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		if *r2 != *r {
			t.Fatalf("round trip changed the record: %+v vs %+v", r, r2)
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		if err := VerifyRevocation(r, opts); err == nil {
			if err := VerifyRevocation(r2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			m := rawMembers(t, data)
			delete(m, "signature")
			if !rawVerify(t, m, r.Signature.PublicKey, r.Signature.Sig) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		}
	})
}

func FuzzDecodeIdentity(f *testing.F) {
	_, _, _, identities := fuzzSeeds(f)
	for _, b := range identities {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeIdentity(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		d2, err := DecodeIdentity(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		opts := VerifyOptions{Now: testNow}
		if err := VerifyIdentity(d, opts); err == nil {
			if err := VerifyIdentity(d2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			m := rawMembers(t, data)
			delete(m, "signature")
			if !rawVerify(t, m, d.PublicKey, d.Signature) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		}
	})
}
