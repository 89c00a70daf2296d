package pubsub

import (
	"fmt"
	"maps"
	"sync"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts validation outcomes of messages received from other peers
// (this node's own publications are not counted) since New.
type Stats struct {
	// Accepted counts messages that passed validation, on any topic.
	Accepted int
	// Rejected counts invalid messages by reason (the Reason... constants).
	Rejected map[string]int
	// Ignored counts valid but unwanted messages by reason.
	Ignored map[string]int
	// Delivered counts announcements handed to Deliveries.
	Delivered int
	// DroppedRPCs counts RPCs to peers dropped because the peer's
	// outbound queue was full (see Params.OutboundQueueSize).
	DroppedRPCs int
}

// stats holds the counters and, when a Registerer was given, their
// Prometheus twins.
type stats struct {
	reg      prometheus.Registerer
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram

	mu        sync.Mutex
	accepted  int
	rejected  map[string]int
	ignored   map[string]int
	delivered int
	dropped   int
}

func newStats(reg prometheus.Registerer) (*stats, error) {
	st := &stats{reg: reg, rejected: map[string]int{}, ignored: map[string]int{}}
	if reg == nil {
		return st, nil
	}
	st.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "mesh",
		Subsystem: "pubsub",
		Name:      "messages_total",
		Help:      "GossipSub messages received from other peers, by validation outcome (accepted, rejected, ignored) and reason.",
	}, []string{"outcome", "reason"})
	st.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "mesh",
		Subsystem: "pubsub",
		Name:      "validation_duration_seconds",
		Help:      "Time spent validating one GossipSub message received from another peer.",
		Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 2},
	})
	if err := reg.Register(st.outcomes); err != nil {
		return nil, fmt.Errorf("pubsub: register metrics: %w", err)
	}
	if err := reg.Register(st.duration); err != nil {
		reg.Unregister(st.outcomes)
		return nil, fmt.Errorf("pubsub: register metrics: %w", err)
	}
	return st, nil
}

func (st *stats) unregister() {
	if st.reg != nil {
		st.reg.Unregister(st.outcomes)
		st.reg.Unregister(st.duration)
	}
}

func (st *stats) count(v verdict, d time.Duration) {
	outcome := "accepted"
	st.mu.Lock()
	switch v.result {
	case gossipsub.ValidationAccept:
		st.accepted++
	case gossipsub.ValidationReject:
		outcome = "rejected"
		st.rejected[v.reason]++
	default:
		outcome = "ignored"
		st.ignored[v.reason]++
	}
	st.mu.Unlock()
	if st.outcomes != nil {
		st.outcomes.WithLabelValues(outcome, v.reason).Inc()
		if d > 0 { // 0: dropped before validation
			st.duration.Observe(d.Seconds())
		}
	}
}

func (st *stats) countDelivered() {
	st.mu.Lock()
	st.delivered++
	st.mu.Unlock()
}

func (st *stats) countDropped() {
	st.mu.Lock()
	st.dropped++
	st.mu.Unlock()
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return Stats{Accepted: st.accepted, Rejected: maps.Clone(st.rejected), Ignored: maps.Clone(st.ignored), Delivered: st.delivered, DroppedRPCs: st.dropped}
}
