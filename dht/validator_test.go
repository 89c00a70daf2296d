package dht

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/meshprotocol/mesh/protocol"
)

var testNow = time.UnixMilli(1767225600000) // 2026-01-01T00:00:00Z

func edKey(t testing.TB) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.NodeID(sk.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return sk, id
}

func signRecord(t testing.TB, sk ed25519.PrivateKey, topics []string, issued time.Time, ttl time.Duration) []byte {
	t.Helper()
	r, err := protocol.SignNodeRecord(sk, []string{"/ip4/127.0.0.1/tcp/4001"}, topics, nil, issued, ttl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidatorValidate(t *testing.T) {
	v := NodeRecordValidator{Now: func() time.Time { return testNow }}
	sk, id := edKey(t)
	otherSK, otherID := edKey(t)
	good := signRecord(t, sk, []string{"rust"}, testNow, time.Hour)
	if err := v.Validate(NodeKey(id), good); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	cases := []struct {
		name   string
		key    string
		value  []byte
		target error
	}{
		{"signed by another node, under the victim's key", NodeKey(id), signRecord(t, otherSK, nil, testNow, time.Hour), protocol.ErrKeyMismatch},
		{"valid record under another node's key", NodeKey(otherID), good, protocol.ErrKeyMismatch},
		{"expired", NodeKey(id), signRecord(t, sk, nil, testNow.Add(-2*time.Hour), time.Hour), protocol.ErrTimestamp},
		{"issued in the future", NodeKey(id), signRecord(t, sk, nil, testNow.Add(2*time.Hour), time.Hour), protocol.ErrTimestamp},
		{"tampered", NodeKey(id), []byte(strings.Replace(string(good), `"rust"`, `"go"`, 1)), protocol.ErrInvalidSignature},
		{"garbage", NodeKey(id), []byte("\x00\xff{"), protocol.ErrInvalid},
		{"empty", NodeKey(id), nil, protocol.ErrInvalid},
		{"oversize", NodeKey(id), make([]byte, protocol.MaxNodeRecordSize+1), protocol.ErrTooLarge},
		{"other namespace", "/pk/" + string(id), good, protocol.ErrInvalid},
		{"not a node id", "/mesh-node/QmNotAPeer", good, protocol.ErrInvalid},
		{"non-canonical id", "/mesh-node/" + strings.ToLower(id.String()), good, protocol.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Validate(c.key, c.value)
			if !errors.Is(err, c.target) {
				t.Fatalf("Validate = %v, want %v", err, c.target)
			}
		})
	}
}

func TestValidatorSelect(t *testing.T) {
	v := NodeRecordValidator{Now: func() time.Time { return testNow }}
	sk, id := edKey(t)
	otherSK, _ := edKey(t)
	key := NodeKey(id)
	old := signRecord(t, sk, []string{"old"}, testNow.Add(-10*time.Minute), time.Hour)
	newer := signRecord(t, sk, []string{"new"}, testNow.Add(-time.Minute), time.Hour)
	longer := signRecord(t, sk, []string{"new"}, testNow.Add(-time.Minute), 2*time.Hour)
	forgedNewest := signRecord(t, otherSK, []string{"evil"}, testNow, time.Hour)
	expiredNewest := signRecord(t, sk, []string{"late"}, testNow.Add(-2*time.Hour), time.Hour)

	for _, c := range []struct {
		name   string
		values [][]byte
		want   int
	}{
		{"newest issuedAt wins, either order", [][]byte{old, newer}, 1},
		{"newest issuedAt wins, either order (2)", [][]byte{newer, old}, 0},
		{"a forged record never wins", [][]byte{forgedNewest, old}, 1},
		{"an expired record never wins", [][]byte{expiredNewest, old}, 1},
		{"tie on issuedAt: the later expiry", [][]byte{newer, longer}, 1},
		{"identical: the first", [][]byte{newer, newer}, 0},
		{"garbage skipped", [][]byte{[]byte("x"), nil, newer}, 2},
	} {
		got, err := v.Select(key, c.values)
		if err != nil || got != c.want {
			t.Errorf("%s: Select = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	if _, err := v.Select(key, [][]byte{forgedNewest, []byte("x")}); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("Select with no valid value = %v, want ErrInvalid", err)
	}
	if _, err := v.Select(key, nil); err == nil {
		t.Error("Select of nothing succeeded")
	}
}

func TestKeys(t *testing.T) {
	if TopicKey("Rust") != TopicKey("rust") {
		t.Error("topic keys are case-sensitive")
	}
	if TopicKey("rust") == TopicKey("go") || TopicKey("directory") == RoleKey("directory") {
		t.Error("distinct names share a provider key")
	}
	// The key is the SHA-256 of "mesh/topic/rust" as a CIDv1 raw: stable
	// across releases, since every node must derive the same one.
	k := TopicKey("rust")
	dec, err := mh.Decode(k.Hash())
	sum := sha256.Sum256([]byte("mesh/topic/rust"))
	if err != nil || k.Version() != 1 || k.Type() != cid.Raw || dec.Code != mh.SHA2_256 || !bytes.Equal(dec.Digest, sum[:]) {
		t.Errorf("TopicKey(rust) = %s, want CIDv1 raw sha2-256 of mesh/topic/rust", k)
	}
	if got, want := k.String(), "bafkreifhmpp4fbs35zf6mp6xz6f5lelufrcck4iyazkbyxaaeiwl6ahnvy"; got != want {
		t.Errorf("TopicKey(rust) = %s, want %s (docs/dht.md)", got, want)
	}
	_, id := edKey(t)
	if got := NodeKey(id); got != "/mesh-node/"+id.String() {
		t.Errorf("NodeKey = %s", got)
	}
	if p, err := parseNodeKey(NodeKey(id)); err != nil || p != id {
		t.Errorf("parseNodeKey = %s, %v", p, err)
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "Server": ModeServer, "client": ModeClient} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("dht"); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("ParseMode(dht) = %v", err)
	}
}

// FuzzValidator: whatever a peer sends, Validate and Select answer without
// panicking, Select never picks a value Validate refuses, and a valid value
// decodes to the record of the key's node.
func FuzzValidator(f *testing.F) {
	sk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	s, _ := protocol.NodeID(sk.Public().(ed25519.PublicKey))
	id, _ := peer.Decode(s)
	good := signRecord(f, sk, []string{"rust"}, testNow, time.Hour)
	f.Add(NodeKey(id), good, []byte("x"))
	f.Add(NodeKey(id), signRecord(f, sk, nil, testNow.Add(-time.Minute), time.Hour), good)
	f.Add("/mesh-node/x", []byte(`{}`), []byte(`null`))
	f.Add("/pk/"+string(id), good, good)
	v := NodeRecordValidator{Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, key string, a, b []byte) {
		errA, errB := v.Validate(key, a), v.Validate(key, b)
		i, err := v.Select(key, [][]byte{a, b})
		switch {
		case errA != nil && errB != nil:
			if err == nil {
				t.Fatalf("Select picked %d of two invalid values", i)
			}
		case err != nil:
			t.Fatalf("Select failed with a valid value: %v", err)
		case i == 0 && errA != nil, i == 1 && errB != nil:
			t.Fatalf("Select picked invalid value %d", i)
		}
		if errA == nil {
			r, err := v.decode(key, a)
			if err != nil || NodeKey(mustDecode(t, r.NodeID)) != key {
				t.Fatalf("valid value for %q is the record of %v (%v)", key, r, err)
			}
		}
	})
}

func mustDecode(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
