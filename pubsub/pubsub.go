package pubsub

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/protocol"
)

// Checker is what the validators ask the node about a message. Its methods
// are called concurrently from many goroutines, on the path of every
// message: it must be safe for concurrent use and fast (an index lookup, not
// a scan). ctx carries the validation deadline (Params.ValidatorTimeout);
// an answer given after it expired is not used.
type Checker interface {
	// Revoked reports whether a tombstone exists for key (lessonId@nodeId).
	Revoked(ctx context.Context, key string) bool
	// HeldVersion returns the publishedAt of the version of key the node
	// holds, if it holds one.
	HeldVersion(ctx context.Context, key string) (publishedAt int64, ok bool)
	// Trusted reports whether announcements from the publisher nodeID may
	// be accepted.
	Trusted(nodeID string) bool
}

// Config configures New.
type Config struct {
	// Host is the libp2p host to run GossipSub on. Required. Its peer ID is
	// this node's ID: its own feed is protocol.FeedName(Host.ID()).
	Host host.Host
	// Params tunes GossipSub. The zero value means DefaultParams().
	Params Params
	// Checker answers the validators. Required.
	Checker Checker
	// Now is the clock for the timestamp window. Nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs (never message contents). Nil
	// discards them.
	Logger *slog.Logger
	// Registerer receives the service's Prometheus metrics
	// (mesh_pubsub_messages_total, mesh_pubsub_validation_duration_seconds).
	// Nil means no metrics. Close unregisters them.
	Registerer prometheus.Registerer
	// Refused, if set, is told of each valid publication ignored only
	// because the Checker does not trust its publisher, so that the node
	// can say so rather than drop it in silence. It runs in the validator:
	// it must be quick and must not block.
	Refused func(Refusal)
	// CatchUp, if set, is told of a peer this node may have missed
	// messages from, so that it syncs with it: the peer has just joined
	// this node's mesh for a topic that was empty (the node was outside
	// every mesh of the topic, so what passed meanwhile was not forwarded
	// here), or a message it sent was dropped here before it was
	// validated or delivered (a full queue). GossipSub's gossip does
	// not make up for either: a message that passed while a node was
	// outside every mesh, or that its own full queue dropped, is not
	// offered again. It runs in the router's event loop: it must be quick
	// and must not block.
	CatchUp func(peer.ID)
}

// Refusal is a valid publication ignored because its publisher is not
// trusted.
type Refusal struct {
	// Key is the lesson's key, Publisher its publisher's node ID, Topics
	// the topics it was published on.
	Key       string
	Publisher string
	Topics    []string
	// ReceivedFrom is the peer that forwarded it to this node.
	ReceivedFrom peer.ID
}

// Delivery is an announcement received from another node that passed
// validation on a topic the service follows.
type Delivery struct {
	// Announcement is the decoded, verified announcement.
	Announcement *protocol.Announcement
	// Topic is the GossipSub topic it arrived on: protocol.TopicName(t) or
	// protocol.FeedName(nodeID).
	Topic string
	// ReceivedFrom is the peer that forwarded it to this node.
	ReceivedFrom peer.ID
}

// deliveriesBuffer is the capacity of the Deliveries channel. When it is
// full, the readers wait, and GossipSub drops what overflows its own
// per-subscription buffer (the node catches up by sync).
const deliveriesBuffer = 256

// subscriptionBuffer is GossipSub's buffer per followed topic.
const subscriptionBuffer = 128

// scoreInspectPeriod is how often the router reports peer scores.
const scoreInspectPeriod = time.Second

// maxTopicsPerRPC bounds the subscriptions a peer may announce in one RPC
// (an RPC with more is dropped). A directory node may follow thousands of
// feeds; the router splits its subscription list to fit MaxMessageSize,
// about 2000 per frame, so this only stops a peer that sends more than a
// frame could hold.
const maxTopicsPerRPC = 4096

// Service runs GossipSub for one node: it follows MESH topics and feeds,
// validates every message, announces this node's publications and
// revocations, and hands what it receives to Deliveries. Its methods are
// safe for concurrent use.
type Service struct {
	host    host.Host
	self    peer.ID
	params  Params
	checker Checker
	refused func(Refusal)
	now     func() time.Time
	log     *slog.Logger
	stats   *stats
	tracer  *tracer

	ctx    context.Context // cancelled by Close; the router lives in it
	cancel context.CancelFunc
	ps     *gossipsub.PubSub
	wg     sync.WaitGroup // the readers
	out    chan Delivery
	recent *recentSet

	closeOnce sync.Once

	// scores is the router's latest view of peer scores (refreshed every
	// scoreInspectPeriod), for diagnostics and tests.
	scores atomic.Pointer[map[peer.ID]float64]

	// mu guards the fields below.
	mu     sync.Mutex
	closed bool
	topics map[string]*joined // by GossipSub topic name
}

// joined is a GossipSub topic the service has joined, to follow it (sub is
// set) or only to publish on it.
type joined struct {
	topic *gossipsub.Topic
	sub   *gossipsub.Subscription
	stop  chan struct{} // closed by unfollow: the reader stops waiting on Deliveries
	done  chan struct{} // closed when the reader of sub returns
}

// New starts GossipSub on cfg.Host. The service lives until Close.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil {
		return nil, errors.New("pubsub: Config.Host is required")
	}
	if cfg.Checker == nil {
		return nil, errors.New("pubsub: Config.Checker is required (the node's store and trust)")
	}
	params := cfg.Params
	if params.isZero() {
		params = DefaultParams()
	}
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if params.ValidatorTimeout == 0 {
		params.ValidatorTimeout = defaultValidatorTimeout
	}
	if params.ValidatorConcurrency == 0 {
		params.ValidatorConcurrency = defaultValidatorConcurrency
	}
	if params.ValidateQueueSize == 0 {
		params.ValidateQueueSize = defaultValidateQueueSize
	}
	if params.OutboundQueueSize == 0 {
		params.OutboundQueueSize = defaultOutboundQueueSize
	}
	st, err := newStats(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Service{
		host:    cfg.Host,
		self:    cfg.Host.ID(),
		params:  params,
		checker: cfg.Checker,
		refused: cfg.Refused,
		now:     cfg.Now,
		log:     cfg.Logger,
		stats:   st,
		tracer:  newTracer(st, cfg.CatchUp),
		out:     make(chan Delivery, deliveriesBuffer),
		recent:  newRecentSet(2 * time.Minute),
		topics:  map[string]*joined{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	// The router gets its own copies: it keeps the pointers and writes into
	// the Topics map.
	score := params.Score
	score.Topics = make(map[string]*gossipsub.TopicScoreParams, len(params.Score.Topics))
	for k, v := range params.Score.Topics {
		c := *v
		score.Topics[k] = &c
	}
	if score.AppSpecificScore == nil {
		score.AppSpecificScore = func(peer.ID) float64 { return 0 }
	}
	thresholds := params.Thresholds

	s.ctx, s.cancel = context.WithCancel(context.Background())
	ps, err := gossipsub.NewGossipSub(s.ctx, relayBlindHost{cfg.Host}, // see colocation.go
		gossipsub.WithGossipSubParams(params.Gossip),
		gossipsub.WithPeerScore(&score, &thresholds),
		gossipsub.WithFloodPublish(true),
		gossipsub.WithPeerExchange(false),
		// The payload signs itself (an Ed25519 lesson or revocation, of
		// its publisher's node key) and IDs are content hashes: a GossipSub
		// signature would be verified on every hop for nothing.
		gossipsub.WithMessageSignaturePolicy(gossipsub.StrictNoSign),
		gossipsub.WithMessageIdFn(messageID),
		gossipsub.WithMaxMessageSize(params.MaxMessageSize),
		gossipsub.WithValidateQueueSize(params.ValidateQueueSize),
		gossipsub.WithPeerOutboundQueueSize(params.OutboundQueueSize),
		gossipsub.WithDefaultValidator(gossipsub.ValidatorEx(s.validator),
			gossipsub.WithValidatorTimeout(params.ValidatorTimeout),
			gossipsub.WithValidatorConcurrency(params.ValidatorConcurrency)),
		gossipsub.WithSubscriptionFilter(gossipsub.WrapLimitSubscriptionFilter(
			gossipsub.NewRegexpSubscriptionFilter(topicRx), maxTopicsPerRPC)),
		gossipsub.WithRawTracer(s.tracer),
		gossipsub.WithPeerScoreInspect(gossipsub.PeerScoreInspectFn(func(m map[peer.ID]float64) {
			s.scores.Store(&m)
		}), scoreInspectPeriod),
		gossipsub.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		s.cancel()
		st.unregister()
		return nil, fmt.Errorf("pubsub: start gossipsub: %w", err)
	}
	s.ps = ps
	return s, nil
}

// topicRx matches the GossipSub topics a MESH node tracks peers on.
var topicRx = regexp.MustCompile(`^` + regexp.QuoteMeta(protocol.TopicRoot) + `(topic|feed)/[A-Za-z0-9_.-]{1,128}$`)

// messageID identifies a message by its topic and content, not by its
// author and sequence number: the same announcement forwarded, or
// re-announced, by several peers is one message. The topic is part of the
// ID because GossipSub's seen-cache is global: the same bytes on a feed and
// on a MESH topic are two messages, each for its own subscribers.
func messageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

// score returns the router's latest score for p, and whether it has one.
func (s *Service) score(p peer.ID) (float64, bool) {
	m := s.scores.Load()
	if m == nil {
		return 0, false
	}
	v, ok := (*m)[p]
	return v, ok
}

// count records a validation outcome.
func (s *Service) count(v verdict, d time.Duration) { s.stats.count(v, d) }

// Follow subscribes to the MESH topic (say "rust"): GossipSub topic
// protocol.TopicName(topic). Following a topic already followed does
// nothing.
func (s *Service) Follow(topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	return s.follow(protocol.TopicName(topic))
}

// FollowFeed subscribes to the feed of the publisher nodeID:
// protocol.FeedName(nodeID).
func (s *Service) FollowFeed(nodeID string) error {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return fmt.Errorf("%w: feed %q: %v", ErrTopic, nodeID, err)
	}
	return s.follow(protocol.FeedName(nodeID))
}

// Unfollow unsubscribes from the MESH topic. Unfollowing a topic not
// followed does nothing.
func (s *Service) Unfollow(topic string) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	return s.unfollow(protocol.TopicName(topic))
}

// UnfollowFeed unsubscribes from the feed of nodeID.
func (s *Service) UnfollowFeed(nodeID string) error {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return fmt.Errorf("%w: feed %q: %v", ErrTopic, nodeID, err)
	}
	return s.unfollow(protocol.FeedName(nodeID))
}

// Following returns the MESH topics and the feeds (node IDs) followed,
// sorted.
func (s *Service) Following() (topics, feeds []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, j := range s.topics {
		if j.sub == nil {
			continue
		}
		switch kind, n := parseTopic(name); kind {
		case kindTopic:
			topics = append(topics, n)
		case kindFeed:
			feeds = append(feeds, n)
		}
	}
	slices.Sort(topics)
	slices.Sort(feeds)
	return topics, feeds
}

// TopicPeers lists the peers known to subscribe to a followed MESH topic
// ("rust"); nil if the topic is not followed.
func (s *Service) TopicPeers(topic string) []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.topics[protocol.TopicName(topic)]
	if !ok || j.sub == nil {
		return nil
	}
	return j.topic.ListPeers()
}

// MeshPeers lists the peers in this node's GossipSub mesh for a followed
// MESH topic: the peers it forwards every message to, a subset of
// TopicPeers. GossipSub grafts and prunes them on every heartbeat; nil if
// the topic is not followed or the mesh is empty.
func (s *Service) MeshPeers(topic string) []peer.ID {
	name := protocol.TopicName(topic)
	s.mu.Lock()
	j, ok := s.topics[name]
	followed := ok && j.sub != nil
	s.mu.Unlock()
	if !followed { // the router leaves the mesh a little after Unfollow
		return nil
	}
	return s.tracer.meshPeers(name)
}

func checkTopic(topic string) error {
	if topic == "" || len(topic) > protocol.MaxTagLength || strings.Trim(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		return fmt.Errorf("%w: %q: use 1 to %d letters, digits, '_', '-' or '.'", ErrTopic, topic, protocol.MaxTagLength)
	}
	return nil
}

func (s *Service) follow(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	j, err := s.joinLocked(name)
	if err != nil {
		return err
	}
	if j.sub != nil {
		return nil
	}
	sub, err := j.topic.Subscribe(gossipsub.WithBufferSize(subscriptionBuffer))
	if err != nil {
		return fmt.Errorf("pubsub: subscribe %s: %w", name, err)
	}
	j.sub, j.stop, j.done = sub, make(chan struct{}), make(chan struct{})
	s.wg.Add(1)
	go s.read(sub, j.stop, j.done)
	s.log.Debug("pubsub following", "topic", name)
	return nil
}

func (s *Service) unfollow(name string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	j := s.topics[name]
	if j == nil || j.sub == nil {
		s.mu.Unlock()
		return nil
	}
	sub, stop, done := j.sub, j.stop, j.done
	j.sub, j.stop, j.done = nil, nil, nil
	s.mu.Unlock()
	// The topic handle stays joined (cheap, and needed to publish there);
	// only the subscription goes, and with it the mesh membership.
	sub.Cancel()
	close(stop)
	<-done
	s.log.Debug("pubsub unfollowed", "topic", name)
	return nil
}

// joinLocked returns the joined topic name, joining it if needed, with the
// MESH topic score parameters.
func (s *Service) joinLocked(name string) (*joined, error) {
	if j := s.topics[name]; j != nil {
		return j, nil
	}
	t, err := s.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("pubsub: join %s: %w", name, err)
	}
	tp := s.params.Topic
	if err := t.SetScoreParams(&tp); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("pubsub: score parameters for %s: %w", name, err)
	}
	j := &joined{topic: t}
	s.topics[name] = j
	return j, nil
}

// read hands the messages of one subscription to Deliveries until the
// subscription is cancelled or the service closes.
func (s *Service) read(sub *gossipsub.Subscription, stop, done chan struct{}) {
	defer s.wg.Done()
	defer close(done)
	for {
		msg, err := sub.Next(s.ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == s.self {
			continue // this node's own publication
		}
		a, ok := msg.ValidatorData.(*protocol.Announcement)
		if !ok {
			continue
		}
		// The same announcement on a feed and on a topic arrives twice;
		// the node gets it once.
		if !s.recent.add(sha256.Sum256(msg.GetData())) {
			continue
		}
		d := Delivery{Announcement: a, Topic: msg.GetTopic(), ReceivedFrom: msg.ReceivedFrom}
		select {
		case s.out <- d:
			s.stats.countDelivered()
		case <-stop:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// Announce publishes a signed announcement: a publication goes on its
// publisher's feed (this node's own feed, protocol.FeedName(Host.ID()),
// for its own lessons) and on each MESH topic in topics, which must be
// among the lesson's publication topics; a revocation goes on its
// publisher's feed and on each topic in topics (those the lesson was
// published on). Topics the service does not follow are joined to publish,
// not subscribed to.
//
// Announce refuses, before anything is sent, an announcement that other
// nodes would reject (ErrAnnouncement), a lesson that is not public
// (ErrNotPublic) and a lesson whose key carries a tombstone (ErrRevoked).
// The announcement is sent even when no peer is connected yet.
func (s *Service) Announce(ctx context.Context, a *protocol.Announcement, topics []string) error {
	if a == nil {
		return fmt.Errorf("%w: nil", ErrAnnouncement)
	}
	data, err := a.Encode()
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrAnnouncement, err)
	}
	var publisher, key string
	var pub *protocol.Publication
	switch {
	case a.Type == protocol.MsgPublication && a.SignedLesson != nil && a.EncryptedLesson == nil && a.Revocation == nil:
		publisher, key, pub = a.SignedLesson.Signature.NodeID, a.SignedLesson.Key(), &a.SignedLesson.Publication
	case a.Type == protocol.MsgPublication && a.EncryptedLesson != nil && a.SignedLesson == nil && a.Revocation == nil:
		publisher, key, pub = a.EncryptedLesson.Signature.NodeID, a.EncryptedLesson.Key(), &a.EncryptedLesson.Publication
	case a.Type == protocol.MsgRevocation && a.Revocation != nil && a.SignedLesson == nil && a.EncryptedLesson == nil:
		publisher = a.Revocation.NodeID
	default:
		return fmt.Errorf("%w: want a publication with a signed or an encrypted lesson, or a revocation, one only", ErrAnnouncement)
	}
	if pub != nil {
		if pub.Visibility != protocol.VisibilityPublic {
			return fmt.Errorf("%w: lesson %s is %s", ErrNotPublic, key, pub.Visibility)
		}
		for _, t := range topics {
			if !hasTopic(pub.Topics, strings.ToLower(t)) {
				return fmt.Errorf("%w: lesson %s is not published on topic %q", ErrAnnouncement, key, t)
			}
		}
	}
	names := []string{protocol.FeedName(publisher)}
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return err
		}
		if n := protocol.TopicName(t); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	// What every receiver checks first, checked here for a clear error.
	for _, n := range names {
		if _, v := s.check(ctx, n, data, true); v.result != gossipsub.ValidationAccept {
			return fmt.Errorf("%w: %s", ErrAnnouncement, v.reason)
		}
	}
	if key != "" && s.checker.Revoked(ctx, key) {
		return fmt.Errorf("%w: %s", ErrRevoked, key)
	}

	var errs []error
	for _, n := range names {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		j, err := s.joinLocked(n)
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := j.topic.Publish(ctx, data); err != nil {
			errs = append(errs, fmt.Errorf("pubsub: publish on %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Deliveries returns the announcements received from other nodes that
// passed validation on the topics and feeds the service follows, each once
// (the same announcement on a feed and a topic is delivered once). The
// channel is buffered and closed by Close. A consumer that falls behind
// loses messages, which the node recovers by sync.
func (s *Service) Deliveries() <-chan Delivery { return s.out }

// Stats returns the validation counters.
func (s *Service) Stats() Stats { return s.stats.snapshot() }

// Close stops GossipSub, waits for the service's goroutines, closes
// Deliveries and unregisters the metrics. It does not close the host. A
// second call returns ErrClosed. (GossipSub's own goroutines stop with the
// context Close cancels; the library gives no way to wait for them.)
func (s *Service) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() {
		err = nil
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel() // stops the router and every reader
		s.wg.Wait()
		// The router does not remove its stream handlers on shutdown; a
		// closed service must not keep accepting GossipSub streams.
		for _, id := range gossipsub.GossipSubDefaultProtocols {
			s.host.RemoveStreamHandler(id)
		}
		close(s.out)
		s.stats.unregister()
	})
	return err
}

// recentSet remembers hashes for between ttl and 2×ttl, in two
// generations, so its size is bounded by what arrives in 2×ttl.
type recentSet struct {
	ttl time.Duration

	mu       sync.Mutex
	cur, old map[[32]byte]struct{}
	rotated  time.Time
}

func newRecentSet(ttl time.Duration) *recentSet {
	return &recentSet{ttl: ttl, cur: map[[32]byte]struct{}{}, old: map[[32]byte]struct{}{}, rotated: time.Now()}
}

// add records h and reports whether it was new.
func (r *recentSet) add(h [32]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.rotated) > r.ttl {
		r.old, r.cur, r.rotated = r.cur, map[[32]byte]struct{}{}, time.Now()
	}
	if _, ok := r.cur[h]; ok {
		return false
	}
	if _, ok := r.old[h]; ok {
		return false
	}
	r.cur[h] = struct{}{}
	return true
}
