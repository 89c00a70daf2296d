package main

import "testing"

// TestKeys is a smoke test at tiny sizes: the JSON line has the keys of the
// issue, each latency its bound beside it, and sane values. It asserts
// nothing about timing.
func TestKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mocknet of real nodes")
	}
	m := lastJSON(t, "keys", "-readers", "3", "-lessons", "1", "-latency", "5ms", "-cpu", "50ms", "-size", "4096")
	if m["scenario"] != "keys" || m["readers"] != float64(3) || m["latency_ms"] != float64(5) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "key_fetch_p50_ms", "key_fetch_p99_ms", "escrow_reconstruct_p50_ms", "revoke_to_denied_p99_ms", "encrypt_mb_s", "decrypt_mb_s")
	for _, k := range []string{"key_fetch_bound_ms", "escrow_reconstruct_bound_ms", "revoke_to_denied_bound_ms"} {
		if m[k] != float64(10) {
			t.Errorf("%s = %v, want one round trip, 2 × 5 ms", k, m[k])
		}
	}
	if m["key_fetch_p99_ms"].(float64) < m["key_fetch_p50_ms"].(float64) {
		t.Errorf("p99 %v < p50 %v", m["key_fetch_p99_ms"], m["key_fetch_p50_ms"])
	}
}
