package coalesce

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func goStart(wg *sync.WaitGroup) func(func()) {
	return func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
}

// TestFolds: requests while a run is under way make one more run, spaced
// after the first; other keys run on their own; nothing stays pending.
func TestFolds(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	var mu sync.Mutex
	runs := map[string][]time.Time{}
	c := New(50*time.Millisecond, func(_ context.Context, k string) {
		mu.Lock()
		runs[k] = append(runs[k], time.Now())
		first := len(runs[k]) == 1
		mu.Unlock()
		if k == "a" && first {
			<-release
		}
	})
	ctx := context.Background()
	c.Do(ctx, "a", goStart(&wg))
	for range 20 {
		c.Do(ctx, "a", goStart(&wg))
	}
	c.Do(ctx, "b", goStart(&wg))
	if !c.Pending("a") {
		t.Fatal("a not pending while its run is held")
	}
	close(release)
	wg.Wait()
	if len(runs["a"]) != 2 || len(runs["b"]) != 1 {
		t.Fatalf("runs: a %d, b %d; want 2 and 1", len(runs["a"]), len(runs["b"]))
	}
	if gap := runs["a"][1].Sub(runs["a"][0]); gap < 50*time.Millisecond {
		t.Fatalf("a's runs %v apart, want at least the spacing", gap)
	}
	if c.Pending("a") || c.Pending("b") {
		t.Fatal("a key still pending after its runs")
	}
	c.Do(ctx, "a", goStart(&wg)) // a new burst runs again
	wg.Wait()
	if len(runs["a"]) != 3 {
		t.Fatalf("a ran %d times, want 3", len(runs["a"]))
	}
}

// TestStopsWithContext: a run due after the spacing is not made once the
// context is done, and the key is dropped.
func TestStopsWithContext(t *testing.T) {
	var wg sync.WaitGroup
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	c := New(time.Hour, func(context.Context, string) { n.Add(1) })
	started := make(chan struct{})
	c.Do(ctx, "a", func(f func()) {
		goStart(&wg)(func() {
			<-started
			f()
		})
	})
	c.Do(ctx, "a", goStart(&wg)) // folds: the second run would be an hour later
	close(started)
	for n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if n.Load() != 1 || c.Pending("a") {
		t.Fatalf("%d runs, pending %v; want 1 and false", n.Load(), c.Pending("a"))
	}
}
