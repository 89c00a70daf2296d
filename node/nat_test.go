package node

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
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
