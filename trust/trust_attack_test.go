package trust

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// A vouch signed by the wrong key never verifies, so it never reaches the
// graph; one that claims a trusted node's ID is refused.
func TestAttackVouchWrongKey(t *testing.T) {
	n := nodes(t, 4)
	A, B, attacker, sybil := n[0], n[1], n[2], n[3]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c})
	mustSet(t, g, B, LevelFull)

	// The attacker signs a vouch with its own key, claiming to be B.
	forged := &protocol.Vouch{Type: protocol.TypeVouch, NodeID: B.id, Trusts: []string{sybil.id},
		IssuedAt: c.Now().UnixMilli(), ExpiresAt: c.Now().Add(time.Hour).UnixMilli()}
	own, err := protocol.SignVouch(attacker.key, []string{sybil.id}, c.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature = own.Signature
	opts := protocol.VerifyOptions{Now: c.Now()}
	if err := protocol.VerifyVouch(forged, opts); err == nil {
		t.Fatal("forged vouch verified")
	}
	// B's key claimed, attacker's signature.
	forged.Signature.PublicKey = base64.StdEncoding.EncodeToString(B.key.Public().(ed25519.PublicKey))
	wantErr(t, protocol.VerifyVouch(forged, opts), protocol.ErrInvalidSignature)

	// B's genuine vouch, with a sybil spliced in on the wire.
	genuine, err := protocol.SignVouch(B.key, []string{attacker.id}, c.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(genuine)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["trusts"] = []string{sybil.id}
	b, _ = json.Marshal(m)
	d, err := protocol.DecodeVouch(b)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, protocol.VerifyVouch(d, opts), protocol.ErrInvalidSignature)

	if _, _, ok := g.Path(sybil.id); ok {
		t.Fatal("sybil reachable")
	}
}

// A Sybil cluster vouching for itself, and for a node this one blocked,
// gains nothing without a path from this node.
func TestAttackSybilCluster(t *testing.T) {
	n := nodes(t, 12)
	A, B, X := n[0], n[1], n[2]
	sybils := n[3:]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c, maxDepth: MaxDepthLimit})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, X, LevelNone)
	for i, s := range sybils {
		others := []node{X, B}
		for j, o := range sybils {
			if i != j {
				others = append(others, o)
			}
		}
		vouch(t, g, c, s, others...)
	}
	for _, s := range append(sybils, X) {
		if _, _, ok := g.Path(s.id); ok {
			t.Fatalf("%s reachable", pathString(n, []string{s.id}))
		}
	}
	// Even when B, trusted fully, vouches for one sybil, X stays blocked.
	vouch(t, g, c, B, sybils[0], X)
	if _, _, ok := g.Path(sybils[len(sybils)-1].id); !ok {
		t.Fatal("the cluster is reachable through B at depth 8")
	}
	if _, _, ok := g.Path(X.id); ok {
		t.Fatal("blocked node reachable")
	}
}
