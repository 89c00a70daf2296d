package corpus

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tree is a small Go tree, module cache and repository in a temporary
// directory.
type tree struct {
	goroot, modcache, repo string
}

func (tr tree) config() Config {
	return Config{Repo: tr.repo, GoRoot: tr.goroot, ModCache: tr.modcache, NoCache: true}
}

// Paragraphs for the small tree's doc comments: real prose, several
// sentences each, so that the generator has something to combine.
var treeProse = []string{
	"Package alpha keeps a log of events in memory. Events are appended in the order they arrive. A reader sees every event written before it started. Old events are dropped when the log is full.",
	"Append adds an event to the end of the log. It never blocks the caller. When the log is full the oldest event is dropped first. The returned number counts the events appended so far.",
	"Snapshot returns a copy of the events in the log. The copy is owned by the caller and may be changed freely. Later appends do not change it. It is safe to call from several goroutines at once.",
	"Reset empties the log and forgets the events it held. Readers that started before the reset still see the old events. New readers see an empty log until the next append arrives.",
}

// fooProse and barProse mark the text of each module; strayProse is in the
// module cache but not in go.mod and must not appear.
var (
	fooProse   = "Package foo measures the distance between two points on a sphere. The distance is returned in meters. Points are given as latitude and longitude in degrees. Results are exact to within a meter on the earth."
	barProse   = "Package bar compresses blocks of text with a simple dictionary coder. Each block is coded on its own. The dictionary is built from the first block and reused for the rest. Decoding needs the same dictionary."
	strayProse = "Package stray talks about zebras crossing a wide river at dawn. Nothing about it belongs in the corpus because go.mod never asked for it at all."
)

func goSource(pkg string, paras ...string) string {
	var b strings.Builder
	for i, p := range paras {
		if i > 0 {
			b.WriteString("//\n")
		}
		b.WriteString("// " + p + "\n")
	}
	b.WriteString("package " + pkg + "\n\n")
	b.WriteString("// Count returns how many items the package holds right now, counting each of them only once.\nfunc Count() int { return 0 }\n")
	return b.String()
}

func writeTestFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTree(t *testing.T) tree {
	t.Helper()
	dir := t.TempDir()
	tr := tree{goroot: filepath.Join(dir, "goroot"), modcache: filepath.Join(dir, "mod"), repo: filepath.Join(dir, "repo")}
	writeTestFile(t, filepath.Join(tr.goroot, "VERSION"), "go1.99.1\ntime 2026-01-01T00:00:00Z\n")
	writeTestFile(t, filepath.Join(tr.goroot, "src", "alpha", "alpha.go"), goSource("alpha", treeProse...))
	writeTestFile(t, filepath.Join(tr.goroot, "src", "alpha", "alpha_test.go"), goSource("alpha", strayProse))
	writeTestFile(t, filepath.Join(tr.goroot, "src", "alpha", "testdata", "x.go"), goSource("x", strayProse))
	writeTestFile(t, filepath.Join(tr.modcache, "example.com", "!foo@v1.0.0", "foo.go"), goSource("foo", fooProse))
	writeTestFile(t, filepath.Join(tr.modcache, "example.com", "bar@v1.2.0", "inner", "bar.go"), goSource("bar", barProse))
	// Not in go.mod: another version of bar, and another module.
	writeTestFile(t, filepath.Join(tr.modcache, "example.com", "bar@v1.3.0", "bar.go"), goSource("bar", strayProse))
	writeTestFile(t, filepath.Join(tr.modcache, "example.com", "stray@v0.1.0", "stray.go"), goSource("stray", strayProse))
	writeTestFile(t, filepath.Join(tr.repo, "go.mod"), "module example.com/repo\n\ngo 1.26\n\nrequire (\n\texample.com/Foo v1.0.0\n\texample.com/bar v1.2.0 // indirect\n)\n")
	writeTestFile(t, filepath.Join(tr.repo, "go.sum"), strings.Join([]string{
		"example.com/Foo v1.0.0 h1:foo=",
		"example.com/Foo v1.0.0/go.mod h1:foomod=",
		"example.com/bar v1.2.0 h1:bar=",
		"example.com/bar v1.2.0/go.mod h1:barmod=",
		"example.com/bar v1.3.0/go.mod h1:bar13mod=",
		"example.com/testonly v0.5.0 h1:testonly=",
		"example.com/testonly v0.5.0/go.mod h1:testonlymod=",
	}, "\n")+"\n")
	return tr
}

func allDocs(c *Corpus) []Doc {
	out := make([]Doc, c.Len())
	for i := range out {
		out[i] = c.Doc(i)
	}
	return out
}

func TestBuildSmallTree(t *testing.T) {
	tr := newTree(t)
	a, err := Build(tr.config())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(tr.config())
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() || !reflect.DeepEqual(allDocs(a), allDocs(b)) {
		t.Fatal("two builds differ")
	}
	wantMods := []Module{{Path: "example.com/Foo", Version: "v1.0.0", Sum: "h1:foo="}, {Path: "example.com/bar", Version: "v1.2.0", Sum: "h1:bar="}}
	if !reflect.DeepEqual(a.Modules(), wantMods) {
		t.Fatalf("modules %v, want %v", a.Modules(), wantMods)
	}
	if a.GoVersion() != "go1.99.1" {
		t.Errorf("Go version %q", a.GoVersion())
	}
	if a.Paragraphs() == 0 || a.Len() <= a.Paragraphs() {
		t.Fatalf("%d docs, %d paragraphs: want both paragraphs and generated docs", a.Len(), a.Paragraphs())
	}
	t.Logf("%d docs, %d paragraphs, hash %s", a.Len(), a.Paragraphs(), a.Hash())
	sources := map[string]bool{}
	ids := map[string]bool{}
	for _, d := range allDocs(a) {
		if strings.Contains(d.Content, "zebra") {
			t.Fatalf("text from outside the corpus: %+v", d)
		}
		if ids[d.ID] {
			t.Fatalf("duplicate id %s", d.ID)
		}
		ids[d.ID] = true
		sources[strings.Join(d.Tags, "/")] = true
	}
	for _, s := range []string{"alpha", "example.com/Foo", "example.com/bar/inner"} {
		if !sources[s] {
			t.Errorf("no doc from %s (have %v)", s, sources)
		}
	}

	// The cache gives the same corpus back.
	cfg := tr.config()
	cfg.NoCache, cfg.CacheDir = false, t.TempDir()
	for i := range 2 {
		c, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash() != a.Hash() {
			t.Fatalf("build %d with the cache: hash %s, want %s", i, c.Hash(), a.Hash())
		}
	}
	if files, _ := filepath.Glob(filepath.Join(cfg.CacheDir, "corpus-go1.99.1-*.gob")); len(files) != 1 {
		t.Errorf("cache files %v, want one", files)
	}

	// Another checksum is another corpus, even for the same files.
	sum, _ := os.ReadFile(filepath.Join(tr.repo, "go.sum"))
	writeTestFile(t, filepath.Join(tr.repo, "go.sum"), strings.Replace(string(sum), "h1:bar=", "h1:bar2=", 1))
	c, err := Build(tr.config())
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() == a.Hash() {
		t.Error("another go.sum checksum gave the same hash")
	}
}

func TestBuildMissingModule(t *testing.T) {
	tr := newTree(t)
	if err := os.RemoveAll(filepath.Join(tr.modcache, "example.com", "bar@v1.2.0")); err != nil {
		t.Fatal(err)
	}
	_, err := Build(tr.config())
	if !errors.Is(err, ErrMissingModule) {
		t.Fatalf("Build = %v, want ErrMissingModule", err)
	}
	for _, want := range []string{"example.com/bar@v1.2.0", "go mod download", tr.repo} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestBuildBadInputs(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(t *testing.T, tr tree)
		want   string
	}{
		"no checksum": {
			change: func(t *testing.T, tr tree) {
				writeTestFile(t, filepath.Join(tr.repo, "go.sum"), "example.com/Foo v1.0.0 h1:foo=\n")
			},
			want: "go mod tidy",
		},
		"other zip hash": {
			change: func(t *testing.T, tr tree) {
				writeTestFile(t, filepath.Join(tr.modcache, "cache", "download", "example.com", "!foo", "@v", "v1.0.0.ziphash"), "h1:other=\n")
			},
			want: "go.sum says h1:foo=",
		},
		"replace": {
			change: func(t *testing.T, tr tree) {
				writeTestFile(t, filepath.Join(tr.repo, "go.mod"), "module m\nreplace example.com/Foo => ../foo\n")
			},
			want: "replace",
		},
		"no go.sum": {
			change: func(t *testing.T, tr tree) { os.Remove(filepath.Join(tr.repo, "go.sum")) },
			want:   "go.sum",
		},
		"no VERSION": {
			change: func(t *testing.T, tr tree) { os.Remove(filepath.Join(tr.goroot, "VERSION")) },
			want:   "VERSION",
		},
	} {
		t.Run(name, func(t *testing.T) {
			tr := newTree(t)
			tc.change(t, tr)
			_, err := Build(tr.config())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// A zip hash that matches is fine.
	tr := newTree(t)
	writeTestFile(t, filepath.Join(tr.modcache, "cache", "download", "example.com", "!foo", "@v", "v1.0.0.ziphash"), "h1:foo=\n")
	if _, err := Build(tr.config()); err != nil {
		t.Fatal(err)
	}
}
