package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	k := New(2, 3, 10)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !k.Allow("a", now) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if k.Allow("a", now) {
		t.Fatal("fourth request at once allowed; burst is 3")
	}
	if !k.Allow("b", now) {
		t.Fatal("another key shares a's bucket")
	}
	// 2 per second: one token after 500 ms, not before.
	if k.Allow("a", now.Add(400*time.Millisecond)) {
		t.Fatal("a token came back before 500 ms")
	}
	if !k.Allow("a", now.Add(600*time.Millisecond)) {
		t.Fatal("no token after 600 ms at 2/s")
	}
}

func TestBoundedKeysForgetLeastRecent(t *testing.T) {
	k := New(1, 1, 3)
	now := time.Unix(1000, 0)
	for _, key := range []string{"a", "b", "c"} {
		if !k.Allow(key, now) {
			t.Fatalf("%s refused", key)
		}
	}
	// a is seen again (refused: its one token is spent), so b is oldest.
	if k.Allow("a", now) {
		t.Fatal("a allowed twice")
	}
	k.Allow("d", now) // evicts b
	if k.Len() != 3 {
		t.Fatalf("keeps %d keys, want 3", k.Len())
	}
	if k.Allow("a", now) {
		t.Fatal("a was forgotten instead of the least recently seen key")
	}
	if !k.Allow("b", now) {
		t.Fatal("b was not forgotten: it is still refused")
	}
}

func TestConcurrent(t *testing.T) {
	k := New(1000, 10, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k.Allow(fmt.Sprintf("k%d", (g*500+i)%100), time.Now())
			}
		}()
	}
	wg.Wait()
	if k.Len() > 64 {
		t.Fatalf("keeps %d keys, the bound is 64", k.Len())
	}
}

func TestRefillsOneTokenAtATime(t *testing.T) {
	k := New(2, 3, 4)
	now := time.Unix(1000, 0)
	for k.Allow("a", now) {
	}
	// Half a second at 2/s refills exactly one token.
	if !k.Allow("a", now.Add(500*time.Millisecond)) || k.Allow("a", now.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2/s does not refill exactly one token")
	}
}

func TestManyKeysStayBounded(t *testing.T) {
	k := New(2, 3, 4)
	now := time.Unix(1000, 0)
	for i := range 100 {
		k.Allow(fmt.Sprint("client", i), now)
		if k.Len() > 4 {
			t.Fatalf("%d keys kept after %d clients, the bound is 4", k.Len(), i+1)
		}
	}
}
