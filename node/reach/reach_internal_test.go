package reach

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/trust"
)

func addrs(ss ...string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

func TestInferPunchAddrs(t *testing.T) {
	t.Parallel()
	listen := addrs("/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/4002/ws")
	got := inferPunchAddrs(addrs("/ip4/11.0.0.11/tcp/4001"), listen)
	want := addrs("/ip4/11.0.0.11/tcp/4001", "/ip4/11.0.0.11/udp/4001/quic-v1")
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// A port the NAT changed says nothing about the other listener.
	got = inferPunchAddrs(addrs("/ip4/11.0.0.13/udp/62088/quic-v1"), listen)
	if len(got) != 1 {
		t.Fatalf("a remapped port inferred %v", got)
	}
	// Both known: nothing added twice.
	both := addrs("/ip4/11.0.0.11/tcp/4001", "/ip4/11.0.0.11/udp/4001/quic-v1")
	if got = inferPunchAddrs(both, listen); len(got) != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestPortMappingNeverOnLoopback(t *testing.T) {
	t.Parallel()
	on := true
	for _, tc := range []struct {
		name string
		cfg  Config
		deps Deps
		want bool
	}{
		{"loopback only", Config{PortMap: &on}, Deps{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}}, false},
		{"loopback and every interface", Config{PortMap: &on}, Deps{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/4001"}}, true},
		{"every interface", Config{PortMap: &on}, Deps{ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}}, true},
		{"no listener", Config{PortMap: &on}, Deps{}, false},
		{"a given host", Config{PortMap: &on}, Deps{ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0"}, GivenHost: true}, false},
		{"off by default", Config{}, Deps{ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0"}}, false},
	} {
		s, err := New(tc.cfg, tc.deps)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.portMapping(); got != tc.want {
			t.Errorf("%s: listen %v: port mapping %v, want %v", tc.name, tc.deps.ListenAddrs, got, tc.want)
		}
	}
}

// fakeTrust is a web of trust with direct edges only.
type fakeTrust map[string]trust.Level

func (f fakeTrust) Blocked(id string) bool { return f[id] == trust.LevelNone }
func (f fakeTrust) Level(id string) (trust.Level, bool) {
	l, ok := f[id]
	return l, ok
}

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRelayACL: the relay refuses slots and circuits to blocked nodes, and
// with TrustedOnly slots to nodes it does not trust.
func TestRelayACL(t *testing.T) {
	t.Parallel()
	full, limited, blocked, stranger := newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t)
	tr := fakeTrust{full.String(): trust.LevelFull, limited.String(): trust.LevelLimited, blocked.String(): trust.LevelNone}
	for _, tc := range []struct {
		trustedOnly bool
		reserve     map[peer.ID]bool
	}{
		{false, map[peer.ID]bool{full: true, limited: true, blocked: false, stranger: true}},
		{true, map[peer.ID]bool{full: true, limited: true, blocked: false, stranger: false}},
	} {
		s, err := New(Config{Relay: RelayConfig{Enabled: true, TrustedOnly: tc.trustedOnly}}, Deps{Trust: tr})
		if err != nil {
			t.Fatal(err)
		}
		acl := relayACL{s}
		for p, want := range tc.reserve {
			if got := acl.AllowReserve(p, nil); got != want {
				t.Errorf("trustedOnly=%v: reserve for %s (%v): %v, want %v", tc.trustedOnly, p, tr[p.String()], got, want)
			}
		}
		if acl.AllowConnect(blocked, nil, full) || acl.AllowConnect(full, nil, blocked) || !acl.AllowConnect(full, nil, stranger) {
			t.Errorf("trustedOnly=%v: circuits ignore blocks", tc.trustedOnly)
		}
	}
	// No web of trust: everyone.
	s, _ := New(Config{}, Deps{})
	if !(relayACL{s}).AllowReserve(stranger, nil) || !(relayACL{s}).AllowConnect(stranger, nil, full) {
		t.Error("a relay with no web of trust refuses someone")
	}
}
