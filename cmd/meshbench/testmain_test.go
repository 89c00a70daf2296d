package main

import (
	"os"
	"testing"
)

// TestMain lets propagate -procs run the test binary again as meshbench
// inside its network namespace.
func TestMain(m *testing.M) {
	if os.Getenv(procsChildEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
