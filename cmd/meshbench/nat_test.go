package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/meshprotocol/mesh/internal/netns"
)

// TestNAT runs the nat scenario once: real daemons in network namespaces.
func TestNAT(t *testing.T) {
	if err := netns.Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the nat scenario must run in CI: %v", err)
		}
		t.Skipf("skipping the nat scenario: %v", err)
	}
	m := lastJSON(t, "nat", "-runs", "1")
	if m["scenario"] != "nat" || m["runs"] != float64(1) || m["relayed_ok"] != float64(1) || m["direct_ok"] != float64(1) {
		t.Fatalf("got %v", m)
	}
	positive(t, m, "first_federation_ms_p50", "relayed_federation_ms_p50", "direct_ms_p50")
}

// TestNATBadFlags checks the scenario refuses nonsense before touching the
// network.
func TestNATBadFlags(t *testing.T) {
	for _, args := range [][]string{{"nat", "-runs", "0"}, {"nat", "-wait", "-1s"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s", args, code, errb.String())
		}
	}
}
