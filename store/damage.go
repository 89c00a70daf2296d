package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/wal"

	"github.com/meshprotocol/mesh/internal/atomicfile"
)

// This file holds what the store does about damaged storage: it tells,
// in one paragraph, which file is damaged, what was lost if it can tell,
// and what to do; Repair salvages what can still be read; the last
// recovery is kept in RecoveryFile for mesh status.

// RecoveryFile, in the store's Dir, describes the last recovery: a
// damaged write-ahead log found at start-up, or a Repair.
const RecoveryFile = "last-recovery"

// ErrCorrupt: a file of the datastore is damaged (a checksum does not
// match). The error is a *CorruptionError that says which file and what
// to do.
var ErrCorrupt error = &sentinel{"datastore damaged", nil}

// CorruptionError says which file of the datastore is damaged, what may be
// lost, and what to do, in one paragraph.
type CorruptionError struct {
	// Dir is the store's directory.
	Dir string
	// File is the damaged file ("001949.sst", "001945.log"), or "" if
	// pebble did not say.
	File string
	// Lost says what the damage costs, as far as it can be told.
	Lost string
	// Detail is pebble's own one-line account.
	Detail string
}

func (e *CorruptionError) Error() string {
	file := "a file of the datastore"
	if e.File != "" {
		file = filepath.Join(e.Dir, "datastore", e.File)
	}
	lost := e.Lost
	if lost == "" {
		lost = "what it held cannot be read"
	}
	return fmt.Sprintf("store: the datastore is damaged: %s fails its checksum (%s); %s. "+
		"To recover, stop the daemon and run `mesh repair` (it keeps a copy of the damaged datastore, copies every record "+
		"it can still read into a new one, says what it could not read, and rebuilds the search index), "+
		"or restore the repo from a backup", file, e.Detail, lost)
}

func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// corruptionWatch collects what pebble reports as on-disk corruption
// instead of letting it end the process (pebble's default DataCorruption
// handler calls Fatalf).
type corruptionWatch struct {
	dir string
	log *slog.Logger

	mu    sync.Mutex
	first *CorruptionError
}

func (w *corruptionWatch) dataCorruption(info pebble.DataCorruptionInfo) {
	e := &CorruptionError{Dir: w.dir, File: filepath.Base(info.Path), Detail: firstLine(fmt.Sprint(info.Details))}
	if len(info.Bounds.Start) > 0 {
		e.Lost = fmt.Sprintf("the records stored in it, keys %s to %s, may be lost; the rest of the datastore is intact",
			keyName(info.Bounds.Start), keyName(info.Bounds.End.Key))
	}
	w.mu.Lock()
	if w.first == nil {
		w.first = e
	}
	w.mu.Unlock()
	w.log.Error("datastore damaged: run mesh repair or restore the repo from a backup", "file", e.File, "detail", e.Detail)
}

// wrap turns err into the CorruptionError pebble reported, if it is about
// corruption.
func (w *corruptionWatch) wrap(err error) error {
	if err == nil || w == nil {
		return err
	}
	w.mu.Lock()
	first := w.first
	w.mu.Unlock()
	if first != nil {
		return first
	}
	if errors.Is(err, pebble.ErrCorruption) {
		e := &CorruptionError{Dir: w.dir, Detail: firstLine(err.Error())}
		if f := damagedFile(err.Error()); f != "" {
			e.File = f
		}
		return e
	}
	return err
}

// pebbleLogger keeps pebble's messages to one line each, in the store's
// log; pebble's informational chatter is dropped, except the end of the
// replay of each write-ahead log, which it checks (walCheck).
type pebbleLogger struct {
	log  *slog.Logger
	wals *walCheck // nil: not checked
}

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.wals != nil && strings.Contains(format, "stopped reading at offset") && len(args) >= 3 {
		if off, ok := args[2].(wal.Offset); ok {
			l.wals.check(off.PhysicalFile)
		}
	}
}

// walCheck reads each write-ahead log pebble replayed, as pebble finished
// replaying it (before it is flushed and recycled), to tell a log read to
// its end from one pebble stopped reading at a damaged record: pebble
// replays the most recent log up to its first bad record and says nothing.
type walCheck struct {
	mu      sync.Mutex
	damaged []walDamage
}

func (c *walCheck) check(path string) {
	if d, ok := checkWAL(path); ok {
		c.mu.Lock()
		c.damaged = append(c.damaged, d)
		c.mu.Unlock()
	}
}

func (c *walCheck) found() []walDamage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]walDamage(nil), c.damaged...)
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("datastore", "err", firstLine(fmt.Sprintf(format, args...)))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := firstLine(fmt.Sprintf(format, args...))
	l.log.Error("datastore failed", "err", msg)
	fmt.Fprintf(os.Stderr, "mesh: the datastore failed and the process must stop: %s\n", msg)
	os.Exit(2)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// damagedFile finds a pebble file name ("001949.sst", "001945.log") in a
// pebble error message.
func damagedFile(msg string) string {
	for _, f := range strings.FieldsFunc(msg, func(r rune) bool {
		return r == ' ' || r == '/' || r == ':' || r == ',' || r == ';' || r == '(' || r == ')'
	}) {
		if (strings.HasSuffix(f, ".sst") || strings.HasSuffix(f, ".log") || strings.HasPrefix(f, "MANIFEST-")) && len(f) > 4 {
			return f
		}
	}
	if i := strings.Index(msg, "wal "); i >= 0 {
		if n := strings.Fields(msg[i+4:]); len(n) > 0 {
			return strings.Trim(n[0], "(),") + ".log"
		}
	}
	return ""
}

// keyName shows a datastore key for a person: printable as it is, else
// quoted.
func keyName(k []byte) string {
	if len(k) == 0 {
		return "(the end)"
	}
	s := string(k)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}

// walDamage is a write-ahead log that does not read to its end.
type walDamage struct {
	file         string
	offset, size int64
	// definite: a chunk in the middle is invalid (not a write cut short by
	// a crash at the end of the log).
	definite bool
}

func (d walDamage) String() string {
	how := "ends in a damaged or unfinished record"
	if d.definite {
		how = "is damaged"
	}
	return fmt.Sprintf("the write-ahead log %s %s at byte %d of %d: the writes after that point (up to %d bytes) could not be replayed and are lost; if the node was stopped in the middle of a write, only that unacknowledged write was",
		d.file, how, d.offset, d.size, d.size-d.offset)
}

// checkWALs checks every write-ahead log of the pebble directory dir, as
// checkWAL does, obsolete ones included.
func checkWALs(dir string) []walDamage {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []walDamage
	for _, e := range ents {
		if d, ok := checkWAL(filepath.Join(dir, e.Name())); ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].file < out[j].file })
	return out
}

// checkWAL reads the write-ahead log at path and says where it is damaged,
// if it does not read to a clean end.
func checkWAL(path string) (walDamage, bool) {
	name := filepath.Base(path)
	num, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 10, 64)
	if !strings.HasSuffix(name, ".log") || err != nil {
		return walDamage{}, false
	}
	f, err := os.Open(path)
	if err != nil {
		return walDamage{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return walDamage{}, false
	}
	r := newRecordReader(record.NewReader, f, num)
	var rerr error
	var off int64 // where the record being read starts
	for {
		off = r.Offset()
		rec, err := r.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		if err != nil {
			rerr = err
			break
		}
	}
	definite := errors.Is(rerr, record.ErrInvalidChunk) || errors.Is(rerr, record.ErrZeroedChunk)
	if !definite && !errors.Is(rerr, record.ErrUnexpectedEOF) {
		return walDamage{}, false // a clean end (or an I/O error pebble reports itself)
	}
	off = min(off, fi.Size())
	if !definite && allZero(path, off) {
		return walDamage{}, false // preallocated space, not damage
	}
	return walDamage{file: name, offset: off, size: fi.Size(), definite: definite}, true
}

// newRecordReader calls record.NewReader with a log number of pebble's
// internal type, which only type inference can name here.
func newRecordReader[N ~uint64](newReader func(io.Reader, N) *record.Reader, r io.Reader, num uint64) *record.Reader {
	return newReader(r, N(num))
}

// allZero reports whether the file at path holds only zero bytes from off.
func allZero(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if bytes.IndexFunc(buf[:n], func(r rune) bool { return r != 0 }) >= 0 {
			return false
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// noteRecovery records what a recovery did in RecoveryFile, with the time.
func noteRecovery(dir, what string, now time.Time) error {
	line := now.UTC().Format(time.RFC3339) + " " + what + "\n"
	return atomicfile.WriteFile(filepath.Join(dir, RecoveryFile), []byte(line), 0o600)
}

// LastRecovery returns what the last recovery of the store in dir did
// ("2026-12-04T19:22:57Z repaired: ..."), or "" if there was none.
func LastRecovery(dir string) string {
	if dir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, RecoveryFile))
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return strings.TrimSpace(string(b))
}

// verifyDatastore reads every key and value of db, which checks the
// checksum of every block: a damaged file is found at start-up.
func verifyDatastore(db *pebble.DB) error {
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if _, err := it.ValueAndErr(); err != nil {
			break
		}
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}

// RepairReport says what Repair did.
type RepairReport struct {
	// Backup is where the damaged datastore was copied, untouched.
	Backup string
	// Copied is the number of keys copied into the new datastore.
	Copied int
	// Lost describes each key range that could not be read, and each
	// damaged write-ahead log; empty if nothing was lost.
	Lost []string
}

// Repair salvages the datastore of the store in dir, which must not be
// open: it copies the datastore aside (dir/datastore.damaged-TIME), cuts
// damaged write-ahead logs at their first bad record (pebble then replays
// what came before), copies every key it can read into a new datastore,
// skipping past damaged blocks, puts the new one in place, and removes the
// search index (the next Open rebuilds it from the datastore). It records
// what it did in RecoveryFile.
func Repair(dir string, log *slog.Logger) (*RepairReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dbDir := filepath.Join(dir, "datastore")
	if _, err := os.Stat(filepath.Join(dbDir, "CURRENT")); err != nil {
		if _, err2 := os.Stat(dbDir); err2 != nil {
			return nil, fmt.Errorf("store: repair: no datastore in %s: %w", dir, err2)
		}
	}
	now := time.Now()
	rep := &RepairReport{Backup: filepath.Join(dir, "datastore.damaged-"+now.UTC().Format("20060102T150405Z"))}
	if err := copyDir(dbDir, rep.Backup); err != nil {
		return nil, fmt.Errorf("store: repair: back up the datastore: %w", err)
	}
	// Repair reports what it could not read itself: pebble's reports of
	// each damaged block it runs into on the way are not logged.
	watch := &corruptionWatch{dir: dir, log: slog.New(slog.DiscardHandler)}
	wals := &walCheck{}
	popts := func() *pebble.Options {
		return &pebble.Options{Logger: pebbleLogger{log: log, wals: wals}, EventListener: &pebble.EventListener{DataCorruption: watch.dataCorruption}}
	}
	so := popts()
	so.ReadOnly = true
	src, err := pebble.Open(dbDir, so)
	if err != nil && errors.Is(err, pebble.ErrCorruption) {
		// A log pebble will not replay past: cut every damaged log at its
		// first bad record, and replay what comes before.
		for _, d := range checkWALs(dbDir) {
			if err := os.Truncate(filepath.Join(dbDir, d.file), d.offset); err != nil {
				return nil, fmt.Errorf("store: repair: cut %s: %w", d.file, err)
			}
		}
		so = popts()
		so.ReadOnly = true
		src, err = pebble.Open(dbDir, so)
	}
	for _, d := range wals.found() {
		rep.Lost = append(rep.Lost, d.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: repair: open the damaged datastore (restore the repo from a backup; the damaged datastore is in %s): %w", rep.Backup, err)
	}
	newDir := dbDir + ".repair"
	os.RemoveAll(newDir)
	dst, err := pebble.Open(newDir, popts())
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("store: repair: create a new datastore: %w", err)
	}
	n, gaps, err := salvage(src, dst)
	rep.Copied = n
	rep.Lost = append(rep.Lost, gaps...)
	if err == nil {
		err = dst.Flush()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	src.Close()
	if err != nil {
		return nil, fmt.Errorf("store: repair: %w", err)
	}
	if err := os.RemoveAll(dbDir); err != nil {
		return nil, fmt.Errorf("store: repair: %w", err)
	}
	if err := os.Rename(newDir, dbDir); err != nil {
		return nil, fmt.Errorf("store: repair: %w", err)
	}
	syncDir(dir)
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		return nil, fmt.Errorf("store: repair: remove the index: %w", err)
	}
	what := fmt.Sprintf("mesh repair: copied %d keys into a new datastore; the damaged one is in %s; ", rep.Copied, rep.Backup)
	if len(rep.Lost) == 0 {
		what += "nothing was lost"
	} else {
		what += "lost: " + strings.Join(rep.Lost, "; ")
	}
	if err := noteRecovery(dir, what, now); err != nil {
		return rep, err
	}
	return rep, nil
}

// salvage copies every key of src it can read into dst. At a damaged
// block it looks for the next key it can read, and goes on from there; each
// range skipped is described in gaps.
func salvage(src, dst *pebble.DB) (copied int, gaps []string, err error) {
	var lower []byte
	for round := 0; round < 10000; round++ {
		it, err := src.NewIter(&pebble.IterOptions{LowerBound: lower})
		if err != nil {
			return copied, gaps, err
		}
		b := dst.NewBatch()
		var last []byte
		for it.First(); it.Valid(); it.Next() {
			v, verr := it.ValueAndErr()
			if verr != nil {
				break
			}
			if err := b.Set(it.Key(), v, nil); err != nil {
				it.Close()
				return copied, gaps, err
			}
			last = append(last[:0], it.Key()...)
			copied++
			if b.Len() > 4<<20 {
				if err := b.Commit(pebble.Sync); err != nil {
					it.Close()
					return copied, gaps, err
				}
				b = dst.NewBatch()
			}
		}
		ierr := it.Error()
		it.Close()
		if err := b.Commit(pebble.Sync); err != nil {
			return copied, gaps, err
		}
		if ierr == nil {
			return copied, gaps, nil
		}
		from := last
		if from == nil {
			from = lower
		}
		next, ok := nextReadable(src, from)
		if !ok {
			gaps = append(gaps, fmt.Sprintf("every key after %s (unreadable)", keyName(from)))
			return copied, gaps, nil
		}
		gaps = append(gaps, fmt.Sprintf("the keys after %s and before %s (unreadable)", keyName(from), keyName(next)))
		lower = next
	}
	return copied, gaps, errors.New("too many damaged blocks")
}

// nextReadable finds a key after from where reading works again: it seeks
// to from with its last byte incremented, then its last but one, and so on,
// each a larger step past the damage.
func nextReadable(src *pebble.DB, from []byte) ([]byte, bool) {
	if len(from) == 0 {
		from = []byte{0}
	}
	for i := len(from) - 1; i >= 0; i-- {
		if from[i] == 0xff {
			continue
		}
		c := append([]byte(nil), from[:i+1]...)
		c[i]++
		it, err := src.NewIter(&pebble.IterOptions{LowerBound: c})
		if err != nil {
			continue
		}
		ok := it.First()
		if ok {
			_, verr := it.ValueAndErr()
			ok = verr == nil
		}
		var key []byte
		if ok {
			key = append(key, it.Key()...)
		}
		ierr := it.Error()
		it.Close()
		if ierr == nil && !ok {
			return nil, false // nothing after: the damage ran to the end
		}
		if ierr == nil && ok {
			return key, true
		}
	}
	return nil, false
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = io.Copy(out, in)
			if serr := out.Sync(); err == nil {
				err = serr
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err != nil {
			return err
		}
	}
	syncDir(dst)
	return nil
}
