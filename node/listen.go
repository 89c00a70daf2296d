package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/meshprotocol/mesh/internal/p2paddr"
)

// ErrNotListening is returned by New when a configured libp2p listen
// address could not be bound (its port is taken, or the address is not
// the machine's): libp2p itself starts as long as one address works.
var ErrNotListening = errors.New("not listening")

// checkPortsFree refuses configured TCP ports another process holds
// (p2paddr.BusyPorts): libp2p's TCP transport binds with SO_REUSEPORT, so
// a second MESH daemon on the same port would share its connections.
func checkPortsFree(configured []string) error {
	if busy := p2paddr.BusyPorts(configured); len(busy) > 0 {
		return fmt.Errorf("%w on %s: the port is in use (another MESH daemon?)", ErrNotListening, strings.Join(busy, ", "))
	}
	return nil
}

// checkListening requires a listener on every configured address.
func checkListening(h host.Host, configured []string) error {
	missing, err := p2paddr.NotListening(h.Network().ListenAddresses(), configured)
	if err != nil || len(missing) == 0 {
		return err
	}
	return fmt.Errorf("%w on %s: the port is in use (another MESH daemon?) or the address is not this machine's", ErrNotListening, strings.Join(missing, ", "))
}
