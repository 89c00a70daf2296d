package pubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/protocol"
)

// line builds n nodes connected in a line, every one following topic and
// the feed of the first node.
func line(t *testing.T, n int, topic string, latency time.Duration) (*testNet, []*testNode, []*collector) {
	t.Helper()
	tn := newTestNet(t)
	tn.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	nodes := make([]*testNode, n)
	cols := make([]*collector, n)
	for i := range nodes {
		nodes[i] = tn.node()
		cols[i] = collect(t, nodes[i].svc)
		if i > 0 {
			tn.connect(nodes[i-1].h, nodes[i].h)
		}
	}
	for _, nd := range nodes {
		if err := nd.svc.Follow(topic); err != nil {
			t.Fatal(err)
		}
		if err := nd.svc.FollowFeed(nodes[0].id); err != nil {
			t.Fatal(err)
		}
	}
	tn.waitMesh(nodes, protocol.TopicName(topic))
	tn.waitMesh(nodes, protocol.FeedName(nodes[0].id))
	return tn, nodes, cols
}

func TestPropagationLine(t *testing.T) {
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprintf("latency=%s", latency), func(t *testing.T) { testPropagationLine(t, latency) })
	}
}

func testPropagationLine(t *testing.T, latency time.Duration) {
	_, nodes, cols := line(t, 10, "rust", latency)
	// Publishers at both ends and in the middle: every lesson crosses up
	// to nine hops, each validating it.
	var want []string
	for i, pub := range []*testNode{nodes[0], nodes[9], nodes[4]} {
		sl := signLesson(t, pub.key, fmt.Sprintf("line-%d", i), time.Now(), protocol.VisibilityPublic, "rust")
		start := time.Now()
		if err := pub.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
			t.Fatal(err)
		}
		key := lessonKey(sl)
		want = append(want, key)
		for j, c := range cols {
			if nodes[j] == pub {
				continue
			}
			waitFor(t, 15*time.Second, fmt.Sprintf("node %d to receive %s", j, key), func() bool { return c.has(key) })
		}
		t.Logf("lesson from node %d reached all 9 other nodes of the line in %s (link latency %s)", slices.Index(nodes, pub), time.Since(start).Round(time.Millisecond), latency)
	}
	for j, c := range cols {
		for _, key := range want {
			if n := c.count(key); n > 1 {
				t.Errorf("node %d got %s %d times (feed and topic must be delivered once)", j, key, n)
			}
		}
		for _, d := range c.got {
			if d.ReceivedFrom == nodes[j].h.ID() {
				t.Errorf("node %d delivered its own publication", j)
			}
		}
	}
	// The publisher's own announcement is never delivered back to it.
	if cols[0].has(want[0]) {
		t.Error("node 0 got its own lesson back")
	}
	st := nodes[5].svc.Stats()
	if st.Accepted == 0 || st.Delivered != 3 || len(st.Rejected) != 0 {
		t.Errorf("stats of a middle node = %+v, want accepted messages, 3 deliveries, no rejections", st)
	}
}

// TestPropagationSparse runs a sparse graph: a ring of ten with two chords.
func TestPropagationSparse(t *testing.T) {
	tn := newTestNet(t)
	const n = 10
	nodes := make([]*testNode, n)
	cols := make([]*collector, n)
	for i := range nodes {
		nodes[i] = tn.node()
		cols[i] = collect(t, nodes[i].svc)
	}
	for i := range nodes {
		tn.connect(nodes[i].h, nodes[(i+1)%n].h)
	}
	tn.connect(nodes[0].h, nodes[5].h)
	tn.connect(nodes[2].h, nodes[7].h)
	for _, nd := range nodes {
		if err := nd.svc.Follow("Go"); err != nil { // topic names are case-insensitive
			t.Fatal(err)
		}
	}
	tn.waitMesh(nodes, protocol.TopicName("go"))
	var keys []string
	for i, nd := range nodes {
		sl := signLesson(t, nd.key, fmt.Sprintf("sparse-%d", i), time.Now(), protocol.VisibilityPublic, "go")
		if err := nd.svc.Announce(context.Background(), pubAnn(sl), []string{"go"}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, lessonKey(sl))
	}
	for j, c := range cols {
		for i, key := range keys {
			if i == j {
				continue
			}
			waitFor(t, 15*time.Second, fmt.Sprintf("node %d to receive %s", j, key), func() bool { return c.has(key) })
		}
	}
}

func TestRevocationDelivery(t *testing.T) {
	_, nodes, cols := line(t, 5, "rust", 0)
	pub := nodes[0]
	sl := signLesson(t, pub.key, "to-revoke", time.Now(), protocol.VisibilityPublic, "rust")
	if err := pub.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	for j, c := range cols[1:] {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to receive the lesson", j+1), func() bool { return c.has(lessonKey(sl)) })
		nodes[j+1].chk.setHeld(sl.Key(), sl.Publication.PublishedAt) // the node stores it
	}
	rev, err := protocol.SignRevocation(pub.key, "to-revoke", protocol.ReasonIncorrect, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub.chk.setRevoked(sl.Key()) // the node keeps its own tombstone first
	if err := pub.svc.Announce(context.Background(), revAnn(rev), []string{"rust"}); err != nil {
		t.Fatalf("announce revocation: %v", err)
	}
	rkey := "revocation:" + rev.Key()
	for j, c := range cols[1:] {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to receive the revocation", j+1), func() bool { return c.has(rkey) })
		if n := c.count(rkey); n != 1 {
			t.Errorf("node %d got the revocation %d times", j+1, n)
		}
	}
	// Republishing the revoked lesson is refused at the source.
	if err := pub.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); !errors.Is(err, ErrRevoked) {
		t.Errorf("announce of a revoked lesson: %v, want ErrRevoked", err)
	}
}

// TestRevocationOfHeldLessonFromUntrusted: a revocation of a lesson the
// node holds is taken even when its publisher is no longer trusted.
func TestRevocationOfHeldLessonFromUntrusted(t *testing.T) {
	tn := newTestNet(t)
	a, b := tn.node(), tn.node()
	cb := collect(t, b.svc)
	tn.connect(a.h, b.h)
	if err := b.svc.FollowFeed(a.id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to see b on its feed", func() bool {
		return slices.Contains(a.svc.ps.ListPeers(protocol.FeedName(a.id)), b.h.ID())
	})
	b.chk.distrust(a.id)
	b.chk.setHeld("held@"+a.id, 1)
	r1, _ := protocol.SignRevocation(a.key, "held", "", time.Now())
	r2, _ := protocol.SignRevocation(a.key, "not-held", "", time.Now())
	for _, r := range []*protocol.Revocation{r2, r1} {
		if err := a.svc.Announce(context.Background(), revAnn(r), nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the revocation of the held lesson", func() bool { return cb.has("revocation:" + r1.Key()) })
	if cb.has("revocation:" + r2.Key()) {
		t.Error("a revocation from an untrusted publisher of a lesson not held was delivered")
	}
	if n := b.svc.Stats().Ignored[ReasonUntrusted]; n != 1 {
		t.Errorf("ignored untrusted = %d, want 1", n)
	}
}

// TestRefusedIsTold: a valid publication ignored because its publisher is
// not trusted reaches Config.Refused, with its key, publisher, topics and
// the peer that forwarded it; a trusted one does not.
func TestRefusedIsTold(t *testing.T) {
	tn := newTestNet(t)
	var mu sync.Mutex
	var got []Refusal
	a := tn.node()
	b := tn.nodeWith(Config{Refused: func(r Refusal) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}})
	cb := collect(t, b.svc)
	tn.connect(a.h, b.h)
	for _, n := range []*testNode{a, b} {
		if err := n.svc.Follow("rust"); err != nil {
			t.Fatal(err)
		}
	}
	tn.waitMesh([]*testNode{a, b}, protocol.TopicName("rust"))
	b.chk.distrust(a.id)
	refused := signLesson(t, a.key, "refused", time.Now(), protocol.VisibilityPublic, "rust")
	if err := a.svc.Announce(context.Background(), pubAnn(refused), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the refusal", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	r := got[0]
	mu.Unlock()
	if r.Key != refused.Key() || r.Publisher != a.id || !slices.Equal(r.Topics, []string{"rust"}) || r.ReceivedFrom != a.h.ID() {
		t.Fatalf("refusal %+v", r)
	}
	if cb.len() != 0 {
		t.Fatal("a refused publication was delivered")
	}
}

func TestFollowing(t *testing.T) {
	tn := newTestNet(t)
	a, other := tn.node(), tn.host()
	s := a.svc
	for _, tp := range []string{"rust", "Go", "rust"} {
		if err := s.Follow(tp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FollowFeed(other.id); err != nil {
		t.Fatal(err)
	}
	topics, feeds := s.Following()
	if !slices.Equal(topics, []string{"go", "rust"}) || !slices.Equal(feeds, []string{other.id}) {
		t.Fatalf("Following = %v %v", topics, feeds)
	}
	if err := s.Unfollow("RUST"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unfollow("never-followed"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnfollowFeed(other.id); err != nil {
		t.Fatal(err)
	}
	topics, feeds = s.Following()
	if !slices.Equal(topics, []string{"go"}) || len(feeds) != 0 {
		t.Fatalf("after unfollow: Following = %v %v", topics, feeds)
	}
	// Follow again after Unfollow: a fresh subscription on the same handle.
	if err := s.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a/b", "sp ace", "ü", string(make([]byte, 200))} {
		if err := s.Follow(bad); !errors.Is(err, ErrTopic) {
			t.Errorf("Follow(%q) = %v, want ErrTopic", bad, err)
		}
	}
	for _, bad := range []string{"", "not-a-node-id", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"} {
		if err := s.FollowFeed(bad); !errors.Is(err, ErrTopic) {
			t.Errorf("FollowFeed(%q) = %v, want ErrTopic", bad, err)
		}
	}
}

// TestAnnounceDoesNotSubscribe: publishing on a topic joins it without
// following it, so the node receives nothing there.
func TestAnnounceDoesNotSubscribe(t *testing.T) {
	tn := newTestNet(t)
	a, b := tn.node(), tn.node()
	ca, cb := collect(t, a.svc), collect(t, b.svc)
	tn.connect(a.h, b.h)
	if err := b.svc.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to see b on rust", func() bool {
		return slices.Contains(a.svc.ps.ListPeers(protocol.TopicName("rust")), b.h.ID())
	})
	sl := signLesson(t, a.key, "fanout", time.Now(), protocol.VisibilityPublic, "rust")
	if err := a.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b to receive", func() bool { return cb.has(lessonKey(sl)) })
	if topics, feeds := a.svc.Following(); len(topics)+len(feeds) != 0 {
		t.Errorf("announcing subscribed a to %v %v", topics, feeds)
	}
	if slices.Contains(b.svc.ps.ListPeers(protocol.TopicName("rust")), a.h.ID()) {
		t.Error("b sees a subscribed to rust")
	}
	sl2 := signLesson(t, b.key, "back", time.Now(), protocol.VisibilityPublic, "rust")
	if err := b.svc.Announce(context.Background(), pubAnn(sl2), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if ca.len() != 0 {
		t.Errorf("a, not following rust, got %d deliveries", ca.len())
	}
}

func TestAnnounceRefuses(t *testing.T) {
	tn := newTestNet(t)
	a := tn.node()
	other := testKey(200)
	now := time.Now()
	ctx := context.Background()
	unlisted := signLesson(t, a.key, "u", now, protocol.VisibilityUnlisted, "rust")
	stale := signLesson(t, a.key, "s", now.Add(-2*time.Hour), protocol.VisibilityPublic, "rust")
	good := signLesson(t, a.key, "g", now, protocol.VisibilityPublic, "rust")
	tampered := signLesson(t, a.key, "x", now, protocol.VisibilityPublic, "rust")
	tampered.Lesson.Content = "changed"
	rev, _ := protocol.SignRevocation(other, "r", "", now)
	encGood := encryptLesson(t, a.key, "eg", now, protocol.VisibilityPublic, "rust")
	encUnlisted := encryptLesson(t, a.key, "eu", now, protocol.VisibilityUnlisted, "rust")
	for _, tc := range []struct {
		name   string
		a      *protocol.Announcement
		topics []string
		want   error
	}{
		{"nil", nil, nil, ErrAnnouncement},
		{"unlisted", pubAnn(unlisted), nil, ErrNotPublic},
		{"stale", pubAnn(stale), nil, ErrAnnouncement},
		{"tampered", pubAnn(tampered), nil, ErrAnnouncement},
		{"topic not published on", pubAnn(good), []string{"go"}, ErrAnnouncement},
		{"bad topic", pubAnn(good), []string{"rust", "a/b"}, ErrAnnouncement},
		{"both", &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: good, Revocation: rev}, nil, ErrAnnouncement},
		{"neither", &protocol.Announcement{Type: protocol.MsgRevocation}, nil, ErrAnnouncement},
		{"encrypted unlisted", encAnn(encUnlisted), nil, ErrNotPublic},
		{"encrypted topic not published on", encAnn(encGood), []string{"go"}, ErrAnnouncement},
		{"signed and encrypted", &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: good, EncryptedLesson: encGood}, nil, ErrAnnouncement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.svc.Announce(ctx, tc.a, tc.topics); !errors.Is(err, tc.want) {
				t.Errorf("Announce = %v, want %v", err, tc.want)
			}
		})
	}
	// Another publisher's revocation goes on that publisher's feed, where
	// it is valid; so does a re-announced lesson.
	if err := a.svc.Announce(ctx, revAnn(rev), nil); err != nil {
		t.Errorf("re-announce another node's revocation: %v", err)
	}
	if err := a.svc.Announce(ctx, pubAnn(good), []string{"RUST"}); err != nil {
		t.Errorf("announce: %v", err)
	}
	if err := a.svc.Announce(ctx, encAnn(encGood), []string{"rust"}); err != nil {
		t.Errorf("announce encrypted: %v", err)
	}
}

// TestEncryptedPropagation: an encrypted lesson crosses a line of
// validating nodes like a signed one, and arrives as it was sent.
func TestEncryptedPropagation(t *testing.T) {
	_, nodes, cols := line(t, 4, "rust", 0)
	pub := nodes[0]
	el := encryptLesson(t, pub.key, "enc", time.Now(), protocol.VisibilityPublic, "rust")
	if err := pub.svc.Announce(context.Background(), encAnn(el), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("encrypted:%s:%d", el.Key(), el.Publication.PublishedAt)
	for j, c := range cols[1:] {
		waitFor(t, 15*time.Second, fmt.Sprintf("node %d to receive %s", j+1, key), func() bool { return c.has(key) })
	}
	for _, c := range cols[1:] {
		c.mu.Lock()
		for _, d := range c.got {
			if d.Announcement.EncryptedLesson == nil || d.Announcement.EncryptedLesson.Ciphertext != el.Ciphertext {
				t.Errorf("delivered %+v", d.Announcement)
			}
		}
		c.mu.Unlock()
	}
}

func TestClose(t *testing.T) {
	tn := newTestNet(t)
	a := tn.node()
	if err := a.svc.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := a.svc.Close(); !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if _, ok := <-a.svc.Deliveries(); ok {
		t.Fatal("Deliveries not closed")
	}
	if err := a.svc.Follow("go"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Follow after Close = %v", err)
	}
	if err := a.svc.Unfollow("rust"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Unfollow after Close = %v", err)
	}
	sl := signLesson(t, a.key, "late", time.Now(), protocol.VisibilityPublic)
	if err := a.svc.Announce(context.Background(), pubAnn(sl), nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Announce after Close = %v", err)
	}
	// A new service can run on the same host after Close.
	s2, err := New(Config{Host: a.h, Checker: newFakeChecker()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	tn := newTestNet(t)
	h := tn.host().h
	if _, err := New(Config{Checker: newFakeChecker()}); err == nil {
		t.Error("New without a host succeeded")
	}
	if _, err := New(Config{Host: h}); err == nil {
		t.Error("New without a checker succeeded")
	}
	p := DefaultParams()
	p.Window = -time.Second
	if _, err := New(Config{Host: h, Checker: newFakeChecker(), Params: p}); err == nil {
		t.Error("New with bad params succeeded")
	}
}

func TestMetrics(t *testing.T) {
	tn := newTestNet(t)
	reg := prometheus.NewRegistry()
	ph := tn.host()
	raw := tn.raw()
	tn.connect(ph.h, raw.h)
	s, err := New(Config{Host: ph.h, Checker: newFakeChecker(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A second service on the same registry is refused, not silently merged.
	if _, err := New(Config{Host: tn.host().h, Checker: newFakeChecker(), Registerer: reg}); err == nil {
		t.Error("two services registered on one registry")
	}
	if err := s.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	name := protocol.TopicName("rust")
	raw.waitPeer(t, name, ph.h.ID())
	raw.publish(t, name, []byte(`{"type":"nonsense"}`))
	waitFor(t, 10*time.Second, "the rejection", func() bool { return s.Stats().Rejected[ReasonMalformed] == 1 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted, observed bool
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "mesh_pubsub_messages_total":
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				counted = labels["outcome"] == "rejected" && labels["reason"] == ReasonMalformed && m.GetCounter().GetValue() == 1
			case "mesh_pubsub_validation_duration_seconds":
				observed = m.GetHistogram().GetSampleCount() == 1
			}
		}
	}
	if !counted || !observed {
		t.Errorf("metrics: counter of the rejection found %v, duration observed %v", counted, observed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregisters: a new service can use the registry.
	s2, err := New(Config{Host: ph.h, Checker: newFakeChecker(), Registerer: reg})
	if err != nil {
		t.Fatalf("New after Close on the same registry: %v", err)
	}
	_ = s2.Close()
}

// slowChecker answers only when its context expires, like a store that
// hangs.
type slowChecker struct{ *fakeChecker }

func (slowChecker) Revoked(ctx context.Context, _ string) bool { <-ctx.Done(); return false }

// TestValidatorTimeout: a validation that outlives Params.ValidatorTimeout
// is ignored (the sender is not at fault), and an expired Checker's answer
// is never taken for a "no".
func TestValidatorTimeout(t *testing.T) {
	tn := newTestNet(t)
	pub := tn.node()
	p := DefaultParams()
	p.ValidatorTimeout = 200 * time.Millisecond
	ph := tn.host()
	s, err := New(Config{Host: ph.h, Checker: slowChecker{newFakeChecker()}, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, s)
	tn.connect(pub.h, ph.h)
	if err := s.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "pub to see the subscription", func() bool {
		return slices.Contains(pub.svc.ps.ListPeers(protocol.TopicName("rust")), ph.h.ID())
	})
	sl := signLesson(t, pub.key, "slow", time.Now(), protocol.VisibilityPublic, "rust")
	if err := pub.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the timeout", func() bool { return s.Stats().Ignored[ReasonTimeout] == 1 })
	if c.len() != 0 {
		t.Error("a message whose validation timed out was delivered")
	}
	if sc, ok := s.score(pub.h.ID()); ok && sc < 0 {
		t.Errorf("a timeout cost the sender score: %v", sc)
	}
}

// TestUnfollowWithFullDeliveries: Unfollow returns even when nobody reads
// Deliveries.
func TestUnfollowWithFullDeliveries(t *testing.T) {
	tn := newTestNet(t)
	a, b := tn.node(), tn.node()
	tn.connect(a.h, b.h)
	if err := b.svc.Follow("rust"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a to see b", func() bool {
		return slices.Contains(a.svc.ps.ListPeers(protocol.TopicName("rust")), b.h.ID())
	})
	n := deliveriesBuffer + 5
	for i := 0; i < n; i++ {
		sl := signLesson(t, a.key, fmt.Sprintf("fill-%d", i), time.Now(), protocol.VisibilityPublic, "rust")
		if err := a.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "b's buffer to fill", func() bool { return len(b.svc.Deliveries()) == deliveriesBuffer })
	done := make(chan error, 1)
	go func() { done <- b.svc.Unfollow("rust") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Unfollow blocked on an unread Deliveries channel")
	}
	if err := b.svc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpTold: a node is told to catch up with a peer when the peer
// joins its mesh (what passed before was not forwarded to it), and again
// when its full queues drop a message the peer sent (GossipSub will not
// offer it again).
func TestCatchUpTold(t *testing.T) {
	tn := newTestNet(t)
	var mu sync.Mutex
	var told []peer.ID
	a := tn.node()
	b := tn.nodeWith(Config{CatchUp: func(p peer.ID) {
		mu.Lock()
		told = append(told, p)
		mu.Unlock()
	}})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range told {
			if p != a.h.ID() {
				t.Fatalf("told to catch up with %s, not a peer", p)
			}
		}
		return len(told)
	}
	tn.connect(a.h, b.h)
	for _, n := range []*testNode{a, b} {
		if err := n.svc.Follow("rust"); err != nil {
			t.Fatal(err)
		}
	}
	tn.waitMesh([]*testNode{a, b}, protocol.TopicName("rust"))
	waitFor(t, 10*time.Second, "the graft to be told", func() bool { return count() > 0 })
	grafted := count()

	// b reads none of its deliveries: its channel, then GossipSub's
	// buffer for the topic fill, and what comes after is dropped.
	n := deliveriesBuffer + subscriptionBuffer + 50
	for i := range n {
		sl := signLesson(t, a.key, fmt.Sprintf("flood-%d", i), time.Now(), protocol.VisibilityPublic, "rust")
		if err := a.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the dropped deliveries to be told", func() bool { return count() > grafted })
}

// MeshPeers follows GossipSub's grafts for a followed topic, takes the
// MESH topic name in any case, and is empty once the topic is unfollowed.
func TestMeshPeers(t *testing.T) {
	tn := newTestNet(t)
	a, b := tn.node(), tn.node()
	tn.connect(a.h, b.h)
	for _, n := range []*testNode{a, b} {
		if got := n.svc.MeshPeers("rust"); got != nil {
			t.Fatalf("MeshPeers before following = %v", got)
		}
		if err := n.svc.Follow("rust"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "a and b in each other's mesh", func() bool {
		return slices.Equal(a.svc.MeshPeers("Rust"), []peer.ID{b.h.ID()}) &&
			slices.Equal(b.svc.MeshPeers("rust"), []peer.ID{a.h.ID()})
	})
	if got := a.svc.MeshPeers("go"); got != nil {
		t.Fatalf("MeshPeers of a topic not followed = %v", got)
	}
	if err := a.svc.Unfollow("rust"); err != nil {
		t.Fatal(err)
	}
	if got := a.svc.MeshPeers("rust"); got != nil {
		t.Fatalf("MeshPeers after Unfollow = %v", got)
	}
	waitFor(t, 10*time.Second, "b to drop a from its mesh", func() bool { return len(b.svc.MeshPeers("rust")) == 0 })
}
