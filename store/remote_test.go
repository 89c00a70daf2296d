package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// peerKey is a publisher: an Ed25519 key and its node ID.
type peerKey struct {
	priv ed25519.PrivateKey
	id   string
}

func newPeer(t testing.TB, n byte) peerKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	priv := ed25519.NewKeyFromSeed(seed)
	id, err := protocol.NodeID(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return peerKey{priv, id}
}

// sign makes a signed lesson of p, published at publishedAt.
func (p peerKey) sign(t testing.TB, id, title, content, visibility string, publishedAt int64, topics ...string) *protocol.SignedLesson {
	t.Helper()
	l := &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: title, Content: content, CreatedAt: publishedAt}
	sl, err := protocol.Sign(p.priv, l, protocol.Publication{Visibility: visibility, PublishedAt: publishedAt, Topics: topics}, time.UnixMilli(publishedAt))
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{AllowOld: true, Now: time.UnixMilli(publishedAt)}); err != nil {
		t.Fatal(err)
	}
	return sl
}

func (p peerKey) revoke(t testing.TB, id string, at int64) *protocol.Revocation {
	t.Helper()
	r, err := protocol.SignRevocation(p.priv, id, protocol.ReasonOutdated, time.UnixMilli(at))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// openFed opens a store on pebble in dir with SelfID self.
func openFed(t testing.TB, dir string, clk *clock, self string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(Options{Dir: dir, SweepInterval: -1, Now: clk.Now, SelfID: self})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPutRemote(t testing.TB, s *Store, sl *protocol.SignedLesson) {
	t.Helper()
	if err := s.PutRemote(context.Background(), sl); err != nil {
		t.Fatalf("PutRemote(%s): %v", sl.Key(), err)
	}
}

// searchKeys returns the hits of q as keys (remote) or ids (own).
func searchKeys(t testing.TB, s *Store, q Query) []string {
	t.Helper()
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	var out []string
	for _, h := range res.Hits {
		if h.Key != "" {
			out = append(out, h.Key)
		} else {
			out = append(out, h.ID)
		}
	}
	sort.Strings(out)
	return out
}

// logKeys pages through the whole log with page size limit and returns the
// entries as "L key@publishedAt" or "R key".
func logKeys(t testing.TB, s *Store, limit int, f LogFilter) []string {
	t.Helper()
	var out []string
	after := uint64(0)
	for range 1000 {
		entries, next, more, err := s.Log(context.Background(), after, limit, f)
		if err != nil {
			t.Fatalf("Log: %v", err)
		}
		if limit > 0 && len(entries) > limit {
			t.Fatalf("Log returned %d entries, limit %d", len(entries), limit)
		}
		last := after
		for _, e := range entries {
			if e.Seq <= last {
				t.Fatalf("Log: seq %d after %d", e.Seq, last)
			}
			last = e.Seq
			switch {
			case e.Encrypted != nil && e.Lesson == nil && e.Revocation == nil:
				out = append(out, fmt.Sprintf("E %s@%d", e.Encrypted.Key(), e.Encrypted.Publication.PublishedAt))
			case e.Lesson != nil && e.Revocation == nil:
				out = append(out, fmt.Sprintf("L %s@%d", e.Lesson.Key(), e.Lesson.Publication.PublishedAt))
			case e.Revocation != nil && e.Lesson == nil:
				out = append(out, "R "+e.Revocation.Key())
			default:
				t.Fatalf("entry %d has %v and %v", e.Seq, e.Lesson, e.Revocation)
			}
		}
		if next < last {
			t.Fatalf("next %d before the last entry %d", next, last)
		}
		if !more {
			return out
		}
		after = next
	}
	t.Fatal("Log never ended")
	return nil
}

func TestPutRemoteSupersession(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openFed(t, "", clk, "")
	p := newPeer(t, 1)
	t0 := clk.MS()

	v2 := p.sign(t, "tip", "Retry", "second version mentions jitter", "public", t0+2000)
	mustPutRemote(t, s, v2)
	key := v2.Key()
	if at, ok := s.HeldVersion(ctx, key); !ok || at != t0+2000 {
		t.Fatalf("HeldVersion = %d, %v", at, ok)
	}

	// Older arriving later, and the same version again: stale, nothing
	// written.
	v1 := p.sign(t, "tip", "Retry", "first version mentions backoff", "public", t0+1000)
	if err := s.PutRemote(ctx, v1); !errors.Is(err, ErrStale) {
		t.Fatalf("older: %v", err)
	}
	if err := s.PutRemote(ctx, v2); !errors.Is(err, ErrStale) {
		t.Fatalf("equal: %v", err)
	}
	if got := searchKeys(t, s, Query{Text: "backoff", Origin: OriginRemote}); len(got) != 0 {
		t.Fatalf("the stale version was indexed: %v", got)
	}

	// Newer replaces: the index finds the new text only.
	v3 := p.sign(t, "tip", "Retry", "third version mentions deadlines", "public", t0+3000)
	mustPutRemote(t, s, v3)
	if got := searchKeys(t, s, Query{Text: "deadlines", Origin: OriginRemote}); !slices.Equal(got, []string{key}) {
		t.Fatalf("new text: %v", got)
	}
	if got := searchKeys(t, s, Query{Text: "jitter", Origin: OriginRemote}); len(got) != 0 {
		t.Fatalf("old text still found: %v", got)
	}
	got, err := s.Remote(ctx, key)
	if err != nil || got.Publication.PublishedAt != t0+3000 || got.Signature.Sig != v3.Signature.Sig {
		t.Fatalf("Remote = %+v, %v", got, err)
	}
	if err := protocol.Verify(got, protocol.VerifyOptions{AllowOld: true, Now: clk.Now()}); err != nil {
		t.Fatalf("the stored lesson no longer verifies: %v", err)
	}
	if at, _ := s.HeldVersion(ctx, key); at != t0+3000 {
		t.Fatalf("HeldVersion = %d", at)
	}
	if got := logKeys(t, s, 0, LogFilter{}); !slices.Equal(got, []string{fmt.Sprintf("L %s@%d", key, t0+3000)}) {
		t.Fatalf("log: %v", got)
	}

	// Unknown keys and bad input.
	other := newPeer(t, 2)
	if _, err := s.Remote(ctx, "tip@"+other.id); !errors.Is(err, ErrNotFound) || !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("Remote unknown: %v", err)
	}
	if _, ok := s.HeldVersion(ctx, "tip@"+other.id); ok {
		t.Fatal("HeldVersion of an unknown key")
	}
	for _, k := range []string{"", "tip", "tip@", "@x", "a/b@" + p.id, "tip@notanode"} {
		if _, err := s.Remote(ctx, k); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Remote(%q) = %v", k, err)
		}
		if _, ok := s.HeldVersion(ctx, k); ok {
			t.Errorf("HeldVersion(%q) held", k)
		}
	}
	bad := *v3
	bad.Signature.NodeID = "notanode"
	if err := s.PutRemote(ctx, &bad); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad node id: %v", err)
	}
	bad = *v3
	bad.Publication.Visibility = "private"
	bad.Publication.PublishedAt = t0 + 9000
	if err := s.PutRemote(ctx, &bad); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("private publication: %v", err)
	}
	if err := s.PutRemote(ctx, nil); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("nil: %v", err)
	}
}

func TestPutRemoteRefusesSelf(t *testing.T) {
	clk := newClock()
	me := newPeer(t, 1)
	s := openFed(t, "", clk, me.id)
	err := s.PutRemote(context.Background(), me.sign(t, "mine", "t", "c", "public", clk.MS()))
	if !errors.Is(err, ErrOwnLesson) || !errors.Is(err, ErrStale) {
		t.Fatalf("own lesson: %v", err)
	}
	if st, _ := s.Status(context.Background()); st.Remote != 0 {
		t.Fatalf("own lesson cached: %+v", st)
	}
}

func TestRevokeRemote(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openFed(t, "", clk, newPeer(t, 9).id)
	p := newPeer(t, 1)
	t0 := clk.MS()

	// Revocation after the lesson: the copy goes, the tombstone stays.
	a := p.sign(t, "a", "alpha", "the alpha lesson", "public", t0)
	mustPutRemote(t, s, a)
	if err := s.Revoke(ctx, p.revoke(t, "a", t0+10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remote(ctx, a.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remote after revoke: %v", err)
	}
	if _, ok := s.HeldVersion(ctx, a.Key()); ok {
		t.Fatal("HeldVersion after revoke")
	}
	if got := searchKeys(t, s, Query{Text: "alpha", Origin: OriginAll}); len(got) != 0 {
		t.Fatalf("revoked lesson found: %v", got)
	}
	if !s.Revoked(ctx, a.Key()) {
		t.Fatal("Revoked = false")
	}
	tomb, err := s.Tombstone(ctx, a.Key())
	if err != nil || tomb.RevokedAt != t0+10 || tomb.Reason != protocol.ReasonOutdated {
		t.Fatalf("Tombstone = %+v, %v", tomb, err)
	}
	if err := protocol.VerifyRevocation(tomb, protocol.VerifyOptions{Now: time.UnixMilli(t0)}); err != nil {
		t.Fatalf("stored tombstone does not verify: %v", err)
	}
	// A replay of the lesson, or a newer version, is refused.
	for _, sl := range []*protocol.SignedLesson{a, p.sign(t, "a", "alpha", "again", "public", t0+20)} {
		if err := s.PutRemote(ctx, sl); !errors.Is(err, ErrRevoked) {
			t.Fatalf("PutRemote after revoke: %v", err)
		}
	}

	// Revocation before the lesson: kept, and the lesson is refused.
	if err := s.Revoke(ctx, p.revoke(t, "b", t0+30)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRemote(ctx, p.sign(t, "b", "beta", "late", "public", t0)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("lesson after its revocation: %v", err)
	}

	// Double revoke.
	err = s.Revoke(ctx, p.revoke(t, "a", t0+40))
	if !errors.Is(err, ErrAlreadyRevoked) || !errors.Is(err, protocol.ErrAlreadyRevoked) {
		t.Fatalf("double revoke: %v", err)
	}
	if got, _ := s.Tombstone(ctx, a.Key()); got.RevokedAt != t0+10 {
		t.Fatalf("double revoke replaced the tombstone: %+v", got)
	}

	if _, err := s.Tombstone(ctx, "c@"+p.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Tombstone unknown: %v", err)
	}
	if s.Revoked(ctx, "c@"+p.id) {
		t.Fatal("Revoked unknown")
	}
	if st, _ := s.Status(ctx); st.Tombstones != 2 || st.Remote != 0 {
		t.Fatalf("Status = %+v", st)
	}
	bad := p.revoke(t, "c", t0)
	bad.Type = "nope"
	if err := s.Revoke(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad revocation: %v", err)
	}
	if err := s.Revoke(ctx, nil); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("nil revocation: %v", err)
	}
	if got := logKeys(t, s, 1, LogFilter{}); !slices.Equal(got, []string{"R " + a.Key(), "R b@" + p.id}) {
		t.Fatalf("log: %v", got)
	}
}

// publish stores a record of this node and its signed publication.
func publish(t testing.TB, s *Store, me peerKey, id, content, visibility string, at int64, topics ...string) *protocol.SignedLesson {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Get(ctx, id); errors.Is(err, ErrNotFound) {
		mustPut(t, s, &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: id, Content: content})
	}
	rec, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := protocol.Sign(me.priv, rec, protocol.Publication{Visibility: visibility, PublishedAt: at, Topics: topics}, time.UnixMilli(at))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPublication(ctx, sl); err != nil {
		t.Fatal(err)
	}
	return sl
}

func TestRevokeOwn(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	me := newPeer(t, 1)
	s := openFed(t, "", clk, me.id)
	t0 := clk.MS()
	sl := publish(t, s, me, "mine", "my own knowledge", "public", t0, "go")
	if at, ok := s.HeldVersion(ctx, sl.Key()); !ok || at != t0 {
		t.Fatalf("HeldVersion of own = %d, %v", at, ok)
	}
	if got := logKeys(t, s, 0, LogFilter{}); !slices.Equal(got, []string{fmt.Sprintf("L %s@%d", sl.Key(), t0)}) {
		t.Fatalf("log: %v", got)
	}

	if err := s.Revoke(ctx, me.revoke(t, "mine", t0+5)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publication(ctx, "mine"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publication after revoke: %v", err)
	}
	rec, err := s.Get(ctx, "mine")
	if err != nil || rec.Visibility != protocol.VisibilityPrivate || rec.Content != "my own knowledge" {
		t.Fatalf("record after revoke: %+v, %v", rec, err)
	}
	if got := searchKeys(t, s, Query{Text: "knowledge", Visibility: []string{"public"}}); len(got) != 0 {
		t.Fatalf("revoked record still public in the index: %v", got)
	}
	if got := searchKeys(t, s, Query{Text: "knowledge", Visibility: []string{"private"}}); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("revoked record not private in the index: %v", got)
	}
	if _, ok := s.HeldVersion(ctx, sl.Key()); ok {
		t.Fatal("HeldVersion after revoke")
	}
	if got := logKeys(t, s, 0, LogFilter{}); !slices.Equal(got, []string{"R " + sl.Key()}) {
		t.Fatalf("log: %v", got)
	}
	// Publishing the revoked key again is refused: peers would refuse it.
	rec.Visibility = "public"
	again, _ := protocol.Sign(me.priv, rec, protocol.Publication{Visibility: "public", PublishedAt: t0 + 10}, time.UnixMilli(t0+10))
	if err := s.PutPublication(ctx, again); !errors.Is(err, ErrRevoked) {
		t.Fatalf("republish after revoke: %v", err)
	}
	if err := s.Revoke(ctx, me.revoke(t, "mine", t0+20)); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("double revoke: %v", err)
	}
	// Revoking an own lesson this store never had keeps the tombstone.
	if err := s.Revoke(ctx, me.revoke(t, "gone", t0+30)); err != nil {
		t.Fatal(err)
	}
	if !s.Revoked(ctx, "gone@"+me.id) {
		t.Fatal("tombstone of an unknown own lesson not kept")
	}
}

func TestLog(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	me, p, q := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	s := openFed(t, "", clk, me.id)
	t0 := clk.MS()
	L := func(sl *protocol.SignedLesson) string {
		return fmt.Sprintf("L %s@%d", sl.Key(), sl.Publication.PublishedAt)
	}

	a1 := p.sign(t, "a", "a", "go channels", "public", t0+1, "go")
	mustPutRemote(t, s, a1)
	b := p.sign(t, "b", "b", "rust lifetimes", "public", t0+2, "rust")
	mustPutRemote(t, s, b)
	c := q.sign(t, "c", "c", "go and rust ffi", "public", t0+3, "Go", "rust")
	mustPutRemote(t, s, c)
	u := q.sign(t, "u", "u", "unlisted", "unlisted", t0+4, "go")
	mustPutRemote(t, s, u)
	own := publish(t, s, me, "own", "my go notes", "public", t0+5, "go")
	publish(t, s, me, "ownu", "my unlisted notes", "unlisted", t0+6, "go")
	mustPut(t, s, &protocol.Lesson{ID: "priv", Type: "lesson", Content: "private go notes"})
	d := q.sign(t, "d", "d", "to be revoked", "public", t0+7, "go")
	mustPutRemote(t, s, d)
	a2 := p.sign(t, "a", "a", "go channels, revised", "public", t0+8, "go")
	mustPutRemote(t, s, a2)
	if err := s.Revoke(ctx, q.revoke(t, "d", t0+9)); err != nil {
		t.Fatal(err)
	}

	all := []string{L(b), L(c), L(own), L(a2), "R d@" + q.id}
	for _, limit := range []int{0, 1, 2, 3, 100} {
		if got := logKeys(t, s, limit, LogFilter{}); !slices.Equal(got, all) {
			t.Fatalf("limit %d: %v\nwant %v", limit, got, all)
		}
	}
	tests := []struct {
		name string
		f    LogFilter
		want []string
	}{
		{"topic go", LogFilter{Topics: []string{"go"}}, []string{L(c), L(own), L(a2), "R d@" + q.id}},
		{"topic rust", LogFilter{Topics: []string{"RUST"}}, []string{L(b), L(c), "R d@" + q.id}},
		{"topics", LogFilter{Topics: []string{"none", "rust"}}, []string{L(b), L(c), "R d@" + q.id}},
		{"publisher p", LogFilter{Publishers: []string{p.id}}, []string{L(b), L(a2)}},
		{"publisher q", LogFilter{Publishers: []string{q.id}}, []string{L(c), "R d@" + q.id}},
		{"publisher self", LogFilter{Publishers: []string{me.id}}, []string{L(own)}},
		{"since", LogFilter{Since: t0 + 3}, []string{L(own), L(a2), "R d@" + q.id}},
		{"since and topic", LogFilter{Since: t0 + 5, Topics: []string{"rust"}}, []string{"R d@" + q.id}},
		{"all filters", LogFilter{Since: t0 + 1, Topics: []string{"go"}, Publishers: []string{p.id}}, []string{L(a2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 0} {
				if got := logKeys(t, s, limit, tc.f); !slices.Equal(got, tc.want) {
					t.Fatalf("limit %d: %v\nwant %v", limit, got, tc.want)
				}
			}
		})
	}

	// Resuming from the end returns nothing; next stays put.
	_, end, _, _ := s.Log(ctx, 0, 0, LogFilter{})
	entries, next, more, err := s.Log(ctx, end, 0, LogFilter{})
	if err != nil || len(entries) != 0 || more || next != end {
		t.Fatalf("Log at end = %d entries, %d, %v, %v", len(entries), next, more, err)
	}
	// A new entry comes after the end.
	e := q.sign(t, "e", "e", "new", "public", t0+10)
	mustPutRemote(t, s, e)
	entries, _, _, _ = s.Log(ctx, end, 0, LogFilter{})
	if len(entries) != 1 || entries[0].Lesson.Key() != e.Key() {
		t.Fatalf("after end: %+v", entries)
	}

	// Own publications leave the log when made unlisted, private or deleted.
	publish(t, s, me, "own", "", "unlisted", t0+11)
	if got := logKeys(t, s, 0, LogFilter{Publishers: []string{me.id}}); len(got) != 0 {
		t.Fatalf("unlisted own publication in the log: %v", got)
	}
	publish(t, s, me, "own2", "x", "public", t0+12)
	if _, err := s.Delete(ctx, "own2"); err != nil {
		t.Fatal(err)
	}
	publish(t, s, me, "own3", "x", "public", t0+13)
	r, _ := s.Get(ctx, "own3")
	r.Visibility = "private"
	mustPut(t, s, r)
	if got := logKeys(t, s, 0, LogFilter{Publishers: []string{me.id}}); len(got) != 0 {
		t.Fatalf("deleted or private own publications in the log: %v", got)
	}

	for _, f := range []LogFilter{{Since: -1}, {Topics: make([]string, protocol.MaxTags+1)}, {Publishers: make([]string, MaxLogPublishers+1)}} {
		if _, _, _, err := s.Log(ctx, 0, 0, f); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Log(%+v) = %v", f, err)
		}
	}
}

func TestLogPageSize(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openFed(t, "", clk, "")
	p := newPeer(t, 1)
	for i := range protocol.MaxSyncPage + 5 {
		mustPutRemote(t, s, p.sign(t, fmt.Sprintf("l%d", i), "t", "c", "public", clk.MS()+int64(i)))
	}
	for _, limit := range []int{-1, 0, protocol.MaxSyncPage + 1} {
		entries, next, more, err := s.Log(ctx, 0, limit, LogFilter{})
		if err != nil || len(entries) != protocol.MaxSyncPage || !more || next != entries[len(entries)-1].Seq {
			t.Fatalf("limit %d: %d entries, next %d, more %v, %v", limit, len(entries), next, more, err)
		}
		rest, _, more, _ := s.Log(ctx, next, limit, LogFilter{})
		if len(rest) != 5 || more {
			t.Fatalf("second page: %d, %v", len(rest), more)
		}
	}
}

// TestLogConcurrent pages through the log while writers add to it: a
// reader that resumes from next never misses an entry.
func TestLogConcurrent(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openFed(t, "", clk, "")
	const writers, each = 6, 25
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		p := newPeer(t, byte(w+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.PutRemote(ctx, p.sign(t, fmt.Sprintf("l%d", i), "t", "c", "public", clk.MS()+int64(i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	after := uint64(0)
	finished := false
	for {
		select {
		case <-done:
			finished = true
		default:
		}
		for {
			entries, next, more, err := s.Log(ctx, after, 7, LogFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				seen[e.Lesson.Key()] = true
			}
			after = next
			if !more {
				break
			}
		}
		if finished {
			break
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("reader saw %d of %d entries", len(seen), writers*each)
	}
}

func TestFederationRestart(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	me, p := newPeer(t, 1), newPeer(t, 2)
	s := openFed(t, dir, clk, me.id)
	t0 := clk.MS()
	a := p.sign(t, "a", "a", "remote alpha", "public", t0+1, "go")
	mustPutRemote(t, s, a)
	u := p.sign(t, "u", "u", "remote unlisted", "unlisted", t0+2)
	mustPutRemote(t, s, u)
	own := publish(t, s, me, "own", "own text", "public", t0+3)
	if err := s.Revoke(ctx, p.revoke(t, "b", t0+4)); err != nil {
		t.Fatal(err)
	}
	// A dead entry at the end of the log: the seq must not go back.
	publish(t, s, me, "gone", "x", "public", t0+5)
	if _, err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(ctx, "sync/"+p.id, []byte("42")); err != nil {
		t.Fatal(err)
	}
	before, lastSeq, _, _ := s.Log(ctx, 0, 0, LogFilter{})
	if len(before) != 3 {
		t.Fatalf("log before restart: %d entries", len(before))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openFed(t, dir, clk, me.id)
	after, next, _, _ := s.Log(ctx, 0, 0, LogFilter{})
	if len(after) != len(before) || next != lastSeq {
		t.Fatalf("log after restart: %d entries to %d, before %d to %d", len(after), next, len(before), lastSeq)
	}
	for i := range after {
		if after[i].Seq != before[i].Seq {
			t.Fatalf("entry %d: seq %d, before %d", i, after[i].Seq, before[i].Seq)
		}
	}
	for key, want := range map[string]int64{a.Key(): t0 + 1, u.Key(): t0 + 2, own.Key(): t0 + 3} {
		if at, ok := s.HeldVersion(ctx, key); !ok || at != want {
			t.Errorf("HeldVersion(%s) = %d, %v; want %d", key, at, ok, want)
		}
	}
	if !s.Revoked(ctx, "b@"+p.id) {
		t.Fatal("tombstone lost")
	}
	if err := s.PutRemote(ctx, p.sign(t, "b", "b", "x", "public", t0)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("PutRemote of a revoked key after restart: %v", err)
	}
	if err := s.PutRemote(ctx, a); !errors.Is(err, ErrStale) {
		t.Fatalf("PutRemote of a held version after restart: %v", err)
	}
	if v, err := s.GetMeta(ctx, "sync/"+p.id); err != nil || string(v) != "42" {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	// The sequence goes on past every seq handed out before.
	c := p.sign(t, "c", "c", "new", "public", t0+6)
	mustPutRemote(t, s, c)
	entries, _, _, _ := s.Log(ctx, lastSeq, 0, LogFilter{})
	if len(entries) != 1 || entries[0].Lesson.Key() != c.Key() || entries[0].Seq <= lastSeq {
		t.Fatalf("new entry after restart: %+v", entries)
	}
	// Superseding after the restart removes the old entry.
	a2 := p.sign(t, "a", "a", "remote alpha two", "public", t0+7, "go")
	mustPutRemote(t, s, a2)
	got := logKeys(t, s, 0, LogFilter{Topics: []string{"go"}})
	if !slices.Equal(got, []string{"R b@" + p.id, fmt.Sprintf("L %s@%d", a.Key(), t0+7)}) {
		t.Fatalf("log after supersession: %v", got)
	}
	if got := searchKeys(t, s, Query{Text: "remote", Origin: OriginRemote}); !slices.Equal(got, []string{a.Key(), u.Key()}) {
		t.Fatalf("remote search after restart: %v", got)
	}
}

func TestOrigin(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	me, p, q := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	s := openFed(t, "", clk, me.id)
	t0 := clk.MS()
	// The same lesson id locally and at two publishers.
	mustPut(t, s, &protocol.Lesson{ID: "tip", Type: "lesson", Title: "tip", Content: "caching advice", Visibility: "public"})
	pt := p.sign(t, "tip", "tip", "caching advice from p", "public", t0)
	mustPutRemote(t, s, pt)
	qt := q.sign(t, "tip", "tip", "caching advice from q", "unlisted", t0)
	mustPutRemote(t, s, qt)

	for _, q := range []Query{{Text: "caching"}, {Text: "caching", Origin: OriginLocal}, {}, {Type: "lesson"}} {
		if got := searchKeys(t, s, q); !slices.Equal(got, []string{"tip"}) {
			t.Fatalf("AMP search %+v returned %v", q, got)
		}
	}
	res, err := s.Search(ctx, Query{Text: "caching", Origin: OriginAll})
	if err != nil || len(res.Hits) != 3 || res.Total != 3 {
		t.Fatalf("Origin all: %+v, %v", res, err)
	}
	for _, h := range res.Hits {
		switch h.Key {
		case "":
			if h.ID != "tip" || h.Publisher != me.id || h.Signed != nil || h.Encoded != nil {
				t.Errorf("own hit: %+v", h)
			}
		case pt.Key(), qt.Key():
			if h.ID != "tip" || h.Publisher == me.id || h.Key != h.ID+"@"+h.Publisher || h.Signed == nil || h.Signed.Key() != h.Key {
				t.Errorf("remote hit: %+v", h)
			}
			// Encoded is the lesson as stored, a valid encoding of it.
			if dec, err := protocol.DecodeSignedLesson(h.Encoded); err != nil || !reflect.DeepEqual(dec, h.Signed) {
				t.Errorf("remote hit's encoding %s: %v", h.Encoded, err)
			}
			if h.Key == qt.Key() && h.Record.Visibility != "unlisted" {
				t.Errorf("remote hit visibility %q", h.Record.Visibility)
			}
		default:
			t.Errorf("hit %+v", h)
		}
	}
	cases := []struct {
		q    Query
		want []string
	}{
		{Query{Origin: OriginRemote}, []string{pt.Key(), qt.Key()}},
		{Query{Origin: OriginRemote, Visibility: []string{"public"}}, []string{pt.Key()}},
		{Query{Origin: OriginAll, Publisher: q.id}, []string{qt.Key()}},
		{Query{Origin: OriginAll, Publisher: me.id}, []string{"tip"}},
		{Query{Publisher: p.id}, nil},
		{Query{Origin: OriginRemote, Publisher: me.id}, nil},
		{Query{Origin: OriginAll, Text: "advice q"}, []string{"tip", pt.Key(), qt.Key()}},
		{Query{Origin: OriginAll, Text: `"from p"`}, []string{pt.Key()}},
	}
	for _, tc := range cases {
		if got := searchKeys(t, s, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("Search(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if _, err := s.Search(ctx, Query{Origin: "elsewhere"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad origin: %v", err)
	}

	lr, err := s.List(ctx, ListOptions{})
	if err != nil || len(lr.Records) != 1 || lr.Keys[0] != "" {
		t.Fatalf("List default: %+v, %v", lr, err)
	}
	lr, err = s.List(ctx, ListOptions{Origin: OriginRemote, Order: "asc"})
	if err != nil || len(lr.Records) != 2 || lr.Total != 2 || len(lr.Keys) != 2 {
		t.Fatalf("List remote: %+v, %v", lr, err)
	}
	for i, k := range lr.Keys {
		if k != pt.Key() && k != qt.Key() || lr.Records[i].ID != "tip" {
			t.Fatalf("List remote: key %q record %+v", k, lr.Records[i])
		}
	}
	if _, err := s.List(ctx, ListOptions{Origin: "x"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("List bad origin: %v", err)
	}
	st, err := s.Status(ctx)
	if err != nil || st.Total != 1 || st.Counts["lesson"] != 1 || st.Remote != 2 || st.Tombstones != 0 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// A remote checkpoint does not become this node's agent status.
	cp := &protocol.Lesson{ID: "cp", Type: protocol.TypeCheckpoint, Agent: "bot", WorkingOn: "theirs", CreatedAt: t0}
	scp, err := protocol.Sign(p.priv, cp, protocol.Publication{Visibility: "public", PublishedAt: t0}, time.UnixMilli(t0))
	if err != nil {
		t.Fatal(err)
	}
	mustPutRemote(t, s, scp)
	if as, _ := s.AgentStatus(ctx, "bot"); as.CheckpointID != "" {
		t.Fatalf("AgentStatus from a remote checkpoint: %+v", as)
	}
}

func TestRemoteExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openFed(t, "", clk, "")
	p := newPeer(t, 1)
	t0 := clk.MS()
	l := &protocol.Lesson{ID: "brief", Type: "reading", Title: "humidity", Content: "short lived reading", ExpiresAt: t0 + 60_000}
	sl, err := protocol.Sign(p.priv, l, protocol.Publication{Visibility: "public", PublishedAt: t0}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	mustPutRemote(t, s, sl)
	keep := p.sign(t, "keep", "keep", "long lived reading", "public", t0)
	mustPutRemote(t, s, keep)
	if got := searchKeys(t, s, Query{Text: "reading", Origin: OriginRemote}); len(got) != 2 {
		t.Fatalf("before expiry: %v", got)
	}

	clk.Add(2 * time.Minute)
	if got := searchKeys(t, s, Query{Text: "reading", Origin: OriginRemote}); !slices.Equal(got, []string{keep.Key()}) {
		t.Fatalf("after expiry: %v", got)
	}
	if _, err := s.Remote(ctx, sl.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remote of an expired lesson: %v", err)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 {
		t.Fatalf("log after expiry: %v", got)
	}
	if st, _ := s.Status(ctx); st.Remote != 1 {
		t.Fatalf("Status after expiry: %+v", st)
	}
	n, err := s.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if indexHas(t, s, sl.Key()) {
		t.Fatal("swept lesson still in the index")
	}
	if _, ok := s.HeldVersion(ctx, sl.Key()); ok {
		t.Fatal("swept lesson still held")
	}
	// An already expired lesson is not stored.
	if err := s.PutRemote(ctx, sl); !errors.Is(err, ErrStale) {
		t.Fatalf("PutRemote of an expired lesson: %v", err)
	}
}

func TestRemoteIndexRecovery(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	p := newPeer(t, 1)
	s := openFed(t, dir, clk, "")
	t0 := clk.MS()
	mustPut(t, s, lesson("own", "local words"))
	a := p.sign(t, "a", "a", "remote words alpha", "public", t0)
	mustPutRemote(t, s, a)

	// Reindex keeps remote lessons.
	if err := s.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	if got := searchKeys(t, s, Query{Text: "words", Origin: OriginAll}); len(got) != 2 {
		t.Fatalf("after Reindex: %v", got)
	}

	// Lost index writes of PutRemote and Revoke are replayed on Open.
	s.testSkipIndex = func() bool { return true }
	b := p.sign(t, "b", "b", "remote words beta", "public", t0)
	mustPutRemote(t, s, b)
	if err := s.Revoke(ctx, p.revoke(t, "a", t0+1)); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s = openFed(t, dir, clk, "")
	if got := searchKeys(t, s, Query{Text: "words", Origin: OriginRemote}); !slices.Equal(got, []string{b.Key()}) {
		t.Fatalf("after replay: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A missing index is rebuilt with the remote lessons.
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	s, logs := openLogged(t, dir)
	if !logs.has("search index rebuilt reason=missing") {
		t.Fatalf("no rebuild: %v", logs.msgs)
	}
	if got := searchKeys(t, s, Query{Text: "words", Origin: OriginAll}); len(got) != 2 {
		t.Fatalf("after rebuild: %v", got)
	}
	if st, _ := s.Status(ctx); st.Total != 1 || st.Remote != 1 || st.Tombstones != 1 {
		t.Fatalf("Status after rebuild: %+v", st)
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	s := openFed(t, dir, clk, "")
	if _, err := s.GetMeta(ctx, "follow"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unset: %v", err)
	}
	if err := s.SetMeta(ctx, "follow", []byte(`["go"]`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta(ctx, "follow"); err != nil || string(v) != `["go"]` {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	if v, err := s.GetMeta(ctx, "empty"); err != nil || len(v) != 0 {
		t.Fatalf("GetMeta empty = %q, %v", v, err)
	}
	if err := s.DeleteMeta(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMeta(ctx, "empty"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	for _, k := range []string{"", "/x", "x/", "a//b", "a/../b", "..", "a b", "x\x00", stringsRepeat("k", MaxMetaKeyLength+1)} {
		if err := s.SetMeta(ctx, k, []byte("v")); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("SetMeta(%q) = %v", k, err)
		}
		if _, err := s.GetMeta(ctx, k); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("GetMeta(%q) = %v", k, err)
		}
	}
	if err := s.SetMeta(ctx, "big", make([]byte, MaxMetaSize+1)); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("oversized value: %v", err)
	}
	// Meta keys are not records.
	if st, _ := s.Status(ctx); st.Total != 0 {
		t.Fatalf("Status = %+v", st)
	}
}

// FuzzDecodeLogValue checks the decoder of stored log entries: no panic,
// and an entry it accepts encodes and decodes to the same entry.
func FuzzDecodeLogValue(f *testing.F) {
	for _, s := range []string{
		`{"kind":"remote","key":"a@12D3KooWabc","at":1,"topics":["go"]}`,
		`{"kind":"revocation","key":"a@12D3KooWabc","at":5}`,
		`{"kind":"publication","key":"a.b@x","at":9007199254740991}`,
		`{"kind":"remote","key":"a@b","at":1,"extra":1}`, `{"kind":"revocation","key":"a@b","at":1,"topics":[]}`,
		`{"kind":"remote","key":"../a@b","at":1}`, `{"kind":"remote","key":"a@b/c","at":1}`, `{}`, `[]`, `null`, "\xff", `{"kind":"remote","key":"a@b","at":1}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeLogValue(data)
		if err != nil {
			return
		}
		enc := encodeLogValue(m)
		again, err := decodeLogValue(enc)
		if err != nil {
			t.Fatalf("decode of own encoding %s: %v", enc, err)
		}
		if again.kind != m.kind || again.key != m.key || again.at != m.at || !slices.Equal(again.topics, m.topics) {
			t.Fatalf("not stable: %+v, %+v", m, again)
		}
	})
}

// FuzzDecodeRemote checks the decoder of stored remote lessons: no panic,
// and a lesson it accepts has a key that maps to a datastore path and back.
func FuzzDecodeRemote(f *testing.F) {
	p := newPeer(f, 1)
	sl := p.sign(f, "a", "t", "c", "public", 1_700_000_000_000, "go")
	data, _ := sl.Encode()
	f.Add(data)
	f.Add([]byte(`{"lesson":{"id":"a","type":"lesson"},"publication":{"visibility":"public","publishedAt":1},"signature":{"algorithm":"ed25519","nodeId":"a/b","publicKey":"","timestamp":1,"sig":""}}`))
	f.Add([]byte(`{"lesson":{"id":"../a","type":"lesson"},"publication":{"visibility":"public","publishedAt":1},"signature":{"algorithm":"ed25519","nodeId":"x","publicKey":"","timestamp":1,"sig":""}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sl, err := decodeRemote(data)
		if err != nil {
			return
		}
		path := keyPath(nsRemote, sl.Key()).String()
		key, ok := keyFromPath(path[len(nsRemote):])
		if !ok || key != sl.Key() {
			t.Fatalf("key %q -> path %q -> %q, %v", sl.Key(), path, key, ok)
		}
	})
}

// TestRemoteKeysAndDropPublisher: the keys of a lesson id across
// publishers; listing by publisher; dropping a publisher removes its
// lessons from every read path, keeps its tombstones, and leaves the
// others' lessons; a restart does not bring them back.
func TestRemoteKeysAndDropPublisher(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	me, p, q := newPeer(t, 1), newPeer(t, 2), newPeer(t, 3)
	s := openFed(t, dir, clk, me.id)
	t0 := clk.MS()
	mustPutRemote(t, s, p.sign(t, "tip", "tip", "caching advice from p", "public", t0))
	mustPutRemote(t, s, p.sign(t, "tip2", "tip two", "more caching advice from p", "public", t0))
	mustPutRemote(t, s, q.sign(t, "tip", "tip", "caching advice from q", "public", t0))
	if err := s.PutRemoteEncrypted(ctx, p.encrypt(t, "sealed", "sealed advice from p", "public", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, p.revoke(t, "gone", t0)); err != nil {
		t.Fatal(err)
	}
	want := []string{"tip@" + p.id, "tip@" + q.id}
	slices.Sort(want)
	if got := s.RemoteKeys("tip"); !slices.Equal(got, want) {
		t.Fatalf("RemoteKeys(tip) = %v, want %v", got, want)
	}
	if got := s.RemoteKeys("ti"); len(got) != 0 {
		t.Fatalf("RemoteKeys(ti) = %v, want none", got)
	}
	l, err := s.List(ctx, ListOptions{Origin: OriginRemote, Publisher: p.id})
	if err != nil || l.Total != 2 {
		t.Fatalf("list by publisher: %+v, %v", l, err)
	}
	if l, err := s.List(ctx, ListOptions{Publisher: p.id}); err != nil || l.Total != 0 {
		t.Fatalf("list own records by a remote publisher: %+v, %v", l, err)
	}

	n, err := s.DropPublisher(ctx, p.id)
	if err != nil || n != 3 {
		t.Fatalf("DropPublisher = %d, %v", n, err)
	}
	check := func(s *Store) {
		t.Helper()
		if got := searchKeys(t, s, Query{Text: "caching", Origin: OriginAll}); !slices.Equal(got, []string{"tip@" + q.id}) {
			t.Fatalf("search after the drop: %v", got)
		}
		if _, err := s.Remote(ctx, "tip@"+p.id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Remote after the drop: %v", err)
		}
		if _, err := s.RemoteEncrypted(ctx, "sealed@"+p.id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RemoteEncrypted after the drop: %v", err)
		}
		if !s.Revoked(ctx, "gone@"+p.id) {
			t.Fatal("the drop took the tombstone too")
		}
		if got := s.RemoteKeys("tip"); !slices.Equal(got, []string{"tip@" + q.id}) {
			t.Fatalf("RemoteKeys after the drop: %v", got)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openFed(t, dir, clk, me.id))
}
