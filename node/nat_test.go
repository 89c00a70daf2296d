package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func addrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

func TestInferPunchAddrs(t *testing.T) {
	listen := addrs(t, "/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4002/ws")
	got := inferPunchAddrs(addrs(t, "/ip4/11.0.0.11/tcp/4001"), listen)
	want := addrs(t, "/ip4/11.0.0.11/tcp/4001", "/ip4/11.0.0.11/udp/4001/quic-v1")
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// A port the NAT changed says nothing about the other listener.
	got = inferPunchAddrs(addrs(t, "/ip4/11.0.0.13/udp/62088/quic-v1"), listen)
	if len(got) != 1 {
		t.Fatalf("a remapped port inferred %v", got)
	}
	// Both known: nothing added twice.
	both := addrs(t, "/ip4/11.0.0.11/tcp/4001", "/ip4/11.0.0.11/udp/4001/quic-v1")
	if got = inferPunchAddrs(both, listen); len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestParseAnnounceAddr(t *testing.T) {
	for _, ok := range []string{"/dns4/mesh.example.org/tcp/443/wss", "/ip4/203.0.113.7/tcp/4001", "/ip6/2001:db8::1/udp/4001/quic-v1"} {
		if _, err := ParseAnnounceAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mesh.example.org:443", "/ip4/1.2.3", "/tcp/4001", "/ip4/203.0.113.7",
		"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF",
		"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF/p2p-circuit"} {
		if _, err := ParseAnnounceAddr(bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestNATConfigValidate(t *testing.T) {
	good := NATConfig{Reachability: "private", StaticRelays: []string{"/ip4/11.0.0.1/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF"},
		Announce: []string{"/dns4/x.example.org/tcp/443/wss"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]NATConfig{
		"reachability": {Reachability: "sometimes"},
		"relay":        {StaticRelays: []string{"/ip4/11.0.0.1/tcp/4001"}},
		"announce":     {AppendAnnounce: []string{"nonsense"}},
		"limits":       {Relay: RelayConfig{MaxCircuits: -1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, c)
		}
	}
}

func TestNATConfigJSON(t *testing.T) {
	var c NATConfig
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

// TestRelayedFederation runs a relay and two nodes that say they are
// private on loopback: each reserves a slot, one reaches the other by node ID
// alone through the relay, and a publication crosses the relayed connection
// (the relay sets no per-circuit limit, so GossipSub uses it). Loopback
// addresses are not public, so no hole punch happens and the connection
// stays relayed.
func TestRelayedFederation(t *testing.T) {
	relay := newTestNode(t, Config{NAT: NATConfig{Reachability: ReachabilityPublic, Relay: RelayConfig{Enabled: true}}})
	var relayAddrs []string
	for _, a := range relay.Addrs() {
		relayAddrs = append(relayAddrs, a.String())
	}
	home := func() *Node {
		return newTestNode(t, Config{Topics: []string{"homes"}, NAT: NATConfig{Reachability: ReachabilityPrivate, StaticRelays: relayAddrs}})
	}
	a, b := home(), home()
	trustAll(t, a, b)
	// (Each node's own list of reservations shows the relay addresses it
	// got, and a relay on loopback gives none that libp2p would advertise:
	// ask the relay.)
	eventually(t, "two relay reservations", func() bool {
		st, err := relay.Network(context.Background())
		return err == nil && st.RelayService != nil && st.RelayService.Reservations == 2
	})
	for _, n := range []*Node{a, b} {
		if st, err := n.Network(context.Background()); err != nil || st.Reachability != ReachabilityPrivate || st.ReachabilitySource != "config" {
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
	var pb *PeerInfo
	for i := range ps {
		if ps[i].ID == b.ID().String() {
			pb = &ps[i]
		}
	}
	if pb == nil || !pb.Relayed || pb.Connection != "relayed" || pb.Relay != relay.ID().String() || !pb.Kept || pb.HolePunched {
		t.Fatalf("a's peer b: %+v", pb)
	}
	// (waitMesh counts the relay among the neighbours; it follows no topic.)
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		eventually(t, "topic peers over the relayed connection", func() bool {
			return slices.Contains(pair[0].ps.TopicPeers("homes"), pair[1].ID())
		})
	}
	time.Sleep(1500 * time.Millisecond) // GossipSub's heartbeat grafts the mesh
	sl := publishLesson(t, a, "Relays carry gossip", "With no per-circuit limit a relayed connection carries GossipSub.", "public", "homes")
	key := sl.Lesson.ID + "@" + a.ID().String()
	eventually(t, "the lesson crossing the relay", func() bool { return hasRemote(b, key) })

	st, err := relay.Network(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reachability != ReachabilityPublic || st.RelayService == nil || st.RelayService.Reservations != 2 || st.RelayService.Circuits < 1 || st.RelayService.BytesRelayed == 0 {
		t.Fatalf("relay status: %+v %+v", st, st.RelayService)
	}
	if s, err := a.Status(ctx); err != nil || s.Network == nil || s.Network.Peers.Relayed != 1 {
		t.Fatalf("a's status: %+v %v", s, err)
	}
	// A blocked node loses its slot at its next request: the relay refuses it.
	if err := relay.Trust().Set(b.ID().String(), trust.LevelNone, "test"); err != nil {
		t.Fatal(err)
	}
	if (relayACL{relay}).AllowReserve(b.ID(), nil) || !(relayACL{relay}).AllowReserve(a.ID(), nil) {
		t.Fatal("the relay's ACL ignores trust")
	}
}

func TestConnectBadInput(t *testing.T) {
	n := newTestNode(t, Config{})
	ctx := context.Background()
	for _, bad := range []string{"", "nonsense", "/ip4/127.0.0.1/tcp/1", n.ID().String()} {
		if _, err := n.Connect(ctx, bad); err == nil {
			t.Errorf("Connect(%q) succeeded", bad)
		}
	}
	if _, err := New(ctx, Config{ListenAddrs: []string{}, DisableMDNS: true, NAT: NATConfig{Announce: []string{"bogus"}}}); err == nil || !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("a bad announce address: %v", err)
	}
}

func TestPortMappingNeverOnLoopback(t *testing.T) {
	on := true
	for _, tc := range []struct {
		listen []string
		want   bool
	}{
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}, false},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/4001"}, true},
		{nil, true}, // DefaultListenAddrs
	} {
		n := &Node{cfg: Config{ListenAddrs: tc.listen, NAT: NATConfig{PortMap: &on}}}
		if got := n.portMapping(); got != tc.want {
			t.Errorf("listen %v: port mapping %v, want %v", tc.listen, got, tc.want)
		}
	}
	if (&Node{cfg: Config{}}).portMapping() {
		t.Error("port mapping on by default for an embedded node")
	}
}
