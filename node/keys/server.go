package keys

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// handleKey answers /mesh/keys/1.0.0: the requester is the peer of the
// secure channel, and the key or share travels inside it.
func (s *Service) handleKey(ctx context.Context, r *streamrpc.Request) []byte {
	if r.Err != nil {
		return streamrpc.Encode(protocol.KeyErrorResponse("unknown", r.Err))
	}
	req, err := protocol.DecodeKeyRequest(r.Body)
	if err != nil {
		return streamrpc.Encode(protocol.KeyErrorResponse("unknown", err))
	}
	if !s.limit.Allow(r.From.String(), s.now()) {
		return streamrpc.Encode(protocol.KeyErrorResponse(req.KeyID, fmt.Errorf("%w: too many key requests; slow down", protocol.ErrRateLimited)))
	}
	g := s.answer(ctx, req.KeyID, r.From.String())
	return streamrpc.Encode(g.response(req.KeyID))
}

// ServeKeyHTTP answers the seed's GET /mesh/v1/keys/{keyId}: header gives
// the request's headers (http.Header.Get). The request must be signed by
// the requester's node key (protocol.SignedKeyRequest); the key, or an
// escrow share, is sealed to the requester, so the answer is safe on plain
// HTTP. The caller signs the answer and sends it with the status of its
// error code (protocol.HTTPStatus of resp.Err()).
func (s *Service) ServeKeyHTTP(ctx context.Context, keyID string, header func(string) string) *protocol.KeyResponse {
	req, err := protocol.ParseKeyRequestHeaders(keyID, header)
	if err == nil {
		err = protocol.VerifyKeyRequest(req, protocol.VerifyOptions{Now: s.now()})
	}
	if err != nil {
		if protocol.ValidateID(keyID) != nil {
			keyID = "unknown"
		}
		return protocol.KeyErrorResponse(keyID, err)
	}
	if !s.limit.Allow(req.NodeID, s.now()) {
		return protocol.KeyErrorResponse(keyID, fmt.Errorf("%w: too many key requests; slow down", protocol.ErrRateLimited))
	}
	g := s.answer(ctx, keyID, req.NodeID)
	resp := g.response(keyID)
	if resp.Error != "" {
		return resp
	}
	pk, err := protocol.PublicKeyOf(req.NodeID)
	if err != nil {
		return protocol.KeyErrorResponse(keyID, err)
	}
	if g.key != nil {
		sealed, err := protocol.SealKey(pk, g.key, protocol.KeySealInfo(keyID, req.NodeID))
		if err != nil {
			return protocol.KeyErrorResponse(keyID, err)
		}
		resp.Key, resp.SealedKey = "", base64.StdEncoding.EncodeToString(sealed)
	} else {
		sealed, err := protocol.SealKey(pk, g.share, protocol.ShareSealInfo(keyID, req.NodeID))
		if err != nil {
			return protocol.KeyErrorResponse(keyID, err)
		}
		resp.Share, resp.SealedShare = "", base64.StdEncoding.EncodeToString(sealed)
	}
	return resp
}

// grant is what a key request gets: a key or a share with its policy and
// end, or why not.
type grant struct {
	key, share []byte
	policy     *protocol.KeyPolicy
	expiresAt  int64
	err        error
	revokedAt  int64
	revocation *protocol.Revocation
}

func (g *grant) response(keyID string) *protocol.KeyResponse {
	switch {
	case g.revokedAt != 0:
		return protocol.KeyRevokedResponse(keyID, g.revokedAt, g.revocation)
	case g.err != nil:
		return protocol.KeyErrorResponse(keyID, g.err)
	case g.key != nil:
		return &protocol.KeyResponse{Type: protocol.MsgKeyResponse, KeyID: keyID, Key: base64.StdEncoding.EncodeToString(g.key), ExpiresAt: g.expiresAt, Policy: g.policy}
	default:
		return &protocol.KeyResponse{Type: protocol.MsgKeyResponse, KeyID: keyID, Share: base64.StdEncoding.EncodeToString(g.share), ExpiresAt: g.expiresAt, Policy: g.policy}
	}
}

// answer decides what requester gets for keyID: KEY_REVOKED for a key
// revoked (forever, checked first), this node's key if the policy admits
// the requester, else this node's escrow share if it holds one and the
// policy admits the requester, else NOT_FOUND.
func (s *Service) answer(ctx context.Context, keyID, requester string) *grant {
	if g := s.revokedGrant(ctx, keyID); g != nil {
		return g
	}
	own, ownErr := s.store.LessonKey(ctx, keyID)
	share, shareErr := s.store.EscrowShare(ctx, keyID)
	if ownErr != nil && shareErr != nil {
		if !isNotFound(ownErr) || !isNotFound(shareErr) {
			s.log.Warn("keys: read key material", "err", ownErr)
			return &grant{err: fmt.Errorf("%w: the node could not read its keys", protocol.ErrUnavailable)}
		}
		// Revoked in between (a revocation taken in by sync or gossip):
		// the key's deletion and its revocation mark are one write.
		if g := s.revokedGrant(ctx, keyID); g != nil {
			return g
		}
		return &grant{err: fmt.Errorf("%w: this node holds no key and no share of %s", protocol.ErrNotFound, keyID)}
	}
	// A node restored from a backup must not serve what it revoked since.
	if err := s.waitReady(ctx); err != nil {
		return &grant{err: err}
	}
	if g := s.revokedGrant(ctx, keyID); g != nil {
		return g
	}
	policy := share
	if ownErr == nil {
		policy = own.Policy
	}
	if g := s.lessonRevoked(ctx, policy); g != nil {
		return g
	}
	if err := s.admits(policy, requester); err != nil {
		return &grant{err: err}
	}
	expires := s.now().Add(s.cfg.KeyTTL).UnixMilli()
	if policy.ExpiresAt != 0 && policy.ExpiresAt < expires {
		expires = policy.ExpiresAt
	}
	expires, err := s.admitExtra(ctx, policy, requester, expires)
	if err != nil {
		return &grant{err: err}
	}
	if ownErr == nil {
		s.addReader(ctx, keyID, requester)
		return &grant{key: own.Key, policy: own.Policy, expiresAt: expires}
	}
	sh, err := share.Escrow.OpenShare(s.deps.Key, keyID)
	if err != nil {
		s.log.Warn("keys: an escrow share held does not open", "keyId", keyID, "err", err)
		return &grant{err: fmt.Errorf("%w: this node's share of %s does not open", protocol.ErrUnavailable, keyID)}
	}
	return &grant{share: sh, policy: share, expiresAt: expires}
}

// revokedGrant is the KEY_REVOKED answer for a key revoked, with the
// author's revocation of the lesson if the node holds it; nil if the key
// is not revoked.
func (s *Service) revokedGrant(ctx context.Context, keyID string) *grant {
	r, err := s.store.KeyRevoked(ctx, keyID)
	if err != nil {
		return nil
	}
	g := &grant{revokedAt: max(r.RevokedAt, 1)}
	if r.Reason == store.KeyRevokedHard && r.LessonID != "" {
		if rev, err := s.store.Tombstone(ctx, r.Key()); err == nil {
			g.revocation = rev
		}
	}
	return g
}

// lessonRevoked checks the tombstone of p's lesson: if it revokes the key,
// the key is revoked here and now (it should have been already), and the
// answer is KEY_REVOKED.
func (s *Service) lessonRevoked(ctx context.Context, p *protocol.KeyPolicy) *grant {
	rev, err := s.store.Tombstone(ctx, p.Key())
	if err != nil || !rev.RevokesKeyOf(p) {
		return nil
	}
	s.revokePolicies(ctx, rev, p)
	return &grant{revokedAt: rev.RevokedAt, revocation: rev}
}

// revokePolicies marks the keys of policies revoked by rev (their own
// keys or shares deleted), durably.
func (s *Service) revokePolicies(ctx context.Context, rev *protocol.Revocation, policies ...*protocol.KeyPolicy) {
	var marks []store.RevokedKey
	for _, p := range policies {
		if rev.RevokesKeyOf(p) {
			marks = append(marks, store.RevokedKey{KeyID: p.KeyID, LessonID: p.LessonID, NodeID: p.NodeID, RevokedAt: rev.RevokedAt, Reason: store.KeyRevokedHard})
		}
	}
	if len(marks) == 0 {
		return
	}
	if err := s.store.RevokeKeys(ctx, marks...); err != nil {
		s.log.Warn("keys: revoke keys", "err", err)
		return
	}
	for _, m := range marks {
		s.cache.forgetKey(m.KeyID)
	}
}

// OnRevocation acts on a verified revocation the node took in (gossip,
// sync, a notice, or its own): the keys it revokes are revoked here too
// (this node's, after a restore from backup; the escrow shares held, which
// are deleted), and a reader drops the keys and plaintext it held of the
// lesson. It is idempotent.
func (s *Service) OnRevocation(ctx context.Context, rev *protocol.Revocation) {
	s.cache.forgetLesson(rev.Key())
	if rev.NodeID == s.self {
		if _, err := s.KillKeys(ctx, rev); err != nil {
			s.log.Warn("keys: revoke own keys", "err", err)
		}
		return
	}
	shares, err := s.store.EscrowShares(ctx)
	if err != nil {
		s.log.Warn("keys: escrow shares", "err", err)
		return
	}
	var hit []*protocol.KeyPolicy
	for _, p := range shares {
		if p.Key() == rev.Key() {
			hit = append(hit, p)
		}
	}
	if len(hit) > 0 {
		s.revokePolicies(ctx, rev, hit...)
		s.log.Info("escrow shares deleted on revocation", "lesson", rev.LessonID, "shares", len(hit))
	}
}

// OnPublication acts on a newer publication of a lesson taken in: an
// encrypted one under another key retires the keys a reader holds of the
// older one (a rotation).
func (s *Service) OnPublication(el *protocol.EncryptedLesson) {
	s.cache.forgetLessonExcept(el.Key(), el.Encryption.KeyID)
}
