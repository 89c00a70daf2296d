package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestKeyRequest(t *testing.T) {
	r := &KeyRequest{Type: MsgKeyRequest, KeyID: "k1"}
	b, _ := r.Encode()
	if string(b) != `{"type":"keyRequest","keyId":"k1"}` {
		t.Fatalf("encoding %s", b)
	}
	d, err := DecodeKeyRequest(b)
	if err != nil || *d != *r {
		t.Fatalf("decode: %+v %v", d, err)
	}
	for _, tt := range []struct{ name, in, msg string }{
		{"wrong type", `{"type":"fetch","keyId":"k1"}`, "want \"keyRequest\""},
		{"bad keyId", `{"type":"keyRequest","keyId":"a/b"}`, "record id"},
		{"unknown field", `{"type":"keyRequest","keyId":"k1","nodeId":"x"}`, "unknown field"},
		{"missing keyId", `{"type":"keyRequest"}`, "keyId is missing"},
		{"nested", `{"type":"keyRequest","keyId":["k1"]}`, "nested 2 levels deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeKeyRequest([]byte(tt.in))
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
	_, err = DecodeKeyRequest(bytes.Repeat([]byte(" "), MaxKeyRequestSize+1))
	wantErr(t, err, ErrTooLarge, "")
}

func TestKeyResponse(t *testing.T) {
	key := testLessonKey(9)
	reader := testKey(2)
	readerID := testNodeID(t, reader)
	sealed, err := SealKey(reader.Public().(ed25519.PublicKey), key, KeySealInfo("k1", readerID))
	if err != nil {
		t.Fatal(err)
	}
	shares, _ := SplitKey(key, 3, 2)
	sealedShare, _ := SealKey(reader.Public().(ed25519.PublicKey), shares[0], ShareSealInfo("k1", readerID))
	rev, _ := SignRevocation(testKey(1), "rust-borrow-01", ReasonPrivate, testNow)
	exp := testNow.Add(time.Hour).UnixMilli()
	b64 := base64.StdEncoding.EncodeToString

	good := []*KeyResponse{
		{Type: MsgKeyResponse, KeyID: "k1", Key: b64(key), ExpiresAt: exp},
		{Type: MsgKeyResponse, KeyID: "k1", SealedKey: b64(sealed), ExpiresAt: exp},
		{Type: MsgKeyResponse, KeyID: "k1", Share: b64(shares[0]), ExpiresAt: exp},
		{Type: MsgKeyResponse, KeyID: "k1", SealedShare: b64(sealedShare), ExpiresAt: exp},
		KeyRevokedResponse("k1", testNow.UnixMilli(), nil),
		KeyRevokedResponse("k1", testNow.UnixMilli(), rev),
		KeyErrorResponse("k1", ErrAccessDenied),
		KeyErrorResponse("k1", ErrNotFound),
	}
	for i, r := range good {
		enc, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeKeyResponse(enc)
		if err != nil {
			t.Fatalf("%d: decode: %v\n%s", i, err, enc)
		}
		again, _ := d.Encode()
		if !bytes.Equal(again, enc) {
			t.Fatalf("%d: round trip\n%s\n%s", i, enc, again)
		}
	}

	// The seed's revoked form, with our type and keyId.
	enc, _ := good[4].Encode()
	if string(enc) != `{"type":"keyResponse","keyId":"k1","error":"KEY_REVOKED","revokedAt":1767225600000}` {
		t.Fatalf("revoked answer: %s", enc)
	}
	d, _ := DecodeKeyResponse(enc)
	wantErr(t, d.Err(), ErrKeyRevoked, "2026-01-01T00:00:00Z")
	if CodeOf(d.Err()) != CodeKeyRevoked || HTTPStatus(d.Err()) != 410 {
		t.Fatalf("KEY_REVOKED: code %s, status %d", CodeOf(d.Err()), HTTPStatus(d.Err()))
	}
	enc, _ = good[6].Encode()
	d, _ = DecodeKeyResponse(enc)
	wantErr(t, d.Err(), ErrAccessDenied, "")
	if _, err := d.RawKey(); err == nil {
		t.Fatal("RawKey of an error answer")
	}
	if k, err := good[0].RawKey(); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("RawKey = %x, %v", k, err)
	}
	if _, err := good[1].RawKey(); err == nil {
		t.Fatal("RawKey of a sealed answer")
	}
	k, err := OpenKey(reader, sealed, KeySealInfo("k1", readerID))
	if err != nil || !bytes.Equal(k, key) {
		t.Fatal("the sealed key does not open")
	}

	for _, tt := range []struct{ name, in, msg string }{
		{"two keys", `{"type":"keyResponse","keyId":"k1","key":"` + b64(key) + `","share":"` + b64(shares[0]) + `","expiresAt":1}`, "exactly one"},
		{"nothing", `{"type":"keyResponse","keyId":"k1","expiresAt":1}`, "exactly one"},
		{"no expiresAt", `{"type":"keyResponse","keyId":"k1","key":"` + b64(key) + `"}`, "expiresAt"},
		{"short key", `{"type":"keyResponse","keyId":"k1","key":"` + b64(key[:16]) + `","expiresAt":1}`, "want 32 bytes"},
		{"empty key", `{"type":"keyResponse","keyId":"k1","key":"","expiresAt":1}`, "omit the field"},
		{"revoked without time", `{"type":"keyResponse","keyId":"k1","error":"KEY_REVOKED"}`, "revokedAt"},
		{"revokedAt on denial", `{"type":"keyResponse","keyId":"k1","error":"ACCESS_DENIED","revokedAt":5}`, "revokedAt"},
		{"key and error", `{"type":"keyResponse","keyId":"k1","error":"ACCESS_DENIED","key":"` + b64(key) + `"}`, "carries no key"},
		{"message without error", `{"type":"keyResponse","keyId":"k1","key":"` + b64(key) + `","expiresAt":1,"message":"hi"}`, "belong to error answers"},
		{"error not a code", `{"type":"keyResponse","keyId":"k1","error":"no way!"}`, "wire error code"},
		{"error true", `{"type":"keyResponse","keyId":"k1","error":true}`, "want a string"},
		{"wrong type", `{"type":"keyRequest","keyId":"k1","key":"` + b64(key) + `","expiresAt":1}`, "want \"keyResponse\""},
		{"bad revocation", `{"type":"keyResponse","keyId":"k1","error":"KEY_REVOKED","revokedAt":5,"revocation":{"type":"revocation"}}`, "revocation"},
		{"too deep", `{"type":"keyResponse","keyId":"k1","message":[[[[[]]]]]}`, "nested 6 levels deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeKeyResponse([]byte(tt.in))
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
}

func TestSignedKeyRequest(t *testing.T) {
	key := testKey(2)
	r, err := SignKeyRequest(key, "k1", testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keyId":"k1","nodeId":"` + testNodeID(t, key) + `","publicKey":"` + r.PublicKey + `","timestamp":1767225600000}`
	if string(r.SigningPayload()) != want {
		t.Fatalf("payload %s", r.SigningPayload())
	}
	if !bytes.Equal(mustCanonical(t, r.SigningPayload()), r.SigningPayload()) {
		t.Fatal("payload is not canonical")
	}
	// Over HTTP headers and back.
	h := r.KeyRequestHeaders()
	if len(h) != 4 || h[HeaderTimestamp] != "1767225600000" {
		t.Fatalf("headers %v", h)
	}
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	p, err := ParseKeyRequestHeaders("k1", get(h))
	if err != nil || *p != *r {
		t.Fatalf("parse: %+v, %v", p, err)
	}
	if err := VerifyKeyRequest(p, VerifyOptions{Now: testNow.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}

	other := testNodeID(t, testKey(3))
	for _, tt := range []struct {
		name   string
		keyID  string
		change func(h map[string]string)
		now    time.Time
		target error
		msg    string
	}{
		{"another keyId in the path", "k2", func(map[string]string) {}, testNow, ErrInvalidSignature, ""},
		{"another node", "k1", func(h map[string]string) { h[HeaderNodeID] = other }, testNow, ErrKeyMismatch, ""},
		{"another time", "k1", func(h map[string]string) { h[HeaderTimestamp] = "1767225600001" }, testNow, ErrInvalidSignature, ""},
		{"stale", "k1", func(map[string]string) {}, testNow.Add(6 * time.Minute), ErrTimestamp, ""},
		{"from the future", "k1", func(map[string]string) {}, testNow.Add(-6 * time.Minute), ErrTimestamp, ""},
		{"unsigned", "k1", func(h map[string]string) { delete(h, HeaderSignature) }, testNow, ErrUnauthorized, "Mesh-Signature"},
		{"timestamp with a plus", "k1", func(h map[string]string) { h[HeaderTimestamp] = "+1767225600000" }, testNow, ErrInvalid, "decimal"},
		{"timestamp with a leading zero", "k1", func(h map[string]string) { h[HeaderTimestamp] = "01767225600000" }, testNow, ErrInvalid, "decimal"},
		{"bad keyId", "../x", func(map[string]string) {}, testNow, ErrInvalid, "keyId"},
		{"bad sig", "k1", func(h map[string]string) { h[HeaderSignature] = "AAAA" }, testNow, ErrInvalidSignature, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := map[string]string{}
			for k, v := range h {
				c[k] = v
			}
			tt.change(c)
			p, err := ParseKeyRequestHeaders(tt.keyID, get(c))
			if err == nil {
				err = VerifyKeyRequest(p, VerifyOptions{Now: tt.now})
			}
			wantErr(t, err, tt.target, tt.msg)
			if tt.target == ErrUnauthorized && HTTPStatus(err) != 401 {
				t.Fatalf("status %d", HTTPStatus(err))
			}
		})
	}
	if _, err := SignKeyRequest(key, "a b", testNow); err == nil || !strings.Contains(err.Error(), "keyId") {
		t.Fatalf("signed a bad keyId: %v", err)
	}
}
