package corpus

import (
	"bufio"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// format changes whenever extraction or generation changes what they
// produce: it is part of the corpus description, hence of the hash and of the
// cache key.
const format = 3

// ErrTooFew is returned by Load when the corpus holds fewer docs than asked.
var ErrTooFew = errors.New("corpus: too few documents")

// Config says where the inputs of a corpus are. The zero value is the
// corpus of the mesh repository on this machine.
type Config struct {
	// Repo is the directory whose go.mod and go.sum pin the modules. If
	// empty, the mesh repository: the checkout this package was built from,
	// else the one around the working directory.
	Repo string
	// GoRoot is the Go tree whose src directory is read. If empty, $GOROOT,
	// else `go env GOROOT`.
	GoRoot string
	// ModCache is the module cache. If empty, $GOMODCACHE, else `go env
	// GOMODCACHE`.
	ModCache string
	// CacheDir keeps the parsed paragraphs between runs. If empty,
	// os.UserCacheDir()/mesh-corpus.
	CacheDir string
	// NoCache neither reads nor writes the cache. MESH_CORPUS_NOCACHE=1 in
	// the environment has the same effect.
	NoCache bool
}

// Corpus is a built corpus: the real paragraphs, then the generated docs,
// in a fixed order. It is read-only once built and safe for concurrent use.
type Corpus struct {
	goVersion string
	modules   []Module
	desc      string
	base      []Doc      // the real paragraphs
	sents     []sentence // every sentence of base, in order
	gens      []gen      // the generated docs
	hash      string
}

var (
	openOnce sync.Once
	openC    *Corpus
	openErr  error
)

// Open returns the corpus of the mesh repository on this machine, built on
// the first call (Build with a zero Config) and shared afterwards.
func Open() (*Corpus, error) {
	openOnce.Do(func() { openC, openErr = Build(Config{}) })
	return openC, openErr
}

// Load returns n docs sampled without replacement from the corpus Open
// returns; see Corpus.Load.
func Load(n int, seed int64) ([]Doc, error) {
	c, err := Open()
	if err != nil {
		return nil, err
	}
	return c.Load(n, seed)
}

// Build reads the Go tree and the modules that cfg names and builds their
// corpus. It fails with an error wrapping ErrMissingModule if a module is not
// in the module cache.
func Build(cfg Config) (*Corpus, error) {
	goroot, modcache := cfg.GoRoot, cfg.ModCache
	if goroot == "" || modcache == "" {
		envRoot, envCache := goEnv()
		if goroot == "" {
			goroot = envRoot
		}
		if modcache == "" {
			modcache = envCache
		}
	}
	if goroot == "" {
		return nil, errors.New("corpus: no Go tree: set GOROOT")
	}
	if modcache == "" {
		return nil, errors.New("corpus: no module cache: set GOMODCACHE")
	}
	repo := cfg.Repo
	if repo == "" {
		var err error
		if repo, err = repoDir(); err != nil {
			return nil, err
		}
	}
	gover, err := goVersion(goroot)
	if err != nil {
		return nil, err
	}
	mods, err := readModules(repo)
	if err != nil {
		return nil, err
	}
	srcs := []source{{dir: filepath.Join(goroot, "src"), prefix: ""}}
	for _, m := range mods {
		dir, err := checkModule(modcache, repo, m)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, source{dir: dir, prefix: m.Path})
	}
	c := &Corpus{goVersion: gover, modules: mods}
	c.desc = describe(gover, mods)

	cacheFile := ""
	if !cfg.NoCache && os.Getenv("MESH_CORPUS_NOCACHE") == "" {
		dir := cfg.CacheDir
		if dir == "" {
			if ucd, err := os.UserCacheDir(); err == nil {
				dir = filepath.Join(ucd, "mesh-corpus")
			}
		}
		if dir != "" {
			h := sha256.New()
			fmt.Fprintf(h, "%s\ngoroot %s\nmodcache %s\n", c.desc, goroot, modcache)
			cacheFile = filepath.Join(dir, fmt.Sprintf("corpus-%s-%s.gob", gover, hex.EncodeToString(h.Sum(nil))[:16]))
		}
	}
	var groups []int32
	if cacheFile != "" {
		if cf, err := readCache(cacheFile); err == nil && len(cf.Docs) > 0 {
			c.base, groups = cf.Docs, cf.Groups
		}
	}
	if c.base == nil {
		files, err := listFiles(srcs)
		if err != nil {
			return nil, err
		}
		if c.base, groups, err = extractAll(files); err != nil {
			return nil, err
		}
		if len(c.base) == 0 {
			return nil, fmt.Errorf("corpus: no documentation found under %s", srcs[0].dir)
		}
		if cacheFile != "" {
			_ = writeCache(cacheFile, cached{Docs: c.base, Groups: groups}) // the cache is an optimisation only
		}
	}
	h := sha256.New()
	h.Write([]byte(c.desc))
	var rec []byte
	for i := range c.base {
		d := &c.base[i]
		rec = appendRecord(rec[:0], d.Content, d.Title, d.Tags, d.ID)
		h.Write(rec)
	}
	if err := c.generate(groups, h); err != nil {
		return nil, err
	}
	c.hash = hex.EncodeToString(h.Sum(nil))
	return c, nil
}

// describe returns the canonical description of a corpus: what it is made
// of, and of which versions.
func describe(gover string, mods []Module) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh corpus format %d\n", format)
	fmt.Fprintf(&b, "generated to %d docs of 2 to %d sentences, gaps up to %d, %d to %d bytes, seed %#x\n", targetDocs, maxGenSents, maxGap, minChars, maxChars, uint64(genSeed))
	fmt.Fprintf(&b, "goroot %s\n", gover)
	fmt.Fprintf(&b, "parser %s\n", runtime.Version())
	for _, m := range mods {
		fmt.Fprintf(&b, "module %s %s %s\n", m.Path, m.Version, m.Sum)
	}
	return b.String()
}

// Len returns the number of docs in the corpus.
func (c *Corpus) Len() int { return len(c.base) + len(c.gens) }

// Paragraphs returns how many of the docs are real paragraphs: docs 0 to
// Paragraphs()-1; the rest are generated.
func (c *Corpus) Paragraphs() int { return len(c.base) }

// Hash returns the hex SHA-256 of the corpus: of its description (format,
// Go version, modules with their go.sum checksums) followed by every doc in
// order (content, title, tags and ID). Two corpora with the same hash are the
// same docs in the same order.
func (c *Corpus) Hash() string { return c.hash }

// Description returns the canonical description the hash starts with.
func (c *Corpus) Description() string { return c.desc }

// GoVersion returns the version of the Go tree whose sources the corpus
// holds.
func (c *Corpus) GoVersion() string { return c.goVersion }

// Modules returns the modules whose sources the corpus holds, sorted by
// path. The slice is shared: callers must not modify it.
func (c *Corpus) Modules() []Module { return c.modules }

// Doc returns doc i, 0 ≤ i < Len(). Its Tags slice is shared and must not be
// modified.
func (c *Corpus) Doc(i int) Doc {
	if i < len(c.base) {
		return c.base[i]
	}
	g := &c.gens[i-len(c.base)]
	d := &c.base[c.sents[g.first].doc]
	return Doc{ID: genPrefix + hex.EncodeToString(g.key[:]), Title: d.Title, Content: c.genContent(g), Tags: d.Tags}
}

// Load returns n docs sampled without replacement from the corpus, in an
// order and selection fixed by seed. It fails with ErrTooFew if the corpus
// holds fewer than n docs. The returned slice is the caller's; its Tags slices
// are shared and must not be modified.
func (c *Corpus) Load(n int, seed int64) ([]Doc, error) {
	if n < 0 {
		return nil, fmt.Errorf("corpus: load %d docs: n must not be negative", n)
	}
	total := c.Len()
	if n > total {
		return nil, fmt.Errorf("%w: asked for %d, the corpus holds %d", ErrTooFew, n, total)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d657368636f7270)) // "meshcorp"
	// Partial Fisher-Yates over an index permutation.
	idx := make([]int32, total)
	for i := range idx {
		idx[i] = int32(i)
	}
	out := make([]Doc, n)
	for i := 0; i < n; i++ {
		j := i + rng.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
		out[i] = c.Doc(int(idx[i]))
	}
	return out, nil
}

// appendRecord appends a doc as the hash reads it: content, title, tags
// and ID separated by NUL bytes (which no doc contains), then a newline.
// The content comes first so that a generated doc's record can be built
// around the content before its ID, a hash of the content, is known.
func appendRecord[C, I string | []byte](buf []byte, content C, title string, tags []string, id I) []byte {
	buf = append(buf, content...)
	return appendRecordTail(buf, title, tags, id)
}

// appendRecordTail appends what follows the content in a record.
func appendRecordTail[I string | []byte](buf []byte, title string, tags []string, id I) []byte {
	buf = append(buf, 0)
	buf = append(buf, title...)
	buf = append(buf, 0)
	for j, t := range tags {
		if j > 0 {
			buf = append(buf, '/')
		}
		buf = append(buf, t...)
	}
	buf = append(buf, 0)
	buf = append(buf, id...)
	return append(buf, '\n')
}

// cached is what the cache file holds: the real paragraphs and their file
// groups, the slow part to compute.
type cached struct {
	Docs   []Doc
	Groups []int32
}

func readCache(file string) (cached, error) {
	f, err := os.Open(file)
	if err != nil {
		return cached{}, err
	}
	defer f.Close()
	var c cached
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&c); err != nil {
		return cached{}, err
	}
	if len(c.Groups) == 0 || c.Groups[len(c.Groups)-1] != int32(len(c.Docs)) {
		return cached{}, errors.New("corpus: inconsistent cache file")
	}
	// gob gives every doc its own Tags slice: share equal ones again.
	tags := make(map[string][]string)
	for i := range c.Docs {
		k := strings.Join(c.Docs[i].Tags, "/")
		if t, ok := tags[k]; ok {
			c.Docs[i].Tags = t
		} else {
			tags[k] = c.Docs[i].Tags
		}
	}
	return c, nil
}

// writeCache writes atomically: a temporary file renamed into place.
func writeCache(file string, c cached) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".corpus-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := gob.NewEncoder(w).Encode(c); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
