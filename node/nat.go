package node

// This file holds reachability from behind NAT: AutoNAT v2, circuit relay v2 (client and service), DCUtR hole punching, UPnP/NAT-PMP and announced addresses.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// Reachability modes of NATConfig.Reachability and values of
// NetworkStatus.Reachability.
const (
	ReachabilityAuto    = "auto"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
	ReachabilityUnknown = "unknown"
)

// relayHopProto is the circuit relay v2 protocol a relay serves.
const relayHopProto = "/libp2p/circuit/relay/0.2.0/hop"

// NATConfig configures reachability from behind NAT: AutoNAT v2, circuit
// relay v2 (client and service), DCUtR hole punching, UPnP/NAT-PMP and
// announced addresses. The zero value is what an embedded node wants: AutoNAT
// decides reachability, relays are found among connected peers that run one,
// hole punching is on, port mapping is off. The daemon turns port mapping on.
type NATConfig struct {
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
	// same peer exists. By default it is closed after RelayedGrace, which
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
	ReservationTTL Duration `json:"reservationTTL,omitzero"`
	// CircuitDuration and CircuitBytes cap each relayed connection: after
	// that time, or that many bytes in either direction, the relay closes
	// it. Zero (the default) means no cap: a node behind a NAT that cannot
	// be punched then federates entirely through the relay. With a cap,
	// libp2p marks relayed connections as limited and GossipSub does not
	// use them: they serve for hole punching and MESH's own stream
	// protocols (sync, fetch, search) only.
	CircuitDuration Duration `json:"circuitDuration,omitzero"`
	CircuitBytes    int64    `json:"circuitBytes,omitempty"`
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

// RelayedGrace is how long a relayed connection stays open once a direct
// connection to the same peer exists (unless NATConfig.KeepRelayed).
var RelayedGrace = 3 * time.Second

// Duration is a time.Duration written as "90s", "1h" in config.json.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "90s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"90s\" or a number of seconds: %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Validate checks the configuration and returns a clear error for the first
// problem found.
func (c NATConfig) Validate() error {
	switch c.Reachability {
	case "", ReachabilityAuto, ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("%w: reachability %q: want auto, public or private", protocol.ErrInvalid, c.Reachability)
	}
	for _, a := range c.StaticRelays {
		if _, err := parseAddrInfo(a); err != nil {
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

// natState is the part of Node that this file owns.
type natState struct {
	natMu        sync.Mutex
	hostReady    chan struct{} // closed once n.host is set
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

// natOptions are libp2p options added when the node starts its own host.
func (n *Node) natOptions() []libp2p.Option {
	c := n.cfg.NAT
	n.initNATState()
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
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
			autorelay.WithNumRelays(desired),
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithBackoff(time.Minute),
			autorelay.WithMinInterval(5*time.Second),
		))
	}
	if !c.NoHolePunch {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(punchTracer{n}), holepunch.WithAddrFilter(punchAddrs{n})))
	}
	if n.portMapping() {
		opts = append(opts, libp2p.NATPortMap())
	}
	if len(c.Announce) > 0 || len(c.AppendAnnounce) > 0 {
		replace, extra := parseAnnounce(c.Announce), parseAnnounce(c.AppendAnnounce)
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			var out []ma.Multiaddr
			if len(replace) > 0 {
				out = append(out, replace...)
				for _, a := range addrs {
					if isRelayed(a) {
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
func (n *Node) portMapping() bool {
	if c := n.cfg.NAT.PortMap; c == nil || !*c || n.cfg.Host != nil {
		return false
	}
	listen := n.cfg.ListenAddrs
	if listen == nil {
		listen = DefaultListenAddrs
	}
	for _, s := range listen {
		if m, err := ma.NewMultiaddr(s); err == nil && !manet.IsIPLoopback(m) {
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

func (n *Node) initNATState() {
	n.natMu.Lock()
	defer n.natMu.Unlock()
	if n.hostReady == nil {
		n.hostReady = make(chan struct{})
		n.holePunched = map[peer.ID]time.Time{}
		n.holePunchErr = map[peer.ID]string{}
		n.punchSeen = map[peer.ID]time.Time{}
		n.upgrades = map[peer.ID]*upgradeState{}
	}
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// relayCandidates is AutoRelay's peer source: the static relays, then the
// connected peers that run a relay, then the nodes that provide the relay
// role in the DHT (a relay started by `mesh daemon --relay` provides it).
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, max(num, 1))
	go func() {
		defer close(out)
		select {
		case <-n.hostReady:
		case <-ctx.Done():
			return
		}
		sent := map[peer.ID]bool{}
		send := func(ai peer.AddrInfo) bool {
			if sent[ai.ID] || ai.ID == n.id || len(sent) >= num {
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
		for _, s := range n.cfg.NAT.StaticRelays {
			ai, err := parseAddrInfo(s)
			if err != nil {
				continue
			}
			if !send(*ai) {
				return
			}
		}
		if n.cfg.NAT.NoRelayDiscovery {
			return
		}
		for _, p := range n.host.Network().Peers() {
			if protos, err := n.host.Peerstore().SupportsProtocols(p, relayHopProto); err != nil || len(protos) == 0 {
				continue
			}
			direct := false
			for _, c := range n.host.Network().ConnsToPeer(p) {
				direct = direct || !isRelayed(c.RemoteMultiaddr())
			}
			if !direct {
				continue
			}
			if !send(peer.AddrInfo{ID: p, Addrs: n.host.Peerstore().Addrs(p)}) {
				return
			}
		}
		// Then the nodes that provide the relay role in the DHT.
		if len(sent) >= num {
			return
		}
		d, err := n.getDHT()
		if err != nil {
			return
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		provs, err := d.RoleProviders(qctx, protocol.RoleRelay, num)
		if err != nil {
			n.log.Debug("relays from the DHT", "err", err)
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

// startNAT runs after the host, federation, trust and peers are up.
func (n *Node) startNAT(ctx context.Context) error {
	n.initNATState()
	close(n.hostReady)
	c := n.cfg.NAT
	if err := c.Validate(); err != nil {
		return fmt.Errorf("node: nat: %w", err)
	}
	for _, s := range c.StaticRelays {
		ai, _ := parseAddrInfo(s)
		n.peers.keep(*ai)
	}
	bus := n.host.EventBus()
	sub, err := bus.Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtAutoRelayAddrsUpdated),
		new(event.EvtPeerConnectednessChanged),
	}, eventbus.Name("mesh nat"))
	if err != nil {
		return fmt.Errorf("node: event bus: %w", err)
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
			n.natMu.Lock()
			cur.Reachability = n.reachV1
			n.natMu.Unlock()
			_ = em.Emit(cur)
			_ = em.Close()
		}
	}
	if c.Relay.Enabled {
		if err := n.startRelayService(); err != nil {
			sub.Close()
			return err
		}
	}
	n.wg.Add(1)
	go n.natLoop(sub)
	return nil
}

func (n *Node) startRelayService() error {
	r := n.cfg.NAT.Relay
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
	n.relayStats = &relayTracer{}
	svc, err := relayv2.New(n.host, relayv2.WithResources(rc), relayv2.WithACL(relayACL{n}), relayv2.WithMetricsTracer(n.relayStats))
	if err != nil {
		return fmt.Errorf("node: relay service: %w", err)
	}
	n.natMu.Lock()
	n.relaySvc = svc
	n.natMu.Unlock()
	n.log.Info("relay service on", "max_reservations", rc.MaxReservations, "max_circuits", rc.MaxCircuits,
		"circuit_limit", rc.Limit != nil)
	return nil
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// natLoop follows reachability, reservations and connections.
func (n *Node) natLoop(sub event.Subscription) {
	defer n.wg.Done()
	defer sub.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
			if !n.cfg.NAT.KeepRelayed {
				n.closeRedundantRelayed()
			}
			if !n.cfg.NAT.NoHolePunch && n.cfg.Host == nil {
				n.retryUpgrades()
			}
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			n.natMu.Lock()
			switch e := ev.(type) {
			case event.EvtLocalReachabilityChanged:
				if n.reachV1 != e.Reachability {
					n.log.Info("reachability", "autonat", e.Reachability.String())
				}
				n.reachV1 = e.Reachability
			case event.EvtHostReachableAddrsChanged:
				n.reachable, n.unreachable = e.Reachable, e.Unreachable
			case event.EvtAutoRelayAddrsUpdated:
				if len(e.RelayAddrs) > 0 && len(n.relayAddrs) == 0 {
					n.log.Info("relay reservation", "addrs", len(e.RelayAddrs))
				}
				n.relayAddrs = e.RelayAddrs
			}
			n.natMu.Unlock()
		}
	}
}

// closeRedundantRelayed closes relayed connections to peers that have had a
// direct connection for RelayedGrace: new streams already prefer the direct
// one, and the relay's circuit is freed.
func (n *Node) closeRedundantRelayed() {
	now := time.Now()
	for _, p := range n.host.Network().Peers() {
		var relayed []network.Conn
		direct := false
		for _, c := range n.host.Network().ConnsToPeer(p) {
			if isRelayed(c.RemoteMultiaddr()) {
				relayed = append(relayed, c)
			} else if now.Sub(c.Stat().Opened) >= RelayedGrace {
				direct = true
			}
		}
		if direct {
			for _, c := range relayed {
				n.log.Debug("closing relayed connection, a direct one exists", "peer", p.String())
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

func (n *Node) retryUpgrades() {
	now := time.Now()
	net := n.host.Network()
	n.natMu.Lock()
	for p := range n.upgrades {
		if net.Connectedness(p) != network.Connected || !peerRelayedOnly(net.ConnsToPeer(p)) {
			delete(n.upgrades, p)
		}
	}
	n.natMu.Unlock()
	for _, p := range net.Peers() {
		conns := net.ConnsToPeer(p)
		if !peerRelayedOnly(conns) {
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
		if protos, err := n.host.Peerstore().SupportsProtocols(p, holepunch.Protocol); err != nil || len(protos) == 0 {
			continue
		}
		n.natMu.Lock()
		st := n.upgrades[p]
		if st == nil {
			st = &upgradeState{next: out.Stat().Opened.Add(upgradeDelays[0])}
			n.upgrades[p] = st
		}
		due := st.attempts < len(upgradeDelays) && now.After(st.next) && now.Sub(n.punchSeen[p]) > punchQuiet
		if due {
			st.attempts++
			if st.attempts < len(upgradeDelays) {
				st.next = now.Add(upgradeDelays[st.attempts])
			}
		}
		n.natMu.Unlock()
		if !due {
			continue
		}
		ai := peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{out.RemoteMultiaddr()}}
		n.log.Debug("no direct connection yet: redialling through the relay to punch again", "peer", p.String(), "attempt", st.attempts)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for _, c := range net.ConnsToPeer(p) {
				if isRelayed(c.RemoteMultiaddr()) {
					_ = c.Close()
				}
			}
			ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
			defer cancel()
			if err := n.host.Connect(ctx, ai); err != nil {
				n.log.Debug("redial through the relay", "peer", p.String(), "err", err)
			}
		}()
	}
}

// stopNAT runs in Close, before the host closes.
func (n *Node) stopNAT() error {
	n.natMu.Lock()
	svc := n.relaySvc
	n.relaySvc = nil
	n.natMu.Unlock()
	if svc != nil {
		return svc.Close()
	}
	return nil
}

// natRoutes adds this file's control API routes (bearer token):
//
//	GET /api/v1/network -> NetworkStatus
func (n *Node) natRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/network", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.Network(r.Context())
		if err != nil {
			writeError(w, 0, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
}

// NetworkAPI reports a node's reachability. *Node implements it in-process
// and *Client over the control API.
type NetworkAPI interface {
	Network(ctx context.Context) (*NetworkStatus, error)
}

var (
	_ NetworkAPI = (*Node)(nil)
	_ NetworkAPI = (*Client)(nil)
)

// NetworkStatus is a node's view of its own reachability.
type NetworkStatus struct {
	// Reachability is public, private or unknown.
	Reachability string `json:"reachability"`
	// ReachabilitySource says who decided: "config" (forced by
	// NATConfig.Reachability) or "autonat".
	ReachabilitySource string `json:"reachabilitySource"`
	// Addrs are the addresses the node advertises.
	Addrs []string `json:"addrs"`
	// ReachableAddrs and UnreachableAddrs are the public addresses AutoNAT
	// v2 confirmed as reachable or not from the outside.
	ReachableAddrs   []string `json:"reachableAddrs,omitempty"`
	UnreachableAddrs []string `json:"unreachableAddrs,omitempty"`
	// Reservations are the relays holding a slot for this node.
	Reservations []RelayReservation `json:"reservations"`
	// HolePunching and PortMapping say whether DCUtR and UPnP/NAT-PMP are on.
	HolePunching bool `json:"holePunching"`
	PortMapping  bool `json:"portMapping"`
	// HolePunches counts the hole punches this node took part in.
	HolePunches struct {
		Succeeded int `json:"succeeded"`
		Failed    int `json:"failed"`
	} `json:"holePunches"`
	// Peers counts connected peers by how they are connected.
	Peers struct {
		Direct  int `json:"direct"`
		Relayed int `json:"relayed"`
	} `json:"peers"`
	// RelayService is set when this node runs a relay.
	RelayService *RelayServiceStatus `json:"relayService,omitempty"`
}

// RelayReservation is a slot this node holds on a relay.
type RelayReservation struct {
	Relay string   `json:"relay"` // the relay's node ID
	Addrs []string `json:"addrs"` // this node's addresses through that relay
}

// RelayServiceStatus describes the relay this node runs.
type RelayServiceStatus struct {
	Reservations    int    `json:"reservations"` // slots held now
	Circuits        int    `json:"circuits"`     // relayed connections open now
	CircuitsTotal   int    `json:"circuitsTotal"`
	BytesRelayed    int64  `json:"bytesRelayed"`
	MaxReservations int    `json:"maxReservations"`
	MaxCircuits     int    `json:"maxCircuits"`
	CircuitDuration string `json:"circuitDuration,omitempty"` // empty: no cap
	CircuitBytes    int64  `json:"circuitBytes,omitempty"`    // 0: no cap
	TrustedOnly     bool   `json:"trustedOnly,omitempty"`
}

// Network reports the node's reachability, relay reservations and relay
// service. An offline node has none and gets ErrOffline.
func (n *Node) Network(ctx context.Context) (*NetworkStatus, error) {
	st := n.networkStatus()
	if st == nil {
		return nil, ErrOffline
	}
	return st, nil
}

func (n *Node) networkStatus() *NetworkStatus {
	if n.host == nil {
		return nil
	}
	c := n.cfg.NAT
	st := &NetworkStatus{
		ReachabilitySource: "autonat",
		HolePunching:       !c.NoHolePunch && n.cfg.Host == nil,
		PortMapping:        n.portMapping(),
		Reservations:       []RelayReservation{},
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	n.natMu.Lock()
	v1 := n.reachV1
	for _, a := range n.reachable {
		st.ReachableAddrs = append(st.ReachableAddrs, a.String())
	}
	for _, a := range n.unreachable {
		st.UnreachableAddrs = append(st.UnreachableAddrs, a.String())
	}
	byRelay := map[string][]string{}
	for _, a := range n.relayAddrs {
		if r := relayOf(a); r != "" {
			byRelay[r] = append(byRelay[r], a.String()+"/p2p/"+n.id.String())
		}
	}
	st.HolePunches.Succeeded, st.HolePunches.Failed = n.punches.ok, n.punches.failed
	svc, stats := n.relaySvc, n.relayStats
	n.natMu.Unlock()
	for r, addrs := range byRelay {
		st.Reservations = append(st.Reservations, RelayReservation{Relay: r, Addrs: addrs})
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
	for _, p := range n.host.Network().Peers() {
		if peerRelayedOnly(n.host.Network().ConnsToPeer(p)) {
			st.Peers.Relayed++
		} else {
			st.Peers.Direct++
		}
	}
	if svc != nil {
		r := c.Relay
		rs := &RelayServiceStatus{
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

// relayOf returns the relay's node ID in a circuit address
// (".../p2p/<relay>/p2p-circuit..."), or "".
func relayOf(a ma.Multiaddr) string {
	relay := ""
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			relay = c.Value()
		case ma.P_CIRCUIT:
			return relay
		}
	}
	return ""
}

// peerRelayedOnly says whether every connection in conns goes through a
// relay.
func peerRelayedOnly(conns []network.Conn) bool {
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if !isRelayed(c.RemoteMultiaddr()) {
			return false
		}
	}
	return true
}

// holePunchedAt returns when the last successful hole punch with p ended.
func (n *Node) holePunchedAt(p peer.ID) (time.Time, bool) {
	n.natMu.Lock()
	defer n.natMu.Unlock()
	t, ok := n.holePunched[p]
	return t, ok
}

// punchTracer records the outcome of each hole punch.
type punchTracer struct{ n *Node }

func (t punchTracer) Trace(evt *holepunch.Event) {
	n := t.n
	if evt.Type != holepunch.ProtocolErrorEvtT && evt.Type != holepunch.DirectDialEvtT {
		n.natMu.Lock()
		n.punchSeen[evt.Remote] = time.Now()
		n.natMu.Unlock()
	}
	e, ok := evt.Evt.(*holepunch.EndHolePunchEvt)
	if !ok {
		if pe, ok := evt.Evt.(*holepunch.ProtocolErrorEvt); ok {
			n.log.Debug("hole punch protocol error", "peer", evt.Remote.String(), "err", pe.Error)
		}
		return
	}
	n.natMu.Lock()
	if e.Success {
		n.punches.ok++
		n.holePunched[evt.Remote] = time.Now()
		delete(n.holePunchErr, evt.Remote)
	} else {
		n.punches.failed++
		n.holePunchErr[evt.Remote] = e.Error
	}
	n.natMu.Unlock()
	n.log.Debug("hole punch", "peer", evt.Remote.String(), "ok", e.Success, "took", e.EllapsedTime.String(), "err", e.Error)
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
type punchAddrs struct{ n *Node }

func (f punchAddrs) FilterLocal(_ peer.ID, addrs []ma.Multiaddr) []ma.Multiaddr {
	return inferPunchAddrs(addrs, f.n.host.Network().ListenAddresses())
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
type relayACL struct{ n *Node }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	t := a.n.trust
	if t == nil {
		return true
	}
	if t.Blocked(p.String()) {
		return false
	}
	if a.n.cfg.NAT.Relay.TrustedOnly {
		lvl, ok := t.Level(p.String())
		return ok && (lvl == trust.LevelFull || lvl == trust.LevelLimited)
	}
	return true
}

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	t := a.n.trust
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
