package trust_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func Example() {
	key := func(b byte) (ed25519.PrivateKey, string) {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
		id, _ := protocol.NodeID(k.Public().(ed25519.PublicKey))
		return k, id
	}
	_, me := key(1)
	aliceKey, alice := key(2)
	_, bob := key(3)

	g, err := trust.New(trust.Config{
		Datastore: dssync.MutexWrap(ds.NewMapDatastore()),
		Self:      me,
	})
	if err != nil {
		panic(err)
	}
	if err := g.Set(alice, trust.LevelFull, "works with me"); err != nil {
		panic(err)
	}

	// Alice shares her signed vouch with us; we verify it and cache it.
	v, _ := protocol.SignVouch(aliceKey, []string{bob}, time.Now(), time.Hour)
	if err := protocol.VerifyVouch(v, protocol.VerifyOptions{}); err != nil {
		panic(err)
	}
	if err := g.AddVouch(v); err != nil {
		panic(err)
	}

	hops, score, ok := g.Path(bob)
	fmt.Println(len(hops)-1, "hops, score", score, ok)

	// Removing Alice removes the path through her at once.
	_ = g.Remove(alice)
	_, _, ok = g.Path(bob)
	fmt.Println("after remove:", ok)
	// Output:
	// 2 hops, score 0.5 true
	// after remove: false
}
