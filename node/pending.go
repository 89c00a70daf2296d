package node

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// Bounds of what the node keeps about refused publishers.
const (
	maxPending     = 256  // publishers
	maxPendingKeys = 4096 // distinct lessons counted per publisher
	maxPendingVia  = 16   // peers remembered per publisher
)

// pending remembers the publishers whose valid lessons the node refused
// because it does not trust them: who, on which topics, how many, when,
// and which peers had them; never the content. It is safe for concurrent
// use.
type pending struct {
	mu sync.Mutex
	m  map[string]*pendingEntry
}

type pendingEntry struct {
	api.PendingPublisher
	keys map[string]bool
	via  []peer.ID
}

// add records a refused lesson (key) of publisher on topics, received from
// via (the peer that had it).
func (p *pending) add(publisher, key string, topics []string, via peer.ID, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*pendingEntry{}
	}
	e, ok := p.m[publisher]
	if !ok {
		if len(p.m) >= maxPending {
			p.evictOldestLocked()
		}
		e = &pendingEntry{PendingPublisher: api.PendingPublisher{NodeID: publisher, Topics: []string{}, FirstSeen: now.UnixMilli()}, keys: map[string]bool{}}
		p.m[publisher] = e
	}
	e.LastSeen = now.UnixMilli()
	if !e.keys[key] && len(e.keys) < maxPendingKeys {
		e.keys[key] = true
		e.Lessons++
	}
	for _, t := range topics {
		if !slices.Contains(e.Topics, t) && len(e.Topics) < protocol.MaxTags {
			e.Topics = append(e.Topics, t)
		}
	}
	if via != "" && !slices.Contains(e.via, via) && len(e.via) < maxPendingVia {
		e.via = append(e.via, via)
	}
}

func (p *pending) evictOldestLocked() {
	var oldest *pendingEntry
	for _, e := range p.m {
		if oldest == nil || e.LastSeen < oldest.LastSeen {
			oldest = e
		}
	}
	delete(p.m, oldest.NodeID)
}

// list returns the refused publishers, most recently refused first, and the
// totals.
func (p *pending) list() ([]api.PendingPublisher, api.PendingSummary) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]api.PendingPublisher, 0, len(p.m))
	var sum api.PendingSummary
	for _, e := range p.m {
		pp := e.PendingPublisher
		pp.Topics = slices.Clone(e.Topics)
		slices.Sort(pp.Topics)
		out = append(out, pp)
		sum.Publishers++
		sum.Lessons += e.Lessons
	}
	slices.SortFunc(out, func(a, b api.PendingPublisher) int {
		return cmp.Or(cmp.Compare(b.LastSeen, a.LastSeen), cmp.Compare(a.NodeID, b.NodeID))
	})
	return out, sum
}

// take removes publisher and returns the peers that had its lessons.
func (p *pending) take(publisher string) ([]peer.ID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[publisher]
	if !ok {
		return nil, false
	}
	delete(p.m, publisher)
	return e.via, true
}

// publishers lists the refused publishers.
func (p *pending) publishers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.m))
	for id := range p.m {
		out = append(out, id)
	}
	return out
}

// TrustPending lists the publishers whose lessons were refused because this
// node does not trust them, most recently refused first.
func (n *Node) TrustPending(ctx context.Context) ([]api.PendingPublisher, error) {
	l, _ := n.pending.list()
	return l, nil
}

// refused records a valid lesson refused for its publisher's trust, unless
// the publisher is blocked (a deliberate choice, not news).
func (n *Node) refused(publisher, key string, topics []string, via peer.ID) {
	if n.trust.Blocked(publisher) {
		return
	}
	n.pending.add(publisher, key, topics, via, n.now())
}

// retryPending brings in, at once, the lessons of each refused publisher
// this node now accepts: it syncs them (on the followed topics) from the
// publisher, if connected, and from every peer that had them.
func (n *Node) retryPending() {
	if n.host == nil {
		return
	}
	for _, pub := range n.pending.publishers() {
		if !n.acceptsPublisher(pub) {
			continue
		}
		via, ok := n.pending.take(pub)
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
