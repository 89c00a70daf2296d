package node

import (
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// TrustPending lists the publishers whose lessons were refused because this
// node does not trust them, most recently refused first.
func (n *Node) TrustPending(ctx context.Context) ([]api.PendingPublisher, error) {
	l, _ := n.pending.List()
	return l, nil
}

// refused records a valid lesson refused for its publisher's trust, unless
// the publisher is blocked (a deliberate choice, not news).
func (n *Node) refused(publisher, key string, topics []string, via peer.ID) {
	if n.trust.Blocked(publisher) {
		return
	}
	n.pending.Add(publisher, key, topics, via, n.now())
}

// retryPending brings in, at once, the lessons of each refused publisher
// this node now accepts: it syncs them (on the followed topics) from the
// publisher, if connected, and from every peer that had them.
func (n *Node) retryPending() {
	if n.host == nil {
		return
	}
	for _, pub := range n.pending.Publishers() {
		if !n.acceptsPublisher(pub) {
			continue
		}
		via, ok := n.pending.Take(pub)
		if !ok {
			continue
		}
		if p, err := peer.Decode(pub); err == nil && !slices.Contains(via, p) {
			via = append(via, p)
		}
		for _, p := range via {
			if n.host.Network().Connectedness(p) != network.Connected {
				continue
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				if err := n.syncPublisher(n.ctx, p, pub); err != nil && n.ctx.Err() == nil {
					n.log.Debug("sync newly trusted publisher", "peer", p.String(), "err", err)
				}
			}()
		}
	}
}

// syncPublisher pulls from p the public lessons and revocations of
// publisher on the followed topics (all of them if the node follows its
// feed or no topic).
func (n *Node) syncPublisher(ctx context.Context, p peer.ID, publisher string) error {
	topics, feeds, err := n.Following(ctx)
	if err != nil {
		return err
	}
	req := protocol.SyncRequest{Publishers: []string{publisher}}
	if !slices.Contains(feeds, publisher) {
		req.Topics = topics
	}
	prog := api.SyncProgress{Peer: p.String()}
	return n.syncPass(ctx, p, req, &prog, nil)
}
