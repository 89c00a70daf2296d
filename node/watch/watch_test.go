package watch_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/watch"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// follows is the node's followed topics, as the service sees them.
type follows struct {
	mu     sync.Mutex
	topics []string
}

func (f *follows) following(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.topics), nil
}

func (f *follows) follow(_ context.Context, t string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topics = append(f.topics, t)
	return nil
}

func open(t *testing.T, dir string, f *follows) (*store.Store, *watch.Service) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := watch.New(context.Background(), watch.Deps{Store: st, Self: "self-node", Following: f.following, Follow: f.follow})
	if err != nil {
		t.Fatal(err)
	}
	return st, s
}

// TestWatchService: bad specs are refused with a clear error; a topic not
// followed is followed; a private record stored here matches (and one
// that does not fit the query does not); a waiting poll wakes at the
// match; the queries persist across a restart; a removed query is gone.
func TestWatchService(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := &follows{topics: []string{"rust"}}
	st, s := open(t, filepath.Join(dir, "repo"), f)

	for _, bad := range []api.WatchSpec{
		{Query: strings.Repeat("x", protocol.MaxSearchQueryLength+1)},
		{Query: "x", Sources: []string{"bob"}},
		{Query: "x", Topic: "no spaces allowed"},
	} {
		if _, err := s.Add(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Add(%.40v): %v, want ErrInvalid", bad, err)
		}
	}
	added, err := s.Add(ctx, api.WatchSpec{Query: "linker memory", Topic: "Async"})
	if err != nil || added.Followed != "async" || added.Watch.Topic != "async" {
		t.Fatalf("Add on a topic not followed: %+v %v", added, err)
	}
	if ts, _ := f.following(ctx); !slices.Contains(ts, "async") {
		t.Fatalf("the watch did not follow its topic: %v", ts)
	}
	self, err := s.Add(ctx, api.WatchSpec{Query: "humidity > 60", Sources: []string{"self", "self"}})
	if err != nil || len(self.Watch.Sources) != 1 || self.Followed != "" {
		t.Fatalf("Add from self: %+v %v", self, err)
	}

	// A poll waiting for the next match wakes when it comes.
	got := make(chan *api.WatchPollResult, 1)
	go func() {
		res, err := s.Poll(ctx, 0, 10, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	for _, rec := range []*protocol.Lesson{
		{Type: "reading", Content: "basement", Extra: map[string]json.RawMessage{"humidity": json.RawMessage("55")}},
		{Type: "reading", Content: "attic", Extra: map[string]json.RawMessage{"humidity": json.RawMessage("71")}},
	} {
		id, _, err := st.Put(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		rec.ID = id
		s.Stored(rec)
	}
	res := <-got
	if len(res.Matches) != 1 || res.Matches[0].Watch != self.Watch.ID || res.Matches[0].Lesson.Content != "attic" || res.Matches[0].Origin != "local" {
		t.Fatalf("poll: %+v", res)
	}
	if res, err := s.Poll(ctx, res.Next, 10, 0); err != nil || len(res.Matches) != 0 {
		t.Fatalf("poll after the last match: %+v %v", res, err)
	}
	if _, err := s.Poll(ctx, 0, -1, 0); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("poll with a negative limit: %v", err)
	}

	// Restart: both queries are back.
	s.Close()
	st.Close()
	st, s = open(t, filepath.Join(dir, "repo"), f)
	defer st.Close()
	defer s.Close()
	if ws := s.List(); len(ws) != 2 || ws[0].ID != added.Watch.ID || ws[1].ID != self.Watch.ID {
		t.Fatalf("after a restart: %+v", ws)
	}
	if ok, err := s.Remove(ctx, added.Watch.ID); !ok || err != nil {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if ok, _ := s.Remove(ctx, added.Watch.ID); ok {
		t.Fatal("a removed watch removed again")
	}
	if ws := s.List(); len(ws) != 1 {
		t.Fatalf("after Remove: %+v", ws)
	}
}

// TestWatchMatchesFromItsAddition: a standing query matches the received
// lessons logged after it was added, not one logged just before, even when
// the service reads both after the addition; and a node with no standing
// query skips its log without matching anything.
func TestWatchMatchesFromItsAddition(t *testing.T) {
	ctx := context.Background()
	st, s := open(t, filepath.Join(t.TempDir(), "repo"), &follows{})
	defer st.Close()
	defer s.Close()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string) {
		t.Helper()
		now := time.Now()
		sl, err := protocol.Sign(priv, &protocol.Lesson{ID: id, Type: "lesson", Title: "linker memory " + id, Content: "the linker keeps every symbol", CreatedAt: now.UnixMilli()},
			protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli()}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutRemote(ctx, sl); err != nil {
			t.Fatal(err)
		}
	}
	// With no query, the service reads past this lesson unmatched.
	put("skipped")
	waitCursor(t, s, st)

	put("before")
	w, err := s.Add(ctx, api.WatchSpec{Query: "linker"})
	if err != nil {
		t.Fatal(err)
	}
	put("after")
	res, err := s.Poll(ctx, 0, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 || res.Matches[0].Watch != w.Watch.ID || res.Matches[0].Lesson.ID != "after" || res.Matches[0].Origin != "remote" {
		t.Fatalf("matches: %+v", res.Matches)
	}
	if res, err := s.Poll(ctx, res.Next, 10, 200*time.Millisecond); err != nil || len(res.Matches) != 0 {
		t.Fatalf("a lesson logged before the query matched it: %+v %v", res, err)
	}
}

// waitCursor waits until the service has read the store's log to its end.
func waitCursor(t *testing.T, s *watch.Service, st *store.Store) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.Cursor() != st.LogEnd(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the service read the log to %d, not to its end %d", s.Cursor(), st.LogEnd())
		}
	}
}
