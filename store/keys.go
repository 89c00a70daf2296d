package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/meshprotocol/mesh/protocol"
)

// Key material at rest: the lesson keys this node made for its encrypted
// publications, the keys it revoked (forever), and the escrow shares it
// holds for other nodes. Every write is one durable commit. The store never
// logs a key, and nothing here leaves the node by itself: the keys
// subsystem decides who gets what.

// MaxKeyReaders caps the readers remembered per key (LessonKey.Readers).
const MaxKeyReaders = 1024

// LessonKey is a key this node made for one of its lessons, with the
// policy it is served under.
type LessonKey struct {
	KeyID    string `json:"keyId"`
	LessonID string `json:"lessonId"`
	// Key is the AES-256 key, protocol.LessonKeySize bytes.
	Key []byte `json:"key"`
	// Policy is the author's signed policy of the key (it names KeyID and
	// LessonID).
	Policy *protocol.KeyPolicy `json:"policy"`
	// Readers are the nodes the key was given to (at most MaxKeyReaders,
	// the first ones): a hard revoke is pushed to them.
	Readers []string `json:"readers,omitempty"`
	// CreatedAt is when the key was made, Unix ms.
	CreatedAt int64 `json:"createdAt"`
}

// Reasons of a RevokedKey.
const (
	// KeyRevokedHard: the lesson was revoked, and every key of it with it.
	KeyRevokedHard = "revoked"
	// KeyRetired: a rotation replaced the key with a new one.
	KeyRetired = "rotated"
)

// RevokedKey says that a key is revoked: it is answered KEY_REVOKED, and no
// share of it is served, forever.
type RevokedKey struct {
	KeyID    string `json:"keyId"`
	LessonID string `json:"lessonId"`
	// NodeID is the key's author.
	NodeID string `json:"nodeId"`
	// RevokedAt is when, Unix ms: the revocation's revokedAt, or the time
	// of the rotation.
	RevokedAt int64 `json:"revokedAt"`
	// Reason is KeyRevokedHard or KeyRetired.
	Reason string `json:"reason"`
}

// Key returns the key of the lesson the key was for, lessonId@nodeId.
func (r *RevokedKey) Key() string { return r.LessonID + "@" + r.NodeID }

func ownKeyKey(keyID string) ds.Key     { return ds.RawKey(nsKeysOwn + keyID) }
func revokedKeyKey(keyID string) ds.Key { return ds.RawKey(nsKeysRevoked + keyID) }
func escrowKeyKey(keyID string) ds.Key  { return ds.RawKey(nsKeysEscrow + keyID) }

// maxKeyRecordSize caps a stored key record: a policy and the readers.
const maxKeyRecordSize = protocol.MaxKeyPolicySize + MaxKeyReaders*64 + 4<<10

// PutLessonKey keeps (or replaces) one of this node's lesson keys, durably.
// A revoked key ID is refused with ErrRevoked: it never comes back.
func (s *Store) PutLessonKey(ctx context.Context, k *LessonKey) error {
	if k == nil || k.Policy == nil {
		return invalidf("put lesson key: key or policy is nil")
	}
	if err := protocol.ValidateID(k.KeyID); err != nil {
		return fmt.Errorf("store: put lesson key: %w", err)
	}
	if len(k.Key) != protocol.LessonKeySize || k.Policy.KeyID != k.KeyID || k.Policy.LessonID != k.LessonID || len(k.Readers) > MaxKeyReaders {
		return fmt.Errorf("store: put lesson key %s: %w", k.KeyID, invalidf("a %d-byte key, its policy's keyId and lessonId, at most %d readers", protocol.LessonKeySize, MaxKeyReaders))
	}
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("store: put lesson key %s: %w", k.KeyID, err)
	}
	return s.putKeyRecord(ctx, "lesson key", k.KeyID, ownKeyKey(k.KeyID), data)
}

// putKeyRecord writes a key record unless its key ID is revoked.
func (s *Store) putKeyRecord(ctx context.Context, what, keyID string, k ds.Key, data []byte) error {
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: put %s %s: %w", what, keyID, err)
	}
	defer leave()
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if ok, err := s.ds.Has(ctx, revokedKeyKey(keyID)); err != nil || ok {
		if err == nil {
			err = ErrRevoked
		}
		return fmt.Errorf("store: put %s %s: %w", what, keyID, err)
	}
	if err := s.ds.Put(ctx, k, data); err != nil {
		return fmt.Errorf("store: put %s %s: %w", what, keyID, err)
	}
	return nil
}

// LessonKey returns one of this node's lesson keys; an error wrapping
// ErrNotFound if there is none (never made, or revoked: see KeyRevoked).
func (s *Store) LessonKey(ctx context.Context, keyID string) (*LessonKey, error) {
	var k LessonKey
	if err := s.getKeyRecord(ctx, "lesson key", keyID, ownKeyKey(keyID), &k); err != nil {
		return nil, err
	}
	if k.KeyID != keyID || len(k.Key) != protocol.LessonKeySize || k.Policy == nil {
		return nil, fmt.Errorf("store: lesson key %s: stored key is damaged", keyID)
	}
	return &k, nil
}

// LessonKeys returns this node's lesson keys, by key ID.
func (s *Store) LessonKeys(ctx context.Context) ([]*LessonKey, error) {
	var out []*LessonKey
	err := s.listKeyRecords(ctx, "lesson keys", nsKeysOwn, func(id string, data []byte) {
		var k LessonKey
		if err := json.Unmarshal(data, &k); err != nil || k.KeyID != id || k.Policy == nil {
			s.log.Warn("lesson key unreadable", "keyId", truncate(id))
			return
		}
		out = append(out, &k)
	})
	return out, err
}

// PutEscrowShare keeps the policy that holds this node's escrow share of
// another node's key (p.Escrow has the share, sealed to this node), in
// place of any it held for that key ID. The caller verified the policy. A
// revoked key ID is refused with ErrRevoked.
func (s *Store) PutEscrowShare(ctx context.Context, p *protocol.KeyPolicy) error {
	if p == nil || p.Escrow == nil {
		return invalidf("put escrow share: no policy, or no escrow in it")
	}
	data, err := p.Encode()
	if err != nil {
		return fmt.Errorf("store: put escrow share %s: %w", p.KeyID, err)
	}
	if _, err := protocol.DecodeKeyPolicy(data); err != nil {
		return fmt.Errorf("store: put escrow share %s: %w", p.KeyID, err)
	}
	// Before the write: a listing that could see the share sees the flag.
	s.mayEscrow.Store(true)
	return s.putKeyRecord(ctx, "escrow share", p.KeyID, escrowKeyKey(p.KeyID), data)
}

// noteEscrow sets mayEscrow if the datastore holds an escrow share.
func (s *Store) noteEscrow(ctx context.Context) error {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: nsKeysEscrow, KeysOnly: true, Limit: 1})
	if err != nil {
		return fmt.Errorf("store: escrow shares: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("store: escrow shares: %w", r.Error)
		}
		s.mayEscrow.Store(true)
	}
	return nil
}

// EscrowShare returns the policy holding this node's escrow share of keyID;
// an error wrapping ErrNotFound if it holds none.
func (s *Store) EscrowShare(ctx context.Context, keyID string) (*protocol.KeyPolicy, error) {
	var raw json.RawMessage
	if err := s.getKeyRecord(ctx, "escrow share", keyID, escrowKeyKey(keyID), &raw); err != nil {
		return nil, err
	}
	p, err := protocol.DecodeKeyPolicy(raw)
	if err != nil || p.KeyID != keyID {
		return nil, fmt.Errorf("store: escrow share %s: stored policy is damaged: %v", keyID, err)
	}
	return p, nil
}

// EscrowShares returns the policies of every escrow share this node holds.
// A store that has held none since it was opened answers without reading
// the datastore.
func (s *Store) EscrowShares(ctx context.Context) ([]*protocol.KeyPolicy, error) {
	if !s.mayEscrow.Load() {
		leave, err := s.beginRead() // a closed store still says so
		if err != nil {
			return nil, fmt.Errorf("store: escrow shares: %w", err)
		}
		leave()
		return nil, nil
	}
	var out []*protocol.KeyPolicy
	err := s.listKeyRecords(ctx, "escrow shares", nsKeysEscrow, func(id string, data []byte) {
		p, err := protocol.DecodeKeyPolicy(data)
		if err != nil || p.KeyID != id {
			s.log.Warn("escrow share unreadable", "keyId", truncate(id))
			return
		}
		out = append(out, p)
	})
	return out, err
}

// DeleteEscrowShare durably deletes the escrow share held for keyID, if
// any.
func (s *Store) DeleteEscrowShare(ctx context.Context, keyID string) error {
	if err := protocol.ValidateID(keyID); err != nil {
		return fmt.Errorf("store: delete escrow share: %w", err)
	}
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: delete escrow share %s: %w", keyID, err)
	}
	defer leave()
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if err := s.ds.Delete(ctx, escrowKeyKey(keyID)); err != nil {
		return fmt.Errorf("store: delete escrow share %s: %w", keyID, err)
	}
	return nil
}

// RevokeKeys marks keys revoked, forever, and deletes what this node held
// of them (its lesson key, its escrow share), in one durable commit: once
// it returns, the keys are gone and KeyRevoked says so across restarts and
// crashes. A key already revoked keeps its first RevokedKey; revoking it
// again is not an error.
func (s *Store) RevokeKeys(ctx context.Context, keys ...RevokedKey) error {
	for _, k := range keys {
		if err := protocol.ValidateID(k.KeyID); err != nil {
			return fmt.Errorf("store: revoke key: %w", err)
		}
		if k.RevokedAt <= 0 || (k.Reason != KeyRevokedHard && k.Reason != KeyRetired) {
			return fmt.Errorf("store: revoke key %s: %w", k.KeyID, invalidf("want revokedAt and a reason (%s or %s)", KeyRevokedHard, KeyRetired))
		}
	}
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: revoke keys: %w", err)
	}
	defer leave()
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: revoke keys: %w", err)
	}
	for _, k := range keys {
		has, err := s.ds.Has(ctx, revokedKeyKey(k.KeyID))
		if err != nil {
			return fmt.Errorf("store: revoke key %s: %w", k.KeyID, err)
		}
		if !has {
			data, _ := json.Marshal(k)
			if err := b.Put(ctx, revokedKeyKey(k.KeyID), data); err != nil {
				return fmt.Errorf("store: revoke key %s: %w", k.KeyID, err)
			}
		}
		if err := b.Delete(ctx, ownKeyKey(k.KeyID)); err != nil {
			return fmt.Errorf("store: revoke key %s: %w", k.KeyID, err)
		}
		if err := b.Delete(ctx, escrowKeyKey(k.KeyID)); err != nil {
			return fmt.Errorf("store: revoke key %s: %w", k.KeyID, err)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("store: revoke keys: %w", err)
	}
	return nil
}

// KeyRevoked returns how keyID was revoked; an error wrapping ErrNotFound
// if it was not.
func (s *Store) KeyRevoked(ctx context.Context, keyID string) (*RevokedKey, error) {
	var r RevokedKey
	if err := s.getKeyRecord(ctx, "revoked key", keyID, revokedKeyKey(keyID), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// RevokedKeys returns every key this node knows revoked.
func (s *Store) RevokedKeys(ctx context.Context) ([]RevokedKey, error) {
	var out []RevokedKey
	err := s.listKeyRecords(ctx, "revoked keys", nsKeysRevoked, func(id string, data []byte) {
		var r RevokedKey
		if err := json.Unmarshal(data, &r); err != nil || r.KeyID != id {
			// Keep it revoked all the same: refusing a key is safer.
			r = RevokedKey{KeyID: id, Reason: KeyRevokedHard}
		}
		out = append(out, r)
	})
	return out, err
}

func (s *Store) getKeyRecord(ctx context.Context, what, keyID string, k ds.Key, v any) error {
	if err := protocol.ValidateID(keyID); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", what, keyID, err)
	}
	defer leave()
	data, err := s.ds.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		err = ErrNotFound
	}
	if err == nil && len(data) > maxKeyRecordSize {
		err = fmt.Errorf("stored record is %d bytes", len(data))
	}
	if err == nil {
		if jerr := json.Unmarshal(data, v); jerr != nil {
			err = fmt.Errorf("stored record is damaged: %w", jerr)
		}
	}
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", what, keyID, err)
	}
	return nil
}

func (s *Store) listKeyRecords(ctx context.Context, what, prefix string, fn func(id string, data []byte)) error {
	leave, err := s.beginRead()
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer leave()
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: prefix})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer res.Close()
	type kv struct {
		id   string
		data []byte
	}
	var all []kv
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("store: %s: %w", what, r.Error)
		}
		id := r.Key[len(prefix):]
		if protocol.ValidateID(id) != nil || len(r.Value) > maxKeyRecordSize {
			s.log.Warn("skipping malformed key record", "what", what)
			continue
		}
		all = append(all, kv{id, r.Value})
	}
	slices.SortFunc(all, func(a, b kv) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	for _, x := range all {
		fn(x.id, x.data)
	}
	return nil
}
