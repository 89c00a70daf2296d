package protocol

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestNodeIDAndPublicKeyOf(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	id, err := NodeID(pub)
	if err != nil {
		t.Fatal(err)
	}
	// Pinned: the libp2p peer ID of the key with seed 0x01*32 (the interop
	// verifier derives the same string independently).
	if id != "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5" {
		t.Fatalf("NodeID = %s", id)
	}
	got, err := PublicKeyOf(id)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("PublicKeyOf = %x, %v", got, err)
	}
	if _, err := NodeID(pub[:31]); err == nil {
		t.Fatal("NodeID accepted a 31-byte key")
	}

	pid, _ := peer.Decode(id)
	_, secp, err := crypto.GenerateSecp256k1Key(strings.NewReader(strings.Repeat("x", 64)))
	if err != nil {
		t.Fatal(err)
	}
	secpID, _ := peer.IDFromPublicKey(secp)
	for _, tt := range []struct{ name, in, msg string }{
		{"empty", "", "node id"},
		{"garbage", "12D3KooWnope", "node id"},
		{"CID form", peer.ToCid(pid).String(), "canonical form"},
		{"secp256k1", secpID.String(), "not an Ed25519 identity"},
		{"hashed (no key inside)", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "carries no public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PublicKeyOf(tt.in)
			wantErr(t, err, ErrInvalid, tt.msg)
		})
	}
}

func TestFingerprint(t *testing.T) {
	// SHA-256 of the raw key, first 16 hex digits, computed independently.
	if got := Fingerprint(testKey(1).Public().(ed25519.PublicKey)); got != "34750F98BD59FCFC" {
		t.Fatalf("Fingerprint = %s", got)
	}
	if Fingerprint(testKey(2).Public().(ed25519.PublicKey)) == Fingerprint(testKey(1).Public().(ed25519.PublicKey)) {
		t.Fatal("two keys, one fingerprint")
	}
}

func TestParseKey(t *testing.T) {
	id := testNodeID(t, testKey(1))
	pid, _ := peer.Decode(id)
	tests := []struct {
		in           string
		lesson, node string
		msg          string
	}{
		{in: "a@" + id, lesson: "a", node: id},
		{in: "rust-borrow.01@" + id, lesson: "rust-borrow.01", node: id},
		{in: "", msg: "want lessonId@nodeId"},
		{in: "a", msg: "want lessonId@nodeId"},
		{in: "@" + id, msg: "want lessonId@nodeId"},
		{in: "a@", msg: "want lessonId@nodeId"},
		{in: "a@b@" + id, msg: "record id"},
		{in: "a b@" + id, msg: "record id"},
		{in: "a@nope", msg: "node id"},
		{in: "a@" + peer.ToCid(pid).String(), msg: "canonical form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, n, err := ParseKey(tt.in)
			if tt.msg != "" {
				wantErr(t, err, ErrInvalid, tt.msg)
				return
			}
			if err != nil || l != tt.lesson || n != tt.node {
				t.Fatalf("ParseKey = %q %q %v", l, n, err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if got := TopicName("Rust"); got != "/mesh/1/topic/rust" {
		t.Fatalf("TopicName = %s", got)
	}
	if got := FeedName("12D3KooWx"); got != "/mesh/1/feed/12D3KooWx" {
		t.Fatalf("FeedName = %s", got)
	}
	for v, ok := range map[string]bool{"": true, "private": true, "unlisted": true, "public": true, "Public": false, "secret": false} {
		if ValidVisibility(v) != ok {
			t.Errorf("ValidVisibility(%q) = %v", v, !ok)
		}
	}
}
