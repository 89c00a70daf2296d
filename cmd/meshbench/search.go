package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"time"

	"github.com/meshprotocol/mesh/internal/corpus"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// searchResult is the JSON line of the search scenario.
type searchResult struct {
	Scenario string  `json:"scenario"`
	Records  int     `json:"records"`
	Queries  int     `json:"queries"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	IndexMB  float64 `json:"index_mb"`
	RebuildS float64 `json:"rebuild_s"`
	BuildS   float64 `json:"build_s"`
	MeanHits float64 `json:"mean_hits"`
	// Segments is how many segments the index had while the queries ran.
	Segments int `json:"index_segments"`
	// RSSMB is the process's RSS after the measured queries, with the
	// corpus dropped: the reopened store serving.
	RSSMB float64 `json:"rss_mb"`
	// StatsBytes is the encoded size of the BM25 statistics that a node
	// serving these records attaches to every federated-search answer
	// (protocol.SearchStats), median over the queries; StatsMaxBytes the
	// largest. Vocab is the corpus's distinct analyzed terms.
	StatsBytes    int `json:"answer_stats_bytes"`
	StatsMaxBytes int `json:"answer_stats_max_bytes"`
	Vocab         int `json:"vocab"`
	corpusInfo
}

type searchConfig struct {
	n       int
	queries int
	seed    int64
	batch   int
	warmup  int
	dir     string
	export  string
}

func searchFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c searchConfig
	fs.IntVar(&c.n, "n", 100000, "number of records in the store")
	fs.IntVar(&c.queries, "queries", 1000, "number of measured queries, run one after another")
	fs.Int64Var(&c.seed, "seed", 1, "seed for corpus sampling and query generation")
	fs.IntVar(&c.batch, "batch", 1000, "records per PutBatch while building the store")
	fs.IntVar(&c.warmup, "warmup", 20, "unmeasured queries run after reopening the store")
	fs.StringVar(&c.dir, "dir", "", "build the store in `DIR` (empty or new) and keep it; default: a temporary directory, removed")
	fs.StringVar(&c.export, "export", "", "write DIR/corpus.jsonl and DIR/queries.txt")
	return func(e *env) (any, error) { return runSearch(context.Background(), e, c) }
}

func runSearch(ctx context.Context, e *env, c searchConfig) (*searchResult, error) {
	if c.n <= 0 || c.queries <= 0 || c.batch <= 0 || c.warmup < 0 {
		return nil, errors.New("-n, -queries and -batch must be positive, -warmup not negative")
	}
	start := time.Now()
	docs, info, err := loadCorpus(e, c.n, c.seed)
	if err != nil {
		return nil, err
	}
	queries := corpus.Queries(docs, c.queries, c.seed)
	warm := corpus.Queries(docs, c.warmup, c.seed+1)
	if len(queries) < c.queries {
		return nil, fmt.Errorf("could only make %d of %d queries from the corpus", len(queries), c.queries)
	}
	e.logf("loaded %d corpus docs and %d queries in %s", len(docs), len(queries), time.Since(start).Round(time.Millisecond))
	if c.export != "" {
		if err := export(c.export, docs, queries); err != nil {
			return nil, err
		}
		e.logf("exported %s and %s", filepath.Join(c.export, "corpus.jsonl"), filepath.Join(c.export, "queries.txt"))
	}

	stats, err := answerStats(docs, queries)
	if err != nil {
		return nil, err
	}
	e.logf("federated-search answer statistics: %d distinct terms; %d bytes per answer (median), %d at most",
		stats.vocab, stats.p50, stats.max)

	dir, cleanup, err := workDir(c.dir, "meshbench-search-")
	if err != nil {
		return nil, err
	}
	defer cleanup()

	// Build.
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	created := time.Now().UnixMilli()
	stop := e.profile("search-build")
	start = time.Now()
	nb := (c.n + c.batch - 1) / c.batch
	lastLog := start
	for b := 0; b < nb; b++ {
		lo, hi := b*c.batch, min((b+1)*c.batch, c.n)
		lessons := make([]*protocol.Lesson, 0, hi-lo)
		for _, d := range docs[lo:hi] {
			lessons = append(lessons, &protocol.Lesson{
				ID:         d.ID,
				Type:       protocol.TypeLesson,
				Title:      d.Title,
				Content:    d.Content,
				Tags:       d.Tags,
				CreatedAt:  created,
				Visibility: protocol.VisibilityPublic,
			})
		}
		if err := st.PutBatch(ctx, lessons); err != nil {
			stop()
			st.Close()
			return nil, fmt.Errorf("build: %w", err)
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			e.logf("build: %d/%d records (%.0f/s)", hi, c.n, rate(hi, time.Since(start)))
		}
	}
	buildDur := time.Since(start)
	stop()
	e.logf("built a store of %d records in %s (%.0f/s, batches of %d)", c.n, buildDur.Round(time.Millisecond), rate(c.n, buildDur), c.batch)
	start = time.Now()
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close store: %w", err)
	}
	e.logf("closed in %s", time.Since(start).Round(time.Millisecond))

	// Reopen, as a daemon restarting would, without the corpus in memory:
	// the RSS measured while serving is the store's.
	docs = nil
	runtime.GC()
	debug.FreeOSMemory()
	start = time.Now()
	st, err = openStore(dir)
	if err != nil {
		return nil, fmt.Errorf("reopen: %w", err)
	}
	defer st.Close()
	e.logf("reopened in %s", time.Since(start).Round(time.Millisecond))
	for _, q := range warm {
		if _, err := st.Search(ctx, q, 10); err != nil {
			return nil, fmt.Errorf("warm-up query %q: %w", q, err)
		}
	}

	// A reopened index may still be merging the build's segments: a
	// daemon in service has long finished (directory-http waits too).
	waitIdle(e, "index", 0.1, 60*time.Second)

	// Measure.
	runtime.GC() // do not charge the build's garbage to the first queries
	lat := make([]time.Duration, len(queries))
	hits, zero, firstHits := 0, 0, 0
	segments := st.s.IndexSegments()
	stop = e.profile("search-query")
	for i, q := range queries {
		t0 := time.Now()
		h, err := st.Search(ctx, q, 10)
		lat[i] = time.Since(t0)
		if err != nil {
			stop()
			return nil, fmt.Errorf("query %q: %w", q, err)
		}
		hits += h
		if i == 0 {
			firstHits = h
		}
		if h == 0 {
			zero++
		}
	}
	stop()
	serveRSS := rssMB()
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	p50, p99 := percentile(sorted, 50), percentile(sorted, 99)
	e.logf("%d queries (limit 10): p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms; %.1f hits per query, %d with none",
		len(queries), ms(p50), ms(percentile(sorted, 90)), ms(p99), ms(sorted[len(sorted)-1]), float64(hits)/float64(len(queries)), zero)

	indexBytes, err := dirSize(filepath.Join(dir, "index"))
	if err != nil {
		return nil, fmt.Errorf("index size: %w", err)
	}
	dataBytes, _ := dirSize(filepath.Join(dir, "datastore"))
	e.logf("on disk: index %.2f MiB, datastore %.2f MiB", float64(indexBytes)/(1<<20), float64(dataBytes)/(1<<20))

	// Rebuild the index from the datastore.
	stop = e.profile("search-reindex")
	start = time.Now()
	err = st.Reindex(ctx)
	rebuildDur := time.Since(start)
	stop()
	if err != nil {
		return nil, fmt.Errorf("reindex: %w", err)
	}
	e.logf("rebuilt the index of %d records in %s", c.n, rebuildDur.Round(time.Millisecond))
	// The rebuilt index must answer as the old one did.
	if h, err := st.Search(ctx, queries[0], 10); err != nil {
		return nil, fmt.Errorf("search after reindex: %w", err)
	} else if h != firstHits {
		return nil, fmt.Errorf("search after reindex: %q has %d hits, %d before", queries[0], h, firstHits)
	}
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close store: %w", err)
	}

	return &searchResult{
		Scenario: "search",
		Records:  c.n,
		Queries:  len(queries),
		P50Ms:    round(ms(p50), 3),
		P99Ms:    round(ms(p99), 3),
		IndexMB:  round(float64(indexBytes)/(1<<20), 2),
		RebuildS: round(rebuildDur.Seconds(), 3),
		BuildS:   round(buildDur.Seconds(), 3),
		MeanHits: round(float64(hits)/float64(len(queries)), 2), Segments: segments,
		RSSMB: round(serveRSS, 1),

		StatsBytes:    stats.p50,
		StatsMaxBytes: stats.max,
		Vocab:         stats.vocab,

		corpusInfo: info,
	}, nil
}

// statsSizes are the sizes of the statistics of answers to the queries.
type statsSizes struct{ p50, max, vocab int }

// statsQueries is the number of queries whose answers' statistics are
// measured.
const statsQueries = 100

// answerStats measures the statistics a node serving docs would attach to
// its answer to each of the first queries: those of store.StatsOf over
// the docs (the statistics the node's store computes of its corpus),
// encoded as on the wire.
func answerStats(docs []corpus.Doc, queries []string) (statsSizes, error) {
	lessons := make([]*protocol.Lesson, len(docs))
	for i, d := range docs {
		lessons[i] = &protocol.Lesson{Title: d.Title, Content: d.Content, Tags: d.Tags}
	}
	queries = queries[:min(statsQueries, len(queries))]
	parsed := make([]store.ParsedQuery, len(queries))
	var all store.ParsedQuery // every word of every query: one pass over the docs
	for i, q := range queries {
		pq, err := store.ParseQuery(q)
		if err != nil {
			return statsSizes{}, fmt.Errorf("query %q: %w", q, err)
		}
		parsed[i] = pq
		all.Terms = append(all.Terms, pq.Terms...)
	}
	full := store.StatsOf(lessons, all)
	out := statsSizes{vocab: int(full.Cardinality())}
	sizes := make([]int, 0, len(queries))
	for _, pq := range parsed {
		st := full.Clone()
		st.DocFreq = map[string]int64{}
		for _, t := range store.QueryTerms(pq) {
			st.DocFreq[t] = full.DocFreq[t]
		}
		b, err := json.Marshal(st)
		if err != nil {
			return statsSizes{}, err
		}
		sizes = append(sizes, len(b))
	}
	if len(sizes) == 0 {
		return out, nil
	}
	sort.Ints(sizes)
	out.p50, out.max = sizes[len(sizes)/2], sizes[len(sizes)-1]
	return out, nil
}

// percentile returns the nearest-rank p-th percentile of sorted latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// export writes dir/corpus.jsonl and dir/queries.txt.
func export(dir string, docs []corpus.Doc, queries []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "corpus.jsonl"), func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, d := range docs {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "queries.txt"), func(w *bufio.Writer) error {
		for _, q := range queries {
			if _, err := fmt.Fprintln(w, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeFile(name string, fill func(*bufio.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		f.Close()
		return fmt.Errorf("export %s: %w", name, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("export %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}
