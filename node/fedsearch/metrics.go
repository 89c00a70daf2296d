package fedsearch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/protocol"
)

// metrics are the service's Prometheus metrics; every method is a no-op
// on a nil *metrics.
type metrics struct {
	reg        prometheus.Registerer
	searches   *prometheus.CounterVec
	fanout     prometheus.Histogram
	truncated  prometheus.Counter
	duration   prometheus.Histogram
	served     *prometheus.CounterVec
	late       prometheus.Counter
	collectors []prometheus.Collector
}

// newMetrics registers the service's metrics with reg; nil reg (or a
// registration that fails) gives none.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		reg: reg,
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "searches_total",
			Help: "Federated searches this node started, by result (ok, error).",
		}, []string{"result"}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "fanout_peers",
			Help:    "Peers a federated search of this node's was sent to.",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64},
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "truncated_total",
			Help: "Federated searches of this node's answered partially (a peer late, or truncated itself).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "duration_seconds",
			Help:    "Time a federated search of this node's took, from start to ranked answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10},
		}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "served_total",
			Help: "Search requests from other nodes this node answered, by result (ok, or the error code).",
		}, []string{"result"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "fedsearch", Name: "late_frames_total",
			Help: "Answer frames this node sent after a search answer's first, passing on what its peers answered after its deadline.",
		}),
	}
	m.collectors = []prometheus.Collector{m.searches, m.fanout, m.truncated, m.duration, m.served, m.late}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// search records one search this node started.
func (m *metrics) search(peers int, truncated bool, d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.searches.WithLabelValues("error").Inc()
		return
	}
	m.searches.WithLabelValues("ok").Inc()
	m.fanout.Observe(float64(peers))
	m.duration.Observe(d.Seconds())
	if truncated {
		m.truncated.Inc()
	}
}

// serve records one request answered.
func (m *metrics) serve(err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = string(protocol.CodeOf(err))
	}
	m.served.WithLabelValues(result).Inc()
}

// lateFrame records one answer frame sent after the first.
func (m *metrics) lateFrame() {
	if m == nil {
		return
	}
	m.late.Inc()
}
