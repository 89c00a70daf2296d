package p2paddr

import (
	"net"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// BusyPorts binds each configured TCP address with a fixed port, and lets
// it go, and returns those it could not bind; call it before libp2p
// listens there. libp2p's TCP transport binds
// with SO_REUSEPORT (it dials from its listening port, for hole punching),
// so a second MESH daemon on the same port would bind it too and share the
// incoming connections with the first in silence; a plain bind fails while
// anyone holds the port.
func BusyPorts(configured []string) []string {
	var busy []string
	for _, s := range configured {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue // libp2p.New refuses it with its own error
		}
		if len(a) != 2 || a[1].Code() != ma.P_TCP || a[1].Value() == "0" {
			continue // WebSocket and others ride on TCP too, but only bare TCP shares ports
		}
		network, host := "tcp4", a[0].Value()
		switch a[0].Code() {
		case ma.P_IP4:
		case ma.P_IP6:
			network = "tcp6"
		default:
			continue
		}
		l, err := net.Listen(network, net.JoinHostPort(host, a[1].Value()))
		if err != nil {
			busy = append(busy, s)
			continue
		}
		l.Close()
	}
	return busy
}

// NotListening compares the configured listen addresses with what a host
// listens on (have) and returns those without a listener (a port 0
// matches any port; a listener may carry more components, as
// WebTransport's certhash; relay circuit addresses are left out).
func NotListening(have []ma.Multiaddr, configured []string) ([]string, error) {
	var missing []string
	for _, s := range configured {
		want, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, err // libp2p.New already refused it
		}
		if strings.Contains(s, "/p2p-circuit") {
			continue
		}
		found := false
		for _, got := range have {
			if listensOn(got, want) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// listensOn reports whether listener got serves the configured address
// want: want's components are a prefix of got's, a port 0 standing for any.
func listensOn(got, want ma.Multiaddr) bool {
	if len(got) < len(want) {
		return false
	}
	for i, w := range want {
		g := got[i]
		if g.Code() != w.Code() {
			return false
		}
		if (w.Code() == ma.P_TCP || w.Code() == ma.P_UDP) && w.Value() == "0" {
			continue
		}
		if g.Value() != w.Value() {
			return false
		}
	}
	return true
}
