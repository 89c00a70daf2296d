package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func setTrust(t *testing.T, from, to *Node, level trust.Level) {
	t.Helper()
	if err := from.Trust().Set(to.ID().String(), level, ""); err != nil {
		t.Fatal(err)
	}
}

// TestUntrustedPublisherNeverStored: a Sybil with no trust path publishes on
// a topic a node follows; neither gossip nor sync ever stores its lessons,
// while a trusted publisher's go through the same connections.
func TestUntrustedPublisherNeverStored(t *testing.T) {
	ctx := context.Background()
	a := newTestNode(t, Config{Topics: []string{"t"}})
	honest := newTestNode(t, Config{Topics: []string{"t"}})
	sybil := newTestNode(t, Config{Topics: []string{"t"}})
	setTrust(t, a, honest, trust.LevelFull)
	connect(t, a, honest)
	connect(t, a, sybil)
	waitMesh(t, "t", a, honest, sybil)

	junk := publishLesson(t, sybil, "buy now", "sybil junk", "public", "t")
	good := publishLesson(t, honest, "real", "honest lesson", "public", "t")
	eventually(t, "the honest lesson", func() bool { return hasRemote(a, good.Key()) })
	if _, err := a.SyncWith(ctx, sybil.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if hasRemote(a, junk.Key()) {
		t.Fatal("a lesson of an untrusted publisher was stored")
	}
	if n := a.ps.Stats().Ignored["untrusted"]; n == 0 {
		t.Fatalf("the untrusted announcement was not counted: %+v", a.ps.Stats())
	}
}

// TestTransitiveTrustAndBlocking: a trusts b fully, b trusts c fully, so a
// accepts c's lessons through b's vouch; x is vouched for by b but blocked by
// a, so a ignores it and refuses its connections; removing b takes c's path
// away at once.
func TestTransitiveTrustAndBlocking(t *testing.T) {
	ctx := context.Background()
	a := newTestNode(t, Config{Topics: []string{"t"}})
	b := newTestNode(t, Config{Topics: []string{"t"}})
	c := newTestNode(t, Config{Topics: []string{"t"}})
	x := newTestNode(t, Config{Topics: []string{"t"}})
	setTrust(t, a, b, trust.LevelFull)
	setTrust(t, b, a, trust.LevelFull)
	setTrust(t, b, c, trust.LevelFull)
	setTrust(t, b, x, trust.LevelFull)
	setTrust(t, a, x, trust.LevelNone)
	connect(t, a, b)
	connect(t, c, b)
	connect(t, x, b)

	// a fetches b's vouch when they connect.
	eventually(t, "a path to c through b's vouch", func() bool {
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
	waitMesh(t, "t", a, b, c)
	fromC := publishLesson(t, c, "from c", "transitively trusted", "public", "t")
	fromX := publishLesson(t, x, "from x", "blocked publisher", "public", "t")
	eventually(t, "c's lesson at a", func() bool { return hasRemote(a, fromC.Key()) })
	_, _ = a.SyncWith(ctx, b.ID(), nil) // b relays x's lesson by sync too
	if hasRemote(a, fromX.Key()) {
		t.Fatal("a lesson of a blocked node was stored although trusted peers vouch for it")
	}

	// Removing b invalidates the path to c, with no restart.
	if err := a.Trust().Remove(b.ID().String()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.Trust().Path(c.ID().String()); ok {
		t.Fatal("the path through a removed edge survived")
	}
	if a.acceptsPublisher(c.ID().String()) {
		t.Fatal("c is still accepted after its only path went away")
	}
}

// TestVouchOnlyForFullTrust: a node hands its vouch only to peers it trusts
// fully.
func TestVouchOnlyForFullTrust(t *testing.T) {
	ctx := context.Background()
	a := newTestNode(t, Config{})
	b := newTestNode(t, Config{})
	stranger := newTestNode(t, Config{})
	setTrust(t, b, a, trust.LevelFull)
	setTrust(t, b, stranger, trust.LevelLimited)
	connect(t, a, b)
	connect(t, stranger, b)
	if err := a.FetchVouch(ctx, b.ID()); err != nil {
		t.Fatalf("fully trusted peer: %v", err)
	}
	if err := stranger.FetchVouch(ctx, b.ID()); !errors.Is(err, protocol.ErrUntrusted) {
		t.Fatalf("limited peer got a vouch: %v", err)
	}
}

// TestLimitedPublisherNotSynced: lessons of a limited publisher are neither
// stored from gossip nor synced.
func TestLimitedPublisherNotSynced(t *testing.T) {
	ctx := context.Background()
	a := newTestNode(t, Config{Topics: []string{"t"}})
	l := newTestNode(t, Config{Topics: []string{"t"}})
	setTrust(t, a, l, trust.LevelLimited)
	connect(t, a, l)
	waitMesh(t, "t", a, l)
	sl := publishLesson(t, l, "limited", "from a limited peer", "public", "t")
	_, _ = a.SyncWith(ctx, l.ID(), nil)
	time.Sleep(300 * time.Millisecond)
	if hasRemote(a, sl.Key()) {
		t.Fatal("a limited publisher's lesson was stored")
	}
}

// TestVouchExchangeSettles: nodes that all trust each other fully exchange
// vouches when they connect and then stop; a vouch that says nothing new must
// not set off another round (it once did, and the storm starved gossip).
func TestVouchExchangeSettles(t *testing.T) {
	nodes := []*Node{newTestNode(t, Config{}), newTestNode(t, Config{}), newTestNode(t, Config{}), newTestNode(t, Config{})}
	trustAll(t, nodes...)
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	total := func() int64 {
		var s int64
		for _, n := range nodes {
			s += n.vouchFetches.Load()
		}
		return s
	}
	eventually(t, "the first vouches", func() bool { return total() >= int64(len(nodes)*(len(nodes)-1)) })
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
