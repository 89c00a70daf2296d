package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/protocol"
)

// putMany stores n lessons with some bulk and returns their IDs.
func putMany(t *testing.T, s *Store, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, _, err := s.Put(context.Background(), &protocol.Lesson{Type: "lesson", Title: fmt.Sprintf("lesson %d", i), Content: fmt.Sprintf("marker%d %s", i, strings.Repeat("bulk text ", 100))})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

func files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "datastore", "*"+suffix))
	return m
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xa5", 16)), at); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedWALIsReported: a write-ahead log damaged in the middle loses
// the writes after the damage (pebble replays up to it); the store says
// so at start-up and keeps it for mesh status.
func TestDamagedWALIsReported(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ids := putMany(t, s, 60)
	// What kill -9 leaves: the datastore as it is on disk while open (its
	// writes synced in the log, no memtable flushed).
	crashed := t.TempDir()
	if err := copyDir(filepath.Join(dir, "datastore"), filepath.Join(crashed, "datastore")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	dir = crashed
	// The log that holds the writes: the largest.
	var wal string
	var size int64
	for _, l := range files(t, dir, ".log") {
		if fi, err := os.Stat(l); err == nil && fi.Size() > size {
			wal, size = l, fi.Size()
		}
	}
	if size < 1000 {
		t.Fatalf("no write-ahead log with the writes: %q %d", wal, size)
	}
	flip(t, wal, size/2)
	s2, rec := openLogged(t, dir)
	kept := 0
	for _, id := range ids {
		if _, err := s2.Get(context.Background(), id); err == nil {
			kept++
		}
	}
	st, err := s2.Status(context.Background())
	if err != nil || kept >= len(ids) || st.Total != kept {
		t.Fatalf("%d of %d records after the damage, the index counts %+v (%v)", kept, len(ids), st, err)
	}
	if !rec.has("datastore: the write-ahead log " + filepath.Base(wal)) {
		t.Fatalf("no warning about the damaged log: %v", rec)
	}
	if lr := LastRecovery(dir); !strings.Contains(lr, filepath.Base(wal)) || !strings.Contains(lr, "lost") {
		t.Fatalf("last recovery: %q", lr)
	}
}

// TestDamagedSSTAndRepair: a table with flipped bytes makes Open fail
// with one paragraph naming the file and what to do; Repair copies what
// can be read, and the store opens again.
func TestDamagedSSTAndRepair(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ids := putMany(t, s, 300)
	s.Close()
	s, err = Open(Options{Dir: dir, SweepInterval: -1}) // the log becomes a table
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ssts := files(t, dir, ".sst")
	if len(ssts) == 0 {
		t.Fatal("no table")
	}
	fi, _ := os.Stat(ssts[0])
	flip(t, ssts[0], fi.Size()/2)
	_, err = Open(Options{Dir: dir, SweepInterval: -1})
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != filepath.Base(ssts[0]) {
		t.Fatalf("open a damaged datastore: %v", err)
	}
	for _, want := range []string{filepath.Base(ssts[0]), "mesh repair", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("not one paragraph: %q", err)
	}

	rep, err := Repair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied == 0 || len(rep.Lost) == 0 {
		t.Fatalf("repair: %+v", rep)
	}
	s, err = Open(Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	defer s.Close()
	kept := 0
	for _, id := range ids {
		if _, err := s.Get(context.Background(), id); err == nil {
			kept++
		}
	}
	st, err := s.Status(context.Background())
	if err != nil || st.Total != kept || kept == 0 {
		t.Fatalf("after repair %d of %d records readable, status %+v %v", kept, len(ids), st, err)
	}
	t.Logf("repair kept %d of %d records; lost %v", kept, len(ids), rep.Lost)
	if lr := LastRecovery(dir); !strings.Contains(lr, "mesh repair") {
		t.Fatalf("last recovery: %q", lr)
	}
}
