package keys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/ratelimit"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// Defaults and tuning.
const (
	// DefaultKeyTTL is Config.KeyTTL's default: how long a reader may keep
	// a key, and what it decrypted, before asking again.
	DefaultKeyTTL = time.Hour
	// DefaultRelearnWait is Config.RelearnWait's default.
	DefaultRelearnWait = 10 * time.Second
	// callTimeout bounds one exchange with one node (a key request, a
	// notice).
	callTimeout = 10 * time.Second
	// dialTimeout bounds connecting to a node that is not connected.
	dialTimeout = 5 * time.Second
	// peerRate and peerBurst are each peer's key requests per second and
	// how many may come at once; maxPeers bounds the buckets kept.
	peerRate  = 20
	peerBurst = 40
	maxPeers  = 4096
	// maxEscrowAsk bounds the connected peers asked at once for a share
	// when no policy says who holds them.
	maxEscrowAsk = 32
)

// Store is the key material at rest and what the service reads of the
// rest of the store (*store.Store). It must be safe for concurrent use.
type Store interface {
	PutLessonKey(ctx context.Context, k *store.LessonKey) error
	LessonKey(ctx context.Context, keyID string) (*store.LessonKey, error)
	LessonKeys(ctx context.Context) ([]*store.LessonKey, error)
	RevokeKeys(ctx context.Context, keys ...store.RevokedKey) error
	KeyRevoked(ctx context.Context, keyID string) (*store.RevokedKey, error)
	RevokedKeys(ctx context.Context) ([]store.RevokedKey, error)
	PutEscrowShare(ctx context.Context, p *protocol.KeyPolicy) error
	EscrowShare(ctx context.Context, keyID string) (*protocol.KeyPolicy, error)
	EscrowShares(ctx context.Context) ([]*protocol.KeyPolicy, error)
	DeleteEscrowShare(ctx context.Context, keyID string) error
	// Tombstone is the revocation held of a lesson key (lessonId@nodeId);
	// an error wrapping store.ErrNotFound if none.
	Tombstone(ctx context.Context, key string) (*protocol.Revocation, error)
	// The node's small state: notices waiting for their node.
	GetMeta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
	ListMeta(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// Trust is what the service asks of the web of trust (*trust.Graph). It
// must be safe for concurrent use.
type Trust interface {
	// Path returns the trust path to nodeID and its score.
	Path(nodeID string) (hops []string, score float64, ok bool)
	Blocked(nodeID string) bool
	// Level is the direct edge to nodeID, if any.
	Level(nodeID string) (trust.Level, bool)
	// Vouches are the unexpired vouches held: an escrow node judges
	// trusted access by its author's.
	Vouches() []*protocol.Vouch
	// MaxDepth is the longest trust path followed.
	MaxDepth() int
}

// Config tunes the service. The zero value is what a node wants.
type Config struct {
	// KeyTTL is how long a reader may keep a key and its plaintext before
	// asking again (the expiresAt of a key answer, never past the policy's
	// end). 0 means DefaultKeyTTL.
	KeyTTL time.Duration `json:"-"`
	// RelearnWait is how long a key request waits, after a start, for the
	// node to re-learn its revocations from a peer before it is answered
	// UNAVAILABLE. 0 means DefaultRelearnWait.
	RelearnWait time.Duration `json:"-"`
	// MinRequestSize pads the key requests this node sends with trailing
	// whitespace to at least this many bytes (at most
	// protocol.MaxKeyRequestSize). 0 means no padding. Benchmarks on
	// mocknet set it: mocknet delivers a write of under 256 bytes that is
	// followed by a close without the link's latency.
	MinRequestSize int `json:"-"`
}

// Deps are what the service needs of the rest of the node.
type Deps struct {
	// Host is the node's libp2p host; nil for an offline node, which keeps
	// and lists its keys but serves and fetches none.
	Host host.Host
	// Self is the node's ID, Key its Ed25519 key (it signs policies and
	// opens what is sealed to it).
	Self  peer.ID
	Key   ed25519.PrivateKey
	Store Store
	Trust Trust
	// Connect connects to a node that is not connected (a DHT lookup);
	// nil means Host.Connect with the peerstore's addresses.
	Connect func(ctx context.Context, p peer.ID) error
	// Revoke applies a verified revocation as if it had come by gossip:
	// the node keeps the tombstone, deletes the lesson, and calls
	// OnRevocation. A revocation already held is not an error.
	Revoke func(ctx context.Context, rev *protocol.Revocation) error
	// FollowFeed makes the node follow a publisher's feed (an escrow node
	// follows the authors whose shares it holds); nil for none.
	FollowFeed func(ctx context.Context, nodeID string) error
	// Relearn asks the connected peers for the revocations they hold of
	// the lessons of RelearnPublishers and applies them; nil if at least
	// one peer answered. The first key request after a start waits for
	// it (see Relearned). Nil means nothing to re-learn (an offline node).
	Relearn func(ctx context.Context, publishers []string) error
	// Admit, if set, is asked after a policy of this node admitted a
	// requester: an error refuses the key (it should match
	// protocol.ErrAccessDenied), and a non-zero until (Unix ms) caps how
	// long the requester may keep it. The sensor subsystem ends grants
	// with it (mesh access grant --until). Nil admits whom the policy does.
	Admit func(ctx context.Context, p *protocol.KeyPolicy, requester string) (until int64, err error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them. Keys and
	// plaintext are never logged.
	Logger *slog.Logger
}

// Service is one node's key subsystem. It is safe for concurrent use.
type Service struct {
	cfg   Config
	deps  Deps
	self  string
	host  host.Host
	store Store
	trust Trust
	now   func() time.Time
	log   *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	limit *ratelimit.Keyed

	// ready is closed once the node has re-learned its revocations from its
	// peers after the start (or needs not to: an offline node).
	ready     chan struct{}
	readyOnce sync.Once
	// relearnMu makes the key requests that come before ready share one
	// re-learning.
	relearnMu sync.Mutex

	// ownMu serializes changes to this node's keys (new readers, policy
	// changes, revocations), which read, change and write a key record.
	ownMu sync.Mutex

	// cache is the reader's memory: keys fetched and what they decrypted.
	cache readerCache

	closeOnce sync.Once
}

// New makes the service and, with a host, serves /mesh/keys/1.0.0 and
// /mesh/keynotice/1.0.0 until Close.
func New(cfg Config, deps Deps) *Service {
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = DefaultKeyTTL
	}
	if cfg.RelearnWait <= 0 {
		cfg.RelearnWait = DefaultRelearnWait
	}
	s := &Service{cfg: cfg, deps: deps, self: deps.Self.String(), host: deps.Host, store: deps.Store, trust: deps.Trust,
		now: deps.Now, log: deps.Logger, limit: ratelimit.New(peerRate, peerBurst, maxPeers), ready: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cache.init(s)
	if s.host == nil || deps.Relearn == nil {
		s.Relearned()
	}
	if s.host == nil {
		return s
	}
	s.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolKeys),
		streamrpc.Serve(s.ctx, protocol.MaxKeyRequestSize, streamrpc.Timeout, s.handleKey))
	s.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolKeyNotice),
		streamrpc.Serve(s.ctx, protocol.MaxKeyNoticeSize, streamrpc.Timeout, s.handleNotice))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.cache.sweepLoop(s.ctx)
	}()
	return s
}

// Close stops serving, waits for the service's goroutines, and drops every
// key and plaintext held in memory. A second Close returns an error
// wrapping net.ErrClosed.
func (s *Service) Close() error {
	err := fmt.Errorf("keys: %w", net.ErrClosed)
	s.closeOnce.Do(func() {
		err = nil
		if s.host != nil {
			s.host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolKeys))
			s.host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolKeyNotice))
		}
		s.cancel()
		s.wg.Wait()
		s.cache.dropAll()
	})
	return err
}

// Relearned says the node has re-learned the revocations its peers hold of
// its lessons, and of the lessons it holds escrow shares of, since it
// started: from now on it serves keys and shares. The first key request
// after a start runs Deps.Relearn over the connected peers, and calls it
// when one of them answered: a node restored from an old backup hears of
// what it revoked since before it hands out a key.
func (s *Service) Relearned() { s.readyOnce.Do(func() { close(s.ready) }) }

// IsRelearned reports whether Relearned was called.
func (s *Service) IsRelearned() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// RelearnPublishers are the publishers whose revocations the node must
// re-learn after a start: itself and the authors of the escrow shares it
// holds.
func (s *Service) RelearnPublishers(ctx context.Context) []string {
	out := []string{s.self}
	shares, err := s.store.EscrowShares(ctx)
	if err != nil {
		return out
	}
	for _, p := range shares {
		if !contains(out, p.NodeID) {
			out = append(out, p.NodeID)
		}
	}
	return out
}

// waitReady re-learns the node's revocations from its peers, once after a
// start (Deps.Relearn, at most Config.RelearnWait): until one peer has
// answered, nothing is served.
func (s *Service) waitReady(ctx context.Context) error {
	if s.IsRelearned() {
		return nil
	}
	s.relearnMu.Lock()
	defer s.relearnMu.Unlock()
	if s.IsRelearned() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RelearnWait)
	defer cancel()
	err := s.deps.Relearn(rctx, s.RelearnPublishers(rctx))
	if err == nil {
		s.Relearned()
		return nil
	}
	s.log.Debug("keys: relearn", "err", err)
	return fmt.Errorf("%w: the node is re-learning its revocations from its peers since it started (%v); ask again shortly", protocol.ErrUnavailable, err)
}

// goTracked runs f on a goroutine Close waits for.
func (s *Service) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// connect makes sure p is connected, dialling it if needed.
func (s *Service) connect(ctx context.Context, p peer.ID) error {
	if s.host == nil {
		return fmt.Errorf("%w: the node is offline", protocol.ErrUnavailable)
	}
	if len(s.host.Network().ConnsToPeer(p)) > 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var err error
	if s.deps.Connect != nil {
		err = s.deps.Connect(ctx, p)
	} else {
		err = s.host.Connect(ctx, peer.AddrInfo{ID: p})
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", protocol.ErrUnreachable, p, err)
	}
	return nil
}

// call sends one request to p on proto and returns the answer.
func (s *Service) call(ctx context.Context, p peer.ID, proto string, req []byte, max int) ([]byte, error) {
	if err := s.connect(ctx, p); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	b, err := streamrpc.Call(ctx, s.host, p, proto, req, max)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrUnreachable, p, err)
	}
	return b, nil
}

// trustScore is this node's trust score for nodeID: 0 for none or blocked.
func (s *Service) trustScore(nodeID string) float64 {
	if s.trust.Blocked(nodeID) {
		return 0
	}
	_, score, ok := s.trust.Path(nodeID)
	if !ok {
		return 0
	}
	return score
}

// scoreFrom is the trust score author has for nodeID as far as this node
// can tell from the vouches it holds: 1 if the author vouches for it, halved
// per further hop through vouches of nodes the author trusts, 0 for none.
// An escrow node judges trusted access by it.
func (s *Service) scoreFrom(author, nodeID string) float64 {
	if nodeID == author {
		return 1
	}
	if s.trust.Blocked(nodeID) {
		return 0
	}
	byVoucher := map[string][]string{}
	for _, v := range s.trust.Vouches() {
		byVoucher[v.NodeID] = v.Trusts
	}
	depth := max(s.trust.MaxDepth(), 1)
	seen := map[string]bool{author: true}
	frontier := []string{author}
	for hops := 1; hops <= depth && len(frontier) > 0; hops++ {
		var next []string
		for _, from := range frontier {
			for _, id := range byVoucher[from] {
				if seen[id] {
					continue
				}
				if id == nodeID {
					return trust.Score(hops)
				}
				seen[id] = true
				next = append(next, id)
			}
		}
		frontier = next
	}
	return 0
}

// admits checks p's admission of requester, with the trust score that
// applies: this node's own for its own keys, the author's as this node
// knows it for an escrow share.
func (s *Service) admits(p *protocol.KeyPolicy, requester string) error {
	if s.trust.Blocked(requester) {
		return fmt.Errorf("key %s: %w: %s is blocked here", p.KeyID, protocol.ErrAccessDenied, requester)
	}
	score := 0.0
	if p.Access == protocol.AccessTrusted {
		if p.NodeID == s.self {
			score = s.trustScore(requester)
		} else {
			score = s.scoreFrom(p.NodeID, requester)
		}
	}
	return p.Admits(requester, score, s.now())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isNotFound reports whether err means the store holds nothing.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// ErrNotEncrypted is wrapped by the errors of operations on a lesson that
// is not published encrypted. It wraps protocol.ErrInvalid.
var ErrNotEncrypted = fmt.Errorf("%w: the lesson is not published encrypted", protocol.ErrInvalid)
