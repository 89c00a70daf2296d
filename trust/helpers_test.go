package trust

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshprotocol/mesh/protocol"
)

// testNow is the time every test starts at.
var testNow = time.UnixMilli(1767225600000) // 2026-01-01T00:00:00Z

// clock is a settable clock, safe for concurrent use.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(testNow.UnixMilli())
	return c
}

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) Set(t time.Time)         { c.ms.Store(t.UnixMilli()) }

// node is a test identity.
type node struct {
	key ed25519.PrivateKey
	id  string
}

// testNode returns a deterministic identity: the seed is 32 copies of b.
func testNode(t testing.TB, b byte) node {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
	id, err := protocol.NodeID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return node{key, id}
}

// nodes returns n distinct identities, seeds 1..n; nodes[0] is "self".
func nodes(t testing.TB, n int) []node {
	out := make([]node, n)
	for i := range out {
		out[i] = testNode(t, byte(i+1))
	}
	return out
}

func memStore() ds.Batching { return dssync.MutexWrap(ds.NewMapDatastore()) }

type graphOpts struct {
	store    ds.Batching
	clock    *clock
	maxDepth int
}

func newGraph(t testing.TB, self node, o graphOpts) *Graph {
	t.Helper()
	if o.store == nil {
		o.store = memStore()
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	g, err := New(Config{Datastore: o.store, Self: self.id, MaxDepth: o.maxDepth, Now: o.clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// vouch signs, verifies and adds a vouch from n for trusts, issued now.
func vouch(t testing.TB, g *Graph, c *clock, n node, trusts ...node) *protocol.Vouch {
	t.Helper()
	ids := make([]string, len(trusts))
	for i, x := range trusts {
		ids[i] = x.id
	}
	v, err := protocol.SignVouch(n.key, ids, c.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyVouch(v, protocol.VerifyOptions{Now: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := g.AddVouch(v); err != nil {
		t.Fatalf("AddVouch: %v", err)
	}
	return v
}

func mustSet(t testing.TB, g *Graph, n node, level Level) {
	t.Helper()
	if err := g.Set(n.id, level, ""); err != nil {
		t.Fatalf("Set(%s): %v", level, err)
	}
}

// pathString names the hops of a path by their index in all: "A>B>C".
func pathString(all []node, hops []string) string {
	names := make([]string, len(hops))
	for i, h := range hops {
		names[i] = "?"
		for j, n := range all {
			if n.id == h {
				names[i] = string(rune('A' + j))
			}
		}
	}
	return strings.Join(names, ">")
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
