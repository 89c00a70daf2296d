package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/meshprotocol/mesh/protocol"
)

// The tests on the real corpus (TestCorpus...) build it from this machine's
// GOROOT and module cache: a few seconds with the cache file, some more
// without. The tests on a small tree (TestBuild...) build one in a temporary
// directory and need neither.

// realCorpus returns the corpus of the repository, skipping the test under
// the race detector (which slows the single-goroutine generator tenfold and
// has nothing to find in it; the small-tree tests cover the parallel parse).
func realCorpus(t *testing.T) *Corpus {
	t.Helper()
	if raceEnabled {
		t.Skip("the full corpus under the race detector is too slow; the small-tree tests run")
	}
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCorpusSize(t *testing.T) {
	c := realCorpus(t)
	t.Logf("corpus %s: %d docs (%d paragraphs), Go %s, %d modules", c.Hash(), c.Len(), c.Paragraphs(), c.GoVersion(), len(c.Modules()))
	if c.Len() < 1_000_000 {
		t.Fatalf("the corpus holds %d docs, want at least 1,000,000", c.Len())
	}
	if c.Paragraphs() < 50_000 {
		t.Errorf("only %d real paragraphs", c.Paragraphs())
	}
}

// TestCorpusModules checks the module set against the go command's reading
// of go.mod and an independent reading of go.sum.
func TestCorpusModules(t *testing.T) {
	c := realCorpus(t)
	repo, err := repoDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	var gomod struct {
		Module  struct{ Path string }
		Require []struct{ Path, Version string }
		Replace []any
	}
	if err := json.Unmarshal(out, &gomod); err != nil {
		t.Fatal(err)
	}
	if gomod.Module.Path != mainModule || len(gomod.Replace) != 0 {
		t.Fatalf("go.mod: module %q, %d replace directives", gomod.Module.Path, len(gomod.Replace))
	}
	sumFile, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	sums := make(map[string]string) // "path@version" -> h1
	for _, line := range strings.Split(string(sumFile), "\n") {
		if f := strings.Fields(line); len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") {
			sums[f[0]+"@"+f[1]] = f[2]
		}
	}
	var want []Module
	for _, r := range gomod.Require {
		want = append(want, Module{Path: r.Path, Version: r.Version, Sum: sums[r.Path+"@"+r.Version]})
	}
	slices.SortFunc(want, func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	if !reflect.DeepEqual(c.Modules(), want) {
		t.Fatalf("modules:\n got %v\nwant %v", c.Modules(), want)
	}
	for _, m := range c.Modules() {
		if m.Sum == "" || !strings.HasPrefix(m.Sum, "h1:") {
			t.Errorf("%s@%s: go.sum has no checksum", m.Path, m.Version)
		}
		if !strings.Contains(c.Description(), "module "+m.Path+" "+m.Version+" "+m.Sum+"\n") {
			t.Errorf("%s@%s is not in the description", m.Path, m.Version)
		}
		delete(sums, m.Path+"@"+m.Version)
	}
	t.Logf("%d modules; go.sum entries that go.mod does not require, left out: %d", len(c.Modules()), len(sums))
	if !strings.Contains(c.Description(), "goroot "+c.GoVersion()+"\n") {
		t.Error("the Go version is not in the description")
	}
}

// TestCorpusDocs checks every doc (with -short, a sample): a unique ID
// derived from its content, and text that reads like prose; and that the
// docs Doc returns hash to Hash.
func TestCorpusDocs(t *testing.T) {
	c := realCorpus(t)
	ids := make([][1 + idBytes]byte, 0, c.Len())
	h := sha256.New()
	h.Write([]byte(c.Description()))
	var rec, low []byte
	var letters, total int
	step := 1 // every doc; with -short, a sample
	if testing.Short() {
		step = 97
	}
	for i := 0; i < c.Len(); i += step {
		d := c.Doc(i)
		prefix := realPrefix
		if i >= c.Paragraphs() {
			prefix = genPrefix
		}
		low = appendLower(low[:0], []byte(d.Content))
		sum := sha256.Sum256(low)
		if want := prefix + hex.EncodeToString(sum[:idBytes]); d.ID != want {
			t.Fatalf("doc %d: id %s, want %s from its content %q", i, d.ID, want, d.Content)
		}
		var id [1 + idBytes]byte
		id[0] = prefix[0]
		copy(id[1:], sum[:idBytes])
		ids = append(ids, id)

		if !utf8.ValidString(d.Content) || strings.Contains(d.Content, "  ") || strings.ContainsAny(d.Content, "\x00\n\t") ||
			d.Content != strings.TrimSpace(d.Content) {
			t.Fatalf("doc %d: bad whitespace or encoding: %q", i, d.Content)
		}
		// Count words (runs of letters), letters and spaces, and runes.
		words, n, runes, inWord := 0, 0, 0, false
		for _, r := range d.Content {
			runes++
			isLetter := unicode.IsLetter(r)
			if isLetter && !inWord {
				words++
			}
			inWord = isLetter
			if isLetter || r == ' ' {
				n++
			}
		}
		if len(d.Content) < minChars || words < minWords/2 {
			t.Fatalf("doc %d: too short: %q", i, d.Content)
		}
		if i >= c.Paragraphs() && len(d.Content) > maxChars {
			t.Fatalf("generated doc %d: %d bytes, over %d", i, len(d.Content), maxChars)
		}
		if d.Title == "" || len(d.Tags) == 0 {
			t.Fatalf("doc %d: no title or tags: %+v", i, d)
		}
		if n*2 < runes {
			t.Fatalf("doc %d: under half letters and spaces: %q", i, d.Content)
		}
		letters += n
		total += runes
		rec = appendRecord(rec[:0], d.Content, d.Title, d.Tags, d.ID)
		h.Write(rec)
	}
	if share := float64(letters) / float64(total); share < 0.85 {
		t.Errorf("letters and spaces are %.3f of the text, want at least 0.85", share)
	} else {
		t.Logf("letters and spaces are %.3f of the text", share)
	}
	slices.SortFunc(ids, func(a, b [1 + idBytes]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("duplicate id %c%x", ids[i][0], ids[i][1:])
		}
	}
	// Hash is what the docs Doc returns hash to.
	if got := hex.EncodeToString(h.Sum(nil)); step == 1 && got != c.Hash() {
		t.Fatalf("the docs hash to %s, Hash() is %s", got, c.Hash())
	}
	for _, i := range []int{0, c.Paragraphs() - 1, c.Paragraphs(), c.Len() / 2, c.Len() - 1} {
		if err := protocol.ValidateID(c.Doc(i).ID); err != nil {
			t.Errorf("doc %d: %v", i, err)
		}
	}
}

// TestCorpusDeterministic builds the corpus again without the cache file:
// the same hash.
func TestCorpusDeterministic(t *testing.T) {
	c := realCorpus(t)
	if testing.Short() {
		t.Skip("parses every source file again")
	}
	fresh, err := Build(Config{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Hash() != c.Hash() || fresh.Len() != c.Len() {
		t.Fatalf("a fresh build: %s, %d docs; the first: %s, %d docs", fresh.Hash(), fresh.Len(), c.Hash(), c.Len())
	}
}

func TestLoadDeterministic(t *testing.T) {
	c := realCorpus(t)
	a, err := Load(500, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(500, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Load(500, 7) differs between calls")
	}
	other, err := Load(500, 8)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, other) {
		t.Fatal("Load with another seed gave the same docs")
	}
	ids := make(map[string]bool)
	gens := 0
	for _, d := range a {
		if ids[d.ID] {
			t.Fatalf("duplicate id %s", d.ID)
		}
		ids[d.ID] = true
		if strings.HasPrefix(d.ID, genPrefix) {
			gens++
		}
		l := protocol.Lesson{ID: d.ID, Type: protocol.TypeLesson, Title: d.Title, Content: d.Content, Tags: d.Tags}
		if err := l.Validate(); err != nil {
			t.Fatalf("doc %s is not a valid lesson: %v", d.ID, err)
		}
	}
	// Sampling is uniform over the corpus.
	want := 500 * (c.Len() - c.Paragraphs()) / c.Len()
	if gens < want-50 || gens > want+50 {
		t.Errorf("%d generated docs of 500, want about %d", gens, want)
	}
}

func TestLoadTooMany(t *testing.T) {
	c := realCorpus(t)
	if _, err := c.Load(c.Len()+1, 1); !errors.Is(err, ErrTooFew) {
		t.Fatalf("Load(Len+1) = %v, want ErrTooFew", err)
	}
	if _, err := c.Load(-1, 1); err == nil {
		t.Fatal("Load(-1) succeeded")
	}
}

func TestQueries(t *testing.T) {
	c, err := Build(newTree(t).config())
	if err != nil {
		t.Fatal(err)
	}
	docs, err := c.Load(500, 1)
	if err != nil {
		t.Fatal(err)
	}
	q1 := Queries(docs, 50, 3)
	q2 := Queries(docs, 50, 3)
	if !reflect.DeepEqual(q1, q2) {
		t.Fatal("Queries differ for the same seed")
	}
	if len(q1) != 50 {
		t.Fatalf("got %d queries, want 50", len(q1))
	}
	for _, q := range q1 {
		words := strings.Fields(q)
		if len(words) < 2 || len(words) > 4 {
			t.Fatalf("query %q: want 2 to 4 words", q)
		}
		for _, w := range words {
			if stopwords[w] || w != strings.ToLower(w) {
				t.Fatalf("query %q: bad word %q", q, w)
			}
		}
	}
	if Queries(nil, 5, 1) != nil {
		t.Fatal("Queries(nil) returned queries")
	}
}

func TestSplitLong(t *testing.T) {
	long := strings.Repeat("This sentence is about forty-five characters. ", 20)
	long = strings.TrimSpace(long)
	parts := splitLong(long)
	if len(parts) < 2 {
		t.Fatalf("not split: %d parts", len(parts))
	}
	if strings.Join(parts, " ") != long {
		t.Fatal("split parts do not rejoin to the original")
	}
	for _, p := range parts {
		if len(p) > maxChars || !strings.HasSuffix(p, ".") {
			t.Fatalf("bad part %q", p)
		}
	}
}

func TestSplitSentences(t *testing.T) {
	s := "First one, e.g. this. Second one? Third one! fourth is not split. Fifth."
	var got []string
	splitSentences(s, func(off, end int) { got = append(got, s[off:end]) })
	want := []string{"First one, e.g. this.", "Second one?", "Third one! fourth is not split.", "Fifth."}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if strings.Join(got, " ") != s {
		t.Fatal("sentences do not rejoin with single spaces")
	}
}

func TestEscapeModPath(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/DataDog/zstd": "github.com/!data!dog/zstd",
		"golang.org/x/net":        "golang.org/x/net",
		"v1.0.0-RC1":              "v1.0.0-!r!c1",
	} {
		if got := escapeModPath(in); got != want {
			t.Errorf("escapeModPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseGoMod(t *testing.T) {
	path, reqs, err := parseGoMod([]byte(`// a comment
module example.com/m // trailing

go 1.26

require example.com/one v1.0.0
require (
	example.com/two v0.2.0 // indirect
	"example.com/three" v3.0.0
)
toolchain go1.26.8
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Module{{Path: "example.com/one", Version: "v1.0.0"}, {Path: "example.com/three", Version: "v3.0.0"}, {Path: "example.com/two", Version: "v0.2.0"}}
	if path != "example.com/m" || !reflect.DeepEqual(reqs, want) {
		t.Fatalf("got %q %v", path, reqs)
	}
	for name, bad := range map[string]string{
		"replace":     "module m\nreplace example.com/one => ../one\n",
		"no module":   "go 1.26\n",
		"unclosed":    "module m\nrequire (\n\texample.com/one v1.0.0\n",
		"twice":       "module m\nrequire example.com/one v1.0.0\nrequire example.com/one v1.1.0\n",
		"bad require": "module m\nrequire example.com/one\n",
	} {
		if _, _, err := parseGoMod([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
