package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"testing"
)

func TestSplitCombineKey(t *testing.T) {
	key := NewLessonKey()
	for _, tt := range []struct{ n, k int }{{2, 2}, {3, 2}, {3, 3}, {5, 3}, {32, 16}, {255, 2}} {
		shares, err := SplitKey(key, tt.n, tt.k)
		if err != nil {
			t.Fatalf("%d of %d: %v", tt.k, tt.n, err)
		}
		if len(shares) != tt.n {
			t.Fatalf("%d shares, want %d", len(shares), tt.n)
		}
		// Any k shares, in any order, give the key; so do more than k.
		for _, pick := range [][]int{firstK(tt.k), lastK(tt.n, tt.k), reverse(firstK(tt.n))} {
			var sub [][]byte
			for _, i := range pick {
				sub = append(sub, shares[i])
			}
			got, err := CombineShares(sub)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("%d of %d, shares %v: %x, %v", tt.k, tt.n, pick, got, err)
			}
		}
		// k-1 shares do not.
		if tt.k > 2 {
			if _, err := CombineShares(shares[:tt.k-1]); err == nil {
				t.Fatalf("%d of %d: combined from %d shares", tt.k, tt.n, tt.k-1)
			} else {
				wantErr(t, err, ErrInvalid, "fewer than the threshold")
			}
		}
	}
	// Two splits of one key differ.
	a, _ := SplitKey(key, 3, 2)
	b, _ := SplitKey(key, 3, 2)
	if bytes.Equal(a[0], b[0]) {
		t.Fatal("two splits gave the same share")
	}
	// Shares of two different keys do not combine.
	c, _ := SplitKey(NewLessonKey(), 3, 2)
	_, err := CombineShares([][]byte{a[0], c[1]})
	wantErr(t, err, ErrInvalid, "do not give a key")
}

func firstK(k int) []int {
	s := make([]int, k)
	for i := range s {
		s[i] = i
	}
	return s
}

func lastK(n, k int) []int {
	s := make([]int, k)
	for i := range s {
		s[i] = n - k + i
	}
	return s
}

func reverse(s []int) []int {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

func TestSplitCombineRefuses(t *testing.T) {
	key := testLessonKey(9)
	for _, tt := range []struct {
		name    string
		key     []byte
		n, k    int
		message string
	}{
		{"short key", key[:16], 3, 2, "want 32"},
		{"threshold 1", key, 3, 1, "threshold"},
		{"threshold above shares", key, 2, 3, "threshold"},
		{"256 shares", key, 256, 2, "threshold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SplitKey(tt.key, tt.n, tt.k)
			wantErr(t, err, ErrInvalid, tt.message)
		})
	}
	shares, _ := SplitKey(key, 3, 2)
	zeroX := bytes.Clone(shares[0])
	zeroX[0] = 0
	unreduced := bytes.Clone(shares[0])
	copy(unreduced[1:33], bytes.Repeat([]byte{0xff}, 32))
	for _, tt := range []struct {
		name    string
		shares  [][]byte
		message string
	}{
		{"none", nil, "want at least 2"},
		{"one", shares[:1], "want at least 2"},
		{"duplicate", [][]byte{shares[0], shares[0]}, "repeated"},
		{"x = 0", [][]byte{zeroX, shares[1]}, "zero or repeated"},
		{"short", [][]byte{shares[0][:64], shares[1]}, "bytes, want 65"},
		{"not a scalar", [][]byte{unreduced, shares[1]}, "not a reduced scalar"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CombineShares(tt.shares)
			wantErr(t, err, ErrInvalid, tt.message)
		})
	}
	// A flipped byte in a share gives no key (or, with probability 2^-248,
	// the wrong one; the lesson's GCM tag would refuse that).
	flipped := bytes.Clone(shares[0])
	flipped[5] ^= 1
	if got, err := CombineShares([][]byte{flipped, shares[1]}); err == nil && bytes.Equal(got, key) {
		t.Fatal("a flipped share gave the key")
	}
}

func TestEscrow(t *testing.T) {
	key := testLessonKey(9)
	escrowKeys := []ed25519.PrivateKey{testKey(11), testKey(12), testKey(13)}
	var nodes []string
	for _, k := range escrowKeys {
		nodes = append(nodes, testNodeID(t, k))
	}
	e, err := NewEscrow(key, "k1", 2, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if e.Threshold != 2 || len(e.Shares) != 3 {
		t.Fatalf("escrow %+v", e)
	}
	var opened [][]byte
	for i, k := range escrowKeys {
		s, err := e.OpenShare(k, "k1")
		if err != nil {
			t.Fatalf("escrow node %d: %v", i, err)
		}
		opened = append(opened, s)
	}
	for _, pair := range [][2]int{{0, 1}, {1, 2}, {2, 0}} {
		got, err := CombineShares([][]byte{opened[pair[0]], opened[pair[1]]})
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("shares %v: %x, %v", pair, got, err)
		}
	}
	// Another node holds nothing; a share opens only for its keyId.
	_, err = e.OpenShare(testKey(14), "k1")
	wantErr(t, err, ErrNotFound, "holds no share")
	_, err = e.OpenShare(escrowKeys[0], "k2")
	wantErr(t, err, ErrDecrypt, "")
	// A share moved to another node's entry opens for nobody.
	moved := *e
	moved.Shares = append([]EscrowShare(nil), e.Shares...)
	moved.Shares[0].SealedShare, moved.Shares[1].SealedShare = e.Shares[1].SealedShare, e.Shares[0].SealedShare
	_, err = moved.OpenShare(escrowKeys[0], "k1")
	wantErr(t, err, ErrDecrypt, "")

	for _, tt := range []struct {
		name    string
		k       int
		nodes   []string
		message string
	}{
		{"one node", 2, nodes[:1], "threshold"},
		{"threshold 1", 1, nodes, "threshold"},
		{"bad node", 2, []string{nodes[0], "nope"}, "node id"},
		{"duplicate node", 2, []string{nodes[0], nodes[0]}, "two shares"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEscrow(key, "k1", tt.k, tt.nodes)
			wantErr(t, err, ErrInvalid, tt.message)
		})
	}
	sealed, _ := base64.StdEncoding.DecodeString(e.Shares[0].SealedShare)
	if len(sealed) != SealedShareSize {
		t.Fatalf("sealed share %d bytes, want %d", len(sealed), SealedShareSize)
	}
}
