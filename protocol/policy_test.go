package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func testPolicy(t testing.TB, access string) *KeyPolicy {
	t.Helper()
	var e *Escrow
	var nodes []string
	for _, b := range []byte{11, 12, 13} {
		nodes = append(nodes, testNodeID(t, testKey(b)))
	}
	e, err := NewEscrow(testLessonKey(9), "k1", 2, nodes)
	if err != nil {
		t.Fatal(err)
	}
	p := KeyPolicy{KeyID: "k1", LessonID: "rust-borrow-01", Access: access, Escrow: e, ExpiresAt: testNow.Add(24 * time.Hour).UnixMilli()}
	switch access {
	case AccessTrusted:
		p.MinTrustScore = 0.5
	case AccessExplicit:
		p.AllowedNodes = []string{testNodeID(t, testKey(3)), testNodeID(t, testKey(2))}
	}
	s, err := SignKeyPolicy(testKey(1), p, testNow)
	if err != nil {
		t.Fatalf("SignKeyPolicy: %v", err)
	}
	return s
}

func TestKeyPolicyRoundTrip(t *testing.T) {
	for _, access := range []string{AccessPublic, AccessTrusted, AccessExplicit} {
		t.Run(access, func(t *testing.T) {
			p := testPolicy(t, access)
			if p.NodeID != testNodeID(t, testKey(1)) || p.IssuedAt != testNow.UnixMilli() {
				t.Fatalf("policy %+v", p)
			}
			enc, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeKeyPolicy(enc)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, enc)
			}
			if err := VerifyKeyPolicy(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			again, _ := d.Encode()
			if !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n%s\n%s", enc, again)
			}
			m := rawMembers(t, enc)
			delete(m, "signature")
			if !rawVerify(t, m, p.Signature.PublicKey, p.Signature.Sig) {
				t.Fatal("the signature does not verify over the raw bytes")
			}
			if access == AccessExplicit && !(p.AllowedNodes[0] < p.AllowedNodes[1]) {
				t.Fatal("allowedNodes not sorted")
			}
		})
	}
	// Without escrow or expiry, allowedNodes is [] on the wire.
	p, err := SignKeyPolicy(testKey(1), KeyPolicy{KeyID: "k1", LessonID: "a", Access: AccessPublic}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := p.Encode()
	if !strings.Contains(string(enc), `"allowedNodes":[]`) || strings.Contains(string(enc), "escrow") || strings.Contains(string(enc), "expiresAt") {
		t.Fatalf("encoding: %s", enc)
	}
	if _, err := DecodeKeyPolicy(enc); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyKeyPolicy(t *testing.T) {
	p := testPolicy(t, AccessTrusted)
	tests := []struct {
		name   string
		change func(p *KeyPolicy)
		now    time.Time
		target error
	}{
		{"ok", func(p *KeyPolicy) {}, testNow, nil},
		{"ok a day on", func(p *KeyPolicy) {}, testNow.Add(23 * time.Hour), nil},
		{"expired", func(p *KeyPolicy) {}, testNow.Add(24 * time.Hour), ErrTimestamp},
		{"from the future", func(p *KeyPolicy) {}, testNow.Add(-2 * time.Hour), ErrTimestamp},
		{"score lowered", func(p *KeyPolicy) { p.MinTrustScore = 0.25 }, testNow, ErrInvalidSignature},
		{"access widened", func(p *KeyPolicy) { p.Access = AccessPublic; p.MinTrustScore = 0 }, testNow, ErrInvalidSignature},
		{"share swapped", func(p *KeyPolicy) {
			e := *p.Escrow
			e.Shares = append([]EscrowShare(nil), e.Shares...)
			e.Shares[0].NodeID, e.Shares[1].NodeID = e.Shares[1].NodeID, e.Shares[0].NodeID
			p.Escrow = &e
		}, testNow, ErrInvalidSignature},
		{"threshold lowered", func(p *KeyPolicy) {
			e := *p.Escrow
			e.Threshold = 3
			p.Escrow = &e
		}, testNow, ErrInvalidSignature},
		{"another author", func(p *KeyPolicy) { p.NodeID = testNodeID(t, testKey(2)) }, testNow, ErrKeyMismatch},
		{"no escrow", func(p *KeyPolicy) { p.Escrow = nil }, testNow, ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *p
			tt.change(&c)
			err := VerifyKeyPolicy(&c, VerifyOptions{Now: tt.now})
			if tt.target == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.target, "")
		})
	}
}

func TestKeyPolicyRules(t *testing.T) {
	id2, id3 := testNodeID(t, testKey(2)), testNodeID(t, testKey(3))
	author := testNodeID(t, testKey(1))
	escrow := testPolicy(t, AccessPublic).Escrow
	withAuthor := *escrow
	withAuthor.Shares = append([]EscrowShare{{NodeID: author, SealedShare: escrow.Shares[0].SealedShare}}, escrow.Shares[1:]...)
	for _, tt := range []struct {
		name string
		p    KeyPolicy
		msg  string
	}{
		{"no keyId", KeyPolicy{LessonID: "a", Access: AccessPublic}, "keyId"},
		{"no lessonId", KeyPolicy{KeyID: "k", Access: AccessPublic}, "lessonId"},
		{"unknown access", KeyPolicy{KeyID: "k", LessonID: "a", Access: "friends"}, "want public, trusted or explicit"},
		{"score for public", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, MinTrustScore: 0.5}, "trusted access only"},
		{"score above 1", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessTrusted, MinTrustScore: 1.5}, "from 0 to 1"},
		{"negative score", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessTrusted, MinTrustScore: -0.5}, "from 0 to 1"},
		{"explicit without nodes", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessExplicit}, "allowedNodes"},
		{"nodes for trusted", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessTrusted, AllowedNodes: []string{id2}}, "allowedNodes"},
		{"duplicate node", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessExplicit, AllowedNodes: []string{id2, id3, id2}}, "duplicate"},
		{"bad node", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessExplicit, AllowedNodes: []string{"nope"}}, "node id"},
		{"expired before issued", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, ExpiresAt: 5}, "expiresAt"},
		{"escrow of one", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, Escrow: &Escrow{Threshold: 2, Shares: escrow.Shares[:1]}}, "2 to 32"},
		{"escrow threshold 1", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, Escrow: &Escrow{Threshold: 1, Shares: escrow.Shares}}, "threshold"},
		{"escrow with the author", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, Escrow: &withAuthor}, "the author holds the key"},
		{"escrow share not sealed", KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessPublic, Escrow: &Escrow{Threshold: 2, Shares: []EscrowShare{{id2, "AAAA"}, {id3, "AAAA"}}}}, "sealedShare"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignKeyPolicy(testKey(1), tt.p, testNow)
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
}

func TestDecodeKeyPolicyStrict(t *testing.T) {
	good := string(mustJSON(t, testPolicy(t, AccessTrusted)))
	for _, tt := range []struct {
		name, in string
		target   error
		msg      string
	}{
		{"unknown field", replaceOnce(t, good, `"keyId"`, `"x":1,"keyId"`), ErrInvalid, `unknown field "x"`},
		{"missing allowedNodes", replaceOnce(t, good, `"allowedNodes":[],`, ``), ErrInvalid, "allowedNodes is missing"},
		{"null allowedNodes", replaceOnce(t, good, `"allowedNodes":[]`, `"allowedNodes":null`), ErrInvalid, "want an array of strings"},
		{"string score", replaceOnce(t, good, `"minTrustScore":0.5`, `"minTrustScore":"0.5"`), ErrInvalid, "want a number"},
		{"score spelled otherwise", replaceOnce(t, good, `"minTrustScore":0.5`, `"minTrustScore":5E-1`), nil, ""},
		{"unknown escrow field", replaceOnce(t, good, `"threshold":2`, `"threshold":2,"k":2`), ErrInvalid, `unknown field "k"`},
		{"unknown share field", strings.Replace(good, `"sealedShare"`, `"share":"x","sealedShare"`, 1), ErrInvalid, `unknown field "share"`},
		{"shares not an array", replaceOnce(t, good, `"shares":[`, `"shares":{"a":[`) /* unbalanced: not JSON */, ErrInvalid, ""},
		{"too deep", replaceOnce(t, good, `"threshold":2`, `"threshold":2,"x":[[[]]]`), ErrInvalid, "nested 5 levels deep, the limit is 4"},
		{"empty expiresAt", replaceOnce(t, good, `"expiresAt":`, `"expiresAt":0,"e":`), ErrInvalid, ""},
		{"too large", `{"keyId":"` + strings.Repeat("k", MaxKeyPolicySize) + `"}`, ErrTooLarge, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodeKeyPolicy([]byte(tt.in))
			if tt.target == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyKeyPolicy(p, VerifyOptions{Now: testNow}); err != nil {
					t.Fatalf("another spelling of the same number does not verify: %v", err)
				}
				return
			}
			wantErr(t, err, tt.target, tt.msg)
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyPolicyAdmits(t *testing.T) {
	author := testNodeID(t, testKey(1))
	reader, stranger := testNodeID(t, testKey(2)), testNodeID(t, testKey(4))
	later := testNow.Add(25 * time.Hour)
	for _, tt := range []struct {
		access    string
		requester string
		score     float64
		now       time.Time
		ok        bool
	}{
		{AccessPublic, stranger, 0, testNow, true},
		{AccessPublic, stranger, 0, later, false},
		{AccessPublic, author, 0, later, true},
		{AccessTrusted, reader, 1, testNow, true},
		{AccessTrusted, reader, 0.5, testNow, true},
		{AccessTrusted, reader, 0.25, testNow, false},
		{AccessTrusted, stranger, 0, testNow, false},
		{AccessExplicit, reader, 0, testNow, true},
		{AccessExplicit, stranger, 1, testNow, false},
		{AccessExplicit, author, 0, testNow, true},
	} {
		p := testPolicy(t, tt.access)
		err := p.Admits(tt.requester, tt.score, tt.now)
		if tt.ok != (err == nil) {
			t.Fatalf("%s, score %g: %v", tt.access, tt.score, err)
		}
		if err != nil {
			wantErr(t, err, ErrAccessDenied, "")
			if CodeOf(err) != CodeAccessDenied || HTTPStatus(err) != 403 {
				t.Fatalf("code %s status %d", CodeOf(err), HTTPStatus(err))
			}
		}
	}
	// trusted with no minimum: any trust path will do, none will not.
	p, _ := SignKeyPolicy(testKey(1), KeyPolicy{KeyID: "k", LessonID: "a", Access: AccessTrusted}, testNow)
	if p.Admits(reader, 0.125, testNow) != nil {
		t.Fatal("a trust path of 0.125 refused")
	}
	wantErr(t, p.Admits(stranger, 0, testNow), ErrAccessDenied, "trust path")
}

// A hard revoke is the lesson's standard revocation: it revokes the keys of
// the lesson's policies issued before it, and the revocation record itself is
// unchanged (old records verify as before).
func TestRevocationRevokesKey(t *testing.T) {
	p := testPolicy(t, AccessPublic)
	r, err := SignRevocation(testKey(1), "rust-borrow-01", ReasonPrivate, testNow.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !r.RevokesKeyOf(p) {
		t.Fatal("the lesson's revocation does not revoke its key")
	}
	other, _ := SignRevocation(testKey(1), "other", "", testNow.Add(time.Minute))
	if other.RevokesKeyOf(p) {
		t.Fatal("another lesson's revocation revokes the key")
	}
	byOther, _ := SignRevocation(testKey(2), "rust-borrow-01", "", testNow.Add(time.Minute))
	if byOther.RevokesKeyOf(p) {
		t.Fatal("another node's revocation revokes the key")
	}
	before, _ := SignRevocation(testKey(1), "rust-borrow-01", "", testNow.Add(-time.Minute))
	if before.RevokesKeyOf(p) {
		t.Fatal("a revocation older than the policy revokes its key")
	}
}
