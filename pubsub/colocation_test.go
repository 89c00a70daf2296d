package pubsub

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestRelayBlindHost: over a real circuit relay on loopback, the host
// GossipSub sees gives a relayed connection a remote address without the
// relay's IP, so IP colocation cannot lump together the peers behind one
// relay; a direct connection keeps its IP.
func TestRelayBlindHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newHost := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	relay, a, b := newHost(), newHost(), newHost()
	svc, err := relayv2.New(relay, relayv2.WithInfiniteLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ri := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	for _, h := range []host.Host{a, b} {
		if err := h.Connect(ctx, ri); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Reserve(ctx, b, ri); err != nil {
		t.Fatal(err)
	}
	circuit := relay.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + relay.ID().String() + "/p2p-circuit"))
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatal(err)
	}

	seen := relayBlindHost{a}
	relayed := a.Network().ConnsToPeer(b.ID())
	if len(relayed) != 1 {
		t.Fatalf("%d connections to b, want the relayed one", len(relayed))
	}
	if _, err := manet.ToIP(relayed[0].RemoteMultiaddr()); err != nil {
		t.Fatalf("the real relayed connection's address %s carries no IP: the test proves nothing", relayed[0].RemoteMultiaddr())
	}
	got := seen.Network().ConnsToPeer(b.ID())
	if len(got) != 1 {
		t.Fatalf("GossipSub's view: %d connections to b", len(got))
	}
	if ip, err := manet.ToIP(got[0].RemoteMultiaddr()); err == nil {
		t.Fatalf("GossipSub's view of the relayed connection %s gives IP %s", got[0].RemoteMultiaddr(), ip)
	}
	if got[0].RemotePeer() != b.ID() || got[0].Stat().Direction != relayed[0].Stat().Direction {
		t.Fatalf("the wrapped connection is not the connection: %s %+v", got[0].RemotePeer(), got[0].Stat())
	}
	direct := seen.Network().ConnsToPeer(relay.ID())
	if len(direct) != 1 {
		t.Fatalf("%d connections to the relay", len(direct))
	}
	if _, err := manet.ToIP(direct[0].RemoteMultiaddr()); err != nil {
		t.Fatalf("a direct connection lost its IP: %s", direct[0].RemoteMultiaddr())
	}
	if seen.ID() != a.ID() || seen.Network().Connectedness(b.ID()) != network.Connected {
		t.Fatal("the rest of the host is not the host")
	}
}
