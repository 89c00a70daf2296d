package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Internals for the external tests.

func AcceptsPublisher(n *Node, nodeID string) bool { return n.acceptsPublisher(nodeID) }

func VouchFetches(n *Node) int64 { return n.vouchFetches.Load() }

func FetchVouch(n *Node, ctx context.Context, p peer.ID) error { return n.fetchVouch(ctx, p) }

// CatchUp is what GossipSub calls when the node may have missed messages
// p holds (pubsub.Config.CatchUp).
func CatchUp(n *Node, p peer.ID) { n.catchUp(p) }

// CatchingUp reports whether a catch-up sync with p is under way or due.
func CatchingUp(n *Node, p peer.ID) bool { return n.catchUps.Pending(p) }
