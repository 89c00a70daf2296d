package fedsearch

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/ratelimit"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Tuning of the search server and of the fan-out.
const (
	// hopFactor and hopMargin shrink the budget at each hop: a node given
	// budget d gives its peers d*hopFactor - hopMargin, which leaves the
	// rest for the round trip back.
	hopFactor = 0.7
	hopMargin = 10 * time.Millisecond
	// minForward is the smallest budget worth forwarding with.
	minForward = 30 * time.Millisecond

	// seenSize and seenTTL bound the memory of request IDs.
	seenSize = 8192
	seenTTL  = 2 * time.Minute
	// peerRate and peerBurst are the token bucket of each peer: requests
	// per second, and how many may come at once.
	peerRate  = 10
	peerBurst = 20
	// maxPeers bounds the per-peer buckets kept.
	maxPeers = 4096
	// maxInFlight bounds the searches served at once, all peers together;
	// more are answered RATE_LIMITED.
	maxInFlight = 64
	// readTimeout bounds reading a request.
	readTimeout = 10 * time.Second
	// responseBudget keeps an encoded answer under the cap.
	responseBudget = protocol.MaxSearchResponseSize - 64<<10
)

// Local is what a search needs of this node: what it serves from its own
// store. Its methods must be safe for concurrent use.
type Local interface {
	// PublicResults answers a query from what this node serves (its own
	// public publications, as signed; a directory's every public lesson),
	// at most limit, best first by the store's ranking.
	PublicResults(ctx context.Context, pq store.ParsedQuery, f *protocol.SearchFilters, limit int) ([]protocol.SearchResult, error)
	// SearchStats are the BM25 statistics of that corpus for pq.
	SearchStats(ctx context.Context, pq store.ParsedQuery) (*protocol.SearchStats, error)
	// Revoked reports whether this node holds a revocation of key.
	Revoked(ctx context.Context, key string) bool
}

// TrustView is what a search needs of the web of trust (*trust.Graph). It
// must be safe for concurrent use.
type TrustView interface {
	// Path returns the trust path to nodeID, from this node (hops[0]) to
	// nodeID, and its score in (0, 1]; ok is false when there is none.
	Path(nodeID string) (hops []string, score float64, ok bool)
	// Blocked reports whether nodeID is at trust level none.
	Blocked(nodeID string) bool
}

// Config configures a Service.
type Config struct {
	// Host is the node's libp2p host; nil for an offline node, which
	// searches its own store only.
	Host host.Host
	// Self is the node's ID.
	Self peer.ID
	// Local is the node's own store, as served.
	Local Local
	// Trust is the node's web of trust.
	Trust TrustView
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them. Queries are
	// never logged.
	Logger *slog.Logger
	// Registerer receives the service's metrics (searches, fan-out,
	// truncations, requests served); nil registers none.
	Registerer prometheus.Registerer
}

// Service is the federated search of one node: the server of
// /mesh/search/1.1.0 and /mesh/search/1.0.0, and the requester. It is safe for concurrent use.
type Service struct {
	host  host.Host
	self  peer.ID
	selfS string // self.String(), which encodes anew on every call
	local Local
	trust TrustView
	now   func() time.Time
	log   *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ids     sync.Map     // peer.ID -> its String(), see idString
	idCount atomic.Int64 // entries stored in ids since it was last cleared

	limit    *ratelimit.Keyed
	inFlight chan struct{} // a semaphore of maxInFlight
	seen     seenIDs
	metrics  *metrics // nil: none
}

// New starts the service: with a host, it serves /mesh/search/1.1.0 and
// /mesh/search/1.0.0 until Close.
func New(cfg Config) *Service {
	s := &Service{
		host: cfg.Host, self: cfg.Self, selfS: cfg.Self.String(), local: cfg.Local, trust: cfg.Trust, now: cfg.Now, log: cfg.Logger,
		limit:    ratelimit.New(peerRate, peerBurst, maxPeers),
		inFlight: make(chan struct{}, maxInFlight),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		s.log.Warn("search metrics not registered", "err", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.host != nil {
		h := streamrpc.Serve(s.ctx, protocol.MaxSearchRequestSize, readTimeout, s.handle)
		s.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearchLate), h)
		s.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearch), h)
	}
	return s
}

// Close stops serving and waits for the searches the service started.
func (s *Service) Close() {
	if s.host != nil {
		s.host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolSearchLate))
		s.host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolSearch))
	}
	s.cancel()
	s.wg.Wait()
	s.metrics.unregister()
}

// idString is p.String(), remembered: base58-encoding peer IDs anew for
// every request served and every answer taken in was 2% of meshbench
// fedsearch's CPU. At most maxPeers are remembered at once.
func (s *Service) idString(p peer.ID) string {
	if v, ok := s.ids.Load(p); ok {
		return v.(string)
	}
	str := p.String()
	if s.idCount.Add(1) > maxPeers {
		s.ids.Clear()
		s.idCount.Store(1)
	}
	s.ids.Store(p, str)
	return str
}

// go runs f on a goroutine the service waits for at Close.
func (s *Service) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}
