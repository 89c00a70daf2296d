package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Internals for the external tests.

func AcceptsPublisher(n *Node, nodeID string) bool { return n.acceptsPublisher(nodeID) }

func VouchFetches(n *Node) int64 { return n.vouchFetches.Load() }

func FetchVouch(n *Node, ctx context.Context, p peer.ID) error { return n.fetchVouch(ctx, p) }
