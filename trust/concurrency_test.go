package trust

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// Readers see a consistent graph while writers change it; run with -race.
func TestConcurrentUse(t *testing.T) {
	n := nodes(t, 12)
	A := n[0]
	c := newClock()
	g := newGraph(t, A, graphOpts{clock: c, maxDepth: 3})
	for _, x := range n[1:4] {
		mustSet(t, g, x, LevelFull)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, x := range n {
					hops, score, ok := g.Path(x.id)
					if !ok {
						continue
					}
					if hops[0] != A.id || hops[len(hops)-1] != x.id || len(hops) > 4 || score != Score(len(hops)-1) {
						t.Errorf("inconsistent path %v %v", hops, score)
						return
					}
					g.Blocked(x.id) // may have changed since Path: no check
				}
				g.Edges()
				g.Vouches()
				g.Referrals()
				g.Limited(n[5].id)
				select {
				case <-g.Changed():
				case <-stop:
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Go(func() {
			for i := range 50 {
				x := n[4+(w*3+i)%8]
				switch i % 5 {
				case 0:
					_ = g.Set(x.id, LevelFull, "")
				case 1:
					_ = g.Set(x.id, LevelNone, "")
				case 2:
					_ = g.Remove(x.id)
				case 3:
					c.Advance(time.Minute)
					v, err := protocol.SignVouch(n[1+i%3].key, []string{n[4+i%8].id, n[4+(i+1)%8].id}, c.Now(), time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					// Another writer may have added a newer one.
					if err := g.AddVouch(v); err != nil && !errors.Is(err, ErrStale) {
						t.Error(err)
					}
				case 4:
					_, _ = g.Import([]byte(`{"version":1,"edges":[{"nodeId":"` + x.id + `","level":"limited"}]}`))
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
}

func BenchmarkPath(b *testing.B) {
	n := nodes(b, 40)
	c := newClock()
	g := newGraph(b, n[0], graphOpts{clock: c})
	for i, x := range n[1:10] {
		mustSet(b, g, x, LevelFull)
		vouch(b, g, c, x, n[10+i*3], n[11+i*3], n[12+i*3])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			g.Path(n[i%len(n)].id)
			i++
		}
	})
}
