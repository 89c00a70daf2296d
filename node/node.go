package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/meshprotocol/mesh/internal/coalesce"
	"github.com/meshprotocol/mesh/internal/repolock"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/connlimit"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/fedsearch"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/node/lora"
	"github.com/meshprotocol/mesh/node/metrics"
	"github.com/meshprotocol/mesh/node/pending"
	"github.com/meshprotocol/mesh/node/reach"
	"github.com/meshprotocol/mesh/node/sensors"
	"github.com/meshprotocol/mesh/node/watch"
	"github.com/meshprotocol/mesh/node/webui"
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
	// control API and /.well-known/mesh/identity over HTTP (see package
	// httpapi). It must be a loopback address ("127.0.0.1:8765"); port 0
	// picks a free port. If empty, no HTTP server runs.
	APIAddr string

	// MaxConnsPerIP bounds the connections the node holds with one IPv4
	// address or IPv6 /64, on every address including loopback (libp2p
	// leaves loopback unlimited), so that one address cannot take every
	// connection. Zero means DefaultMaxConnsPerIP; negative leaves
	// libp2p's defaults (8 per address, loopback unlimited). Nodes that
	// run many peers on one machine's loopback may need more.
	MaxConnsPerIP int

	// DisableUI turns off the web UI (package webui) the node serves on
	// APIAddr by default.
	DisableUI bool

	// APIOpen serves the AMP REST binding (/amp/...) on APIAddr without
	// the bearer token, to every user of the machine, as AMP specifies it:
	// for single-user machines. False, the default, requires the repo's
	// token (RepoDir/api.token) on every route.
	APIOpen bool

	// Offline skips the libp2p host: the node has its identity and store and
	// can sign, but does not network. The CLI uses it when no daemon runs.
	Offline bool

	// PrivateKey overrides the repo's identity key. Nil loads or creates the
	// key in RepoDir (or makes a fresh one when RepoDir is empty).
	PrivateKey crypto.PrivKey

	// Logger receives the node's logs. Nil discards them. Record contents,
	// keys and queries are never logged.
	Logger *slog.Logger

	// Registerer receives the node's metrics (libp2p's own, and MESH's:
	// see docs/metrics.md). Nil registers none.
	Registerer prometheus.Registerer

	// Gatherer, if set, is served at GET /metrics on APIAddr, behind the
	// API's bearer token; usually the *prometheus.Registry given as
	// Registerer. Nil serves no /metrics.
	Gatherer prometheus.Gatherer

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
	// punching, port mapping and announced addresses. The zero value is
	// what an embedded node wants.
	NAT reach.Config

	// DHT configures the Kademlia directory (MESH's own private DHT). The
	// zero value runs it in auto mode.
	DHT discovery.Config

	// Directory configures the directory role and the public read-only
	// HTTP API. The zero value plays no directory role and serves no
	// public API.
	Directory directory.Config

	// Keys tunes the key subsystem of encrypted lessons (how long readers
	// may keep a key, how long key requests wait for the node to re-learn
	// its revocations after a start). The zero value is what a node wants.
	Keys keys.Config

	// Lora makes the node a gateway for sensors on LoRa radios
	// (Meshtastic) and on the LAN (UDP). The zero value is no gateway.
	Lora LoraConfig
	// Sensors tunes the sensor subsystem (how many readings of a stream
	// are indexed in memory). The zero value is what a node wants.
	Sensors sensors.Config
}

// Node is one MESH node: an Ed25519 identity, a libp2p host whose peer ID is
// that identity, the AMP store, the web of trust, GossipSub, and the
// subsystems around them. It implements api.API. Its methods are safe for
// concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	key   crypto.PrivKey
	edKey ed25519.PrivateKey
	id    peer.ID
	lock  *repolock.Lock
	store *store.Store
	trust *trust.Graph
	host  host.Host
	ps    *pubsub.Service
	peers *peerKeeper
	// limits are the resource and connection managers (connlimits.go);
	// nil for a host given in Config.Host.
	limits *connlimit.Limits
	mdns   io.Closer

	// The subsystems, each in its own package.
	search *fedsearch.Service
	reach  *reach.Service
	disc   *discovery.Service
	dir    *directory.Service
	keys   *keys.Service
	lora   *lora.Gateway
	watch  *watch.Service
	// metrics are the node's own metrics; nil without Config.Registerer.
	metrics *metrics.Metrics
	// sensors is set once the subsystem runs (after keys, which asks it
	// about grants from the start).
	sensors atomic.Pointer[sensors.Service]
	http    *httpapi.Server

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	followMu  sync.Mutex // serializes changes to the followed topics and feeds
	syncMu    sync.Mutex // guards syncLocks
	syncLocks map[peer.ID]*sync.Mutex
	catchUps  *coalesce.Keyed[peer.ID] // catch-up syncs under way or due (Node.catchUp)

	pending pending.Book // publishers refused for trust

	vouchMu      sync.Mutex
	vouch        *protocol.Vouch // this node's signed vouch, reused while valid
	vouchFetches atomic.Int64    // vouch requests sent, for tests

	closeOnce sync.Once
}

// New starts a node. ctx bounds the start-up only; the node runs until Close.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
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
		if err := secureRepo(cfg.RepoDir, n.log); err != nil {
			return nil, err
		}
		if n.lock, err = repolock.Acquire(cfg.RepoDir); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if err := n.loadKey(); err != nil {
		return nil, err
	}
	sopts := store.Options{Logger: n.log, Now: n.now, SelfID: n.id.String(), Dir: cfg.RepoDir}
	if n.store, err = store.Open(sopts); err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	if err := n.openTrust(); err != nil {
		return nil, err
	}
	if err := n.newSubsystems(); err != nil {
		return nil, err
	}
	// Before anything starts that counts (a sync on the first connection
	// reads n.metrics); the state is read only at scrape time.
	if err := n.newMetrics(); err != nil {
		return nil, fmt.Errorf("node: register metrics: %w", err)
	}
	if cfg.Offline {
		n.newKeys()
	} else if err := n.startOnline(ctx); err != nil {
		return nil, err
	}
	if err := n.startSensors(ctx); err != nil {
		return nil, err
	}
	n.search = fedsearch.New(fedsearch.Config{Host: n.host, Self: n.id, Local: serving{n}, Trust: n.trust, Now: n.now, Logger: n.log, Registerer: cfg.Registerer})
	n.dir = directory.New(cfg.Directory, n.directoryDeps())
	if err := n.startDirectory(ctx); err != nil {
		return nil, err
	}
	if err := n.startLora(ctx); err != nil {
		return nil, err
	}
	if err := n.startWatch(ctx); err != nil {
		return nil, err
	}
	if cfg.APIAddr != "" {
		hc := httpapi.Config{Addr: cfg.APIAddr, Backend: n, RepoDir: cfg.RepoDir, Logger: n.log, AMPOpen: cfg.APIOpen, Registerer: cfg.Registerer}
		if cfg.Gatherer != nil {
			hc.Metrics = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
		}
		if !cfg.DisableUI {
			hc.UI = webui.New(webui.Config{API: n, Now: n.now, Logger: n.log})
		}
		if n.http, err = httpapi.Start(hc); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	n.log.Info("node started", "peer", n.id.String(), "offline", cfg.Offline)
	return n, nil
}

// newSubsystems makes the subsystems that give the host options (the DHT
// its routing, reachability its transports and relays), checking their
// settings before anything starts.
func (n *Node) newSubsystems() error {
	boot, err := parseBootstrap(n.cfg.Bootstrap)
	if err != nil {
		return err
	}
	var roles []string
	if n.cfg.Directory.Enabled {
		roles = append(roles, protocol.RoleDirectory)
	}
	n.disc, err = discovery.New(n.cfg.DHT, discovery.Deps{
		Self: n.id, Key: n.edKey, Bootstrap: boot, Roles: roles, Addrs: n.Addrs,
		Topics: func(ctx context.Context) ([]string, error) {
			topics, _, err := n.Following(ctx)
			return topics, err
		},
		Blocked: n.trust.Blocked, Now: n.now, Logger: n.log,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	listen := n.cfg.ListenAddrs
	if listen == nil {
		listen = DefaultListenAddrs
	}
	n.reach, err = reach.New(n.cfg.NAT, reach.Deps{
		Self: n.id, Trust: n.trust, Addrs: n.Addrs, ListenAddrs: listen, GivenHost: n.cfg.Host != nil, Logger: n.log,
		Keep: func(ai peer.AddrInfo) { n.peers.keep(ai) },
		RelayProviders: func(ctx context.Context, num int) ([]peer.AddrInfo, error) {
			return n.disc.RoleProviders(ctx, protocol.RoleRelay, num)
		},
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// startOnline starts the host and what runs on it.
func (n *Node) startOnline(ctx context.Context) error {
	if err := n.startHost(ctx); err != nil {
		return err
	}
	n.newKeys()
	if err := n.startFederation(); err != nil {
		return err
	}
	if err := n.startTrust(); err != nil {
		return err
	}
	if err := n.startPeers(); err != nil {
		return err
	}
	n.startConnKeeper()
	// A given host runs the DHT itself, not through the routed wrapper,
	// which would route through itself.
	dhtHost := n.host
	if n.cfg.Host != nil {
		dhtHost = n.cfg.Host
	}
	if err := n.disc.Start(dhtHost); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.reach.Start(n.host); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return ctx.Err()
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
		n.host = n.disc.WrapHost(n.cfg.Host)
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
		// fx logs a failed start (a busy port) at error level with a
		// stack of its own; the error returned says it once.
		libp2p.WithFxOption(fx.NopLogger),
	}
	if len(listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	if n.cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(n.cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	opts = append(opts, n.reach.Options()...)
	opts = append(opts, n.disc.Options()...)
	opts = append(opts, n.cfg.Libp2pOptions...)
	limits, err := n.connLimitOptions()
	if err != nil {
		return fmt.Errorf("node: connection limits: %w", err)
	}
	opts = append(opts, limits...) // after Libp2pOptions: they give way
	if err := checkPortsFree(listen); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		if strings.Contains(err.Error(), "failed to listen") { // libp2p's swarm, when no address could be bound
			return fmt.Errorf("node: %w on %s: %w", ErrNotListening, strings.Join(listen, ", "), err)
		}
		return fmt.Errorf("node: start libp2p: %w", err)
	}
	n.host = h
	if err := checkListening(h, listen); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return ctx.Err()
}

// startDirectory follows a directory's topics and starts the directory
// subsystem.
func (n *Node) startDirectory(ctx context.Context) error {
	if n.cfg.Directory.Enabled && n.host != nil {
		for _, t := range n.cfg.Directory.Topics {
			if err := n.Follow(ctx, t); err != nil {
				return fmt.Errorf("node: directory topic %q: %w", t, err)
			}
		}
	}
	if err := n.dir.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// directoryDeps are what the directory subsystem is given of the node.
func (n *Node) directoryDeps() directory.Deps {
	d := directory.Deps{
		Self: n.id, Key: n.edKey, Host: n.host, Meta: n.store, Local: serving{n}, Trust: n.trust, Keys: n.keys,
		Following: n.Following, SearchNetwork: n.SearchNetwork, Identity: n.Identity, Addrs: n.Addrs,
		Version: Version, Now: n.now, Logger: n.log,
		SyncPublisher: func(ctx context.Context, p peer.ID) error {
			prog := api.SyncProgress{Peer: p.String()}
			return n.syncPass(ctx, p, protocol.SyncRequest{Publishers: []string{p.String()}}, &prog, nil)
		},
	}
	if n.ps != nil {
		d.Feeds = n.ps
	}
	if n.disc.Enabled() {
		d.Lookup = n.disc
	}
	return d
}

// ID is the node's peer ID, which is its MESH node ID.
func (n *Node) ID() peer.ID { return n.id }

// Host is the node's libp2p host, or nil for an offline node.
func (n *Node) Host() host.Host { return n.host }

// Store is the node's AMP store.
func (n *Node) Store() *store.Store { return n.store }

// Trust is the node's web of trust.
func (n *Node) Trust() *trust.Graph { return n.trust }

// Pubsub is the node's GossipSub service, or nil for an offline node.
func (n *Node) Pubsub() *pubsub.Service { return n.ps }

// Directory is the node's directory subsystem: its registrations, its
// public API and, as a directory, its registrants.
func (n *Node) Directory() *directory.Service { return n.dir }

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
func (n *Node) APIURL() string {
	if n.http == nil {
		return ""
	}
	return n.http.URL()
}

// Token is the control API's bearer token, or "" if the node serves no
// HTTP API.
func (n *Node) Token() string {
	if n.http == nil {
		return ""
	}
	return n.http.Token()
}

// Close stops the node: the HTTP server, the subsystems, the libp2p host,
// then the store, and releases the repo. It waits for the node's
// goroutines. A second Close returns an error wrapping net.ErrClosed.
func (n *Node) Close() error {
	err := fmt.Errorf("node: %w", net.ErrClosed)
	n.closeOnce.Do(func() { err = n.teardown() })
	return err
}

// teardown stops what New started, in reverse order; parts never started
// are skipped.
func (n *Node) teardown() error {
	var errs []error
	n.cancel()
	if n.http != nil {
		errs = append(errs, n.http.Close())
	}
	n.metrics.Unregister()
	if n.mdns != nil {
		_ = n.mdns.Close()
	}
	if n.watch != nil {
		errs = append(errs, n.watch.Close())
	}
	if n.dir != nil {
		errs = append(errs, n.dir.Close())
	}
	if n.lora != nil {
		n.lora.Close()
	}
	if s := n.sensors.Load(); s != nil {
		errs = append(errs, s.Close())
	}
	if n.keys != nil {
		errs = append(errs, n.keys.Close())
	}
	if n.reach != nil {
		errs = append(errs, n.reach.Close())
	}
	if n.disc != nil {
		errs = append(errs, n.disc.Close())
	}
	if n.search != nil {
		n.search.Close()
	}
	if n.ps != nil {
		errs = append(errs, n.ps.Close())
	}
	n.wg.Wait()
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.lock != nil {
		errs = append(errs, n.lock.Release())
	}
	return errors.Join(errs...)
}
