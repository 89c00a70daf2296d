package main

import (
	"io"
	"testing"
)

// TestSensors is a smoke test at tiny sizes: the JSON line has the keys of
// the issue and sane values. It asserts nothing about timing.
func TestSensors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mocknet of real nodes")
	}
	m := lastJSON(t, "sensors", "-sensors", "2", "-rate", "5", "-duration", "500ms", "-queries", "6", "-ingest", "20", "-latency", "5ms")
	if m["scenario"] != "sensors" || m["sensors"] != float64(2) || m["readings_per_s"] != float64(5) || m["bound_ms"] != float64(10) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "query_p50_ms", "query_p99_ms", "revoke_effective_ms", "ingest_readings_per_s", "sign_per_s")
	if m["query_p99_ms"].(float64) < m["query_p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["query_p99_ms"], m["query_p50_ms"])
	}
	if code := run([]string{"sensors", "-sensors", "0"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("-sensors 0: exit %d, want 1", code)
	}
}
