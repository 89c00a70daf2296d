package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func mustRevoke(t testing.TB, key ed25519.PrivateKey, reason string) *Revocation {
	t.Helper()
	r, err := SignRevocation(key, "rust-borrow-01", reason, testNow)
	if err != nil {
		t.Fatalf("SignRevocation: %v", err)
	}
	return r
}

func TestRevocationRoundTrip(t *testing.T) {
	key := testKey(1)
	for _, reason := range []string{"", ReasonOutdated, ReasonIncorrect, ReasonPrivate, ReasonOther} {
		t.Run("reason="+reason, func(t *testing.T) {
			r := mustRevoke(t, key, reason)
			if err := VerifyRevocation(r, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			if r.Key() != "rust-borrow-01@"+testNodeID(t, key) {
				t.Fatalf("Key() = %s", r.Key())
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if reason == "" && strings.Contains(string(b), "reason") {
				t.Fatalf("empty reason encoded: %s", b)
			}
			d, err := DecodeRevocation(b)
			if err != nil {
				t.Fatalf("DecodeRevocation(%s): %v", b, err)
			}
			if err := VerifyRevocation(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			if *d != *r {
				t.Fatalf("decoded %+v, want %+v", d, r)
			}
		})
	}
}

func TestSignRevocationRejects(t *testing.T) {
	key := testKey(1)
	for _, tt := range []struct{ name, lessonID, reason, msg string }{
		{"bad lesson id", "a b", "", "record id"},
		{"bad reason", "a", "because", "reason"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignRevocation(key, tt.lessonID, tt.reason, testNow)
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
	_, err := SignRevocation(key[:10], "a", "", testNow)
	wantErr(t, err, ErrInvalid, "private key")
}

func TestVerifyRevocationRejects(t *testing.T) {
	key, attacker := testKey(1), testKey(2)
	victim := testNodeID(t, key)
	attackerPub := base64.StdEncoding.EncodeToString(attacker.Public().(ed25519.PublicKey))
	tests := []struct {
		name   string
		make   func() *Revocation
		target error
		msg    string
	}{
		{"another key's revocation for the victim's lesson", func() *Revocation {
			// The attacker signs with its own key and claims the victim's nodeId.
			r := &Revocation{Type: TypeRevocation, LessonID: "rust-borrow-01", NodeID: victim, RevokedAt: testNow.UnixMilli()}
			p, _ := r.signingPayload()
			r.Signature = RevocationSignature{AlgorithmEd25519, attackerPub, base64.StdEncoding.EncodeToString(ed25519.Sign(attacker, p))}
			return r
		}, ErrKeyMismatch, "nodeId"},
		{"victim's key claimed, attacker's signature", func() *Revocation {
			r := mustRevoke(t, attacker, "")
			r.NodeID = victim
			r.Signature.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
			return r
		}, ErrInvalidSignature, ""},
		{"replayed for another lesson", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.LessonID = "other"
			return r
		}, ErrInvalidSignature, ""},
		{"reason changed", func() *Revocation {
			r := mustRevoke(t, key, ReasonOutdated)
			r.Reason = ReasonIncorrect
			return r
		}, ErrInvalidSignature, ""},
		{"reason added", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.Reason = ReasonOther
			return r
		}, ErrInvalidSignature, ""},
		{"revokedAt changed", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.RevokedAt--
			return r
		}, ErrInvalidSignature, ""},
		{"bad sig", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.Signature.Sig = "AAAA"
			return r
		}, ErrInvalidSignature, ""},
		{"algorithm", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.Signature.Algorithm = "rsa"
			return r
		}, ErrInvalidSignature, "algorithm"},
		{"stale", func() *Revocation {
			r, _ := SignRevocation(key, "a", "", testNow.Add(-2*time.Hour))
			return r
		}, ErrTimestamp, "ago"},
		{"future", func() *Revocation {
			r, _ := SignRevocation(key, "a", "", testNow.Add(2*time.Hour))
			return r
		}, ErrTimestamp, "future"},
		{"wrong type", func() *Revocation {
			r := mustRevoke(t, key, "")
			r.Type = "Revocation"
			return r
		}, ErrInvalid, "type"},
		{"nil", func() *Revocation { return nil }, ErrInvalid, "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, VerifyRevocation(tt.make(), VerifyOptions{Now: testNow}), tt.target, tt.msg)
		})
	}
	t.Run("stale with AllowOld", func(t *testing.T) {
		r, _ := SignRevocation(key, "a", "", testNow.Add(-200*time.Hour))
		if err := VerifyRevocation(r, VerifyOptions{Now: testNow, AllowOld: true}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDecodeRevocationRejects(t *testing.T) {
	good, err := json.Marshal(mustRevoke(t, testKey(1), ReasonOutdated))
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	tests := []struct{ name, in, msg string }{
		{"mis-cased field", replaceOnce(t, g, `"nodeId"`, `"NodeId"`), `unknown field "NodeId"`},
		{"field twice in two cases", replaceOnce(t, g, `"nodeId"`, `"NODEID":"x","nodeId"`), `unknown field "NODEID"`},
		{"mis-cased signature field", replaceOnce(t, g, `"sig"`, `"Sig"`), `revocation.signature: unknown field "Sig"`},
		{"unknown field", replaceOnce(t, g, `"type"`, `"extra":1,"type"`), `unknown field "extra"`},
		{"missing nodeId", replaceOnce(t, g, `"nodeId":`, `"x":`), `unknown field "x"`},
		{"missing lessonId", `{"type":"revocation","nodeId":"x","revokedAt":1,"signature":{"algorithm":"","publicKey":"","sig":""}}`, "revocation.lessonId is missing"},
		{"missing signature field", replaceOnce(t, g, `"algorithm":"ed25519",`, ``), "revocation.signature.algorithm is missing"},
		{"null reason", replaceOnce(t, g, `"reason":"outdated"`, `"reason":null`), "revocation.reason: want a string"},
		{"empty reason", replaceOnce(t, g, `"reason":"outdated"`, `"reason":""`), "revocation.reason: empty"},
		{"null nodeId", replaceOnce(t, g, `"nodeId":"`+testNodeID(t, testKey(1))+`"`, `"nodeId":null`), "revocation.nodeId: want a string"},
		{"revokedAt string", replaceOnce(t, g, `"revokedAt":1767225600000`, `"revokedAt":"1767225600000"`), "revocation.revokedAt"},
		{"revokedAt fraction", replaceOnce(t, g, `"revokedAt":1767225600000`, `"revokedAt":1767225600000.5`), "revocation.revokedAt"},
		{"revokedAt beyond 2^53", replaceOnce(t, g, `"revokedAt":1767225600000`, `"revokedAt":9007199254740993`), "2^53"},
		{"revokedAt zero", replaceOnce(t, g, `"revokedAt":1767225600000`, `"revokedAt":0`), "revokedAt"},
		{"signature null", `{"type":"revocation","lessonId":"a","nodeId":"x","revokedAt":1,"signature":null}`, "revocation.signature: must be a JSON object"},
		{"wrong type", replaceOnce(t, g, `"type":"revocation"`, `"type":"lesson"`), "type"},
		{"bad reason", replaceOnce(t, g, `"reason":"outdated"`, `"reason":"meh"`), "reason"},
		{"not an object", `"revocation"`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"duplicate key", replaceOnce(t, g, `"type"`, `"type":"revocation","type"`), "Duplicate key"},
		{"trailing data", g + `{}`, "not I-JSON"},
		{"invalid utf-8", replaceOnce(t, g, `"outdated"`, "\"\xc3\""), "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRevocation([]byte(tt.in))
			if r != nil {
				t.Fatalf("accepted %s", tt.in)
			}
			wantErr(t, err, ErrInvalid, tt.msg)
			// json.Unmarshal is held to the same structural rules.
			var v struct{ R Revocation }
			switch tt.name {
			case "wrong type", "bad reason", "revokedAt zero":
				return // rules, not structure: DecodeRevocation's job
			}
			if err := json.Unmarshal([]byte(`{"R":`+tt.in+`}`), &v); err == nil {
				t.Fatalf("json.Unmarshal accepted %s", tt.in)
			}
		})
	}
}
