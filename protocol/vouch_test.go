package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

const testTTL = 7 * 24 * time.Hour

func mustVouch(t testing.TB, key ed25519.PrivateKey, trusts ...string) *Vouch {
	t.Helper()
	v, err := SignVouch(key, trusts, testNow, testTTL)
	if err != nil {
		t.Fatalf("SignVouch: %v", err)
	}
	return v
}

func mustReferral(t testing.TB, key ed25519.PrivateKey, subject, note string) *Referral {
	t.Helper()
	r, err := SignReferral(key, subject, note, testNow)
	if err != nil {
		t.Fatalf("SignReferral: %v", err)
	}
	return r
}

func TestVouchRoundTrip(t *testing.T) {
	key := testKey(1)
	b, c := testNodeID(t, testKey(2)), testNodeID(t, testKey(3))
	for _, tt := range []struct {
		name   string
		trusts []string
	}{
		{"nil", nil},
		{"empty", []string{}},
		{"two", []string{c, b}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVouch(t, key, tt.trusts...)
			if v.NodeID != testNodeID(t, key) || v.Type != TypeVouch {
				t.Fatalf("vouch = %+v", v)
			}
			if !slices.IsSorted(v.Trusts) || len(v.Trusts) != len(tt.trusts) {
				t.Fatalf("trusts = %v, want %v sorted", v.Trusts, tt.trusts)
			}
			if err := VerifyVouch(v, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(enc), `"trusts":[`) {
				t.Fatalf("trusts not encoded as an array: %s", enc)
			}
			d, err := DecodeVouch(enc)
			if err != nil {
				t.Fatalf("DecodeVouch(%s): %v", enc, err)
			}
			if err := VerifyVouch(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Trusts, v.Trusts) || d.Signature != v.Signature || d.IssuedAt != v.IssuedAt || d.ExpiresAt != v.ExpiresAt {
				t.Fatalf("decoded %+v, want %+v", d, v)
			}
			m := rawMembers(t, enc)
			delete(m, "signature")
			if !rawVerify(t, m, v.Signature.PublicKey, v.Signature.Sig) {
				t.Fatal("signature does not verify over the raw bytes")
			}
		})
	}
}

func TestVouchTimes(t *testing.T) {
	v := mustVouch(t, testKey(1), testNodeID(t, testKey(2)))
	for _, tt := range []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"at issue", testNow, true},
		{"long after issue, before expiry", testNow.Add(testTTL - time.Millisecond), true},
		{"at expiry", testNow.Add(testTTL), false},
		{"after expiry", testNow.Add(testTTL + time.Hour), false},
		{"issued within the window ahead", testNow.Add(-30 * time.Minute), true},
		{"issued beyond the window ahead", testNow.Add(-2 * time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyVouch(v, VerifyOptions{Now: tt.now})
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok {
				wantErr(t, err, ErrTimestamp, "")
			}
		})
	}
	if v.Expired(testNow) || !v.Expired(testNow.Add(testTTL)) {
		t.Fatal("Expired disagrees with ExpiresAt")
	}
}

func TestSignVouchRejects(t *testing.T) {
	key := testKey(1)
	self := testNodeID(t, key)
	other := testNodeID(t, testKey(2))
	many := make([]string, MaxVouchEntries+1)
	for i := range many {
		many[i] = other
	}
	for _, tt := range []struct {
		name   string
		trusts []string
		ttl    time.Duration
		msg    string
	}{
		{"not a node id", []string{"bob"}, testTTL, "trusts[0]"},
		{"non-canonical node id", []string{strings.ToLower(other)}, testTTL, "trusts[0]"},
		{"itself", []string{self}, testTTL, "voucher itself"},
		{"duplicate", []string{other, other}, testTTL, "duplicate"},
		{"too many", many, testTTL, "limit"},
		{"zero ttl", nil, 0, "ttl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignVouch(key, tt.trusts, testNow, tt.ttl)
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
	_, err := SignVouch(key[:10], nil, testNow, testTTL)
	wantErr(t, err, ErrInvalid, "private key")
}

func TestVerifyVouchRejects(t *testing.T) {
	key, attacker := testKey(1), testKey(2)
	victim := testNodeID(t, key)
	friend, sybil := testNodeID(t, testKey(3)), testNodeID(t, testKey(4))
	attackerPub := base64.StdEncoding.EncodeToString(attacker.Public().(ed25519.PublicKey))
	tests := []struct {
		name   string
		make   func() *Vouch
		target error
		msg    string
	}{
		{"signed by the wrong key, claiming the victim's nodeId", func() *Vouch {
			v := &Vouch{Type: TypeVouch, NodeID: victim, Trusts: []string{sybil}, IssuedAt: testNow.UnixMilli(), ExpiresAt: testNow.Add(testTTL).UnixMilli()}
			p, _ := v.signingPayload()
			v.Signature = RevocationSignature{AlgorithmEd25519, attackerPub, base64.StdEncoding.EncodeToString(ed25519.Sign(attacker, p))}
			return v
		}, ErrKeyMismatch, "nodeId"},
		{"victim's key claimed, attacker's signature", func() *Vouch {
			v := mustVouch(t, attacker, sybil)
			v.NodeID = victim
			v.Signature.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
			return v
		}, ErrInvalidSignature, ""},
		{"entry added", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.Trusts = append(v.Trusts, sybil)
			return v
		}, ErrInvalidSignature, ""},
		{"entry replaced", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.Trusts[0] = sybil
			return v
		}, ErrInvalidSignature, ""},
		{"expiry extended", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.ExpiresAt += 1
			return v
		}, ErrInvalidSignature, ""},
		{"bad sig", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.Signature.Sig = "AAAA"
			return v
		}, ErrInvalidSignature, ""},
		{"algorithm", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.Signature.Algorithm = "rsa"
			return v
		}, ErrInvalidSignature, "algorithm"},
		{"type", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.Type = "referral"
			return v
		}, ErrInvalid, "type"},
		{"expires before issue", func() *Vouch {
			v := mustVouch(t, key, friend)
			v.ExpiresAt = v.IssuedAt
			return v
		}, ErrInvalid, "expiresAt"},
		{"nil", func() *Vouch { return nil }, ErrInvalid, "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, VerifyVouch(tt.make(), VerifyOptions{Now: testNow}), tt.target, tt.msg)
		})
	}
}

func TestDecodeVouchRejects(t *testing.T) {
	v := mustVouch(t, testKey(1), testNodeID(t, testKey(2)))
	good, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for _, tt := range []struct {
		name, data string
		target     error
		msg        string
	}{
		{"unknown field", replaceOnce(t, s, `"type"`, `"extra":1,"type"`), ErrInvalid, "unknown field"},
		{"case", replaceOnce(t, s, `"nodeId"`, `"nodeID"`), ErrInvalid, "unknown field"},
		{"missing expiresAt", replaceOnce(t, s, `"expiresAt":`+jsonInt(v.ExpiresAt)+`,`, ``), ErrInvalid, "expiresAt is missing"},
		{"null trusts", replaceOnce(t, s, `"trusts":["`+v.Trusts[0]+`"]`, `"trusts":null`), ErrInvalid, "trusts"},
		{"number in trusts", replaceOnce(t, s, `"trusts":["`+v.Trusts[0]+`"]`, `"trusts":[1]`), ErrInvalid, "trusts"},
		{"bad entry", replaceOnce(t, s, `"trusts":["`+v.Trusts[0]+`"]`, `"trusts":["x"]`), ErrInvalid, "trusts[0]"},
		{"duplicate key", replaceOnce(t, s, `"type":"vouch"`, `"type":"vouch","type":"vouch"`), ErrInvalid, ""},
		{"float time", replaceOnce(t, s, `"issuedAt":`+jsonInt(v.IssuedAt), `"issuedAt":1.5`), ErrInvalid, "issuedAt"},
		{"not an object", `[]`, ErrInvalid, "object"},
		{"too large", `{"x":"` + strings.Repeat("a", MaxVouchSize) + `"}`, ErrTooLarge, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeVouch([]byte(tt.data))
			wantErr(t, err, tt.target, tt.msg)
		})
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestReferralRoundTrip(t *testing.T) {
	key := testKey(1)
	subject := testNodeID(t, testKey(2))
	for _, note := range []string{"", "runs the team's build cache \u00e9 🦀"} {
		t.Run("note="+note, func(t *testing.T) {
			r := mustReferral(t, key, subject, note)
			if err := VerifyReferral(r, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if note == "" && strings.Contains(string(b), "note") {
				t.Fatalf("empty note encoded: %s", b)
			}
			d, err := DecodeReferral(b)
			if err != nil {
				t.Fatalf("DecodeReferral(%s): %v", b, err)
			}
			if *d != *r {
				t.Fatalf("decoded %+v, want %+v", d, r)
			}
			if err := VerifyReferral(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			m := rawMembers(t, b)
			delete(m, "signature")
			if !rawVerify(t, m, r.Signature.PublicKey, r.Signature.Sig) {
				t.Fatal("signature does not verify over the raw bytes")
			}
		})
	}
}

func TestReferralRejects(t *testing.T) {
	key, attacker := testKey(1), testKey(2)
	subject := testNodeID(t, testKey(3))
	_, err := SignReferral(key, "bob", "", testNow)
	wantErr(t, err, ErrInvalid, "subject")
	_, err = SignReferral(key, subject, strings.Repeat("x", MaxNoteLength+1), testNow)
	wantErr(t, err, ErrInvalid, "note")
	_, err = SignReferral(key, subject, "\xff", testNow)
	wantErr(t, err, ErrInvalid, "UTF-8")

	for _, tt := range []struct {
		name   string
		make   func() *Referral
		target error
	}{
		{"note changed", func() *Referral {
			r := mustReferral(t, key, subject, "a")
			r.Note = "b"
			return r
		}, ErrInvalidSignature},
		{"subject changed", func() *Referral {
			r := mustReferral(t, key, subject, "")
			r.Subject = testNodeID(t, testKey(4))
			return r
		}, ErrInvalidSignature},
		{"wrong key", func() *Referral {
			r := mustReferral(t, attacker, subject, "")
			r.NodeID = testNodeID(t, key)
			return r
		}, ErrKeyMismatch},
		{"stale", func() *Referral {
			r, _ := SignReferral(key, subject, "", testNow.Add(-2*time.Hour))
			return r
		}, ErrTimestamp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, VerifyReferral(tt.make(), VerifyOptions{Now: testNow}), tt.target, "")
		})
	}

	good, _ := json.Marshal(mustReferral(t, key, subject, "hi"))
	s := string(good)
	for _, tt := range []struct {
		name, data string
		target     error
	}{
		{"empty note", replaceOnce(t, s, `"note":"hi"`, `"note":""`), ErrInvalid},
		{"null note", replaceOnce(t, s, `"note":"hi"`, `"note":null`), ErrInvalid},
		{"unknown field", replaceOnce(t, s, `"note":"hi"`, `"Note":"hi"`), ErrInvalid},
		{"too large", `{"note":"` + strings.Repeat("a", MaxReferralSize) + `"}`, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeReferral([]byte(tt.data))
			wantErr(t, err, tt.target, "")
		})
	}
}

func trustFuzzSeeds(f *testing.F) (vouches, referrals [][]byte) {
	key := testKey(1)
	ids := []string{testNodeID(f, testKey(2)), testNodeID(f, testKey(3))}
	for _, trusts := range [][]string{nil, ids[:1], ids} {
		v, err := SignVouch(key, trusts, testNow, testTTL)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(v)
		vouches = append(vouches, b)
	}
	for _, note := range []string{"", "x \u2028 é"} {
		r, err := SignReferral(key, ids[0], note, testNow)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(r)
		referrals = append(referrals, b)
	}
	return
}

func FuzzDecodeVouch(f *testing.F) {
	vouches, _ := trustFuzzSeeds(f)
	for _, b := range vouches {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeVouch(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		v2, err := DecodeVouch(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		if !slices.Equal(v.Trusts, v2.Trusts) || v.Signature != v2.Signature || v.NodeID != v2.NodeID || v.IssuedAt != v2.IssuedAt || v.ExpiresAt != v2.ExpiresAt {
			t.Fatalf("round trip changed the record: %+v vs %+v", v, v2)
		}
		opts := VerifyOptions{Now: testNow}
		if err := VerifyVouch(v, opts); err == nil {
			if err := VerifyVouch(v2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			m := rawMembers(t, data)
			delete(m, "signature")
			if !rawVerify(t, m, v.Signature.PublicKey, v.Signature.Sig) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		}
	})
}

func FuzzDecodeReferral(f *testing.F) {
	_, referrals := trustFuzzSeeds(f)
	for _, b := range referrals {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReferral(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		r2, err := DecodeReferral(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		if *r2 != *r {
			t.Fatalf("round trip changed the record: %+v vs %+v", r, r2)
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		if err := VerifyReferral(r, opts); err == nil {
			if err := VerifyReferral(r2, opts); err != nil {
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
