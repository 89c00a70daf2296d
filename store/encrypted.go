package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// Encrypted lessons. An EncryptedLesson is kept beside the signed forms,
// under the same key (lessonId@nodeId) and the same rules: the newest
// publishedAt of either form wins, a tombstone refuses both, public ones
// enter the sync log. Their words are in the ciphertext, so they are not
// in the full-text index: Search and List never return them. Nothing here
// decrypts, and no key is involved.

// PutRemoteEncrypted keeps a verified EncryptedLesson of another publisher
// in the remote cache, as PutRemote keeps a SignedLesson: the caller
// verified the signature; a public one enters the sync log; an equal or
// older publishedAt than the version held (signed or encrypted) is
// ErrStale, a revoked key ErrRevoked, a lesson of Options.SelfID
// ErrOwnLesson. A newer version replaces the one held, whichever its form.
func (s *Store) PutRemoteEncrypted(ctx context.Context, el *protocol.EncryptedLesson) error {
	err := s.putRemoteEncrypted(ctx, el)
	if err == nil {
		s.notifyUpdated()
	}
	return err
}

func (s *Store) putRemoteEncrypted(ctx context.Context, el *protocol.EncryptedLesson) error {
	if el == nil {
		return fmt.Errorf("store: put remote encrypted: %w", invalidf("lesson is nil"))
	}
	key := el.Key()
	id, node, err := protocol.ParseKey(key)
	if err != nil {
		return fmt.Errorf("store: put remote encrypted: %w", err)
	}
	if s.selfID != "" && node == s.selfID {
		return fmt.Errorf("store: put remote encrypted %s: %w", key, ErrOwnLesson)
	}
	stored, data, err := copyEncrypted(el)
	if err != nil {
		return fmt.Errorf("store: put remote encrypted %s: %w", key, err)
	}

	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: put remote encrypted %s: %w", key, err)
	}
	defer leave()
	unlock := s.lockIDs(key)
	defer unlock()

	s.fedMu.RLock()
	_, revoked := s.fed.tombs[key]
	old, held := s.fed.remote[key]
	s.fedMu.RUnlock()
	switch {
	case revoked:
		return fmt.Errorf("store: put remote encrypted %s: %w", key, ErrRevoked)
	case held && old.publishedAt >= stored.Publication.PublishedAt:
		return fmt.Errorf("store: put remote encrypted %s: %w", key, ErrStale)
	case stored.Publication.Expired(s.nowMS()):
		return fmt.Errorf("store: put remote encrypted %s: publication expired: %w", key, ErrStale)
	}

	public := stored.Publication.Visibility == protocol.VisibilityPublic
	var seq uint64
	if public {
		seq = s.allocSeq()
	}
	settled := false
	defer func() {
		if !settled {
			s.settle(seq, nil, nil)
		}
	}()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: put remote encrypted %s: %w", key, err)
	}
	var markers []ds.Key
	var meta *logMeta
	err = b.Put(ctx, encRemoteKey(node, id), data)
	if err == nil && public {
		meta = &logMeta{seq: seq, kind: kindEncRemote, key: key, at: stored.Publication.PublishedAt, topics: slices.Clone(stored.Publication.Topics)}
		err = b.Put(ctx, logKey(seq), encodeLogValue(meta))
	}
	if err == nil && held && old.seq != 0 {
		err = b.Delete(ctx, logKey(old.seq))
	}
	unindex := held && !old.enc // a signed version it supersedes: out of the index too
	if err == nil && unindex {
		err = b.Delete(ctx, remoteKey(node, id))
		if err == nil && s.indexDir != "" {
			k := s.markerKey(key)
			markers = append(markers, k)
			err = b.Put(ctx, k, markerValue)
		}
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: put remote encrypted %s: %w", key, err)
	}
	s.settle(seq, meta, func() {
		s.fed.remote[key] = version{publishedAt: stored.Publication.PublishedAt, expiresAt: stored.Publication.ExpiresAt, seq: seq, enc: true}
		if held && old.seq != 0 {
			s.fed.log.dead++
		}
	})
	settled = true
	if unindex && s.idx != nil {
		ib := s.idx.NewBatch()
		ib.Delete(key)
		s.applyIndex(ib, markers)
	}
	return nil
}

// copyEncrypted checks that el is well formed (not its signature) and
// returns a copy of it decoded from its encoding, and that encoding.
func copyEncrypted(el *protocol.EncryptedLesson) (*protocol.EncryptedLesson, []byte, error) {
	if err := el.Validate(); err != nil {
		return nil, nil, err
	}
	data, err := el.Encode()
	if err != nil {
		return nil, nil, err
	}
	if len(data) > protocol.MaxEncryptedLessonSize {
		return nil, nil, fmt.Errorf("%w: %w: %d bytes, the limit is %d", protocol.ErrInvalid, protocol.ErrTooLarge, len(data), protocol.MaxEncryptedLessonSize)
	}
	stored, err := decodeEncrypted(data)
	if err != nil {
		return nil, nil, err
	}
	return stored, data, nil
}

// decodeEncrypted decodes the stored form of an encrypted lesson (its JSON
// encoding) and checks it is well formed: what VerifyEncrypted checks but
// the signature and the clock.
func decodeEncrypted(data []byte) (*protocol.EncryptedLesson, error) {
	el, err := protocol.DecodeEncryptedLesson(data)
	if err != nil {
		return nil, err
	}
	if err := el.Validate(); err != nil {
		return nil, err
	}
	if !safeNodeID(el.Signature.NodeID) {
		return nil, invalidf("signature.nodeId %q is not a node id", truncate(el.Signature.NodeID))
	}
	return el, nil
}

// RemoteEncrypted returns a cached remote encrypted lesson by key
// (lessonId@nodeId); an error wrapping ErrNotFound if the cache holds none
// (it may hold the lesson signed: see Remote).
func (s *Store) RemoteEncrypted(ctx context.Context, key string) (*protocol.EncryptedLesson, error) {
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, fmt.Errorf("store: remote encrypted: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: remote encrypted %s: %w", key, err)
	}
	defer leave()
	el, err := s.loadRemoteEncrypted(ctx, key)
	if err == nil && el.Publication.Expired(s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: remote encrypted %s: %w", key, err)
	}
	return el, nil
}

// RemoteEncryptedOf calls fn with every unexpired encrypted lesson of
// publisher nodeID held in the remote cache (a sensor's readings a relay
// or a reader keeps), in no particular order, until fn returns false. At
// most limit are visited (0: all).
func (s *Store) RemoteEncryptedOf(ctx context.Context, nodeID string, limit int, fn func(*protocol.EncryptedLesson) bool) error {
	if !safeNodeID(nodeID) {
		return fmt.Errorf("store: remote encrypted of %s: %w", truncate(nodeID), invalidf("not a node ID"))
	}
	leave, err := s.beginRead()
	if err != nil {
		return fmt.Errorf("store: remote encrypted of %s: %w", nodeID, err)
	}
	defer leave()
	now := s.nowMS()
	var keys []string
	s.fedMu.RLock()
	for key, v := range s.fed.remote {
		if v.enc && (v.expiresAt == 0 || v.expiresAt > now) && strings.HasSuffix(key, "@"+nodeID) {
			keys = append(keys, key)
		}
	}
	s.fedMu.RUnlock()
	n := 0
	for _, key := range keys {
		if limit > 0 && n >= limit {
			break
		}
		el, err := s.loadRemoteEncrypted(ctx, key)
		if err != nil {
			continue // swept or replaced meanwhile
		}
		n++
		if !fn(el) {
			break
		}
	}
	return nil
}

// sweepEncrypted deletes the remote encrypted lessons whose publication
// expired (their ciphertext: the holder cannot see the record's own
// expires_at, so the signed publication's expiresAt says when).
func (s *Store) sweepEncrypted(ctx context.Context) (int, error) {
	leave, err := s.beginWrite()
	if err != nil {
		return 0, err
	}
	defer leave()
	now := s.nowMS()
	var keys []string
	s.fedMu.RLock()
	for key, v := range s.fed.remote {
		if v.enc && v.expiresAt != 0 && v.expiresAt <= now {
			keys = append(keys, key)
		}
	}
	s.fedMu.RUnlock()
	if len(keys) == 0 {
		return 0, nil
	}
	unlock := s.lockIDs(keys...)
	defer unlock()
	// Check again under the locks: a newer version may have come.
	gone := keys[:0]
	s.fedMu.RLock()
	for _, key := range keys {
		if v, ok := s.fed.remote[key]; ok && v.enc && v.expiresAt != 0 && v.expiresAt <= now {
			gone = append(gone, key)
		}
	}
	s.fedMu.RUnlock()
	if len(gone) == 0 {
		return 0, nil
	}
	if err := s.deleteRemoteLocked(ctx, gone); err != nil {
		return 0, err
	}
	return len(gone), nil
}

func (s *Store) loadRemoteEncrypted(ctx context.Context, key string) (*protocol.EncryptedLesson, error) {
	if _, _, ok := splitKey(key); !ok {
		return nil, ErrNotFound
	}
	data, err := s.ds.Get(ctx, keyPath(nsEncRemote, key))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	el, err := decodeEncrypted(data)
	if err == nil && el.Key() != key {
		err = fmt.Errorf("it has key %q", truncate(el.Key()))
	}
	if err != nil {
		return nil, fmt.Errorf("stored remote encrypted lesson is damaged: %w", err)
	}
	return el, nil
}

// PutEncryptedPublication stores this node's encrypted publication of one
// of its records, as PutPublication stores a signed one, in one durable
// commit: the record el.LessonID must exist (and not be expired); its
// visibility becomes the publication's. It replaces any earlier
// publication of the record, signed or encrypted: the signed one is
// deleted, so the record's words are no longer served in the clear. A
// public one enters the sync log. A revoked key stays revoked (ErrRevoked).
// The store keeps no key: the caller keeps it (PutLessonKey) before it
// publishes.
func (s *Store) PutEncryptedPublication(ctx context.Context, el *protocol.EncryptedLesson) error {
	if el == nil {
		return invalidf("put encrypted publication: publication is nil")
	}
	id := el.LessonID
	if err := protocol.ValidateID(id); err != nil {
		return fmt.Errorf("store: put encrypted publication: lesson: %w", err)
	}
	stored, data, err := copyEncrypted(el)
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: %w", id, err)
	}
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: %w", id, err)
	}
	defer leave()
	unlock := s.lockIDs(id)
	defer unlock()
	key := stored.Key()
	s.fedMu.RLock()
	_, revoked := s.fed.tombs[key]
	old, held := s.fed.own[id]
	s.fedMu.RUnlock()
	if revoked {
		return fmt.Errorf("store: put encrypted publication %s: %w", key, ErrRevoked)
	}
	rec, err := s.load(ctx, id)
	if err == nil && expired(rec, s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: record: %w", id, err)
	}
	rec.Visibility = stored.Publication.Visibility
	recData, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: %w", id, err)
	}
	public := stored.Publication.Visibility == protocol.VisibilityPublic
	var seq uint64
	var meta *logMeta
	if public {
		seq = s.allocSeq()
		meta = &logMeta{seq: seq, kind: kindEncPublication, key: key, at: stored.Publication.PublishedAt, topics: slices.Clone(stored.Publication.Topics)}
	}
	settled := false
	defer func() {
		if !settled {
			s.settle(seq, nil, nil)
		}
	}()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: %w", id, err)
	}
	var markers []ds.Key
	err = b.Put(ctx, epubKey(id), data)
	if err == nil {
		err = b.Delete(ctx, pubKey(id)) // the words are no longer published in the clear
	}
	if err == nil {
		err = b.Put(ctx, recordKey(id), recData)
	}
	if err == nil && public {
		err = b.Put(ctx, logKey(seq), encodeLogValue(meta))
	}
	if err == nil && held && old.seq != 0 {
		err = b.Delete(ctx, logKey(old.seq))
	}
	if err == nil && s.indexDir != "" {
		k := s.markerKey(id)
		err = b.Put(ctx, k, markerValue)
		markers = append(markers, k)
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: put encrypted publication %s: %w", id, err)
	}
	s.settle(seq, meta, func() {
		s.fed.own[id] = version{publishedAt: stored.Publication.PublishedAt, expiresAt: stored.Publication.ExpiresAt, seq: seq, nodeID: stored.Signature.NodeID, enc: true}
		if held && old.seq != 0 {
			s.fed.log.dead++
		}
	})
	settled = true
	if s.idx != nil {
		ib := s.idx.NewBatch()
		if err := ib.IndexAdvanced(s.an.buildDoc(rec)); err == nil {
			s.applyIndex(ib, markers)
		}
	}
	return nil
}

// EncryptedPublication returns this node's encrypted publication of record
// id; an error wrapping ErrNotFound if there is none (the record may be
// published signed: see Publication), or if the record is gone or expired.
func (s *Store) EncryptedPublication(ctx context.Context, id string) (*protocol.EncryptedLesson, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, fmt.Errorf("store: encrypted publication: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: encrypted publication %s: %w", id, err)
	}
	defer leave()
	rec, err := s.load(ctx, id)
	if err == nil && expired(rec, s.nowMS()) {
		err = ErrNotFound
	}
	if err == nil {
		var el *protocol.EncryptedLesson
		if el, err = s.loadEncryptedPublication(ctx, id); err == nil {
			return el, nil
		}
	}
	return nil, fmt.Errorf("store: encrypted publication %s: %w", id, err)
}

func (s *Store) loadEncryptedPublication(ctx context.Context, id string) (*protocol.EncryptedLesson, error) {
	data, err := s.ds.Get(ctx, epubKey(id))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	el, err := decodeEncrypted(data)
	if err == nil && el.LessonID != id {
		err = fmt.Errorf("it is lesson %q", truncate(el.LessonID))
	}
	if err != nil {
		return nil, fmt.Errorf("stored encrypted publication is damaged: %w", err)
	}
	return el, nil
}

// Encrypted reports whether the version held for key (lessonId@nodeId),
// own or remote, is an EncryptedLesson. It reads memory only.
func (s *Store) Encrypted(key string) bool {
	id, node, ok := splitKey(key)
	if !ok {
		return false
	}
	s.fedMu.RLock()
	defer s.fedMu.RUnlock()
	if v, held := s.fed.own[id]; held && v.nodeID == node {
		return v.enc
	}
	v, held := s.fed.remote[key]
	return held && v.enc
}
