package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// pendingPrefix + nodeId + "/" + name holds a notice not yet acknowledged
// by that node: the encoded KeyNotice.
const pendingPrefix = "keys/pending/"

// maxPendingPerNode bounds the notices kept for one node.
const maxPendingPerNode = 256

// recipient is a node to tell, and in what role it holds something of
// the key.
type recipient struct {
	nodeID string
	role   string // "escrow" or "reader"
}

// notify sends n to every recipient at once and says who acknowledged it.
// A node that does not is remembered, and n is sent again when it is next
// seen (PeerSeen).
func (s *Service) notify(ctx context.Context, n *protocol.KeyNotice, to []recipient) []api.NoticeStatus {
	body, err := n.Encode()
	if err != nil {
		return nil
	}
	out := make([]api.NoticeStatus, len(to))
	var wg sync.WaitGroup
	for i, r := range to {
		out[i] = api.NoticeStatus{NodeID: r.nodeID, Role: r.role}
		if r.nodeID == s.self {
			out[i].Delivered = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.send(ctx, r.nodeID, body)
			if err == nil {
				out[i].Delivered = true
				return
			}
			out[i].Error = err.Error()
			// An answer that refuses the notice will refuse it again; an
			// unreachable node gets it when it comes back.
			if errors.Is(err, protocol.ErrUnreachable) || errors.Is(err, protocol.ErrUnavailable) {
				s.keepPending(r.nodeID, n, body)
			}
		}()
	}
	wg.Wait()
	return out
}

// send delivers one encoded notice to nodeID and reads its answer.
func (s *Service) send(ctx context.Context, nodeID string, body []byte) error {
	if s.host == nil {
		return fmt.Errorf("%w: the node is offline", protocol.ErrUnavailable)
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return fmt.Errorf("%w: node id %s", protocol.ErrInvalid, nodeID)
	}
	b, err := s.call(ctx, p, protocol.ProtocolKeyNotice, body, protocol.MaxKeyNoticeAckSize)
	if err != nil {
		return err
	}
	ack, err := protocol.DecodeKeyNoticeAck(b)
	if err != nil {
		return fmt.Errorf("%w: %s answered: %v", protocol.ErrUnreachable, nodeID, err)
	}
	return ack.Err()
}

// pendingName names a notice among those kept for one node: a revocation
// by its lesson, a policy by its key (a newer one replaces an older one).
func pendingName(n *protocol.KeyNotice) string {
	if n.Revocation != nil {
		return "rev-" + n.Revocation.LessonID
	}
	return "pol-" + n.Policy.KeyID
}

func (s *Service) keepPending(nodeID string, n *protocol.KeyNotice, body []byte) {
	ctx := s.ctx
	prefix := pendingPrefix + nodeID + "/"
	count := 0
	_ = s.store.ListMeta(ctx, prefix, func(string, []byte) error { count++; return nil })
	if count >= maxPendingPerNode {
		s.log.Warn("keys: too many notices waiting for one node; dropping one", "peer", nodeID)
		return
	}
	if err := s.store.SetMeta(ctx, prefix+pendingName(n), body); err != nil {
		s.log.Warn("keys: keep a notice", "peer", nodeID, "err", err)
	}
}

// PeerSeen sends p the notices kept for it, if any, in the background. The
// node calls it when a peer is identified.
func (s *Service) PeerSeen(p peer.ID) {
	if s.host == nil {
		return
	}
	prefix := pendingPrefix + p.String() + "/"
	type kept struct {
		key  string
		body []byte
	}
	var list []kept
	_ = s.store.ListMeta(s.ctx, prefix, func(k string, v []byte) error {
		list = append(list, kept{k, append([]byte(nil), v...)})
		return nil
	})
	if len(list) == 0 {
		return
	}
	s.goTracked(func() {
		for _, k := range list {
			err := s.send(s.ctx, p.String(), k.body)
			if err != nil && (errors.Is(err, protocol.ErrUnreachable) || errors.Is(err, protocol.ErrUnavailable)) {
				return // try again next time
			}
			if err != nil {
				s.log.Debug("keys: a kept notice was refused", "peer", p.String(), "err", err)
			}
			_ = s.store.DeleteMeta(s.ctx, k.key)
		}
	})
}

// Pending lists the nodes that have notices waiting, and how many.
func (s *Service) Pending(ctx context.Context) map[string]int {
	out := map[string]int{}
	_ = s.store.ListMeta(ctx, pendingPrefix, func(k string, _ []byte) error {
		rest := strings.TrimPrefix(k, pendingPrefix)
		if i := strings.IndexByte(rest, '/'); i > 0 {
			out[rest[:i]]++
		}
		return nil
	})
	return out
}

// handleNotice answers /mesh/keynotice/1.0.0.
func (s *Service) handleNotice(ctx context.Context, r *streamrpc.Request) []byte {
	ack := &protocol.KeyNoticeAck{Type: protocol.MsgKeyNoticeAck}
	err := r.Err
	if err == nil {
		var n *protocol.KeyNotice
		if n, err = protocol.DecodeKeyNotice(r.Body); err == nil {
			if !s.limit.Allow(r.From.String(), s.now()) {
				err = fmt.Errorf("%w: too many notices; slow down", protocol.ErrRateLimited)
			} else if n.Revocation != nil {
				err = s.takeRevocation(ctx, n.Revocation)
			} else {
				err = s.takePolicy(ctx, r.From.String(), n.Policy)
			}
		}
	}
	ack.Error = protocol.ErrorOf(err)
	return streamrpc.Encode(ack)
}

// takeRevocation applies a pushed revocation: whoever passes it on, only
// the author can have signed it.
func (s *Service) takeRevocation(ctx context.Context, rev *protocol.Revocation) error {
	if err := protocol.VerifyRevocation(rev, protocol.VerifyOptions{Now: s.now(), AllowOld: true}); err != nil {
		return err
	}
	// What the revocation takes away here goes whatever happens to the
	// tombstone (a node keeps tombstones of publishers it accepts only).
	s.OnRevocation(ctx, rev)
	if s.deps.Revoke != nil {
		if err := s.deps.Revoke(ctx, rev); err != nil {
			s.log.Debug("keys: pushed revocation not kept as a tombstone", "err", err)
		}
	}
	return nil
}

// takePolicy acts on a policy its author sent: an escrow deposit (a share
// sealed to this node), a policy change, or a rotation (OnPolicy).
func (s *Service) takePolicy(ctx context.Context, from string, p *protocol.KeyPolicy) error {
	if from != p.NodeID {
		return fmt.Errorf("%w: a key policy is taken from its author only, over the author's own channel", protocol.ErrUntrusted)
	}
	if err := protocol.VerifyKeyPolicy(p, protocol.VerifyOptions{Now: s.now()}); err != nil {
		return err
	}
	if s.trust.Blocked(p.NodeID) {
		return fmt.Errorf("%w: %s is blocked here", protocol.ErrUntrusted, p.NodeID)
	}
	return s.OnPolicy(ctx, p)
}

// OnPolicy acts on a verified policy of another node's key: it supersedes
// the older policies held of the same lesson (a rotation retires their
// keys: shares deleted, KEY_REVOKED from then on; a policy change of the
// same key replaces the share, or deletes it if this node is no longer
// named), takes this node's share if the policy names it, and makes a
// reader drop the keys of the lesson it retires.
func (s *Service) OnPolicy(ctx context.Context, p *protocol.KeyPolicy) error {
	s.cache.forgetLessonExcept(p.Key(), p.KeyID)
	shares, err := s.store.EscrowShares(ctx)
	if err != nil {
		return err
	}
	for _, old := range shares {
		if old.Key() != p.Key() || old.IssuedAt >= p.IssuedAt {
			continue
		}
		if old.KeyID != p.KeyID {
			if err := s.store.RevokeKeys(ctx, retiredBy(old, p)); err != nil {
				return err
			}
			s.log.Info("escrow share deleted: key rotated", "lesson", p.LessonID)
		} else if !named(p, s.self) {
			if err := s.store.DeleteEscrowShare(ctx, old.KeyID); err != nil {
				return err
			}
		}
	}
	if !named(p, s.self) {
		return nil
	}
	if held, err := s.store.EscrowShare(ctx, p.KeyID); err == nil && held.IssuedAt >= p.IssuedAt {
		return nil // the same or a newer policy is held already
	}
	if rev, err := s.store.Tombstone(ctx, p.Key()); err == nil && rev.RevokesKeyOf(p) {
		return fmt.Errorf("key %s: %w: the lesson was revoked", p.KeyID, protocol.ErrKeyRevoked)
	}
	if _, _, ok := s.trust.Path(p.NodeID); !ok {
		return fmt.Errorf("%w: this node holds escrow shares only for nodes it has a trust path to; %s has none", protocol.ErrUntrusted, p.NodeID)
	}
	if _, err := p.Escrow.OpenShare(s.deps.Key, p.KeyID); err != nil {
		return fmt.Errorf("key %s: this node's share: %w", p.KeyID, err)
	}
	if err := s.store.PutEscrowShare(ctx, p); err != nil {
		if isRevoked(err) {
			return fmt.Errorf("key %s: %w", p.KeyID, protocol.ErrKeyRevoked)
		}
		return err
	}
	if s.deps.FollowFeed != nil {
		if err := s.deps.FollowFeed(ctx, p.NodeID); err != nil {
			s.log.Warn("keys: follow the feed of an escrow author", "err", err)
		}
	}
	s.log.Info("escrow share taken", "author", p.NodeID, "threshold", p.Escrow.Threshold)
	return nil
}

// named reports whether p holds a share for nodeID.
func named(p *protocol.KeyPolicy, nodeID string) bool {
	if p.Escrow == nil {
		return false
	}
	for _, sh := range p.Escrow.Shares {
		if sh.NodeID == nodeID {
			return true
		}
	}
	return false
}
