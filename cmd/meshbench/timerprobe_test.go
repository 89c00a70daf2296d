package main

import (
	"testing"
	"time"
)

// TestTimerProbe: the probe's timers fire and are recorded in time order,
// none early, and Stop ends them.
func TestTimerProbe(t *testing.T) {
	p := startTimerProbe(3, time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	s := p.Stop()
	if len(s) < 3 {
		t.Fatalf("%d samples in 30 ms of three 1 ms timers", len(s))
	}
	for i, x := range s {
		if x.late < 0 || i > 0 && x.at.Before(s[i-1].at) {
			t.Fatalf("sample %d: %+v after %+v", i, x, s[i-1])
		}
	}
	n := len(s)
	time.Sleep(5 * time.Millisecond)
	if len(p.samples) != n {
		t.Fatalf("samples still taken after Stop: %d, then %d", n, len(p.samples))
	}
}

// TestLateIn: a query's window counts the samples fired inside it, ends
// included, and only those late enough.
func TestLateIn(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := []timerSample{{at(0), 0}, {at(10), 12 * time.Millisecond}, {at(20), time.Millisecond}, {at(30), 15 * time.Millisecond}}
	for _, c := range []struct {
		from, to int
		want     bool
	}{
		{0, 5, false},
		{5, 10, true},
		{10, 10, true},
		{11, 29, false},
		{21, 40, true},
		{31, 90, false},
	} {
		if got := lateIn(s, at(c.from), at(c.to), 10*time.Millisecond); got != c.want {
			t.Errorf("[%d, %d] ms: %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if got := probeLate(s, 1); got != 15 {
		t.Errorf("max lateness %v ms, want 15", got)
	}
	if got := probeLate(nil, 0.99); got != 0 {
		t.Errorf("no samples: %v", got)
	}
}
