package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrNotListening is returned by New when a configured libp2p listen
// address could not be bound (its port is taken, or the address is not
// the machine's): libp2p itself starts as long as one address works.
var ErrNotListening = errors.New("not listening")

// checkListening compares the configured listen addresses with what the
// host listens on: every one must have a listener (a port 0 matches any
// port; a listener may carry more components, as WebTransport's certhash).
func checkListening(h host.Host, configured []string) error {
	have := h.Network().ListenAddresses()
	var missing []string
	for _, s := range configured {
		want, err := ma.NewMultiaddr(s)
		if err != nil {
			return err // libp2p.New already refused it
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
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w on %s: the port is in use (another MESH daemon?) or the address is not this machine's", ErrNotListening, strings.Join(missing, ", "))
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
