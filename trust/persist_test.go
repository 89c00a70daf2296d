package trust

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/meshprotocol/mesh/protocol"
)

func TestPersistence(t *testing.T) {
	stores := map[string]func(t *testing.T) (open func() ds.Batching, done func()){
		"map": func(t *testing.T) (func() ds.Batching, func()) {
			s := memStore()
			return func() ds.Batching { return s }, func() {}
		},
		"pebble": func(t *testing.T) (func() ds.Batching, func()) {
			dir := t.TempDir()
			var cur *pebbleds.Datastore
			open := func() ds.Batching {
				if cur != nil {
					if err := cur.Close(); err != nil {
						t.Fatal(err)
					}
				}
				d, err := pebbleds.NewDatastore(dir)
				if err != nil {
					t.Fatal(err)
				}
				cur = d
				return d
			}
			return open, func() { cur.Close() }
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			open, done := mk(t)
			defer done()
			n := nodes(t, 6)
			A, B, C, L, X, S := n[0], n[1], n[2], n[3], n[4], n[5]
			c := newClock()
			g := newGraph(t, A, graphOpts{clock: c, store: open()})
			if err := g.Set(B.id, LevelFull, "colleague"); err != nil {
				t.Fatal(err)
			}
			mustSet(t, g, L, LevelLimited)
			mustSet(t, g, X, LevelNone)
			v := vouch(t, g, c, B, C, X)
			r, _ := protocol.SignReferral(B.key, S.id, "try them", c.Now())
			if err := g.AddReferral(r); err != nil {
				t.Fatal(err)
			}
			wantEdges, wantExport := g.Edges(), mustExport(t, g)

			g2 := newGraph(t, A, graphOpts{clock: c, store: open()})
			if got := g2.Edges(); !slices.Equal(got, wantEdges) {
				t.Fatalf("Edges after reopening = %+v, want %+v", got, wantEdges)
			}
			if got := mustExport(t, g2); got != wantExport {
				t.Fatalf("export differs:\n%s\n%s", got, wantExport)
			}
			if hops, score, ok := g2.Path(C.id); !ok || score != 0.5 || pathString(n, hops) != "A>B>C" {
				t.Fatalf("Path(C) after reopening = %s %v %v", pathString(n, hops), score, ok)
			}
			if _, _, ok := g2.Path(X.id); ok || !g2.Blocked(X.id) || !g2.Limited(L.id) {
				t.Fatal("levels lost")
			}
			vs := g2.Vouches()
			if len(vs) != 1 || vs[0].Signature != v.Signature || !slices.Equal(vs[0].Trusts, v.Trusts) {
				t.Fatalf("Vouches after reopening = %+v", vs)
			}
			if err := protocol.VerifyVouch(vs[0], protocol.VerifyOptions{Now: c.Now()}); err != nil {
				t.Fatalf("stored vouch no longer verifies: %v", err)
			}
			if rs := g2.Referrals(); len(rs) != 1 || *rs[0] != *r {
				t.Fatalf("Referrals after reopening = %+v", rs)
			}

			// Removals persist too.
			if err := g2.Remove(B.id); err != nil {
				t.Fatal(err)
			}
			c.Advance(2 * time.Hour) // the vouch expires
			g3 := newGraph(t, A, graphOpts{clock: c, store: open()})
			if _, ok := g3.Level(B.id); ok || len(g3.Edges()) != 2 || len(g3.Vouches()) != 0 {
				t.Fatalf("after Remove and expiry: edges %+v, vouches %d", g3.Edges(), len(g3.Vouches()))
			}
		})
	}
}

func TestCorruptStore(t *testing.T) {
	n := nodes(t, 3)
	store := memStore()
	g := newGraph(t, n[0], graphOpts{store: store})
	mustSet(t, g, n[1], LevelNone)
	ctx := t.Context()
	// An unreadable vouch is skipped: it is only a cache.
	if err := store.Put(ctx, vouchKey(n[2].id), []byte(`{"type":"vouch"`)); err != nil {
		t.Fatal(err)
	}
	if g2 := newGraph(t, n[0], graphOpts{store: store}); len(g2.Vouches()) != 0 || !g2.Blocked(n[1].id) {
		t.Fatal("corrupt vouch not skipped")
	}
	// An unreadable edge is an error: skipping it could unblock a node.
	if err := store.Put(ctx, edgeKey(n[1].id), []byte(`{"nodeId":"`+n[1].id+`","level":"blocked"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Datastore: store, Self: n[0].id}); err == nil || !strings.Contains(err.Error(), "edge") {
		t.Fatalf("New with a corrupt edge: %v", err)
	}
}

func mustExport(t *testing.T, g *Graph) string {
	t.Helper()
	b, err := g.Export()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExportImport(t *testing.T) {
	n := nodes(t, 8)
	A, B, C, D, E, F, G := n[0], n[1], n[2], n[3], n[4], n[5], n[6]
	src := newGraph(t, A, graphOpts{})
	if err := src.Set(B.id, LevelFull, "build cache"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, src, C, LevelFull)
	mustSet(t, src, D, LevelLimited)
	mustSet(t, src, E, LevelFull)
	mustSet(t, src, F, LevelNone)
	data := mustExport(t, src)
	var doc struct {
		Version int    `json:"version"`
		Edges   []Edge `json:"edges"`
	}
	if err := json.Unmarshal([]byte(data), &doc); err != nil || doc.Version != 1 || len(doc.Edges) != 5 {
		t.Fatalf("export = %s (%v)", data, err)
	}

	// The destination already has edges to C (blocked), D (full) and E
	// (limited).
	dst := newGraph(t, G, graphOpts{})
	mustSet(t, dst, C, LevelNone)
	mustSet(t, dst, D, LevelFull)
	mustSet(t, dst, E, LevelLimited)
	before := dst.Edges()
	ch := dst.Changed()
	added, err := dst.Import([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if added != 2 || !closed(ch) {
		t.Fatalf("added %d, changed %v; want 2 (B, F)", added, closed(ch))
	}
	want := map[string]Level{B.id: LevelFull, C.id: LevelNone, D.id: LevelFull, E.id: LevelLimited, F.id: LevelNone}
	for id, level := range want {
		if got, _ := dst.Level(id); got != level {
			t.Errorf("%s: level %q, want %q", pathString(n, []string{id}), got, level)
		}
	}
	for _, e := range before {
		if i := slices.IndexFunc(dst.Edges(), func(x Edge) bool { return x.NodeID == e.NodeID }); dst.Edges()[i] != e {
			t.Errorf("existing edge changed: %+v", dst.Edges()[i])
		}
	}
	if e := dst.Edges()[slices.IndexFunc(dst.Edges(), func(x Edge) bool { return x.NodeID == B.id })]; e.Note != "build cache" {
		t.Errorf("note lost: %+v", e)
	}
	if added, err := dst.Import([]byte(data)); err != nil || added != 0 {
		t.Fatalf("second import: %d, %v", added, err)
	}

	// An export that lists the importer itself skips it.
	self := newGraph(t, B, graphOpts{})
	if added, err := self.Import([]byte(data)); err != nil || added != 4 {
		t.Fatalf("import listing self: %d, %v", added, err)
	}
}

func TestImportRejects(t *testing.T) {
	n := nodes(t, 4)
	good := func(level string) string {
		return `{"nodeId":"` + n[2].id + `","level":"` + level + `","addedAt":5}`
	}
	for _, tt := range []struct {
		name, data string
		target     error
	}{
		{"bad level last", `{"version":1,"edges":[` + good("full") + `,{"nodeId":"` + n[3].id + `","level":"most","addedAt":1}]}`, protocol.ErrInvalid},
		{"bad node id", `{"version":1,"edges":[{"nodeId":"bob","level":"full","addedAt":1}]}`, protocol.ErrInvalid},
		{"duplicate", `{"version":1,"edges":[` + good("full") + `,` + good("none") + `]}`, protocol.ErrInvalid},
		{"unknown field", `{"version":1,"edges":[],"vouches":[]}`, protocol.ErrInvalid},
		{"unknown edge field", `{"version":1,"edges":[{"nodeId":"` + n[2].id + `","level":"full","trust":1}]}`, protocol.ErrInvalid},
		{"no version", `{"edges":[]}`, protocol.ErrInvalid},
		{"no edges", `{"version":1}`, protocol.ErrInvalid},
		{"version 2", `{"version":2,"edges":[]}`, protocol.ErrUnsupportedVersion},
		{"trailing data", `{"version":1,"edges":[]} {}`, protocol.ErrInvalid},
		{"not json", `version: 1`, protocol.ErrInvalid},
		{"negative addedAt", `{"version":1,"edges":[{"nodeId":"` + n[2].id + `","level":"full","addedAt":-1}]}`, protocol.ErrInvalid},
		{"too large", `{"version":1,"edges":[],"x":"` + strings.Repeat("a", MaxImportSize) + `"}`, protocol.ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGraph(t, n[0], graphOpts{})
			mustSet(t, g, n[1], LevelFull)
			ch := g.Changed()
			added, err := g.Import([]byte(tt.data))
			wantErr(t, err, tt.target)
			if added != 0 || len(g.Edges()) != 1 || closed(ch) {
				t.Fatalf("a rejected import changed the graph: %+v", g.Edges())
			}
		})
	}
	g := newGraph(t, n[0], graphOpts{})
	if added, err := g.Import([]byte(`{"version":1,"edges":[{"nodeId":"` + n[2].id + `","level":"limited"}]}`)); err != nil || added != 1 {
		t.Fatal(added, err)
	}
	if e := g.Edges()[0]; e.AddedAt != testNow.UnixMilli() {
		t.Fatalf("missing addedAt not stamped: %+v", e)
	}
}
