package pubsub

import (
	"sync"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ReasonThrottled counts messages GossipSub dropped unvalidated because the
// validation queue or the validator concurrency was full (Stats.Ignored).
// Any count here means honest messages may have been lost: raise
// Params.ValidateQueueSize or Params.ValidatorConcurrency.
const ReasonThrottled = "throttled"

// tracer follows the router's mesh (for tests and diagnostics) and counts
// the messages it drops before they reach the validator. The router calls
// it synchronously from its event loop: every method is a map update.
type tracer struct {
	stats   *stats
	catchUp func(peer.ID) // Config.CatchUp, or nil

	mu   sync.Mutex
	mesh map[string]map[peer.ID]struct{}
}

var _ gossipsub.RawTracer = (*tracer)(nil)

func newTracer(st *stats, catchUp func(peer.ID)) *tracer {
	return &tracer{stats: st, catchUp: catchUp, mesh: map[string]map[peer.ID]struct{}{}}
}

// missed tells Config.CatchUp that p may hold messages this node lacks.
func (t *tracer) missed(p peer.ID) {
	if t.catchUp != nil && p != "" {
		t.catchUp(p)
	}
}

// meshPeers returns the peers in this node's mesh for a GossipSub topic.
func (t *tracer) meshPeers(topic string) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []peer.ID
	for p := range t.mesh[topic] {
		out = append(out, p)
	}
	return out
}

// Graft notes p in the mesh of topic. When the mesh was empty, this node
// was outside every mesh of the topic until now, so what passed
// meanwhile did not come here: it catches up with p. A peer joining a
// mesh that already had others says nothing of the kind, and at start-up
// every node grafts several: syncing on each graft made 1,894 syncs in
// the first seconds of meshbench propagate -nodes 300, on an empty mesh
// only 300.
func (t *tracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	m := t.mesh[topic]
	if m == nil {
		m = map[peer.ID]struct{}{}
		t.mesh[topic] = m
	}
	outside := len(m) == 0
	m[p] = struct{}{}
	t.mu.Unlock()
	if outside {
		t.missed(p)
	}
}

func (t *tracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

func (t *tracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}

func (t *tracer) RemovePeer(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.mesh {
		delete(m, p)
	}
}

func (t *tracer) RejectMessage(msg *gossipsub.Message, reason string) {
	if reason == gossipsub.RejectValidationQueueFull || reason == gossipsub.RejectValidationThrottled {
		t.stats.count(ignore(ReasonThrottled), 0)
		t.missed(msg.ReceivedFrom)
	}
}

// UndeliverableMessage is a valid message the subscription's full buffer
// dropped: it is marked seen, so gossip will not bring it again.
func (t *tracer) UndeliverableMessage(msg *gossipsub.Message) { t.missed(msg.ReceivedFrom) }

// DropRPC counts an RPC dropped because the peer's outbound queue was full.
func (t *tracer) DropRPC(*gossipsub.RPC, peer.ID) { t.stats.countDropped() }

func (t *tracer) AddPeer(peer.ID, protocol.ID)                            {}
func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID)                {}
func (t *tracer) OnClosedOutboundStream(peer.ID)                          {}
func (t *tracer) Join(string)                                             {}
func (t *tracer) ValidateMessage(*gossipsub.Message)                      {}
func (t *tracer) DeliverMessage(*gossipsub.Message)                       {}
func (t *tracer) DuplicateMessage(*gossipsub.Message)                     {}
func (t *tracer) ThrottlePeer(peer.ID)                                    {}
func (t *tracer) RecvRPC(*gossipsub.RPC)                                  {}
func (t *tracer) SendRPC(*gossipsub.RPC, peer.ID)                         {}
func (t *tracer) SendRPCCompleted(*gossipsub.RPC, peer.ID, time.Duration) {}
