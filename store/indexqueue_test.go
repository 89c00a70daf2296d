package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// TestQueuedRemoteIndex: the index updates of received lessons are
// queued, yet every read sees them at once and in order (a lesson stored
// then revoked is not found), the queue applies itself after indexDelay
// with no read, and Close applies it (the lesson is found after a
// reopen, with no replay needed).
func TestQueuedRemoteIndex(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openFed(t, dir, clk, "")
	p := newPeer(t, 7)
	t0 := clk.Now().UnixMilli()

	mustPutRemote(t, s, p.sign(t, "a", "queued", "queued lesson alpha", protocol.VisibilityPublic, t0))
	if !s.idxQ.pending.Load() {
		t.Fatal("a received lesson's index update was not queued")
	}
	if got := searchKeys(t, s, Query{Text: "alpha", Origin: OriginRemote}); !slices.Equal(got, []string{"a@" + p.id}) {
		t.Fatalf("a search right after PutRemote: %v", got)
	}
	if s.idxQ.pending.Load() {
		t.Fatal("the search did not apply the queue")
	}

	// Stored then revoked, both queued: applied in order.
	mustPutRemote(t, s, p.sign(t, "b", "queued", "queued lesson beta", protocol.VisibilityPublic, t0))
	if err := s.Revoke(ctx, p.revoke(t, "b", t0+10)); err != nil {
		t.Fatal(err)
	}
	if got := searchKeys(t, s, Query{Text: "beta", Origin: OriginRemote}); len(got) != 0 {
		t.Fatalf("a revoked lesson is found: %v", got)
	}

	// Many in a row: batched, and applied by the timer with no read.
	before := s.indexWrites.Load()
	for i := range 10 {
		mustPutRemote(t, s, p.sign(t, fmt.Sprintf("c%d", i), "queued", fmt.Sprintf("gamma number%d", i), protocol.VisibilityPublic, t0))
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.idxQ.pending.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the queue was never applied without a read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.idxQ.flushing.Lock() // the timer's apply, taken, may still run
	s.idxQ.flushing.Unlock()
	// One batch, or a few if the puts outlast indexDelay on a loaded
	// machine; one each would be no queue at all.
	if n := s.indexWrites.Load() - before; n < 1 || n >= 5 {
		t.Fatalf("ten received lessons took %d index batches, want 1 (a few on a slow machine)", n)
	}

	// Queued at Close: applied, not left to the next Open's replay.
	mustPutRemote(t, s, p.sign(t, "d", "queued", "queued lesson delta", protocol.VisibilityPublic, t0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openFed(t, dir, clk, "")
	if got := searchKeys(t, s2, Query{Text: "delta", Origin: OriginRemote}); !slices.Equal(got, []string{"d@" + p.id}) {
		t.Fatalf("after a reopen: %v", got)
	}
}
