package trust

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// chain builds, seen from A: B full; vouches B→C,X  C→D  D→E  E→F  F→G;
// L limited, vouch L→M; X blocked, vouch X→Y.
func chain(t *testing.T, maxDepth int) (*Graph, *clock, []node) {
	t.Helper()
	n := nodes(t, 13)
	A, B, C, D, E, F, G, L, M, X, Y := n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[11], n[12], n[9], n[10]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c, maxDepth: maxDepth})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, L, LevelLimited)
	mustSet(t, g, X, LevelNone)
	vouch(t, g, c, B, C, X)
	vouch(t, g, c, C, D)
	vouch(t, g, c, D, E)
	vouch(t, g, c, E, F)
	vouch(t, g, c, F, G)
	vouch(t, g, c, L, M)
	vouch(t, g, c, X, Y)
	return g, c, n
}

func TestPath(t *testing.T) {
	// Node letters are indexes in nodes(): A=0 … G=6, J=9 (X, blocked),
	// K=10 (Y), L=11 (limited), M=12.
	tests := []struct {
		maxDepth int
		target   byte // letter
		want     string
		score    float64
	}{
		{1, 'A', "A", 1},
		{1, 'B', "A>B", 1},
		{1, 'C', "", 0},
		{1, 'L', "A>L", 1},
		{0, 'B', "A>B", 1},
		{0, 'C', "A>B>C", 0.5},
		{0, 'D', "", 0},
		{2, 'C', "A>B>C", 0.5},
		{2, 'D', "", 0},
		{3, 'D', "A>B>C>D", 0.25},
		{3, 'E', "", 0},
		{6, 'E', "A>B>C>D>E", 0.125},
		{6, 'F', "A>B>C>D>E>F", 0.125}, // floor
		{6, 'G', "A>B>C>D>E>F>G", 0.125},
		// limited: a path of one hop, its vouches not followed
		{0, 'L', "A>L", 1},
		{3, 'M', "", 0},
		// blocked: no path though B vouches for it, and never traversed
		{0, 'J', "", 0},
		{3, 'J', "", 0},
		{3, 'K', "", 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.target)+"/depth="+string(rune('0'+tt.maxDepth)), func(t *testing.T) {
			g, _, n := chain(t, tt.maxDepth)
			hops, score, ok := g.Path(n[tt.target-'A'].id)
			if got := pathString(n, hops); got != tt.want || ok != (tt.want != "") {
				t.Fatalf("Path = %q, %v; want %q", got, ok, tt.want)
			}
			if score != tt.score {
				t.Fatalf("score = %v, want %v", score, tt.score)
			}
			if ok && (hops[0] != g.Self() || hops[len(hops)-1] != n[tt.target-'A'].id) {
				t.Fatalf("hops = %v", hops)
			}
		})
	}
}

func TestScore(t *testing.T) {
	for hops, want := range []float64{1, 1, 0.5, 0.25, 0.125, 0.125, 0.125} {
		if got := Score(hops); got != want {
			t.Errorf("Score(%d) = %v, want %v", hops, got, want)
		}
	}
}

func TestLevelsAndLimited(t *testing.T) {
	g, _, n := chain(t, 3)
	B, L, X, C := n[1], n[11], n[9], n[2]
	for _, tt := range []struct {
		n                node
		level            Level
		direct, blocked  bool
		limited, hasPath bool
	}{
		{B, LevelFull, true, false, false, true},
		{L, LevelLimited, true, false, true, true},
		{X, LevelNone, true, true, false, false},
		{C, "", false, false, false, true},
	} {
		level, direct := g.Level(tt.n.id)
		_, _, hasPath := g.Path(tt.n.id)
		if level != tt.level || direct != tt.direct || g.Blocked(tt.n.id) != tt.blocked || g.Limited(tt.n.id) != tt.limited || hasPath != tt.hasPath {
			t.Errorf("%s: Level %q %v, Blocked %v, Limited %v, path %v", pathString(n, []string{tt.n.id}), level, direct, g.Blocked(tt.n.id), g.Limited(tt.n.id), hasPath)
		}
	}
	if g.Blocked(g.Self()) || g.Limited(g.Self()) {
		t.Fatal("self is blocked or limited")
	}
}

func TestShortestPathWins(t *testing.T) {
	n := nodes(t, 5)
	A, B, C, D, E := n[0], n[1], n[2], n[3], n[4]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c, maxDepth: 3})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, C, LevelFull)
	mustSet(t, g, E, LevelLimited)
	vouch(t, g, c, B, D, C, E) // C and E are direct anyway
	vouch(t, g, c, C, D)       // D reachable through B and C: B, the smaller ID, wins
	for target, want := range map[string]string{C.id: "A>C", E.id: "A>E"} {
		if hops, _, _ := g.Path(target); pathString(n, hops) != want {
			t.Errorf("Path = %s, want %s", pathString(n, hops), want)
		}
	}
	if !g.Limited(E.id) {
		t.Error("a vouch for a directly limited node raised it")
	}
	hops, _, ok := g.Path(D.id)
	if !ok || len(hops) != 3 {
		t.Fatalf("Path(D) = %s", pathString(n, hops))
	}
	first := hops[1]
	for range 20 {
		if h, _, _ := g.Path(D.id); h[1] != first {
			t.Fatal("path not deterministic")
		}
	}
	if want := min(B.id, C.id); first != want {
		t.Fatalf("tie went through %s, want the smaller ID", pathString(n, []string{first}))
	}
}

func TestBlockedEvenWhenVouched(t *testing.T) {
	n := nodes(t, 5)
	A, B, C, X, Y := n[0], n[1], n[2], n[3], n[4]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c, maxDepth: 3})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, C, LevelFull)
	vouch(t, g, c, B, X)
	vouch(t, g, c, C, X, Y)
	vouch(t, g, c, X, Y)
	if _, _, ok := g.Path(X.id); !ok {
		t.Fatal("X not reachable before the block")
	}
	ch := g.Changed()
	mustSet(t, g, X, LevelNone)
	if !closed(ch) {
		t.Fatal("Changed not closed by a block")
	}
	if _, _, ok := g.Path(X.id); ok || !g.Blocked(X.id) {
		t.Fatal("blocked node has a path")
	}
	// Y is still reachable through C, but never through X.
	if hops, _, ok := g.Path(Y.id); !ok || slices.Contains(hops, X.id) {
		t.Fatalf("Path(Y) = %s, %v", pathString(n, hops), ok)
	}
	// Blocking a direct full edge removes it and everything behind it.
	mustSet(t, g, C, LevelNone)
	if _, _, ok := g.Path(Y.id); ok {
		t.Fatal("Y reachable with C and X blocked")
	}
	if v, _ := g.SignVouch(A.key, 0); len(v.Trusts) != 1 || v.Trusts[0] != B.id {
		t.Fatalf("vouch lists %v, want only B", v.Trusts)
	}
}

func TestRemoveInvalidatesAtOnce(t *testing.T) {
	g, _, n := chain(t, 3)
	B, C, D := n[1], n[2], n[3]
	for _, x := range []node{B, C, D} {
		if _, _, ok := g.Path(x.id); !ok {
			t.Fatalf("%s unreachable before Remove", pathString(n, []string{x.id}))
		}
	}
	ch := g.Changed()
	if err := g.Remove(B.id); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Fatal("Changed not closed by Remove")
	}
	for _, x := range []node{B, C, D} {
		if _, _, ok := g.Path(x.id); ok {
			t.Fatalf("%s still reachable after Remove", pathString(n, []string{x.id}))
		}
	}
	if _, ok := g.Level(B.id); ok {
		t.Fatal("edge still there")
	}
	wantErr(t, g.Remove(B.id), ErrNoEdge)
	// The vouches stay cached: trusting B again restores the paths.
	mustSet(t, g, B, LevelFull)
	if _, _, ok := g.Path(D.id); !ok {
		t.Fatal("D unreachable after B is trusted again")
	}
	// Downgrading B to limited stops following its vouch.
	mustSet(t, g, B, LevelLimited)
	if _, _, ok := g.Path(C.id); ok {
		t.Fatal("C reachable through a limited node")
	}
}

func TestVouchExpiry(t *testing.T) {
	n := nodes(t, 4)
	A, B, C, D := n[0], n[1], n[2], n[3]
	c := newClock()
	store := memStore()
	g := newGraph(t, A, graphOpts{clock: c, store: store})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, D, LevelFull)

	old, err := protocol.SignVouch(B.key, []string{C.id}, c.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, g.AddVouch(old), ErrExpired)
	wantErr(t, g.AddVouch(old), protocol.ErrTimestamp)
	if _, _, ok := g.Path(C.id); ok || len(g.Vouches()) != 0 {
		t.Fatal("expired vouch used or kept")
	}

	vouch(t, g, c, B, C) // valid for an hour
	c.Advance(10 * time.Minute)
	vouch(t, g, c, D, C) // expires 10 minutes after B's
	if hops, _, ok := g.Path(C.id); !ok || hops[1] != min(B.id, D.id) {
		t.Fatal("C unreachable")
	}
	ch := g.Changed()
	c.Advance(50 * time.Minute) // B's (issued first) expires now
	hops, _, ok := g.Path(C.id)
	if !ok || hops[1] != D.id {
		t.Fatalf("after B's vouch expired: Path(C) = %s, %v, want through D", pathString(n, hops), ok)
	}
	if !closed(ch) {
		t.Fatal("Changed not closed when a vouch expired")
	}
	if vs := g.Vouches(); len(vs) != 1 || vs[0].NodeID != D.id {
		t.Fatalf("Vouches = %v", vs)
	}
	c.Advance(10 * time.Minute)
	if _, _, ok := g.Path(C.id); ok {
		t.Fatal("path through expired vouches")
	}
	if len(g.Vouches()) != 0 {
		t.Fatal("expired vouches listed")
	}
	// Swept from the datastore too.
	g2 := newGraph(t, A, graphOpts{clock: newClock(), store: store})
	if len(g2.vouches) != 0 {
		t.Fatalf("expired vouches still stored: %d", len(g2.vouches))
	}
}

func TestVouchFromUntrustedNode(t *testing.T) {
	n := nodes(t, 4)
	A, Z, S, B := n[0], n[1], n[2], n[3]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c})
	vouch(t, g, c, Z, S) // stored, confers nothing
	if vs := g.Vouches(); len(vs) != 1 || vs[0].NodeID != Z.id {
		t.Fatalf("Vouches = %v", vs)
	}
	for _, x := range []node{Z, S} {
		if _, _, ok := g.Path(x.id); ok {
			t.Fatal("a vouch from an untrusted node conferred trust")
		}
	}
	// B trusted fully, vouched for by Z: still nothing for S.
	mustSet(t, g, B, LevelFull)
	if _, _, ok := g.Path(S.id); ok {
		t.Fatal("S reachable")
	}
	mustSet(t, g, Z, LevelLimited)
	if _, _, ok := g.Path(S.id); ok {
		t.Fatal("S reachable through a limited voucher")
	}
	// Once Z is trusted fully, its cached vouch counts.
	mustSet(t, g, Z, LevelFull)
	if hops, score, ok := g.Path(S.id); !ok || score != 0.5 || pathString(n, hops) != "A>B>C" {
		t.Fatalf("Path(S) = %s %v %v", pathString(n, hops), score, ok)
	}
}

func TestAddVouchNewestWins(t *testing.T) {
	n := nodes(t, 4)
	A, B, C, D := n[0], n[1], n[2], n[3]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c})
	mustSet(t, g, B, LevelFull)
	first := vouch(t, g, c, B, C)
	if err := g.AddVouch(first); err != nil {
		t.Fatalf("the same vouch again: %v", err)
	}
	c.Advance(time.Minute)
	vouch(t, g, c, B, D)
	wantErr(t, g.AddVouch(first), ErrStale)
	if _, _, ok := g.Path(C.id); ok {
		t.Fatal("older vouch still followed")
	}
	if _, _, ok := g.Path(D.id); !ok {
		t.Fatal("newer vouch not followed")
	}
	// The same issuedAt with other contents is refused too.
	other, _ := protocol.SignVouch(B.key, []string{C.id}, c.Now(), time.Hour)
	wantErr(t, g.AddVouch(other), ErrStale)
	// An empty newer vouch withdraws the old one.
	c.Advance(time.Minute)
	vouch(t, g, c, B)
	if _, _, ok := g.Path(D.id); ok {
		t.Fatal("withdrawn vouch followed")
	}

	own, _ := protocol.SignVouch(A.key, []string{B.id}, c.Now(), time.Hour)
	wantErr(t, g.AddVouch(own), protocol.ErrInvalid)
	wantErr(t, g.AddVouch(nil), protocol.ErrInvalid)
}

func TestSetRejects(t *testing.T) {
	n := nodes(t, 2)
	g := newGraph(t, n[0], graphOpts{})
	for _, tt := range []struct {
		name, id string
		level    Level
		note     string
	}{
		{"not a node id", "bob", LevelFull, ""},
		{"empty id", "", LevelFull, ""},
		{"self", n[0].id, LevelFull, ""},
		{"bad level", n[1].id, "partial", ""},
		{"empty level", n[1].id, "", ""},
		{"note too long", n[1].id, LevelFull, strings.Repeat("x", MaxNoteLength+1)},
		{"note not utf-8", n[1].id, LevelFull, "\xff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, g.Set(tt.id, tt.level, tt.note), protocol.ErrInvalid)
		})
	}
	if len(g.Edges()) != 0 {
		t.Fatal("a rejected edge was added")
	}
	if _, err := ParseLevel("limited"); err != nil {
		t.Fatal(err)
	}
	_, err := ParseLevel("LIMITED")
	wantErr(t, err, protocol.ErrInvalid)
}

func TestSetKeepsAddedAt(t *testing.T) {
	n := nodes(t, 2)
	c := newClock()
	g := newGraph(t, n[0], graphOpts{clock: c})
	if err := g.Set(n[1].id, LevelLimited, "colleague"); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	ch := g.Changed()
	if err := g.Set(n[1].id, LevelLimited, "colleague"); err != nil {
		t.Fatal(err)
	}
	if closed(ch) {
		t.Fatal("Changed closed by a no-op Set")
	}
	if err := g.Set(n[1].id, LevelFull, "trusted colleague"); err != nil {
		t.Fatal(err)
	}
	want := []Edge{{NodeID: n[1].id, Level: LevelFull, Note: "trusted colleague", AddedAt: testNow.UnixMilli()}}
	if got := g.Edges(); !slices.Equal(got, want) {
		t.Fatalf("Edges = %+v, want %+v", got, want)
	}
}

func TestSignVouch(t *testing.T) {
	n := nodes(t, 5)
	A, B, C, D := n[0], n[1], n[2], n[3]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c})
	mustSet(t, g, C, LevelFull)
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, D, LevelLimited)
	mustSet(t, g, n[4], LevelNone)
	v, err := g.SignVouch(A.key, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyVouch(v, protocol.VerifyOptions{Now: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if want := []string{min(B.id, C.id), max(B.id, C.id)}; !slices.Equal(v.Trusts, want) || v.NodeID != A.id {
		t.Fatalf("vouch = %+v", v)
	}
	if v.ExpiresAt-v.IssuedAt != (2 * time.Hour).Milliseconds() {
		t.Fatal("ttl not applied")
	}
	if v, _ := g.SignVouch(A.key, 0); v.ExpiresAt-v.IssuedAt != DefaultVouchTTL.Milliseconds() {
		t.Fatal("default ttl not applied")
	}
	_, err = g.SignVouch(B.key, time.Hour)
	wantErr(t, err, protocol.ErrInvalid)
}

func TestNewRejects(t *testing.T) {
	self := testNode(t, 1)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"no datastore", Config{Self: self.id}},
		{"no self", Config{Datastore: memStore()}},
		{"bad self", Config{Datastore: memStore(), Self: "me"}},
		{"negative depth", Config{Datastore: memStore(), Self: self.id, MaxDepth: -1}},
		{"huge depth", Config{Datastore: memStore(), Self: self.id, MaxDepth: MaxDepthLimit + 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	g, err := New(Config{Datastore: memStore(), Self: self.id})
	if err != nil {
		t.Fatal(err)
	}
	if g.MaxDepth() != DefaultMaxDepth {
		t.Fatalf("MaxDepth = %d", g.MaxDepth())
	}
	if hops, score, ok := g.Path(self.id); !ok || score != 1 || len(hops) != 1 || hops[0] != self.id {
		t.Fatalf("Path(self) = %v %v %v", hops, score, ok)
	}
	if _, _, ok := g.Path("garbage"); ok {
		t.Fatal("path to garbage")
	}
}

func TestReferralsNotActedOn(t *testing.T) {
	n := nodes(t, 5)
	A, B, S, X := n[0], n[1], n[2], n[3]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c})
	mustSet(t, g, B, LevelFull)
	mustSet(t, g, X, LevelNone)
	r, err := protocol.SignReferral(B.key, S.id, "runs the build cache", c.Now())
	if err != nil {
		t.Fatal(err)
	}
	ch := g.Changed()
	if err := g.AddReferral(r); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Fatal("Changed not closed")
	}
	if err := g.AddReferral(r); err != nil {
		t.Fatalf("the same referral again: %v", err)
	}
	if rs := g.Referrals(); len(rs) != 1 || *rs[0] != *r {
		t.Fatalf("Referrals = %v", rs)
	}
	if _, _, ok := g.Path(S.id); ok {
		t.Fatal("a referral conferred trust")
	}
	if _, ok := g.Level(S.id); ok || len(g.Edges()) != 2 {
		t.Fatal("a referral added an edge")
	}
	c.Advance(time.Second)
	newer, _ := protocol.SignReferral(B.key, S.id, "", c.Now())
	if err := g.AddReferral(newer); err != nil {
		t.Fatal(err)
	}
	wantErr(t, g.AddReferral(r), ErrStale)
	if rs := g.Referrals(); len(rs) != 1 || rs[0].Note != "" {
		t.Fatalf("Referrals = %v", rs)
	}
	fromBlocked, _ := protocol.SignReferral(X.key, S.id, "", c.Now())
	wantErr(t, g.AddReferral(fromBlocked), protocol.ErrUntrusted)
	wantErr(t, g.AddReferral(nil), protocol.ErrInvalid)
}

func TestReferralsPerNodeCap(t *testing.T) {
	self := testNode(t, 1)
	from := testNode(t, 2)
	c := newClock()
	g := newGraph(t, self, graphOpts{clock: c})
	var first string
	for i := range MaxReferralsPerNode + 1 {
		subject := testNode(t, byte(10+i))
		if i == 0 {
			first = subject.id
		}
		r, err := protocol.SignReferral(from.key, subject.id, "", c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := g.AddReferral(r); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	rs := g.Referrals()
	if len(rs) != MaxReferralsPerNode {
		t.Fatalf("%d referrals held, want %d", len(rs), MaxReferralsPerNode)
	}
	for _, r := range rs {
		if r.Subject == first {
			t.Fatal("the oldest referral was not the one replaced")
		}
	}
	if !slices.IsSortedFunc(rs, func(a, b *protocol.Referral) int { return int(b.IssuedAt - a.IssuedAt) }) {
		t.Fatal("Referrals not newest first")
	}
}
