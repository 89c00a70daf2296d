package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// offsetClock is the real time plus an offset a test moves forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// TestDirectoryRegistrationsExpire: a registration not renewed within
// registrantTTL is forgotten (on the next registration, and at start), so
// free peer IDs cannot hold the directory's slots for good; each
// registrant is stored under a key of its own; a registration renewed in
// time stays.
func TestDirectoryRegistrationsExpire(t *testing.T) {
	ctx := context.Background()
	clk := &offsetClock{}
	dir := t.TempDir()
	d := newTestNode(t, Config{RepoDir: dir, Now: clk.Now, Directory: DirectoryConfig{Enabled: true}})
	stale, renewed, late := peerOf(t, newKey(t)), peerOf(t, newKey(t)), peerOf(t, newKey(t))
	for _, p := range []peer.ID{stale, renewed} {
		if err := d.register(p, []string{"rust"}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := d.Store().GetMeta(ctx, registrantPrefix+stale.String())
	var r registrant
	if err != nil || json.Unmarshal(b, &r) != nil || r.At == 0 || len(r.Topics) != 1 {
		t.Fatalf("registrant key: %s %v", b, err)
	}
	if _, err := d.Store().GetMeta(ctx, registrantsMeta); err == nil {
		t.Fatal("the whole registrant map is still written as one value")
	}
	clk.Advance(registrantTTL / 2)
	if err := d.register(renewed, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(registrantTTL/2 + time.Minute)
	d.dirMu.Lock()
	d.pruneRegistrantsLocked(ctx)
	d.dirMu.Unlock()
	if err := d.register(late, nil); err != nil {
		t.Fatal(err)
	}
	got := d.Registrants()
	if len(got) != 2 || !containsAll(got, renewed.String(), late.String()) {
		t.Fatalf("registrants %v, want %s and %s (%s expired)", got, renewed, late, stale)
	}
	if _, err := d.Store().GetMeta(ctx, registrantPrefix+stale.String()); err == nil {
		t.Fatal("the expired registrant's key is still stored")
	}
}

// TestDirectoryRegistrantsMigrateAndExpireOnLoad: a directory started on
// a repo holding the former single blob of registrations moves them to
// one key each, and forgets at start those that expired.
func TestDirectoryRegistrantsMigrateAndExpireOnLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fresh, old := peerOf(t, newKey(t)), peerOf(t, newKey(t))
	now := time.Now()
	blob, _ := json.Marshal(map[string]registrant{
		fresh.String(): {At: now.UnixMilli(), Topics: []string{"go"}},
		old.String():   {At: now.Add(-registrantTTL - time.Hour).UnixMilli()},
		"not-a-node":   {At: now.UnixMilli()},
	})
	s, err := store.Open(store.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(ctx, registrantsMeta, blob); err != nil {
		t.Fatal(err)
	}
	s.Close()
	d := newTestNode(t, Config{RepoDir: dir, Directory: DirectoryConfig{Enabled: true}})
	if got := d.Registrants(); len(got) != 1 || got[0] != fresh.String() {
		t.Fatalf("registrants after migration: %v, want only %s", got, fresh)
	}
	if _, err := d.Store().GetMeta(ctx, registrantsMeta); err == nil {
		t.Fatal("the former blob is still there")
	}
	if _, err := d.Store().GetMeta(ctx, registrantPrefix+fresh.String()); err != nil {
		t.Fatalf("migrated registrant: %v", err)
	}
}

// TestDirectoryRegistrantSyncsBounded: past maxRegistrantSyncs running at
// once, a registration's sync is skipped rather than started.
func TestDirectoryRegistrantSyncsBounded(t *testing.T) {
	d := newTestNode(t, Config{Directory: DirectoryConfig{Enabled: true}})
	for range cap(d.regSyncs) {
		d.regSyncs <- struct{}{}
	}
	if d.startRegistrantSync(peerOf(t, newKey(t))) {
		t.Fatal("a sync started past the bound")
	}
	<-d.regSyncs
	if !d.startRegistrantSync(peerOf(t, newKey(t))) {
		t.Fatal("a sync refused with a slot free")
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, x := range list {
			found = found || x == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestPublicNodesListsNoMereConnections: /v1/nodes and /v1/nodes/{id}
// never show a peer only because it is connected, nor a registrant's
// private or loopback addresses.
func TestPublicNodesListsNoMereConnections(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t)
	p := newTestNode(t, Config{})
	connect(t, p, d)
	nodes := func() []PublicNode {
		var r struct {
			Nodes []PublicNode `json:"nodes"`
		}
		status, v, raw := call(t, "GET", d.PublicAPIURL()+"/v1/nodes", nil)
		if status != 200 || json.Unmarshal(v.Body, &r) != nil {
			t.Fatalf("nodes: %d %s", status, raw)
		}
		return r.Nodes
	}
	if got := nodes(); len(got) != 0 {
		t.Fatalf("a merely connected peer is listed: %+v", got)
	}
	if status, _, raw := call(t, "GET", d.PublicAPIURL()+"/v1/nodes/"+p.ID().String(), nil); status != 404 {
		t.Fatalf("a merely connected peer is described: %d %s", status, raw)
	}
	if _, err := p.RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	got := nodes()
	if len(got) != 1 || got[0].NodeID != p.ID().String() || !got[0].Registered {
		t.Fatalf("the registrant: %+v", got)
	}
	for _, a := range got[0].Addrs {
		t.Fatalf("a loopback address of a registrant is served: %s", a)
	}
	if status, _, raw := call(t, "GET", d.PublicAPIURL()+"/v1/nodes/"+p.ID().String(), nil); status != 200 {
		t.Fatalf("the registrant: %d %s", status, raw)
	}
}

// TestNodeRecordAndPolicyCapTopics: a node following 65 topics still
// publishes its node record (with the first 64 in sorted order), and a
// directory of 65 topics still states a policy that encodes.
func TestNodeRecordAndPolicyCapTopics(t *testing.T) {
	ctx := context.Background()
	topics := make([]string, protocol.MaxTags+1)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic%03d", len(topics)-i) // not in sorted order
	}
	boot := dhtNode(t, "server", nil, Config{})
	n := dhtNode(t, "server", boot, Config{Topics: topics, Directory: DirectoryConfig{Enabled: true, Topics: topics}})
	want := slices.Sorted(slices.Values(topics))[:protocol.MaxTags]
	var rec *protocol.NodeRecord
	eventually(t, "the node record on the DHT", func() bool {
		r, err := boot.NodeRecord(ctx, n.ID().String())
		rec = r
		return err == nil && r != nil
	})
	if !slices.Equal(rec.Topics, want) {
		t.Fatalf("record topics %v, want the first %d in sorted order", rec.Topics, protocol.MaxTags)
	}
	pol := n.Policy()
	if err := pol.Validate(); err != nil || !slices.Equal(pol.Topics, want) {
		t.Fatalf("policy: %v, topics %v", err, pol.Topics)
	}
}

// TestPublicSearchAnswerBudget: a search answer stops adding lessons past
// publicAnswerBudget bytes, and says there are more.
func TestPublicSearchAnswerBudget(t *testing.T) {
	n := newTestNode(t, Config{Directory: DirectoryConfig{PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	big := strings.Repeat("zebra stripes wide ", 110<<10/19)
	const count = 12 // 12 × ~110 KB > 1 MiB
	for i := range count {
		publishLesson(t, n, fmt.Sprintf("zebra %d", i), big, protocol.VisibilityPublic)
	}
	body, _ := json.Marshal(protocol.DirectorySearchRequest{Query: "zebra", Limit: 100})
	status, v, raw := call(t, "POST", n.PublicAPIURL()+"/v1/search", body)
	if status != 200 {
		t.Fatalf("%d %.400s", status, raw[200:])
	}
	r, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) == 0 || len(r.Results) >= count || !r.More {
		t.Fatalf("%d results, more=%v: want fewer than %d and more", len(r.Results), r.More, count)
	}
	if len(raw) > (1<<20)+protocol.MaxSignedLessonSize {
		t.Fatalf("answer of %d bytes, over the budget by more than a lesson", len(raw))
	}
}

// TestClientLimiterEvictsLeastRecent: a full limiter forgets the least
// recently seen client, never everyone: a limited client stays limited
// when new clients arrive.
func TestClientLimiterEvictsLeastRecent(t *testing.T) {
	l := newClientLimiter(1, 2, 3)
	t0 := time.Unix(1000, 0)
	for l.allow("a", t0) {
	}
	l.allow("b", t0)
	l.allow("c", t0)
	if l.allow("a", t0) {
		t.Fatal("a drained bucket refilled at once")
	}
	l.allow("d", t0) // full: forgets b, the least recently seen
	if len(l.buckets) != 3 {
		t.Fatalf("%d buckets, the bound is 3", len(l.buckets))
	}
	if l.allow("a", t0) {
		t.Fatal("a new client reset a limited client's bucket")
	}
	if _, ok := l.buckets["b"]; ok {
		t.Fatal("the least recently seen client was not the one forgotten")
	}
}

// TestClientKeyIPv6Prefix: IPv6 clients are limited by their /64, so a
// client cannot escape its limit by rotating addresses within it.
func TestClientKeyIPv6Prefix(t *testing.T) {
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

// TestDirectoryRetentionEverywhere: a lesson published before the
// directory's retention is served by no route: not by /v1/search, not by
// /v1/lessons/{key}, not by /mesh/search/1.0.0.
func TestDirectoryRetentionEverywhere(t *testing.T) {
	ctx := context.Background()
	clk := &offsetClock{}
	clk.Advance(-3 * 24 * time.Hour)
	p := newTestNode(t, Config{Now: clk.Now})
	d := newTestNode(t, Config{Directory: DirectoryConfig{Enabled: true, RetentionDays: 1, PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	old := publishLesson(t, p, "Quokka husbandry", "quokka feeding schedule", protocol.VisibilityPublic)
	clk.Advance(3 * 24 * time.Hour)
	fresh := publishLesson(t, p, "Quokka habitat", "quokka burrows", protocol.VisibilityPublic)
	if _, err := p.RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the directory holds both lessons", func() bool { return hasRemote(d, old.Key()) && hasRemote(d, fresh.Key()) })
	if keys := resultKeys(publicSearch(t, d, "quokka")); len(keys) != 1 || keys[0] != fresh.Key() {
		t.Fatalf("/v1/search: %v, want only %s", keys, fresh.Key())
	}
	if status, _, raw := call(t, "GET", d.PublicAPIURL()+"/v1/lessons/"+old.Key(), nil); status != 404 {
		t.Fatalf("/v1/lessons of a lesson past retention: %d %s", status, raw)
	}
	if status, _, raw := call(t, "GET", d.PublicAPIURL()+"/v1/lessons/"+fresh.Key(), nil); status != 200 {
		t.Fatalf("/v1/lessons of a fresh lesson: %d %.300s", status, raw)
	}
	res, err := d.publicResults(ctx, "quokka", nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].SignedLesson.Key() != fresh.Key() {
		var keys []string
		for _, r := range res {
			keys = append(keys, r.SignedLesson.Key())
		}
		t.Fatalf("/mesh/search results: %v, want only %s", keys, fresh.Key())
	}
}
