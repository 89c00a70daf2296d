package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testLessonKey(b byte) []byte { return bytes.Repeat([]byte{b}, LessonKeySize) }

// mustEncrypt encrypts and signs testLesson with key (a node key) under
// lessonKey.
func mustEncrypt(t testing.TB, key ed25519.PrivateKey, l *Lesson, lessonKey []byte, keyID string) *EncryptedLesson {
	t.Helper()
	el, err := EncryptLesson(lessonKey, l, EncryptParams{NodeID: testNodeID(t, key), KeyID: keyID})
	if err != nil {
		t.Fatalf("EncryptLesson: %v", err)
	}
	s, err := SignEncrypted(key, el, testPublication(), testNow)
	if err != nil {
		t.Fatalf("SignEncrypted: %v", err)
	}
	return s
}

func mustEncodeEncrypted(t testing.TB, e *EncryptedLesson) []byte {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncryptedRoundTrip(t *testing.T) {
	key := testKey(1)
	lk := testLessonKey(7)
	l := testLesson()
	l.Visibility = VisibilityPublic
	el := mustEncrypt(t, key, l, lk, "k1")
	if el.Key() != "rust-borrow-01@"+testNodeID(t, key) {
		t.Fatalf("Key = %s", el.Key())
	}
	if el.Encryption.KeyEndpoint != "mesh://"+testNodeID(t, key)+"/keys/k1" {
		t.Fatalf("default keyEndpoint = %s", el.Encryption.KeyEndpoint)
	}
	enc := mustEncodeEncrypted(t, el)
	if bytes.Contains(enc, []byte("Borrow checker")) || bytes.Contains(enc, []byte("clone")) {
		t.Fatalf("plaintext in the encrypted lesson: %s", enc)
	}
	if !bytes.HasPrefix(enc, []byte(`{"lessonId":"rust-borrow-01","encryption":{"algorithm":"aes-256-gcm","keyId":"k1","keyEndpoint":"mesh://`)) {
		t.Fatalf("field order or names: %s", enc)
	}
	d, err := DecodeEncryptedLesson(enc)
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, enc)
	}
	if err := VerifyEncrypted(d, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	got, err := DecryptLesson(d, lk)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	want := l.Clone()
	want.Visibility = ""
	// The plaintext is canonical JSON: the same record, members sorted.
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(mustCanonical(t, gb), mustCanonical(t, wb)) {
		t.Fatalf("decrypted\n%s\nwant\n%s", gb, wb)
	}
	// Re-encoding is stable and the raw bytes verify without our types.
	if !bytes.Equal(mustEncodeEncrypted(t, d), enc) {
		t.Fatal("re-encoding differs")
	}
	if !rawVerifyEncrypted(t, enc) {
		t.Fatal("the signature does not verify over the raw bytes")
	}
	// Two encryptions of one lesson differ (fresh nonce).
	el2 := mustEncrypt(t, key, l, lk, "k1")
	if el2.Encryption.Nonce == el.Encryption.Nonce || el2.Ciphertext == el.Ciphertext {
		t.Fatal("nonce reused")
	}
}

func TestEncryptedPlaintextIsCanonical(t *testing.T) {
	lk := testLessonKey(7)
	el, err := encryptLesson(lk, testLesson(), EncryptParams{NodeID: testNodeID(t, testKey(1)), KeyID: "k1"}, make([]byte, NonceSize))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(el.Ciphertext)
	tag, _ := base64.StdEncoding.DecodeString(el.Encryption.Tag)
	gcm, _ := newGCM(lk)
	pt, err := gcm.Open(nil, make([]byte, NonceSize), append(ct, tag...), EncryptionAAD("k1", el.LessonID, el.Signature.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(testLesson())
	if want := mustCanonical(t, raw); !bytes.Equal(pt, want) {
		t.Fatalf("plaintext\n%s\nwant the RFC 8785 JSON of the record\n%s", pt, want)
	}
}

func TestEncryptionAAD(t *testing.T) {
	got := string(EncryptionAAD("k1", "rust-01", "12D3KooWx"))
	if got != `{"keyId":"k1","lessonId":"rust-01","nodeId":"12D3KooWx"}` {
		t.Fatalf("AAD = %s", got)
	}
}

// Tampering: every change to what the ciphertext is bound to is refused with
// ErrDecrypt, even when the attacker re-signs with its own key.
func TestDecryptTampered(t *testing.T) {
	key, other := testKey(1), testKey(2)
	lk := testLessonKey(7)
	el := mustEncrypt(t, key, testLesson(), lk, "k1")
	second := testLesson()
	second.ID = "second"
	el2 := mustEncrypt(t, key, second, lk, "k1")

	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)/2] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name   string
		change func(e *EncryptedLesson)
		key    []byte
	}{
		{"wrong key", func(e *EncryptedLesson) {}, testLessonKey(8)},
		{"flipped ciphertext", func(e *EncryptedLesson) { e.Ciphertext = flip(e.Ciphertext) }, lk},
		{"flipped nonce", func(e *EncryptedLesson) { e.Encryption.Nonce = flip(e.Encryption.Nonce) }, lk},
		{"flipped tag", func(e *EncryptedLesson) { e.Encryption.Tag = flip(e.Encryption.Tag) }, lk},
		{"nonce of another lesson", func(e *EncryptedLesson) { e.Encryption.Nonce = el2.Encryption.Nonce }, lk},
		{"tag of another lesson", func(e *EncryptedLesson) { e.Encryption.Tag = el2.Encryption.Tag }, lk},
		{"another keyId", func(e *EncryptedLesson) { e.Encryption.KeyID = "k2" }, lk},
		{"moved under another lessonId", func(e *EncryptedLesson) { e.LessonID = "second" }, lk},
		{"re-published by another node", func(e *EncryptedLesson) {
			e.Signature.NodeID = testNodeID(t, other)
		}, lk},
		{"ciphertext of another lesson", func(e *EncryptedLesson) { e.Ciphertext = el2.Ciphertext }, lk},
		{"truncated ciphertext", func(e *EncryptedLesson) {
			b, _ := base64.StdEncoding.DecodeString(e.Ciphertext)
			e.Ciphertext = base64.StdEncoding.EncodeToString(b[:len(b)-1])
		}, lk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *el
			tt.change(&c)
			_, err := DecryptLesson(&c, tt.key)
			wantErr(t, err, ErrDecrypt, "wrong key, or the ciphertext")
			wantErr(t, err, ErrInvalid, "")
			if CodeOf(err) != CodeInvalidRequest {
				t.Fatalf("code %s", CodeOf(err))
			}
			// Re-signed by whoever moved it, the signature holds, and
			// decryption still refuses it.
			signer := key
			if c.Signature.NodeID == testNodeID(t, other) {
				signer = other
			}
			c.Signature.NodeID = ""
			rs, err := SignEncrypted(signer, &c, c.Publication, testNow)
			if err != nil {
				t.Fatalf("re-sign: %v", err)
			}
			if err := VerifyEncrypted(rs, VerifyOptions{Now: testNow}); err != nil {
				t.Fatalf("re-signed copy does not verify: %v", err)
			}
			if _, err := DecryptLesson(rs, tt.key); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("re-signed copy: %v", err)
			}
		})
	}
	// A moved copy is refused by the signature check before any key is
	// asked for.
	c := *el
	c.LessonID = "second"
	wantErr(t, VerifyEncrypted(&c, VerifyOptions{Now: testNow}), ErrInvalidSignature, "")
}

func TestDecryptRefusesBadInput(t *testing.T) {
	key := testKey(1)
	lk := testLessonKey(7)
	el := mustEncrypt(t, key, testLesson(), lk, "k1")
	if _, err := DecryptLesson(el, lk[:16]); err == nil {
		t.Fatal("decrypted with a 16-byte key")
	}
	if _, err := DecryptLesson(nil, lk); err == nil {
		t.Fatal("decrypted nil")
	}
	c := *el
	c.Encryption.Nonce = base64.StdEncoding.EncodeToString(make([]byte, 8))
	wantErr(t, func() error { _, err := DecryptLesson(&c, lk); return err }(), ErrInvalid, "encryption.nonce")

	// The plaintext must be the canonical record with the lesson's ID.
	nodeID := testNodeID(t, key)
	gcm, _ := newGCM(lk)
	nonce := make([]byte, NonceSize)
	for _, tt := range []struct{ name, plaintext, msg string }{
		{"other id", `{"id":"other","type":"lesson"}`, `plaintext is lesson "other"`},
		{"not canonical", `{"type":"lesson","id":"rust-borrow-01"}`, "not the RFC 8785 JSON"},
		{"not a record", `[1,2]`, "must be a JSON object"},
		{"no type", `{"id":"rust-borrow-01"}`, "type is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed := gcm.Seal(nil, nonce, []byte(tt.plaintext), EncryptionAAD("k1", "rust-borrow-01", nodeID))
			e := *el
			e.Ciphertext = base64.StdEncoding.EncodeToString(sealed[:len(sealed)-TagSize])
			e.Encryption.Nonce = base64.StdEncoding.EncodeToString(nonce)
			e.Encryption.Tag = base64.StdEncoding.EncodeToString(sealed[len(sealed)-TagSize:])
			_, err := DecryptLesson(&e, lk)
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
}

func TestEncryptLessonRefuses(t *testing.T) {
	nodeID := testNodeID(t, testKey(1))
	lk := testLessonKey(7)
	big := testLesson()
	big.Content = strings.Repeat("x", MaxRecordSize)
	for _, tt := range []struct {
		name   string
		key    []byte
		lesson *Lesson
		p      EncryptParams
		target error
		msg    string
	}{
		{"short key", lk[:31], testLesson(), EncryptParams{NodeID: nodeID, KeyID: "k"}, ErrInvalid, "want 32"},
		{"nil lesson", lk, nil, EncryptParams{NodeID: nodeID, KeyID: "k"}, ErrInvalid, "nil lesson"},
		{"no node", lk, testLesson(), EncryptParams{KeyID: "k"}, ErrInvalid, "node id"},
		{"bad keyId", lk, testLesson(), EncryptParams{NodeID: nodeID, KeyID: "a b"}, ErrInvalid, "keyId"},
		{"no keyId", lk, testLesson(), EncryptParams{NodeID: nodeID}, ErrInvalid, "keyId"},
		{"endpoint with space", lk, testLesson(), EncryptParams{NodeID: nodeID, KeyID: "k", KeyEndpoint: "https://x/ y"}, ErrInvalid, "keyEndpoint"},
		{"no lesson id", lk, &Lesson{Type: TypeLesson}, EncryptParams{NodeID: nodeID, KeyID: "k"}, ErrInvalid, "no id"},
		{"invalid lesson", lk, &Lesson{ID: "a", Type: "no spaces"}, EncryptParams{NodeID: nodeID, KeyID: "k"}, ErrInvalid, "type"},
		{"too large", lk, big, EncryptParams{NodeID: nodeID, KeyID: "k"}, ErrTooLarge, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncryptLesson(tt.key, tt.lesson, tt.p)
			wantErr(t, err, tt.target, tt.msg)
		})
	}
}

func TestSignEncryptedRefusesAnotherNode(t *testing.T) {
	el, err := EncryptLesson(testLessonKey(7), testLesson(), EncryptParams{NodeID: testNodeID(t, testKey(1)), KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = SignEncrypted(testKey(2), el, testPublication(), testNow)
	wantErr(t, err, ErrInvalid, "readers could not decrypt it")
	if _, err := SignEncrypted(testKey(1), el, Publication{Visibility: "private"}, testNow); err == nil {
		t.Fatal("signed a private publication")
	}
}

func TestVerifyEncrypted(t *testing.T) {
	key := testKey(1)
	el := mustEncrypt(t, key, testLesson(), testLessonKey(7), "k1")
	otherID := testNodeID(t, testKey(2))
	tests := []struct {
		name   string
		change func(e *EncryptedLesson)
		opts   VerifyOptions
		target error
	}{
		{"ok", func(e *EncryptedLesson) {}, VerifyOptions{Now: testNow}, nil},
		{"keyEndpoint changed", func(e *EncryptedLesson) { e.Encryption.KeyEndpoint = "https://evil.example/mesh/v1/keys/k1" }, VerifyOptions{Now: testNow}, ErrInvalidSignature},
		{"keyId changed", func(e *EncryptedLesson) { e.Encryption.KeyID = "k2" }, VerifyOptions{Now: testNow}, ErrInvalidSignature},
		{"topics changed", func(e *EncryptedLesson) { e.Publication.Topics = []string{"go"} }, VerifyOptions{Now: testNow}, ErrInvalidSignature},
		{"nodeId of another key", func(e *EncryptedLesson) { e.Signature.NodeID = otherID }, VerifyOptions{Now: testNow}, ErrKeyMismatch},
		{"algorithm", func(e *EncryptedLesson) { e.Signature.Algorithm = "rsa" }, VerifyOptions{Now: testNow}, ErrInvalidSignature},
		{"bad sig", func(e *EncryptedLesson) { e.Signature.Sig = "AAAA" }, VerifyOptions{Now: testNow}, ErrInvalidSignature},
		{"too old", func(e *EncryptedLesson) {}, VerifyOptions{Now: testNow.Add(2 * time.Hour)}, ErrTimestamp},
		{"too old, allowed", func(e *EncryptedLesson) {}, VerifyOptions{Now: testNow.Add(2 * time.Hour), AllowOld: true}, nil},
		{"from the future", func(e *EncryptedLesson) {}, VerifyOptions{Now: testNow.Add(-2 * time.Hour)}, ErrTimestamp},
		{"timestamp out of range", func(e *EncryptedLesson) { e.Signature.Timestamp = 1 << 60 }, VerifyOptions{Now: testNow}, ErrTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *el
			tt.change(&c)
			err := VerifyEncrypted(&c, tt.opts)
			if tt.target == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.target, "")
		})
	}
	if err := VerifyEncrypted(nil, VerifyOptions{}); err == nil {
		t.Fatal("verified nil")
	}
}

func TestDecodeEncryptedLessonStrict(t *testing.T) {
	el := mustEncrypt(t, testKey(1), testLesson(), testLessonKey(7), "k1")
	good := string(mustEncodeEncrypted(t, el))
	tests := []struct {
		name, in string
		target   error
		msg      string
	}{
		{"not an object", `[]`, ErrInvalid, "must be a JSON object"},
		{"null", `null`, ErrInvalid, "must be a JSON object"},
		{"unknown field", replaceOnce(t, good, `"lessonId"`, `"extra":1,"lessonId"`), ErrInvalid, `unknown field "extra"`},
		{"case", replaceOnce(t, good, `"lessonId"`, `"LessonId"`), ErrInvalid, "unknown field"},
		{"missing ciphertext", replaceOnce(t, good, `"ciphertext":"`, `"cipher":"`), ErrInvalid, "unknown field"},
		{"duplicate key", replaceOnce(t, good, `"lessonId":"rust-borrow-01"`, `"lessonId":"rust-borrow-01","lessonId":"x"`), ErrInvalid, "Duplicate key"},
		{"null lessonId", replaceOnce(t, good, `"lessonId":"rust-borrow-01"`, `"lessonId":null`), ErrInvalid, "lessonId: want a string"},
		{"numeric nonce", replaceOnce(t, good, `"nonce":"`+el.Encryption.Nonce+`"`, `"nonce":12`), ErrInvalid, "nonce: want a string"},
		{"unknown encryption field", replaceOnce(t, good, `"tag":`, `"iv":"x","tag":`), ErrInvalid, `unknown field "iv"`},
		{"too deep", replaceOnce(t, good, `"topics":["rust"]`, `"topics":[["rust"]]`), ErrInvalid, "nested 4 levels deep, the limit is 3"},
		{"very deep", `{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, ErrInvalid, "nested 5001 levels deep"},
		{"too large", `{"lessonId":"` + strings.Repeat("a", MaxEncryptedLessonSize) + `"}`, ErrTooLarge, ""},
		{"bad utf-8", replaceOnce(t, good, `"rust-borrow-01"`, "\"rust\xff\""), ErrInvalid, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEncryptedLesson([]byte(tt.in))
			wantErr(t, err, tt.target, tt.msg)
		})
	}
	// A bracket inside a string is not nesting.
	deepString := replaceOnce(t, good, `"topics":["rust"]`, `"topics":["[[[[{{{{"]`)
	if _, err := DecodeEncryptedLesson([]byte(deepString)); err != nil {
		t.Fatalf("brackets in a string counted as depth: %v", err)
	}
}

func TestNewKeyIDAndLessonKey(t *testing.T) {
	a, b := NewKeyID(), NewKeyID()
	if a == b || len(a) != 23 || ValidateID(a) != nil {
		t.Fatalf("NewKeyID = %q, %q", a, b)
	}
	if k := NewLessonKey(); len(k) != LessonKeySize || bytes.Equal(k, NewLessonKey()) {
		t.Fatal("NewLessonKey")
	}
}

// rawVerifyEncrypted checks an EncryptedLesson's signature over the raw
// bytes, the way an implementation without our types would.
func rawVerifyEncrypted(t *testing.T, data []byte) bool {
	m := rawMembers(t, data)
	sig := rawMembers(t, m["signature"])
	var pk, s string
	_ = json.Unmarshal(sig["publicKey"], &pk)
	_ = json.Unmarshal(sig["sig"], &s)
	return rawVerify(t, map[string]json.RawMessage{"lessonId": m["lessonId"], "encryption": m["encryption"],
		"ciphertext": m["ciphertext"], "publication": m["publication"], "timestamp": sig["timestamp"]}, pk, s)
}
