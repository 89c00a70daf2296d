package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// Fuzzers of the encrypted-lesson and key records, held to the same rules as
// those in fuzz_test.go: no panic, errors that match a sentinel, what decodes
// canonicalizes like the raw bytes, and what verifies here verifies over the
// raw bytes and after a round trip.

func fuzzEncryptedSeeds(f testing.TB) (encrypted [][]byte) {
	key := testKey(1)
	for i, l := range []*Lesson{
		testLesson(),
		{ID: "a", Type: TypeLesson},
		{ID: "e1", Type: "reading", Extra: map[string]json.RawMessage{"n": json.RawMessage(`1e21`), "u": json.RawMessage(`"\u00e9\ud83e\udd80"`)}},
	} {
		el, err := EncryptLesson(testLessonKey(7), l, EncryptParams{NodeID: testNodeID(f, key), KeyID: "k" + strconv.Itoa(i)})
		if err != nil {
			f.Fatal(err)
		}
		pub := testPublication()
		if i == 1 {
			pub.Topics = []string{}
		}
		s, err := SignEncrypted(key, el, pub, testNow)
		if err != nil {
			f.Fatal(err)
		}
		b, err := s.Encode()
		if err != nil {
			f.Fatal(err)
		}
		encrypted = append(encrypted, b)
	}
	return encrypted
}

func FuzzDecodeEncryptedLesson(f *testing.F) {
	for _, b := range fuzzEncryptedSeeds(f) {
		f.Add(b)
	}
	lk := testLessonKey(7)
	resigner := testKey(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEncryptedLesson(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded encrypted lesson does not encode: %v", err)
		}
		sameCanonical(t, data, enc)
		e2, err := DecodeEncryptedLesson(enc)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, enc)
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		if err := VerifyEncrypted(e, opts); err == nil {
			if err := VerifyEncrypted(e2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			if !rawVerifyEncrypted(t, data) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		} else if CodeOf(err) == CodeInternal {
			t.Fatalf("VerifyEncrypted error maps to INTERNAL: %v", err)
		}
		// Decryption never panics; what opens is the lesson named.
		l, err := DecryptLesson(e, lk)
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("DecryptLesson error maps to INTERNAL: %v", err)
			}
		} else if l.ID != e.LessonID {
			t.Fatalf("decrypted lesson %q under %q", l.ID, e.LessonID)
		}
		// Whatever is well formed signs, and the result verifies.
		if e.validateContent() == nil && e.Publication.Validate() == nil {
			c := *e
			c.Signature = Signature{}
			s, err := SignEncrypted(resigner, &c, c.Publication, testNow)
			if err != nil {
				t.Fatalf("a well-formed encrypted lesson does not sign: %v", err)
			}
			enc, _ := s.Encode()
			d, err := DecodeEncryptedLesson(enc)
			if err != nil || VerifyEncrypted(d, VerifyOptions{Now: testNow}) != nil || !rawVerifyEncrypted(t, enc) {
				t.Fatalf("re-signed copy does not verify: %v\n%s", err, enc)
			}
		}
	})
}

func FuzzDecodeKeyPolicy(f *testing.F) {
	for _, access := range []string{AccessPublic, AccessTrusted, AccessExplicit} {
		b, _ := json.Marshal(testPolicy(f, access))
		f.Add(b)
	}
	p, err := SignKeyPolicy(testKey(1), KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessTrusted, MinTrustScore: 0.125}, testNow)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := json.Marshal(p)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeKeyPolicy(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		p2, err := DecodeKeyPolicy(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		opts := VerifyOptions{Now: testNow}
		if err := VerifyKeyPolicy(p, opts); err == nil {
			if err := VerifyKeyPolicy(p2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			m := rawMembers(t, data)
			delete(m, "signature")
			if !rawVerify(t, m, p.Signature.PublicKey, p.Signature.Sig) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		} else if CodeOf(err) == CodeInternal {
			t.Fatalf("VerifyKeyPolicy error maps to INTERNAL: %v", err)
		}
		_ = p.Admits(testNodeID(t, testKey(2)), 0.5, testNow)
	})
}

func FuzzDecodeKeyRequest(f *testing.F) {
	f.Add([]byte(`{"type":"keyRequest","keyId":"k1"}`))
	f.Add([]byte(`{"keyId":"kAAAAAAAAAAAAAAAAAAAAAA","type":"keyRequest"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeKeyRequest(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, _ := r.Encode()
		sameCanonical(t, data, out)
		if r2, err := DecodeKeyRequest(out); err != nil || *r2 != *r {
			t.Fatalf("round trip: %+v, %v", r2, err)
		}
	})
}

func FuzzDecodeKeyResponse(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	rev, _ := SignRevocation(testKey(1), "a", ReasonPrivate, testNow)
	shares, _ := SplitKey(testLessonKey(9), 2, 2)
	sealed, _ := SealKey(testKey(2).Public().(ed25519.PublicKey), testLessonKey(9), KeySealInfo("k1", testNodeID(f, testKey(2))))
	for _, r := range []*KeyResponse{
		{Type: MsgKeyResponse, KeyID: "k1", Key: b64(testLessonKey(9)), ExpiresAt: 1767229200000},
		{Type: MsgKeyResponse, KeyID: "k1", SealedKey: b64(sealed), ExpiresAt: 1767229200000},
		{Type: MsgKeyResponse, KeyID: "k1", Share: b64(shares[0]), ExpiresAt: 1767229200000},
		KeyRevokedResponse("k1", testNow.UnixMilli(), rev),
		KeyErrorResponse("k1", ErrAccessDenied),
	} {
		b, _ := r.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeKeyResponse(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		r2, err := DecodeKeyResponse(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		if out2, _ := r2.Encode(); !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
		if err := r.Err(); err != nil && CodeOf(err) == CodeInternal && r.Error != CodeInternal && sentinel(r.Error) != nil {
			t.Fatalf("Err maps %s to INTERNAL: %v", r.Error, err)
		}
		if k, err := r.RawKey(); err == nil && len(k) != LessonKeySize {
			t.Fatalf("RawKey of %d bytes", len(k))
		}
	})
}

func FuzzParseKeyRequestHeaders(f *testing.F) {
	r, _ := SignKeyRequest(testKey(2), "k1", testNow)
	f.Add(r.KeyID, r.NodeID, r.PublicKey, strconv.FormatInt(r.Timestamp, 10), r.Sig)
	f.Add("k2", r.NodeID, r.PublicKey, "-1", r.Sig)
	f.Fuzz(func(t *testing.T, keyID, nodeID, publicKey, timestamp, sig string) {
		h := map[string]string{HeaderNodeID: nodeID, HeaderPublicKey: publicKey, HeaderTimestamp: timestamp, HeaderSignature: sig}
		p, err := ParseKeyRequestHeaders(keyID, func(k string) string { return h[k] })
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("parse error maps to INTERNAL: %v", err)
			}
			return
		}
		for k, v := range p.KeyRequestHeaders() {
			if h[k] != v {
				t.Fatalf("header %s: %q re-encodes as %q", k, h[k], v)
			}
		}
		if err := VerifyKeyRequest(p, VerifyOptions{Now: testNow, Window: time.Hour}); err != nil && CodeOf(err) == CodeInternal {
			t.Fatalf("verify error maps to INTERNAL: %v", err)
		}
	})
}

func FuzzCombineShares(f *testing.F) {
	shares, _ := SplitKey(testLessonKey(9), 3, 2)
	f.Add(shares[0], shares[1], shares[2])
	f.Add(shares[0], shares[0], shares[2])
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		key, err := CombineShares([][]byte{a, b, c})
		if err != nil {
			if CodeOf(err) != CodeInvalidRequest {
				t.Fatalf("combine error maps to %s: %v", CodeOf(err), err)
			}
			return
		}
		if len(key) != LessonKeySize {
			t.Fatalf("a %d-byte key", len(key))
		}
		// What combines splits again, and combines to the same key.
		again, err := SplitKey(key, 3, 3)
		if err != nil {
			t.Fatal(err)
		}
		if k2, err := CombineShares(again); err != nil || !bytes.Equal(k2, key) {
			t.Fatalf("round trip: %x, %v", k2, err)
		}
	})
}
