package main

import "testing"

// TestFedsearch is a smoke test at tiny sizes: the JSON line has the keys of
// the issue and sane values. It asserts nothing about timing.
func TestFedsearch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mocknet of real nodes")
	}
	m := lastJSON(t, "fedsearch", "-nodes", "8", "-degree", "3", "-lessons", "5", "-queries", "5", "-warmup", "2", "-latency", "5ms")
	if m["scenario"] != "fedsearch" || m["nodes"] != float64(8) || m["latency_ms"] != float64(5) || m["queries"] != float64(5) {
		t.Fatalf("got %v", m)
	}
	for _, k := range []string{"bound_ms", "p50_ms", "p99_ms", "recall_at_10", "dead_peer_extra_ms"} {
		if _, ok := m[k].(float64); !ok {
			t.Errorf("%s = %v, want a number", k, m[k])
		}
	}
	if m["bound_ms"] != float64(20) {
		t.Errorf("bound_ms = %v, want hops × 2 × latency = 20", m["bound_ms"])
	}
	positive(t, m, "p50_ms", "p99_ms", "dead_p50_ms", "deadline_ms", "mean_reach_nodes", "mean_ref_lessons")
	corpusKeys(t, m)
	if m["p99_ms"].(float64) < m["p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["p99_ms"], m["p50_ms"])
	}
	for _, k := range []string{"recall_at_10", "dead_recall_at_10", "candidate_recall", "ideal_recall", "fed_vs_ideal", "candidate_stats_recall", "recall_untruncated"} {
		if v := m[k].(float64); v < 0 || v > 1 {
			t.Errorf("%s = %v, want a share in [0, 1]", k, v)
		}
	}
	if m["dead_nodes"] != float64(1) {
		t.Errorf("dead_nodes = %v, want 1 (10%% of 8, at least one)", m["dead_nodes"])
	}
	if n := m["mean_reach_nodes"].(float64); n < 1 || n > 8 {
		t.Errorf("mean_reach_nodes = %v, want 1 to 8", n)
	}
}
