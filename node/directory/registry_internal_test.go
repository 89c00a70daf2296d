package directory

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// offsetClock is the real time plus an offset a test moves forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// fakeFeeds records the feeds followed.
type fakeFeeds struct {
	mu       sync.Mutex
	followed map[string]bool
}

func (f *fakeFeeds) FollowFeed(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.followed[id] = true
	return nil
}

func (f *fakeFeeds) UnfollowFeed(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.followed, id)
	return nil
}

func (f *fakeFeeds) follows(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.followed[id]
}

// fakeTrust trusts nobody and blocks the nodes listed.
type fakeTrust struct{ blocked map[string]bool }

func (f fakeTrust) Path(string) ([]string, float64, bool) { return nil, 0, false }
func (f fakeTrust) Blocked(id string) bool                { return f.blocked[id] }

// testDirectory is a started directory service on a mocknet host, with
// st as its meta store.
type testDirectory struct {
	*Service
	feeds *fakeFeeds
	syncs chan peer.ID // registrants synced
}

func newTestDirectory(t *testing.T, st *store.Store, now func() time.Time, blocked ...string) *testDirectory {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	td := &testDirectory{feeds: &fakeFeeds{followed: map[string]bool{}}, syncs: make(chan peer.ID, 16)}
	tr := fakeTrust{blocked: map[string]bool{}}
	for _, b := range blocked {
		tr.blocked[b] = true
	}
	td.Service = New(Config{Enabled: true}, Deps{
		Self: h.ID(), Host: h, Meta: st, Feeds: td.feeds, Trust: tr, Now: now,
		Following: func(context.Context) ([]string, []string, error) { return nil, nil, nil },
		SyncPublisher: func(_ context.Context, p peer.ID) error {
			td.syncs <- p
			return nil
		},
	})
	if err := td.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { td.Close() })
	return td
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newPeer is the ID of a fresh key: a registrant that runs no node.
func newPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err == nil {
		var p peer.ID
		if p, err = peer.IDFromPublicKey(pub); err == nil {
			return p
		}
	}
	t.Fatal(err)
	return ""
}

// TestDirectoryRegistrationsExpire: a registration not renewed within
// registrantTTL is forgotten (on the next registration, and at start), so
// free peer IDs cannot hold the directory's slots for good; each
// registrant is stored under a key of its own, and its feed is followed
// while it is registered; a registration renewed in time stays.
func TestDirectoryRegistrationsExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &offsetClock{}
	st := openStore(t, "")
	t.Cleanup(func() { st.Close() })
	d := newTestDirectory(t, st, clk.Now)
	stale, renewed, late := newPeer(t), newPeer(t), newPeer(t)
	for _, p := range []peer.ID{stale, renewed} {
		if err := d.register(p, []string{"rust"}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := st.GetMeta(ctx, registrantPrefix+stale.String())
	var r registrant
	if err != nil || json.Unmarshal(b, &r) != nil || r.At == 0 || len(r.Topics) != 1 {
		t.Fatalf("registrant key: %s %v", b, err)
	}
	if _, err := st.GetMeta(ctx, registrantsMeta); err == nil {
		t.Fatal("the whole registrant map is still written as one value")
	}
	if !d.feeds.follows(stale.String()) || !d.feeds.follows(renewed.String()) {
		t.Fatal("a registrant's feed is not followed")
	}
	clk.Advance(registrantTTL / 2)
	if err := d.register(renewed, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(registrantTTL/2 + time.Minute)
	d.mu.Lock()
	d.pruneRegistrantsLocked(ctx)
	d.mu.Unlock()
	if err := d.register(late, nil); err != nil {
		t.Fatal(err)
	}
	got := d.Registrants()
	if len(got) != 2 || !slices.Contains(got, renewed.String()) || !slices.Contains(got, late.String()) {
		t.Fatalf("registrants %v, want %s and %s (%s expired)", got, renewed, late, stale)
	}
	if _, err := st.GetMeta(ctx, registrantPrefix+stale.String()); err == nil {
		t.Fatal("the expired registrant's key is still stored")
	}
	if d.feeds.follows(stale.String()) {
		t.Fatal("the expired registrant's feed is still followed")
	}
}

// TestDirectoryRefusesBlockedRegistrant: a blocked node's registration is
// refused with UNTRUSTED_NODE and changes nothing.
func TestDirectoryRefusesBlockedRegistrant(t *testing.T) {
	t.Parallel()
	st := openStore(t, "")
	t.Cleanup(func() { st.Close() })
	spammer := newPeer(t)
	d := newTestDirectory(t, st, nil, spammer.String())
	if err := d.register(spammer, []string{"rust"}); !errors.Is(err, protocol.ErrUntrusted) {
		t.Fatalf("a blocked node registers: %v", err)
	}
	if got := d.Registrants(); len(got) != 0 || d.feeds.follows(spammer.String()) {
		t.Fatalf("after a refused registration: registrants %v, feed followed %v", got, d.feeds.follows(spammer.String()))
	}
}

// TestDirectoryRegistrantsMigrateAndExpireOnLoad: a directory started on
// a repo holding the former single blob of registrations moves them to
// one key each, and forgets at start those that expired.
func TestDirectoryRegistrantsMigrateAndExpireOnLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	fresh, old := newPeer(t), newPeer(t)
	now := time.Now()
	blob, _ := json.Marshal(map[string]registrant{
		fresh.String(): {At: now.UnixMilli(), Topics: []string{"go"}},
		old.String():   {At: now.Add(-registrantTTL - time.Hour).UnixMilli()},
		"not-a-node":   {At: now.UnixMilli()},
	})
	s := openStore(t, dir)
	if err := s.SetMeta(ctx, registrantsMeta, blob); err != nil {
		t.Fatal(err)
	}
	s.Close()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	d := newTestDirectory(t, st, nil)
	if got := d.Registrants(); len(got) != 1 || got[0] != fresh.String() {
		t.Fatalf("registrants after migration: %v, want only %s", got, fresh)
	}
	if _, err := st.GetMeta(ctx, registrantsMeta); err == nil {
		t.Fatal("the former blob is still there")
	}
	if _, err := st.GetMeta(ctx, registrantPrefix+fresh.String()); err != nil {
		t.Fatalf("migrated registrant: %v", err)
	}
	if !d.feeds.follows(fresh.String()) || d.feeds.follows(old.String()) {
		t.Fatal("the feeds followed at start are not those of the registrants kept")
	}
}

// TestDirectoryRegistrantSyncsBounded: past maxRegistrantSyncs running at
// once, a registration's sync is skipped rather than started.
func TestDirectoryRegistrantSyncsBounded(t *testing.T) {
	t.Parallel()
	st := openStore(t, "")
	t.Cleanup(func() { st.Close() })
	d := newTestDirectory(t, st, nil)
	for range cap(d.regSyncs) {
		d.regSyncs <- struct{}{}
	}
	if d.startRegistrantSync(newPeer(t)) {
		t.Fatal("a sync started past the bound")
	}
	<-d.regSyncs
	p := newPeer(t)
	if !d.startRegistrantSync(p) {
		t.Fatal("a sync refused with a slot free")
	}
	if got := <-d.syncs; got != p {
		t.Fatalf("synced %s, want %s", got, p)
	}
}

// TestClientKeyIPv6Prefix: IPv6 clients are limited by their /64, so a
// client cannot escape its limit by rotating addresses within it.
func TestClientKeyIPv6Prefix(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"203.0.113.7", "203.0.113.8", false},
		{"::ffff:203.0.113.7", "203.0.113.7", true},
		{"fe80::1%eth0", "fe80::2%eth1", true},
	} {
		if ka, kb := clientKey(c.a), clientKey(c.b); (ka == kb) != c.same {
			t.Errorf("%s -> %s, %s -> %s: same=%v, want %v", c.a, ka, c.b, kb, ka == kb, c.same)
		}
	}
	r := &http.Request{RemoteAddr: "[2001:db8:1:2::99]:443"}
	if got := clientAddr(r); got != "2001:db8:1:2::/64" {
		t.Fatalf("clientAddr = %q", got)
	}
}
