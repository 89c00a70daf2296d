package pubsub

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// GossipSub's IP colocation score (P6) takes a peer's IP from the remote
// addresses of its connections, and a relayed connection's remote address
// begins with the relay's: every home node reached through one relay would
// count as colocated with every other. With MESH's P6 (weight -10 above 8
// peers per IP) the 16th home behind a relay would put them all under the
// gossip threshold and the 23rd would graylist them, exactly the homes the
// relays are there for. So GossipSub is given a view of the host in which
// a relayed connection's remote address starts at /p2p-circuit: P6 counts
// the IPs of direct connections only. (A Sybil operator gains little by
// running its own relay: many addresses are cheap anyway, and what keeps
// Sybils out is the web of trust.)

// relayBlindHost is the host GossipSub sees: h, but for relayBlindNetwork.
type relayBlindHost struct{ host.Host }

func (h relayBlindHost) Network() network.Network { return relayBlindNetwork{h.Host.Network()} }

// relayBlindNetwork is a network whose ConnsToPeer hides the relay part of
// relayed connections' remote addresses. The rest is the network itself.
type relayBlindNetwork struct{ network.Network }

func (n relayBlindNetwork) ConnsToPeer(p peer.ID) []network.Conn {
	conns := n.Network.ConnsToPeer(p)
	out := make([]network.Conn, len(conns))
	for i, c := range conns {
		out[i] = c
		if _, circuit := ma.SplitFunc(c.RemoteMultiaddr(), isCircuit); len(circuit) > 0 {
			out[i] = relayedConn{Conn: c, remote: circuit}
		}
	}
	return out
}

func isCircuit(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT }

// relayedConn is a relayed connection whose remote address is its circuit
// part only: /p2p-circuit and what follows, no IP.
type relayedConn struct {
	network.Conn
	remote ma.Multiaddr
}

func (c relayedConn) RemoteMultiaddr() ma.Multiaddr { return c.remote }
