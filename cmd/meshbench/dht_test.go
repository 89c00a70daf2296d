package main

import "testing"

func TestDHT(t *testing.T) {
	m := lastJSON(t, "dht", "-nodes", "12", "-latency", "5ms", "-lookups", "10", "-topics", "3", "-providers", "2")
	if m["scenario"] != "dht" || m["nodes"] != float64(12) || m["latency_ms"] != float64(5) || m["lookups"] != float64(10) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "p50_ms", "p99_ms", "hops_p50", "bound_ms", "ratio")
	if m["found"] != float64(1) {
		t.Errorf("found %v, want every lookup to find its answer", m["found"])
	}
	if want := m["hops_p50"].(float64) * 2 * 5; m["bound_ms"] != want {
		t.Errorf("bound_ms %v, want hops_p50 x 2 x latency = %v", m["bound_ms"], want)
	}
	if m["p99_ms"].(float64) < m["p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["p99_ms"], m["p50_ms"])
	}
}
