package store

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/meshprotocol/mesh/protocol"
)

// maxCachedRecords bounds a recordCache; past it the cache starts over.
const maxCachedRecords = 4096

// recordCache maps the stored bytes of own records to their decoding, for
// the search paths, which load the same records over and over (every
// federated search a node answers loads its hits). A decoding is shared by
// everyone who loads the same bytes, so it is never handed out: load
// returns clones.
type recordCache struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]*recordEntry
}

// recordEntry is one decoded record.
type recordEntry struct {
	data []byte           // the stored bytes, compared on every hit
	rec  *protocol.Lesson // decoded and checked; never modified

	signedOnce sync.Once
	signed     []byte // rec's JSON as a publication signs it (see signedForm)
	signedErr  error
}

func newRecordCache() *recordCache {
	return &recordCache{seed: maphash.MakeSeed(), m: map[uint64]*recordEntry{}}
}

// get returns the decoding of data, decoding (decodeRecord) on a miss.
func (c *recordCache) get(data []byte) (*recordEntry, error) {
	h := maphash.Bytes(c.seed, data)
	c.mu.Lock()
	e := c.m[h]
	c.mu.Unlock()
	if e != nil && bytes.Equal(e.data, data) {
		return e, nil
	}
	rec, err := decodeRecord(data)
	if err != nil {
		return nil, err
	}
	e = &recordEntry{data: bytes.Clone(data), rec: rec}
	c.mu.Lock()
	if len(c.m) >= maxCachedRecords {
		clear(c.m)
	}
	c.m[h] = e
	c.mu.Unlock()
	return e, nil
}

// signedForm is the record's JSON without visibility and updatedAt: what
// its publication signed, if the record is unchanged since (see
// SharedPublication). It is computed once per distinct record.
func (e *recordEntry) signedForm() ([]byte, error) {
	e.signedOnce.Do(func() { e.signed, e.signedErr = signedForm(e.rec) })
	return e.signed, e.signedErr
}

// signedForm is rec's JSON as a publication of it signs it: visibility and
// updatedAt left out.
func signedForm(rec *protocol.Lesson) ([]byte, error) {
	cur := *rec
	cur.Visibility, cur.UpdatedAt = "", 0
	return cur.MarshalJSON()
}
