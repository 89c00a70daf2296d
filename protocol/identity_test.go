package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func mustIdentity(t testing.TB, key ed25519.PrivateKey) *Identity {
	t.Helper()
	d, err := SignIdentity(key, []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}, []string{CapabilitySearch, CapabilityFetch}, testNow)
	if err != nil {
		t.Fatalf("SignIdentity: %v", err)
	}
	return d
}

func TestIdentityRoundTrip(t *testing.T) {
	key := testKey(1)
	for _, tt := range []struct {
		name        string
		addrs, caps []string
	}{
		{"full", []string{"/ip4/1.2.3.4/tcp/1"}, []string{CapabilityStore, CapabilityRelay}},
		{"nil slices", nil, nil},
		{"empty slices", []string{}, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := SignIdentity(key, tt.addrs, tt.caps, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyIdentity(d, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			if d.Version != Version || d.NodeID != testNodeID(t, key) {
				t.Fatalf("identity %+v", d)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeIdentity(b)
			if err != nil {
				t.Fatalf("DecodeIdentity(%s): %v", b, err)
			}
			if err := VerifyIdentity(got, VerifyOptions{Now: testNow.Add(1000 * time.Hour)}); err != nil {
				t.Fatalf("an old identity document is still valid: %v", err)
			}
		})
	}
	// Nil slices in a hand-built document encode as [] (as they are signed).
	b, _ := json.Marshal(Identity{})
	if string(b) != `{"version":"","nodeId":"","publicKey":"","addrs":[],"capabilities":[],"issuedAt":0,"signature":""}` {
		t.Fatalf("zero Identity encodes as %s", b)
	}
}

func TestVerifyIdentityRejects(t *testing.T) {
	key, other := testKey(1), testKey(2)
	tests := []struct {
		name   string
		tamper func(d *Identity)
		target error
		msg    string
	}{
		{"addr added", func(d *Identity) { d.Addrs = append(d.Addrs, "/ip4/6.6.6.6/tcp/1") }, ErrInvalidSignature, ""},
		{"addrs reordered", func(d *Identity) { d.Addrs[0], d.Addrs[1] = d.Addrs[1], d.Addrs[0] }, ErrInvalidSignature, ""},
		{"capability", func(d *Identity) { d.Capabilities = []string{CapabilityDirectory} }, ErrInvalidSignature, ""},
		{"issuedAt", func(d *Identity) { d.IssuedAt++ }, ErrInvalidSignature, ""},
		{"signature", func(d *Identity) { d.Signature = d.Signature[4:] }, ErrInvalidSignature, ""},
		{"nodeId of another key", func(d *Identity) { d.NodeID = testNodeID(t, other) }, ErrKeyMismatch, ""},
		{"publicKey of another key", func(d *Identity) {
			d.PublicKey = base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
		}, ErrKeyMismatch, ""},
		{"another key's whole identity", func(d *Identity) {
			d.PublicKey = base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
			d.NodeID = testNodeID(t, other)
		}, ErrInvalidSignature, ""},
		{"version", func(d *Identity) { d.Version = "mesh/2.0" }, ErrUnsupportedVersion, "mesh/2.0"},
		{"future", func(d *Identity) { d.IssuedAt = testNow.Add(2 * time.Hour).UnixMilli() }, ErrInvalidSignature, ""},
		{"empty addr", func(d *Identity) { d.Addrs = []string{""} }, ErrInvalid, "empty address"},
		{"bad capability", func(d *Identity) { d.Capabilities = []string{"a b"} }, ErrInvalid, "capability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustIdentity(t, key)
			tt.tamper(d)
			wantErr(t, VerifyIdentity(d, VerifyOptions{Now: testNow}), tt.target, tt.msg)
		})
	}
	t.Run("issued in the future", func(t *testing.T) {
		d, err := SignIdentity(key, nil, nil, testNow.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, VerifyIdentity(d, VerifyOptions{Now: testNow}), ErrTimestamp, "future")
	})
	wantErr(t, VerifyIdentity(nil, VerifyOptions{}), ErrInvalid, "nil")
}

func TestDecodeIdentityRejects(t *testing.T) {
	good, err := json.Marshal(mustIdentity(t, testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	tests := []struct {
		name, in string
		target   error
		msg      string
	}{
		{"mis-cased field", replaceOnce(t, g, `"nodeId"`, `"NodeId"`), ErrInvalid, `unknown field "NodeId"`},
		{"field twice in two cases", replaceOnce(t, g, `"nodeId"`, `"NODEID":"x","nodeId"`), ErrInvalid, `unknown field "NODEID"`},
		{"unknown field", replaceOnce(t, g, `"version"`, `"x":1,"version"`), ErrInvalid, `unknown field "x"`},
		{"missing addrs", replaceOnce(t, g, `"addrs":["/ip4/127.0.0.1/tcp/4001","/ip4/127.0.0.1/udp/4001/quic-v1"],`, ``), ErrInvalid, "identity.addrs is missing"},
		{"null addrs", replaceOnce(t, g, `"addrs":["/ip4/127.0.0.1/tcp/4001","/ip4/127.0.0.1/udp/4001/quic-v1"]`, `"addrs":null`), ErrInvalid, "identity.addrs: want an array of strings"},
		{"null addr", replaceOnce(t, g, `"/ip4/127.0.0.1/tcp/4001"`, `null`), ErrInvalid, "identity.addrs: want an array of strings"},
		{"null capabilities", replaceOnce(t, g, `"capabilities":["search","fetch"]`, `"capabilities":null`), ErrInvalid, "identity.capabilities"},
		{"issuedAt string", replaceOnce(t, g, `"issuedAt":1767225600000`, `"issuedAt":"1767225600000"`), ErrInvalid, "identity.issuedAt"},
		{"issuedAt beyond 2^53", replaceOnce(t, g, `"issuedAt":1767225600000`, `"issuedAt":1e16`), ErrInvalid, "2^53"},
		{"signature null", g[:strings.Index(g, `"signature":`)] + `"signature":null}`, ErrInvalid, "identity.signature: want a string"},
		{"unknown version", replaceOnce(t, g, `"mesh/1.0"`, `"mesh/9.9"`), ErrUnsupportedVersion, `"mesh/9.9"`},
		{"null", `null`, ErrInvalid, "identity: must be a JSON object"},
		{"array", `[]`, ErrInvalid, "identity: must be a JSON object"},
		{"duplicate", replaceOnce(t, g, `"version"`, `"version":"mesh/1.0","version"`), ErrInvalid, "Duplicate key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeIdentity([]byte(tt.in))
			if d != nil {
				t.Fatalf("accepted %s", tt.in)
			}
			wantErr(t, err, tt.target, tt.msg)
		})
	}
}
