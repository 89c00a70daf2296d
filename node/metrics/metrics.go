package metrics

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/store"
)

// State is what the metrics read of a node at scrape time.
type State interface {
	StoreStatus(ctx context.Context) (*store.Status, error)
	// RepoDir is the node's repo, "" for one in memory.
	RepoDir() string
	Following(ctx context.Context) (topics, feeds []string, err error)
	TrustPending(ctx context.Context) ([]api.PendingPublisher, error)
	// NetworkStatus is nil when the node has no network yet.
	NetworkStatus() *api.NetworkStatus
	DHTStatus(ctx context.Context) (*api.DHTStatus, error)
}

// Metrics are a node's own Prometheus metrics (docs/metrics.md): the
// store's operations and size, search latency, sync, and gauges read at
// scrape time from the DHT, the relays and the peers. Every method is a
// no-op on a nil *Metrics (no registerer).
type Metrics struct {
	reg        prometheus.Registerer
	ops        *prometheus.HistogramVec
	search     *prometheus.HistogramVec
	syncRuns   prometheus.Counter
	syncRecs   *prometheus.CounterVec
	collectors []prometheus.Collector
}

// New registers the metrics with reg, reading st at scrape time; nil for a
// nil reg.
func New(reg prometheus.Registerer, st State) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		reg: reg,
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mesh", Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Time of the store operations asked of the node (put, get, delete, list, search), by operation; its _count counts them.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		search: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mesh", Subsystem: "search", Name: "duration_seconds",
			Help:    "Search latency by kind: local (the node's store), network (federated search), directory (directories' public APIs).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
		}, []string{"kind"}),
		syncRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "sync", Name: "runs_total",
			Help: "Catch-up syncs with one peer run by this node.",
		}),
		syncRecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mesh", Subsystem: "sync", Name: "records_total",
			Help: "Records a sync brought, by kind: lesson and revocation (stored), invalid (failed verification), untrusted (refused).",
		}, []string{"kind"}),
	}
	m.collectors = []prometheus.Collector{m.ops, m.search, m.syncRuns, m.syncRecs, stateCollector{st}}
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

// Unregister removes the metrics from their registerer.
func (m *Metrics) Unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// Op times a store operation: defer m.Op("put")().
func (m *Metrics) Op(name string) func() {
	if m == nil {
		return func() {}
	}
	start := time.Now()
	return func() { m.ops.WithLabelValues(name).Observe(time.Since(start).Seconds()) }
}

// Searched times a search of a kind: defer m.Searched("network")().
func (m *Metrics) Searched(kind string) func() {
	if m == nil {
		return func() {}
	}
	start := time.Now()
	return func() { m.search.WithLabelValues(kind).Observe(time.Since(start).Seconds()) }
}

// Synced counts one sync with a peer, as far as it went.
func (m *Metrics) Synced(p *api.SyncProgress) {
	if m == nil {
		return
	}
	m.syncRuns.Inc()
	m.syncRecs.WithLabelValues("lesson").Add(float64(p.Lessons))
	m.syncRecs.WithLabelValues("revocation").Add(float64(p.Revocations))
	m.syncRecs.WithLabelValues("invalid").Add(float64(p.Invalid))
	m.syncRecs.WithLabelValues("untrusted").Add(float64(p.Untrusted))
}

// stateCollector reads the node's state at scrape time: store size,
// peers, DHT, relays, subscriptions and refused publishers. It is an
// unchecked collector (it describes nothing up front).
type stateCollector struct{ st State }

var (
	descRecords = prometheus.NewDesc("mesh_store_records", "Live records in the store, by origin: own (this node's) and remote (lessons received).", []string{"origin"}, nil)
	descTombs   = prometheus.NewDesc("mesh_store_tombstones", "Revocations kept as tombstones.", nil, nil)
	descDisk    = prometheus.NewDesc("mesh_store_disk_bytes", "Bytes the repo's datastore and index take on disk.", nil, nil)
	descPeers   = prometheus.NewDesc("mesh_peers", "Connected peers, by connection: direct or relayed.", []string{"connection"}, nil)
	descDHT     = prometheus.NewDesc("mesh_dht_routing_table_peers", "Peers in the DHT's routing table, by table: wan (all) or lan.", []string{"table"}, nil)
	descServing = prometheus.NewDesc("mesh_dht_server_mode", "1 if the DHT runs in server mode now, else 0.", nil, nil)
	descResv    = prometheus.NewDesc("mesh_relay_reservations", "Relays holding a reservation (a slot) for this node.", nil, nil)
	descSvcResv = prometheus.NewDesc("mesh_relay_service_reservations", "Reservations this node's relay service holds for others now.", nil, nil)
	descSvcCirc = prometheus.NewDesc("mesh_relay_service_circuits", "Relayed connections open through this node now.", nil, nil)
	descSvcTot  = prometheus.NewDesc("mesh_relay_service_circuits_total", "Relayed connections opened through this node since it started.", nil, nil)
	descSvcByte = prometheus.NewDesc("mesh_relay_service_bytes_total", "Bytes relayed by this node's relay service.", nil, nil)
	descHoles   = prometheus.NewDesc("mesh_holepunch_total", "Hole punches (DCUtR) this node took part in, by result.", []string{"result"}, nil)
	descFollow  = prometheus.NewDesc("mesh_following", "Subscriptions, by kind: topic or feed (a publisher's).", []string{"kind"}, nil)
	descPending = prometheus.NewDesc("mesh_trust_pending_publishers", "Publishers whose lessons were refused because this node does not trust them.", nil, nil)
)

func (stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.st
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if st, err := n.StoreStatus(ctx); err == nil {
		gauge(descRecords, float64(st.Total), "own")
		gauge(descRecords, float64(st.Remote), "remote")
		gauge(descTombs, float64(st.Tombstones))
	}
	if dir := n.RepoDir(); dir != "" {
		var size int64
		for _, sub := range []string{"datastore", "index"} {
			_ = filepath.WalkDir(filepath.Join(dir, sub), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						size += fi.Size()
					}
				}
				return nil
			})
		}
		gauge(descDisk, float64(size))
	}
	if topics, feeds, err := n.Following(ctx); err == nil {
		gauge(descFollow, float64(len(topics)), "topic")
		gauge(descFollow, float64(len(feeds)), "feed")
	}
	if pend, err := n.TrustPending(ctx); err == nil {
		gauge(descPending, float64(len(pend)))
	}
	if ns := n.NetworkStatus(); ns != nil {
		gauge(descPeers, float64(ns.Peers.Direct), "direct")
		gauge(descPeers, float64(ns.Peers.Relayed), "relayed")
		gauge(descResv, float64(len(ns.Reservations)))
		counter(descHoles, float64(ns.HolePunches.Succeeded), "succeeded")
		counter(descHoles, float64(ns.HolePunches.Failed), "failed")
		if rs := ns.RelayService; rs != nil {
			gauge(descSvcResv, float64(rs.Reservations))
			gauge(descSvcCirc, float64(rs.Circuits))
			counter(descSvcTot, float64(rs.CircuitsTotal))
			counter(descSvcByte, float64(rs.BytesRelayed))
		}
	}
	if ds, err := n.DHTStatus(ctx); err == nil && ds.Enabled {
		gauge(descDHT, float64(ds.RoutingTable), "wan")
		gauge(descDHT, float64(ds.LANRoutingTable), "lan")
		serving := 0.0
		if ds.Serving {
			serving = 1
		}
		gauge(descServing, serving)
	}
}
