package connlimit

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/trust"
)

// A flood of fresh identities must not keep the peers
// the node relies on (those it trusts, its bootstrap and relay peers) from
// connecting, nor hold its connections for good:
//
//   - the resource manager (libp2p's default limits, scaled to the
//     machine) limits connections per IP address and subnet on every
//     address, loopback included (libp2p leaves loopback unlimited), so one
//     address holds at most the limit per IP;
//   - its allowlist reserves a scope of its own, with capacity of its own,
//     for the addresses the node has seen its trusted, bootstrap and relay
//     peers at (each entry bound to the peer's ID): they get in when the
//     system's inbound connections are all taken;
//   - the connection manager protects those peers from trimming, and trims
//     the others, the idle and least valued first, once the node holds more
//     than connsHigh connections.
//
// A trusted peer at an address the node has never seen it at competes
// with everyone else until the connection manager trims the flood (the
// peer is unknown until its handshake, after the resource manager admitted
// the connection).
const (
	// DefaultPerIP is the default limit of connections per address: libp2p's own
	// per-IP limit, applied to loopback too.
	DefaultPerIP = 8
	// connsLow and connsHigh are the connection manager's watermarks.
	connsLow  = 96
	connsHigh = 160
	// connsGrace is how long a new connection is safe from trimming.
	connsGrace = 10 * time.Second
	// protectTag is the connection manager tag of the peers kept.
	protectTag = "mesh-keep"
)

// Limits are a node's resource and connection managers.
type Limits struct {
	rm    network.ResourceManager
	cm    *connmgr.BasicConnMgr
	allow *rcmgr.Allowlist // set once the host takes rm
}

// New makes the managers for at most perIP connections per IPv4 address
// or IPv6 /64 (0 for DefaultPerIP, negative for no limit).
func New(perIP int) (*Limits, error) {
	if perIP == 0 {
		perIP = DefaultPerIP
	}
	var ropts []rcmgr.Option
	if perIP > 0 {
		ropts = append(ropts,
			// No network is exempt (libp2p exempts loopback)...
			rcmgr.WithNetworkPrefixLimit([]rcmgr.NetworkPrefixLimit{}, []rcmgr.NetworkPrefixLimit{}),
			// ...and each IPv4 address, IPv6 /64 (a host's own) and /48
			// (a site's) has a limit.
			rcmgr.WithLimitPerSubnet(
				[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: perIP}},
				[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 64, ConnCount: perIP}, {PrefixLength: 48, ConnCount: 8 * perIP}}))
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()), ropts...)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(connsLow, connsHigh, connmgr.WithGracePeriod(connsGrace))
	if err != nil {
		rm.Close()
		return nil, err
	}
	return &Limits{rm: rm, cm: cm}, nil
}

// Option is the libp2p option that installs the managers. They give way to
// a resource or connection manager set by another option (then no
// allowlist is kept): give it before those.
func (l *Limits) Option() libp2p.Option {
	return func(c *libp2p.Config) error {
		if c.ResourceManager == nil {
			c.ResourceManager = l.rm
			l.allow = rcmgr.GetAllowlist(l.rm)
		} else {
			l.rm.Close()
		}
		if c.ConnManager == nil {
			c.ConnManager = l.cm
		} else {
			l.cm.Close()
		}
		return nil
	}
}

// Trust is what the keeper follows of the trust graph.
type Trust interface {
	Level(nodeID string) (trust.Level, bool)
	Edges() []trust.Edge
	Changed() <-chan struct{}
}

// Keep protects the peers the node relies on and reserves the allowlist's
// capacity for them: the static ones (bootstrap and relay peers) from the
// start, trusted ones as the trust graph says, each at every address the
// node knows or sees it at. It runs until ctx ends; done is called then.
// On a nil Limits (a host made elsewhere, with managers of its own) it
// keeps the connection manager's protection only.
func (l *Limits) Keep(ctx context.Context, h host.Host, tr Trust, static []peer.AddrInfo, done func()) {
	var allow *rcmgr.Allowlist
	if l != nil {
		allow = l.allow
	}
	k := &keeper{h: h, allow: allow, trust: tr, listed: map[string]bool{}, entries: map[peer.ID][]ma.Multiaddr{}, protected: map[peer.ID]bool{}}
	for _, ai := range static {
		k.static = append(k.static, ai.ID)
		k.keep(ai.ID, ai.Addrs...)
	}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if p := c.RemotePeer(); k.relies(p) {
			k.keep(p, c.RemoteMultiaddr())
		}
	}})
	go func() {
		defer done()
		k.loop(ctx)
	}()
}

// keeper keeps the allowlist and the connection manager's protection
// in step with the peers the node relies on.
type keeper struct {
	h      host.Host
	allow  *rcmgr.Allowlist // nil: none kept
	trust  Trust
	static []peer.ID // bootstrap and relay peers

	mu        sync.Mutex
	listed    map[string]bool            // allowlist entries added
	entries   map[peer.ID][]ma.Multiaddr // the same, by peer
	protected map[peer.ID]bool
}

// relies reports whether the node relies on p: trusted (fully or for
// search), a bootstrap or relay peer.
func (k *keeper) relies(p peer.ID) bool {
	if lvl, ok := k.trust.Level(p.String()); ok && lvl != trust.LevelNone {
		return true
	}
	for _, s := range k.static {
		if s == p {
			return true
		}
	}
	return false
}

// keep protects p and allowlists it at the IP of each of addrs.
func (k *keeper) keep(p peer.ID, addrs ...ma.Multiaddr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.protected[p] {
		k.protected[p] = true
		k.h.ConnManager().Protect(p, protectTag)
	}
	if k.allow == nil {
		return
	}
	for _, a := range addrs {
		entry, ok := allowEntry(a, p)
		if !ok || k.listed[entry.String()] {
			continue
		}
		if err := k.allow.Add(entry); err == nil {
			k.listed[entry.String()] = true
			k.entries[p] = append(k.entries[p], entry)
		}
	}
}

// loop follows the trust graph: newly trusted peers are kept at the
// addresses the peerstore has for them; peers no longer relied on lose
// their protection.
func (k *keeper) loop(ctx context.Context) {
	for {
		changed := k.trust.Changed()
		for _, e := range k.trust.Edges() {
			p, err := peer.Decode(e.NodeID)
			if err == nil && e.Level != trust.LevelNone {
				k.keep(p, k.h.Peerstore().Addrs(p)...)
			}
		}
		k.mu.Lock()
		for p := range k.protected {
			if !k.relies(p) {
				delete(k.protected, p)
				k.h.ConnManager().Unprotect(p, protectTag)
				for _, e := range k.entries[p] {
					_ = k.allow.Remove(e)
					delete(k.listed, e.String())
				}
				delete(k.entries, p)
			}
		}
		k.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// allowEntry is the allowlist entry for peer p at the IP of addr
// ("/ip4/1.2.3.4/p2p/12D3KooW..."); false for an address without an IP
// (DNS, a relay circuit).
func allowEntry(addr ma.Multiaddr, p peer.ID) (ma.Multiaddr, bool) {
	ip, err := manet.ToIP(addr)
	if err != nil {
		return nil, false
	}
	proto := "/ip6/"
	if ip4 := ip.To4(); ip4 != nil {
		ip, proto = ip4, "/ip4/"
	}
	m, err := ma.NewMultiaddr(proto + net.IP(ip).String() + "/p2p/" + p.String())
	if err != nil {
		return nil, false
	}
	return m, true
}
