package discovery

import (
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestPublishableAddrs: a node record lists only public addresses (relay
// circuits by their relay's) when the node has any, and everything when it
// has none, as on a LAN or on loopback.
func TestPublishableAddrs(t *testing.T) {
	const relay = "/ip4/8.8.4.4/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/p2p-circuit"
	cases := []struct {
		name     string
		in, want []string
	}{
		{"home behind NAT", []string{"/ip4/192.168.1.20/tcp/4001", "/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1", relay}, []string{relay}},
		{"public server", []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/1.2.3.4/tcp/4001", "/ip6/2606:4700::1/udp/4001/quic-v1", "/dns4/mesh.example.org/tcp/443/wss"},
			[]string{"/ip4/1.2.3.4/tcp/4001", "/ip6/2606:4700::1/udp/4001/quic-v1", "/dns4/mesh.example.org/tcp/443/wss"}},
		{"LAN only", []string{"/ip4/10.0.0.5/tcp/4001", "/ip4/127.0.0.1/tcp/4001"}, []string{"/ip4/10.0.0.5/tcp/4001", "/ip4/127.0.0.1/tcp/4001"}},
		{"loopback only", []string{"/ip4/127.0.0.1/tcp/4001"}, []string{"/ip4/127.0.0.1/tcp/4001"}},
		{"none", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []ma.Multiaddr
			for _, s := range c.in {
				in = append(in, ma.StringCast(s))
			}
			var got []string
			for _, a := range publishableAddrs(in) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}
