package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// TestInMemoryIndexCompacts checks that an in-memory store folds the
// segments its writes add (scorch never merges in memory) by rebuilding its
// index, and that every record is still found afterwards.
func TestInMemoryIndexCompacts(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = minCompactWrites + 50
	for i := 0; i < n; i++ {
		if _, _, err := s.Put(ctx, &protocol.Lesson{ID: fmt.Sprintf("r%d", i), Type: "lesson", Content: fmt.Sprintf("compaction word%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.memWrites.Load() >= minCompactWrites {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction after %d writes", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		res, err := s.Search(ctx, Query{Text: fmt.Sprintf("word%d", i)})
		if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != fmt.Sprintf("r%d", i) {
			t.Fatalf("after compaction, word%d: %+v %v", i, res, err)
		}
	}
	res, err := s.Search(ctx, Query{Text: "compaction", Limit: 1})
	if err != nil || res.Total != n {
		t.Fatalf("after compaction: %d matches of %d (%v)", res.Total, n, err)
	}
}
