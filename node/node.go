package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/internal/repolock"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/pubsub"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// Version is the node software version reported by status.
const Version = "0.1.0"

// DefaultListenAddrs are used when Config.ListenAddrs is nil: TCP and QUIC on
// every interface, on ports the system picks.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
}

// Config configures a Node. The zero value runs an ephemeral node: a fresh
// key, an in-memory store, libp2p on DefaultListenAddrs, no HTTP server.
type Config struct {
	// RepoDir holds the identity key, the datastore, the index and the API
	// token. It is created on first start and locked while the node runs. If
	// empty, a fresh key and an in-memory store are used and nothing is
	// written to disk.
	RepoDir string

	// ListenAddrs are the libp2p listen multiaddrs. Nil means
	// DefaultListenAddrs; an empty, non-nil slice means do not listen.
	ListenAddrs []string

	// APIAddr, if set, is where the node serves the AMP REST binding, the
	// control API and /.well-known/mesh/identity over HTTP. It must be a
	// loopback address ("127.0.0.1:8765"); port 0 picks a free port. If
	// empty, no HTTP server runs (Handler still serves in-process).
	APIAddr string

	// Offline skips the libp2p host: the node has its identity and store and
	// can sign, but does not network. The CLI uses it when no daemon runs.
	Offline bool

	// PrivateKey overrides the repo's identity key. Nil loads or creates the
	// key in RepoDir (or makes a fresh one when RepoDir is empty).
	PrivateKey crypto.PrivKey

	// Logger receives the node's logs. Nil discards them. Record contents,
	// keys and queries are never logged.
	Logger *slog.Logger

	// Registerer receives the node's metrics. Nil registers none.
	Registerer prometheus.Registerer

	// Libp2pOptions are appended to the node's own libp2p options; an escape
	// hatch for transports, resource limits and the like.
	Libp2pOptions []libp2p.Option

	// Host, if set, is used instead of starting a libp2p host (mocknet in
	// tests and benchmarks). Its identity must be PrivateKey, which is then
	// required. The node closes it on Close.
	Host host.Host

	// Now is the node's clock. Nil means time.Now.
	Now func() time.Time

	// Topics are MESH topics to follow ("rust"), on top of those followed
	// with Follow, which persist in the repo.
	Topics []string

	// Bootstrap are multiaddrs (with /p2p/<id>) of peers to connect to at
	// start and to reconnect to, with backoff, whenever the link drops.
	Bootstrap []string

	// DisableMDNS turns off discovery of other MESH nodes on the LAN by
	// multicast DNS, which is on by default for online nodes.
	DisableMDNS bool

	// Pubsub tunes GossipSub. Nil means pubsub.DefaultParams().
	Pubsub *pubsub.Params

	// AcceptUntrusted stores lessons of publishers with no trust path (but
	// never of blocked ones). By default only publishers this node trusts,
	// directly or through vouches, are accepted, by gossip and by sync.
	AcceptUntrusted bool

	// TrustDepth is the longest trust path followed, in hops. 0 means 2.
	TrustDepth int

	// NAT configures reachability from behind NAT: AutoNAT, relays, hole
	// punching, port mapping and announced addresses.
	NAT NATConfig

	// DHT configures the Kademlia directory (MESH's own private DHT).
	DHT DHTConfig

	// Directory configures the directory role and the public read-only
	// HTTP API.
	Directory DirectoryConfig
}

// Node is one MESH node: an Ed25519 identity, a libp2p host whose peer ID is
// that identity, the AMP store, and the APIs around them. Its methods are safe
// for concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	key    crypto.PrivKey
	edKey  ed25519.PrivateKey
	id     peer.ID
	lock   *repolock.Lock
	store  *store.Store
	host   host.Host
	token  string
	http   *http.Server
	apiURL string

	trust *trust.Graph
	vouchState

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	ps     *pubsub.Service
	peers  *peerKeeper
	mdns   io.Closer

	followMu  sync.Mutex // serializes changes to the followed topics and feeds
	syncMu    sync.Mutex // guards syncLocks
	syncLocks map[peer.ID]*sync.Mutex

	natState
	dhtState
	directoryState

	ingestMu sync.Mutex
	ingestCh chan struct{} // closed and replaced whenever a received record is stored

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	wg        sync.WaitGroup
}

// New starts a node. ctx bounds the start-up only; the node runs until Close.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	n := &Node{cfg: cfg, closed: make(chan struct{}), log: cfg.Logger, now: cfg.Now, ingestCh: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.log == nil {
		n.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if n.now == nil {
		n.now = time.Now
	}
	defer func() {
		if err != nil {
			n.teardown()
		}
	}()
	if cfg.RepoDir != "" {
		if n.lock, err = repolock.Acquire(cfg.RepoDir); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if err := n.loadKey(); err != nil {
		return nil, err
	}
	sopts := store.Options{Logger: n.log, Now: n.now, SelfID: n.id.String()}
	if cfg.RepoDir != "" {
		sopts.Dir = cfg.RepoDir
	}
	if n.store, err = store.Open(sopts); err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	if err := n.openTrust(); err != nil {
		return nil, err
	}
	if !cfg.Offline {
		if err := n.startHost(ctx); err != nil {
			return nil, err
		}
		if err := n.startFederation(); err != nil {
			return nil, err
		}
		if err := n.startTrust(); err != nil {
			return nil, err
		}
		if err := n.startPeers(); err != nil {
			return nil, err
		}
		if err := n.startDHT(ctx); err != nil {
			return nil, err
		}
		if err := n.startNAT(ctx); err != nil {
			return nil, err
		}
		if err := n.startDirectory(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.APIAddr != "" {
		if err := n.startHTTP(cfg.APIAddr); err != nil {
			return nil, err
		}
	}
	n.log.Info("node started", "peer", n.id.String(), "offline", cfg.Offline)
	return n, nil
}

func (n *Node) loadKey() error {
	var err error
	switch {
	case n.cfg.PrivateKey != nil:
		n.key = n.cfg.PrivateKey
	case n.cfg.RepoDir != "":
		n.key, _, err = LoadOrCreateKey(n.cfg.RepoDir)
		if err != nil {
			return err
		}
	default:
		n.key, _, err = crypto.GenerateEd25519Key(nil)
		if err != nil {
			return fmt.Errorf("node: generate key: %w", err)
		}
	}
	if n.edKey, err = edKey(n.key); err != nil {
		return err
	}
	if n.id, err = peer.IDFromPrivateKey(n.key); err != nil {
		return fmt.Errorf("node: peer id: %w", err)
	}
	return nil
}

func (n *Node) startHost(ctx context.Context) error {
	if n.cfg.Host != nil {
		if n.cfg.Host.ID() != n.id {
			return fmt.Errorf("node: Config.Host is %s but the key is %s", n.cfg.Host.ID(), n.id)
		}
		n.host = n.routedHost(n.cfg.Host)
		return nil
	}
	listen := n.cfg.ListenAddrs
	if listen == nil {
		listen = DefaultListenAddrs
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.UserAgent("mesh/" + Version),
		libp2p.ConnectionGater(trustGater{n}),
	}
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	if n.cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(n.cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	opts = append(opts, n.natOptions()...)
	opts = append(opts, n.dhtOptions()...)
	opts = append(opts, n.cfg.Libp2pOptions...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("node: start libp2p: %w", err)
	}
	n.host = h
	return ctx.Err()
}

// ID is the node's peer ID, which is its MESH node ID.
func (n *Node) ID() peer.ID { return n.id }

// Host is the node's libp2p host, or nil for an offline node.
func (n *Node) Host() host.Host { return n.host }

// Store is the node's AMP store.
func (n *Node) Store() *store.Store { return n.store }

// PublicKey is the node's Ed25519 public key.
func (n *Node) PublicKey() ed25519.PublicKey { return n.edKey.Public().(ed25519.PublicKey) }

// Addrs are the node's libp2p addresses, each with /p2p/<id>.
func (n *Node) Addrs() []ma.Multiaddr {
	if n.host == nil {
		return nil
	}
	p2p, err := ma.NewComponent("p2p", n.id.String())
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(p2p.Multiaddr()))
	}
	return out
}

// APIURL is the base URL of the node's HTTP API ("http://127.0.0.1:8765"),
// or "" if it serves none.
func (n *Node) APIURL() string { return n.apiURL }

// Close stops the node: the HTTP server, the libp2p host, then the store, and
// releases the repo. It waits for the node's goroutines. A second Close
// returns an error wrapping net.ErrClosed.
func (n *Node) Close() error {
	err := fmt.Errorf("node: %w", net.ErrClosed)
	n.closeOnce.Do(func() {
		close(n.closed)
		n.closeErr = n.teardown()
		err = n.closeErr
	})
	return err
}

func (n *Node) teardown() error {
	var errs []error
	n.cancel()
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		if n.cfg.RepoDir != "" {
			os.Remove(filepath.Join(n.cfg.RepoDir, APIFile))
		}
	}
	if n.mdns != nil {
		_ = n.mdns.Close()
	}
	errs = append(errs, n.stopDirectory(), n.stopNAT(), n.stopDHT())
	if n.ps != nil {
		if err := n.ps.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.wg.Wait()
	if n.host != nil {
		if err := n.host.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if n.lock != nil {
		if err := n.lock.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Publish signs the record id for publication with the node's key and keeps
// the signed form. Visibility must be public or unlisted: private records are
// never signed. Announcing it to the network is the federation layer's job.
func (n *Node) Publish(ctx context.Context, id string, opts PublishOptions) (*protocol.SignedLesson, error) {
	if opts.Visibility != protocol.VisibilityPublic && opts.Visibility != protocol.VisibilityUnlisted {
		return nil, fmt.Errorf("publish %s: %w: visibility %q: want public or unlisted", id, protocol.ErrInvalid, opts.Visibility)
	}
	rec, err := n.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	now := n.now()
	sl, err := protocol.Sign(n.edKey, rec, protocol.Publication{
		Visibility:  opts.Visibility,
		PublishedAt: now.UnixMilli(),
		Topics:      opts.Topics,
	}, now)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	if n.store.Revoked(ctx, id+"@"+n.id.String()) {
		return nil, fmt.Errorf("publish %s: %w: a revoked lesson stays revoked; store it under a new id", id, protocol.ErrAlreadyRevoked)
	}
	if err := n.store.PutPublication(ctx, sl); err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	if sl.Publication.Visibility == protocol.VisibilityPublic {
		n.announce(ctx, &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: sl}, sl.Publication.Topics)
	}
	return sl, nil
}

// Export returns the signed form of a published record.
func (n *Node) Export(ctx context.Context, id string) (*protocol.SignedLesson, error) {
	sl, err := n.store.Publication(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if _, gerr := n.store.Get(ctx, id); gerr == nil {
				return nil, fmt.Errorf("export %s: %w: the record is not published; run: mesh publish %s --visibility public|unlisted", id, protocol.ErrUnknownLesson, id)
			}
		}
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	return sl, nil
}

// Identity returns a freshly signed identity document.
func (n *Node) Identity() (*protocol.Identity, error) {
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	caps := []string{protocol.CapabilityStore, protocol.CapabilitySearch}
	return protocol.SignIdentity(n.edKey, addrs, caps, n.now())
}

// Info describes the node.
func (n *Node) Info(ctx context.Context) (*Info, error) {
	info := &Info{
		NodeID:      n.id.String(),
		Fingerprint: protocol.Fingerprint(n.PublicKey()),
		PublicKey:   n.PublicKey(),
		API:         n.apiURL,
		Online:      n.host != nil,
	}
	for _, a := range n.Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info, nil
}

// Put stores (upserts) a record.
func (n *Node) Put(ctx context.Context, rec *protocol.Lesson) (string, bool, error) {
	return n.store.Put(ctx, rec)
}

// Get returns a record.
func (n *Node) Get(ctx context.Context, id string) (*protocol.Lesson, error) {
	return n.store.Get(ctx, id)
}

// Delete removes a record and its publication.
func (n *Node) Delete(ctx context.Context, id string) (bool, error) {
	return n.store.Delete(ctx, id)
}

// List lists records.
func (n *Node) List(ctx context.Context, o store.ListOptions) (*store.ListResult, error) {
	return n.store.List(ctx, o)
}

// Search searches the local store.
func (n *Node) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	return n.store.Search(ctx, q)
}

// AgentStatus reports an agent's state from its latest checkpoint.
func (n *Node) AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error) {
	return n.store.AgentStatus(ctx, agent)
}

// Status reports the node's health and record counts.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	st, err := n.store.Status(ctx)
	if err != nil {
		return nil, err
	}
	return &Status{Healthy: true, Version: Version, NodeID: n.id.String(), Counts: st.Counts, Total: st.Total, Network: n.networkStatus()}, nil
}
