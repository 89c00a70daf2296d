package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/meshprotocol/mesh/internal/p2paddr"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// MDNSService is the multicast DNS service name MESH nodes announce on the LAN.
const MDNSService = "_mesh._udp"

// Reconnection backoff for kept peers (bootstrap peers and peers added with
// Connect): doubling from the minimum, capped, with jitter.
const (
	backoffMin = time.Second
	backoffMax = 5 * time.Minute
)

// peerKeeper keeps the node connected to a set of peers, redialling with
// exponential backoff when a connection drops.
type peerKeeper struct {
	n *Node

	mu    sync.Mutex
	peers map[peer.ID]*kept
	wake  chan struct{}
}

type kept struct {
	info    peer.AddrInfo
	backoff time.Duration
	next    time.Time
}

func (n *Node) startPeers() error {
	n.peers = &peerKeeper{n: n, peers: map[peer.ID]*kept{}, wake: make(chan struct{}, 1)}
	boot, err := parseBootstrap(n.cfg.Bootstrap)
	if err != nil {
		return err
	}
	for _, ai := range boot {
		n.peers.keep(ai)
	}
	n.wg.Add(1)
	go n.peers.loop()
	if !n.cfg.DisableMDNS {
		svc := mdns.NewMdnsService(n.host, MDNSService, mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			n.log.Warn("mdns unavailable", "err", err)
		} else {
			n.mdns = svc
		}
	}
	return nil
}

// parseBootstrap parses bootstrap multiaddrs.
func parseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := p2paddr.ParseAddrInfo(a)
		if err != nil {
			return nil, fmt.Errorf("node: bootstrap %q: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

func (k *peerKeeper) keep(ai peer.AddrInfo) {
	k.mu.Lock()
	if cur, ok := k.peers[ai.ID]; ok {
		cur.info.Addrs = append(cur.info.Addrs, ai.Addrs...)
	} else {
		k.peers[ai.ID] = &kept{info: ai}
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *peerKeeper) loop() {
	defer k.n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		k.redial()
		select {
		case <-k.n.ctx.Done():
			return
		case <-t.C:
		case <-k.wake:
		}
	}
}

// redial dials every kept peer that is not connected and whose backoff has
// passed.
func (k *peerKeeper) redial() {
	now := time.Now()
	type dial struct {
		p    *kept
		info peer.AddrInfo // a copy: keep may add addresses meanwhile
	}
	var due []dial
	k.mu.Lock()
	for id, p := range k.peers {
		if k.n.host.Network().Connectedness(id) == network.Connected {
			p.backoff = 0
			continue
		}
		if now.After(p.next) {
			due = append(due, dial{p, peer.AddrInfo{ID: p.info.ID, Addrs: slices.Clone(p.info.Addrs)}})
		}
	}
	k.mu.Unlock()
	for _, d := range due {
		p := d.p
		ctx, cancel := context.WithTimeout(k.n.ctx, 15*time.Second)
		err := k.n.host.Connect(ctx, d.info)
		cancel()
		k.mu.Lock()
		if err != nil {
			p.backoff = min(max(2*p.backoff, backoffMin), backoffMax)
			jitter := time.Duration(rand.Int64N(int64(p.backoff)/4 + 1))
			p.next = time.Now().Add(p.backoff + jitter)
			k.n.log.Debug("redial failed", "peer", d.info.ID.String(), "retry_in", p.backoff.String())
		} else {
			p.backoff = 0
		}
		k.mu.Unlock()
	}
}

type mdnsNotifee struct{ n *Node }

// HandlePeerFound connects to a MESH node found on the LAN.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.id || m.n.ctx.Err() != nil {
		return
	}
	m.n.wg.Add(1)
	go func() {
		defer m.n.wg.Done()
		ctx, cancel := context.WithTimeout(m.n.ctx, 15*time.Second)
		defer cancel()
		if err := m.n.host.Connect(ctx, ai); err != nil {
			m.n.log.Debug("mdns peer unreachable", "peer", ai.ID.String(), "err", err)
		}
	}()
}

// Connect dials a peer by multiaddr (ending in /p2p/<node ID>) and keeps the
// node connected to it, redialling with backoff if the link drops. addr may
// also be a bare node ID (12D3KooW...): the node then dials the addresses it
// knows for that node and, through each relay it uses (its static relays and
// the relays holding a slot for it), the node's relay address
// /p2p/<relay>/p2p-circuit/p2p/<node ID>; a home node reaches another home
// node that way, knowing only its ID and their common relay.
func (n *Node) Connect(ctx context.Context, addr string) (peer.ID, error) {
	if n.host == nil {
		return "", api.ErrOffline
	}
	var ai *peer.AddrInfo
	if id, err := peer.Decode(strings.TrimPrefix(addr, "/p2p/")); err == nil && !strings.Contains(strings.TrimPrefix(addr, "/p2p/"), "/") {
		ai = &peer.AddrInfo{ID: id, Addrs: n.reach.CircuitAddrs(id)}
	} else {
		if ai, err = p2paddr.ParseAddrInfo(addr); err != nil {
			return "", err
		}
	}
	if ai.ID == n.id {
		return "", fmt.Errorf("%w: that is this node's own address", protocol.ErrInvalid)
	}
	if err := n.host.Connect(ctx, *ai); err != nil {
		if len(ai.Addrs) == 0 && len(n.host.Peerstore().Addrs(ai.ID)) == 0 {
			return "", fmt.Errorf("connect %s: %w: %v (no address known for that node and no relay to reach it through: give its address, or a relay with --relay-via)", ai.ID, protocol.ErrUnreachable, err)
		}
		return "", fmt.Errorf("connect %s: %w: %v", ai.ID, protocol.ErrUnreachable, err)
	}
	n.peers.keep(*ai)
	return ai.ID, nil
}

// Peers lists the connected peers.
func (n *Node) Peers(ctx context.Context) ([]api.PeerInfo, error) {
	if n.host == nil {
		return nil, nil
	}
	var out []api.PeerInfo
	mesh := map[peer.ID][]string{}
	if n.ps != nil {
		topics, _ := n.ps.Following()
		for _, t := range topics {
			for _, p := range n.ps.MeshPeers(t) {
				mesh[p] = append(mesh[p], t)
			}
		}
	}
	for _, p := range n.host.Network().Peers() {
		info := api.PeerInfo{ID: p.String(), Mesh: mesh[p]}
		conns := n.host.Network().ConnsToPeer(p)
		info.Relayed = p2paddr.RelayedOnly(conns)
		info.Connection = "direct"
		if info.Relayed {
			info.Connection = "relayed"
		}
		var first network.Conn
		for _, c := range conns {
			if info.Relayed != p2paddr.IsRelayed(c.RemoteMultiaddr()) {
				continue // describe the connections of the kind reported
			}
			info.Addrs = append(info.Addrs, c.RemoteMultiaddr().String())
			if first == nil {
				first = c
			}
		}
		if first != nil {
			info.Direction = "outbound"
			if first.Stat().Direction == network.DirInbound {
				info.Direction = "inbound"
			}
			if info.Relayed {
				info.Relay = p2paddr.RelayOf(first.RemoteMultiaddr())
			}
		}
		if !info.Relayed {
			_, info.HolePunched = n.reach.HolePunchedAt(p)
		}
		n.peers.mu.Lock()
		_, info.Kept = n.peers.peers[p]
		n.peers.mu.Unlock()
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
