package store

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// goDocParagraphs returns up to n paragraphs of English text: the comment
// blocks of the Go standard library.
func goDocParagraphs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	root := filepath.Join(runtime.GOROOT(), "src")
	errStop := fmt.Errorf("enough")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.Contains(path, "testdata") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		var para []string
		flush := func() {
			if len(para) >= 12 {
				out = append(out, strings.Join(para, " "))
			}
			para = para[:0]
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "//") && !strings.HasPrefix(line, "//go:") {
				words := strings.Fields(strings.TrimPrefix(line, "//"))
				if len(words) == 0 {
					flush()
					continue
				}
				para = append(para, words...)
				continue
			}
			flush()
		}
		flush()
		if len(out) >= n {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		t.Fatal(err)
	}
	return out
}

// TestPerf measures load, rebuild, search and concurrent writes on 100k
// records. It asserts nothing about time; run it with MESH_STORE_PERF=1
// (MESH_STORE_PERF_N sets the record count).
func TestPerf(t *testing.T) {
	if os.Getenv("MESH_STORE_PERF") == "" {
		t.Skip("set MESH_STORE_PERF=1 to measure")
	}
	n := 100000
	if v := os.Getenv("MESH_STORE_PERF_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	ctx := context.Background()
	paras := goDocParagraphs(t, n)
	t.Logf("%d paragraphs", len(paras))
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(i int) *protocol.Lesson {
		p := paras[i%len(paras)]
		if i >= len(paras) {
			p = p + " " + paras[rng.IntN(len(paras))]
		}
		words := strings.Fields(p)
		title := strings.Join(words[:min(6, len(words))], " ")
		return &protocol.Lesson{
			Type: []string{"lesson", "snippet", "checkpoint", "reading"}[i%4], Title: title, Content: p,
			Tags: []string{fmt.Sprintf("t%d", i%50)}, Project: fmt.Sprintf("p%d", i%10), Agent: fmt.Sprintf("a%d", i%20),
		}
	}
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, SweepInterval: -1, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < n; i += 1000 {
		batch := make([]*protocol.Lesson, 0, 1000)
		for j := i; j < min(n, i+1000); j++ {
			batch = append(batch, mk(j))
		}
		if _, err := s.PutBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("load %d records with PutBatch(1000): %v, cpu %v", n, time.Since(start), cpuTime()-cpu0)

	start, cpu0 = time.Now(), cpuTime()
	if err := s.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Reindex: %v, cpu %v", time.Since(start), cpuTime()-cpu0)

	// Queries: 2-4 words from random records.
	var queries []string
	for len(queries) < 2000 {
		words := strings.Fields(paras[rng.IntN(len(paras))])
		var q []string
		k := 2 + rng.IntN(3)
		for _, w := range words {
			w = strings.Trim(w, ".,;:()`'\"")
			if len(w) >= 4 && !strings.ContainsAny(w, "<>=\"") {
				q = append(q, w)
			}
		}
		if len(q) < k {
			continue
		}
		rng.Shuffle(len(q), func(a, b int) { q[a], q[b] = q[b], q[a] })
		queries = append(queries, strings.Join(q[:k], " "))
	}
	for _, q := range queries[:200] { // warm up
		if _, err := s.Search(ctx, Query{Text: q}); err != nil {
			t.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, len(queries))
	for _, q := range queries {
		st := time.Now()
		if _, err := s.Search(ctx, Query{Text: q}); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(st))
	}
	slices.Sort(lat)
	t.Logf("search %d queries: p50 %v p90 %v p99 %v max %v", len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)*99/100], lat[len(lat)-1])

	lat = lat[:0]
	for _, q := range queries[:500] {
		st := time.Now()
		if _, err := s.Search(ctx, Query{Text: q, Type: "lesson", Tags: []string{"t3"}}); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(st))
	}
	slices.Sort(lat)
	t.Logf("filtered search: p50 %v p99 %v", lat[len(lat)/2], lat[len(lat)*99/100])

	st := time.Now()
	if _, err := s.List(ctx, ListOptions{Limit: 20}); err != nil {
		t.Fatal(err)
	}
	t.Logf("List(20) over all: %v", time.Since(st))
	st = time.Now()
	if _, err := s.Status(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Status: %v", time.Since(st))

	const writers, each = 16, 100
	st = time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, _, err := s.Put(ctx, mk(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(st)
	t.Logf("%d concurrent Puts by %d writers: %v (%.0f/s)", writers*each, writers, el, float64(writers*each)/el.Seconds())

	st = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close: %v", time.Since(st))
	st = time.Now()
	s2 := openStore(t, dir, nil)
	t.Logf("reopen: %v", time.Since(st))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	st, cpu := time.Now(), cpuTime()
	s3 := openStore(t, dir, nil)
	t.Logf("open with the index deleted (rebuild of %d): %v, cpu %v", n, time.Since(st), cpuTime()-cpu)
	_ = s3
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
