package sensors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/ratelimit"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Defaults.
const (
	// DefaultTTL is how long a reading lives when its stream says nothing.
	DefaultTTL = 7 * 24 * time.Hour
	// DefaultMaxIndexed is Config.MaxIndexed's default.
	DefaultMaxIndexed = 20000
	// DefaultAnomalyWindow, DefaultAnomalyThreshold and
	// DefaultAnomalyMinSamples are a stream's anomaly settings when it
	// gives none.
	DefaultAnomalyWindow     = 60
	DefaultAnomalyThreshold  = 4.0
	DefaultAnomalyMinSamples = 10
	// MaxStreams caps the streams of one node.
	MaxStreams = 256
	// maxFuture is how far ahead of the clock a reading's time may be.
	maxFuture = time.Hour
	// maintainEvery is how often grants are ended and spent epochs retired.
	maintainEvery = time.Minute
	// defaultDeadline bounds a question to sources.
	defaultDeadline = 5 * time.Second
	// peerRate and peerBurst bound each peer's questions.
	peerRate, peerBurst, maxPeers = 10, 20, 4096
)

// Meta keys of the node's small state.
const (
	metaStream = "sensors/stream/"
	metaGrant  = "sensors/grant/"
	metaName   = "names/"
)

// TypeReading is the AMP record type of a reading.
const TypeReading = "reading"

// TagAnomaly is the tag of a reading marked anomalous.
const TagAnomaly = "anomaly"

// Store is what the service keeps and reads (*store.Store). It must be
// safe for concurrent use.
type Store interface {
	Put(ctx context.Context, rec *protocol.Lesson) (id string, created bool, err error)
	Get(ctx context.Context, id string) (*protocol.Lesson, error)
	List(ctx context.Context, o store.ListOptions) (*store.ListResult, error)
	EncryptedPublication(ctx context.Context, id string) (*protocol.EncryptedLesson, error)
	RemoteEncryptedOf(ctx context.Context, nodeID string, limit int, fn func(*protocol.EncryptedLesson) bool) error
	GetMeta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
	ListMeta(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// Keys is what the service asks of the key subsystem (*keys.Service): a
// stream's epoch keys are its lesson keys. It must be safe for concurrent
// use.
type Keys interface {
	NewEpoch(ctx context.Context, streamID string, opts api.PolicyOptions) (*protocol.KeyPolicy, error)
	EpochKey(ctx context.Context, keyID string) ([]byte, error)
	EncryptUnder(key []byte, keyID string, rec *protocol.Lesson, pub protocol.Publication) (*protocol.EncryptedLesson, error)
	SetPolicy(ctx context.Context, keyID string, opts api.PolicyOptions) (*api.KeyInfo, []api.NoticeStatus, error)
	RetireKeys(ctx context.Context, reason string, keyIDs ...string) error
}

// Config tunes the service. The zero value is what a node wants.
type Config struct {
	// MaxIndexed bounds the readings of one stream indexed in memory for
	// questions (the newest); 0 means DefaultMaxIndexed. Older readings
	// stay on disk until they expire but are not answered.
	MaxIndexed int
	// MinRequestSize pads the questions this node sends with trailing
	// whitespace to at least this many bytes (at most
	// protocol.MaxSensorQuerySize). 0 means no padding. Benchmarks on
	// mocknet set it: mocknet delivers a write of under 256 bytes that is
	// followed by a close without the link's latency.
	MinRequestSize int `json:"-"`
}

// Deps are what the service needs of the rest of the node.
type Deps struct {
	// Host is the node's libp2p host; nil for an offline node, which keeps
	// streams and readings but answers and asks no one.
	Host  host.Host
	Self  peer.ID
	Store Store
	Keys  Keys
	// Publish keeps a reading's encrypted publication durably and, if
	// announce, announces it (gossip on the node's feed).
	Publish func(ctx context.Context, el *protocol.EncryptedLesson, announce bool) error
	// Decrypt verifies an encrypted reading of another node and decrypts
	// it with its epoch key (from memory or the source's key server).
	Decrypt func(ctx context.Context, el *protocol.EncryptedLesson) (*protocol.Lesson, error)
	// Connect connects to a node that is not connected; nil means
	// Host.Connect with the peerstore's addresses.
	Connect func(ctx context.Context, p peer.ID) error
	Now     func() time.Time
	// Logger receives the service's logs; nil discards them. Readings,
	// keys and questions are never logged.
	Logger *slog.Logger
}

// Service is one node's sensor subsystem. It is safe for concurrent use.
type Service struct {
	cfg   Config
	deps  Deps
	self  string
	now   func() time.Time
	log   *slog.Logger
	limit *ratelimit.Keyed

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards streams and grants; a stream's own mu serializes its
	// pushes and epoch changes.
	mu      sync.Mutex
	streams map[string]*stream
	grants  map[string]*grantRecord

	// wake makes maintainLoop look again (a grant with an end came).
	wake chan struct{}

	closeOnce sync.Once
}

// streamRecord is a stream as kept in the node's meta state.
type streamRecord struct {
	Name      string             `json:"name"`
	Unit      string             `json:"unit,omitempty"`
	TTLMs     int64              `json:"ttlMs"`
	Local     bool               `json:"local,omitempty"`
	Anomaly   api.AnomalyOptions `json:"anomaly"`
	Epochs    []epoch            `json:"epochs"` // the last is current
	CreatedAt int64              `json:"createdAt"`
}

// epoch is one epoch key of a stream: readings from Start until End (0:
// current) are encrypted under it.
type epoch struct {
	KeyID string `json:"keyId"`
	Start int64  `json:"start"`
	End   int64  `json:"end,omitempty"`
}

// grantRecord is a grant as kept.
type grantRecord struct {
	Reader    string   `json:"reader"`
	Streams   []string `json:"streams"`
	Until     int64    `json:"until,omitempty"`
	GrantedAt int64    `json:"grantedAt"`
}

func (g *grantRecord) active(now int64) bool { return g.Until == 0 || g.Until > now }

func (g *grantRecord) covers(stream string) bool {
	for _, p := range g.Streams {
		if protocol.StreamMatches(p, stream) {
			return true
		}
	}
	return false
}

// stream is a stream in memory.
type stream struct {
	// name is rec.Name, which never changes: read without mu (an epoch
	// change replaces rec while others look streams up by name).
	name string
	mu   sync.Mutex // serializes pushes and epoch changes
	rec  streamRecord
	// key is the current epoch's key, held for pushes.
	key []byte
	// idx holds the newest readings, oldest first (guarded by mu).
	idx   []entry
	stats rolling
}

// entry is one reading indexed for questions.
type entry struct {
	id      string
	at      int64
	expires int64
	value   float64
	anomaly bool
}

// New makes the service, loads the streams, grants and readings kept, and,
// with a host, serves /mesh/sensors/1.0.0 until Close.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if cfg.MaxIndexed <= 0 {
		cfg.MaxIndexed = DefaultMaxIndexed
	}
	s := &Service{cfg: cfg, deps: deps, self: deps.Self.String(), now: deps.Now, log: deps.Logger,
		limit: ratelimit.New(peerRate, peerBurst, maxPeers), streams: map[string]*stream{}, grants: map[string]*grantRecord{},
		wake: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.load(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	if deps.Host != nil {
		deps.Host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSensors),
			streamrpc.Serve(s.ctx, protocol.MaxSensorQuerySize, streamrpc.Timeout, s.handle))
	}
	s.wg.Add(1)
	go s.maintainLoop()
	return s, nil
}

// Close stops serving and waits for the service's goroutines. A second
// Close returns an error wrapping net.ErrClosed.
func (s *Service) Close() error {
	err := fmt.Errorf("sensors: %w", net.ErrClosed)
	s.closeOnce.Do(func() {
		err = nil
		if s.deps.Host != nil {
			s.deps.Host.RemoveStreamHandler(libp2pproto.ID(protocol.ProtocolSensors))
		}
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		for _, st := range s.streams {
			st.mu.Lock()
			clear(st.key)
			st.mu.Unlock()
		}
		s.mu.Unlock()
	})
	return err
}

// streamID is the ID of a stream's record, the "lesson" its epoch keys are
// made for: "stream." and the name with '/' as '.'.
func streamID(name string) string { return "stream." + strings.ReplaceAll(name, "/", ".") }

// streamOfID is the stream name of a streamID, "" if it is none.
func streamOfID(id string) string {
	rest, ok := strings.CutPrefix(id, "stream.")
	if !ok {
		return ""
	}
	return strings.ReplaceAll(rest, ".", "/")
}

// streamTag is the tag of a stream's readings.
func streamTag(name string) string { return streamID(name) }

func (s *Service) load(ctx context.Context) error {
	var recs []streamRecord
	err := s.deps.Store.ListMeta(ctx, metaStream, func(_ string, v []byte) error {
		var r streamRecord
		if err := json.Unmarshal(v, &r); err != nil || protocol.ValidateStreamName(r.Name) != nil || len(r.Epochs) == 0 {
			s.log.Warn("sensors: a stream record is unreadable; skipped", "err", err)
			return nil
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sensors: load streams: %w", err)
	}
	err = s.deps.Store.ListMeta(ctx, metaGrant, func(_ string, v []byte) error {
		var g grantRecord
		if err := json.Unmarshal(v, &g); err != nil || g.Reader == "" {
			s.log.Warn("sensors: a grant record is unreadable; skipped", "err", err)
			return nil
		}
		s.grants[g.Reader] = &g
		return nil
	})
	if err != nil {
		return fmt.Errorf("sensors: load grants: %w", err)
	}
	for _, r := range recs {
		st := &stream{name: r.Name, rec: r}
		st.stats.init(r.Anomaly)
		if key, err := s.deps.Keys.EpochKey(ctx, r.Epochs[len(r.Epochs)-1].KeyID); err == nil {
			st.key = key
		} else {
			s.log.Warn("sensors: the current epoch key of a stream is gone; a new epoch starts at the next reading", "stream", r.Name, "err", err)
		}
		if err := s.reindex(ctx, st); err != nil {
			return err
		}
		s.streams[r.Name] = st
	}
	return nil
}

// reindex loads the newest readings of st from the store, oldest first,
// and replays them through the anomaly statistic.
func (s *Service) reindex(ctx context.Context, st *stream) error {
	var out []entry
	for off := 0; len(out) < s.cfg.MaxIndexed && off <= store.MaxListOffset; {
		res, err := s.deps.Store.List(ctx, store.ListOptions{Type: TypeReading, Tags: []string{streamTag(st.name)},
			Limit: min(store.MaxListLimit, s.cfg.MaxIndexed-len(out)), Offset: off, Order: "desc"})
		if err != nil {
			return fmt.Errorf("sensors: load readings of %s: %w", st.name, err)
		}
		for _, l := range res.Records {
			if e, ok := entryOf(l); ok {
				out = append(out, e)
			}
		}
		off += len(res.Records)
		if !res.HasMore || len(res.Records) == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	st.idx = out
	for _, e := range out {
		st.stats.observe(e.value)
	}
	return nil
}

// entryOf reads a reading record's index entry.
func entryOf(l *protocol.Lesson) (entry, bool) {
	v, ok := l.Number("value")
	if !ok {
		return entry{}, false
	}
	return entry{id: l.ID, at: l.CreatedAt, expires: l.ExpiresAt, value: v, anomaly: slices.Contains(l.Tags, TagAnomaly)}, true
}

func (s *Service) saveStream(ctx context.Context, r *streamRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.deps.Store.SetMeta(ctx, metaStream+r.Name, b)
}

// readersOf are the readers whose active grant covers stream, sorted.
func (s *Service) readersOfLocked(stream string, now int64) []string {
	var out []string
	for _, g := range s.grants {
		if g.active(now) && g.covers(stream) {
			out = append(out, g.Reader)
		}
	}
	sort.Strings(out)
	return out
}

// policyFor is the key policy of a stream's epochs: explicit access for
// its readers (this node alone when there are none: a policy names
// somebody).
func (s *Service) policyFor(readers []string) api.PolicyOptions {
	if len(readers) == 0 {
		readers = []string{s.self}
	}
	return api.PolicyOptions{Access: protocol.AccessExplicit, AllowedNodes: readers}
}

// Add creates a stream, or changes an existing one's unit, TTL and anomaly
// settings (its epochs and readings stay).
func (s *Service) Add(ctx context.Context, o api.StreamOptions) (*api.Stream, error) {
	if err := protocol.ValidateStreamName(o.Name); err != nil {
		return nil, err
	}
	if err := protocol.ValidateUnit(o.Unit); err != nil {
		return nil, err
	}
	if o.TTLMs < 0 || o.TTLMs > 10*365*24*3600*1000 {
		return nil, fmt.Errorf("%w: ttl: want 1ms to 10 years (0 for 7 days)", protocol.ErrInvalid)
	}
	if o.TTLMs == 0 {
		o.TTLMs = DefaultTTL.Milliseconds()
	}
	a := o.Anomaly
	if a.Window < 0 || a.Window > 100000 || a.MinSamples < 0 || a.MinSamples > 100000 || math.IsNaN(a.Threshold) || a.Threshold < 0 || a.Threshold > 1000 {
		return nil, fmt.Errorf("%w: anomaly: window and min samples 0 to 100000, threshold 0 to 1000 (0 for the defaults)", protocol.ErrInvalid)
	}
	s.mu.Lock()
	st := s.streams[o.Name]
	if st == nil && len(s.streams) >= MaxStreams {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: this node has %d streams, the limit", protocol.ErrInvalid, MaxStreams)
	}
	readers := s.readersOfLocked(o.Name, s.now().UnixMilli())
	s.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		r := st.rec
		r.Unit, r.TTLMs, r.Local, r.Anomaly = o.Unit, o.TTLMs, o.Local, a
		if err := s.saveStream(ctx, &r); err != nil {
			st.mu.Unlock()
			return nil, fmt.Errorf("sensors: add %s: %w", o.Name, err)
		}
		st.rec = r
		st.stats.setParams(a)
		st.mu.Unlock()
		return s.info(st), nil
	}
	p, err := s.deps.Keys.NewEpoch(ctx, streamID(o.Name), s.policyFor(readers))
	if err != nil {
		return nil, fmt.Errorf("sensors: add %s: %w", o.Name, err)
	}
	now := s.now().UnixMilli()
	r := streamRecord{Name: o.Name, Unit: o.Unit, TTLMs: o.TTLMs, Local: o.Local, Anomaly: a, Epochs: []epoch{{KeyID: p.KeyID, Start: now}}, CreatedAt: now}
	key, err := s.deps.Keys.EpochKey(ctx, p.KeyID)
	if err == nil {
		err = s.saveStream(ctx, &r)
	}
	if err != nil {
		return nil, fmt.Errorf("sensors: add %s: %w", o.Name, err)
	}
	st = &stream{name: r.Name, rec: r, key: key}
	st.stats.init(a)
	s.mu.Lock()
	if old := s.streams[o.Name]; old != nil { // added twice at once: the first stays
		s.mu.Unlock()
		clear(key)
		return s.info(old), nil
	}
	s.streams[o.Name] = st
	s.mu.Unlock()
	s.log.Info("sensor stream added", "stream", o.Name)
	return s.info(st), nil
}

// List lists the streams, by name.
func (s *Service) List(ctx context.Context) ([]api.Stream, error) {
	s.mu.Lock()
	all := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	out := make([]api.Stream, 0, len(all))
	for _, st := range all {
		out = append(out, *s.info(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Service) info(st *stream) *api.Stream {
	now := s.now().UnixMilli()
	s.mu.Lock()
	readers := s.readersOfLocked(st.name, now)
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.stats.p
	out := &api.Stream{Name: st.name, Unit: st.rec.Unit, TTLMs: st.rec.TTLMs, Local: st.rec.Local,
		Anomaly: api.AnomalyOptions{Window: a.Window, Threshold: a.Threshold, MinSamples: a.MinSamples},
		Epoch:   st.rec.Epochs[len(st.rec.Epochs)-1].KeyID, Epochs: len(st.rec.Epochs), Readers: nonNil(readers), CreatedAt: st.rec.CreatedAt}
	for i := len(st.idx) - 1; i >= 0; i-- {
		e := st.idx[i]
		if e.expires > now {
			if out.Last == nil {
				v := e.value
				out.Last, out.LastAt = &v, e.at
			}
			out.Readings++
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Push records one reading: the record (private, signed by nothing: it
// stays here) and its encrypted publication under the stream's current
// epoch key are kept durably before Push returns; a published stream then
// announces it. A reading without a time is stamped with the node's clock,
// and a stream's stamps strictly increase in push order.
func (s *Service) Push(ctx context.Context, req api.PushRequest) (*api.Reading, error) {
	if math.IsNaN(req.Value) || math.IsInf(req.Value, 0) {
		return nil, fmt.Errorf("%w: a reading is a finite number", protocol.ErrInvalid)
	}
	s.mu.Lock()
	st := s.streams[req.Stream]
	s.mu.Unlock()
	if st == nil {
		if err := protocol.ValidateStreamName(req.Stream); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no stream %s on this node: create it with mesh sensor add %s --unit UNIT", protocol.ErrNotFound, req.Stream, req.Stream)
	}
	now := s.now()
	at := req.At
	if at == 0 {
		at = now.UnixMilli()
	}
	if at < 0 || at > now.Add(maxFuture).UnixMilli() {
		return nil, fmt.Errorf("%w: the reading's time is more than an hour ahead of this node's clock", protocol.ErrInvalid)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if n := len(st.idx); req.At == 0 && n > 0 && st.idx[n-1].at >= at {
		// The node stamps its own readings in the order they are pushed:
		// one pushed in the same millisecond as the one before is stamped
		// a millisecond later, so that a stream's last reading is the
		// last pushed.
		at = st.idx[n-1].at + 1
	}
	if at+st.rec.TTLMs <= now.UnixMilli() {
		return nil, fmt.Errorf("%w: a reading taken at %s has already expired (ttl %s)", protocol.ErrInvalid,
			time.UnixMilli(at).UTC().Format(time.RFC3339), time.Duration(st.rec.TTLMs)*time.Millisecond)
	}
	if st.key == nil {
		if err := s.newEpochLocked(ctx, st); err != nil {
			return nil, err
		}
	}
	score, anomaly := st.stats.score(req.Value)
	rec := s.readingRecord(st, at, req.Value, score, anomaly)
	if _, _, err := s.deps.Store.Put(ctx, rec); err != nil {
		return nil, fmt.Errorf("sensors: push %s: %w", req.Stream, err)
	}
	ep := st.rec.Epochs[len(st.rec.Epochs)-1]
	pub := protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), ExpiresAt: rec.ExpiresAt}
	el, err := s.deps.Keys.EncryptUnder(st.key, ep.KeyID, rec, pub)
	if err == nil {
		err = s.deps.Publish(ctx, el, !st.rec.Local)
	}
	if err != nil {
		return nil, fmt.Errorf("sensors: push %s: %w", req.Stream, err)
	}
	st.stats.observe(req.Value)
	e := entry{id: rec.ID, at: at, expires: rec.ExpiresAt, value: req.Value, anomaly: anomaly}
	i := sort.Search(len(st.idx), func(i int) bool { return st.idx[i].at > at })
	st.idx = slices.Insert(st.idx, i, e)
	if len(st.idx) > s.cfg.MaxIndexed {
		st.idx = slices.Delete(st.idx, 0, len(st.idx)-s.cfg.MaxIndexed)
	}
	return &api.Reading{Key: rec.ID + "@" + s.self, Source: s.self, Stream: st.name, Value: req.Value, Unit: st.rec.Unit,
		At: at, Expires: rec.ExpiresAt, Anomaly: anomaly, Score: score, KeyID: ep.KeyID}, nil
}

// readingRecord is the AMP record of a reading: type reading, the value
// in "value" and in a field named after the stream's last segment (so
// mesh search "humidity > 60" finds it locally too), the stream's tag, and
// the anomaly tag when marked.
func (s *Service) readingRecord(st *stream, at int64, value, score float64, anomaly bool) *protocol.Lesson {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := st.name
	field := name[strings.LastIndexByte(name, '/')+1:]
	v := json.RawMessage(strconv.FormatFloat(value, 'g', -1, 64))
	unit, _ := json.Marshal(st.rec.Unit)
	sname, _ := json.Marshal(name)
	text := name + " " + strconv.FormatFloat(value, 'g', -1, 64)
	if st.rec.Unit != "" {
		text += " " + st.rec.Unit
	}
	tags := []string{streamTag(name)}
	if anomaly {
		tags = append(tags, TagAnomaly)
		text += " (anomaly)"
	}
	rec := &protocol.Lesson{ID: "reading_" + hex.EncodeToString(b[:]), Type: TypeReading, Title: text, Content: text, Tags: tags,
		CreatedAt: at, ExpiresAt: at + st.rec.TTLMs,
		Extra: map[string]json.RawMessage{"stream": sname, "value": v, "unit": unit,
			"score": json.RawMessage(strconv.FormatFloat(math.Round(score*1000)/1000, 'g', -1, 64))}}
	if _, typed := map[string]bool{"value": true, "unit": true, "stream": true, "score": true}[field]; !typed && protocol.ValidateStreamName(field) == nil {
		if _, known := rec.Number(field); !known {
			rec.Extra[field] = v
		}
	}
	return rec
}

// newEpochLocked starts a new epoch of st for its current readers: the
// old epoch ends now, readings from now on are encrypted under the new
// key. st.mu is held.
func (s *Service) newEpochLocked(ctx context.Context, st *stream) error {
	now := s.now().UnixMilli()
	s.mu.Lock()
	readers := s.readersOfLocked(st.name, now)
	s.mu.Unlock()
	p, err := s.deps.Keys.NewEpoch(ctx, streamID(st.name), s.policyFor(readers))
	if err != nil {
		return fmt.Errorf("sensors: new epoch of %s: %w", st.name, err)
	}
	key, err := s.deps.Keys.EpochKey(ctx, p.KeyID)
	if err != nil {
		return fmt.Errorf("sensors: new epoch of %s: %w", st.name, err)
	}
	r := st.rec
	r.Epochs = slices.Clone(r.Epochs)
	if n := len(r.Epochs); n > 0 && r.Epochs[n-1].End == 0 {
		r.Epochs[n-1].End = now
	}
	r.Epochs = append(r.Epochs, epoch{KeyID: p.KeyID, Start: now})
	if err := s.saveStream(ctx, &r); err != nil {
		clear(key)
		return fmt.Errorf("sensors: new epoch of %s: %w", st.name, err)
	}
	clear(st.key)
	st.rec, st.key = r, key
	return nil
}

// maintainLoop ends expired grants (as a revocation: new epochs) and
// retires epoch keys whose readings have all expired.
func (s *Service) maintainLoop() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		next := s.maintain(s.ctx)
		t.Reset(next)
	}
}

// maintain does one round of maintainLoop and says when the next is due.
func (s *Service) maintain(ctx context.Context) time.Duration {
	now := s.now().UnixMilli()
	wait := maintainEvery
	s.mu.Lock()
	var ended []string
	for _, g := range s.grants {
		switch {
		case !g.active(now):
			ended = append(ended, g.Reader)
		case g.Until != 0:
			wait = min(wait, time.Duration(g.Until-now)*time.Millisecond+10*time.Millisecond)
		}
	}
	var all []*stream
	for _, st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	for _, reader := range ended {
		if _, err := s.Revoke(ctx, reader, nil); err != nil && ctx.Err() == nil {
			s.log.Warn("sensors: end an expired grant", "err", err)
		}
	}
	for _, st := range all {
		s.retireSpent(ctx, st, now)
	}
	return max(wait, 10*time.Millisecond)
}

// retireSpent retires the epoch keys of st whose last reading has expired
// (an epoch that ended more than the stream's TTL ago).
func (s *Service) retireSpent(ctx context.Context, st *stream, now int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var spent []string
	keep := st.rec.Epochs[:0:0]
	for _, e := range st.rec.Epochs {
		if e.End != 0 && e.End+st.rec.TTLMs+maxFuture.Milliseconds() <= now {
			spent = append(spent, e.KeyID)
			continue
		}
		keep = append(keep, e)
	}
	if len(spent) == 0 {
		return
	}
	if err := s.deps.Keys.RetireKeys(ctx, store.KeyRetired, spent...); err != nil {
		s.log.Warn("sensors: retire spent epochs", "err", err)
		return
	}
	r := st.rec
	r.Epochs = keep
	if err := s.saveStream(ctx, &r); err != nil {
		s.log.Warn("sensors: save stream", "err", err)
		return
	}
	st.rec = r
	// Readings past their expiry leave the index too.
	st.idx = slices.DeleteFunc(st.idx, func(e entry) bool { return e.expires <= now })
}

// isNotFound reports whether err means nothing is kept.
func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, protocol.ErrNotFound)
}
