// Package ratelimit is a token bucket per key (a peer ID, a client
// address), over golang.org/x/time/rate, that keeps a bounded number of
// keys: when full, it forgets the least recently seen key, whose bucket
// has most likely refilled, never everyone at once.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed is a token bucket per key. It is safe for concurrent use.
type Keyed struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu   sync.Mutex
	keys map[string]*list.Element // of *entry
	lru  list.List                // front: most recently seen
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a limiter that lets each key make perSecond requests a
// second, burst at once (at least 1), and keeps at most maxKeys keys (at
// least 1).
func New(perSecond float64, burst, maxKeys int) *Keyed {
	return &Keyed{limit: rate.Limit(perSecond), burst: max(burst, 1), maxKeys: max(maxKeys, 1), keys: map[string]*list.Element{}}
}

// Allow takes a token from key's bucket at now, and reports whether there
// was one.
func (k *Keyed) Allow(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	var lim *rate.Limiter
	if e, ok := k.keys[key]; ok {
		k.lru.MoveToFront(e)
		lim = e.Value.(*entry).lim
	} else {
		for len(k.keys) >= k.maxKeys {
			oldest := k.lru.Back()
			k.lru.Remove(oldest)
			delete(k.keys, oldest.Value.(*entry).key)
		}
		lim = rate.NewLimiter(k.limit, k.burst)
		k.keys[key] = k.lru.PushFront(&entry{key: key, lim: lim})
	}
	return lim.AllowN(now, 1)
}

// Len is the number of keys kept.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
}
