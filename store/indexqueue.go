package store

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	ds "github.com/ipfs/go-datastore"
)

// The index updates of received lessons (a lesson stored, a revocation's
// delete) wait in a queue and are applied together: a node that receives
// a lesson now and then would otherwise add a one-document segment to the
// index for each, and every later write looks its IDs up in every
// segment (scorch's obsolete check), which is where most of a delivery's
// CPU went. The datastore commit (with its dirty marker, on disk) happens
// at once, as before: a lesson is held, fetchable and synced the moment
// PutRemote returns, and a crash before the queue is applied is repaired
// from the markers at the next Open.
//
// The queue never makes a read stale: every read of the index (search,
// list, status, search statistics, the sweep) applies it first, and so
// does every other index write, which keeps the order of updates to one
// document.
const (
	// indexDelay is how long a queued update may wait. 2 s rather than
	// 0.5: with one mesh daemon process per node (meshbench propagate
	// -procs, 100 daemons on 2 cores, CPU counted until the deferred index
	// work is done), a delivery cost 2.2-2.3 ms of CPU instead of 3.3-3.5
	// and p50 was 136-146 ms instead of 184-189. Each apply is a segment
	// that bleve persists (a file, two fsyncs) and merges later; in one
	// process with in-memory indexes it made no difference.
	indexDelay = 2 * time.Second
	// maxQueuedIndex caps the updates queued: the writer that reaches it
	// applies the queue itself.
	maxQueuedIndex = 256
)

type indexQueue struct {
	// flushing is held from taking the queue to the end of applying it:
	// a read that finds the queue empty waits on it for an apply in
	// progress (the timer's) before it reads the index.
	flushing sync.Mutex

	mu      sync.Mutex
	b       *bleve.Batch // nil when empty
	n       int
	markers []ds.Key
	timer   *time.Timer
	pending atomic.Bool // b != nil, read without mu
}

// queueIndex adds an update to the queue: fn applies it to the queued
// batch. The caller holds the store's write locks (beginWrite).
func (s *Store) queueIndex(fn func(b *bleve.Batch) error, markers []ds.Key) error {
	q := &s.idxQ
	q.mu.Lock()
	if q.b == nil {
		q.b = s.idx.NewBatch()
	}
	if err := fn(q.b); err != nil {
		q.mu.Unlock()
		return err
	}
	q.markers = append(q.markers, markers...)
	q.n++
	q.pending.Store(true)
	full := q.n >= maxQueuedIndex
	if !full && q.timer == nil {
		q.timer = time.AfterFunc(indexDelay, s.flushIndex)
	}
	q.mu.Unlock()
	if full {
		s.flushQueuedLocked()
	}
	return nil
}

// takeQueued empties the queue.
func (s *Store) takeQueued() (*bleve.Batch, []ds.Key) {
	q := &s.idxQ
	q.mu.Lock()
	defer q.mu.Unlock()
	b, m := q.b, q.markers
	q.b, q.markers, q.n = nil, nil, 0
	q.pending.Store(false)
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	return b, m
}

// flushQueuedLocked applies the queue. The caller holds the store's write
// locks. It also waits for an apply in progress (the timer's), so that a write
// after it never overtakes the updates queued before it.
func (s *Store) flushQueuedLocked() {
	s.idxQ.flushing.Lock()
	defer s.idxQ.flushing.Unlock()
	if !s.idxQ.pending.Load() {
		return
	}
	if b, m := s.takeQueued(); b != nil && s.idx != nil {
		s.applyIndexNow(b, m)
	}
}

// flushIndex applies the queue, taking the store's write locks: the reads
// of the index call it before they take theirs.
func (s *Store) flushIndex() {
	if !s.idxQ.pending.Load() {
		// Nothing queued, but another goroutine may be applying what
		// it took: wait for it.
		s.idxQ.flushing.Lock()
		s.idxQ.flushing.Unlock() //nolint:staticcheck // a wait, not a critical section
		return
	}
	leave, err := s.beginWrite()
	if err != nil {
		return // closed: the markers repair the index at the next Open
	}
	defer leave()
	s.flushQueuedLocked()
}
