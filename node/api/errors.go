package api

import (
	"fmt"

	"github.com/meshprotocol/mesh/protocol"
)

var (
	// ErrOffline is returned by the network operations of an offline node
	// (node.Config.Offline). It wraps protocol.ErrUnavailable.
	ErrOffline = fmt.Errorf("%w: the node is offline", protocol.ErrUnavailable)
	// ErrNoDHT is returned by the DHT operations of a node that runs none.
	// It wraps protocol.ErrUnavailable.
	ErrNoDHT = fmt.Errorf("%w: the DHT is off on this node (dht.mode \"off\" in config.json, or mesh daemon --dht-mode off)", protocol.ErrUnavailable)
)
