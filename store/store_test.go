package store

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/meshprotocol/mesh/protocol"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) MS() int64 { return c.Now().UnixMilli() }

// openStore opens a store on pebble in dir (t.TempDir() if ""), closed at
// cleanup.
func openStore(t testing.TB, dir string, clk *clock) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	opts := Options{Dir: dir, SweepInterval: -1}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func lesson(title, content string, tags ...string) *protocol.Lesson {
	return &protocol.Lesson{Type: protocol.TypeLesson, Title: title, Content: content, Tags: tags}
}

func mustPut(t testing.TB, s *Store, rec *protocol.Lesson) string {
	t.Helper()
	id, _, err := s.Put(context.Background(), rec)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

func searchIDs(t testing.TB, s *Store, q Query) []string {
	t.Helper()
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	return ids
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openStore(t, "", clk)

	rec := lesson("Retry with backoff", "Use exponential backoff when the API rate-limits.", "http", "retry")
	id, created, err := s.Put(ctx, rec)
	if err != nil || !created {
		t.Fatalf("Put = %q, %v, %v", id, created, err)
	}
	if rec.ID != "" || rec.CreatedAt != 0 || rec.Visibility != "" {
		t.Fatalf("Put modified the caller's record: %+v", rec)
	}
	if len(id) != len("lesson_")+16 || id[:7] != "lesson_" {
		t.Fatalf("generated id %q", id)
	}
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != clk.MS() || got.UpdatedAt != 0 || got.Visibility != protocol.VisibilityPrivate || got.Title != rec.Title {
		t.Fatalf("Get = %+v", got)
	}

	clk.Add(time.Second)
	upd := got.Clone()
	upd.CreatedAt = 0
	upd.Content = "changed"
	_, created, err = s.Put(ctx, upd)
	if err != nil || created {
		t.Fatalf("update: created=%v err=%v", created, err)
	}
	got2, _ := s.Get(ctx, id)
	if got2.CreatedAt != got.CreatedAt || got2.UpdatedAt != clk.MS() || got2.Content != "changed" {
		t.Fatalf("after update: %+v", got2)
	}

	_, err = s.Get(ctx, "nope")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("Get missing: %v", err)
	}
	del, err := s.Delete(ctx, id)
	if err != nil || !del {
		t.Fatalf("Delete = %v, %v", del, err)
	}
	del, err = s.Delete(ctx, id)
	if err != nil || del {
		t.Fatalf("Delete again = %v, %v", del, err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	if ids := searchIDs(t, s, Query{Text: "backoff"}); len(ids) != 0 {
		t.Fatalf("deleted record still found: %v", ids)
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, lesson("a", "b"))
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("close took %v", time.Since(start))
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Get(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
}

func newMemDS() ds.Batching { return dssync.MutexWrap(ds.NewMapDatastore()) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
