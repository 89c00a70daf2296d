package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lastJSON runs meshbench with args and decodes the last stdout line.
func lastJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("meshbench %v: exit %d\n%s", args, code, stderr.String())
	}
	t.Logf("stderr:\n%s", stderr.String())
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	var m map[string]any
	if err := json.Unmarshal([]byte(last), &m); err != nil {
		t.Fatalf("last stdout line %q is not a JSON object: %v", last, err)
	}
	return m
}

// corpusKeys checks that a result names its corpus: a SHA-256 in hex and
// at least a million docs.
func corpusKeys(t *testing.T, m map[string]any) {
	t.Helper()
	if h, ok := m["corpus_hash"].(string); !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("corpus_hash = %v, want 64 hex digits", m["corpus_hash"])
	}
	if n, ok := m["corpus_docs"].(float64); !ok || n < 1_000_000 {
		t.Errorf("corpus_docs = %v, want at least 1,000,000", m["corpus_docs"])
	}
}

// positive checks that every key is a number greater than zero.
func positive(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := m[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number (in %v)", k, m[k], m)
		}
	}
}

func TestIngest(t *testing.T) {
	m := lastJSON(t, "ingest", "-n", "200", "-batch", "32")
	if m["scenario"] != "ingest" || m["records"] != float64(200) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "verify_per_s", "ingest_per_s", "ratio")
	corpusKeys(t, m)
	if m["ratio"].(float64) != 0 {
		want := m["ingest_per_s"].(float64) / m["verify_per_s"].(float64)
		if r := m["ratio"].(float64); r < want*0.99 || r > want*1.01 {
			t.Errorf("ratio %v, want ingest/verify = %v", r, want)
		}
	}
}

func TestSearch(t *testing.T) {
	exp := t.TempDir()
	dir := filepath.Join(t.TempDir(), "store")
	m := lastJSON(t, "search", "-n", "500", "-queries", "20", "-batch", "100", "-dir", dir, "-export", exp)
	if m["scenario"] != "search" || m["records"] != float64(500) || m["queries"] != float64(20) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "p50_ms", "p99_ms", "index_mb", "mean_hits")
	corpusKeys(t, m)
	if v, ok := m["rebuild_s"].(float64); !ok || v < 0 {
		t.Errorf("rebuild_s = %v, want a number >= 0", m["rebuild_s"])
	}
	if m["p99_ms"].(float64) < m["p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["p99_ms"], m["p50_ms"])
	}
	if _, err := os.Stat(filepath.Join(dir, "index")); err != nil {
		t.Errorf("-dir given but the store is gone: %v", err)
	}

	f, err := os.Open(filepath.Join(exp, "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d struct {
			ID, Title, Content string
			Tags               []string
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil || d.ID == "" || d.Content == "" || len(d.Tags) == 0 {
			t.Fatalf("bad corpus line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 500 {
		t.Errorf("corpus.jsonl has %d lines, want 500", n)
	}
	q, err := os.ReadFile(filepath.Join(exp, "queries.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(q)), "\n"); len(lines) != 20 {
		t.Errorf("queries.txt has %d lines, want 20", len(lines))
	}

	// A non-empty -dir is refused rather than mixed into the measurement.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"search", "-n", "10", "-queries", "2", "-dir", dir}, &stdout, &stderr); code == 0 {
		t.Error("search into a non-empty -dir succeeded")
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"bogus"}, 2},
		{[]string{"help"}, 0},
		{[]string{"help", "search"}, 0},
		{[]string{"ingest", "-n", "0"}, 1},
		{[]string{"ingest", "extra"}, 2},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code {
			t.Errorf("meshbench %v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr.String())
		}
	}
}

func TestIdle(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("idle reads /proc: Linux only")
	}
	m := lastJSON(t, "idle", "-records", "20", "-wait", "1s")
	if m["scenario"] != "idle" || m["records"] != float64(20) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "rss_mb", "rss_max_mb", "rss_anon_mb", "binary_mb", "rss_text_mb", "text_mb", "rss_rodata_mb", "rodata_mb")
	if m["rss_text_mb"].(float64) > m["text_mb"].(float64) {
		t.Fatalf("more code resident than mapped: %v", m)
	}
}

// TestIdleFloor runs internal/idlefloor, MESH's dependencies alone: its
// binary must be smaller than mesh's, and its code resident.
func TestIdleFloor(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("idle reads /proc: Linux only")
	}
	m := lastJSON(t, "idle", "-floor", "-wait", "1s")
	if m["scenario"] != "idle" || m["floor"] != true || m["profile"] != "sensor" {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "rss_mb", "rss_anon_mb", "binary_mb", "rss_text_mb", "text_mb")
}
