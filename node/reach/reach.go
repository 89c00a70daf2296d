package reach

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/internal/p2paddr"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// Reachability modes of Config.Reachability and values of
// NetworkStatus.Reachability.
const (
	ReachabilityAuto    = "auto"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
	ReachabilityUnknown = "unknown"
)

// relayHopProto is the circuit relay v2 protocol a relay serves.
const relayHopProto = "/libp2p/circuit/relay/0.2.0/hop"

// Config configures reachability from behind NAT: AutoNAT v2, circuit
// relay v2 (client and service), DCUtR hole punching, UPnP/NAT-PMP and
// announced addresses. The zero value is what an embedded node wants: AutoNAT
// decides reachability, relays are found among connected peers that run one,
// hole punching is on, port mapping is off. The daemon turns port mapping on.
type Config struct {
	// Reachability is "auto" (or ""): AutoNAT decides; "public": the node
	// says it is reachable (a server with a public address); "private": the
	// node says it is not (it reserves relay slots at once).
	Reachability string `json:"reachability,omitempty"`

	// StaticRelays are relays (multiaddrs ending in /p2p/<node ID>) the node
	// reserves a slot with whenever it is not known to be public. They are
	// also kept connected, like bootstrap peers. Connected peers that run a
	// relay are used too, unless NoRelayDiscovery.
	StaticRelays []string `json:"staticRelays,omitempty"`

	// NoRelayDiscovery uses only StaticRelays, never connected peers that
	// happen to run a relay.
	NoRelayDiscovery bool `json:"noRelayDiscovery,omitempty"`

	// NoAutoRelay never reserves relay slots: a node behind NAT is then
	// reachable only by the peers it dials itself.
	NoAutoRelay bool `json:"noAutoRelay,omitempty"`

	// NoHolePunch turns off DCUtR: relayed connections are never upgraded to
	// direct ones.
	NoHolePunch bool `json:"noHolePunch,omitempty"`

	// PortMap asks the home router for a port mapping by UPnP or NAT-PMP.
	// Nil means off for an embedded node and on for `mesh daemon`.
	PortMap *bool `json:"portMap,omitempty"`

	// Announce, if not empty, replaces the addresses the node advertises
	// (its relay addresses are kept): for a node behind a tunnel or a
	// reverse proxy, say "/dns4/mesh.example.org/tcp/443/wss".
	Announce []string `json:"announce,omitempty"`

	// AppendAnnounce are advertised on top of the node's own addresses.
	AppendAnnounce []string `json:"appendAnnounce,omitempty"`

	// KeepRelayed keeps a relayed connection open after a direct one to the
	// same peer exists. By default it is closed after relayedGrace, which
	// frees the relay's circuit.
	KeepRelayed bool `json:"keepRelayed,omitempty"`

	// Relay runs a circuit relay v2 service for nodes behind NAT.
	Relay RelayConfig `json:"relay,omitzero"`
}

// RelayConfig configures the relay service (`mesh daemon --relay`). Zero
// fields take the defaults below.
type RelayConfig struct {
	// Enabled runs the service. A relay must be publicly reachable: run it
	// on a server with a public address (and Reachability "public").
	Enabled bool `json:"enabled,omitempty"`
	// MaxReservations is the number of nodes that can hold a slot at once
	// (default 128).
	MaxReservations int `json:"maxReservations,omitempty"`
	// MaxReservationsPerIP caps the slots taken from one IP address
	// (default 8).
	MaxReservationsPerIP int `json:"maxReservationsPerIP,omitempty"`
	// MaxCircuits is the number of relayed connections open at once to or
	// from one node (default 16).
	MaxCircuits int `json:"maxCircuits,omitempty"`
	// ReservationTTL is how long a slot lasts before the node must refresh
	// it (default 1h).
	ReservationTTL api.Duration `json:"reservationTTL,omitzero"`
	// CircuitDuration and CircuitBytes cap each relayed connection: after
	// that time, or that many bytes in either direction, the relay closes
	// it. Zero (the default) means no cap: a node behind a NAT that cannot
	// be punched then federates entirely through the relay. With a cap,
	// libp2p marks relayed connections as limited and GossipSub does not
	// use them: they serve for hole punching and MESH's own stream
	// protocols (sync, fetch, search) only.
	CircuitDuration api.Duration `json:"circuitDuration,omitzero"`
	CircuitBytes    int64        `json:"circuitBytes,omitempty"`
	// BufferSize is the per-direction buffer of each relayed connection in
	// bytes (default 4096).
	BufferSize int `json:"bufferSize,omitempty"`
	// TrustedOnly grants slots only to nodes this node trusts (full or
	// limited). Blocked nodes are always refused.
	TrustedOnly bool `json:"trustedOnly,omitempty"`
}

// Relay service defaults.
const (
	DefaultRelayMaxReservations      = 128
	DefaultRelayMaxReservationsPerIP = 8
	DefaultRelayMaxCircuits          = 16
	DefaultRelayReservationTTL       = time.Hour
	DefaultRelayBufferSize           = 4096
)

// relayedGrace is how long a relayed connection stays open once a direct
// connection to the same peer exists (unless Config.KeepRelayed).
var relayedGrace = 3 * time.Second

// Validate checks the configuration and returns a clear error for the first
// problem found.
func (c Config) Validate() error {
	switch c.Reachability {
	case "", ReachabilityAuto, ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("%w: reachability %q: want auto, public or private", protocol.ErrInvalid, c.Reachability)
	}
	for _, a := range c.StaticRelays {
		if _, err := p2paddr.ParseAddrInfo(a); err != nil {
			return fmt.Errorf("relay %q: %w", a, err)
		}
	}
	for _, list := range [][]string{c.Announce, c.AppendAnnounce} {
		for _, a := range list {
			if _, err := ParseAnnounceAddr(a); err != nil {
				return err
			}
		}
	}
	r := c.Relay
	if r.MaxReservations < 0 || r.MaxReservationsPerIP < 0 || r.MaxCircuits < 0 || r.ReservationTTL < 0 ||
		r.CircuitDuration < 0 || r.CircuitBytes < 0 || r.BufferSize < 0 {
		return fmt.Errorf("%w: relay limits must not be negative", protocol.ErrInvalid)
	}
	return nil
}

// ParseAnnounceAddr parses an address to announce: a multiaddr with a
// network part and a transport ("/ip4/203.0.113.7/tcp/4001",
// "/dns4/mesh.example.org/tcp/443/wss"), without /p2p/.
func ParseAnnounceAddr(s string) (ma.Multiaddr, error) {
	m, err := ma.NewMultiaddr(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: announce address %q: %v", protocol.ErrInvalid, s, err)
	}
	if _, err := m.ValueForProtocol(ma.P_P2P); err == nil {
		return nil, fmt.Errorf("%w: announce address %q: leave out /p2p/<node ID>, it is added", protocol.ErrInvalid, s)
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return nil, fmt.Errorf("%w: announce address %q: relay addresses are announced by themselves", protocol.ErrInvalid, s)
	}
	if len(m) < 2 {
		return nil, fmt.Errorf("%w: announce address %q: want a network and a transport part, such as /ip4/203.0.113.7/tcp/4001", protocol.ErrInvalid, s)
	}
	switch m[0].Code() {
	case ma.P_IP4, ma.P_IP6, ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
	default:
		return nil, fmt.Errorf("%w: announce address %q: must start with /ip4, /ip6, /dns, /dns4, /dns6 or /dnsaddr", protocol.ErrInvalid, s)
	}
	return m, nil
}

// Trust is what the relay service asks of the web of trust (*trust.Graph).
// It must be safe for concurrent use.
type Trust interface {
	Blocked(nodeID string) bool
	Level(nodeID string) (trust.Level, bool)
}

// Deps are what the service needs of the rest of the node.
type Deps struct {
	// Self is the node's ID.
	Self peer.ID
	// Trust refuses blocked nodes relay slots; nil trusts everyone.
	Trust Trust
	// Keep keeps the node connected to a peer (the static relays),
	// redialling when the link drops; nil does nothing.
	Keep func(peer.AddrInfo)
	// RelayProviders finds nodes that provide the relay role (in the DHT),
	// after the static relays and the connected peers that run one; nil
	// finds none.
	RelayProviders func(ctx context.Context, n int) ([]peer.AddrInfo, error)
	// Addrs are the node's advertised addresses, each with /p2p/.
	Addrs func() []ma.Multiaddr
	// ListenAddrs are the node's listen multiaddrs; port mapping is off
	// when they are all loopback.
	ListenAddrs []string
	// GivenHost says the host was given (mocknet): no hole punching, no
	// port mapping.
	GivenHost bool
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// Service is the reachability of one node: the libp2p options for AutoNAT,
// relays, hole punching and port mapping, the loops that retry upgrades to
// direct connections, the relay service, and the node's view of its own
// reachability. It is safe for concurrent use.
type Service struct {
	cfg  Config
	deps Deps
	self peer.ID
	log  *slog.Logger
	host host.Host // set by Start

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hostReady chan struct{} // closed once host is set

	mu           sync.Mutex
	reachV1      network.Reachability
	reachable    []ma.Multiaddr // AutoNAT v2: confirmed reachable
	unreachable  []ma.Multiaddr // AutoNAT v2: confirmed unreachable
	relayAddrs   []ma.Multiaddr // our circuit addresses (one per reservation and relay address)
	holePunched  map[peer.ID]time.Time
	holePunchErr map[peer.ID]string
	punches      struct{ ok, failed int }
	punchSeen    map[peer.ID]time.Time // last hole punch event with a peer
	upgrades     map[peer.ID]*upgradeState
	relaySvc     *relayv2.Relay
	relayStats   *relayTracer
}

// New checks cfg and returns a service not started yet: give its Options
// to libp2p, then call Start with the host.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nat: %w", err)
	}
	s := &Service{
		cfg: cfg, deps: deps, self: deps.Self, log: deps.Logger,
		hostReady:    make(chan struct{}),
		holePunched:  map[peer.ID]time.Time{},
		holePunchErr: map[peer.ID]string{},
		punchSeen:    map[peer.ID]time.Time{},
		upgrades:     map[peer.ID]*upgradeState{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.deps.Addrs == nil {
		s.deps.Addrs = func() []ma.Multiaddr { return nil }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Options are the libp2p options of a host the node starts itself.
func (s *Service) Options() []libp2p.Option {
	c := s.cfg
	opts := []libp2p.Option{
		libp2p.EnableRelay(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableNATService(),
	}
	switch c.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if !c.NoAutoRelay {
		desired := 2
		if k := len(c.StaticRelays); k > 0 && (c.NoRelayDiscovery || k > desired) {
			desired = k
		}
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(s.relayCandidates,
			autorelay.WithNumRelays(desired),
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithBackoff(time.Minute),
			autorelay.WithMinInterval(5*time.Second),
		))
	}
	if !c.NoHolePunch {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(punchTracer{s}), holepunch.WithAddrFilter(punchAddrs{s})))
	}
	if s.portMapping() {
		opts = append(opts, libp2p.NATPortMap())
	}
	if len(c.Announce) > 0 || len(c.AppendAnnounce) > 0 {
		replace, extra := parseAnnounce(c.Announce), parseAnnounce(c.AppendAnnounce)
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			var out []ma.Multiaddr
			if len(replace) > 0 {
				out = append(out, replace...)
				for _, a := range addrs {
					if p2paddr.IsRelayed(a) {
						out = append(out, a)
					}
				}
			} else {
				out = append(out, addrs...)
			}
			return ma.Unique(append(out, extra...))
		}))
	}
	return opts
}

// portMapping says whether the node asks its router for port mappings: when
// configured to, and listening on something else than loopback (a node on
// loopback only, in a test say, has nothing to map and must not talk to the
// LAN's router).
func (s *Service) portMapping() bool {
	if c := s.cfg.PortMap; c == nil || !*c || s.deps.GivenHost {
		return false
	}
	for _, l := range s.deps.ListenAddrs {
		if m, err := ma.NewMultiaddr(l); err == nil && !manet.IsIPLoopback(m) {
			return true
		}
	}
	return false
}

func parseAnnounce(list []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range list {
		if m, err := ParseAnnounceAddr(s); err == nil { // validated in startNAT's caller
			out = append(out, m)
		}
	}
	return out
}

// relayCandidates is AutoRelay's peer source: the static relays, then the
// connected peers that run a relay, then the nodes that provide the relay
// role in the DHT (a relay started by `mesh daemon --relay` provides it).
func (s *Service) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, max(num, 1))
	go func() {
		defer close(out)
		select {
		case <-s.hostReady:
		case <-ctx.Done():
			return
		}
		sent := map[peer.ID]bool{}
		send := func(ai peer.AddrInfo) bool {
			if sent[ai.ID] || ai.ID == s.self || len(sent) >= num {
				return len(sent) < num
			}
			sent[ai.ID] = true
			select {
			case out <- ai:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, r := range s.cfg.StaticRelays {
			ai, err := p2paddr.ParseAddrInfo(r)
			if err != nil {
				continue
			}
			if !send(*ai) {
				return
			}
		}
		if s.cfg.NoRelayDiscovery {
			return
		}
		for _, p := range s.host.Network().Peers() {
			if protos, err := s.host.Peerstore().SupportsProtocols(p, relayHopProto); err != nil || len(protos) == 0 {
				continue
			}
			direct := false
			for _, c := range s.host.Network().ConnsToPeer(p) {
				direct = direct || !p2paddr.IsRelayed(c.RemoteMultiaddr())
			}
			if !direct {
				continue
			}
			if !send(peer.AddrInfo{ID: p, Addrs: s.host.Peerstore().Addrs(p)}) {
				return
			}
		}
		// Then the nodes that provide the relay role in the DHT.
		if len(sent) >= num || s.deps.RelayProviders == nil {
			return
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		provs, err := s.deps.RelayProviders(qctx, num)
		if err != nil {
			s.log.Debug("relays from the DHT", "err", err)
			return
		}
		for _, ai := range provs {
			if !send(ai) {
				return
			}
		}
	}()
	return out
}

// Start runs the service on h, the node's host: it keeps the static relays
// connected, follows reachability, reservations and connections, retries
// upgrades to direct connections, and runs the relay service if
// configured. It runs after the host and the node's peer keeper are up.
func (s *Service) Start(h host.Host) error {
	s.host = h
	close(s.hostReady)
	c := s.cfg
	for _, r := range c.StaticRelays {
		ai, _ := p2paddr.ParseAddrInfo(r)
		if s.deps.Keep != nil {
			s.deps.Keep(*ai)
		}
	}
	bus := s.host.EventBus()
	sub, err := bus.Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtAutoRelayAddrsUpdated),
		new(event.EvtPeerConnectednessChanged),
	}, eventbus.Name("mesh nat"))
	if err != nil {
		return fmt.Errorf("nat: event bus: %w", err)
	}
	if len(c.StaticRelays) > 0 && !c.NoAutoRelay && (c.Reachability == "" || c.Reachability == ReachabilityAuto) {
		// AutoRelay starts looking for relays only when AutoNAT reports a
		// reachability, which takes AutoNAT at least 15 s and several
		// servers. A node given static relays is a node that expects to be
		// behind NAT: say "unknown" now so that it reserves a slot at
		// once. AutoNAT's later verdict still wins (public stops it).
		em, err := bus.Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
		if err == nil {
			var cur event.EvtLocalReachabilityChanged
			s.mu.Lock()
			cur.Reachability = s.reachV1
			s.mu.Unlock()
			_ = em.Emit(cur)
			_ = em.Close()
		}
	}
	if c.Relay.Enabled {
		if err := s.startRelayService(); err != nil {
			sub.Close()
			return err
		}
	}
	s.wg.Add(1)
	go s.loop(sub)
	return nil
}

func (s *Service) startRelayService() error {
	r := s.cfg.Relay
	rc := relayv2.DefaultResources()
	rc.MaxReservations = orDefault(r.MaxReservations, DefaultRelayMaxReservations)
	rc.MaxReservationsPerIP = orDefault(r.MaxReservationsPerIP, DefaultRelayMaxReservationsPerIP)
	rc.MaxCircuits = orDefault(r.MaxCircuits, DefaultRelayMaxCircuits)
	rc.BufferSize = orDefault(r.BufferSize, DefaultRelayBufferSize)
	rc.ReservationTTL = DefaultRelayReservationTTL
	if r.ReservationTTL > 0 {
		rc.ReservationTTL = time.Duration(r.ReservationTTL)
	}
	rc.Limit = nil
	if r.CircuitDuration > 0 || r.CircuitBytes > 0 {
		rc.Limit = &relayv2.RelayLimit{Duration: time.Duration(r.CircuitDuration), Data: r.CircuitBytes}
		if rc.Limit.Duration == 0 {
			rc.Limit.Duration = 24 * time.Hour
		}
		if rc.Limit.Data == 0 {
			rc.Limit.Data = 1 << 40
		}
	}
	s.relayStats = &relayTracer{}
	svc, err := relayv2.New(s.host, relayv2.WithResources(rc), relayv2.WithACL(relayACL{s}), relayv2.WithMetricsTracer(s.relayStats))
	if err != nil {
		return fmt.Errorf("nat: relay service: %w", err)
	}
	s.mu.Lock()
	s.relaySvc = svc
	s.mu.Unlock()
	s.log.Info("relay service on", "max_reservations", rc.MaxReservations, "max_circuits", rc.MaxCircuits,
		"circuit_limit", rc.Limit != nil)
	return nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// loop follows reachability, reservations and connections.
func (s *Service) loop(sub event.Subscription) {
	defer s.wg.Done()
	defer sub.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			if !s.cfg.KeepRelayed {
				s.closeRedundantRelayed()
			}
			if !s.cfg.NoHolePunch && !s.deps.GivenHost {
				s.retryUpgrades()
			}
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			s.mu.Lock()
			switch e := ev.(type) {
			case event.EvtLocalReachabilityChanged:
				if s.reachV1 != e.Reachability {
					s.log.Info("reachability", "autonat", e.Reachability.String())
				}
				s.reachV1 = e.Reachability
			case event.EvtHostReachableAddrsChanged:
				s.reachable, s.unreachable = e.Reachable, e.Unreachable
			case event.EvtAutoRelayAddrsUpdated:
				if len(e.RelayAddrs) > 0 && len(s.relayAddrs) == 0 {
					s.log.Info("relay reservation", "addrs", len(e.RelayAddrs))
				}
				s.relayAddrs = e.RelayAddrs
			}
			s.mu.Unlock()
		}
	}
}

// closeRedundantRelayed closes relayed connections to peers that have had a
// direct connection for relayedGrace: new streams already prefer the direct
// one, and the relay's circuit is freed.
func (s *Service) closeRedundantRelayed() {
	now := time.Now()
	for _, p := range s.host.Network().Peers() {
		var relayed []network.Conn
		direct := false
		for _, c := range s.host.Network().ConnsToPeer(p) {
			if p2paddr.IsRelayed(c.RemoteMultiaddr()) {
				relayed = append(relayed, c)
			} else if now.Sub(c.Stat().Opened) >= relayedGrace {
				direct = true
			}
		}
		if direct {
			for _, c := range relayed {
				s.log.Debug("closing relayed connection, a direct one exists", "peer", p.String())
				_ = c.Close()
			}
		}
	}
}

// upgradeState tracks the attempts to get a direct connection to a peer
// reached through a relay.
type upgradeState struct {
	attempts int
	next     time.Time
}

// Upgrade retries: DCUtR runs once, when a relayed connection comes in, and
// only if the receiving node already knows a public address of its own (the
// hole punching service starts once it does). A connection that arrives
// earlier, or a punch that failed, is never retried by libp2p. So the node
// that dialled through the relay redials through it after upgradeDelays,
// which makes the other side punch again; punchQuiet is how long to leave a
// punch in progress alone.
var (
	upgradeDelays = []time.Duration{2 * time.Second, 30 * time.Second, 5 * time.Minute, 15 * time.Minute}
	punchQuiet    = 20 * time.Second
)

func (s *Service) retryUpgrades() {
	now := time.Now()
	net := s.host.Network()
	s.mu.Lock()
	for p := range s.upgrades {
		if net.Connectedness(p) != network.Connected || !p2paddr.RelayedOnly(net.ConnsToPeer(p)) {
			delete(s.upgrades, p)
		}
	}
	s.mu.Unlock()
	for _, p := range net.Peers() {
		conns := net.ConnsToPeer(p)
		if !p2paddr.RelayedOnly(conns) {
			continue
		}
		var out network.Conn
		for _, c := range conns {
			if c.Stat().Direction == network.DirOutbound {
				out = c
			}
		}
		if out == nil {
			continue // the other side dialled: it redials
		}
		if protos, err := s.host.Peerstore().SupportsProtocols(p, holepunch.Protocol); err != nil || len(protos) == 0 {
			continue
		}
		s.mu.Lock()
		st := s.upgrades[p]
		if st == nil {
			st = &upgradeState{next: out.Stat().Opened.Add(upgradeDelays[0])}
			s.upgrades[p] = st
		}
		due := st.attempts < len(upgradeDelays) && now.After(st.next) && now.Sub(s.punchSeen[p]) > punchQuiet
		if due {
			st.attempts++
			if st.attempts < len(upgradeDelays) {
				st.next = now.Add(upgradeDelays[st.attempts])
			}
		}
		s.mu.Unlock()
		if !due {
			continue
		}
		ai := peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{out.RemoteMultiaddr()}}
		s.log.Debug("no direct connection yet: redialling through the relay to punch again", "peer", p.String(), "attempt", st.attempts)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for _, c := range net.ConnsToPeer(p) {
				if p2paddr.IsRelayed(c.RemoteMultiaddr()) {
					_ = c.Close()
				}
			}
			ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
			defer cancel()
			if err := s.host.Connect(ctx, ai); err != nil {
				s.log.Debug("redial through the relay", "peer", p.String(), "err", err)
			}
		}()
	}
}

// stopNAT runs in Close, before the host closes.
// Close stops the relay service and the service's loops, and waits for
// them. It runs before the host closes.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	svc := s.relaySvc
	s.relaySvc = nil
	s.mu.Unlock()
	if svc != nil {
		return svc.Close()
	}
	return nil
}

// Status reports the node's reachability, relay reservations and relay
// service; nil before Start.
func (s *Service) Status() *api.NetworkStatus {
	if s.host == nil {
		return nil
	}
	return s.networkStatus()
}

func (s *Service) networkStatus() *api.NetworkStatus {
	if s.host == nil {
		return nil
	}
	c := s.cfg
	st := &api.NetworkStatus{
		ReachabilitySource: "autonat",
		HolePunching:       !c.NoHolePunch && !s.deps.GivenHost,
		PortMapping:        s.portMapping(),
		Reservations:       []api.RelayReservation{},
	}
	for _, a := range s.deps.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	s.mu.Lock()
	v1 := s.reachV1
	for _, a := range s.reachable {
		st.ReachableAddrs = append(st.ReachableAddrs, a.String())
	}
	for _, a := range s.unreachable {
		st.UnreachableAddrs = append(st.UnreachableAddrs, a.String())
	}
	byRelay := map[string][]string{}
	for _, a := range s.relayAddrs {
		if r := p2paddr.RelayOf(a); r != "" {
			byRelay[r] = append(byRelay[r], a.String()+"/p2p/"+s.self.String())
		}
	}
	st.HolePunches.Succeeded, st.HolePunches.Failed = s.punches.ok, s.punches.failed
	svc, stats := s.relaySvc, s.relayStats
	s.mu.Unlock()
	for r, addrs := range byRelay {
		st.Reservations = append(st.Reservations, api.RelayReservation{Relay: r, Addrs: addrs})
	}
	sort.Slice(st.Reservations, func(i, j int) bool { return st.Reservations[i].Relay < st.Reservations[j].Relay })

	switch {
	case c.Reachability == ReachabilityPublic || c.Reachability == ReachabilityPrivate:
		st.Reachability, st.ReachabilitySource = c.Reachability, "config"
	case len(st.ReachableAddrs) > 0 || v1 == network.ReachabilityPublic:
		st.Reachability = ReachabilityPublic
	case len(st.UnreachableAddrs) > 0 || v1 == network.ReachabilityPrivate:
		st.Reachability = ReachabilityPrivate
	default:
		st.Reachability = ReachabilityUnknown
	}
	for _, p := range s.host.Network().Peers() {
		if p2paddr.RelayedOnly(s.host.Network().ConnsToPeer(p)) {
			st.Peers.Relayed++
		} else {
			st.Peers.Direct++
		}
	}
	if svc != nil {
		r := c.Relay
		rs := &api.RelayServiceStatus{
			MaxReservations: orDefault(r.MaxReservations, DefaultRelayMaxReservations),
			MaxCircuits:     orDefault(r.MaxCircuits, DefaultRelayMaxCircuits),
			CircuitBytes:    r.CircuitBytes,
			TrustedOnly:     r.TrustedOnly,
		}
		if r.CircuitDuration > 0 {
			rs.CircuitDuration = time.Duration(r.CircuitDuration).String()
		}
		stats.mu.Lock()
		rs.Reservations, rs.Circuits, rs.CircuitsTotal, rs.BytesRelayed = stats.reservations, stats.circuits, stats.circuitsTotal, stats.bytes
		stats.mu.Unlock()
		st.RelayService = rs
	}
	return st
}

// HolePunchedAt returns when the last successful hole punch with p ended.
func (s *Service) HolePunchedAt(p peer.ID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.holePunched[p]
	return t, ok
}

// punchTracer records the outcome of each hole punch.
type punchTracer struct{ s *Service }

func (t punchTracer) Trace(evt *holepunch.Event) {
	s := t.s
	if evt.Type != holepunch.ProtocolErrorEvtT && evt.Type != holepunch.DirectDialEvtT {
		s.mu.Lock()
		s.punchSeen[evt.Remote] = time.Now()
		s.mu.Unlock()
	}
	e, ok := evt.Evt.(*holepunch.EndHolePunchEvt)
	if !ok {
		if pe, ok := evt.Evt.(*holepunch.ProtocolErrorEvt); ok {
			s.log.Debug("hole punch protocol error", "peer", evt.Remote.String(), "err", pe.Error)
		}
		return
	}
	s.mu.Lock()
	if e.Success {
		s.punches.ok++
		s.holePunched[evt.Remote] = time.Now()
		delete(s.holePunchErr, evt.Remote)
	} else {
		s.punches.failed++
		s.holePunchErr[evt.Remote] = e.Error
	}
	s.mu.Unlock()
	s.log.Debug("hole punch", "peer", evt.Remote.String(), "ok", e.Success, "took", e.EllapsedTime.String(), "err", e.Error)
}

// punchAddrs completes the addresses a node offers for hole punching. A node
// learns its public address from what its peers observe, one transport per
// connection: a home node connected to its relay over TCP knows only its
// public TCP address, and one connected over QUIC only its QUIC address, so
// two such homes would punch with different transports and never meet. When
// the observed port is the node's own listening port (the NAT kept it, as
// Linux and most home routers do when they can), the NAT most likely keeps
// the port of the node's other listener too: the node offers that address
// as well, and both sides try both transports.
type punchAddrs struct{ s *Service }

func (f punchAddrs) FilterLocal(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr {
	return inferPunchAddrs(addrs, f.s.host.Network().ListenAddresses())
}

func (f punchAddrs) FilterRemote(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr { return addrs }

// inferPunchAddrs adds to the observed public addresses, for each one whose
// port is that of a TCP or QUIC listener, the same IP with the ports of the
// other TCP and QUIC listeners.
func inferPunchAddrs(observed, listen []ma.Multiaddr) []ma.Multiaddr {
	type lport struct {
		proto int // ma.P_TCP or ma.P_UDP
		port  string
		rest  ma.Multiaddr // after the port: nothing, or /quic-v1
	}
	var ls []lport
	for _, l := range listen {
		if len(l) < 2 {
			continue
		}
		rest := l[2:]
		switch {
		case l[1].Code() == ma.P_TCP && len(rest) == 0:
		case l[1].Code() == ma.P_UDP && len(rest) == 1 && rest[0].Code() == ma.P_QUIC_V1:
		default:
			continue
		}
		ls = append(ls, lport{l[1].Code(), l[1].Value(), rest})
	}
	out := append([]ma.Multiaddr(nil), observed...)
	for _, o := range observed {
		if len(o) < 2 {
			continue
		}
		kept := false
		for _, l := range ls {
			kept = kept || (o[1].Code() == l.proto && o[1].Value() == l.port)
		}
		if !kept {
			continue
		}
		for _, l := range ls {
			tp, err := ma.NewComponent(ma.ProtocolWithCode(l.proto).Name, l.port)
			if err != nil {
				continue
			}
			a := append(ma.Multiaddr{o[0], *tp}, l.rest...)
			if !slices.ContainsFunc(out, a.Equal) {
				out = append(out, a)
			}
		}
	}
	return out
}

// relayACL refuses blocked nodes and, with TrustedOnly, untrusted ones.
type relayACL struct{ s *Service }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	t := a.s.deps.Trust
	if t == nil {
		return true
	}
	if t.Blocked(p.String()) {
		return false
	}
	if a.s.cfg.Relay.TrustedOnly {
		lvl, ok := t.Level(p.String())
		return ok && (lvl == trust.LevelFull || lvl == trust.LevelLimited)
	}
	return true
}

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	t := a.s.deps.Trust
	return t == nil || (!t.Blocked(src.String()) && !t.Blocked(dest.String()))
}

// relayTracer counts what the relay service does.
type relayTracer struct {
	mu            sync.Mutex
	reservations  int
	circuits      int
	circuitsTotal int
	bytes         int64
}

func (r *relayTracer) RelayStatus(bool) {}
func (r *relayTracer) ConnectionOpened() {
	r.mu.Lock()
	r.circuits++
	r.circuitsTotal++
	r.mu.Unlock()
}
func (r *relayTracer) ConnectionClosed(time.Duration) {
	r.mu.Lock()
	r.circuits = max(r.circuits-1, 0)
	r.mu.Unlock()
}
func (r *relayTracer) ConnectionRequestHandled(pbv2.Status) {}
func (r *relayTracer) ReservationAllowed(renewal bool) {
	if renewal {
		return
	}
	r.mu.Lock()
	r.reservations++
	r.mu.Unlock()
}
func (r *relayTracer) ReservationClosed(cnt int) {
	r.mu.Lock()
	r.reservations = max(r.reservations-cnt, 0)
	r.mu.Unlock()
}
func (r *relayTracer) ReservationRequestHandled(pbv2.Status) {}
func (r *relayTracer) BytesTransferred(cnt int) {
	r.mu.Lock()
	r.bytes += int64(cnt)
	r.mu.Unlock()
}

// CircuitAddrs returns p's relay addresses through the relays this node
// knows: its static relays and the relays holding a slot for it. A home
// node reaches another home node that way, knowing only its ID and their
// common relay.
func (s *Service) CircuitAddrs(p peer.ID) []ma.Multiaddr {
	relays := map[peer.ID][]ma.Multiaddr{}
	for _, r := range s.cfg.StaticRelays {
		if ai, err := p2paddr.ParseAddrInfo(r); err == nil {
			relays[ai.ID] = append(relays[ai.ID], ai.Addrs...)
		}
	}
	if st := s.Status(); st != nil {
		for _, r := range st.Reservations {
			if id, err := peer.Decode(r.Relay); err == nil {
				relays[id] = append(relays[id], s.host.Peerstore().Addrs(id)...)
			}
		}
	}
	var out []ma.Multiaddr
	for r, addrs := range relays {
		if r == p {
			continue
		}
		if len(addrs) == 0 {
			addrs = s.host.Peerstore().Addrs(r)
		}
		suffix, err := ma.NewMultiaddr("/p2p/" + r.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		for _, a := range ma.Unique(addrs) {
			if p2paddr.IsRelayed(a) {
				continue
			}
			out = append(out, a.Encapsulate(suffix))
		}
	}
	return out
}
