package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Epoch keys. A sensor stream encrypts its readings under one key per
// epoch rather than one per reading: the key is an ordinary lesson key of
// this node (store.LessonKey), made for a stream record's ID instead of
// a lesson's, with the same signed policy, key server, readers' memory
// and revocation. A reader fetches an epoch's key once and reads every
// reading of that epoch with it; a new epoch (NewEpoch again) shuts out a
// reader the new policy does not name, from the next reading on.

// NewEpoch makes a new key for the stream record streamID under opts,
// signs its policy and keeps both durably, and returns the policy. The
// caller encrypts readings under it with EncryptUnder.
func (s *Service) NewEpoch(ctx context.Context, streamID string, opts api.PolicyOptions) (*protocol.KeyPolicy, error) {
	keyID, key := protocol.NewKeyID(), protocol.NewLessonKey()
	defer clear(key)
	policy, err := s.policyOf(keyID, streamID, key, opts)
	if err != nil {
		return nil, fmt.Errorf("epoch %s: %w", streamID, err)
	}
	now := s.now()
	signed, err := protocol.SignKeyPolicy(s.deps.Key, *policy, now)
	if err != nil {
		return nil, fmt.Errorf("epoch %s: %w", streamID, err)
	}
	if err := s.store.PutLessonKey(ctx, &store.LessonKey{KeyID: keyID, LessonID: streamID, Key: append([]byte(nil), key...), Policy: signed, CreatedAt: now.UnixMilli()}); err != nil {
		return nil, fmt.Errorf("epoch %s: keep the key: %w", streamID, err)
	}
	return signed, nil
}

// EpochKey returns a copy of this node's live key keyID (to encrypt many
// readings without reading the store each time). The caller clears it
// when done.
func (s *Service) EpochKey(ctx context.Context, keyID string) ([]byte, error) {
	k, err := s.currentKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), k.Key...), nil
}

// EncryptUnder encrypts rec under key (this node's key keyID, from
// EpochKey) and signs it as published with pub.
func (s *Service) EncryptUnder(key []byte, keyID string, rec *protocol.Lesson, pub protocol.Publication) (*protocol.EncryptedLesson, error) {
	el, err := protocol.EncryptLesson(key, rec, protocol.EncryptParams{NodeID: s.self, KeyID: keyID})
	if err != nil {
		return nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	if el, err = protocol.SignEncrypted(s.deps.Key, el, pub, s.now()); err != nil {
		return nil, fmt.Errorf("encrypt %s: %w", rec.ID, err)
	}
	return el, nil
}

// RetireKeys marks this node's keys revoked (reason), durably: they are
// answered KEY_REVOKED from then on. An epoch whose readings have all
// expired is retired so.
func (s *Service) RetireKeys(ctx context.Context, reason string, keyIDs ...string) error {
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	var marks []store.RevokedKey
	for _, id := range keyIDs {
		k, err := s.store.LessonKey(ctx, id)
		if err != nil {
			continue
		}
		marks = append(marks, store.RevokedKey{KeyID: id, LessonID: k.LessonID, NodeID: s.self, RevokedAt: s.now().UnixMilli(), Reason: reason})
	}
	if len(marks) == 0 {
		return nil
	}
	if err := s.store.RevokeKeys(ctx, marks...); err != nil {
		return err
	}
	for _, m := range marks {
		s.cache.forgetKey(m.KeyID)
	}
	return nil
}

// admitExtra runs Deps.Admit, if any, after the policy admitted requester:
// an error refuses the key, a non-zero end caps the answer's expiresAt.
func (s *Service) admitExtra(ctx context.Context, p *protocol.KeyPolicy, requester string, expires int64) (int64, error) {
	if s.deps.Admit == nil || requester == s.self || p.NodeID != s.self {
		return expires, nil
	}
	until, err := s.deps.Admit(ctx, p, requester)
	if err != nil {
		return 0, err
	}
	if until != 0 && until < expires {
		expires = until
	}
	if expires <= s.now().UnixMilli() {
		return 0, fmt.Errorf("key %s: %w: the grant of %s ended at %s", p.KeyID, protocol.ErrAccessDenied, requester, time.UnixMilli(until).UTC().Format(time.RFC3339))
	}
	return expires, nil
}
