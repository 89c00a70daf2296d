package watch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics.
type metrics struct {
	reg     prometheus.Registerer
	seen    prometheus.Counter
	matches prometheus.Counter
	watches prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	m := &metrics{
		reg: reg,
		seen: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "watch", Name: "lessons_total",
			Help: "Lessons matched against the standing queries (stored here or received).",
		}),
		matches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "watch", Name: "matches_total",
			Help: "Matches of standing queries found.",
		}),
		watches: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "mesh", Subsystem: "watch", Name: "queries",
			Help: "Standing queries kept.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.watches))
		}),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range []prometheus.Collector{m.seen, m.matches, m.watches} {
		if err := reg.Register(c); err != nil {
			for _, r := range []prometheus.Collector{m.seen, m.matches, m.watches}[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("watch: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m.seen)
		m.reg.Unregister(m.matches)
		m.reg.Unregister(m.watches)
	}
}
