package store

import (
	"context"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// PutResult is the outcome of one record of a PutBatch.
type PutResult struct {
	ID      string
	Created bool // false: an existing record was replaced
}

// MaxBatch caps the number of records of one PutBatch.
const MaxBatch = 10000

// Put inserts or replaces one record and returns its id and whether it was
// created.
//
// An empty ID gets a random one, "<type>_<16 lowercase hex>". The record must
// pass rec.Validate. created_at is set to now (Unix ms) when zero; when an
// existing record is replaced, its created_at is kept unless rec sets one,
// and updated_at is set to now. An empty visibility is stored as "private";
// a record that becomes private loses its publication (see PutPublication).
// Put does not modify rec.
//
// When Put returns, the record is durable in the datastore and visible to
// Get, List and Search.
func (s *Store) Put(ctx context.Context, rec *protocol.Lesson) (id string, created bool, err error) {
	r, err := prepare(rec)
	if err != nil {
		return "", false, fmt.Errorf("store: put: %w", err)
	}
	res, err := s.write(ctx, []*protocol.Lesson{r})
	if err != nil {
		return "", false, fmt.Errorf("store: put %s: %w", r.ID, err)
	}
	return res[0].ID, res[0].Created, nil
}

// PutBatch upserts many records, as Put does each of them, with one durable
// datastore commit and one index update. Results are in input order. If any
// record is invalid, nothing is written and the error names its index. A
// batch holds at most MaxBatch records; an id may appear more than once (the
// last one wins, the later ones count as updates).
func (s *Store) PutBatch(ctx context.Context, recs []*protocol.Lesson) ([]PutResult, error) {
	if len(recs) > MaxBatch {
		return nil, invalidf("put batch: %d records, the limit is %d", len(recs), MaxBatch)
	}
	if len(recs) == 0 {
		return []PutResult{}, nil
	}
	prepared := make([]*protocol.Lesson, len(recs))
	for i, rec := range recs {
		r, err := prepare(rec)
		if err != nil {
			return nil, fmt.Errorf("store: put batch: record %d: %w", i, err)
		}
		prepared[i] = r
	}
	res, err := s.write(ctx, prepared)
	if err != nil {
		return nil, fmt.Errorf("store: put batch: %w", err)
	}
	return res, nil
}

// prepare copies rec, gives it an id and checks it.
func prepare(rec *protocol.Lesson) (*protocol.Lesson, error) {
	if rec == nil {
		return nil, invalidf("record is nil")
	}
	r := rec.Clone()
	if r.Visibility == "" {
		r.Visibility = protocol.VisibilityPrivate
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if r.ID == "" {
		r.ID = r.Type + "_" + randomHex(8)
		if err := protocol.ValidateID(r.ID); err != nil {
			return nil, fmt.Errorf("generating an id from type %q: %w", truncate(r.Type), err)
		}
	}
	return r, nil
}

// write stores prepared records: one datastore batch (records and their
// dirty markers, synced), then one index batch.
func (s *Store) write(ctx context.Context, recs []*protocol.Lesson) ([]PutResult, error) {
	leave, err := s.beginAdd()
	if err != nil {
		return nil, err
	}
	defer leave()
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	unlock := s.lockIDs(ids...)
	defer unlock()

	now := s.nowMS()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return nil, err
	}
	latest := make(map[string]*protocol.Lesson, len(recs))
	order := make([]string, 0, len(recs))
	var markers []ds.Key
	var unpublished []string
	results := make([]PutResult, len(recs))
	for i, r := range recs {
		old, seen := latest[r.ID]
		if !seen {
			old, err = s.load(ctx, r.ID)
			if errors.Is(err, ErrNotFound) {
				old, err = nil, nil
			}
			if err != nil {
				// A damaged stored record is replaced, as if absent.
				s.log.Warn("replacing undecodable record", "id", r.ID, "err", err)
				old = nil
			}
			order = append(order, r.ID)
		}
		created := old == nil || expired(old, now)
		if !created && old.Type != r.Type {
			// An upsert that would turn a reading into a lesson, say:
			// refused, so that a record's type means what it says.
			err := invalidf("record %s is a %q, not a %q: a record's type cannot change; delete it first, or store the new one under another id", r.ID, old.Type, r.Type)
			if len(recs) > 1 {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			return nil, err
		}
		if created {
			if r.CreatedAt == 0 {
				r.CreatedAt = now
			}
		} else {
			if r.CreatedAt == 0 {
				r.CreatedAt = old.CreatedAt
			}
			r.UpdatedAt = now
		}
		data, err := encodeRecord(r)
		if err != nil {
			if len(recs) > 1 {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			return nil, err
		}
		if err := b.Put(ctx, recordKey(r.ID), data); err != nil {
			return nil, err
		}
		if r.Visibility == protocol.VisibilityPrivate && old != nil && visibilityOf(old) != protocol.VisibilityPrivate {
			if err := b.Delete(ctx, pubKey(r.ID)); err != nil {
				return nil, err
			}
			if err := b.Delete(ctx, epubKey(r.ID)); err != nil {
				return nil, err
			}
			unpublished = append(unpublished, r.ID)
		}
		if s.indexDir != "" {
			k := s.markerKey(r.ID)
			if err := b.Put(ctx, k, markerValue); err != nil {
				return nil, err
			}
			markers = append(markers, k)
		}
		latest[r.ID] = r
		results[i] = PutResult{ID: r.ID, Created: created}
	}
	if err := b.Commit(ctx); err != nil {
		return nil, err
	}
	s.forgetOwn(unpublished...)
	if s.idx != nil {
		ib := s.idx.NewBatch()
		for _, id := range order {
			if err := ib.IndexAdvanced(s.an.buildDoc(latest[id])); err != nil {
				s.log.Error("index update failed, will replay on next open", "err", err)
				return results, nil
			}
		}
		s.applyIndex(ib, markers)
	}
	return results, nil
}

// Get returns the record with the given id. A missing or expired record
// gives an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*protocol.Lesson, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	defer leave()
	rec, err := s.load(ctx, id)
	if err == nil && expired(rec, s.nowMS()) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return rec, nil
}

// load reads and decodes a record, expired or not. Missing: ErrNotFound.
func (s *Store) load(ctx context.Context, id string) (*protocol.Lesson, error) {
	e, err := s.loadEntry(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.rec.Clone(), nil
}

// loadEntry is load, returning the cached decoding, which must not be
// modified.
func (s *Store) loadEntry(ctx context.Context, id string) (*recordEntry, error) {
	data, err := s.ds.Get(ctx, recordKey(id))
	if errors.Is(err, ds.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e, err := s.recs.get(data)
	if err != nil {
		return nil, fmt.Errorf("stored record is damaged: %w", err)
	}
	if e.rec.ID != id {
		return nil, fmt.Errorf("stored record is damaged: it has id %q", truncate(e.rec.ID))
	}
	return e, nil
}

// Delete removes a record and its publication. It reports whether a live
// (not expired) record was deleted; deleting a missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) (deleted bool, err error) {
	if err := protocol.ValidateID(id); err != nil {
		return false, fmt.Errorf("store: delete: %w", err)
	}
	leave, err := s.beginWrite()
	if err != nil {
		return false, fmt.Errorf("store: delete %s: %w", id, err)
	}
	defer leave()
	unlock := s.lockIDs(id)
	defer unlock()
	old, err := s.load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	live := err == nil && !expired(old, s.nowMS())
	if err := s.deleteLocked(ctx, []string{id}); err != nil {
		return false, fmt.Errorf("store: delete %s: %w", id, err)
	}
	return live, nil
}

// deleteLocked deletes records and their publications from the datastore
// (one batch) and the index. The ids' stripes are locked.
func (s *Store) deleteLocked(ctx context.Context, ids []string) error {
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return err
	}
	var markers []ds.Key
	for _, id := range ids {
		if err := b.Delete(ctx, recordKey(id)); err != nil {
			return err
		}
		if err := b.Delete(ctx, pubKey(id)); err != nil {
			return err
		}
		if err := b.Delete(ctx, epubKey(id)); err != nil {
			return err
		}
		if s.indexDir != "" {
			k := s.markerKey(id)
			if err := b.Put(ctx, k, markerValue); err != nil {
				return err
			}
			markers = append(markers, k)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	s.forgetOwn(ids...)
	if s.idx != nil {
		ib := s.idx.NewBatch()
		for _, id := range ids {
			ib.Delete(id)
		}
		s.applyIndex(ib, markers)
	}
	return nil
}

// encodeRecord returns the stored form of a record: its JSON encoding.
func encodeRecord(r *protocol.Lesson) ([]byte, error) {
	data, err := r.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if len(data) > protocol.MaxRecordSize {
		return nil, fmt.Errorf("%w: %w: record is %d bytes encoded, the limit is %d", protocol.ErrInvalid, protocol.ErrTooLarge, len(data), protocol.MaxRecordSize)
	}
	return data, nil
}

// decodeRecord decodes the stored form of a record and checks it.
func decodeRecord(data []byte) (*protocol.Lesson, error) {
	var r protocol.Lesson
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := protocol.ValidateID(r.ID); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}
