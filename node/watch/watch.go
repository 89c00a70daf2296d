package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Store is what the service needs of the node's store. *store.Store
// implements it.
type Store interface {
	Log(ctx context.Context, after uint64, limit int, f store.LogFilter) ([]store.LogEntry, uint64, bool, error)
	LogEnd() uint64
	Updated() <-chan struct{}
	GetMeta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
}

// Deps are what the service needs of the node.
type Deps struct {
	Store Store
	// Self is the node's ID.
	Self string
	// Following lists the followed topics; Follow follows one.
	Following func(ctx context.Context) ([]string, error)
	Follow    func(ctx context.Context, topic string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's logs; nil discards them. Queries and
	// lesson contents are never logged.
	Logger *slog.Logger
	// Registerer receives the service's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// metaKey is where the standing queries live in the store's small state.
const metaKey = "watches"

// Service runs the standing queries of one node. It is safe for
// concurrent use.
type Service struct {
	d   Deps
	log *slog.Logger
	now func() time.Time

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	metrics *metrics

	mu      sync.Mutex // guards the fields below
	watches []*entry
	backlog []api.WatchMatch // the last MaxWatchBacklog matches, by Seq
	seq     uint64           // the last match's Seq
	newCh   chan struct{}    // closed at the next match
	cursor  uint64           // the sync log read up to here

	closeOnce sync.Once
}

// entry is a standing query with its parsed text.
type entry struct {
	w  api.Watch
	sc *store.Scorer
	// from is the end of the store's log when the query was added: it
	// matches only what is logged after (0 for queries loaded at start,
	// which begin at the log's end then, as the service does).
	from uint64
}

// New loads the standing queries and starts following the store's log
// from its end: lessons that arrive from now on are matched.
func New(ctx context.Context, d Deps) (*Service, error) {
	s := &Service{d: d, log: d.Logger, now: d.Now, kick: make(chan struct{}, 1), newCh: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.metrics, err = newMetrics(d.Registerer, s); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		s.metrics.unregister()
		return nil, err
	}
	s.cursor = d.Store.LogEnd()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Close stops the service and waits for its goroutine. A second Close
// returns an error wrapping net.ErrClosed.
func (s *Service) Close() error {
	err := errClosed
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.metrics.unregister()
		err = nil
	})
	return err
}

func (s *Service) load(ctx context.Context) error {
	b, err := s.d.Store.GetMeta(ctx, metaKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch: load: %w", err)
	}
	var ws []api.Watch
	if err := json.Unmarshal(b, &ws); err != nil {
		return fmt.Errorf("watch: load: %w", err)
	}
	for _, w := range ws {
		e, err := newEntry(w)
		if err != nil {
			s.log.Warn("standing query dropped", "watch", w.ID, "err", err)
			continue
		}
		s.watches = append(s.watches, e)
	}
	return nil
}

func newEntry(w api.Watch) (*entry, error) {
	pq, err := store.ParseQuery(w.Query)
	if err != nil {
		return nil, err
	}
	// Matching needs no corpus statistics; empty ones make the scorer
	// decide matches the way the index does.
	return &entry{w: w, sc: store.NewScorer(pq, &protocol.SearchStats{})}, nil
}

// saveLocked persists the standing queries.
func (s *Service) saveLocked(ctx context.Context, ws []*entry) error {
	out := make([]api.Watch, len(ws))
	for i, e := range ws {
		out[i] = e.w
		out[i].Matches = 0
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := s.d.Store.SetMeta(ctx, metaKey, b); err != nil {
		return fmt.Errorf("watch: save: %w", err)
	}
	return nil
}

// Check validates a spec as Add would, and returns it normalized.
func Check(spec api.WatchSpec) (api.WatchSpec, error) {
	if len(spec.Query) > protocol.MaxSearchQueryLength {
		return spec, fmt.Errorf("%w: query is %d bytes, the limit is %d", protocol.ErrInvalid, len(spec.Query), protocol.MaxSearchQueryLength)
	}
	if _, err := store.ParseQuery(spec.Query); err != nil {
		return spec, err
	}
	if len(spec.Sources) > protocol.MaxTags {
		return spec, fmt.Errorf("%w: %d sources, the limit is %d", protocol.ErrInvalid, len(spec.Sources), protocol.MaxTags)
	}
	var srcs []string
	for _, src := range spec.Sources {
		src = strings.TrimSpace(src)
		if src == "" {
			continue
		}
		if src != "self" {
			if _, err := peer.Decode(src); err != nil || !strings.HasPrefix(src, "12D3KooW") {
				return spec, fmt.Errorf("%w: source %q: want a node ID (12D3KooW...) or self", protocol.ErrInvalid, src)
			}
		}
		if !slices.Contains(srcs, src) {
			srcs = append(srcs, src)
		}
	}
	spec.Sources = srcs
	if spec.Topic != "" {
		spec.Topic = strings.ToLower(strings.TrimSpace(spec.Topic))
		if len(spec.Topic) > protocol.MaxTagLength || protocol.ValidateID(spec.Topic) != nil {
			return spec, fmt.Errorf("%w: topic %q: 1 to %d letters, digits, '_', '-' or '.'", protocol.ErrInvalid, spec.Topic, protocol.MaxTagLength)
		}
	}
	return spec, nil
}

// Add adds a standing query; see api.Watches.WatchAdd.
func (s *Service) Add(ctx context.Context, spec api.WatchSpec) (*api.WatchAdded, error) {
	spec, err := Check(spec)
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	e, err := newEntry(api.Watch{ID: "watch_" + hex.EncodeToString(id[:]), WatchSpec: spec, Created: s.now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	out := &api.WatchAdded{Watch: e.w}
	if spec.Topic != "" {
		topics, err := s.d.Following(ctx)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(topics, spec.Topic) {
			if err := s.d.Follow(ctx, spec.Topic); err != nil {
				return nil, fmt.Errorf("watch: follow %s: %w", spec.Topic, err)
			}
			out.Followed = spec.Topic
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.watches) >= api.MaxWatches {
		return nil, fmt.Errorf("%w: %d standing queries, the limit is %d: remove one first", protocol.ErrInvalid, len(s.watches), api.MaxWatches)
	}
	ws := append(slices.Clip(s.watches), e)
	if err := s.saveLocked(ctx, ws); err != nil {
		return nil, err
	}
	e.from = s.d.Store.LogEnd()
	s.watches = ws
	return out, nil
}

// List lists the standing queries; see api.Watches.WatchList.
func (s *Service) List() []api.Watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.Watch, len(s.watches))
	for i, e := range s.watches {
		out[i] = e.w
	}
	return out
}

// Remove removes a standing query; see api.Watches.WatchRemove.
func (s *Service) Remove(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.watches, func(e *entry) bool { return e.w.ID == id })
	if i < 0 {
		return false, nil
	}
	ws := slices.Delete(slices.Clone(s.watches), i, i+1)
	if err := s.saveLocked(ctx, ws); err != nil {
		return false, err
	}
	s.watches = ws
	return true, nil
}

// Kick tells the service the store's log may have grown (a publication of
// this node's, which the store does not signal).
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stored matches one of this node's own records, just stored (a private
// one: shared ones come through the log as publications).
func (s *Service) Stored(rec *protocol.Lesson) {
	if rec == nil {
		return
	}
	s.match([]candidate{{key: rec.ID, publisher: s.d.Self, origin: "local", lesson: rec}})
}

// candidate is a lesson to match.
type candidate struct {
	key, publisher, origin string
	topics                 []string
	lesson                 *protocol.Lesson
	// seq is the candidate's sync log entry; 0 for a record of this
	// node's, matched as it is stored.
	seq uint64
}

func (s *Service) loop() {
	defer s.wg.Done()
	for {
		upd := s.d.Store.Updated()
		s.drain()
		select {
		case <-s.ctx.Done():
			return
		case <-upd:
		case <-s.kick:
		}
	}
}

// drain reads the sync log from the cursor to its end and matches what it
// finds.
func (s *Service) drain() {
	for s.ctx.Err() == nil {
		// With no standing query there is nothing to match: skip to the
		// log's end without reading it (every received lesson would
		// otherwise be read back and decoded for nothing). Under mu, so
		// that a query added meanwhile sees every lesson logged after it.
		s.mu.Lock()
		if len(s.watches) == 0 {
			s.cursor = s.d.Store.LogEnd()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		entries, next, more, err := s.d.Store.Log(s.ctx, s.cursor, 0, store.LogFilter{})
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("watch: read sync log", "err", err)
			}
			return
		}
		var cands []candidate
		for _, e := range entries {
			if e.Lesson == nil {
				continue // revocations, encrypted lessons: nothing to read
			}
			sl := e.Lesson
			origin := "remote"
			if sl.Signature.NodeID == s.d.Self {
				origin = "publication"
			}
			rec := sl.Lesson
			rec.Visibility = sl.Publication.Visibility
			cands = append(cands, candidate{key: sl.Key(), publisher: sl.Signature.NodeID, origin: origin, topics: sl.Publication.Topics, lesson: &rec, seq: e.Seq})
		}
		s.mu.Lock()
		s.cursor = next
		s.mu.Unlock()
		s.match(cands)
		if !more {
			return
		}
	}
}

// match matches candidates against every standing query and keeps the
// matches.
func (s *Service) match(cands []candidate) {
	if len(cands) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixMilli()
	found := false
	for _, c := range cands {
		s.metrics.seen.Inc()
		for _, e := range s.watches {
			if !e.accepts(c, s.d.Self) {
				continue
			}
			s.seq++
			e.w.Matches++
			s.metrics.matches.Inc()
			s.backlog = append(s.backlog, api.WatchMatch{
				Seq: s.seq, Watch: e.w.ID, Query: e.w.Query, Key: c.key, Publisher: c.publisher,
				Origin: c.origin, Topics: c.topics, Lesson: c.lesson, At: now,
			})
			found = true
		}
	}
	if n := len(s.backlog) - api.MaxWatchBacklog; n > 0 {
		s.backlog = slices.Delete(s.backlog, 0, n)
	}
	if found {
		close(s.newCh)
		s.newCh = make(chan struct{})
	}
}

// accepts reports whether c matches the standing query.
func (e *entry) accepts(c candidate, self string) bool {
	if c.seq != 0 && c.seq <= e.from {
		return false // logged before the query was added
	}
	if len(e.w.Sources) > 0 && !slices.ContainsFunc(e.w.Sources, func(src string) bool {
		return src == c.publisher || (src == "self" && c.publisher == self)
	}) {
		return false
	}
	if e.w.Topic != "" && !slices.ContainsFunc(c.topics, func(t string) bool { return strings.EqualFold(t, e.w.Topic) }) {
		return false
	}
	_, ok := e.sc.Score(c.lesson)
	return ok
}

// after returns up to limit matches with Seq > after, whether some were
// dropped from the backlog, and a channel closed at the next match.
func (s *Service) after(after uint64, limit int) ([]api.WatchMatch, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.backlog, after+1, func(m api.WatchMatch, seq uint64) int {
		switch {
		case m.Seq < seq:
			return -1
		case m.Seq > seq:
			return 1
		}
		return 0
	})
	missed := after < s.seq && (len(s.backlog) == 0 || s.backlog[0].Seq > after+1)
	out := slices.Clone(s.backlog[i:min(len(s.backlog), i+limit)])
	return out, missed, s.newCh
}

// Poll returns the matches after a Seq; see api.Watches.WatchPoll.
func (s *Service) Poll(ctx context.Context, after uint64, limit int, wait time.Duration) (*api.WatchPollResult, error) {
	switch {
	case limit == 0:
		limit = api.DefaultWatchPollLimit
	case limit < 0 || limit > api.MaxWatchPollLimit:
		return nil, fmt.Errorf("%w: limit %d: want 1 to %d (0 for %d)", protocol.ErrInvalid, limit, api.MaxWatchPollLimit, api.DefaultWatchPollLimit)
	}
	if wait < 0 || wait > api.MaxWatchPollWait {
		return nil, fmt.Errorf("%w: wait %v: want 0 to %v", protocol.ErrInvalid, wait, api.MaxWatchPollWait)
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		ms, missed, next := s.after(after, limit)
		if len(ms) > 0 || wait == 0 {
			res := &api.WatchPollResult{Matches: ms, Next: after, Missed: missed}
			if len(ms) > 0 {
				res.Next = ms[len(ms)-1].Seq
			}
			if res.Matches == nil {
				res.Matches = []api.WatchMatch{}
			}
			return res, nil
		}
		select {
		case <-next:
		case <-timeout:
			wait = 0
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, errClosed
		}
	}
}

// Stream calls fn with the matches after a Seq, then with each new one;
// see api.Watches.WatchStream.
func (s *Service) Stream(ctx context.Context, after uint64, fn func(api.WatchMatch) error) error {
	if after == api.WatchFromNow {
		after = s.Last()
	}
	for {
		ms, _, next := s.after(after, api.MaxWatchPollLimit)
		for _, m := range ms {
			if err := fn(m); err != nil {
				return err
			}
			after = m.Seq
		}
		if len(ms) > 0 {
			continue
		}
		select {
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return errClosed
		}
	}
}

// Last is the Seq of the latest match (0 before the first).
func (s *Service) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}
