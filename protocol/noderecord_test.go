package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func mustNodeRecord(t testing.TB, b byte, issued time.Time) *NodeRecord {
	t.Helper()
	r, err := SignNodeRecord(testKey(b), []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"},
		[]string{"Rust", "go"}, []string{RoleDirectory}, issued, time.Hour)
	if err != nil {
		t.Fatalf("SignNodeRecord: %v", err)
	}
	return r
}

func TestNodeRecordSignVerifyRoundTrip(t *testing.T) {
	r := mustNodeRecord(t, 1, testNow)
	if r.NodeID != testNodeID(t, testKey(1)) {
		t.Fatalf("nodeId %s, want the signer's %s", r.NodeID, testNodeID(t, testKey(1)))
	}
	if got := strings.Join(r.Topics, ","); got != "rust,go" {
		t.Fatalf("topics %q, want lower-cased rust,go", got)
	}
	if !r.HasRole(RoleDirectory) || r.HasRole(RoleRelay) {
		t.Fatalf("roles %v", r.Roles)
	}
	if err := VerifyNodeRecord(r, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("VerifyNodeRecord: %v", err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeNodeRecord(b)
	if err != nil {
		t.Fatalf("DecodeNodeRecord: %v", err)
	}
	if err := VerifyNodeRecord(d, VerifyOptions{Now: testNow.Add(59 * time.Minute)}); err != nil {
		t.Fatalf("decoded record does not verify: %v", err)
	}
	// An independent verifier: canonical JSON of the members but signature.
	m := rawMembers(t, b)
	delete(m, "signature")
	if !rawVerify(t, m, d.PublicKey, d.Signature) {
		t.Fatal("signature does not verify over the raw bytes")
	}
}

func TestNodeRecordRejected(t *testing.T) {
	good := mustNodeRecord(t, 1, testNow)
	other := mustNodeRecord(t, 2, testNow)
	cases := []struct {
		name   string
		mutate func(r *NodeRecord)
		now    time.Time
		target error
		msg    string
	}{
		{"another node's key", func(r *NodeRecord) { r.PublicKey = other.PublicKey }, testNow, ErrKeyMismatch, ""},
		{"another node's signature", func(r *NodeRecord) { r.NodeID, r.PublicKey = other.NodeID, other.PublicKey }, testNow, ErrInvalidSignature, "does not match"},
		{"changed topics", func(r *NodeRecord) { r.Topics = []string{"rust"} }, testNow, ErrInvalidSignature, "does not match"},
		{"later issuedAt", func(r *NodeRecord) { r.IssuedAt++ }, testNow, ErrInvalidSignature, "does not match"},
		{"garbage signature", func(r *NodeRecord) { r.Signature = "!!" }, testNow, ErrInvalidSignature, "not a base64"},
		{"expired", func(*NodeRecord) {}, testNow.Add(time.Hour), ErrTimestamp, "expired"},
		{"from the future", func(*NodeRecord) {}, testNow.Add(-2 * time.Hour), ErrTimestamp, "future"},
		{"version", func(r *NodeRecord) { r.Version = "mesh/9" }, testNow, ErrUnsupportedVersion, ""},
		{"expires before issued", func(r *NodeRecord) { r.ExpiresAt = r.IssuedAt }, testNow, ErrInvalid, "expiresAt"},
		{"valid too long", func(r *NodeRecord) { r.ExpiresAt = r.IssuedAt + int64(25*time.Hour/time.Millisecond) }, testNow, ErrInvalid, "limit"},
		{"bad addr", func(r *NodeRecord) { r.Addrs = []string{"/ip4/999.1.1.1/tcp/1"} }, testNow, ErrInvalid, "not a multiaddr"},
		{"upper-case topic", func(r *NodeRecord) { r.Topics = []string{"Rust"} }, testNow, ErrInvalid, "topic"},
		{"bad role", func(r *NodeRecord) { r.Roles = []string{"dir ectory"} }, testNow, ErrInvalid, "role"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := *good
			r.Addrs, r.Topics, r.Roles = append([]string{}, good.Addrs...), append([]string{}, good.Topics...), append([]string{}, good.Roles...)
			c.mutate(&r)
			err := VerifyNodeRecord(&r, VerifyOptions{Now: c.now})
			wantErr(t, err, c.target, c.msg)
		})
	}
	if err := VerifyNodeRecord(nil, VerifyOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil record: %v", err)
	}
}

func TestSignNodeRecordRejectsBadInput(t *testing.T) {
	for name, f := range map[string]func() error{
		"zero ttl": func() error {
			_, err := SignNodeRecord(testKey(1), nil, nil, nil, testNow, 0)
			return err
		},
		"ttl over the limit": func() error {
			_, err := SignNodeRecord(testKey(1), nil, nil, nil, testNow, MaxNodeRecordTTL+time.Second)
			return err
		},
		"bad key": func() error {
			_, err := SignNodeRecord(testKey(1)[:10], nil, nil, nil, testNow, time.Hour)
			return err
		},
		"too many addrs": func() error {
			_, err := SignNodeRecord(testKey(1), make([]string, 33), nil, nil, testNow, time.Hour)
			return err
		},
		"bad topic": func() error {
			_, err := SignNodeRecord(testKey(1), nil, []string{"a/b"}, nil, testNow, time.Hour)
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
}

func TestDecodeNodeRecordStrict(t *testing.T) {
	r := mustNodeRecord(t, 1, testNow)
	b, _ := r.Encode()
	s := string(b)
	issued := fmt.Sprintf(`"issuedAt":%d`, r.IssuedAt)
	for name, in := range map[string]string{
		"unknown field":   replaceOnce(t, s, `"roles":`, `"extra":1,"roles":`),
		"case":            replaceOnce(t, s, `"nodeId":`, `"NodeId":`),
		"null topics":     replaceOnce(t, s, `"topics":["rust","go"]`, `"topics":null`),
		"string issuedAt": replaceOnce(t, s, issued, `"issuedAt":"1"`),
		"missing":         `{"version":"mesh/1.0"}`,
		"not an object":   `[]`,
		"duplicate key":   replaceOnce(t, s, `"roles":`, `"roles":[],"roles":`),
	} {
		if _, err := DecodeNodeRecord([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	big := bytes.Repeat([]byte(" "), MaxNodeRecordSize+1)
	if _, err := DecodeNodeRecord(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize: error %v, want ErrTooLarge", err)
	}
}

func FuzzDecodeNodeRecord(f *testing.F) {
	for i, addrs := range [][]string{nil, {"/ip4/1.2.3.4/tcp/5", "/dns4/x/tcp/443/wss", "/ip6/::1/udp/4001/quic-v1"}} {
		r, err := SignNodeRecord(testKey(1), addrs, []string{"rust"}, []string{RoleDirectory}, testNow, time.Duration(i+1)*time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"version":"mesh/1.0","nodeId":"","publicKey":"","addrs":["/ip4/1.2.3.4/tcp/x"],"topics":[],"roles":[],"issuedAt":1,"expiresAt":2,"signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeNodeRecord(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sameCanonical(t, data, out)
		r2, err := DecodeNodeRecord(out)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, out)
		}
		opts := VerifyOptions{Now: time.UnixMilli(r.IssuedAt)}
		if err := VerifyNodeRecord(r, opts); err == nil {
			if err := VerifyNodeRecord(r2, opts); err != nil {
				t.Fatalf("verified, but not after re-encoding: %v", err)
			}
			m := rawMembers(t, data)
			delete(m, "signature")
			if !rawVerify(t, m, r.PublicKey, r.Signature) {
				t.Fatalf("verifies here but not over the raw bytes:\n%s", data)
			}
		}
	})
}
