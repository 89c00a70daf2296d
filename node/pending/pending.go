package pending

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// Bounds of what the node keeps about refused publishers.
const (
	maxPublishers = 256  // publishers
	maxKeys       = 4096 // distinct lessons counted per publisher
	maxVia        = 16   // peers remembered per publisher
)

// Book remembers the publishers whose valid lessons the node refused
// because it does not trust them: who, on which topics, how many, when,
// and which peers had them; never the content. It is safe for concurrent
// use.
type Book struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	api.PendingPublisher
	keys map[string]bool
	via  []peer.ID
}

// Add records a refused lesson (key) of publisher on topics, received from
// via (the peer that had it).
func (p *Book) Add(publisher, key string, topics []string, via peer.ID, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*entry{}
	}
	e, ok := p.m[publisher]
	if !ok {
		if len(p.m) >= maxPublishers {
			p.evictOldestLocked()
		}
		e = &entry{PendingPublisher: api.PendingPublisher{NodeID: publisher, Topics: []string{}, FirstSeen: now.UnixMilli()}, keys: map[string]bool{}}
		p.m[publisher] = e
	}
	e.LastSeen = now.UnixMilli()
	if !e.keys[key] && len(e.keys) < maxKeys {
		e.keys[key] = true
		e.Lessons++
	}
	for _, t := range topics {
		if !slices.Contains(e.Topics, t) && len(e.Topics) < protocol.MaxTags {
			e.Topics = append(e.Topics, t)
		}
	}
	if via != "" && !slices.Contains(e.via, via) && len(e.via) < maxVia {
		e.via = append(e.via, via)
	}
}

func (p *Book) evictOldestLocked() {
	var oldest *entry
	for _, e := range p.m {
		if oldest == nil || e.LastSeen < oldest.LastSeen {
			oldest = e
		}
	}
	delete(p.m, oldest.NodeID)
}

// List returns the refused publishers, most recently refused first, and the
// totals.
func (p *Book) List() ([]api.PendingPublisher, api.PendingSummary) {
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

// Take removes publisher and returns the peers that had its lessons.
func (p *Book) Take(publisher string) ([]peer.ID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[publisher]
	if !ok {
		return nil, false
	}
	delete(p.m, publisher)
	return e.via, true
}

// Publishers lists the refused publishers.
func (p *Book) Publishers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.m))
	for id := range p.m {
		out = append(out, id)
	}
	return out
}
