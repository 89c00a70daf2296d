// Package interop finds the independent Node.js verifier
// (protocol/testdata/interop) for tests: the node binary and the directory
// its scripts run in.
package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is the verifier's directory, absolute.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "protocol", "testdata", "interop")
}

// Verifier returns the node binary and the verifier's directory, or skips
// the test saying what is missing (node itself, or the verifier's npm
// packages). Under CI=true it fails instead: CI installs both and must run
// the independent verifier.
func Verifier(t testing.TB) (nodeBin, dir string) {
	t.Helper()
	dir = Dir()
	reason := ""
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		reason = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "canonicalize")); err != nil {
		reason = "its npm packages are not installed: run (cd protocol/testdata/interop && npm ci --no-audit --no-fund)"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: the independent verifier is unavailable: %s", reason)
		}
		t.Skipf("needs the Node.js verifier: %s", reason)
	}
	return nodeBin, dir
}
