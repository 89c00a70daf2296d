package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// policyOf checks opts and makes the (unsigned) policy of a key: the
// access rules, and the escrow shares of key sealed to their nodes.
func (s *Service) policyOf(keyID, lessonID string, key []byte, opts api.PolicyOptions) (*protocol.KeyPolicy, error) {
	p := protocol.KeyPolicy{KeyID: keyID, LessonID: lessonID, Access: opts.Access, MinTrustScore: opts.MinTrustScore,
		AllowedNodes: slices.Clone(opts.AllowedNodes), ExpiresAt: opts.ExpiresAt}
	if p.Access == "" {
		p.Access = protocol.AccessTrusted
	}
	slices.Sort(p.AllowedNodes)
	p.AllowedNodes = slices.Compact(p.AllowedNodes)
	if p.ExpiresAt != 0 && p.ExpiresAt <= s.now().UnixMilli() {
		return nil, fmt.Errorf("%w: the policy's end (expiresAt) is in the past", protocol.ErrInvalid)
	}
	if len(opts.EscrowNodes) > 0 || opts.Threshold != 0 {
		nodes := slices.Clone(opts.EscrowNodes)
		k := opts.Threshold
		if k == 0 {
			k = len(nodes)/2 + 1
		}
		if len(nodes) < 2 || len(nodes) > protocol.MaxEscrowShares || k < 2 || k > len(nodes) {
			return nil, fmt.Errorf("%w: escrow wants 2 to %d escrow nodes and a threshold from 2 to their number (got %d nodes, threshold %d)",
				protocol.ErrInvalid, protocol.MaxEscrowShares, len(nodes), k)
		}
		if u := slices.Compact(slices.Sorted(slices.Values(nodes))); len(u) != len(nodes) {
			return nil, fmt.Errorf("%w: an escrow node is listed twice", protocol.ErrInvalid)
		}
		for i, id := range nodes {
			if _, err := protocol.PublicKeyOf(id); err != nil {
				return nil, fmt.Errorf("escrow node %d: %w", i+1, err)
			}
			if id == s.self {
				return nil, fmt.Errorf("%w: this node cannot be its own escrow node: escrow is for when it is offline", protocol.ErrInvalid)
			}
			if lvl, ok := s.trust.Level(id); !ok || lvl != trust.LevelFull {
				return nil, fmt.Errorf("%w: escrow node %s is not trusted fully by this node: an escrow node holds a share of the key; run mesh trust set %s full first",
					protocol.ErrUntrusted, id, id)
			}
		}
		e, err := protocol.NewEscrow(key, keyID, k, nodes)
		if err != nil {
			return nil, err
		}
		p.Escrow = e
	}
	return &p, nil
}

// Encrypt makes a new key for rec, signs its policy (opts), keeps both
// durably, and returns rec encrypted under it and signed as published with
// pub, and the policy. The node then keeps the publication, announces it,
// and deposits the escrow shares (Deposit). Visibility is dropped from the
// plaintext, as signing does.
func (s *Service) Encrypt(ctx context.Context, rec *protocol.Lesson, pub protocol.Publication, opts api.PolicyOptions) (*protocol.EncryptedLesson, *protocol.KeyPolicy, error) {
	if rec == nil {
		return nil, nil, fmt.Errorf("%w: no record", protocol.ErrInvalid)
	}
	keyID, key := protocol.NewKeyID(), protocol.NewLessonKey()
	defer clear(key)
	policy, err := s.policyOf(keyID, rec.ID, key, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	return s.seal(ctx, rec, pub, keyID, key, policy)
}

// seal signs policy, keeps the key, encrypts rec and signs it.
func (s *Service) seal(ctx context.Context, rec *protocol.Lesson, pub protocol.Publication, keyID string, key []byte, policy *protocol.KeyPolicy) (*protocol.EncryptedLesson, *protocol.KeyPolicy, error) {
	now := s.now()
	signed, err := protocol.SignKeyPolicy(s.deps.Key, *policy, now)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	el, err := protocol.EncryptLesson(key, rec, protocol.EncryptParams{NodeID: s.self, KeyID: keyID})
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	if el, err = protocol.SignEncrypted(s.deps.Key, el, pub, now); err != nil {
		return nil, nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	// The key is kept before anything is published: a ciphertext out there
	// without its key could never be read.
	if err := s.store.PutLessonKey(ctx, &store.LessonKey{KeyID: keyID, LessonID: rec.ID, Key: slices.Clone(key), Policy: signed, CreatedAt: now.UnixMilli()}); err != nil {
		return nil, nil, fmt.Errorf("encrypt %s: keep the key: %w", rec.ID, err)
	}
	return el, signed, nil
}

// Forget deletes a key Encrypt made whose publication failed: it was never
// published, so nothing needs telling.
func (s *Service) Forget(ctx context.Context, keyID, lessonID string) {
	_ = s.store.RevokeKeys(ctx, store.RevokedKey{KeyID: keyID, LessonID: lessonID, NodeID: s.self, RevokedAt: s.now().UnixMilli(), Reason: store.KeyRetired})
}

// Deposit hands each escrow node its sealed share: the signed policy, over
// /mesh/keynotice/1.0.0. A node that cannot be reached gets it when it is
// next seen.
func (s *Service) Deposit(ctx context.Context, p *protocol.KeyPolicy) []api.NoticeStatus {
	if p.Escrow == nil {
		return nil
	}
	var to []recipient
	for _, sh := range p.Escrow.Shares {
		to = append(to, recipient{sh.NodeID, "escrow"})
	}
	return s.notify(ctx, &protocol.KeyNotice{Type: protocol.MsgKeyNotice, Policy: p}, to)
}

// currentKey returns this node's key of lesson id under keyID, or an error
// that says why there is none: KEY_REVOKED, or NOT_FOUND.
func (s *Service) currentKey(ctx context.Context, keyID string) (*store.LessonKey, error) {
	k, err := s.store.LessonKey(ctx, keyID)
	if err == nil {
		return k, nil
	}
	if r, rerr := s.store.KeyRevoked(ctx, keyID); rerr == nil {
		return nil, fmt.Errorf("key %s: %w (%s)", keyID, protocol.ErrKeyRevoked, r.Reason)
	}
	if isNotFound(err) {
		return nil, fmt.Errorf("key %s: %w: this node holds no such key", keyID, protocol.ErrNotFound)
	}
	return nil, err
}

// SetPolicy replaces the policy of the key keyID (this node's): the same
// key, new rules. Escrow shares are dealt again when the escrow nodes or
// threshold change; the new policy goes to the escrow nodes of the old and
// the new policy (one that is not named any more deletes its share; to be
// sure it cannot help rebuild the key, rotate it).
func (s *Service) SetPolicy(ctx context.Context, keyID string, opts api.PolicyOptions) (*api.KeyInfo, []api.NoticeStatus, error) {
	s.ownMu.Lock()
	k, err := s.currentKey(ctx, keyID)
	if err != nil {
		s.ownMu.Unlock()
		return nil, nil, err
	}
	p, err := s.policyOf(keyID, k.LessonID, k.Key, opts)
	if err == nil && sameEscrow(k.Policy.Escrow, opts) {
		p.Escrow = k.Policy.Escrow // the shares out there stay valid
	}
	if err != nil {
		s.ownMu.Unlock()
		return nil, nil, fmt.Errorf("key %s: %w", keyID, err)
	}
	now := s.now()
	if now.UnixMilli() <= k.Policy.IssuedAt {
		now = time.UnixMilli(k.Policy.IssuedAt + 1) // newer than the one it replaces
	}
	signed, err := protocol.SignKeyPolicy(s.deps.Key, *p, now)
	if err != nil {
		s.ownMu.Unlock()
		return nil, nil, fmt.Errorf("key %s: %w", keyID, err)
	}
	old := k.Policy
	k.Policy = signed
	err = s.store.PutLessonKey(ctx, k)
	s.ownMu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", keyID, err)
	}
	to := escrowRecipients(old, signed)
	notices := s.notify(ctx, &protocol.KeyNotice{Type: protocol.MsgKeyNotice, Policy: signed}, to)
	info := authorInfo(k)
	return &info, notices, nil
}

// sameEscrow reports whether opts asks for the escrow e already has.
func sameEscrow(e *protocol.Escrow, opts api.PolicyOptions) bool {
	if e == nil {
		return len(opts.EscrowNodes) == 0
	}
	k := opts.Threshold
	if k == 0 {
		k = len(opts.EscrowNodes)/2 + 1
	}
	if k != e.Threshold || len(opts.EscrowNodes) != len(e.Shares) {
		return false
	}
	for _, sh := range e.Shares {
		if !contains(opts.EscrowNodes, sh.NodeID) {
			return false
		}
	}
	return true
}

// escrowRecipients are the escrow nodes of the policies given, once each.
func escrowRecipients(policies ...*protocol.KeyPolicy) []recipient {
	var out []recipient
	for _, p := range policies {
		if p == nil || p.Escrow == nil {
			continue
		}
		for _, sh := range p.Escrow.Shares {
			if !slices.ContainsFunc(out, func(r recipient) bool { return r.nodeID == sh.NodeID }) {
				out = append(out, recipient{sh.NodeID, "escrow"})
			}
		}
	}
	return out
}

// readerRecipients are the readers given the keys, once each, skipping
// those already in to.
func readerRecipients(to []recipient, keys ...*store.LessonKey) []recipient {
	for _, k := range keys {
		for _, id := range k.Readers {
			if !slices.ContainsFunc(to, func(r recipient) bool { return r.nodeID == id }) {
				to = append(to, recipient{id, "reader"})
			}
		}
	}
	return to
}

// Rotate makes a new key for rec (this node's lesson, published
// encrypted under oldKeyID), with the old key's policy, and returns rec
// encrypted under it and signed as published with pub. The node publishes
// it, then calls Retire.
func (s *Service) Rotate(ctx context.Context, rec *protocol.Lesson, pub protocol.Publication, oldKeyID string) (*protocol.EncryptedLesson, *protocol.KeyPolicy, error) {
	old, err := s.currentKey(ctx, oldKeyID)
	if err != nil {
		return nil, nil, fmt.Errorf("rotate %s: %w", rec.ID, err)
	}
	opts := api.PolicyOptions{Access: old.Policy.Access, AllowedNodes: old.Policy.AllowedNodes, MinTrustScore: old.Policy.MinTrustScore, ExpiresAt: old.Policy.ExpiresAt}
	if e := old.Policy.Escrow; e != nil {
		opts.Threshold = e.Threshold
		for _, sh := range e.Shares {
			opts.EscrowNodes = append(opts.EscrowNodes, sh.NodeID)
		}
	}
	return s.Encrypt(ctx, rec, pub, opts)
}

// Retire revokes the old key of a rotation (KEY_REVOKED, reason
// "rotated"), and sends the new policy to the escrow nodes of both and to
// the readers of the old key: escrow nodes of the old key delete its
// shares, those of the new take theirs, readers drop the old key.
func (s *Service) Retire(ctx context.Context, oldKeyID string, newPolicy *protocol.KeyPolicy) []api.NoticeStatus {
	s.ownMu.Lock()
	old, err := s.store.LessonKey(ctx, oldKeyID)
	if err == nil {
		err = s.store.RevokeKeys(ctx, store.RevokedKey{KeyID: oldKeyID, LessonID: old.LessonID, NodeID: s.self, RevokedAt: s.now().UnixMilli(), Reason: store.KeyRetired})
	}
	if err == nil {
		// The old key's readers are the lesson's: a hard revoke of the new
		// key reaches them too.
		if k, kerr := s.store.LessonKey(ctx, newPolicy.KeyID); kerr == nil {
			for _, r := range old.Readers {
				if !contains(k.Readers, r) && len(k.Readers) < store.MaxKeyReaders {
					k.Readers = append(k.Readers, r)
				}
			}
			if perr := s.store.PutLessonKey(ctx, k); perr != nil {
				s.log.Warn("keys: carry the readers over to the new key", "err", perr)
			}
		}
	}
	s.ownMu.Unlock()
	if err != nil {
		s.log.Warn("keys: retire the rotated key", "err", err)
		return s.Deposit(ctx, newPolicy)
	}
	s.cache.forgetKey(oldKeyID)
	to := readerRecipients(escrowRecipients(newPolicy, old.Policy), old)
	return s.notify(ctx, &protocol.KeyNotice{Type: protocol.MsgKeyNotice, Policy: newPolicy}, to)
}

// KillKeys deletes every key of this node's lesson rev revokes and marks
// them revoked, durably, before the revocation goes out: from then on they
// are KEY_REVOKED forever. It returns the keys' records as they were (for
// PushRevocation: their readers and escrow nodes).
func (s *Service) KillKeys(ctx context.Context, rev *protocol.Revocation) ([]*store.LessonKey, error) {
	if rev.NodeID != s.self {
		return nil, nil
	}
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	all, err := s.store.LessonKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke %s: %w", rev.LessonID, err)
	}
	var killed []*store.LessonKey
	var marks []store.RevokedKey
	for _, k := range all {
		if k.LessonID == rev.LessonID && rev.RevokesKeyOf(k.Policy) {
			killed = append(killed, k)
			marks = append(marks, store.RevokedKey{KeyID: k.KeyID, LessonID: k.LessonID, NodeID: s.self, RevokedAt: rev.RevokedAt, Reason: store.KeyRevokedHard})
		}
	}
	if len(marks) == 0 {
		return nil, nil
	}
	if err := s.store.RevokeKeys(ctx, marks...); err != nil {
		return nil, fmt.Errorf("revoke %s: delete the keys: %w", rev.LessonID, err)
	}
	for _, k := range killed {
		s.cache.forgetKey(k.KeyID)
	}
	s.log.Info("keys revoked", "lesson", rev.LessonID, "keys", len(marks))
	return killed, nil
}

// PushRevocation sends rev to every reader the killed keys were given to
// and every escrow node of theirs (see KillKeys). Those that cannot be
// reached get it when they are next seen.
func (s *Service) PushRevocation(ctx context.Context, rev *protocol.Revocation, killed []*store.LessonKey) []api.NoticeStatus {
	var policies []*protocol.KeyPolicy
	for _, k := range killed {
		policies = append(policies, k.Policy)
	}
	to := readerRecipients(escrowRecipients(policies...), killed...)
	return s.notify(ctx, &protocol.KeyNotice{Type: protocol.MsgKeyNotice, Revocation: rev}, to)
}

// HasKeys reports whether this node holds a live key of its lesson
// lessonID (its record may have been deleted or made private since: the
// key can still be revoked).
func (s *Service) HasKeys(ctx context.Context, lessonID string) bool {
	all, err := s.store.LessonKeys(ctx)
	if err != nil {
		return false
	}
	for _, k := range all {
		if k.LessonID == lessonID {
			return true
		}
	}
	return false
}

// KeyOf returns the policy of this node's key keyID.
func (s *Service) KeyOf(ctx context.Context, keyID string) (*api.KeyInfo, error) {
	k, err := s.currentKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	info := authorInfo(k)
	return &info, nil
}

// List lists the keys this node holds (its own, the escrow shares it
// holds, those in a reader's memory) and those it knows revoked. It never
// returns a key.
func (s *Service) List(ctx context.Context) ([]api.KeyInfo, error) {
	var out []api.KeyInfo
	own, err := s.store.LessonKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range own {
		out = append(out, authorInfo(k))
	}
	shares, err := s.store.EscrowShares(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range shares {
		info := policyInfo(p)
		info.Role = api.KeyRoleEscrow
		out = append(out, info)
	}
	out = append(out, s.cache.list()...)
	revoked, err := s.store.RevokedKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range revoked {
		role := api.KeyRoleEscrow
		if r.NodeID == s.self {
			role = api.KeyRoleAuthor
		}
		out = append(out, api.KeyInfo{KeyID: r.KeyID, LessonID: r.LessonID, NodeID: r.NodeID, Role: role, Revoked: true, RevokedAt: r.RevokedAt, RevokeReason: r.Reason})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Revoked != out[j].Revoked {
			return !out[i].Revoked
		}
		return out[i].LessonID < out[j].LessonID
	})
	return out, nil
}

func authorInfo(k *store.LessonKey) api.KeyInfo {
	info := policyInfo(k.Policy)
	info.Role = api.KeyRoleAuthor
	info.Readers = len(k.Readers)
	return info
}

func policyInfo(p *protocol.KeyPolicy) api.KeyInfo {
	info := api.KeyInfo{KeyID: p.KeyID, LessonID: p.LessonID, NodeID: p.NodeID, Access: p.Access, AllowedNodes: p.AllowedNodes,
		MinTrustScore: p.MinTrustScore, ExpiresAt: p.ExpiresAt, IssuedAt: p.IssuedAt}
	if p.Escrow != nil {
		info.Threshold = p.Escrow.Threshold
		for _, sh := range p.Escrow.Shares {
			info.EscrowNodes = append(info.EscrowNodes, sh.NodeID)
		}
	}
	return info
}

// addReader remembers that requester was given key keyID, so a hard
// revoke reaches it.
func (s *Service) addReader(ctx context.Context, keyID, requester string) {
	if requester == s.self {
		return
	}
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	k, err := s.store.LessonKey(ctx, keyID)
	if err != nil || contains(k.Readers, requester) || len(k.Readers) >= store.MaxKeyReaders {
		return
	}
	k.Readers = append(k.Readers, requester)
	if err := s.store.PutLessonKey(ctx, k); err != nil && !isRevoked(err) {
		s.log.Warn("keys: remember a reader", "err", err)
	}
}

func isRevoked(err error) bool { return errors.Is(err, store.ErrRevoked) }
