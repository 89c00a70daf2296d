package main

import (
	"slices"
	"sync"
	"time"
)

// timerProbe measures how late this process's timers fire while a phase
// runs. mocknet delays every write by a timer, so a link is exactly as
// late as the timers are: a late timer is latency the scenario's nodes did
// not cause and a real network would not add.
//
// Go's runtime can make timers late while a GC cycle marks: every P with
// nothing to run then runs an idle mark worker, which gives the P back
// when goroutines become runnable or the network has news, but does not
// look at timers (runtime.pollWork), so a timer due on that P can wait
// until the worker is preempted, some 10 ms later. In a mostly idle test
// program with a 150 MB live heap on 2 Ps, 20 ms sleeps woke 19 ms late
// at p99 (4 ms without GC). The probe tells whether a run suffered that.
type timerProbe struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []timerSample
}

type timerSample struct {
	at   time.Time // when the timer fired
	late time.Duration
}

// probeMaxSamples bounds a probe's memory: at 4 timers every 10 ms, a
// phase of about two hours.
const probeMaxSamples = 1 << 20

// startTimerProbe starts n goroutines, each sleeping period after period,
// their phases spread over one period, until stop.
func startTimerProbe(n int, period time.Duration) *timerProbe {
	p := &timerProbe{stop: make(chan struct{})}
	for i := range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTimer(period * time.Duration(i) / time.Duration(n))
			defer t.Stop()
			due := time.Now().Add(period * time.Duration(i) / time.Duration(n))
			for {
				select {
				case <-p.stop:
					return
				case now := <-t.C:
					p.mu.Lock()
					if len(p.samples) < probeMaxSamples {
						p.samples = append(p.samples, timerSample{at: now, late: max(now.Sub(due), 0)})
					}
					p.mu.Unlock()
					due = time.Now().Add(period)
					t.Reset(period)
				}
			}
		}()
	}
	return p
}

// Stop ends the probe and returns its samples, in the order they came.
func (p *timerProbe) Stop() []timerSample {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.SortFunc(p.samples, func(a, b timerSample) int { return a.at.Compare(b.at) })
	return p.samples
}

// probeLate returns the quantile q of the samples' lateness, in ms.
func probeLate(s []timerSample, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	ls := make([]float64, len(s))
	for i, x := range s {
		ls[i] = ms(x.late)
	}
	slices.Sort(ls)
	return quantile(ls, q)
}

// lateIn reports whether a sample of s (sorted by time) that fired in
// [from, to] was at least late late.
func lateIn(s []timerSample, from, to time.Time, late time.Duration) bool {
	i, _ := slices.BinarySearchFunc(s, from, func(x timerSample, t time.Time) int { return x.at.Compare(t) })
	for ; i < len(s) && !s[i].at.After(to); i++ {
		if s[i].late >= late {
			return true
		}
	}
	return false
}
