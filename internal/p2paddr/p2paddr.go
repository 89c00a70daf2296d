// Package p2paddr holds the small multiaddr helpers several parts of the
// node share: parsing a peer address, and telling relayed connections from
// direct ones.
package p2paddr

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
)

// ParseAddrInfo parses a multiaddr ending in /p2p/<node ID>. Errors wrap
// protocol.ErrInvalid and say what was wrong.
func ParseAddrInfo(s string) (*peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInvalid, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (the address must end in /p2p/<node ID>)", protocol.ErrInvalid, err)
	}
	return ai, nil
}

// IsRelayed reports whether a goes through a circuit relay.
func IsRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// RelayOf returns the relay's node ID in a circuit address
// (".../p2p/<relay>/p2p-circuit..."), or "".
func RelayOf(a ma.Multiaddr) string {
	relay := ""
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			relay = c.Value()
		case ma.P_CIRCUIT:
			return relay
		}
	}
	return ""
}

// RelayedOnly reports whether every connection in conns goes through a
// relay (false for none).
func RelayedOnly(conns []network.Conn) bool {
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if !IsRelayed(c.RemoteMultiaddr()) {
			return false
		}
	}
	return true
}
