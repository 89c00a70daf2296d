package protocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Encrypted lessons travel in the federation messages exactly where signed
// ones do; old messages (without them) decode as before.
func TestEncryptedInMessages(t *testing.T) {
	key := testKey(7)
	el := mustEncrypt(t, key, testLesson(), testLessonKey(5), "k1")
	sl := mustSign(t, key, testLesson())
	rev, _ := SignRevocation(key, el.LessonID, ReasonPrivate, testNow)
	opts := VerifyOptions{Now: testNow}

	t.Run("announcement", func(t *testing.T) {
		b, err := (&Announcement{Type: MsgPublication, EncryptedLesson: el}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"publication","encryptedLesson":{"lessonId":`)) {
			t.Fatalf("wire shape: %.80s", b)
		}
		a, err := DecodeAnnouncement(b)
		if err != nil || a.SignedLesson != nil || a.EncryptedLesson == nil {
			t.Fatalf("%+v %v", a, err)
		}
		if err := VerifyEncrypted(a.EncryptedLesson, opts); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fetch", func(t *testing.T) {
		b, _ := (&FetchResponse{Type: MsgFetchResponse, EncryptedLesson: el}).Encode()
		r, err := DecodeFetchResponse(b)
		if err != nil || r.EncryptedLesson == nil || VerifyEncrypted(r.EncryptedLesson, opts) != nil {
			t.Fatalf("%+v %v", r, err)
		}
	})
	t.Run("sync", func(t *testing.T) {
		b, _ := (&SyncResponse{Type: MsgSyncResponse, Lessons: []*SignedLesson{sl}, EncryptedLessons: []*EncryptedLesson{el}, Revocations: []*Revocation{rev}, Checkpoint: "c"}).Encode()
		r, err := DecodeSyncResponse(b)
		if err != nil || len(r.Lessons) != 1 || len(r.EncryptedLessons) != 1 || len(r.Revocations) != 1 {
			t.Fatalf("%+v %v", r, err)
		}
		if err := VerifyEncrypted(r.EncryptedLessons[0], opts); err != nil {
			t.Fatal(err)
		}
		// A page without encrypted lessons is the old page, byte for byte.
		b, _ = (&SyncResponse{Type: MsgSyncResponse, Checkpoint: "c"}).Encode()
		if string(b) != `{"type":"syncResponse","lessons":[],"revocations":[],"checkpoint":"c","hasMore":false}` {
			t.Fatalf("old page shape: %s", b)
		}
	})
	t.Run("directory lesson", func(t *testing.T) {
		b, _ := encodeJSON(&DirectoryLessonResponse{Key: el.Key(), EncryptedLesson: el})
		r, err := DecodeDirectoryLessonResponse(b)
		if err != nil || r.EncryptedLesson == nil || r.EncryptedLesson.Key() != el.Key() {
			t.Fatalf("%+v %v", r, err)
		}
		other := mustEncrypt(t, testKey(8), testLesson(), testLessonKey(5), "k1")
		b, _ = encodeJSON(&DirectoryLessonResponse{Key: el.Key(), EncryptedLesson: other})
		if _, err := DecodeDirectoryLessonResponse(b); !errors.Is(err, ErrInvalid) {
			t.Fatalf("another lesson under the key asked for: %v", err)
		}
	})

	ann := string(mustEncodeEncrypted(t, el))
	signed := string(mustEncode(t, sl))
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     string
		says   string
	}{
		{"announcement both", func(b []byte) error { _, err := DecodeAnnouncement(b); return err },
			`{"type":"publication","signedLesson":` + signed + `,"encryptedLesson":` + ann + `}`, "exactly one"},
		{"announcement none", func(b []byte) error { _, err := DecodeAnnouncement(b); return err }, `{"type":"publication"}`, "exactly one"},
		{"announcement bad encrypted", func(b []byte) error { _, err := DecodeAnnouncement(b); return err },
			`{"type":"publication","encryptedLesson":{"lessonId":"a"}}`, "encrypted lesson"},
		{"fetch both", func(b []byte) error { _, err := DecodeFetchResponse(b); return err },
			`{"type":"fetchResponse","signedLesson":` + signed + `,"encryptedLesson":` + ann + `}`, "both"},
		{"sync empty encrypted", func(b []byte) error { _, err := DecodeSyncResponse(b); return err },
			`{"type":"syncResponse","lessons":[],"encryptedLessons":[],"revocations":[],"checkpoint":"","hasMore":false}`, "omit"},
		{"sync encrypted not array", func(b []byte) error { _, err := DecodeSyncResponse(b); return err },
			`{"type":"syncResponse","lessons":[],"encryptedLessons":{},"revocations":[],"checkpoint":"","hasMore":false}`, "array"},
		{"sync page counts encrypted", func(b []byte) error { _, err := DecodeSyncResponse(b); return err },
			`{"type":"syncResponse","lessons":[` + strings.Repeat(`{},`, MaxSyncPage/2) + `{}],"encryptedLessons":[` + strings.Repeat(`{},`, MaxSyncPage/2) + `{}],"revocations":[],"checkpoint":"","hasMore":false}`, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode([]byte(tc.in))
			if err == nil || CodeOf(err) == CodeInternal || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.says)
			}
		})
	}
}

func TestKeyResponseCarriesPolicy(t *testing.T) {
	p := testPolicy(t, AccessExplicit)
	shares, _ := SplitKey(testLessonKey(9), 3, 2)
	exp := testNow.Add(time.Hour).UnixMilli()
	r := &KeyResponse{Type: MsgKeyResponse, KeyID: p.KeyID, Share: base64.StdEncoding.EncodeToString(shares[0]), ExpiresAt: exp, Policy: p}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeKeyResponse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if d.Policy == nil || VerifyKeyPolicy(d.Policy, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("the policy does not verify after the round trip: %+v", d.Policy)
	}
	if again, _ := d.Encode(); !bytes.Equal(again, b) {
		t.Fatalf("round trip:\n%s\n%s", b, again)
	}

	other := *r
	other.KeyID = "k2"
	b, _ = other.Encode()
	if _, err := DecodeKeyResponse(b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "policy is of key") {
		t.Fatalf("a policy of another key: %v", err)
	}
	denied := KeyErrorResponse(p.KeyID, ErrAccessDenied)
	denied.Policy = p
	b, _ = denied.Encode()
	if _, err := DecodeKeyResponse(b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an error answer with a policy: %v", err)
	}
}

func TestVerifyKeyResponseHTTP(t *testing.T) {
	server := testKey(1)
	r := &KeyResponse{Type: MsgKeyResponse, KeyID: "k1", Key: base64.StdEncoding.EncodeToString(testLessonKey(3)), ExpiresAt: testNow.Add(time.Hour).UnixMilli()}
	body, _ := r.Encode()
	signed, err := SignResponse(server, body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	got, signer, err := VerifyKeyResponseHTTP(signed, VerifyOptions{Now: testNow})
	if err != nil || signer != testNodeID(t, server) || got.Key != r.Key || got.ExpiresAt != r.ExpiresAt {
		t.Fatalf("%+v %s %v", got, signer, err)
	}
	tampered := bytes.Replace(signed, []byte(`"expiresAt":`), []byte(`"expiresAt":1`), 1)
	if _, _, err := VerifyKeyResponseHTTP(tampered, VerifyOptions{Now: testNow}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("tampered answer: %v", err)
	}
	if _, _, err := VerifyKeyResponseHTTP(body, VerifyOptions{Now: testNow}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("unsigned answer: %v", err)
	}
}

func TestKeyNotice(t *testing.T) {
	p := testPolicy(t, AccessTrusted)
	rev, _ := SignRevocation(testKey(1), p.LessonID, ReasonPrivate, testNow)
	for _, n := range []*KeyNotice{{Type: MsgKeyNotice, Policy: p}, {Type: MsgKeyNotice, Revocation: rev}} {
		b, err := n.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d, err := DecodeKeyNotice(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if d.Policy != nil && VerifyKeyPolicy(d.Policy, VerifyOptions{Now: testNow}) != nil {
			t.Fatal("the policy does not verify after the round trip")
		}
		if d.Revocation != nil && VerifyRevocation(d.Revocation, VerifyOptions{Now: testNow}) != nil {
			t.Fatal("the revocation does not verify after the round trip")
		}
		if again, _ := d.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("round trip:\n%s\n%s", b, again)
		}
	}
	pol := string(mustJSON(t, p))
	rv := string(mustJSON(t, rev))
	for _, tc := range []struct{ in, says string }{
		{`{"type":"keyNotice"}`, "exactly one"},
		{`{"type":"keyNotice","policy":` + pol + `,"revocation":` + rv + `}`, "exactly one"},
		{`{"type":"keyRequest","policy":` + pol + `}`, "keyNotice"},
		{`{"type":"keyNotice","policy":` + pol + `,"extra":1}`, "extra"},
		{`{"type":"keyNotice","revocation":{"type":"revocation"}}`, "revocation"},
		{`{"type":"keyNotice","policy":{"keyId":"k"}}`, "key policy"},
		{`{"type":"keyNotice","x":"` + strings.Repeat("a", MaxKeyNoticeSize) + `"}`, "limit"},
	} {
		_, err := DecodeKeyNotice([]byte(tc.in))
		if err == nil || CodeOf(err) == CodeInternal || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%.60s: got %v, want an error mentioning %q", tc.in, err, tc.says)
		}
	}

	e := NewError(ErrUntrusted)
	for _, a := range []*KeyNoticeAck{{Type: MsgKeyNoticeAck}, {Type: MsgKeyNoticeAck, Error: &e}} {
		b, _ := a.Encode()
		d, err := DecodeKeyNoticeAck(b)
		if err != nil {
			t.Fatal(err)
		}
		if (a.Error == nil) != (d.Err() == nil) || (d.Err() != nil && !errors.Is(d.Err(), ErrUntrusted)) {
			t.Fatalf("ack error: %v", d.Err())
		}
	}
	if _, err := DecodeKeyNoticeAck([]byte(`{"type":"keyNotice"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ack type: %v", err)
	}
}

func FuzzDecodeKeyNotice(f *testing.F) {
	p := testPolicy(f, AccessExplicit)
	rev, _ := SignRevocation(testKey(1), p.LessonID, "", testNow)
	for _, n := range []*KeyNotice{{Type: MsgKeyNotice, Policy: p}, {Type: MsgKeyNotice, Revocation: rev}} {
		b, _ := n.Encode()
		f.Add(b)
	}
	f.Add([]byte(`{"type":"keyNoticeAck","error":{"error":true,"code":"UNTRUSTED_NODE","message":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := DecodeKeyNoticeAck(data); err != nil {
			checkDecodeErr(t, err)
		} else if _, err := a.Encode(); err != nil {
			t.Fatal(err)
		}
		n, err := DecodeKeyNotice(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if (n.Policy == nil) == (n.Revocation == nil) {
			t.Fatalf("decoded notice carries %v and %v", n.Policy, n.Revocation)
		}
		out, err := n.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		if _, err := DecodeKeyNotice(out); err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
	})
}
