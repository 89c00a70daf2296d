package pubsub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
)

// fakeChecker is the node's side of validation in tests: a tombstone set,
// the versions held, and the publishers not trusted.
type fakeChecker struct {
	mu        sync.Mutex
	revoked   map[string]bool
	held      map[string]int64
	untrusted map[string]bool
}

func newFakeChecker() *fakeChecker {
	return &fakeChecker{revoked: map[string]bool{}, held: map[string]int64{}, untrusted: map[string]bool{}}
}

func (c *fakeChecker) Revoked(_ context.Context, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revoked[key]
}

func (c *fakeChecker) HeldVersion(_ context.Context, key string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.held[key]
	return v, ok
}

func (c *fakeChecker) Trusted(nodeID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.untrusted[nodeID]
}

func (c *fakeChecker) setRevoked(key string) {
	c.mu.Lock()
	c.revoked[key] = true
	c.mu.Unlock()
}

func (c *fakeChecker) setHeld(key string, v int64) {
	c.mu.Lock()
	c.held[key] = v
	c.mu.Unlock()
}

func (c *fakeChecker) distrust(nodeID string) {
	c.mu.Lock()
	c.untrusted[nodeID] = true
	c.mu.Unlock()
}

// testKey returns a deterministic Ed25519 key: the seed is 32 copies of b.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func nodeIDOf(t testing.TB, key ed25519.PrivateKey) string {
	t.Helper()
	id, err := protocol.NodeID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// peerHost is one mocknet host with its Ed25519 key.
type peerHost struct {
	h   host.Host
	key ed25519.PrivateKey
	id  string // node ID, h.ID().String()
}

// testNet is a mocknet on (fake) loopback addresses: nothing listens.
type testNet struct {
	t     testing.TB
	mn    mocknet.Mocknet
	next  byte
	links map[peer.ID][]peer.ID
}

func newTestNet(t testing.TB) *testNet {
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	return &testNet{t: t, mn: mn, next: 1, links: map[peer.ID][]peer.ID{}}
}

// host adds a host whose key is testKey(n) for the next n.
func (tn *testNet) host() peerHost {
	tn.t.Helper()
	key := testKey(tn.next)
	tn.next++
	sk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		tn.t.Fatal(err)
	}
	addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 40000+int(tn.next)))
	h, err := tn.mn.AddPeer(sk, addr)
	if err != nil {
		tn.t.Fatal(err)
	}
	return peerHost{h: h, key: key, id: h.ID().String()}
}

// connect links and connects a and b.
func (tn *testNet) connect(a, b host.Host) {
	tn.t.Helper()
	if _, err := tn.mn.LinkPeers(a.ID(), b.ID()); err != nil {
		tn.t.Fatal(err)
	}
	if _, err := tn.mn.ConnectPeers(a.ID(), b.ID()); err != nil {
		tn.t.Fatal(err)
	}
	tn.links[a.ID()] = append(tn.links[a.ID()], b.ID())
	tn.links[b.ID()] = append(tn.links[b.ID()], a.ID())
}

// testNode is a host running a Service.
type testNode struct {
	peerHost
	svc *Service
	chk *fakeChecker
}

func (tn *testNet) node() *testNode { return tn.nodeWith(Config{}) }

// nodeWith starts a node with cfg (its Host and Checker are set here).
func (tn *testNet) nodeWith(cfg Config) *testNode {
	tn.t.Helper()
	ph := tn.host()
	chk := newFakeChecker()
	cfg.Host, cfg.Checker = ph.h, chk
	svc, err := New(cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { _ = svc.Close() })
	return &testNode{peerHost: ph, svc: svc, chk: chk}
}

// rawPeer is an attacker: a plain GossipSub instance, no validator, and a
// frame cap large enough to send anything.
type rawPeer struct {
	peerHost
	ps     *gossipsub.PubSub
	mu     sync.Mutex
	topics map[string]*gossipsub.Topic
}

func (tn *testNet) raw(opts ...gossipsub.Option) *rawPeer {
	tn.t.Helper()
	ph := tn.host()
	ctx, cancel := context.WithCancel(context.Background())
	tn.t.Cleanup(cancel)
	// A raw peer speaks MESH's GossipSub wire (unsigned messages, content
	// IDs); the attacks are on what the messages carry.
	ps, err := gossipsub.NewGossipSub(ctx, ph.h, append([]gossipsub.Option{gossipsub.WithMaxMessageSize(4 << 20),
		gossipsub.WithMessageSignaturePolicy(gossipsub.StrictNoSign), gossipsub.WithMessageIdFn(messageID)}, opts...)...)
	if err != nil {
		tn.t.Fatal(err)
	}
	return &rawPeer{peerHost: ph, ps: ps, topics: map[string]*gossipsub.Topic{}}
}

func (r *rawPeer) topic(t testing.TB, name string) *gossipsub.Topic {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if tp := r.topics[name]; tp != nil {
		return tp
	}
	tp, err := r.ps.Join(name)
	if err != nil {
		t.Fatal(err)
	}
	r.topics[name] = tp
	return tp
}

// publish sends raw bytes on a GossipSub topic.
func (r *rawPeer) publish(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := r.topic(t, name).Publish(context.Background(), data); err != nil {
		t.Fatalf("raw publish on %s: %v", name, err)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitTopicPeers waits until every node sees its linked neighbours
// subscribed to the GossipSub topic name (so a publication reaches them).
func (tn *testNet) waitTopicPeers(nodes []*testNode, name string) {
	tn.t.Helper()
	for _, n := range nodes {
		want := tn.links[n.h.ID()]
		waitFor(tn.t, 10*time.Second, "topic peers of "+n.id, func() bool {
			got := n.svc.ps.ListPeers(name)
			for _, p := range want {
				if isNode(nodes, p) && !slices.Contains(got, p) {
					return false
				}
			}
			return true
		})
	}
}

// waitMesh waits until every node has grafted, on the GossipSub topic name,
// each linked neighbour that is one of nodes. In the sparse graphs of the
// tests every node has fewer neighbours than Dlo, so all get grafted; a
// message received before that is forwarded to nobody.
func (tn *testNet) waitMesh(nodes []*testNode, name string) {
	tn.t.Helper()
	tn.waitTopicPeers(nodes, name)
	for _, n := range nodes {
		want := tn.links[n.h.ID()]
		waitFor(tn.t, 10*time.Second, "mesh of "+n.id, func() bool {
			got := n.svc.tracer.meshPeers(name)
			for _, p := range want {
				if isNode(nodes, p) && !slices.Contains(got, p) {
					return false
				}
			}
			return true
		})
	}
}

func isNode(nodes []*testNode, p peer.ID) bool {
	for _, n := range nodes {
		if n.h.ID() == p {
			return true
		}
	}
	return false
}

// waitRawPeer waits until the raw peer sees p subscribed to name.
func (r *rawPeer) waitPeer(t testing.TB, name string, p peer.ID) {
	t.Helper()
	r.topic(t, name)
	waitFor(t, 10*time.Second, "raw peer's view of "+name, func() bool {
		return slices.Contains(r.ps.ListPeers(name), p)
	})
}

// lesson returns a new public lesson on topics, signed by key at now.
func signLesson(t testing.TB, key ed25519.PrivateKey, id string, now time.Time, vis string, topics ...string) *protocol.SignedLesson {
	t.Helper()
	l := &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: "lesson " + id, Content: "content of " + id, Tags: topics}
	sl, err := protocol.Sign(key, l, protocol.Publication{Visibility: vis, PublishedAt: now.UnixMilli(), Topics: topics}, now)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// encryptLesson makes an encrypted lesson signed by key at now.
func encryptLesson(t testing.TB, key ed25519.PrivateKey, id string, now time.Time, vis string, topics ...string) *protocol.EncryptedLesson {
	t.Helper()
	l := &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: "secret " + id, Content: "sealed words"}
	el, err := protocol.EncryptLesson(protocol.NewLessonKey(), l, protocol.EncryptParams{NodeID: nodeIDOf(t, key), KeyID: "k" + id})
	if err != nil {
		t.Fatal(err)
	}
	el, err = protocol.SignEncrypted(key, el, protocol.Publication{Visibility: vis, PublishedAt: now.UnixMilli(), Topics: topics}, now)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func encAnn(el *protocol.EncryptedLesson) *protocol.Announcement {
	return &protocol.Announcement{Type: protocol.MsgPublication, EncryptedLesson: el}
}

func pubAnn(sl *protocol.SignedLesson) *protocol.Announcement {
	return &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: sl}
}

func revAnn(r *protocol.Revocation) *protocol.Announcement {
	return &protocol.Announcement{Type: protocol.MsgRevocation, Revocation: r}
}

func encode(t testing.TB, a *protocol.Announcement) []byte {
	t.Helper()
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collector gathers a node's deliveries.
type collector struct {
	mu   sync.Mutex
	got  []Delivery
	keys map[string]int
}

func collect(t testing.TB, svc *Service) *collector {
	c := &collector{keys: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range svc.Deliveries() {
			c.mu.Lock()
			c.got = append(c.got, d)
			c.keys[deliveryKey(d)]++
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = svc.Close(); <-done })
	return c
}

func deliveryKey(d Delivery) string {
	if a := d.Announcement; a.Revocation != nil {
		return "revocation:" + a.Revocation.Key()
	} else if a.EncryptedLesson != nil {
		return fmt.Sprintf("encrypted:%s:%d", a.EncryptedLesson.Key(), a.EncryptedLesson.Publication.PublishedAt)
	} else {
		return fmt.Sprintf("lesson:%s:%d", a.SignedLesson.Key(), a.SignedLesson.Publication.PublishedAt)
	}
}

func (c *collector) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key] > 0
}

func (c *collector) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func lessonKey(sl *protocol.SignedLesson) string {
	return fmt.Sprintf("lesson:%s:%d", sl.Key(), sl.Publication.PublishedAt)
}
