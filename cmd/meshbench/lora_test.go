package main

import "testing"

// TestLora runs a small lora scenario: three sensors in range of each
// other and of both gateways, no loss. Every reading is carried, once, and
// the sizes are within the budget.
func TestLora(t *testing.T) {
	m := lastJSON(t, "lora", "-sensors", "3", "-readings", "2", "-speed", "100", "-loss", "0", "-hear", "1")
	if m["scenario"] != "lora" || m["delivery"] != 1.0 || m["duplicates_stored"] != 0.0 {
		t.Fatalf("%v", m)
	}
	if b := m["bytes_per_reading"].(float64); b > 120 {
		t.Errorf("an encrypted three-field reading is %v bytes, the budget is 120", b)
	}
	for _, k := range []string{"bytes_announcement", "bytes_revocation"} {
		if b := m[k].(float64); b <= 0 || b > 233 {
			t.Errorf("%s = %v", k, b)
		}
	}
	if m["copies_offered"].(float64) == 0 {
		t.Error("the two gateways never carried the same reading: the dedup is not exercised")
	}
	if m["airtime_ms_per_reading"].(float64) <= 0 || m["p50_ms"].(float64) < m["bound_ms"].(float64) {
		t.Errorf("latency below the airtime bound: %v", m)
	}
}
