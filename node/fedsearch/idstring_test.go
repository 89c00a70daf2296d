package fedsearch

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestIDString: the remembered strings are the IDs' own, and no more than
// maxPeers are kept.
func TestIDString(t *testing.T) {
	s := &Service{}
	ids := make([]peer.ID, 0, maxPeers+50)
	for range cap(ids) {
		_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for range 2 {
		for _, id := range ids {
			if got := s.idString(id); got != id.String() {
				t.Fatalf("idString(%s) = %q", id, got)
			}
		}
	}
	n := 0
	s.ids.Range(func(any, any) bool { n++; return true })
	if n == 0 || n > maxPeers {
		t.Fatalf("%d IDs remembered, want 1 to %d", n, maxPeers)
	}
}
