package main

import (
	"bytes"
	"testing"
)

func TestDirectoryHTTP(t *testing.T) {
	m := lastJSON(t, "directory-http", "-n", "300", "-rate", "200", "-requests", "100", "-conns", "4", "-warmup", "5", "-publishers", "5", "-settle", "10s")
	if m["scenario"] != "directory-http" || m["records"] != float64(300) || m["rate"] != float64(200) || m["requests"] != float64(100) {
		t.Fatalf("got %v", m)
	}
	for _, k := range []string{"p50_ms", "p99_ms", "errors"} {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s missing or not a number in %v", k, m)
		}
	}
	positive(t, m, "p50_ms", "p99_ms", "mean_results")
	corpusKeys(t, m)
	if m["errors"] != float64(0) {
		t.Errorf("errors = %v, want 0", m["errors"])
	}
	if m["p99_ms"].(float64) < m["p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["p99_ms"], m["p50_ms"])
	}
	// Bad flags are refused.
	var out, errb bytes.Buffer
	if code := run([]string{"directory-http", "-rate", "0"}, &out, &errb); code == 0 {
		t.Fatal("-rate 0 accepted")
	}
}
