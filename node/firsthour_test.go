package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// TestReceivedLessonCanBeOpened: a lesson received from another node opens
// by its key and by its bare id, exports as signed, lists with the remote
// origin or its publisher, and counts in the status; a lesson this node
// does not hold is fetched from its publisher.
func TestReceivedLessonCanBeOpened(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 2, "ops")
	a, b := nodes[0], nodes[1]
	sl := nodetest.Publish(t, a, "Rotate leaked keys", "revoke and rotate leaked credentials first", protocol.VisibilityPublic, "ops")
	nodetest.Eventually(t, "b to receive the lesson", func() bool { return nodetest.HasRemote(b, sl.Key()) })

	for _, ref := range []string{sl.Key(), sl.Lesson.ID} {
		rec, err := b.Get(ctx, ref)
		if err != nil || rec.ID != sl.Lesson.ID || rec.Content != sl.Lesson.Content || rec.Visibility != protocol.VisibilityPublic {
			t.Fatalf("get %s: %+v, %v", ref, rec, err)
		}
		got, err := b.Export(ctx, ref)
		if err != nil || got.Key() != sl.Key() || protocol.Verify(got, protocol.VerifyOptions{AllowOld: true}) != nil {
			t.Fatalf("export %s: %v", ref, err)
		}
	}
	for _, o := range []store.ListOptions{{Origin: store.OriginRemote}, {Origin: store.OriginAll, Publisher: a.ID().String()}} {
		l, err := b.List(ctx, o)
		if err != nil || l.Total != 1 || l.Keys[0] != sl.Key() {
			t.Fatalf("list %+v: %+v, %v", o, l, err)
		}
	}
	st, err := b.Status(ctx)
	if err != nil || st.Remote != 1 || st.Total != 0 {
		t.Fatalf("status counts own %d, received %d (%v); want 0 and 1", st.Total, st.Remote, err)
	}

	// An unlisted lesson never travels by gossip: b fetches it by key.
	hidden := nodetest.Publish(t, a, "Unlisted", "shared by link only", protocol.VisibilityUnlisted)
	rec, err := b.Get(ctx, hidden.Key())
	if err != nil || rec.Content != hidden.Lesson.Content {
		t.Fatalf("get an unlisted lesson held only by its publisher: %+v, %v", rec, err)
	}
	if _, err := b.Get(ctx, "nothing@"+a.ID().String()); !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("get a lesson nobody has: %v", err)
	}
	if _, err := b.Get(ctx, "bad@key@"); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("get a malformed key: %v", err)
	}
}

// TestUntrustedPublicationsAreListedThenBroughtIn: a node that follows a
// topic refuses the lessons of a publisher it does not trust, lists that
// publisher (not the content) as pending and counts it in its status;
// trusting the publisher brings its lessons in at once, with no sync
// asked for.
func TestUntrustedPublicationsAreListedThenBroughtIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{Topics: []string{"ops"}})
	a, b := nodes[0], nodes[1]
	nodetest.SetTrust(t, a, b, trust.LevelFull)
	nodetest.Connect(t, b, a)
	nodetest.WaitMesh(t, "ops", a, b)
	sl := nodetest.Publish(t, a, "Rotate leaked keys", "revoke and rotate leaked credentials first", protocol.VisibilityPublic, "ops")

	nodetest.Eventually(t, "b to list a as pending", func() bool {
		p, err := b.TrustPending(ctx)
		return err == nil && len(p) == 1 && p[0].NodeID == a.ID().String() && p[0].Lessons == 1 && slices.Equal(p[0].Topics, []string{"ops"})
	})
	st, err := b.Status(ctx)
	if err != nil || st.Pending != (api.PendingSummary{Publishers: 1, Lessons: 1}) || st.Remote != 0 {
		t.Fatalf("status pending %+v remote %d, %v", st.Pending, st.Remote, err)
	}
	if nodetest.HasRemote(b, sl.Key()) {
		t.Fatal("an untrusted publisher's lesson was stored")
	}

	if err := b.TrustSet(ctx, a.ID().String(), trust.LevelFull, ""); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the lesson at b once it trusts a", func() bool { return nodetest.HasRemote(b, sl.Key()) })
	if p, _ := b.TrustPending(ctx); len(p) != 0 {
		t.Fatalf("still pending after trusting: %+v", p)
	}
}

// TestTrustPathsInAnyOrder: C trusts B, B trusts C and A: in every order
// of the three trust adds, C gets the two-hop path to A at once (B pushes
// its new vouch; a node newly trusting a peer asks for its vouch).
func TestTrustPathsInAnyOrder(t *testing.T) {
	t.Parallel()
	type add struct{ from, to int } // indexes into a, b, c
	adds := []add{{2, 1}, {1, 2}, {1, 0}}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			_, n := nodetest.Mock(t, 3, 0, node.Config{})
			a, b, c := n[0], n[1], n[2]
			nodetest.Connect(t, c, b)
			nodetest.Connect(t, a, b)
			for _, i := range order {
				from, to := n[adds[i].from], n[adds[i].to]
				if err := from.TrustSet(ctx, to.ID().String(), trust.LevelFull, ""); err != nil {
					t.Fatal(err)
				}
			}
			nodetest.Eventually(t, "C's path to A through B", func() bool {
				p, err := c.TrustPath(ctx, a.ID().String())
				return err == nil && p.Trusted && slices.Equal(p.Hops, []string{c.ID().String(), b.ID().String(), a.ID().String()})
			})
		})
	}
}

// TestBlockTakesLessonsAway: blocking a publisher removes its lessons from
// search, get and list at once.
func TestBlockTakesLessonsAway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 2, "ops")
	a, b := nodes[0], nodes[1]
	sl := nodetest.Publish(t, a, "Rotate leaked keys", "revoke and rotate leaked credentials first", protocol.VisibilityPublic, "ops")
	nodetest.Eventually(t, "b to receive the lesson", func() bool { return nodetest.HasRemote(b, sl.Key()) })

	if err := b.TrustSet(ctx, a.ID().String(), trust.LevelNone, "spam"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Search(ctx, store.Query{Text: "leaked credentials", Origin: store.OriginAll})
	if err != nil || len(res.Hits) != 0 {
		t.Fatalf("search after the block: %+v, %v", res, err)
	}
	if l, err := b.List(ctx, store.ListOptions{Origin: store.OriginRemote}); err != nil || l.Total != 0 {
		t.Fatalf("list after the block: %+v, %v", l, err)
	}
	if _, err := b.Store().Remote(ctx, sl.Key()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the blocked publisher's lesson is still held: %v", err)
	}
}

// TestBusyListenAddressIsAnError: a node told to listen on a TCP port
// another process holds does not start (libp2p alone would start on the
// QUIC address that worked), and the error names the address.
func TestBusyListenAddressIsAnError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	busy := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	_, err = node.New(context.Background(), node.Config{ListenAddrs: []string{busy, "/ip4/127.0.0.1/udp/0/quic-v1"}, DisableMDNS: true})
	if !errors.Is(err, node.ErrNotListening) || !strings.Contains(err.Error(), busy) {
		t.Fatalf("New on a busy port: %v", err)
	}
	// Every address busy: libp2p refuses, and the error is the same kind.
	_, err = node.New(context.Background(), node.Config{ListenAddrs: []string{busy}, DisableMDNS: true})
	if !errors.Is(err, node.ErrNotListening) || !strings.Contains(err.Error(), busy) {
		t.Fatalf("New on only a busy port: %v", err)
	}
	// Port 0 and the port once freed are fine.
	l.Close()
	nodetest.Local(t, node.Config{ListenAddrs: []string{busy, "/ip4/127.0.0.1/udp/0/quic-v1"}})
}

// TestStoredPublicIsPublished: a record stored public is published as it
// is stored (and announced: a peer following the node's feed receives it);
// stored again unchanged it is not signed again; changed, it is published
// anew on the same topics; a record published encrypted is never
// published in the clear by a store.
func TestStoredPublicIsPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := nodetest.Line(t, 2, "ops")
	a, b := nodes[0], nodes[1]
	rec := &protocol.Lesson{Type: "lesson", Title: "Stored public", Content: "a record stored public is a publication", Visibility: protocol.VisibilityPublic}
	id, _, err := a.Put(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := a.Export(ctx, id)
	if err != nil || sl.Publication.Visibility != protocol.VisibilityPublic || sl.Lesson.Content != rec.Content {
		t.Fatalf("export after a public store: %+v, %v", sl, err)
	}
	if err := b.Follow(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	// Again, unchanged: the same publication.
	rec.ID = id
	if _, _, err := a.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Export(ctx, id); err != nil || again.Publication.PublishedAt != sl.Publication.PublishedAt {
		t.Fatalf("an unchanged store signed again: %+v, %v", again, err)
	}
	// Published on a topic, then changed by a store: published anew there.
	if _, err := a.Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: []string{"ops"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	rec.Content = "changed by a store"
	if _, _, err := a.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	changed, err := a.Export(ctx, id)
	if err != nil || changed.Lesson.Content != rec.Content || !slices.Equal(changed.Publication.Topics, []string{"ops"}) {
		t.Fatalf("export after a changed store: %+v, %v", changed, err)
	}
	nodetest.Eventually(t, "b to receive the changed lesson", func() bool {
		got, err := b.Store().Remote(ctx, changed.Key())
		return err == nil && got.Lesson.Content == rec.Content
	})
	// Stored private: no longer shared here.
	rec.Visibility = protocol.VisibilityPrivate
	if _, _, err := a.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Export(ctx, id); err == nil {
		t.Fatal("a record stored private still exports its publication")
	}
	// Published encrypted: a public store is refused, and nothing changes.
	eid, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "Sealed", Content: "for readers with the key"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublishEncrypted(ctx, eid, api.EncryptOptions{Topics: []string{"ops"}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.Put(ctx, &protocol.Lesson{ID: eid, Type: "lesson", Title: "Sealed", Content: "for readers with the key", Visibility: protocol.VisibilityPublic})
	if !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("a public store of an encrypted publication: %v", err)
	}
	if _, err := a.Store().Publication(ctx, eid); err == nil {
		t.Fatal("a signed (clear) publication exists for an encrypted one")
	}
}

// TestSecondNodeOnSamePortRefused: libp2p binds TCP with SO_REUSEPORT, so
// a second node on a port a first one holds would bind it too and share
// its connections; New refuses it instead.
func TestSecondNodeOnSamePortRefused(t *testing.T) {
	t.Parallel()
	first := nodetest.Local(t, node.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	var port string
	for _, a := range first.Host().Network().ListenAddresses() {
		if v, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			port = v
		}
	}
	addr := "/ip4/127.0.0.1/tcp/" + port
	_, err := node.New(context.Background(), node.Config{ListenAddrs: []string{addr}, DisableMDNS: true})
	if !errors.Is(err, node.ErrNotListening) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("a second node on %s: %v", addr, err)
	}
}
