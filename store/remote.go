package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"

	"github.com/meshprotocol/mesh/protocol"
)

// version is what the store remembers in memory of a publication it holds:
// enough to answer HeldVersion, skip superseded log entries and hide
// expired lessons without reading the datastore.
type version struct {
	publishedAt int64
	expiresAt   int64  // the signed lesson's expires_at, 0 = never
	seq         uint64 // of its log entry; 0 = not in the log (unlisted)
	nodeID      string // own publications: the signer (the key is id@nodeID)
	enc         bool   // an EncryptedLesson (in /epub/ or /eremote/), not a SignedLesson
}

// tombInfo is what the store remembers in memory of a tombstone.
type tombInfo struct {
	revokedAt int64
	seq       uint64 // of its log entry
}

// fedState is the in-memory federation state of a Store, loaded at Open.
// It is guarded by Store.fedMu.
type fedState struct {
	remote map[string]version  // lessonId@nodeId -> cached remote lesson
	own    map[string]version  // record id -> this node's publication of it
	tombs  map[string]tombInfo // lessonId@nodeId -> tombstone
	log    logIndex
}

func remoteKey(nodeID, id string) ds.Key    { return ds.RawKey(nsRemote + nodeID + "/" + id) }
func encRemoteKey(nodeID, id string) ds.Key { return ds.RawKey(nsEncRemote + nodeID + "/" + id) }
func tombKey(nodeID, id string) ds.Key      { return ds.RawKey(nsTomb + nodeID + "/" + id) }

// isRemoteDoc reports whether an index document id is the key of a remote
// lesson (lessonId@nodeId) rather than a record id.
func isRemoteDoc(docID string) bool { return strings.IndexByte(docID, '@') >= 0 }

// splitKey splits lessonId@nodeId at the last '@' without checking either
// part; ok is false if there is no '@' or a part is empty.
func splitKey(key string) (id, nodeID string, ok bool) {
	i := strings.LastIndexByte(key, '@')
	if i <= 0 || i == len(key)-1 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// keyPath returns the datastore key of a remote lesson or tombstone from a
// key already checked by protocol.ParseKey.
func keyPath(ns, key string) ds.Key {
	id, node, _ := splitKey(key)
	return ds.RawKey(ns + node + "/" + id)
}

// keyFromPath turns the rest of a /remote/ or /tomb/ key, <nodeId>/<id>,
// back into lessonId@nodeId.
func keyFromPath(rest string) (string, bool) {
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 || strings.IndexByte(rest[i+1:], '/') >= 0 {
		return "", false
	}
	return rest[i+1:] + "@" + rest[:i], true
}

// PutRemote keeps a verified SignedLesson of another publisher in the remote
// cache. The caller verified the signature; the store checks nothing
// cryptographic, only that the lesson is well formed.
//
// The lesson is indexed: Search and List find it when Query.Origin asks for
// remote lessons. A public lesson enters the sync log (see Log); an unlisted
// one does not. The newest publication.publishedAt of a key (lessonId@nodeId)
// wins: PutRemote of an equal or older version, or of a lesson that has
// already expired, returns an error wrapping ErrStale and writes nothing; of
// a revoked key, ErrRevoked; of a lesson signed by Options.SelfID,
// ErrOwnLesson. It returns nil when the lesson is stored, durably.
func (s *Store) PutRemote(ctx context.Context, sl *protocol.SignedLesson) error {
	err := s.putRemote(ctx, sl)
	if err == nil {
		s.notifyUpdated()
	}
	return err
}

func (s *Store) putRemote(ctx context.Context, sl *protocol.SignedLesson) error {
	if sl == nil {
		return fmt.Errorf("store: put remote: %w", invalidf("lesson is nil"))
	}
	key := sl.Key()
	id, node, err := protocol.ParseKey(key)
	if err != nil {
		return fmt.Errorf("store: put remote: %w", err)
	}
	if s.selfID != "" && node == s.selfID {
		return fmt.Errorf("store: put remote %s: %w", key, ErrOwnLesson)
	}
	if err := sl.Publication.Validate(); err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}
	if err := sl.Lesson.Validate(); err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}
	data, err := sl.Encode()
	if err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}
	if len(data) > protocol.MaxSignedLessonSize {
		return fmt.Errorf("store: put remote %s: %w: %w: %d bytes, the limit is %d", key, protocol.ErrInvalid, protocol.ErrTooLarge, len(data), protocol.MaxSignedLessonSize)
	}
	if expired(&sl.Lesson, s.nowMS()) {
		return fmt.Errorf("store: put remote %s: lesson expired: %w", key, ErrStale)
	}
	// Keep a copy: the caller may change sl after we return.
	stored, err := protocol.DecodeSignedLesson(data)
	if err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}

	leave, err := s.beginAdd()
	if err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
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
		return fmt.Errorf("store: put remote %s: %w", key, ErrRevoked)
	case held && old.publishedAt >= stored.Publication.PublishedAt:
		return fmt.Errorf("store: put remote %s: %w", key, ErrStale)
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
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}
	var markers []ds.Key
	var meta *logMeta
	err = b.Put(ctx, remoteKey(node, id), data)
	if err == nil && public {
		meta = &logMeta{seq: seq, kind: kindRemote, key: key, at: stored.Publication.PublishedAt, topics: stored.Publication.Topics}
		err = b.Put(ctx, logKey(seq), encodeLogValue(meta))
	}
	if err == nil && held && old.seq != 0 {
		err = b.Delete(ctx, logKey(old.seq))
	}
	if err == nil && held && old.enc {
		err = b.Delete(ctx, encRemoteKey(node, id)) // superseded by this signed version
	}
	if err == nil && s.indexDir != "" {
		k := s.markerKey(key)
		markers = append(markers, k)
		err = b.Put(ctx, k, markerValue)
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: put remote %s: %w", key, err)
	}
	s.settle(seq, meta, func() {
		s.fed.remote[key] = version{publishedAt: stored.Publication.PublishedAt, expiresAt: stored.Lesson.ExpiresAt, seq: seq}
		if held && old.seq != 0 {
			s.fed.log.dead++
		}
	})
	settled = true
	if s.idx != nil {
		doc := s.an.buildRemoteDoc(stored)
		if err := s.queueIndex(func(b *bleve.Batch) error { return b.IndexAdvanced(doc) }, markers); err != nil {
			s.log.Error("index update failed, will replay on next open", "err", err)
		}
	}
	return nil
}

// Remote returns a cached remote lesson by key (lessonId@nodeId). A key not
// in the cache, or whose lesson has expired, gives an error wrapping
// ErrNotFound.
func (s *Store) Remote(ctx context.Context, key string) (*protocol.SignedLesson, error) {
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, fmt.Errorf("store: remote: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: remote %s: %w", key, err)
	}
	defer leave()
	sl, err := s.loadRemote(ctx, key)
	if err == nil && expired(&sl.Lesson, s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: remote %s: %w", key, err)
	}
	return sl, nil
}

// loadRemote reads and decodes a cached remote lesson, expired or not.
// Missing: ErrNotFound.
func (s *Store) loadRemote(ctx context.Context, key string) (*protocol.SignedLesson, error) {
	sl, _, err := s.loadRemoteData(ctx, key)
	return sl, err
}

// loadRemoteData is loadRemote that also returns the stored bytes, the
// lesson's JSON encoding.
func (s *Store) loadRemoteData(ctx context.Context, key string) (*protocol.SignedLesson, []byte, error) {
	if _, _, ok := splitKey(key); !ok {
		return nil, nil, ErrNotFound
	}
	data, err := s.ds.Get(ctx, keyPath(nsRemote, key))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	sl, err := decodeRemote(data)
	if err == nil && sl.Key() != key {
		err = fmt.Errorf("it has key %q", truncate(sl.Key()))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("stored remote lesson is damaged: %w", err)
	}
	return sl, data, nil
}

// decodeRemote decodes the stored form of a remote lesson (its JSON
// encoding) and checks it is well formed.
func decodeRemote(data []byte) (*protocol.SignedLesson, error) {
	sl, err := protocol.DecodeSignedLesson(data)
	if err != nil {
		return nil, err
	}
	if err := protocol.ValidateID(sl.Lesson.ID); err != nil {
		return nil, err
	}
	if err := sl.Lesson.Validate(); err != nil {
		return nil, err
	}
	if err := sl.Publication.Validate(); err != nil {
		return nil, err
	}
	if !safeNodeID(sl.Signature.NodeID) {
		return nil, invalidf("signature.nodeId %q is not a node id", truncate(sl.Signature.NodeID))
	}
	return sl, nil
}

// safeNodeID is a cheap check that a node ID can be part of a datastore key:
// 1 to 128 base58 characters. protocol.ParseKey checks it properly.
func safeNodeID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// HeldVersion returns the publication.publishedAt of the version held for
// key (lessonId@nodeId): of the remote cache, or of this node's own
// publication when the key's node is Options.SelfID (or the node that
// signed it). It reads memory only, so it is cheap enough for every gossip
// message. ok is false if no version is held.
func (s *Store) HeldVersion(ctx context.Context, key string) (publishedAt int64, ok bool) {
	id, node, valid := splitKey(key)
	if !valid {
		return 0, false
	}
	s.fedMu.RLock()
	defer s.fedMu.RUnlock()
	if s.selfID == "" || node == s.selfID {
		if v, held := s.fed.own[id]; held && v.nodeID == node {
			return v.publishedAt, true
		}
	}
	if v, held := s.fed.remote[key]; held {
		return v.publishedAt, true
	}
	return 0, false
}

// Revoke applies a verified revocation (the caller checked the signature):
// it keeps the revocation as the tombstone of rev.Key() and deletes the
// remote copy of the lesson, or, when rev.NodeID is Options.SelfID, this
// node's publication of the record; the record itself stays, made private.
// All of it is one durable commit. The tombstone enters the sync log.
//
// A revocation may arrive before the lesson, or without it: the tombstone
// is kept all the same, and PutRemote refuses the lesson later. Revoke of a
// key that already has a tombstone returns an error wrapping
// ErrAlreadyRevoked and changes nothing.
func (s *Store) Revoke(ctx context.Context, rev *protocol.Revocation) error {
	err := s.revoke(ctx, rev)
	if err == nil {
		s.notifyUpdated()
	}
	return err
}

func (s *Store) revoke(ctx context.Context, rev *protocol.Revocation) error {
	if rev == nil {
		return fmt.Errorf("store: revoke: %w", invalidf("revocation is nil"))
	}
	key := rev.Key()
	id, node, err := protocol.ParseKey(key)
	if err != nil {
		return fmt.Errorf("store: revoke: %w", err)
	}
	data, err := json.Marshal(rev)
	if err != nil {
		return fmt.Errorf("store: revoke %s: %w", key, err)
	}
	// The stored form must decode: that checks type, reason, revokedAt and
	// the size cap, and makes the tombstone a copy of rev.
	stored, err := protocol.DecodeRevocation(data)
	if err != nil {
		return fmt.Errorf("store: revoke %s: %w", key, err)
	}

	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: revoke %s: %w", key, err)
	}
	defer leave()
	s.fedMu.RLock()
	ownPub, isOwn := s.fed.own[id]
	s.fedMu.RUnlock()
	own := (s.selfID != "" && node == s.selfID) || (isOwn && ownPub.nodeID == node)
	var unlock func()
	if own {
		unlock = s.lockIDs(key, id)
	} else {
		unlock = s.lockIDs(key)
	}
	defer unlock()

	s.fedMu.RLock()
	_, revoked := s.fed.tombs[key]
	oldRemote, heldRemote := s.fed.remote[key]
	oldOwn, heldOwn := s.fed.own[id]
	s.fedMu.RUnlock()
	if revoked {
		return fmt.Errorf("store: revoke %s: %w", key, ErrAlreadyRevoked)
	}
	heldOwn = own && heldOwn && oldOwn.nodeID == node

	var rec *protocol.Lesson // own record made private
	if own {
		r, err := s.load(ctx, id)
		switch {
		case err == nil && visibilityOf(r) != protocol.VisibilityPrivate:
			r.Visibility = protocol.VisibilityPrivate
			rec = r
		case err == nil, errors.Is(err, ErrNotFound):
		default:
			s.log.Warn("revoke: record unreadable", "id", id, "err", err)
		}
	}

	seq := s.allocSeq()
	settled := false
	defer func() {
		if !settled {
			s.settle(seq, nil, nil)
		}
	}()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: revoke %s: %w", key, err)
	}
	var markers []ds.Key
	meta := &logMeta{seq: seq, kind: kindRevocation, key: key, at: rev.RevokedAt}
	marker := func(docID string) error {
		if s.indexDir == "" {
			return nil
		}
		k := s.markerKey(docID)
		markers = append(markers, k)
		return b.Put(ctx, k, markerValue)
	}
	err = b.Put(ctx, tombKey(node, id), data)
	if err == nil {
		err = b.Put(ctx, logKey(seq), encodeLogValue(meta))
	}
	if err == nil && heldRemote {
		if oldRemote.enc {
			err = b.Delete(ctx, encRemoteKey(node, id))
		} else {
			err = b.Delete(ctx, remoteKey(node, id))
		}
		if err == nil && oldRemote.seq != 0 {
			err = b.Delete(ctx, logKey(oldRemote.seq))
		}
		if err == nil && !oldRemote.enc {
			err = marker(key)
		}
	}
	if err == nil && own {
		err = b.Delete(ctx, pubKey(id))
		if err == nil {
			err = b.Delete(ctx, epubKey(id))
		}
		if err == nil && heldOwn && oldOwn.seq != 0 {
			err = b.Delete(ctx, logKey(oldOwn.seq))
		}
		if err == nil && rec != nil {
			var recData []byte
			if recData, err = encodeRecord(rec); err == nil {
				err = b.Put(ctx, recordKey(id), recData)
			}
			if err == nil {
				err = marker(id)
			}
		}
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: revoke %s: %w", key, err)
	}
	s.settle(seq, meta, func() {
		s.fed.tombs[key] = tombInfo{revokedAt: stored.RevokedAt, seq: seq}
		if heldRemote {
			delete(s.fed.remote, key)
			if oldRemote.seq != 0 {
				s.fed.log.dead++
			}
		}
		if heldOwn {
			delete(s.fed.own, id)
			if oldOwn.seq != 0 {
				s.fed.log.dead++
			}
		}
	})
	settled = true
	indexed := heldRemote && !oldRemote.enc // encrypted lessons are not in the index
	if s.idx != nil && indexed && rec == nil {
		// A received lesson's: queued like its arrival.
		s.queueIndex(func(b *bleve.Batch) error { b.Delete(key); return nil }, markers)
		return nil
	}
	if s.idx != nil && (indexed || rec != nil) {
		ib := s.idx.NewBatch()
		if indexed {
			ib.Delete(key)
		}
		if rec != nil {
			if err := ib.IndexAdvanced(s.an.buildDoc(rec)); err != nil {
				s.log.Error("index update failed, will replay on next open", "err", err)
				return nil
			}
		}
		s.applyIndex(ib, markers)
	}
	return nil
}

// Tombstone returns the revocation kept for key (lessonId@nodeId); an error
// wrapping ErrNotFound if there is none.
func (s *Store) Tombstone(ctx context.Context, key string) (*protocol.Revocation, error) {
	id, node, err := protocol.ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("store: tombstone: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: tombstone %s: %w", key, err)
	}
	defer leave()
	rev, err := s.loadTomb(ctx, tombKey(node, id))
	if err == nil && rev.Key() != key {
		err = fmt.Errorf("stored tombstone is damaged: it has key %q", truncate(rev.Key()))
	}
	if err != nil {
		return nil, fmt.Errorf("store: tombstone %s: %w", key, err)
	}
	return rev, nil
}

func (s *Store) loadTomb(ctx context.Context, k ds.Key) (*protocol.Revocation, error) {
	data, err := s.ds.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rev, err := protocol.DecodeRevocation(data)
	if err != nil {
		return nil, fmt.Errorf("stored tombstone is damaged: %w", err)
	}
	return rev, nil
}

// Revoked reports whether key (lessonId@nodeId) has a tombstone. It reads
// memory only.
func (s *Store) Revoked(ctx context.Context, key string) bool {
	s.fedMu.RLock()
	defer s.fedMu.RUnlock()
	_, ok := s.fed.tombs[key]
	return ok
}

// forgetOwn drops the in-memory state of own publications that were
// deleted from the datastore (with their records, or made private).
func (s *Store) forgetOwn(ids ...string) {
	s.fedMu.Lock()
	defer s.fedMu.Unlock()
	for _, id := range ids {
		if v, ok := s.fed.own[id]; ok {
			delete(s.fed.own, id)
			if v.seq != 0 {
				s.fed.log.dead++
			}
		}
	}
}

// loadFederation reads the tombstones, the sync log and the versions of the
// publications held (own and remote) into memory. Log entries that can no
// longer be returned (of deleted records, say) are deleted, except the last
// one, which keeps the sequence from going back.
func (s *Store) loadFederation(ctx context.Context) error {
	f := fedState{remote: map[string]version{}, own: map[string]version{}, tombs: map[string]tombInfo{}}
	// Latest log entry per key and kind.
	type kk struct {
		key  string
		kind byte
	}
	latest := map[kk]*logMeta{}
	err := s.scan(ctx, dsq.Query{Prefix: nsLog, Orders: []dsq.Order{dsq.OrderByKey{}}}, "sync log", func(k string, value []byte) {
		seq, ok := parseLogKey(k)
		if !ok {
			s.log.Warn("skipping malformed sync log key")
			return
		}
		if seq > f.log.last {
			f.log.last = seq
		}
		m, err := decodeLogValue(value)
		if err != nil {
			s.log.Warn("skipping undecodable sync log entry", "seq", seq, "err", err)
			return
		}
		m.seq = seq
		f.log.entries = append(f.log.entries, m)
		latest[kk{m.key, m.kind}] = m
	})
	if err != nil {
		return err
	}
	f.log.visible = f.log.last

	// Tombstones.
	err = s.scan(ctx, dsq.Query{Prefix: nsTomb}, "tombstones", func(k string, value []byte) {
		key, ok := keyFromPath(strings.TrimPrefix(k, nsTomb))
		rev, err := protocol.DecodeRevocation(value)
		if err == nil && (!ok || rev.Key() != key) {
			err = errors.New("tombstone under another key")
		}
		if err != nil {
			// Keep the key revoked all the same: refusing a lesson is safer
			// than accepting a revoked one.
			s.log.Warn("tombstone unreadable", "err", err)
			if ok {
				f.tombs[key] = tombInfo{}
			}
			return
		}
		t := tombInfo{revokedAt: rev.RevokedAt}
		if m := latest[kk{key, kindRevocation}]; m != nil {
			t.seq = m.seq
		}
		f.tombs[key] = t
	})
	if err != nil {
		return err
	}

	// Remote lessons.
	err = s.scan(ctx, dsq.Query{Prefix: nsRemote}, "remote lessons", func(k string, value []byte) {
		key, ok := keyFromPath(strings.TrimPrefix(k, nsRemote))
		sl, err := decodeRemote(value)
		if err == nil && (!ok || sl.Key() != key) {
			err = errors.New("remote lesson under another key")
		}
		if err != nil {
			s.log.Warn("remote lesson unreadable", "err", err)
			return
		}
		v := version{publishedAt: sl.Publication.PublishedAt, expiresAt: sl.Lesson.ExpiresAt}
		if m := latest[kk{key, kindRemote}]; m != nil && m.at == v.publishedAt {
			v.seq = m.seq
		}
		f.remote[key] = v
	})
	if err != nil {
		return err
	}

	// Remote encrypted lessons.
	err = s.scan(ctx, dsq.Query{Prefix: nsEncRemote}, "remote encrypted lessons", func(k string, value []byte) {
		key, ok := keyFromPath(strings.TrimPrefix(k, nsEncRemote))
		el, err := decodeEncrypted(value)
		if err == nil && (!ok || el.Key() != key) {
			err = errors.New("remote encrypted lesson under another key")
		}
		if err != nil {
			s.log.Warn("remote encrypted lesson unreadable", "err", err)
			return
		}
		v := version{publishedAt: el.Publication.PublishedAt, expiresAt: el.Publication.ExpiresAt, enc: true}
		if m := latest[kk{key, kindEncRemote}]; m != nil && m.at == v.publishedAt {
			v.seq = m.seq
		}
		if old, held := f.remote[key]; held && old.publishedAt >= v.publishedAt {
			return // both forms of one key (never written so): the newer wins
		}
		f.remote[key] = v
	})
	if err != nil {
		return err
	}

	// Own encrypted publications.
	err = s.scan(ctx, dsq.Query{Prefix: nsEncPub}, "encrypted publications", func(k string, value []byte) {
		id := strings.TrimPrefix(k, nsEncPub)
		el, err := decodeEncrypted(value)
		if err == nil && el.LessonID != id {
			err = errors.New("encrypted publication under another id")
		}
		if err != nil {
			s.log.Warn("encrypted publication unreadable", "id", truncate(id), "err", err)
			return
		}
		v := version{publishedAt: el.Publication.PublishedAt, expiresAt: el.Publication.ExpiresAt, nodeID: el.Signature.NodeID, enc: true}
		if m := latest[kk{el.Key(), kindEncPublication}]; m != nil && m.at == v.publishedAt {
			v.seq = m.seq
		}
		f.own[id] = v
	})
	if err != nil {
		return err
	}

	// Own publications.
	err = s.scan(ctx, dsq.Query{Prefix: nsPub}, "publications", func(k string, value []byte) {
		id := strings.TrimPrefix(k, nsPub)
		sl, err := protocol.DecodeSignedLesson(value)
		if err == nil && sl.Lesson.ID != id {
			err = errors.New("publication under another id")
		}
		if err != nil {
			s.log.Warn("publication unreadable", "id", truncate(id), "err", err)
			return
		}
		v := version{publishedAt: sl.Publication.PublishedAt, expiresAt: sl.Lesson.ExpiresAt, nodeID: sl.Signature.NodeID}
		if m := latest[kk{sl.Key(), kindPublication}]; m != nil && m.at == v.publishedAt {
			v.seq = m.seq
		}
		f.own[id] = v
	})
	if err != nil {
		return err
	}

	s.fedMu.Lock()
	s.fed = f
	// Drop the dead entries, on disk and in memory.
	var dead []ds.Key
	kept := f.log.entries[:0]
	for _, m := range f.log.entries {
		if m.seq != f.log.last && !s.liveLocked(m, 0) {
			dead = append(dead, logKey(m.seq))
			continue
		}
		kept = append(kept, m)
	}
	clear(f.log.entries[len(kept):])
	s.fed.log.entries = kept
	s.fedMu.Unlock()
	if len(dead) > 0 {
		b, err := s.ds.Batch(ctx)
		if err != nil {
			return fmt.Errorf("store: open: %w", err)
		}
		for _, k := range dead {
			if err := b.Delete(ctx, k); err != nil {
				return fmt.Errorf("store: open: %w", err)
			}
		}
		if err := b.Commit(ctx); err != nil {
			return fmt.Errorf("store: open: prune sync log: %w", err)
		}
		s.log.Debug("pruned sync log", "entries", len(dead))
	}
	return nil
}

// scan calls fn for every entry the query returns, and fails on the first
// error reading them; what names the entries in the error.
func (s *Store) scan(ctx context.Context, q dsq.Query, what string, fn func(key string, value []byte)) error {
	res, err := s.ds.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("store: open: read %s: %w", what, err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("store: open: read %s: %w", what, r.Error)
		}
		fn(r.Key, r.Value)
	}
	return nil
}

// Updated returns a channel that is closed the next time the store takes
// in a lesson from another node (PutRemote) or a revocation (Revoke): a
// waiter re-checks what it waits for, then asks again.
func (s *Store) Updated() <-chan struct{} {
	s.updMu.Lock()
	defer s.updMu.Unlock()
	if s.updCh == nil {
		s.updCh = make(chan struct{})
	}
	return s.updCh
}

func (s *Store) notifyUpdated() {
	s.updMu.Lock()
	if s.updCh != nil {
		close(s.updCh)
		s.updCh = nil
	}
	s.updMu.Unlock()
}

// RemoteKeys lists the keys (lessonId@nodeId) of the remote lessons held
// under lessonID, from any publisher, sorted.
func (s *Store) RemoteKeys(lessonID string) []string {
	prefix := lessonID + "@"
	s.fedMu.RLock()
	var out []string
	for key := range s.fed.remote {
		if strings.HasPrefix(key, prefix) && strings.IndexByte(key[len(prefix):], '@') < 0 {
			out = append(out, key)
		}
	}
	s.fedMu.RUnlock()
	slices.Sort(out)
	return out
}

// DropPublisher deletes every remote lesson of publisher nodeID from the
// cache (a node that blocks a publisher stops serving, listing and finding
// its lessons at once). Tombstones stay. It returns how many it deleted.
func (s *Store) DropPublisher(ctx context.Context, nodeID string) (int, error) {
	suffix := "@" + nodeID
	s.fedMu.RLock()
	var keys []string
	for key := range s.fed.remote {
		if strings.HasSuffix(key, suffix) {
			keys = append(keys, key)
		}
	}
	s.fedMu.RUnlock()
	if len(keys) == 0 {
		return 0, nil
	}
	leave, err := s.beginWrite()
	if err != nil {
		return 0, fmt.Errorf("store: drop publisher: %w", err)
	}
	defer leave()
	unlock := s.lockIDs(keys...)
	defer unlock()
	if err := s.deleteRemoteLocked(ctx, keys); err != nil {
		return 0, fmt.Errorf("store: drop publisher %s: %w", nodeID, err)
	}
	return len(keys), nil
}
