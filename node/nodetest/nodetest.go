package nodetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// Loopback is where Local nodes listen: TCP and QUIC on 127.0.0.1, ports
// the system picks.
var Loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Net is a mocknet on which nodes are started: every node added is linked
// to every node already there (links carry the latency given), and none is
// connected until asked. It is safe for concurrent use.
type Net struct {
	mn mocknet.Mocknet

	mu      sync.Mutex
	nodes   []*node.Node
	noLinks bool
}

// NewNet returns an empty mocknet whose links have latency.
func NewNet(latency time.Duration) *Net {
	mn := mocknet.New()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	return &Net{mn: mn}
}

// LinkNone makes the hosts started from now on unlinked: the caller links
// the pairs it wants through Mocknet (a benchmark's sparse graph, where a
// node must not reach one it has no edge to).
func (m *Net) LinkNone() {
	m.mu.Lock()
	m.noLinks = true
	m.mu.Unlock()
}

// Mocknet is the underlying mocknet, to link, unlink or connect peers
// directly.
func (m *Net) Mocknet() mocknet.Mocknet { return m.mn }

// Start starts a node on a new host of the mocknet, linked to every host
// already there. cfg's Host is set here, and its PrivateKey when empty (to
// the repo's key if it has a RepoDir); mDNS is off.
func (m *Net) Start(ctx context.Context, cfg node.Config) (*node.Node, error) {
	priv := cfg.PrivateKey
	var err error
	switch {
	case priv != nil:
	case cfg.RepoDir != "":
		// The repo's own identity, as a node started on it would have.
		if priv, _, err = node.LoadOrCreateKey(cfg.RepoDir); err != nil {
			return nil, err
		}
	default:
		if priv, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
			return nil, err
		}
	}
	h, i, err := m.addHost(priv)
	if err != nil {
		return nil, err
	}
	cfg.PrivateKey, cfg.Host, cfg.DisableMDNS = priv, h, true
	n, err := node.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.nodes[i] = n
	m.mu.Unlock()
	return n, nil
}

// NewHost adds a bare libp2p host to the mocknet, linked to every host
// there: a fake peer that speaks whatever protocols the test gives it.
func (m *Net) NewHost() (host.Host, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, _, err := m.addHost(priv)
	return h, err
}

// addHost adds a host with key priv, linked to every host there unless
// LinkNone was called, and returns it and its slot in m.nodes.
func (m *Net) addHost(priv crypto.PrivKey) (host.Host, int, error) {
	m.mu.Lock()
	i := len(m.nodes)
	m.nodes = append(m.nodes, nil)
	link := !m.noLinks
	m.mu.Unlock()
	h, err := m.mn.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip4/127.%d.%d.%d/tcp/4001", 1+i/62500, i/250%250, i%250+1)))
	if err != nil {
		return nil, 0, err
	}
	if link {
		for _, p := range m.mn.Peers() {
			if p != h.ID() {
				if _, err := m.mn.LinkPeers(h.ID(), p); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	return h, i, nil
}

// Close closes every node started on the net, in parallel, then the net.
func (m *Net) Close() error {
	m.mu.Lock()
	nodes := m.nodes
	m.nodes = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n != nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.Close() }()
		}
	}
	wg.Wait()
	return m.mn.Close()
}

// ConnectNodes connects a to b (a dials b), and returns once both sides
// count the connection (on a mocknet the dialled side learns of it a
// little after the dialler).
func ConnectNodes(ctx context.Context, a, b *node.Node) error {
	return ConnectHosts(ctx, a.Host(), b.Host())
}

// ConnectHosts connects host a to host b (a dials b), and returns once
// both sides count the connection and each has identified the other with
// the protocols it serves now.
//
// Identify runs once per connection: when it fails (a stream reset under
// load), the peers keep partial protocol lists until one of them pushes an
// update, and neither pushes to a peer it has not identified. So an
// attempt that has not got there within attemptTimeout closes the
// connections both ways and starts again on fresh ones, until ctx or
// Timeout ends.
func ConnectHosts(ctx context.Context, a, b host.Host) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		retry, err := connectOnce(actx, a, b)
		acancel()
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
		a.Network().ClosePeer(b.ID())
		b.Network().ClosePeer(a.ID())
	}
}

// attemptTimeout bounds one attempt of ConnectHosts.
const attemptTimeout = 6 * time.Second

// connectOnce is one attempt of ConnectHosts. A dial that fails is no
// reason to try again (retry false): a refusal is what some tests expect.
func connectOnce(ctx context.Context, a, b host.Host) (retry bool, err error) {
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		return false, err
	}
	return true, settle(ctx, a, b)
}

// settle waits until b counts a's connection and each side has identified
// the other with its protocols.
func settle(ctx context.Context, a, b host.Host) error {
	// a's Connect is a no-op when a still holds a connection to b's peer
	// ID that b does not: one to an earlier instance of b (a restart on
	// the same identity) whose close a has not noticed yet, or one b has
	// just dropped. So when b does not see a for a while, a closes what it
	// holds and dials again.
	redial := time.NewTicker(time.Second)
	defer redial.Stop()
	for b.Network().Connectedness(a.ID()) != network.Connected {
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodetest: %s dialled %s, which never saw the connection: %w", a.ID(), b.ID(), ctx.Err())
		case <-redial.C:
			a.Network().ClosePeer(b.ID())
			// An error here is the next tick's to retry, or ctx's to end.
			_ = a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
		case <-time.After(time.Millisecond):
		}
	}
	if err := waitIdentified(ctx, a, b); err != nil {
		return err
	}
	return waitIdentified(ctx, b, a)
}

// waitIdentified returns once a's peerstore lists every protocol b serves.
//
// Identify answers from a snapshot of the host's protocols that it updates
// after handlers are set, asynchronously, and pushes the update only to
// peers it has itself identified by then: a peer that connects in between
// (a node's host exists before the node sets its handlers) can keep a
// stale list for good. So b is nudged (a handler set and removed, which
// makes identify snapshot and push again) while a waits.
func waitIdentified(ctx context.Context, a, b host.Host) error {
	nudge := time.NewTicker(250 * time.Millisecond)
	defer nudge.Stop()
	for {
		want := b.Mux().Protocols()
		got, err := a.Peerstore().SupportsProtocols(b.ID(), want...)
		if err == nil && len(got) == len(want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodetest: %s never identified %s with its protocols (%d of %d known: %v of %v): %w", a.ID(), b.ID(), len(got), len(want), got, want, ctx.Err())
		case <-nudge.C:
			b.SetStreamHandler(nudgeProtocol, func(s network.Stream) { s.Reset() })
			b.RemoveStreamHandler(nudgeProtocol)
		case <-time.After(time.Millisecond):
		}
	}
}

// nudgeProtocol is the handler waitIdentified sets and removes at once.
const nudgeProtocol = "/mesh-test/nudge/1.0.0"

// TrustEach makes every node trust every other one fully.
func TrustEach(nodes ...*node.Node) error {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.Trust().Set(b.ID().String(), trust.LevelFull, "test"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nets holds the mocknet of each test that called New or Host.
var (
	netsMu sync.Mutex
	nets   = map[testing.TB]*Net{}
)

// netOf returns t's mocknet, made on first use and closed when t ends.
func netOf(t testing.TB) *Net {
	netsMu.Lock()
	defer netsMu.Unlock()
	m, ok := nets[t]
	if !ok {
		m = NewNet(0)
		nets[t] = m
		t.Cleanup(func() {
			m.Close()
			netsMu.Lock()
			delete(nets, t)
			netsMu.Unlock()
		})
	}
	return m
}

// New starts a node on the test's mocknet (one per test: every node a test
// starts with New can reach every other; a subtest has its own), configured
// by cfg, and closes it when the test ends. An Offline cfg starts an
// offline node and no host. Use Local for real sockets.
func New(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.Offline {
		return Local(t, cfg)
	}
	return MockNode(t, netOf(t), cfg)
}

// Host starts a bare libp2p host on the test's mocknet, for a fake peer.
func Host(t testing.TB) host.Host {
	t.Helper()
	h, err := netOf(t).NewHost()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Key is the identity key of an online node, as its host holds it.
func Key(n *node.Node) ed25519.PrivateKey {
	k := n.Host().Peerstore().PrivKey(n.ID())
	if k == nil {
		panic("nodetest: the host holds no private key")
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("nodetest: the host's key is no Ed25519 key: %d bytes, %v", len(raw), err))
	}
	return ed25519.PrivateKey(raw)
}

// NewKey makes an Ed25519 key: a publisher that runs no node.
func NewKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PeerOf is the node ID of key.
func PeerOf(t testing.TB, key ed25519.PrivateKey) peer.ID {
	t.Helper()
	id, err := protocol.NodeID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SignAs signs a lesson with key, published now with visibility.
func SignAs(t testing.TB, key ed25519.PrivateKey, id, title, content, visibility string) *protocol.SignedLesson {
	t.Helper()
	now := time.Now()
	sl, err := protocol.Sign(key, &protocol.Lesson{ID: id, Type: "lesson", Title: title, Content: content, CreatedAt: now.UnixMilli()},
		protocol.Publication{Visibility: visibility, PublishedAt: now.UnixMilli()}, now)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// Mock starts n nodes on a mocknet of their own for this test, with links
// of the given latency, each configured by cfg. They are linked, not
// connected.
func Mock(t testing.TB, n int, latency time.Duration, cfg node.Config) (*Net, []*node.Node) {
	t.Helper()
	m := NewNet(latency)
	t.Cleanup(func() { m.Close() })
	nodes := make([]*node.Node, n)
	for i := range nodes {
		nodes[i] = MockNode(t, m, cfg)
	}
	return m, nodes
}

// MockNode starts one more node on m, and closes it when the test ends
// (before what the test made earlier, such as its RepoDir).
func MockNode(t testing.TB, m *Net, cfg node.Config) *node.Node {
	t.Helper()
	n, err := m.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// LoopbackMaxConnsPerIP is the MaxConnsPerIP of a node Local starts
// (unless its Config sets one).
const LoopbackMaxConnsPerIP = 128

// Local starts a node on loopback (real TCP and QUIC sockets, unless cfg
// says otherwise) with mDNS off, and closes it when the test ends.
func Local(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = Loopback
	}
	cfg.DisableMDNS = true // tests talk to loopback only
	if cfg.MaxConnsPerIP == 0 {
		// Every node of a test is at 127.0.0.1: the default of 8
		// connections per address would refuse a test's own nodes once
		// a few restarts' connections are still closing.
		cfg.MaxConnsPerIP = LoopbackMaxConnsPerIP
	}
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// ConnectHost connects a bare host (a fake peer) to n, and returns once
// both sides count the connection and n has identified h with the
// protocols h serves now (a handler set just before connecting may
// otherwise reach n only with identify's next push).
func ConnectHost(t testing.TB, h host.Host, n *node.Node) {
	t.Helper()
	if err := ConnectHosts(context.Background(), h, n.Host()); err != nil {
		t.Fatal(err)
	}
}

// Connect links a to b (a dials b), and returns once both sides count the
// connection.
func Connect(t testing.TB, a, b *node.Node) {
	t.Helper()
	if err := ConnectNodes(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
}

// TrustAll makes every node trust every other one fully.
func TrustAll(t testing.TB, nodes ...*node.Node) {
	t.Helper()
	if err := TrustEach(nodes...); err != nil {
		t.Fatal(err)
	}
}

// SetTrust sets from's direct trust in to.
func SetTrust(t testing.TB, from, to *node.Node, level trust.Level) {
	t.Helper()
	if err := from.Trust().Set(to.ID().String(), level, ""); err != nil {
		t.Fatal(err)
	}
}

// Timeout is how long Eventually waits.
const Timeout = 20 * time.Second

// Eventually polls cond until it holds, failing the test after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// WaitMesh waits until each node knows its connected neighbours subscribe
// to topic, then for GossipSub's heartbeat to graft them into its mesh (a
// message that arrives before then is delivered but not forwarded).
func WaitMesh(t testing.TB, topic string, nodes ...*node.Node) {
	t.Helper()
	for _, n := range nodes {
		// The peers connected now, each time: a peer that is going away
		// (a blocked node's connection being closed) never subscribes.
		Eventually(t, "topic peers of "+n.ID().String(), func() bool {
			return len(n.Pubsub().TopicPeers(topic)) >= len(n.Host().Network().Peers())
		})
	}
	time.Sleep(1500 * time.Millisecond)
}

// Line starts k nodes on a mocknet following topic, trusting each other,
// connected a-b-c-..., with GossipSub's mesh formed: a message must be
// forwarded to reach the far end.
func Line(t testing.TB, k int, topic string) []*node.Node {
	t.Helper()
	_, nodes := Mock(t, k, 0, node.Config{Topics: []string{topic}})
	TrustAll(t, nodes...)
	for i := 0; i+1 < k; i++ {
		Connect(t, nodes[i], nodes[i+1])
	}
	WaitMesh(t, topic, nodes...)
	return nodes
}

// Publish stores a lesson on n and publishes it.
func Publish(t testing.TB, n *node.Node, title, content, visibility string, topics ...string) *protocol.SignedLesson {
	t.Helper()
	ctx := context.Background()
	id, _, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: title, Content: content, Tags: []string{"test"}})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := n.Publish(ctx, id, api.PublishOptions{Visibility: visibility, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// HasRemote reports whether n holds the lesson key from another node, in
// its datastore and in its index (the store commits to the datastore, then
// to the index: a test that searches next must wait for both).
func HasRemote(n *node.Node, key string) bool {
	ctx := context.Background()
	sl, err := n.Store().Remote(ctx, key)
	if err != nil {
		return false
	}
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

// ErrTimeout is returned by WaitUpdated when the time is up.
var ErrTimeout = errors.New("nodetest: timed out")

// WaitUpdated waits until cond holds, re-checking it each time n's store
// takes in a received lesson or revocation, until timeout.
func WaitUpdated(ctx context.Context, n *node.Node, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ch := n.Store().Updated()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrTimeout
		}
	}
}

// The AMP spec's own example request bodies: storing a lesson, storing a
// checkpoint, and a search that finds the lesson.
const (
	AMPStoreLesson = `{
  "operation": "store",
  "record": {
    "type": "lesson",
    "title": "Always validate user input before database queries",
    "content": "SQL injection remains one of the most common vulnerabilities. Always use parameterized queries.",
    "tags": ["security", "sql", "validation", "databases"],
    "severity": "critical"
  }
}`
	AMPStoreCheckpoint = `{
  "operation": "store",
  "record": {
    "type": "checkpoint",
    "agent": "dev-agent-01",
    "working_on": "Implementing OAuth2 flow for GitHub integration",
    "state": {
      "decisions": ["Using authorization code flow (not implicit) for security"],
      "blockers": ["Waiting for GitHub OAuth app credentials from DevOps"],
      "artifacts": ["src/auth/github.ts"],
      "flags": ["IN_PROGRESS", "BLOCKED"]
    },
    "project": "myapp-backend",
    "session_id": "session_abc123"
  }
}`
	AMPSearch = `{
  "operation": "search",
  "query": "parameterized queries injection",
  "type": "lesson",
  "tags": ["sql"],
  "limit": 10,
  "min_score": 0.1
}`
)
