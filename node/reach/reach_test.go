package reach_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/node/reach"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func TestParseAnnounceAddr(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"/dns4/mesh.example.org/tcp/443/wss", "/ip4/203.0.113.7/tcp/4001", "/ip6/2001:db8::1/udp/4001/quic-v1"} {
		if _, err := reach.ParseAnnounceAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mesh.example.org:443", "/ip4/1.2.3", "/tcp/4001", "/ip4/203.0.113.7",
		"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF",
		"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF/p2p-circuit"} {
		if _, err := reach.ParseAnnounceAddr(bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := reach.Config{Reachability: "private", StaticRelays: []string{"/ip4/11.0.0.1/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF"},
		Announce: []string{"/dns4/x.example.org/tcp/443/wss"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]reach.Config{
		"reachability": {Reachability: "sometimes"},
		"relay":        {StaticRelays: []string{"/ip4/11.0.0.1/tcp/4001"}},
		"announce":     {AppendAnnounce: []string{"nonsense"}},
		"limits":       {Relay: reach.RelayConfig{MaxCircuits: -1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	var c reach.Config
	in := `{"reachability":"public","relay":{"enabled":true,"reservationTTL":"30m","circuitDuration":120,"circuitBytes":1048576}}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if !c.Relay.Enabled || time.Duration(c.Relay.ReservationTTL) != 30*time.Minute || time.Duration(c.Relay.CircuitDuration) != 2*time.Minute || c.Relay.CircuitBytes != 1<<20 {
		t.Fatalf("%+v", c.Relay)
	}
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), `"reservationTTL":"30m0s"`) {
		t.Fatalf("%s", b)
	}
	if err := json.Unmarshal([]byte(`{"relay":{"reservationTTL":"soon"}}`), &c); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

// TestPortMappingOnNodeDefaults: a node listening where node.New listens
// by default (every interface) asks its router for port mappings when
// configured to.
func TestPortMappingOnNodeDefaults(t *testing.T) {
	t.Parallel()
	on := true
	s, err := reach.New(reach.Config{PortMap: &on}, reach.Deps{ListenAddrs: node.DefaultListenAddrs})
	if err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if st := s.Status(); st == nil || !st.PortMapping {
		t.Fatalf("status %+v: no port mapping on the default listen addresses", st)
	}
}

// TestRelayedFederation runs a relay and two nodes that say they are
// private on loopback: each reserves a slot, one reaches the other by node ID
// alone through the relay, and a publication crosses the relayed connection
// (the relay sets no per-circuit limit, so GossipSub uses it). Loopback
// addresses are not public, so no hole punch happens and the connection
// stays relayed. A node the relay then blocks loses its slot.
func TestRelayedFederation(t *testing.T) {
	t.Parallel()
	relay := nodetest.Local(t, node.Config{NAT: reach.Config{Reachability: reach.ReachabilityPublic, Relay: reach.RelayConfig{Enabled: true}}})
	// One address of the relay: a relay listed under several makes the
	// node's peer keeper race (node/peers.go: keep appends to the
	// addresses of a kept peer that redial reads without the lock).
	relayAddrs := []string{relay.Addrs()[0].String()}
	// Loopback stands in for two homes on separate networks: without the
	// LAN DHT, which would find the other home's loopback address and
	// connect directly.
	home := func() *node.Node {
		return nodetest.Local(t, node.Config{Topics: []string{"homes"}, DHT: discovery.Config{NoLAN: true}, NAT: reach.Config{Reachability: reach.ReachabilityPrivate, StaticRelays: relayAddrs}})
	}
	a, b := home(), home()
	nodetest.TrustAll(t, a, b)
	relayStatus := func() *api.RelayServiceStatus {
		st, err := relay.Network(context.Background())
		if err != nil || st.RelayService == nil {
			t.Fatalf("relay status: %+v %v", st, err)
		}
		return st.RelayService
	}
	// (Each node's own list of reservations shows the relay addresses it
	// got, and a relay on loopback gives none that libp2p would advertise:
	// ask the relay.)
	nodetest.Eventually(t, "two relay reservations", func() bool { return relayStatus().Reservations == 2 })
	for _, n := range []*node.Node{a, b} {
		if st, err := n.Network(context.Background()); err != nil || st.Reachability != reach.ReachabilityPrivate || st.ReachabilitySource != "config" {
			t.Fatalf("%+v %v", st, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.ID().String()); err != nil {
		t.Fatal(err)
	}
	ps, err := a.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pb *api.PeerInfo
	for i := range ps {
		if ps[i].ID == b.ID().String() {
			pb = &ps[i]
		}
	}
	if pb == nil || !pb.Relayed || pb.Connection != "relayed" || pb.Relay != relay.ID().String() || !pb.Kept || pb.HolePunched {
		t.Fatalf("a's peer b: %+v", pb)
	}
	// (nodetest.WaitMesh counts the relay among the neighbours; it follows
	// no topic.)
	for _, pair := range [][2]*node.Node{{a, b}, {b, a}} {
		nodetest.Eventually(t, "topic peers over the relayed connection", func() bool {
			return slices.Contains(pair[0].Pubsub().TopicPeers("homes"), pair[1].ID())
		})
	}
	time.Sleep(1500 * time.Millisecond) // GossipSub's heartbeat grafts the mesh
	sl := nodetest.Publish(t, a, "Relays carry gossip", "With no per-circuit limit a relayed connection carries GossipSub.", "public", "homes")
	nodetest.Eventually(t, "the lesson crossing the relay", func() bool { return nodetest.HasRemote(b, sl.Key()) })

	st, err := relay.Network(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reachability != reach.ReachabilityPublic || st.RelayService == nil || st.RelayService.Reservations != 2 || st.RelayService.Circuits < 1 || st.RelayService.BytesRelayed == 0 {
		t.Fatalf("relay status: %+v %+v", st, st.RelayService)
	}
	if s, err := a.Status(ctx); err != nil || s.Network == nil || s.Network.Peers.Relayed != 1 {
		t.Fatalf("a's status: %+v %v", s, err)
	}
	// A blocked node loses its slot: the relay drops it, and refuses it
	// when it comes back.
	if err := relay.Trust().Set(b.ID().String(), trust.LevelNone, "test"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the blocked node's slot to go", func() bool {
		return relayStatus().Reservations == 1 && relay.Host().Network().Connectedness(b.ID()) != network.Connected
	})
}

func TestConnectBadInput(t *testing.T) {
	t.Parallel()
	_, nodes := nodetest.Mock(t, 1, 0, node.Config{})
	n := nodes[0]
	ctx := context.Background()
	for _, bad := range []string{"", "nonsense", "/ip4/127.0.0.1/tcp/1", n.ID().String()} {
		if _, err := n.Connect(ctx, bad); err == nil {
			t.Errorf("Connect(%q) succeeded", bad)
		}
	}
	if _, err := node.New(ctx, node.Config{ListenAddrs: []string{}, DisableMDNS: true, NAT: reach.Config{Announce: []string{"bogus"}}}); err == nil || !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("a bad announce address: %v", err)
	}
}
