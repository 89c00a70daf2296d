package main

import (
	"context"
	"testing"
)

// TestRun runs the example end to end, ephemeral and on a persistent repo.
func TestRun(t *testing.T) {
	if err := run(context.Background(), ""); err != nil {
		t.Fatal("ephemeral:", err)
	}
	if err := run(context.Background(), t.TempDir()); err != nil {
		t.Fatal("repo:", err)
	}
}
