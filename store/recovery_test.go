package store

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/meshprotocol/mesh/protocol"
)

// logRecorder is a slog handler that keeps messages and their "reason"
// attribute.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	msg := rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			msg += " reason=" + a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) has(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.msgs, func(m string) bool { return strings.HasPrefix(m, prefix) })
}

// openLogged opens a store in dir with a recording logger.
func openLogged(t *testing.T, dir string) (*Store, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	s, err := Open(Options{Dir: dir, SweepInterval: -1, Logger: slog.New(rec)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rec
}

// crash stops s the way kill -9 would, as far as the index is concerned:
// nothing is flushed, and index updates not yet persisted are lost.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.closeMu.Lock()
	s.closing = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.idx != nil {
		_ = s.idx.Close()
	}
	_ = s.ds.Close()
}

// dirtyKeys returns the dirty markers in the datastore of a closed store.
func dirtyKeys(t *testing.T, dir string) []string {
	t.Helper()
	d, err := pebbleds.NewDatastore(filepath.Join(dir, "datastore"), pebbleds.WithPebbleWriteOptions(pebble.Sync))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Query(context.Background(), dsq.Query{Prefix: nsDirty, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	return keys
}

// TestIndexWriteLost writes through the store but skips the index step, as
// if the process died between the datastore commit and the index update,
// and checks that reopening replays the changes.
func TestIndexWriteLost(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := openLogged(t, dir)
	a := mustPut(t, s, lesson("alpha", "first version"))
	c := mustPut(t, s, lesson("gamma", "to be deleted"))

	s.testSkipIndex = func() bool { return true }
	b := mustPut(t, s, lesson("beta", "written while the index was down"))
	upd, _ := s.Get(ctx, a)
	upd.Content = "second version, rewritten"
	mustPut(t, s, upd)
	if del, err := s.Delete(ctx, c); err != nil || !del {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	// The index really missed them.
	if ids := searchIDs(t, s, Query{Text: "written"}); len(ids) != 0 {
		t.Fatalf("index saw a skipped write: %v", ids)
	}
	if !indexHas(t, s, c) {
		t.Fatalf("index saw a skipped delete")
	}
	crash(t, s)

	s2, log := openLogged(t, dir)
	if !log.has("replayed index updates") || log.has("search index rebuilt") {
		t.Fatalf("want a replay, not a rebuild; log: %v", log.msgs)
	}
	if ids := searchIDs(t, s2, Query{Text: "written"}); !slices.Equal(ids, []string{b}) {
		t.Fatalf("search for the lost write: %v", ids)
	}
	if ids := searchIDs(t, s2, Query{Text: "rewritten"}); !slices.Equal(ids, []string{a}) {
		t.Fatalf("search for the lost update: %v", ids)
	}
	if ids := searchIDs(t, s2, Query{Text: "first"}); len(ids) != 0 {
		t.Fatalf("old version still indexed: %v", ids)
	}
	if indexHas(t, s2, c) {
		t.Fatalf("lost delete not replayed")
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the index has persisted the replay, the markers are gone.
	if keys := dirtyKeys(t, dir); len(keys) != 0 {
		t.Fatalf("markers left after a clean close: %v", keys)
	}
}

// TestCrashLosesNothing writes records and stops without any flush: every
// acknowledged record is found after reopening.
func TestCrashLosesNothing(t *testing.T) {
	dir := t.TempDir()
	s, _ := openLogged(t, dir)
	var ids []string
	for i := 0; i < 50; i++ {
		ids = append(ids, mustPut(t, s, lesson("crash", "acknowledged write")))
	}
	crash(t, s)
	s2, _ := openLogged(t, dir)
	res, err := s2.Search(context.Background(), Query{Text: "acknowledged", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != len(ids) {
		t.Fatalf("found %d of %d records after a crash", res.Total, len(ids))
	}
}

func TestCleanCloseLeavesNoMarkers(t *testing.T) {
	dir := t.TempDir()
	s, _ := openLogged(t, dir)
	for i := 0; i < 20; i++ {
		mustPut(t, s, lesson("x", "y"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if keys := dirtyKeys(t, dir); len(keys) != 0 {
		t.Fatalf("markers left: %v", keys)
	}
	_, log := openLogged(t, dir)
	if log.has("search index rebuilt") || log.has("replayed index updates") {
		t.Fatalf("clean reopen did work: %v", log.msgs)
	}
}

// breakIndex damages the index of a closed store in dir and reports the
// rebuild reason Open should give.
func TestIndexRebuilt(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		damage func(t *testing.T, dir string)
	}{
		{"deleted", "missing", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
		}},
		{"files overwritten", "unreadable", func(t *testing.T, dir string) {
			n := 0
			err := filepath.WalkDir(filepath.Join(dir, "index"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				n++
				return os.WriteFile(p, []byte("garbage, not an index file"), 0o600)
			})
			if err != nil || n == 0 {
				t.Fatalf("overwrote %d files: %v", n, err)
			}
		}},
		{"meta removed", "unreadable", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "index", "index_meta.json")); err != nil {
				t.Fatal(err)
			}
		}},
		{"older format", "format", func(t *testing.T, dir string) {
			idx, err := bleve.Open(filepath.Join(dir, "index"))
			if err != nil {
				t.Fatal(err)
			}
			// Wait for the persister: bleve's SetInternal may return
			// before an internal-only change is on disk.
			b := idx.NewBatch()
			b.SetInternal(internalFormat, []byte("0"))
			done := make(chan error, 1)
			b.SetPersistedCallback(func(err error) { done <- err })
			if err := idx.Batch(b); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := idx.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"index of another datastore", "generation", func(t *testing.T, dir string) {
			other := t.TempDir()
			s, _ := openLogged(t, other)
			mustPut(t, s, lesson("stranger", "a record of another store"))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(other, "index"), filepath.Join(dir, "index")); err != nil {
				t.Fatal(err)
			}
		}},
		{"datastore ahead of the index", "count", func(t *testing.T, dir string) {
			d, err := pebbleds.NewDatastore(filepath.Join(dir, "datastore"), pebbleds.WithPebbleWriteOptions(pebble.Sync))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := encodeRecord(&protocol.Lesson{ID: "sneaked", Type: "lesson", Content: "written behind the store's back", CreatedAt: 1})
			if err := d.Put(context.Background(), ds.RawKey(nsRecords+"sneaked"), data); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openLogged(t, dir)
			id := mustPut(t, s, lesson("survivor", "the datastore is the truth"))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			s2, log := openLogged(t, dir)
			if !log.has("search index rebuilt reason=" + tc.reason) {
				t.Fatalf("want a rebuild for %q; log: %v", tc.reason, log.msgs)
			}
			if ids := searchIDs(t, s2, Query{Text: "truth"}); !slices.Equal(ids, []string{id}) {
				t.Fatalf("after rebuild: %v", ids)
			}
			if ids := searchIDs(t, s2, Query{Text: "stranger"}); len(ids) != 0 {
				t.Fatalf("another store's record: %v", ids)
			}
			if tc.reason == "count" {
				if ids := searchIDs(t, s2, Query{Text: "behind"}); !slices.Equal(ids, []string{"sneaked"}) {
					t.Fatalf("record written behind the store's back: %v", ids)
				}
			}
			// The rebuilt index is trusted on the next open.
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			_, log = openLogged(t, dir)
			if log.has("search index rebuilt") {
				t.Fatalf("rebuilt again: %v", log.msgs)
			}
		})
	}
}

func TestReindex(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"", t.TempDir()} {
		s, err := Open(Options{Dir: dir, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		id := mustPut(t, s, lesson("reindex", "rebuilt from the datastore"))
		if err := s.Reindex(ctx); err != nil {
			t.Fatal(err)
		}
		if ids := searchIDs(t, s, Query{Text: "rebuilt"}); !slices.Equal(ids, []string{id}) {
			t.Fatalf("dir %q: after Reindex: %v", dir, ids)
		}
		id2 := mustPut(t, s, lesson("after", "written after the rebuild"))
		if ids := searchIDs(t, s, Query{Text: "written"}); !slices.Equal(ids, []string{id2}) {
			t.Fatalf("dir %q: write after Reindex: %v", dir, ids)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Reindex(ctx); err == nil {
			t.Fatal("Reindex after Close succeeded")
		}
	}
}

func TestUnsupportedFormat(t *testing.T) {
	d := newMemDS()
	if err := d.Put(context.Background(), ds.RawKey(keyFormat), []byte("99")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Datastore: d})
	if err == nil || !errorsIs(err, ErrUnsupportedFormat) || !errorsIs(err, protocol.ErrUnsupportedVersion) {
		t.Fatalf("Open = %v", err)
	}
}

// indexHas reports whether the index holds a document for id, whatever the
// datastore says.
func indexHas(t *testing.T, s *Store, id string) bool {
	t.Helper()
	req := bleve.NewSearchRequest(bleve.NewDocIDQuery([]string{id}))
	res, err := s.idx.Search(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Total == 1
}
