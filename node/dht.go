package node

// This file holds the Kademlia DHT under MESH's own protocol prefix: signed node records, topic providers, peer routing.

import (
	"context"
	"net/http"

	"github.com/libp2p/go-libp2p"
)

// DHTConfig configures the Kademlia DHT under MESH's own protocol prefix: signed node records, topic providers, peer routing.
type DHTConfig struct{}

// dhtState is the part of Node that this file owns.
type dhtState struct{}

// dhtOptions are libp2p options added when the node starts its own host.
func (n *Node) dhtOptions() []libp2p.Option { return nil }

// startDHT runs after the host, federation, trust and peers are up.
func (n *Node) startDHT(ctx context.Context) error { return nil }

// stopDHT runs in Close, before the host closes.
func (n *Node) stopDHT() error { return nil }

// dhtRoutes adds this file's control API routes (bearer token).
func (n *Node) dhtRoutes(mux *http.ServeMux) {}
