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
	"sync"
)

// cacheFormat changes whenever extraction changes what it produces, so that
// an old cache file is not read.
const cacheFormat = 2

// ErrTooFew is returned by Load when the corpus holds fewer docs than asked.
var ErrTooFew = errors.New("corpus: too few documents")

var (
	allOnce sync.Once
	allDocs []Doc
	allErr  error
)

// All returns the full corpus in its deterministic order. The slice is shared:
// callers must not modify it.
func All() ([]Doc, error) {
	allOnce.Do(func() { allDocs, allErr = build() })
	return allDocs, allErr
}

// Load returns n docs sampled without replacement from the corpus, in an
// order and selection fixed by seed. It fails with ErrTooFew if the corpus
// holds fewer than n docs. The returned slice is the caller's; its Tags slices
// are shared and must not be modified.
func Load(n int, seed int64) ([]Doc, error) {
	if n < 0 {
		return nil, fmt.Errorf("corpus: load %d docs: n must not be negative", n)
	}
	all, err := All()
	if err != nil {
		return nil, err
	}
	if n > len(all) {
		return nil, fmt.Errorf("%w: asked for %d, the corpus holds %d", ErrTooFew, n, len(all))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d657368636f7270)) // "meshcorp"
	// Partial Fisher-Yates over an index permutation.
	idx := make([]int32, len(all))
	for i := range idx {
		idx[i] = int32(i)
	}
	out := make([]Doc, n)
	for i := 0; i < n; i++ {
		j := i + rng.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
		out[i] = all[idx[i]]
	}
	return out, nil
}

// build returns the corpus from the cache file, or parses the sources and
// writes the cache file.
func build() ([]Doc, error) {
	goroot, modcache := goEnv()
	srcs := sources(goroot, modcache)
	if len(srcs) == 0 {
		return nil, errors.New("corpus: no Go sources found: set GOROOT")
	}
	h := sha256.New()
	fmt.Fprintf(h, "format %d\n", cacheFormat)
	for _, s := range srcs {
		fmt.Fprintf(h, "%s %s\n", s.prefix, s.dir)
	}
	key := fmt.Sprintf("corpus-%s-%s.gob", goVersion(goroot), hex.EncodeToString(h.Sum(nil))[:16])
	cacheFile := ""
	if os.Getenv("MESH_CORPUS_NOCACHE") == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cacheFile = filepath.Join(dir, "mesh-corpus", key)
			if docs, err := readCache(cacheFile); err == nil && len(docs) > 0 {
				return docs, nil
			}
		}
	}
	docs := extractAll(listFiles(srcs))
	if len(docs) == 0 {
		return nil, fmt.Errorf("corpus: no documentation found under %s", srcs[0].dir)
	}
	if cacheFile != "" {
		_ = writeCache(cacheFile, docs) // the cache is an optimisation only
	}
	return docs, nil
}

func readCache(file string) ([]Doc, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []Doc
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// writeCache writes atomically: a temporary file renamed into place.
func writeCache(file string, docs []Doc) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".corpus-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := gob.NewEncoder(w).Encode(docs); err != nil {
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
