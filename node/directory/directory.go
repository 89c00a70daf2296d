package directory

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/internal/ratelimit"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Config configures the directory role and the public, signed,
// read-only HTTP API. Its JSON form is the "directory" object of the repo's
// config.json.
type Config struct {
	// Enabled makes the node a directory: it follows Topics, accepts and
	// indexes every verified public lesson of any publisher that is not
	// blocked (a directory indexes publishers it does not trust itself;
	// its users verify and apply their own trust), takes registrations
	// over /mesh/directory/1.0.0, and answers /mesh/search/1.0.0 and the
	// public API from every public lesson it holds.
	Enabled bool `json:"enabled,omitempty"`
	// Topics are the MESH topics a directory follows and indexes; its
	// policy states them.
	Topics []string `json:"topics,omitempty"`
	// RetentionDays: lessons published longer ago are not served. 0 means
	// until they are revoked or expire.
	RetentionDays int `json:"retentionDays,omitempty"`
	// Contact is free text in the policy: who runs the directory.
	Contact string `json:"contact,omitempty"`

	// PublicAPI is the listen address of the public, read-only HTTP API
	// ("0.0.0.0:8080", "127.0.0.1:0"). Empty means none. It may bind any
	// interface: it serves public lessons only, and signs every answer.
	PublicAPI string `json:"publicApi,omitempty"`
	// PublicURL is the public API's base URL as others reach it
	// ("https://dir.example.org"), stated in the policy. Empty means the
	// listen address.
	PublicURL string `json:"publicUrl,omitempty"`
	// RateLimit is the public API's requests per second per client
	// address; 0 means DefaultPublicRate.
	RateLimit float64 `json:"rateLimit,omitempty"`
	// RateBurst is how many requests a client may send at once; 0 means
	// twice RateLimit, at least 1.
	RateBurst int `json:"rateBurst,omitempty"`

	// Directories are directories to register with (multiaddrs with
	// /p2p/, node IDs, or public API URLs), on top of those added with
	// DirectoryAdd, which persist in the repo.
	Directories []string `json:"directories,omitempty"`
	// RegisterInterval is how often the node registers again with its
	// directories (registration is a heartbeat). 0 means 30 minutes.
	RegisterInterval time.Duration `json:"-"`
}

// Directory tuning.
const (
	// defaultRegisterInterval is Config.RegisterInterval's default.
	defaultRegisterInterval = 30 * time.Minute
	// registerTimeout bounds one registration.
	registerTimeout = 20 * time.Second
	// maxRegistrants bounds the nodes a directory keeps registered.
	maxRegistrants = 10000
	// maxDirectories bounds the directories a node registers with.
	maxDirectories = 64
	// registerRate and registerBurst are each peer's registrations per
	// second and how many may come at once.
	registerRate  = 0.1
	registerBurst = 3

	// registrantTTL is how long a registration lasts: three times the
	// interval at which nodes register again (defaultRegisterInterval).
	// A node that has not registered again by then is forgotten, so the
	// maxRegistrants slots cannot be filled for good with peer IDs that
	// cost nothing to make.
	registrantTTL = 3 * defaultRegisterInterval
	// pruneRegistrantsEvery is how often a directory forgets the
	// registrations that expired (it also does on every new registration
	// that finds the directory full).
	pruneRegistrantsEvery = 5 * time.Minute
	// maxRegistrantSyncs bounds the syncs from registrants running at
	// once; a registration past it is recorded and its feed followed, but
	// its sync is skipped (its next registration syncs).
	maxRegistrantSyncs = 8

	directoriesMeta = "directory/list"
	// registrantsMeta is the former single blob of every registration,
	// read once and migrated to one key per registrant.
	registrantsMeta = "directory/registrants"
	// registrantPrefix + node ID holds one registrant.
	registrantPrefix = "directory/registrant/"
)

// Meta is the node's store of small state (store.Store's meta keys). It
// must be safe for concurrent use.
type Meta interface {
	GetMeta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
	ListMeta(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// Feeds follows and unfollows publishers' feeds (pubsub.Service).
type Feeds interface {
	FollowFeed(nodeID string) error
	UnfollowFeed(nodeID string) error
}

// Local is what the public API serves from the node's store: its serving
// policy decides what is public and for how long. It must be safe for
// concurrent use.
type Local interface {
	// PublicSearch answers a search from what the node serves, at most
	// limit results, best first, and whether more match.
	PublicSearch(ctx context.Context, pq store.ParsedQuery, f *protocol.SearchFilters, limit int) ([]protocol.SearchResult, bool, error)
	// Fetchable is what the node hands out for a lesson key: a
	// revocation, else a publication that is public or unlisted, else an
	// error wrapping protocol.ErrUnknownLesson.
	Fetchable(ctx context.Context, key string) (*protocol.SignedLesson, *protocol.Revocation, error)
	// FetchableEncrypted is what the node hands out for a lesson key
	// published encrypted: its EncryptedLesson (ciphertext anyone may
	// hold), public or unlisted, else an error wrapping
	// protocol.ErrUnknownLesson.
	FetchableEncrypted(ctx context.Context, key string) (*protocol.EncryptedLesson, error)
	// Revoked reports whether the node holds a revocation of key.
	Revoked(ctx context.Context, key string) bool
	// RetentionCutoff is the oldest publishedAt the node serves, Unix ms;
	// 0 for any.
	RetentionCutoff() int64
}

// Trust is what directories ask of the web of trust. It must be safe for
// concurrent use.
type Trust interface {
	Path(nodeID string) (hops []string, score float64, ok bool)
	Blocked(nodeID string) bool
}

// KeyServer answers the seed's GET /mesh/v1/keys/{keyId} (the node's key
// subsystem): header reads the request's headers. It must be safe for
// concurrent use.
type KeyServer interface {
	ServeKeyHTTP(ctx context.Context, keyID string, header func(string) string) *protocol.KeyResponse
}

// Lookup is the node's DHT lookups, for the public API's nodes answers.
type Lookup interface {
	TopicNodes(ctx context.Context, topic string, limit int) ([]api.NodeInfo, error)
	NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error)
}

// Deps are what the directory service needs of the rest of the node.
type Deps struct {
	// Self is the node's ID, Key its Ed25519 key (it signs every public
	// API answer).
	Self peer.ID
	Key  ed25519.PrivateKey
	// Host is the node's libp2p host; nil for an offline node, which only
	// keeps its list of directories.
	Host  host.Host
	Meta  Meta
	Feeds Feeds
	Local Local
	Trust Trust
	// Keys serves lesson keys on the public API; nil for none.
	Keys KeyServer
	// Lookup is the DHT; nil for none.
	Lookup Lookup
	// Following lists the followed topics and feeds.
	Following func(ctx context.Context) (topics, feeds []string, err error)
	// SyncPublisher pulls every public lesson and revocation of publisher
	// p from p itself (a registrant).
	SyncPublisher func(ctx context.Context, p peer.ID) error
	// SearchNetwork is the node's federated search, merged in when a
	// directory search asks for the peers too; nil for none.
	SearchNetwork func(ctx context.Context, req api.FedSearchRequest) (*api.FedSearchResponse, error)
	// Identity is the node's signed identity document.
	Identity func() (*protocol.Identity, error)
	// Addrs are the node's addresses, each with /p2p/.
	Addrs func() []ma.Multiaddr
	// Version is the node software's version, in health answers.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them. Queries are
	// never logged.
	Logger *slog.Logger
}

// Service is a node's directory side: the directory role (registrations
// over /mesh/directory/1.0.0) when enabled, the public HTTP API when
// configured, the node's own registrations with its directories, and the
// client-side search of several directories. It is safe for concurrent
// use.
type Service struct {
	cfg  Config
	deps Deps
	self peer.ID
	host host.Host
	log  *slog.Logger
	now  func() time.Time

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	regLimit *ratelimit.Keyed // registrations per peer
	regSyncs chan struct{}    // registrant syncs running
	// policyTopicsCapped is set once the policy's topics were capped.
	policyTopicsCapped atomic.Bool

	mu          sync.Mutex            // guards registrants and the directory list in Meta
	registrants map[string]registrant // node ID -> its registration

	public    *http.Server
	publicURL string
	publicAPI *publicAPI
}

// New returns a directory service, not started yet.
func New(cfg Config, deps Deps) *Service {
	s := &Service{cfg: cfg, deps: deps, self: deps.Self, host: deps.Host, log: deps.Logger, now: deps.Now,
		registrants: map[string]registrant{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.deps.Addrs == nil {
		s.deps.Addrs = func() []ma.Multiaddr { return nil }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.publicAPI = newPublicAPI(s)
	return s
}

// Start runs the directory role (if enabled), the public API (if
// configured) and the registrations with the listed directories. It runs
// after the host, federation, trust and peers are up; ctx bounds the
// start-up only.
func (s *Service) Start(ctx context.Context) error {
	if err := s.mergeConfigDirectories(ctx); err != nil {
		return err
	}
	if s.host == nil {
		return nil
	}
	if s.cfg.Enabled {
		if err := s.loadRegistrants(ctx); err != nil {
			return err
		}
		s.regLimit = ratelimit.New(registerRate, registerBurst, maxRegistrants)
		s.regSyncs = make(chan struct{}, maxRegistrantSyncs)
		s.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolDirectory),
			streamrpc.Serve(s.ctx, protocol.MaxDirectoryRequestSize, streamrpc.Timeout, s.handleRegister))
		s.wg.Add(1)
		go s.pruneRegistrantsLoop()
	}
	if s.cfg.PublicAPI != "" {
		if err := s.startPublicAPI(s.cfg.PublicAPI); err != nil {
			return err
		}
	}
	s.wg.Add(1)
	go s.registerLoop()
	return nil
}

// Close stops the public API, the registrations and the directory role,
// and waits for them. It runs before the host closes.
func (s *Service) Close() error {
	var err error
	if s.host != nil && s.cfg.Enabled {
		s.host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolDirectory))
	}
	if s.public != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.public.Shutdown(ctx)
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// PublicURL is the base URL of the public API as it listens
// ("http://127.0.0.1:8080"), or "" if it serves none.
func (s *Service) PublicURL() string { return s.publicURL }

// Policy is what the node states about itself on the public API and to
// the nodes that register with it.
func (s *Service) Policy() *protocol.DirectoryPolicy {
	p := &protocol.DirectoryPolicy{
		NodeID: s.self.String(), Role: protocol.PolicyNode, Topics: []string{}, Addrs: []string{},
		RetentionDays: max(s.cfg.RetentionDays, 0), Contact: s.cfg.Contact,
		PublicURL: s.cfg.PublicURL,
	}
	if p.PublicURL == "" {
		p.PublicURL = s.publicURL
	}
	if s.cfg.Enabled {
		p.Role = protocol.PolicyDirectory
		p.Registration = protocol.ProtocolDirectory
		p.Topics = lowerUnique(s.cfg.Topics)
		capped, dropped := protocol.CapTopics(p.Topics)
		if dropped != "" && s.policyTopicsCapped.CompareAndSwap(false, true) {
			s.log.Warn("more topics than a directory policy can hold; it lists the first ones in sorted order",
				"topics", len(p.Topics), "listed", len(capped), "first_left_out", dropped)
		}
		p.Topics = capped
	}
	for _, a := range s.deps.Addrs() {
		if len(p.Addrs) < 32 {
			p.Addrs = append(p.Addrs, a.String())
		}
	}
	return p
}

// lowerUnique is topics in lower case, each once, in their order.
func lowerUnique(topics []string) []string {
	out := []string{}
	for _, t := range topics {
		if t = strings.ToLower(t); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func truncateStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// errOffline is what an offline node answers for what needs the network.
var errOffline = fmt.Errorf("directory: %w", api.ErrOffline)
