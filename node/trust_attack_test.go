package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// TestUntrustedPublisherNeverStored: a Sybil with no trust path publishes on
// a topic a node follows; neither gossip nor sync ever stores its lessons,
// while a trusted publisher's go through the same connections.
func TestUntrustedPublisherNeverStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := nodetest.New(t, node.Config{Topics: []string{"t"}})
	honest := nodetest.New(t, node.Config{Topics: []string{"t"}})
	sybil := nodetest.New(t, node.Config{Topics: []string{"t"}})
	nodetest.SetTrust(t, a, honest, trust.LevelFull)
	nodetest.Connect(t, a, honest)
	nodetest.Connect(t, a, sybil)
	nodetest.WaitMesh(t, "t", a, honest, sybil)

	junk := nodetest.Publish(t, sybil, "buy now", "sybil junk", "public", "t")
	good := nodetest.Publish(t, honest, "real", "honest lesson", "public", "t")
	nodetest.Eventually(t, "the honest lesson", func() bool { return nodetest.HasRemote(a, good.Key()) })
	if _, err := a.SyncWith(ctx, sybil.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if nodetest.HasRemote(a, junk.Key()) {
		t.Fatal("a lesson of an untrusted publisher was stored")
	}
	if n := a.Pubsub().Stats().Ignored["untrusted"]; n == 0 {
		t.Fatalf("the untrusted announcement was not counted: %+v", a.Pubsub().Stats())
	}
}

// TestTransitiveTrustAndBlocking: a trusts b fully, b trusts c fully, so a
// accepts c's lessons through b's vouch; x is vouched for by b but blocked by
// a, so a ignores it and refuses its connections; removing b takes c's path
// away at once. It runs on loopback: the connection gater that refuses a
// blocked node is an option of a host the node starts itself.
func TestTransitiveTrustAndBlocking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := nodetest.Local(t, node.Config{Topics: []string{"t"}})
	b := nodetest.Local(t, node.Config{Topics: []string{"t"}})
	c := nodetest.Local(t, node.Config{Topics: []string{"t"}})
	x := nodetest.Local(t, node.Config{Topics: []string{"t"}})
	nodetest.SetTrust(t, a, b, trust.LevelFull)
	nodetest.SetTrust(t, b, a, trust.LevelFull)
	nodetest.SetTrust(t, b, c, trust.LevelFull)
	nodetest.SetTrust(t, b, x, trust.LevelFull)
	nodetest.SetTrust(t, a, x, trust.LevelNone)
	nodetest.Connect(t, a, b)
	nodetest.Connect(t, c, b)
	nodetest.Connect(t, x, b)

	// a fetches b's vouch when they connect.
	nodetest.Eventually(t, "a path to c through b's vouch", func() bool {
		hops, score, ok := a.Trust().Path(c.ID().String())
		return ok && len(hops) == 3 && score == 0.5
	})
	if _, _, ok := a.Trust().Path(x.ID().String()); ok {
		t.Fatal("a blocked node has a trust path through a vouch")
	}
	// A blocked node cannot connect, either way.
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := x.Connect(cctx, a.Addrs()[0].String()); err == nil {
		time.Sleep(200 * time.Millisecond)
		if a.Host().Network().Connectedness(x.ID()) == network.Connected {
			t.Fatal("a blocked node stays connected")
		}
	}
	nodetest.WaitMesh(t, "t", a, b, c)
	fromC := nodetest.Publish(t, c, "from c", "transitively trusted", "public", "t")
	fromX := nodetest.Publish(t, x, "from x", "blocked publisher", "public", "t")
	nodetest.Eventually(t, "c's lesson at a", func() bool { return nodetest.HasRemote(a, fromC.Key()) })
	_, _ = a.SyncWith(ctx, b.ID(), nil) // b relays x's lesson by sync too
	if nodetest.HasRemote(a, fromX.Key()) {
		t.Fatal("a lesson of a blocked node was stored although trusted peers vouch for it")
	}

	// Removing b invalidates the path to c, with no restart.
	if err := a.Trust().Remove(b.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.Trust().Path(c.ID().String()); ok {
		t.Fatal("the path through a removed edge survived")
	}
	if node.AcceptsPublisher(a, c.ID().String()) {
		t.Fatal("c is still accepted after its only path went away")
	}
}

// TestVouchOnlyForFullTrust: a node hands its vouch only to peers it trusts
// fully.
func TestVouchOnlyForFullTrust(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := nodetest.New(t, node.Config{})
	b := nodetest.New(t, node.Config{})
	stranger := nodetest.New(t, node.Config{})
	nodetest.SetTrust(t, b, a, trust.LevelFull)
	nodetest.SetTrust(t, b, stranger, trust.LevelLimited)
	nodetest.Connect(t, a, b)
	nodetest.Connect(t, stranger, b)
	if err := node.FetchVouch(a, ctx, b.ID()); err != nil {
		t.Fatalf("fully trusted peer: %v", err)
	}
	if err := node.FetchVouch(stranger, ctx, b.ID()); !errors.Is(err, protocol.ErrUntrusted) {
		t.Fatalf("limited peer got a vouch: %v", err)
	}
}

// TestLimitedPublisherNotSynced: lessons of a limited publisher are neither
// stored from gossip nor synced.
func TestLimitedPublisherNotSynced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := nodetest.New(t, node.Config{Topics: []string{"t"}})
	l := nodetest.New(t, node.Config{Topics: []string{"t"}})
	nodetest.SetTrust(t, a, l, trust.LevelLimited)
	nodetest.Connect(t, a, l)
	nodetest.WaitMesh(t, "t", a, l)
	sl := nodetest.Publish(t, l, "limited", "from a limited peer", "public", "t")
	_, _ = a.SyncWith(ctx, l.ID(), nil)
	time.Sleep(300 * time.Millisecond)
	if nodetest.HasRemote(a, sl.Key()) {
		t.Fatal("a limited publisher's lesson was stored")
	}
}

// TestVouchExchangeSettles: nodes that all trust each other fully exchange
// vouches when they connect and then stop; a vouch that says nothing new must
// not set off another round (it once did, and the storm starved gossip).
func TestVouchExchangeSettles(t *testing.T) {
	t.Parallel()
	nodes := []*node.Node{nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})}
	nodetest.TrustAll(t, nodes...)
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			nodetest.Connect(t, nodes[i], nodes[j])
		}
	}
	total := func() int64 {
		var s int64
		for _, n := range nodes {
			s += node.VouchFetches(n)
		}
		return s
	}
	nodetest.Eventually(t, "the first vouches", func() bool { return total() >= int64(len(nodes)*(len(nodes)-1)) })
	time.Sleep(2 * time.Second)
	settled := total()
	time.Sleep(2 * time.Second)
	if after := total(); after != settled {
		t.Fatalf("vouch requests keep going: %d, then %d two seconds later", settled, after)
	}
	// Each pair asks each other about once, not in a loop.
	if settled > int64(3*len(nodes)*(len(nodes)-1)) {
		t.Fatalf("%d vouch requests among %d nodes", settled, len(nodes))
	}
}
