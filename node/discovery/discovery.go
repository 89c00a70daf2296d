package discovery

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// DHT defaults. The node record is re-published (the heartbeat) and the
// followed topics re-provided every DefaultHeartbeat, and at once when the
// followed topics, the roles or the addresses change; each followed topic's
// providers are looked up every DefaultDiscovery.
const (
	DefaultHeartbeat = 20 * time.Minute
	DefaultDiscovery = 10 * time.Minute
	DefaultRecordTTL = time.Hour
)

// dhtCheck is how often the node compares what its record says with what is
// true (followed topics, roles, addresses) and how soon it retries while the
// routing table is empty.
const dhtCheck = 2 * time.Second

// Config configures the Kademlia DHT under MESH's own protocol prefix:
// signed node records, topic providers, peer routing.
type Config struct {
	// Mode is "auto" (or ""): serve the DHT when publicly reachable, as
	// AutoNAT reports, and be a client otherwise; "server": always serve
	// (bootstrap and relay nodes; LAN, loopback and mocknet networks);
	// "client": never serve; "off": no DHT at all.
	Mode string `json:"mode,omitempty"`
	// NoLAN turns off the LAN DHT, the second Kademlia instance that runs
	// among peers on private and loopback addresses whatever Mode says (so
	// two nodes on one network find each other directly; see docs/dht.md).
	NoLAN bool `json:"noLAN,omitempty"`
	// Roles are named in the node record and provided in the DHT, on top of
	// "directory", which a directory node names by itself.
	Roles []string `json:"roles,omitempty"`
	// Heartbeat is how often the node record is re-published and topics
	// re-provided ("20m"). 0 means DefaultHeartbeat.
	Heartbeat api.Duration `json:"heartbeat,omitzero"`
	// Discovery is how often followed topics' providers are looked up and
	// connected to ("10m"). 0 means DefaultDiscovery.
	Discovery api.Duration `json:"discovery,omitzero"`
	// RecordTTL is how long a published node record is valid ("1h"). 0
	// means DefaultRecordTTL; at most protocol.MaxNodeRecordTTL.
	RecordTTL api.Duration `json:"recordTTL,omitzero"`
}

// Deps are what the service needs of the rest of the node.
type Deps struct {
	// Self is the node's ID, and Key its Ed25519 key, which signs the
	// node record.
	Self peer.ID
	Key  ed25519.PrivateKey
	// Bootstrap are the peers the DHT starts from.
	Bootstrap []peer.AddrInfo
	// Roles are named in the node record and provided, on top of
	// Config.Roles (a directory's "directory", say).
	Roles []string
	// Topics lists the followed topics: the node record names them, the
	// DHT provides them, and their providers are looked up.
	Topics func(ctx context.Context) ([]string, error)
	// Addrs are the node's addresses, each with /p2p/.
	Addrs func() []ma.Multiaddr
	// Blocked says a node must not be connected to; nil blocks nobody.
	Blocked func(nodeID string) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// Service is the DHT of one node: the DHT itself (kad-dht under MESH's
// own prefix), the heartbeat that keeps the node record and the provider
// records fresh, discovery of the followed topics' providers, and the
// lookups a controller asks for. A Service for Mode "off" has no DHT: its
// lookups answer api.ErrNoDHT. It is safe for concurrent use.
type Service struct {
	cfg   Config
	deps  Deps
	self  peer.ID
	log   *slog.Logger
	now   func() time.Time
	roles []string
	on    bool
	mode  dht.Mode

	dht  *dht.DHT  // set by the routing option or by Start
	host host.Host // set by Start

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// topicsCapped is set once the record's topics were capped (and that
	// was logged).
	topicsCapped atomic.Bool

	mu       sync.Mutex // guards the fields below
	rec      *protocol.NodeRecord
	pub      time.Time // when rec was last put
	lastErr  string    // last heartbeat error, "" if it worked
	provided map[string]time.Time
	disc     map[string]discoveryState
}

// discoveryState is when a followed topic's providers are looked up next.
type discoveryState struct {
	next time.Time
	wait time.Duration // the last wait, doubled while nobody is found
}

// New checks cfg and returns a service not started yet. Give a host the
// node starts itself its Options (the DHT becomes the host's peer
// routing), or wrap a given host with WrapHost; then call Start.
func New(cfg Config, deps Deps) (*Service, error) {
	s := &Service{cfg: cfg, deps: deps, self: deps.Self, log: deps.Logger, now: deps.Now,
		provided: map[string]time.Time{}, disc: map[string]discoveryState{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.deps.Blocked == nil {
		s.deps.Blocked = func(string) bool { return false }
	}
	if s.deps.Addrs == nil {
		s.deps.Addrs = func() []ma.Multiaddr { return nil }
	}
	if s.deps.Topics == nil {
		s.deps.Topics = func(context.Context) ([]string, error) { return nil, nil }
	}
	if err := s.checkConfig(); err != nil {
		return nil, err
	}
	roles := append(slices.Clone(cfg.Roles), deps.Roles...)
	slices.Sort(roles)
	s.roles = slices.Compact(roles)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// checkConfig checks the settings and parses the mode.
func (s *Service) checkConfig() error {
	if s.cfg.Mode != "off" {
		m, err := dht.ParseMode(s.cfg.Mode)
		if err != nil {
			return fmt.Errorf("dht: %w (or off)", err)
		}
		s.mode, s.on = m, true
	}
	for _, r := range s.cfg.Roles {
		if err := protocol.ValidateID(r); err != nil {
			return fmt.Errorf("dht role %q: %w", r, err)
		}
	}
	if ttl := time.Duration(s.cfg.RecordTTL); ttl < 0 || ttl > protocol.MaxNodeRecordTTL {
		return fmt.Errorf("%w: dht record ttl %s: at most %s", protocol.ErrInvalid, ttl, protocol.MaxNodeRecordTTL)
	}
	if s.cfg.Heartbeat < 0 || s.cfg.Discovery < 0 {
		return fmt.Errorf("%w: dht heartbeat and discovery intervals must not be negative", protocol.ErrInvalid)
	}
	return nil
}

// Enabled reports whether the node runs a DHT (Mode is not "off").
func (s *Service) Enabled() bool { return s.on }

func (s *Service) newDHT(h host.Host) (*dht.DHT, error) {
	d, err := dht.New(h, dht.Config{Mode: s.mode, Bootstrap: s.deps.Bootstrap, Now: s.now, LAN: !s.cfg.NoLAN})
	if err != nil {
		return nil, fmt.Errorf("dht: %w", err)
	}
	return d, nil
}

// Options are libp2p options for a host the node starts itself: the DHT
// becomes the host's peer routing, so dialling a bare node ID looks its
// addresses up.
func (s *Service) Options() []libp2p.Option {
	if !s.on {
		return nil
	}
	return []libp2p.Option{libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
		d, err := s.newDHT(h)
		if err != nil {
			return nil, err
		}
		s.dht = d
		return d, nil
	})}
}

// WrapHost wraps a host the node was given (mocknet) so that, like a host
// the node starts itself, it resolves bare node IDs through the DHT.
func (s *Service) WrapHost(h host.Host) host.Host {
	if !s.on {
		return h
	}
	return routedhost.Wrap(h, router{s})
}

// router is the peer routing of a wrapped host: the DHT once it runs.
type router struct{ s *Service }

func (r router) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	d := r.s.dht
	if d == nil {
		return peer.AddrInfo{}, api.ErrNoDHT
	}
	return d.FindPeer(ctx, p)
}

// Start runs the DHT on h (for a wrapped host, the host given, not the
// wrapper, which would route through itself) and the heartbeat. It runs
// after the host, federation, trust and peers are up.
func (s *Service) Start(h host.Host) error {
	s.host = h
	if !s.on {
		return nil
	}
	if s.dht == nil {
		d, err := s.newDHT(h)
		if err != nil {
			return err
		}
		s.dht = d
	}
	s.wg.Add(1)
	go s.loop()
	return nil
}

// Close stops the heartbeat and the DHT. It runs before the host closes.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	if s.dht != nil {
		return s.dht.Close()
	}
	return nil
}

func (s *Service) getDHT() (*dht.DHT, error) {
	if !s.on {
		return nil, api.ErrNoDHT
	}
	if s.host == nil || s.dht == nil {
		return nil, api.ErrOffline
	}
	return s.dht, nil
}

// RoleProviders looks up, in the DHT, up to n nodes that provide role.
func (s *Service) RoleProviders(ctx context.Context, role string, n int) ([]peer.AddrInfo, error) {
	d, err := s.getDHT()
	if err != nil {
		return nil, err
	}
	return d.RoleProviders(ctx, role, n)
}

// capTopics returns at most protocol.MaxTags topics, the limit of a node
// record; the first time it drops any, it logs so.
func (s *Service) capTopics(topics []string) []string {
	capped, dropped := protocol.CapTopics(topics)
	if dropped != "" && s.topicsCapped.CompareAndSwap(false, true) {
		s.log.Warn("more topics than a node record can hold; it lists the first ones in sorted order",
			"topics", len(topics), "listed", len(capped), "first_left_out", dropped)
	}
	return capped
}

func (s *Service) loop() {
	defer s.wg.Done()
	d := s.dht
	tick := time.NewTicker(dhtCheck)
	defer tick.Stop()
	hasPeers := false
	for {
		if d.RoutingTableSize() > 0 {
			if !hasPeers {
				// First peers: fill the routing table before publishing.
				ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
				_ = d.Refresh(ctx)
				cancel()
				hasPeers = true
			}
			s.heartbeat(d)
			s.discover(d)
		} else {
			hasPeers = false
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Service) heartbeatEvery() time.Duration {
	if s.cfg.Heartbeat > 0 {
		return time.Duration(s.cfg.Heartbeat)
	}
	return DefaultHeartbeat
}

func (s *Service) discoveryEvery() time.Duration {
	if s.cfg.Discovery > 0 {
		return time.Duration(s.cfg.Discovery)
	}
	return DefaultDiscovery
}

// recordAddrs are the addresses the node record lists (at most 32): see
// publishableAddrs.
func (s *Service) recordAddrs() []string {
	var out []string
	for _, a := range publishableAddrs(s.deps.Addrs()) {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out[:min(len(out), 32)]
}

// publishableAddrs are the addresses worth telling the whole DHT: the
// publicly routable ones (a relay circuit counts by its relay's address)
// if there are any, for a node's LAN and loopback addresses help nobody
// outside and map its home network for everyone; else, as on a LAN or a
// test network where nothing is public, all of them. Neighbours on the
// same LAN still find each other by mDNS.
func publishableAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var public []ma.Multiaddr
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			public = append(public, a)
		}
	}
	if len(public) == 0 {
		return addrs
	}
	return public
}

// dhtHeartbeat re-publishes the node record if it changed or is due, and
// provides every followed topic and role not provided within a heartbeat.
func (s *Service) heartbeat(d *dht.DHT) {
	topics, err := s.deps.Topics(s.ctx)
	if err != nil {
		return
	}
	recTopics := s.capTopics(topics)
	roles := s.roles
	addrs := s.recordAddrs()
	now := s.now()
	every := s.heartbeatEvery()

	s.mu.Lock()
	cur := s.rec
	due := cur == nil || now.Sub(s.pub) >= every ||
		!slices.Equal(cur.Topics, recTopics) || !slices.Equal(cur.Roles, roles) || !slices.Equal(cur.Addrs, addrs)
	s.mu.Unlock()

	var errs []error
	if due {
		if err := s.publishRecord(d, addrs, recTopics, roles); err != nil {
			errs = append(errs, err)
		}
	}
	keys := make([]string, 0, len(topics)+len(roles))
	for _, t := range topics {
		keys = append(keys, "topic/"+t)
	}
	for _, r := range roles {
		keys = append(keys, "role/"+r)
	}
	for _, k := range keys {
		s.mu.Lock()
		last, ok := s.provided[k]
		s.mu.Unlock()
		if ok && now.Sub(last) < every {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		var err error
		if t, isTopic := strings.CutPrefix(k, "topic/"); isTopic {
			err = d.ProvideTopic(ctx, t)
		} else {
			r, _ := strings.CutPrefix(k, "role/")
			err = d.ProvideRole(ctx, r)
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.provided[k] = now
		s.mu.Unlock()
	}
	// Forget what is no longer followed, so following it again provides it.
	s.mu.Lock()
	for k := range s.provided {
		if !slices.Contains(keys, k) {
			delete(s.provided, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.lastErr = err.Error()
	} else {
		s.lastErr = ""
	}
	s.mu.Unlock()
	if len(errs) > 0 && s.ctx.Err() == nil {
		s.log.Debug("dht heartbeat", "err", errors.Join(errs...))
	}
}

func (s *Service) recordTTL() time.Duration {
	if s.cfg.RecordTTL > 0 {
		return time.Duration(s.cfg.RecordTTL)
	}
	return DefaultRecordTTL
}

// publishRecord signs a fresh node record and puts it in the DHT.
func (s *Service) publishRecord(d *dht.DHT, addrs, topics, roles []string) error {
	now := s.now()
	s.mu.Lock()
	// issuedAt must grow: a record with the issuedAt of the last one would
	// lose to it on the DHT servers.
	if s.rec != nil && now.UnixMilli() <= s.rec.IssuedAt {
		now = time.UnixMilli(s.rec.IssuedAt + 1)
	}
	s.mu.Unlock()
	rec, err := protocol.SignNodeRecord(s.deps.Key, addrs, topics, roles, now, s.recordTTL())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := d.PutNodeRecord(ctx, rec); err != nil {
		return err
	}
	s.mu.Lock()
	s.rec, s.pub = rec, s.now()
	s.mu.Unlock()
	return nil
}

// dhtDiscover looks up the providers of each followed topic that is due and
// connects to those it is not connected to; connecting syncs (see
// syncOnConnect). A topic whose lookup found nobody is retried on the next
// check, doubling the wait up to Discovery.
func (s *Service) discover(d *dht.DHT) {
	topics, err := s.deps.Topics(s.ctx)
	if err != nil {
		return
	}
	now := s.now()
	for _, t := range topics {
		s.mu.Lock()
		st, ok := s.disc[t]
		s.mu.Unlock()
		if ok && now.Before(st.next) {
			continue
		}
		wait := s.discoveryEvery()
		if s.discoverTopic(d, t) == 0 {
			// Nobody yet: look again soon (the publishers may be providing
			// right now), doubling the wait: 2 s, 4 s, 8 s ...
			wait = min(wait, max(dhtCheck, 2*st.wait))
			if !ok {
				wait = min(s.discoveryEvery(), dhtCheck)
			}
		}
		s.mu.Lock()
		s.disc[t] = discoveryState{next: now.Add(wait), wait: wait}
		s.mu.Unlock()
	}
	s.mu.Lock()
	for t := range s.disc {
		if !slices.Contains(topics, t) {
			delete(s.disc, t)
		}
	}
	s.mu.Unlock()
}

// discoverTopic connects to the providers of topic and returns how many
// other nodes provide it.
func (s *Service) discoverTopic(d *dht.DHT, topic string) int {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	provs, err := d.TopicProviders(ctx, topic, dht.DefaultMaxProviders)
	if err != nil {
		s.log.Debug("dht discover", "topic", topic, "err", err)
		return 0
	}
	found := 0
	var wg sync.WaitGroup
	for _, ai := range provs {
		if ai.ID == s.self {
			continue
		}
		found++
		if s.host.Network().Connectedness(ai.ID) == network.Connected || s.deps.Blocked(ai.ID.String()) {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := s.host.Connect(cctx, ai); err != nil {
				s.log.Debug("dht discover: connect", "peer", ai.ID.String(), "err", err)
			}
		}(ai)
	}
	wg.Wait()
	return found
}

// DHTStatus reports the node's DHT: mode, routing table, the record last
// published and what is provided.
func (s *Service) DHTStatus(ctx context.Context) (*api.DHTStatus, error) {
	st := &api.DHTStatus{Protocol: dht.ProtocolID, Mode: s.cfg.Mode, Provided: []string{}}
	if st.Mode == "" {
		st.Mode = "auto"
	}
	d := s.dht
	if s.host == nil || d == nil {
		if s.host == nil {
			st.Mode = "offline"
		}
		return st, nil
	}
	st.Enabled = true
	st.Serving = d.Serving()
	st.RoutingTable = d.RoutingTableSize()
	st.LAN = d.LAN()
	st.LANRoutingTable = d.LANRoutingTableSize()
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Record = s.rec
	if !s.pub.IsZero() {
		st.PublishedAt = s.pub.UnixMilli()
	}
	for k := range s.provided {
		st.Provided = append(st.Provided, k)
	}
	sort.Strings(st.Provided)
	st.LastError = s.lastErr
	return st, nil
}

// TopicNodes looks up, in the DHT, the nodes that follow topic (its
// providers), up to limit (20 if limit <= 0, at most 200), each with its
// verified node record when the DHT holds one. This node is included if it
// follows the topic.
func (s *Service) TopicNodes(ctx context.Context, topic string, limit int) ([]api.NodeInfo, error) {
	d, err := s.getDHT()
	if err != nil {
		return nil, err
	}
	provs, err := d.TopicProviders(ctx, topic, limit)
	if err != nil {
		return nil, err
	}
	return s.nodeInfos(ctx, d, provs), nil
}

// Directories looks up, in the DHT, nodes playing the directory role, up to
// limit, each with its verified node record when the DHT holds one.
func (s *Service) Directories(ctx context.Context, limit int) ([]api.NodeInfo, error) {
	d, err := s.getDHT()
	if err != nil {
		return nil, err
	}
	provs, err := d.RoleProviders(ctx, protocol.RoleDirectory, limit)
	if err != nil {
		return nil, err
	}
	return s.nodeInfos(ctx, d, provs), nil
}

// nodeInfos looks up the node records of providers, a few at a time.
func (s *Service) nodeInfos(ctx context.Context, d *dht.DHT, provs []peer.AddrInfo) []api.NodeInfo {
	out := make([]api.NodeInfo, len(provs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, ai := range provs {
		out[i] = api.NodeInfo{NodeID: ai.ID.String(), Addrs: []string{}, Topics: []string{}, Roles: []string{}}
		for _, a := range ai.Addrs {
			out[i].Addrs = append(out[i].Addrs, a.String())
		}
		wg.Add(1)
		go func(i int, id peer.ID) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			rec, err := s.NodeRecord(rctx, id.String())
			if err != nil {
				return
			}
			out[i].Record = rec
			out[i].Addrs = rec.Addrs
			out[i].Topics = rec.Topics
			out[i].Roles = rec.Roles
		}(i, ai.ID)
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// NodeRecord looks up the newest valid signed record of a node in the DHT
// (this node's own: the one last published). The error wraps
// dht.ErrNotFound when there is none.
func (s *Service) NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error) {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return nil, err
	}
	d, err := s.getDHT()
	if err != nil {
		return nil, err
	}
	if nodeID == s.self.String() {
		// This node's own: the record last published, or, before the
		// first heartbeat, a fresh one saying the same.
		s.mu.Lock()
		rec := s.rec
		s.mu.Unlock()
		if rec != nil && !rec.Expired(s.now()) {
			return rec, nil
		}
		topics, err := s.deps.Topics(ctx)
		if err != nil {
			return nil, err
		}
		return protocol.SignNodeRecord(s.deps.Key, s.recordAddrs(), s.capTopics(topics), s.roles, s.now(), s.recordTTL())
	}
	id, _ := peer.Decode(nodeID)
	return d.NodeRecord(ctx, id)
}

// FindNode resolves a node's addresses through the DHT (a peer lookup, then
// its signed record), with no prior connection needed. It is what dialling
// a bare node ID does.
func (s *Service) FindNode(ctx context.Context, nodeID string) (*api.NodeInfo, error) {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return nil, err
	}
	d, err := s.getDHT()
	if err != nil {
		return nil, err
	}
	id, _ := peer.Decode(nodeID)
	if id == s.self {
		return &api.NodeInfo{NodeID: nodeID, Addrs: s.recordAddrs(), Topics: []string{}, Roles: s.roles}, nil
	}
	ai, err := d.FindPeer(ctx, id)
	if err != nil {
		return nil, err
	}
	info := &api.NodeInfo{NodeID: nodeID, Addrs: []string{}, Topics: []string{}, Roles: []string{}}
	for _, a := range ai.Addrs {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info, nil
}
