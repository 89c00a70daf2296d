package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// PutPublication stores a signed publication of one of this node's records
// and sets the record's visibility to the publication's, in one durable
// commit. The record sl.Lesson.ID must exist (and not be expired). The store
// does not verify the signature: the node made it.
//
// The publication goes when the record goes (Delete, expiry), and when a
// Put makes the record private. Replacing the record otherwise keeps the
// publication as signed; re-publishing replaces it.
//
// A public publication enters the sync log (see Log), superseding the
// record's earlier one; an unlisted one does not, and takes an earlier
// public one out of the log. A key that was revoked (Revoke) stays revoked:
// PutPublication returns an error wrapping ErrRevoked; publish the record
// under a new id.
func (s *Store) PutPublication(ctx context.Context, sl *protocol.SignedLesson) error {
	if sl == nil {
		return invalidf("put publication: publication is nil")
	}
	id := sl.Lesson.ID
	if err := protocol.ValidateID(id); err != nil {
		return fmt.Errorf("store: put publication: lesson: %w", err)
	}
	if err := sl.Publication.Validate(); err != nil {
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	data, err := sl.Encode()
	if err != nil {
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	if len(data) > protocol.MaxSignedLessonSize {
		return fmt.Errorf("store: put publication %s: %w: %w: %d bytes, the limit is %d", id, protocol.ErrInvalid, protocol.ErrTooLarge, len(data), protocol.MaxSignedLessonSize)
	}
	leave, err := s.beginAdd()
	if err != nil {
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	defer leave()
	unlock := s.lockIDs(id)
	defer unlock()
	key := sl.Key()
	s.fedMu.RLock()
	_, revoked := s.fed.tombs[key]
	old, held := s.fed.own[id]
	s.fedMu.RUnlock()
	if revoked {
		return fmt.Errorf("store: put publication %s: %w", key, ErrRevoked)
	}
	rec, err := s.load(ctx, id)
	if err == nil && expired(rec, s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: put publication %s: record: %w", id, err)
	}
	rec.Visibility = sl.Publication.Visibility
	recData, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	public := sl.Publication.Visibility == protocol.VisibilityPublic
	var seq uint64
	var meta *logMeta
	if public {
		seq = s.allocSeq()
		meta = &logMeta{seq: seq, kind: kindPublication, key: key, at: sl.Publication.PublishedAt, topics: slices.Clone(sl.Publication.Topics)}
	}
	settled := false
	defer func() {
		if !settled {
			s.settle(seq, nil, nil)
		}
	}()
	var markers []ds.Key
	err = b.Put(ctx, pubKey(id), data)
	if err == nil {
		err = b.Delete(ctx, epubKey(id)) // an encrypted publication it supersedes
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
		return fmt.Errorf("store: put publication %s: %w", id, err)
	}
	s.settle(seq, meta, func() {
		s.fed.own[id] = version{publishedAt: sl.Publication.PublishedAt, expiresAt: sl.Lesson.ExpiresAt, seq: seq, nodeID: sl.Signature.NodeID}
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

// Publication returns the stored publication of a record. It gives an error
// wrapping ErrNotFound if there is none, or if the record is gone or
// expired.
func (s *Store) Publication(ctx context.Context, id string) (*protocol.SignedLesson, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, fmt.Errorf("store: publication: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: publication %s: %w", id, err)
	}
	defer leave()
	rec, err := s.load(ctx, id)
	if err == nil && expired(rec, s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: publication %s: %w", id, err)
	}
	data, err := s.ds.Get(ctx, pubKey(id))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, fmt.Errorf("store: publication %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: publication %s: %w", id, err)
	}
	sl, err := protocol.DecodeSignedLesson(data)
	if err != nil {
		return nil, fmt.Errorf("store: publication %s: stored publication is damaged: %w", id, err)
	}
	return sl, nil
}

// ErrNotShared is wrapped by SharedPublication's error for a record that
// has no publication, or whose current text is not what its publication
// signed.
var ErrNotShared = errors.New("record is not shared as it is")

// SharedPublication returns the publication of rec, a record as a Search
// hit loaded it, if rec is exactly the lesson that publication signed
// (visibility aside, which the caller checks, and updatedAt, which a store
// of the unchanged record moves and no query matches). The index holds a record's
// current text, so a record edited since it was published must not be
// matched on behalf of its publication: the hit would let anyone probe
// words the node never shared. Otherwise the error wraps ErrNotShared.
//
// It serves the search paths, which look at every own hit: decoded
// publications are cached by the digest of their stored bytes, so the
// returned lesson is shared and must not be modified. encoded is the
// publication's JSON as stored, a valid encoding of sl to send as is.
func (s *Store) SharedPublication(ctx context.Context, rec *protocol.Lesson) (sl *protocol.SignedLesson, encoded []byte, err error) {
	if rec == nil {
		return nil, nil, invalidf("shared publication: record is nil")
	}
	return s.sharedPublication(ctx, rec.ID, func() ([]byte, error) { return signedForm(rec) })
}

// SharedPublicationOf is SharedPublication of a hit of one of this node's
// records, whose Record must be as Search returned it: the record's
// signed form is then computed once per stored version, not per search.
func (s *Store) SharedPublicationOf(ctx context.Context, h Hit) (sl *protocol.SignedLesson, encoded []byte, err error) {
	if h.entry == nil {
		return s.SharedPublication(ctx, h.Record)
	}
	return s.sharedPublication(ctx, h.entry.rec.ID, h.entry.signedForm)
}

func (s *Store) sharedPublication(ctx context.Context, id string, signed func() ([]byte, error)) (sl *protocol.SignedLesson, encoded []byte, err error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, nil, fmt.Errorf("store: shared publication: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, nil, fmt.Errorf("store: shared publication %s: %w", id, err)
	}
	defer leave()
	data, err := s.ds.Get(ctx, pubKey(id))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, nil, fmt.Errorf("store: shared publication %s: %w", id, ErrNotShared)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: shared publication %s: %w", id, err)
	}
	e, err := s.shared.get(data, decodePublication)
	if err != nil {
		return nil, nil, fmt.Errorf("store: publication %s: stored publication is damaged: %w", id, err)
	}
	b, err := signed()
	if err != nil || !bytes.Equal(b, e.signed) {
		return nil, nil, fmt.Errorf("store: shared publication %s: %w", id, ErrNotShared)
	}
	return e.sl, data, nil
}

// maxShared bounds a decodedCache; past it the cache starts over.
const maxShared = 1024

// decodedCache maps the stored bytes of signed lessons to their decoding,
// for the search paths, which decode the same stored lessons over and
// over. The decodings are shared: nobody may modify them.
type decodedCache struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]sharedEntry
}

type sharedEntry struct {
	data   []byte // the stored bytes, compared on every hit
	sl     *protocol.SignedLesson
	signed []byte // of own publications: sl.Lesson's JSON, visibility left out
}

func newDecodedCache() decodedCache { return decodedCache{seed: maphash.MakeSeed()} }

// get returns the decoding of data, made by decode on a miss.
func (c *decodedCache) get(data []byte, decode func([]byte) (sharedEntry, error)) (sharedEntry, error) {
	h := maphash.Bytes(c.seed, data)
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if ok && bytes.Equal(e.data, data) {
		return e, nil
	}
	e, err := decode(data)
	if err != nil {
		return e, err
	}
	e.data = bytes.Clone(data)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxShared {
		c.m = make(map[uint64]sharedEntry)
	}
	c.m[h] = e
	c.mu.Unlock()
	return e, nil
}

// decodePublication decodes a stored own publication for SharedPublication.
func decodePublication(data []byte) (sharedEntry, error) {
	sl, err := protocol.DecodeSignedLesson(data)
	if err != nil {
		return sharedEntry{}, err
	}
	b, err := signedForm(&sl.Lesson)
	if err != nil {
		return sharedEntry{}, err
	}
	return sharedEntry{sl: sl, signed: b}, nil
}
