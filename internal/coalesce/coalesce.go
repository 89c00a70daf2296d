// Package coalesce runs a job per key when asked, folding requests that
// come while it runs: at most one run per key at a time, runs of one key
// at least a spacing apart, and any number of requests during a run make
// one more run after it. A node uses it to catch up with a peer however
// many times GossipSub says it may have missed something.
package coalesce

import (
	"context"
	"sync"
	"time"
)

// Keyed runs a job per key of type K. The zero value is not usable: see
// New.
type Keyed[K comparable] struct {
	spacing time.Duration
	run     func(context.Context, K)

	mu      sync.Mutex
	pending map[K]*entry // keys whose run is under way or due
}

type entry struct {
	again bool      // asked for again while running
	last  time.Time // when the latest run started; guarded by the runner
}

// New returns a Keyed that calls run, spacing apart at least, per key.
func New[K comparable](spacing time.Duration, run func(context.Context, K)) *Keyed[K] {
	return &Keyed[K]{spacing: spacing, run: run, pending: map[K]*entry{}}
}

// Do asks for a run for k: at once if none is under way, else one more
// after it (spacing after the last start). It does not wait: start is
// called, once, with the function to run in a goroutine of the caller's
// (so that the caller can track it). Runs stop being made once ctx is
// done; run is given ctx.
func (c *Keyed[K]) Do(ctx context.Context, k K, start func(func())) {
	c.mu.Lock()
	if e, ok := c.pending[k]; ok {
		e.again = true
		c.mu.Unlock()
		return
	}
	e := &entry{}
	c.pending[k] = e
	c.mu.Unlock()
	start(func() {
		for {
			if wait := time.Until(e.last.Add(c.spacing)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			if ctx.Err() == nil {
				e.last = time.Now()
				c.run(ctx, k)
			}
			// Checked and dropped under one lock: a request in between
			// would otherwise be folded into a run that never comes.
			c.mu.Lock()
			if !e.again || ctx.Err() != nil {
				delete(c.pending, k)
				c.mu.Unlock()
				return
			}
			e.again = false
			c.mu.Unlock()
		}
	})
}

// Pending reports whether a run for k is under way or due.
func (c *Keyed[K]) Pending(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[k]
	return ok
}
