package node

// This file holds reachability from behind NAT: AutoNAT v2, circuit relay v2 (client and service), DCUtR hole punching, UPnP/NAT-PMP and announced addresses.

import (
	"context"
	"net/http"

	"github.com/libp2p/go-libp2p"
)

// NATConfig configures reachability from behind NAT: AutoNAT v2, circuit relay v2 (client and service), DCUtR hole punching, UPnP/NAT-PMP and announced addresses.
type NATConfig struct{}

// natState is the part of Node that this file owns.
type natState struct{}

// natOptions are libp2p options added when the node starts its own host.
func (n *Node) natOptions() []libp2p.Option { return nil }

// startNAT runs after the host, federation, trust and peers are up.
func (n *Node) startNAT(ctx context.Context) error { return nil }

// stopNAT runs in Close, before the host closes.
func (n *Node) stopNAT() error { return nil }

// natRoutes adds this file's control API routes (bearer token).
func (n *Node) natRoutes(mux *http.ServeMux) {}
