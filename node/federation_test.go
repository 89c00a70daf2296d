package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// connect links a to b (a dials b).
func connect(t *testing.T, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func hasRemote(n *Node, key string) bool {
	ctx := context.Background()
	sl, err := n.Store().Remote(ctx, key)
	if err != nil {
		return false
	}
	// The store commits a record to the datastore, then to the index: a
	// test that searches next must wait for the index too.
	res, err := n.Store().Search(ctx, store.Query{Origin: store.OriginRemote, Publisher: sl.Signature.NodeID, Limit: store.MaxSearchLimit})
	if err != nil {
		return false
	}
	for _, h := range res.Hits {
		if h.Key == key {
			return true
		}
	}
	return false
}

// trustAll makes every node trust every other one fully.
func trustAll(t *testing.T, nodes ...*Node) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.Trust().Set(b.ID().String(), trust.LevelFull, "test"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// line builds k online nodes following topic, connected a-b-c-..., so a
// message must be forwarded to reach the far end.
func line(t *testing.T, k int, topic string) []*Node {
	t.Helper()
	nodes := make([]*Node, k)
	for i := range nodes {
		nodes[i] = newTestNode(t, Config{Topics: []string{topic}})
	}
	trustAll(t, nodes...)
	for i := 0; i+1 < k; i++ {
		connect(t, nodes[i], nodes[i+1])
	}
	waitMesh(t, topic, nodes...)
	return nodes
}

// waitMesh waits until each node knows its connected neighbours subscribe
// to topic, then for GossipSub's heartbeat to graft them into its mesh (a
// message that arrives before then is delivered but not forwarded).
func waitMesh(t *testing.T, topic string, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		want := len(n.Host().Network().Peers())
		eventually(t, "topic peers of "+n.ID().String(), func() bool { return len(n.ps.TopicPeers(topic)) >= want })
	}
	time.Sleep(1500 * time.Millisecond)
}

func publishLesson(t *testing.T, n *Node, title, content, visibility string, topics ...string) *protocol.SignedLesson {
	t.Helper()
	ctx := context.Background()
	id, _, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: title, Content: content, Tags: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := n.Publish(ctx, id, PublishOptions{Visibility: visibility, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

func TestPublishRevokeSupersedeAcrossALine(t *testing.T) {
	ctx := context.Background()
	nodes := line(t, 3, "rust")
	a, c := nodes[0], nodes[2]

	sl := publishLesson(t, a, "Cargo parallel builds", "Never run cargo builds in parallel on a small VPS", "public", "rust")
	key := sl.Key()
	for _, n := range nodes[1:] {
		eventually(t, "the lesson at "+n.ID().String(), func() bool { return hasRemote(n, key) })
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
	sl2, err := a.Publish(ctx, sl.Lesson.ID, PublishOptions{Visibility: "public", Topics: []string{"rust"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new version at the far end", func() bool {
		got, err := c.Store().Remote(ctx, key)
		return err == nil && got.Publication.PublishedAt == sl2.Publication.PublishedAt
	})

	// Revocation removes it everywhere; a second one is ALREADY_REVOKED.
	if _, err := a.Revoke(ctx, sl.Lesson.ID, protocol.ReasonOutdated); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		eventually(t, "the revocation at "+n.ID().String(), func() bool { return !hasRemote(n, key) && n.Store().Revoked(ctx, key) })
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
	ctx := context.Background()
	nodes := line(t, 2, "go")
	a, b := nodes[0], nodes[1]

	unlisted := publishLesson(t, a, "Unlisted note", "shared by link only", "unlisted")
	privateID, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "secret", Content: "private memory"})
	if err != nil {
		t.Fatal(err)
	}
	// Unlisted lessons are not announced...
	time.Sleep(500 * time.Millisecond)
	if hasRemote(b, unlisted.Key()) {
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
// sync brings both.
func TestOfflineNodeCatchesUpAfterRestart(t *testing.T) {
	ctx := context.Background()
	a := newTestNode(t, Config{Topics: []string{"ops"}})
	dir := t.TempDir()
	b := newTestNode(t, Config{RepoDir: dir, Topics: []string{"ops"}})
	trustAll(t, a, b)
	connect(t, b, a)
	waitMesh(t, "ops", a, b)

	early := publishLesson(t, a, "Early", "published while b is online", "public", "ops")
	eventually(t, "the early lesson at b", func() bool { return hasRemote(b, early.Key()) })
	bID := b.ID()
	b.Close()

	// While b is away: a new publication and a revocation.
	late := publishLesson(t, a, "Late", "published while b is offline", "public", "ops")
	if _, err := a.Revoke(ctx, early.Lesson.ID, protocol.ReasonIncorrect); err != nil {
		t.Fatal(err)
	}

	b2 := newTestNode(t, Config{RepoDir: dir, Topics: []string{"ops"}})
	if b2.ID() != bID {
		t.Fatal("identity changed across restart")
	}
	if !hasRemote(b2, early.Key()) {
		t.Fatal("b lost its cached lesson across the restart")
	}
	connect(t, b2, a)
	eventually(t, "b to catch up on the publication and the revocation", func() bool {
		return hasRemote(b2, late.Key()) && !hasRemote(b2, early.Key()) && b2.Store().Revoked(ctx, early.Key())
	})
	// A second sync finds nothing new: the checkpoint persisted.
	var pages []SyncProgress
	if _, err := b2.SyncWith(ctx, a.ID(), func(p SyncProgress) { pages = append(pages, p) }); err != nil {
		t.Fatal(err)
	}
	last := pages[len(pages)-1]
	if last.Received != 0 || !last.Done {
		t.Fatalf("second sync re-sent %d records: %+v", last.Received, pages)
	}
}

func TestFollowPersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := newTestNode(t, Config{RepoDir: dir})
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
	n2 := newTestNode(t, Config{RepoDir: dir, Offline: true})
	topics, feeds, err := n2.Following(ctx)
	if err != nil || fmt.Sprint(topics) != "[rust]" || len(feeds) != 1 || !strings.HasPrefix(feeds[0], "12D3KooW") {
		t.Fatalf("following after restart: %v %v %v", topics, feeds, err)
	}
}
