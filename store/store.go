package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/meshprotocol/mesh/protocol"
)

// Options configure a Store. The zero value is a store held in memory.
type Options struct {
	// Dir is the directory of the store: the datastore lives in
	// Dir/datastore (pebble, every write synced) and the search index in
	// Dir/index. If empty, both are kept in memory and lost on Close.
	Dir string

	// Datastore, if set, is used instead of opening one in Dir; the index
	// then lives in Dir/index, or in memory if Dir is empty (and is rebuilt
	// on every Open). The store does not close a datastore it was given, and
	// its durability is the datastore's.
	Datastore ds.Batching

	// Logger receives operational messages. Nil discards them. Record
	// contents and queries are never logged.
	Logger *slog.Logger

	// Now is the clock, used for created_at, updated_at and expiry. Nil
	// means time.Now.
	Now func() time.Time

	// SweepInterval is how often expired records are deleted from disk. Zero
	// means every minute; a negative value turns the background sweeper off
	// (call Sweep). Expired records vanish from every read at once either
	// way.
	SweepInterval time.Duration

	// SelfID is this node's ID (12D3KooW...). PutRemote refuses lessons it
	// signed, Revoke of its lessons deletes its own publication, and Query
	// and Hit count its own records as published by it. Empty: no check,
	// and own publications are told from remote lessons by where they are
	// stored only.
	SelfID string

	// DiskReserve is the free space, in bytes, below which writes that
	// add data (Put, PutPublication, PutRemote) are refused with
	// ErrInsufficientStorage, so that the disk never fills under the
	// datastore; deletes, revocations and reads go on. Zero means
	// DefaultDiskReserve; negative turns the check off. A store without
	// Dir has no disk and no check.
	DiskReserve int64
}

// Datastore key layout. Every key lives under one of these namespaces:
//
//	/records/<id>             a record, as its JSON encoding
//	/pub/<id>                 the SignedLesson publishing record <id>
//	/dirty/<id>/<seq>         an index update of <id> that may not be on disk yet
//	/meta/format              the layout version of the datastore (formatVersion)
//	/meta/generation          a random id of this datastore; the index records it
//	/remote/<nodeId>/<id>     a remote lesson (SignedLesson JSON) of the cache
//	/tomb/<nodeId>/<id>       a tombstone: the Revocation of lesson id@nodeId (JSON)
//	/log/<16 hex digits>      an entry of the sync log: kind, key and time (JSON)
//	/nmeta/<key>              the node's small state (GetMeta, SetMeta)
//	/epub/<id>                the EncryptedLesson publishing record <id>
//	/eremote/<nodeId>/<id>    a remote encrypted lesson (EncryptedLesson JSON)
//	/keys/own/<keyId>         a lesson key of this node's, with its policy (LessonKey JSON)
//	/keys/revoked/<keyId>     a revoked key: KEY_REVOKED forever (RevokedKey JSON)
//	/keys/escrow/<keyId>      an escrow share held for another node: its KeyPolicy (JSON)
//
// Index documents and dirty markers of remote lessons use the key
// lessonId@nodeId as the id; record ids cannot contain '@'.
const (
	nsRecords     = "/records/"
	nsPub         = "/pub/"
	nsDirty       = "/dirty/"
	nsRemote      = "/remote/"
	nsTomb        = "/tomb/"
	nsLog         = "/log/"
	nsNodeMeta    = "/nmeta/"
	nsEncPub      = "/epub/"
	nsEncRemote   = "/eremote/"
	nsKeysOwn     = "/keys/own/"
	nsKeysRevoked = "/keys/revoked/"
	nsKeysEscrow  = "/keys/escrow/"
	keyFormat     = "/meta/format"
	keyGeneration = "/meta/generation"
)

// formatVersion is the datastore layout this code reads and writes.
const formatVersion = "1"

func recordKey(id string) ds.Key { return ds.RawKey(nsRecords + id) }
func pubKey(id string) ds.Key    { return ds.RawKey(nsPub + id) }
func epubKey(id string) ds.Key   { return ds.RawKey(nsEncPub + id) }

// numStripes is the number of per-id locks. Writes of one id are serialized
// so that the datastore and the index see them in the same order; writes of
// different ids run in parallel, so that the datastore can group-commit them.
const numStripes = 256

// Store is the memory store of one MESH node: AMP records kept in a
// go-datastore, a full-text index over them, signed publications of them,
// and expiry.
//
// A Store is safe for concurrent use by multiple goroutines.
type Store struct {
	ds         ds.Batching
	ownDS      bool
	log        *slog.Logger
	now        func() time.Time
	sweepEvery time.Duration
	indexDir   string // "" = index in memory
	selfID     string
	generation string // of the datastore, see keyGeneration
	an         analyzers
	disk       *diskGuard // nil: no check
	dir        string     // Options.Dir

	stripes [numStripes]sync.Mutex

	// gate orders writes against Reindex and Close: every write holds it
	// shared, Reindex and Close hold it exclusively (after it, mu).
	gate sync.RWMutex

	// mu guards the fields below. Reads and writes hold it shared while they
	// use the index or the datastore; Close and the index swap hold it
	// exclusively.
	mu  sync.RWMutex
	idx bleve.Index // nil if the index could not be opened
	// noRankTerms sends every search through bleve's searchers, for the
	// tests that check rankTerms against them.
	noRankTerms bool
	closed      bool

	closeMu sync.Mutex
	closing bool

	seq atomic.Uint64 // dirty marker sequence

	// fedMu guards fed, the in-memory federation state: versions held,
	// tombstones, the sync log's entries. It is taken after the stripes and
	// mu, and held only briefly, never across I/O.
	fedMu sync.RWMutex
	fed   fedState

	updMu sync.Mutex
	updCh chan struct{} // closed by notifyUpdated; nil until Updated asks

	cleanMu sync.Mutex
	cleanQ  []ds.Key // dirty markers whose index updates are on disk
	cleanCh chan struct{}

	// testSkipIndex, if set and returning true, makes a write skip the
	// index step, as if the process died between the two.
	testSkipIndex func() bool

	// An index in memory is never merged by scorch (it merges only on
	// disk): each write adds a segment. memWrites counts them, and
	// compactLoop rebuilds the index once they outnumber the records.
	memWrites atomic.Int64
	compactCh chan struct{}

	// indexWrites counts the batches applied to the index; stats caches
	// the corpus statistics of federated search per index version.
	indexWrites atomic.Uint64
	stats       statsCache

	// idxQ holds the index updates of received lessons (indexqueue.go).
	idxQ indexQueue

	// shared caches decoded own publications for SharedPublication.
	shared decodedCache
	// recs caches decoded own records for load (see recordCache).
	recs *recordCache

	// keysMu serializes the writes of key material (keys.go), so that a
	// key revoked is never written back by a write that raced it.
	keysMu sync.Mutex
	// mayEscrow is false only while this store has never held an escrow
	// share since it was opened (see EscrowShares): every node asks for
	// its shares on every revocation it takes in, and most hold none.
	mayEscrow atomic.Bool

	cancel context.CancelFunc
	life   context.Context // cancelled by Close
	wg     sync.WaitGroup
}

// minCompactWrites is the fewest writes after which an in-memory index is
// rebuilt; above it, rebuilding once per len(records) writes keeps the cost
// of a write constant on average.
const minCompactWrites = 512

// Open opens (or creates) a store. If the search index is missing, of
// another format or datastore, out of step with the datastore, or
// unreadable, Open rebuilds it from the datastore; index updates that were
// not on disk when the process stopped are replayed.
func Open(opts Options) (*Store, error) {
	s := &Store{
		log:        opts.Logger,
		now:        opts.Now,
		sweepEvery: opts.SweepInterval,
		selfID:     opts.SelfID,
		cleanCh:    make(chan struct{}, 1),
		compactCh:  make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sweepEvery == 0 {
		s.sweepEvery = time.Minute
	}
	s.recs, s.shared = newRecordCache(), newDecodedCache()
	var err error
	if s.an, err = newAnalyzers(newMapping()); err != nil {
		return nil, err
	}
	var watch *corruptionWatch // of a pebble datastore opened here
	var start [8]byte
	_, _ = rand.Read(start[:])
	s.seq.Store(binary.BigEndian.Uint64(start[:]) >> 1)

	switch {
	case opts.Datastore != nil:
		s.ds = opts.Datastore
	case opts.Dir != "":
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		dbDir := filepath.Join(opts.Dir, "datastore")
		watch = &corruptionWatch{dir: opts.Dir, log: s.log}
		// Pebble replays a damaged write-ahead log up to the damage and
		// says nothing: wals reads each log it replayed, to tell.
		wals := &walCheck{}
		d, err := pebbleds.NewDatastore(dbDir,
			pebbleds.WithPebbleOpts(&pebble.Options{
				Logger:        pebbleLogger{log: s.log, wals: wals},
				EventListener: &pebble.EventListener{DataCorruption: watch.dataCorruption},
			}),
			pebbleds.WithPebbleWriteOptions(pebble.Sync),
			pebbleds.WithCacheSize(64<<20))
		if err != nil {
			return nil, fmt.Errorf("store: open datastore: %w", watch.wrap(err))
		}
		// Read every block once, so that damage is found and told now,
		// not by whichever request happens upon it.
		if err := verifyDatastore(d.DB); err != nil {
			d.Close()
			return nil, watch.wrap(err)
		}
		for _, dm := range wals.found() {
			s.log.Warn("datastore: " + dm.String() + "; the search index is rebuilt from what is left; nothing else to do unless records are missing (then restore the repo from a backup)")
			if err := noteRecovery(opts.Dir, "start-up: "+dm.String(), s.now()); err != nil {
				s.log.Warn("datastore: note recovery", "err", err)
			}
			// The index may hold records the datastore lost.
			if err := os.RemoveAll(filepath.Join(opts.Dir, "index")); err != nil {
				d.Close()
				return nil, fmt.Errorf("store: open: %w", err)
			}
		}
		s.ds, s.ownDS = d, true
	default:
		s.ds, s.ownDS = dssync.MutexWrap(ds.NewMapDatastore()), true
	}
	if opts.Dir != "" {
		s.indexDir = filepath.Join(opts.Dir, "index")
		switch {
		case opts.DiskReserve == 0:
			s.disk = &diskGuard{dir: opts.Dir, reserve: DefaultDiskReserve}
		case opts.DiskReserve > 0:
			s.disk = &diskGuard{dir: opts.Dir, reserve: uint64(opts.DiskReserve)}
		}
	}
	ctx := context.Background()
	if err := s.initMeta(ctx); err != nil {
		s.closeDS()
		return nil, watch.wrap(err)
	}
	if err := s.loadFederation(ctx); err != nil {
		s.closeDS()
		return nil, watch.wrap(err)
	}
	if err := s.noteEscrow(ctx); err != nil {
		s.closeDS()
		return nil, watch.wrap(err)
	}
	if err := s.initIndex(ctx); err != nil {
		if s.idx != nil {
			_ = s.idx.Close()
		}
		s.closeDS()
		return nil, watch.wrap(err)
	}
	s.dir = opts.Dir

	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.life = cancel, lctx
	if s.indexDir != "" {
		s.wg.Add(1)
		go s.cleanLoop(lctx)
	}
	if s.indexDir == "" {
		s.wg.Add(1)
		go s.compactLoop(lctx)
	}
	if s.sweepEvery > 0 {
		s.wg.Add(1)
		go s.sweepLoop(lctx)
	}
	return s, nil
}

// noteExpiring sets analyzers.expiring if idx holds a record with an
// expiry.
func (s *Store) noteExpiring(idx bleve.Index) error {
	d, err := idx.FieldDict(fieldExpires)
	if err != nil {
		return fmt.Errorf("store: index: %w", err)
	}
	defer d.Close()
	e, err := d.Next()
	if err != nil {
		return fmt.Errorf("store: index: %w", err)
	}
	if e != nil {
		s.an.expiring.Store(true)
	}
	return nil
}

func (s *Store) closeDS() {
	if s.ownDS {
		_ = s.ds.Close()
	}
}

// initMeta checks the datastore's format and reads (or creates) its
// generation.
func (s *Store) initMeta(ctx context.Context) error {
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	dirty := false
	switch v, err := s.ds.Get(ctx, ds.RawKey(keyFormat)); {
	case errors.Is(err, ds.ErrNotFound):
		if err := b.Put(ctx, ds.RawKey(keyFormat), []byte(formatVersion)); err != nil {
			return fmt.Errorf("store: open: %w", err)
		}
		dirty = true
	case err != nil:
		return fmt.Errorf("store: open: read format: %w", err)
	case string(v) != formatVersion:
		return fmt.Errorf("store: open: datastore format %q, this version reads %q: %w", truncate(string(v)), formatVersion, ErrUnsupportedFormat)
	}
	switch v, err := s.ds.Get(ctx, ds.RawKey(keyGeneration)); {
	case errors.Is(err, ds.ErrNotFound):
		s.generation = randomHex(8)
		if err := b.Put(ctx, ds.RawKey(keyGeneration), []byte(s.generation)); err != nil {
			return fmt.Errorf("store: open: %w", err)
		}
		dirty = true
	case err != nil:
		return fmt.Errorf("store: open: read generation: %w", err)
	default:
		s.generation = string(v)
	}
	if dirty {
		if err := b.Commit(ctx); err != nil {
			return fmt.Errorf("store: open: write meta: %w", err)
		}
	}
	return nil
}

// initIndex opens the index, or rebuilds it when it cannot be trusted.
func (s *Store) initIndex(ctx context.Context) error {
	if s.indexDir == "" {
		return s.rebuild(ctx, "in memory")
	}
	_ = os.RemoveAll(s.indexDir + ".new")
	idx, err := openIndex(s.indexDir)
	reason := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason = "missing"
	case err != nil:
		reason = "unreadable"
		s.log.Warn("search index unreadable, rebuilding", "err", err)
	default:
		format, _ := idx.GetInternal(internalFormat)
		gen, _ := idx.GetInternal(internalGeneration)
		switch {
		case string(format) != indexFormat:
			reason = "format"
		case string(gen) != s.generation:
			reason = "generation"
		}
	}
	if reason == "" {
		s.idx = idx
		if err := s.noteExpiring(idx); err != nil {
			return err
		}
		if err := s.replayMarkers(ctx); err != nil {
			return err
		}
		n, err := s.countRecords(ctx)
		if err != nil {
			return err
		}
		dc, err := idx.DocCount()
		if err == nil && dc == uint64(n) {
			return nil
		}
		reason = "count"
	}
	if idx != nil {
		_ = idx.Close()
	}
	s.idx = nil
	return s.rebuild(ctx, reason)
}

// rebuild builds a new index from the datastore and installs it. The caller
// holds gate exclusively, or is Open.
func (s *Store) rebuild(ctx context.Context, reason string) error {
	start := time.Now()
	idx, n, err := s.buildIndex(ctx)
	if err != nil {
		return fmt.Errorf("store: rebuild index: %w", err)
	}
	s.mu.Lock()
	err = s.installLocked(idx)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("store: rebuild index: %w", err)
	}
	if err := s.clearMarkers(ctx); err != nil {
		s.log.Warn("clearing index markers failed", "err", err)
	}
	s.log.Info("search index rebuilt", "reason", reason, "records", n, "took", time.Since(start))
	return nil
}

// rebuildBatch is the number of documents per index batch while rebuilding.
const rebuildBatch = 1000

// buildIndex indexes every record of the datastore into a new index, in
// indexDir+".new" or in memory, and waits until it is on disk.
func (s *Store) buildIndex(ctx context.Context) (bleve.Index, int, error) {
	start := time.Now()
	path := ""
	if s.indexDir != "" {
		path = s.indexDir + ".new"
		if err := os.RemoveAll(path); err != nil {
			return nil, 0, err
		}
	}
	idx, err := newIndex(path)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (bleve.Index, int, error) {
		_ = idx.Close()
		if path != "" {
			_ = os.RemoveAll(path)
		}
		return nil, 0, err
	}
	// Read and decode in one goroutine while the index analyses the previous
	// chunk in others.
	chunks := make(chan []*document.Document, 2)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		readErr <- s.readDocs(rctx, chunks)
	}()
	n := 0
	batch := idx.NewBatch()
	for chunk := range chunks {
		for _, d := range chunk {
			if err := batch.IndexAdvanced(d); err != nil {
				cancel()
				return fail(err)
			}
		}
		n += len(chunk)
		if err := idx.Batch(batch); err != nil {
			cancel()
			return fail(err)
		}
		batch.Reset()
	}
	if err := <-readErr; err != nil {
		return fail(err)
	}
	batch.SetInternal(internalFormat, []byte(indexFormat))
	batch.SetInternal(internalGeneration, []byte(s.generation))
	indexed := time.Now()
	if err := s.batchAndWait(ctx, idx, batch, path != ""); err != nil {
		return fail(err)
	}
	s.log.Debug("index built", "records", n, "index", indexed.Sub(start), "persist", time.Since(indexed))
	return idx, n, nil
}

// readDocs sends the index documents of every record and every remote
// lesson of the datastore to out, in chunks of rebuildBatch.
func (s *Store) readDocs(ctx context.Context, out chan<- []*document.Document) error {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: nsRecords})
	if err != nil {
		return err
	}
	defer res.Close()
	chunk := make([]*document.Document, 0, rebuildBatch)
	send := func() error {
		select {
		case out <- chunk:
			chunk = make([]*document.Document, 0, rebuildBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for r := range res.Next() {
		if r.Error != nil {
			return r.Error
		}
		id := strings.TrimPrefix(r.Key, nsRecords)
		rec, err := decodeRecord(r.Value)
		if err == nil && rec.ID != id {
			err = fmt.Errorf("record id %q under key of %q", truncate(rec.ID), truncate(id))
		}
		if err != nil {
			// Leave it out of the index; Get reports the damage.
			s.log.Warn("skipping undecodable record", "id", truncate(id), "err", err)
			continue
		}
		chunk = append(chunk, s.an.buildDoc(rec))
		if len(chunk) == rebuildBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	rres, err := s.ds.Query(ctx, dsq.Query{Prefix: nsRemote})
	if err != nil {
		return err
	}
	defer rres.Close()
	for r := range rres.Next() {
		if r.Error != nil {
			return r.Error
		}
		key, ok := keyFromPath(strings.TrimPrefix(r.Key, nsRemote))
		sl, err := decodeRemote(r.Value)
		if err == nil && (!ok || sl.Key() != key) {
			err = errors.New("remote lesson under another key")
		}
		if err != nil {
			s.log.Warn("skipping undecodable remote lesson", "err", err)
			continue
		}
		chunk = append(chunk, s.an.buildRemoteDoc(sl))
		if len(chunk) == rebuildBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if len(chunk) > 0 {
		return send()
	}
	return ctx.Err()
}

// batchAndWait applies batch and, if persist, waits until the index has it
// on disk.
func (s *Store) batchAndWait(ctx context.Context, idx bleve.Index, batch *bleve.Batch, persist bool) error {
	done := make(chan error, 1)
	if persist {
		batch.SetPersistedCallback(func(err error) {
			select {
			case done <- err:
			default:
			}
		})
	}
	if err := idx.Batch(batch); err != nil {
		return err
	}
	if !persist {
		return nil
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// installLocked makes idx the store's index, closing the old one. For an
// index on disk, idx was built in indexDir+".new": it is closed, moved into
// place and reopened. s.mu is held.
func (s *Store) installLocked(idx bleve.Index) error {
	old := s.idx
	s.idx = nil
	if s.indexDir == "" {
		s.idx = idx
		if old != nil {
			_ = old.Close()
		}
		return nil
	}
	if old != nil {
		_ = old.Close()
	}
	if err := idx.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(s.indexDir); err != nil {
		return err
	}
	if err := os.Rename(s.indexDir+".new", s.indexDir); err != nil {
		return err
	}
	syncDir(filepath.Dir(s.indexDir))
	idx, err := bleve.OpenUsing(s.indexDir, indexConfig())
	if err != nil {
		return err
	}
	s.idx = idx
	return nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

// countRecords counts the records and the remote lessons in the datastore
// (the documents the index should hold), expired ones included.
func (s *Store) countRecords(ctx context.Context) (int, error) {
	n := 0
	for _, prefix := range []string{nsRecords, nsRemote} {
		res, err := s.ds.Query(ctx, dsq.Query{Prefix: prefix, KeysOnly: true})
		if err != nil {
			return 0, fmt.Errorf("store: count records: %w", err)
		}
		for r := range res.Next() {
			if r.Error != nil {
				res.Close()
				return 0, fmt.Errorf("store: count records: %w", r.Error)
			}
			n++
		}
		res.Close()
	}
	return n, nil
}

// markerKey returns a new dirty marker key for id.
func (s *Store) markerKey(id string) ds.Key {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.seq.Add(1))
	return ds.RawKey(nsDirty + id + "/" + hex.EncodeToString(b[:]))
}

// markerValue is the (unused) value of a dirty marker.
var markerValue = []byte{1}

// replayMarkers brings the index up to date with every record that has a
// dirty marker: re-indexes it, or removes it from the index if it is gone.
func (s *Store) replayMarkers(ctx context.Context) error {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: nsDirty, KeysOnly: true})
	if err != nil {
		return fmt.Errorf("store: read index markers: %w", err)
	}
	ids := map[string][]ds.Key{}
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return fmt.Errorf("store: read index markers: %w", r.Error)
		}
		rest := strings.TrimPrefix(r.Key, nsDirty)
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		ids[rest[:i]] = append(ids[rest[:i]], ds.RawKey(r.Key))
	}
	res.Close()
	if len(ids) == 0 {
		return nil
	}
	batch := s.idx.NewBatch()
	var markers []ds.Key
	flush := func() error {
		if batch.Size() == 0 {
			return nil
		}
		s.applyIndex(batch, markers)
		batch, markers = s.idx.NewBatch(), nil
		return nil
	}
	for id, keys := range ids {
		doc, err := s.loadDoc(ctx, id)
		switch {
		case err == nil:
			if err := batch.IndexAdvanced(doc); err != nil {
				return fmt.Errorf("store: replay index markers: %w", err)
			}
		case errors.Is(err, ErrNotFound):
			batch.Delete(id)
		default:
			s.log.Warn("skipping undecodable record", "id", truncate(id), "err", err)
			batch.Delete(id)
		}
		markers = append(markers, keys...)
		if batch.Size() >= rebuildBatch {
			_ = flush()
		}
	}
	_ = flush()
	s.log.Info("replayed index updates", "records", len(ids))
	return nil
}

// loadDoc builds the index document of a record or, for an id of the form
// lessonId@nodeId, of a remote lesson, from the datastore.
func (s *Store) loadDoc(ctx context.Context, docID string) (*document.Document, error) {
	if isRemoteDoc(docID) {
		sl, err := s.loadRemote(ctx, docID)
		if err != nil {
			return nil, err
		}
		return s.an.buildRemoteDoc(sl), nil
	}
	rec, err := s.load(ctx, docID)
	if err != nil {
		return nil, err
	}
	return s.an.buildDoc(rec), nil
}

// applyIndex applies b to the index. markers are the dirty markers b
// settles: they are deleted once the index has b on disk. A failure is
// logged: the markers stay, and the next Open repairs the index.
func (s *Store) applyIndex(b *bleve.Batch, markers []ds.Key) {
	s.flushQueuedLocked() // queued updates first: one document's stay in order
	s.applyIndexNow(b, markers)
}

// applyIndexNow applies b to the index (see applyIndex).
func (s *Store) applyIndexNow(b *bleve.Batch, markers []ds.Key) {
	if s.idx == nil {
		return
	}
	if s.testSkipIndex != nil && s.testSkipIndex() {
		return
	}
	if len(markers) > 0 {
		b.SetPersistedCallback(func(err error) {
			if err != nil {
				s.log.Warn("index persist failed, will replay on next open", "err", err)
				return
			}
			s.cleanMu.Lock()
			s.cleanQ = append(s.cleanQ, markers...)
			s.cleanMu.Unlock()
			select {
			case s.cleanCh <- struct{}{}:
			default:
			}
		})
	}
	if err := s.idx.Batch(b); err != nil {
		s.log.Error("index update failed, will replay on next open", "err", err)
	}
	s.indexWrites.Add(1)
	if s.indexDir == "" && s.memWrites.Add(1) >= minCompactWrites {
		select {
		case s.compactCh <- struct{}{}:
		default:
		}
	}
}

// compactLoop rebuilds an in-memory index once the writes since the last
// rebuild outnumber its documents, folding its many one-write segments into
// one: without it, search would slow down and memory grow with every write.
func (s *Store) compactLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.compactCh:
		}
		s.mu.RLock()
		var docs uint64
		if s.idx != nil {
			docs, _ = s.idx.DocCount()
		}
		s.mu.RUnlock()
		if s.memWrites.Load() < max(minCompactWrites, int64(docs)) {
			continue
		}
		s.memWrites.Store(0)
		if err := s.Reindex(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("in-memory index compaction failed", "err", err)
		}
	}
}

// cleanLoop deletes dirty markers whose index updates are on disk.
func (s *Store) cleanLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cleanCh:
		}
		s.mu.RLock()
		if !s.closed {
			s.cleanMarkersLocked(ctx)
		}
		s.mu.RUnlock()
		// Group the deletes of busy periods into fewer commits.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanMarkersLocked deletes the queued dirty markers. s.mu is held.
func (s *Store) cleanMarkersLocked(ctx context.Context) {
	s.cleanMu.Lock()
	keys := s.cleanQ
	s.cleanQ = nil
	s.cleanMu.Unlock()
	if len(keys) == 0 {
		return
	}
	b, err := s.ds.Batch(ctx)
	if err == nil {
		for _, k := range keys {
			if err = b.Delete(ctx, k); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = b.Commit(ctx)
	}
	if err != nil {
		s.log.Warn("deleting index markers failed", "err", err)
	}
}

// clearMarkers deletes every dirty marker: the index was just rebuilt.
func (s *Store) clearMarkers(ctx context.Context) error {
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: nsDirty, KeysOnly: true})
	if err != nil {
		return err
	}
	defer res.Close()
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return err
	}
	n := 0
	for r := range res.Next() {
		if r.Error != nil {
			return r.Error
		}
		if err := b.Delete(ctx, ds.RawKey(r.Key)); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return nil
	}
	return b.Commit(ctx)
}

// lockIDs locks the stripes of ids, in order, and returns the unlock.
func (s *Store) lockIDs(ids ...string) func() {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		stripes = append(stripes, int(h.Sum32()%numStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.stripes[i].Unlock()
		}
	}
}

// beginAdd is beginWrite for a write that adds data: it is refused while
// the disk has less than the reserve free.
func (s *Store) beginAdd() (func(), error) {
	if err := s.disk.check(); err != nil {
		return nil, err
	}
	return s.beginWrite()
}

// beginWrite enters a write: it holds gate shared and mu shared. The
// returned function leaves.
func (s *Store) beginWrite() (func(), error) {
	s.gate.RLock()
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.gate.RUnlock()
		return nil, ErrClosed
	}
	return func() { s.mu.RUnlock(); s.gate.RUnlock() }, nil
}

// beginRead enters a read: it holds mu shared.
func (s *Store) beginRead() (func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.RUnlock, nil
}

// Close stops the sweeper, flushes the index, and closes the index and the
// datastore (unless it was given in Options). It waits for the store's
// goroutines and for calls in progress. A second Close returns an error
// wrapping net.ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closing {
		s.closeMu.Unlock()
		return fmt.Errorf("store: close: %w", ErrClosed)
	}
	s.closing = true
	s.closeMu.Unlock()

	s.cancel()
	s.wg.Wait()
	s.flushIndex() // the queued updates of received lessons
	s.gate.Lock()
	defer s.gate.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	if s.idx != nil {
		if s.indexDir != "" {
			// Let the index persist what it holds, so that the next Open
			// need not replay it. Best effort: markers cover the rest.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			b := s.idx.NewBatch()
			b.SetInternal(internalGeneration, []byte(s.generation))
			if err := s.batchAndWait(ctx, s.idx, b, true); err != nil {
				s.log.Warn("index flush on close failed", "err", err)
			}
			cancel()
			s.cleanMarkersLocked(context.Background())
		}
		errs = append(errs, s.idx.Close())
		s.idx = nil
	}
	if s.ownDS {
		errs = append(errs, s.ds.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// sweepLoop deletes expired records every sweepEvery.
func (s *Store) sweepLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("sweep failed", "err", err)
		case n > 0:
			s.log.Debug("swept expired records", "count", n)
		}
	}
}

// Reindex rebuilds the search index from the datastore. Reads go on using
// the old index meanwhile; writes wait until the new one is in place.
func (s *Store) Reindex(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return fmt.Errorf("store: reindex: %w", ErrClosed)
	}
	return s.rebuild(ctx, "requested")
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

func expired(l *protocol.Lesson, now int64) bool {
	return l.ExpiresAt != 0 && l.ExpiresAt <= now
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
