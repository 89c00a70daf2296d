package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/prometheus/client_golang/prometheus"
)

func TestPublishRevokeSupersedeAcrossALine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 3, "rust")
	a, c := nodes[0], nodes[2]

	sl := nodetest.Publish(t, a, "Cargo parallel builds", "Never run cargo builds in parallel on a small VPS", "public", "rust")
	key := sl.Key()
	for _, n := range nodes[1:] {
		nodetest.Eventually(t, "the lesson at "+n.ID().String(), func() bool { return nodetest.HasRemote(n, key) })
	}
	// Found by search when asked for remote lessons, never mixed into the
	// node's own AMP listing.
	res, err := c.Search(ctx, store.Query{Text: "cargo parallel", Origin: "all"})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].Key != key || res.Hits[0].Publisher != a.ID().String() {
		t.Fatalf("search all: %+v %v", res, err)
	}
	res, err = c.Search(ctx, store.Query{Text: "cargo parallel"})
	if err != nil || len(res.Hits) != 0 {
		t.Fatalf("a received lesson leaked into the local AMP search: %+v %v", res, err)
	}

	// An updated version supersedes the old one everywhere.
	rec, _ := a.Get(ctx, sl.Lesson.ID)
	rec.Content = "Use cargo build -j1 on small machines"
	if _, _, err := a.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // a later publishedAt
	sl2, err := a.Publish(ctx, sl.Lesson.ID, api.PublishOptions{Visibility: "public", Topics: []string{"rust"}})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the new version at the far end", func() bool {
		got, err := c.Store().Remote(ctx, key)
		return err == nil && got.Publication.PublishedAt == sl2.Publication.PublishedAt
	})

	// Revocation removes it everywhere; a second one is ALREADY_REVOKED.
	if _, err := a.Revoke(ctx, sl.Lesson.ID, protocol.ReasonOutdated); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		nodetest.Eventually(t, "the revocation at "+n.ID().String(), func() bool { return !nodetest.HasRemote(n, key) && n.Store().Revoked(ctx, key) })
	}
	if _, err := a.Revoke(ctx, sl.Lesson.ID, ""); !errors.Is(err, protocol.ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	// A replay of the revoked publication is refused by every receiver.
	if err := c.Store().PutRemote(ctx, sl2); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("replay after revocation: %v", err)
	}
}

func TestFetchUnlistedNeverPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 2, "go")
	a, b := nodes[0], nodes[1]

	unlisted := nodetest.Publish(t, a, "Unlisted note", "shared by link only", "unlisted")
	privateID, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "secret", Content: "private memory"})
	if err != nil {
		t.Fatal(err)
	}
	// Unlisted lessons are not announced...
	time.Sleep(500 * time.Millisecond)
	if nodetest.HasRemote(b, unlisted.Key()) {
		t.Fatal("an unlisted lesson was announced")
	}
	// ...but can be fetched by exact key, verified.
	got, _, err := b.Fetch(ctx, a.ID(), unlisted.Key())
	if err != nil || got.Lesson.Content != "shared by link only" {
		t.Fatalf("fetch unlisted: %v", err)
	}
	// A private record is unknown to fetch.
	_, _, err = b.Fetch(ctx, a.ID(), privateID+"@"+a.ID().String())
	if !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("fetch private: %v, want UNKNOWN_LESSON", err)
	}
	// A revoked lesson answers with its revocation.
	if _, err := a.Revoke(ctx, unlisted.Lesson.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, rev, err := b.Fetch(ctx, a.ID(), unlisted.Key())
	if !errors.Is(err, protocol.ErrAlreadyRevoked) || rev == nil {
		t.Fatalf("fetch revoked: %v %v", rev, err)
	}
}

// TestOfflineNodeCatchesUpAfterRestart: a node on pebble is offline while a
// lesson is published and another revoked; when it comes back and connects,
// sync brings both. It runs on loopback: a restarted node is the same
// peer on a new host.
func TestOfflineNodeCatchesUpAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := nodetest.Local(t, node.Config{Topics: []string{"ops"}})
	dir := t.TempDir()
	b := nodetest.Local(t, node.Config{RepoDir: dir, Topics: []string{"ops"}})
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	nodetest.WaitMesh(t, "ops", a, b)

	early := nodetest.Publish(t, a, "Early", "published while b is online", "public", "ops")
	nodetest.Eventually(t, "the early lesson at b", func() bool { return nodetest.HasRemote(b, early.Key()) })
	bID := b.ID()
	b.Close()

	// While b is away: a new publication and a revocation.
	late := nodetest.Publish(t, a, "Late", "published while b is offline", "public", "ops")
	if _, err := a.Revoke(ctx, early.Lesson.ID, protocol.ReasonIncorrect); err != nil {
		t.Fatal(err)
	}

	b2 := nodetest.Local(t, node.Config{RepoDir: dir, Topics: []string{"ops"}})
	if b2.ID() != bID {
		t.Fatal("identity changed across restart")
	}
	if !nodetest.HasRemote(b2, early.Key()) {
		t.Fatal("b lost its cached lesson across the restart")
	}
	nodetest.Connect(t, b2, a)
	nodetest.Eventually(t, "b to catch up on the publication and the revocation", func() bool {
		return nodetest.HasRemote(b2, late.Key()) && !nodetest.HasRemote(b2, early.Key()) && b2.Store().Revoked(ctx, early.Key())
	})
	// A second sync finds nothing new: the checkpoint persisted.
	var pages []api.SyncProgress
	if _, err := b2.SyncWith(ctx, a.ID(), func(p api.SyncProgress) { pages = append(pages, p) }); err != nil {
		t.Fatal(err)
	}
	last := pages[len(pages)-1]
	if last.Received != 0 || !last.Done {
		t.Fatalf("second sync re-sent %d records: %+v", last.Received, pages)
	}
}

// TestCatchUpBringsWhatGossipMissed: a lesson b never heard of by
// GossipSub (a stored it without announcing it, as when b was outside
// every mesh while it passed) comes to b when GossipSub says b may have
// missed messages from a: b syncs with a. Told twenty times at once, b
// syncs twice: once at once, once more a few seconds later.
func TestCatchUpBringsWhatGossipMissed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	a := nodetest.New(t, node.Config{Topics: []string{"ops"}})
	b := nodetest.New(t, node.Config{Topics: []string{"ops"}, Registerer: reg})
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	nodetest.WaitMesh(t, "ops", a, b)
	// The mesh's own catch-up (b grafted a) ends first.
	nodetest.Eventually(t, "b's catch-up after the graft to end", func() bool { return !node.CatchingUp(b, a.ID()) })

	id, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "Missed", Content: "stored at a, never announced"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := a.Store().Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	missed, err := protocol.Sign(nodetest.Key(a), rec,
		protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), Topics: []string{"ops"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store().PutPublication(ctx, missed); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if nodetest.HasRemote(b, missed.Key()) {
		t.Fatal("b got the lesson before catching up")
	}
	runs := syncRuns(t, reg)
	for range 20 {
		node.CatchUp(b, a.ID())
	}
	nodetest.Eventually(t, "b to catch up on the lesson", func() bool { return nodetest.HasRemote(b, missed.Key()) })
	nodetest.Eventually(t, "the burst's catch-ups to end", func() bool { return !node.CatchingUp(b, a.ID()) })
	if n := syncRuns(t, reg) - runs; n != 2 {
		t.Fatalf("b ran %v syncs for a burst of 20 catch-ups, want 2", n)
	}
}

// syncRuns reads mesh_sync_runs_total from reg.
func syncRuns(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "mesh_sync_runs_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no mesh_sync_runs_total")
	return 0
}

func TestFollowPersists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	n := nodetest.New(t, node.Config{RepoDir: dir})
	for _, target := range []string{"Rust", "sensors", n.ID().String()} {
		if err := n.Follow(ctx, target); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Follow(ctx, "bad topic!"); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad topic: %v", err)
	}
	if err := n.Unfollow(ctx, "sensors"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n2 := nodetest.New(t, node.Config{RepoDir: dir, Offline: true})
	topics, feeds, err := n2.Following(ctx)
	if err != nil || fmt.Sprint(topics) != "[rust]" || len(feeds) != 1 || !strings.HasPrefix(feeds[0], "12D3KooW") {
		t.Fatalf("following after restart: %v %v %v", topics, feeds, err)
	}
}

// Peers says which followed topics' meshes hold each peer: three nodes
// following "rust" hold each other in its mesh; "go", which only b
// follows, puts nobody in a mesh.
func TestPeersShowMesh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 3, "rust")
	if err := nodes[1].Follow(ctx, "go"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		nodetest.Eventually(t, "every peer of "+n.ID().String()+" in its rust mesh", func() bool {
			ps, err := n.Peers(ctx)
			if err != nil || len(ps) == 0 {
				return false
			}
			for _, p := range ps {
				if !slices.Equal(p.Mesh, []string{"rust"}) {
					return false
				}
			}
			return true
		})
	}
}
