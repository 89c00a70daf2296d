package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/protocol"
)

// ProtocolPrefix is the Kademlia protocol prefix: MESH runs its own DHT and
// never joins the IPFS one.
const ProtocolPrefix = protocol.DHTPrefix

// ProtocolID is the Kademlia wire protocol MESH nodes speak.
const ProtocolID = ProtocolPrefix + "/kad/1.0.0"

// LANExtension and LANProtocolID name the LAN DHT: a second Kademlia DHT
// that always serves, and takes into its routing table only peers
// connected over a private or loopback address, so that nodes on one LAN
// (or on loopback) form a working DHT among themselves whatever AutoNAT
// says, as Kubo's does. Config.LAN turns it on.
const (
	LANExtension  = "/lan"
	LANProtocolID = ProtocolPrefix + LANExtension + "/kad/1.0.0"
)

// DefaultProvideValidity is how long a DHT server keeps a provider record it
// was given. Nodes re-provide well within it, on their heartbeat.
const DefaultProvideValidity = 2 * time.Hour

// DefaultMaxProviders is the number of providers a lookup returns when the
// caller asks for 0 or fewer; MaxProviders caps what a caller may ask for.
const (
	DefaultMaxProviders = 20
	MaxProviders        = 200
)

// ErrNotFound is returned when the DHT holds no (valid) answer. It wraps
// protocol.ErrNotFound, so it keeps its meaning across an API.
var ErrNotFound = fmt.Errorf("%w in the DHT", protocol.ErrNotFound)

// ErrNoPeers is returned by a lookup that found nothing because the routing
// table is empty: no DHT server is known yet. It wraps
// protocol.ErrUnavailable.
var ErrNoPeers = fmt.Errorf("%w: no DHT server known yet (is a bootstrap peer configured and reachable?)", protocol.ErrUnavailable)

// Mode says whether a node serves the DHT (answers queries, stores records)
// or only uses it.
type Mode int

const (
	// ModeAuto serves when the node is publicly reachable (as AutoNAT
	// reports) and is a client otherwise.
	ModeAuto Mode = iota
	// ModeServer always serves: bootstrap and relay nodes, and networks on
	// one LAN, loopback or mocknet, where AutoNAT never reports "public".
	ModeServer
	// ModeClient never serves.
	ModeClient
)

// ParseMode parses "auto" (or ""), "server" or "client".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return ModeAuto, nil
	case "server":
		return ModeServer, nil
	case "client":
		return ModeClient, nil
	}
	return 0, fmt.Errorf("%w: dht mode %q: want auto, server or client", protocol.ErrInvalid, truncate(s))
}

// String is the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config configures a DHT.
type Config struct {
	// Mode is auto (the default), server or client.
	Mode Mode
	// Bootstrap are the peers dialled when the routing table is empty. There
	// are no default bootstrap peers: a MESH network is the one its
	// bootstrap peers form.
	Bootstrap []peer.AddrInfo
	// Now is the clock node records are checked against. Nil means
	// time.Now.
	Now func() time.Time
	// Datastore holds the records this node stores for others. Nil means
	// in memory.
	Datastore ds.Batching
	// ProvideValidity is how long this node keeps provider records others
	// put. 0 means DefaultProvideValidity.
	ProvideValidity time.Duration
	// Options are appended to the Kademlia options (tests and benchmarks:
	// bucket size, concurrency).
	Options []kaddht.Option
	// LAN also runs the LAN DHT (LANProtocolID) beside the one of Mode,
	// unless Mode is ModeClient: a node on a LAN or on loopback then finds
	// its neighbours' records and providers although none is publicly
	// reachable. Every operation uses both.
	LAN bool
}

// DHT is MESH's Kademlia DHT: go-libp2p-kad-dht under the /mesh prefix,
// with only the /mesh-node record namespace (the IPFS /pk and /ipns
// validators are off) and no default bootstrap peers. It implements
// routing.PeerRouting, falling back to the node's signed record for peers
// the Kademlia lookup does not reach.
type DHT struct {
	kad       *kaddht.IpfsDHT // the WAN DHT, of Mode
	lan       *kaddht.IpfsDHT // the LAN DHT, or nil
	host      host.Host
	validator NodeRecordValidator
	mode      Mode

	closeOnce sync.Once
	closeErr  error
}

var _ routing.PeerRouting = (*DHT)(nil)

// New starts a DHT on h. It does not dial anything by itself until its
// routing table needs peers; call Bootstrap to connect now.
func New(h host.Host, cfg Config) (*DHT, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: dht: nil host", protocol.ErrInvalid)
	}
	v := NodeRecordValidator{Now: cfg.Now}
	validity := cfg.ProvideValidity
	if validity <= 0 {
		validity = DefaultProvideValidity
	}
	var kmode kaddht.ModeOpt
	switch cfg.Mode {
	case ModeAuto:
		kmode = kaddht.ModeAuto
	case ModeServer:
		kmode = kaddht.ModeServer
	case ModeClient:
		kmode = kaddht.ModeClient
	default:
		return nil, fmt.Errorf("%w: dht: unknown mode %d", protocol.ErrInvalid, int(cfg.Mode))
	}
	opts := []kaddht.Option{
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.Mode(kmode),
		// Only MESH's namespace: replacing the validator (rather than adding
		// a namespace) keeps the IPFS /pk and /ipns validators out.
		kaddht.Validator(record.NamespacedValidator{NodeNamespace: v}),
		kaddht.MaxRecordAge(protocol.MaxNodeRecordTTL),
		kaddht.ProviderManagerOpts(records.ProvideValidity(validity)),
	}
	// Without this option kad-dht has no bootstrap peers at all; it never
	// falls back to the IPFS ones.
	var boot []peer.AddrInfo
	for _, ai := range cfg.Bootstrap {
		if ai.ID != h.ID() {
			boot = append(boot, ai)
		}
	}
	if len(boot) > 0 {
		opts = append(opts, kaddht.BootstrapPeers(boot...))
	}
	if cfg.Datastore != nil {
		opts = append(opts, kaddht.Datastore(cfg.Datastore))
	}
	opts = append(opts, cfg.Options...)
	kad, err := kaddht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: %w", err)
	}
	d := &DHT{kad: kad, host: h, validator: v, mode: cfg.Mode}
	if cfg.LAN && cfg.Mode != ModeClient {
		lanOpts := []kaddht.Option{
			kaddht.ProtocolPrefix(ProtocolPrefix),
			kaddht.ProtocolExtension(LANExtension),
			kaddht.Mode(kaddht.ModeServer),
			kaddht.Validator(record.NamespacedValidator{NodeNamespace: v}),
			kaddht.MaxRecordAge(protocol.MaxNodeRecordTTL),
			kaddht.ProviderManagerOpts(records.ProvideValidity(validity)),
			kaddht.QueryFilter(kaddht.PrivateQueryFilter),
			kaddht.RoutingTableFilter(lanRoutingTableFilter),
		}
		if len(boot) > 0 {
			lanOpts = append(lanOpts, kaddht.BootstrapPeers(boot...))
		}
		lanOpts = append(lanOpts, cfg.Options...)
		if d.lan, err = kaddht.New(h, lanOpts...); err != nil {
			kad.Close()
			return nil, fmt.Errorf("dht: lan: %w", err)
		}
	}
	return d, nil
}

// lanRoutingTableFilter admits into the LAN DHT's routing table a peer
// connected over a private or loopback address (not through a relay).
// kad-dht's own private filter leaves loopback out; here it counts, so
// that nodes on one machine find each other too.
func lanRoutingTableFilter(dht any, p peer.ID) bool {
	h := dht.(interface{ Host() host.Host }).Host()
	for _, c := range h.Network().ConnsToPeer(p) {
		a := c.RemoteMultiaddr()
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if manet.IsPrivateAddr(a) || manet.IsIPLoopback(a) {
			return true
		}
	}
	return false
}

// all is the Kademlia DHTs the node runs: the WAN one, and the LAN one if
// it runs.
func (d *DHT) all() []*kaddht.IpfsDHT {
	if d.lan == nil {
		return []*kaddht.IpfsDHT{d.kad}
	}
	return []*kaddht.IpfsDHT{d.kad, d.lan}
}

// LAN reports whether the LAN DHT runs.
func (d *DHT) LAN() bool { return d.lan != nil }

// Kad is the underlying Kademlia DHT.
func (d *DHT) Kad() *kaddht.IpfsDHT { return d.kad }

// Host is the host the DHT runs on.
func (d *DHT) Host() host.Host { return d.host }

// ConfiguredMode is the mode the DHT was started with.
func (d *DHT) ConfiguredMode() Mode { return d.mode }

// Serving reports whether the DHT currently serves (server mode): whether
// the host answers ProtocolID. In auto mode this follows the host's
// reachability. (kad-dht's Mode reports the configured mode, not this.)
func (d *DHT) Serving() bool {
	return slices.Contains(d.host.Mux().Protocols(), libp2pproto.ID(ProtocolID))
}

// RoutingTableSize is the number of DHT servers in the routing tables
// (the WAN one and the LAN one).
func (d *DHT) RoutingTableSize() int {
	n := 0
	for _, k := range d.all() {
		n += k.RoutingTable().Size()
	}
	return n
}

// LANRoutingTableSize is the number of servers in the LAN DHT's routing
// table; 0 if it does not run.
func (d *DHT) LANRoutingTableSize() int {
	if d.lan == nil {
		return 0
	}
	return d.lan.RoutingTable().Size()
}

// Bootstrap connects to the given peers (those not yet connected) and
// refreshes the routing table. It fails only if there were peers to dial and
// none answered.
func (d *DHT) Bootstrap(ctx context.Context, peers []peer.AddrInfo) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		ok   int
	)
	for _, ai := range peers {
		if ai.ID == d.host.ID() {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			err := d.host.Connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("bootstrap %s: %w", ai.ID, err))
				return
			}
			ok++
		}(ai)
	}
	wg.Wait()
	if len(errs) > 0 && ok == 0 {
		return errors.Join(errs...)
	}
	for _, k := range d.all() {
		if err := k.Bootstrap(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Refresh refreshes the routing tables and waits for them, or for ctx.
func (d *DHT) Refresh(ctx context.Context) error {
	var errs []error
	for _, k := range d.all() {
		select {
		case err := <-k.RefreshRoutingTable():
			errs = append(errs, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// each runs fn on every DHT that has peers in its routing table (on the
// WAN one alone if none has), in parallel, and fails only if every run
// failed.
func (d *DHT) each(fn func(*kaddht.IpfsDHT) error) error {
	var ks []*kaddht.IpfsDHT
	for _, k := range d.all() {
		if k.RoutingTable().Size() > 0 {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		ks = []*kaddht.IpfsDHT{d.kad}
	}
	errs := make([]error, len(ks))
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(k)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// PutNodeRecord verifies r and stores it under NodeKey(r.NodeID) on the DHT
// servers closest to that key (and locally). The record must be valid now:
// the servers would refuse anything else.
func (d *DHT) PutNodeRecord(ctx context.Context, r *protocol.NodeRecord) error {
	if err := protocol.VerifyNodeRecord(r, protocol.VerifyOptions{Now: d.validator.now()}); err != nil {
		return fmt.Errorf("put node record: %w", err)
	}
	id, err := peer.Decode(r.NodeID)
	if err != nil {
		return fmt.Errorf("put node record: %w: %v", protocol.ErrInvalid, err)
	}
	b, err := r.Encode()
	if err != nil {
		return fmt.Errorf("put node record: %w", err)
	}
	if err := d.each(func(k *kaddht.IpfsDHT) error { return k.PutValue(ctx, NodeKey(id), b) }); err != nil {
		return fmt.Errorf("put node record of %s: %w", id, err)
	}
	return nil
}

// NodeRecord looks up the newest valid signed record of node id. It returns
// an error wrapping ErrNotFound when the DHT holds none.
func (d *DHT) NodeRecord(ctx context.Context, id peer.ID, opts ...routing.Option) (*protocol.NodeRecord, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("%w: node id: %v", protocol.ErrInvalid, err)
	}
	key := NodeKey(id)
	if _, err := parseNodeKey(key); err != nil {
		return nil, err
	}
	b, err := d.getValue(ctx, key, opts...)
	if err != nil {
		if b == nil && d.RoutingTableSize() == 0 {
			return nil, fmt.Errorf("node record of %s: %w", id, ErrNoPeers)
		}
		if errors.Is(err, routing.ErrNotFound) || (b == nil && ctx.Err() == nil) {
			return nil, fmt.Errorf("node record of %s: %w", id, ErrNotFound)
		}
		if b == nil {
			return nil, fmt.Errorf("node record of %s: %w", id, err)
		}
	}
	// GetValue already ran the validator; decoding again gives the type.
	r, err := d.validator.decode(key, b)
	if err != nil {
		return nil, fmt.Errorf("node record of %s: %w", id, err)
	}
	return r, nil
}

// getValue asks every DHT for key at once and keeps the best answer (the
// validator picks the newest valid record).
func (d *DHT) getValue(ctx context.Context, key string, opts ...routing.Option) ([]byte, error) {
	ks := d.all()
	if len(ks) == 1 {
		return d.kad.GetValue(ctx, key, opts...)
	}
	type answer struct {
		b   []byte
		err error
	}
	answers := make([]answer, len(ks))
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := k.GetValue(ctx, key, opts...)
			answers[i] = answer{b, err}
		}()
	}
	wg.Wait()
	var vals [][]byte
	var errs []error
	for _, a := range answers {
		if a.b != nil {
			vals = append(vals, a.b)
		}
		errs = append(errs, a.err)
	}
	if len(vals) == 0 {
		return nil, errors.Join(errs...)
	}
	best, err := d.validator.Select(key, vals)
	if err != nil {
		return nil, err
	}
	return vals[best], nil
}

// Provide announces this node as a provider of key to the DHT servers
// closest to it.
func (d *DHT) Provide(ctx context.Context, key cid.Cid) error {
	if err := d.each(func(k *kaddht.IpfsDHT) error { return k.Provide(ctx, key, true) }); err != nil {
		return fmt.Errorf("provide %s: %w", key, err)
	}
	return nil
}

// ProvideTopic announces this node as a provider of a MESH topic.
func (d *DHT) ProvideTopic(ctx context.Context, topic string) error {
	topic = strings.ToLower(topic)
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := d.Provide(ctx, TopicKey(topic)); err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	return nil
}

// ProvideRole announces this node as a provider of a role ("directory").
func (d *DHT) ProvideRole(ctx context.Context, role string) error {
	if err := checkName("role", role); err != nil {
		return err
	}
	if err := d.Provide(ctx, RoleKey(role)); err != nil {
		return fmt.Errorf("role %s: %w", role, err)
	}
	return nil
}

// Providers looks up up to limit providers of key (DefaultMaxProviders if
// limit <= 0, at most MaxProviders). This node is included if it provides
// key itself.
func (d *DHT) Providers(ctx context.Context, key cid.Cid, limit int) ([]peer.AddrInfo, error) {
	if limit <= 0 {
		limit = DefaultMaxProviders
	}
	limit = min(limit, MaxProviders)
	var out []peer.AddrInfo
	seen := map[peer.ID]bool{}
	for _, k := range d.all() {
		for ai := range k.FindProvidersAsync(ctx, key, limit) {
			if !seen[ai.ID] && len(out) < limit {
				seen[ai.ID] = true
				out = append(out, ai)
			}
		}
	}
	if len(out) == 0 && ctx.Err() != nil {
		return nil, fmt.Errorf("providers of %s: %w", key, ctx.Err())
	}
	if len(out) == 0 && d.RoutingTableSize() == 0 {
		return nil, fmt.Errorf("providers of %s: %w", key, ErrNoPeers)
	}
	return out, nil
}

// TopicProviders looks up nodes that follow a MESH topic.
func (d *DHT) TopicProviders(ctx context.Context, topic string, limit int) ([]peer.AddrInfo, error) {
	topic = strings.ToLower(topic)
	if err := checkName("topic", topic); err != nil {
		return nil, err
	}
	return d.Providers(ctx, TopicKey(topic), limit)
}

// RoleProviders looks up nodes that play a role ("directory").
func (d *DHT) RoleProviders(ctx context.Context, role string, limit int) ([]peer.AddrInfo, error) {
	if err := checkName("role", role); err != nil {
		return nil, err
	}
	return d.Providers(ctx, RoleKey(role), limit)
}

// FindPeer resolves a node's addresses: the Kademlia peer lookup first,
// then, for a node it does not reach (a client-mode node no server is
// connected to), the addresses in the node's signed record.
func (d *DHT) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	ai, err := d.kad.FindPeer(ctx, id)
	if (err != nil || len(ai.Addrs) == 0) && d.lan != nil && ctx.Err() == nil {
		ai, err = d.lan.FindPeer(ctx, id)
	}
	if err == nil && len(ai.Addrs) == 0 {
		// Connected (the lookup dials the peer) but the peerstore lists
		// nothing: the connections' addresses are the answer.
		for _, c := range d.host.Network().ConnsToPeer(id) {
			ai.Addrs = append(ai.Addrs, c.RemoteMultiaddr())
		}
	}
	if err == nil && len(ai.Addrs) > 0 {
		return ai, nil
	}
	if ctx.Err() != nil {
		return peer.AddrInfo{}, fmt.Errorf("find %s: %w", id, ctx.Err())
	}
	r, rerr := d.NodeRecord(ctx, id)
	if rerr != nil {
		return peer.AddrInfo{}, fmt.Errorf("find %s: %w", id, errors.Join(err, rerr))
	}
	ai = RecordAddrInfo(r)
	if len(ai.Addrs) == 0 {
		return peer.AddrInfo{}, fmt.Errorf("find %s: %w: its node record lists no addresses", id, ErrNotFound)
	}
	return ai, nil
}

// RecordAddrInfo converts a node record's addresses to an AddrInfo: each
// address loses a trailing /p2p/<nodeId>; addresses that fail to parse or
// end in another node's ID are skipped.
func RecordAddrInfo(r *protocol.NodeRecord) peer.AddrInfo {
	id, err := peer.Decode(r.NodeID)
	if err != nil {
		return peer.AddrInfo{}
	}
	ai := peer.AddrInfo{ID: id}
	for _, s := range r.Addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		transport, p := peer.SplitAddr(m)
		if transport == nil || (p != "" && p != id) {
			continue
		}
		ai.Addrs = append(ai.Addrs, transport)
	}
	return ai
}

// Close stops the DHT (both, with the LAN one). It does not close the host.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		for _, k := range d.all() {
			errs = append(errs, k.Close())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}
