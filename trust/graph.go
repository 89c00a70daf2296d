package trust

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// Level is how much this node trusts another.
type Level string

// Trust levels.
const (
	// LevelFull: searched, synced from, its lessons re-announced, and its
	// vouches followed.
	LevelFull Level = "full"
	// LevelLimited: searched only. Its vouches are not followed.
	LevelLimited Level = "limited"
	// LevelNone: blocked. Disconnected and ignored everywhere, even when
	// trusted nodes vouch for it.
	LevelNone Level = "none"
)

// Valid reports whether l is one of the three levels.
func (l Level) Valid() bool {
	switch l {
	case LevelFull, LevelLimited, LevelNone:
		return true
	}
	return false
}

// ParseLevel parses "full", "limited" or "none".
func ParseLevel(s string) (Level, error) {
	l := Level(s)
	if !l.Valid() {
		return "", fmt.Errorf("%w: trust level %q: want full, limited or none", protocol.ErrInvalid, truncate(s))
	}
	return l, nil
}

// Edge is a direct trust edge from this node.
type Edge struct {
	NodeID  string `json:"nodeId"`
	Level   Level  `json:"level"`
	Note    string `json:"note,omitempty"`
	AddedAt int64  `json:"addedAt"` // Unix ms, when the edge was first added
}

// Limits.
const (
	// DefaultMaxDepth is the longest trust path followed when
	// Config.MaxDepth is zero.
	DefaultMaxDepth = 2
	// MaxDepthLimit is the largest Config.MaxDepth accepted. Paths longer
	// than 4 hops all score the floor.
	MaxDepthLimit = 8
	// DefaultVouchTTL is how long a vouch from [Graph.SignVouch] is valid
	// when no ttl is given.
	DefaultVouchTTL = 24 * time.Hour
	// MaxVouches caps the vouches held, one per voucher.
	MaxVouches = 4096
	// MaxReferrals caps the referrals held.
	MaxReferrals = 4096
	// MaxReferralsPerNode caps the referrals held from one node; a newer
	// one beyond it replaces that node's oldest.
	MaxReferralsPerNode = 64
	// MaxImportSize caps the data [Graph.Import] reads.
	MaxImportSize = 8 << 20
	// MaxNoteLength caps an edge's note, in bytes.
	MaxNoteLength = protocol.MaxNoteLength
	// ScoreFloor is the lowest score of a trust path.
	ScoreFloor = 0.125
)

// Config configures a Graph.
type Config struct {
	// Datastore holds the graph: edges, cached vouches and referrals, under
	// the keys /edges, /vouches and /referrals. Required; pass a namespaced
	// view to share a datastore.
	Datastore ds.Batching
	// Self is this node's ID. Required.
	Self string
	// MaxDepth is the longest trust path, in hops, that the graph follows.
	// Zero means DefaultMaxDepth; 1 follows no vouches.
	MaxDepth int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives warnings about unreadable stored records. Nil
	// discards them.
	Logger *slog.Logger
}

// Graph is a node's web of trust. It is safe for concurrent use. Reads
// (Path, Level, Blocked, Limited) do not lock: they use a view recomputed on
// every change.
type Graph struct {
	ds       ds.Batching
	self     string
	maxDepth int
	now      func() time.Time
	log      *slog.Logger

	// view is the current read-only view, replaced on every change.
	view atomic.Pointer[view]

	// mu serializes changes and guards the fields below.
	mu        sync.Mutex
	edges     map[string]Edge
	vouches   map[string]*protocol.Vouch // by voucher
	referrals map[refKey]*protocol.Referral
	changed   chan struct{}
}

type refKey struct{ from, subject string }

// view is an immutable snapshot of what reads need.
type view struct {
	edges map[string]Edge
	// paths holds the shortest path to every reachable node, self first.
	paths map[string][]string
	// expires is when the first held vouch expires (Unix ms), 0 if none:
	// from then on the view is out of date.
	expires int64
}

// New opens the graph stored in cfg.Datastore.
func New(cfg Config) (*Graph, error) {
	if cfg.Datastore == nil {
		return nil, errors.New("trust: Config.Datastore is required")
	}
	if _, err := protocol.PublicKeyOf(cfg.Self); err != nil {
		return nil, fmt.Errorf("trust: Config.Self: %w", err)
	}
	depth := cfg.MaxDepth
	if depth == 0 {
		depth = DefaultMaxDepth
	}
	if depth < 1 || depth > MaxDepthLimit {
		return nil, fmt.Errorf("trust: Config.MaxDepth %d: want 1 to %d (0 means %d)", cfg.MaxDepth, MaxDepthLimit, DefaultMaxDepth)
	}
	g := &Graph{
		ds:        cfg.Datastore,
		self:      cfg.Self,
		maxDepth:  depth,
		now:       cfg.Now,
		log:       cfg.Logger,
		edges:     make(map[string]Edge),
		vouches:   make(map[string]*protocol.Vouch),
		referrals: make(map[refKey]*protocol.Referral),
		changed:   make(chan struct{}),
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if err := g.load(context.Background()); err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.rebuildLocked()
	g.mu.Unlock()
	return g, nil
}

// Self returns this node's ID.
func (g *Graph) Self() string { return g.self }

// MaxDepth returns the longest trust path followed, in hops.
func (g *Graph) MaxDepth() int { return g.maxDepth }

// Set adds a direct edge to nodeID, or changes its level and note. An
// invalid node ID, level or note (over MaxNoteLength bytes, or not UTF-8), or
// this node's own ID, is an error wrapping protocol.ErrInvalid.
func (g *Graph) Set(nodeID string, level Level, note string) error {
	e := Edge{NodeID: nodeID, Level: level, Note: note}
	if err := g.checkEdge(e); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.edges[nodeID]
	if ok && old.Level == level && old.Note == note {
		return nil
	}
	e.AddedAt = g.now().UnixMilli()
	if ok {
		e.AddedAt = old.AddedAt
	}
	ctx := context.Background()
	b, err := encodeEdge(e)
	if err != nil {
		return err
	}
	if err := g.ds.Put(ctx, edgeKey(nodeID), b); err != nil {
		return fmt.Errorf("trust: set %s: %w", nodeID, err)
	}
	if err := g.ds.Sync(ctx, edgePrefix); err != nil {
		return fmt.Errorf("trust: set %s: %w", nodeID, err)
	}
	g.edges[nodeID] = e
	g.changeLocked()
	return nil
}

// Remove deletes the direct edge to nodeID, and with it every path through
// it, before it returns. Without such an edge it returns an error wrapping
// ErrNoEdge. Removing a LevelNone edge unblocks the node.
func (g *Graph) Remove(nodeID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.edges[nodeID]; !ok {
		return fmt.Errorf("%w to %s", ErrNoEdge, truncate(nodeID))
	}
	ctx := context.Background()
	if err := g.ds.Delete(ctx, edgeKey(nodeID)); err != nil {
		return fmt.Errorf("trust: remove %s: %w", nodeID, err)
	}
	if err := g.ds.Sync(ctx, edgePrefix); err != nil {
		return fmt.Errorf("trust: remove %s: %w", nodeID, err)
	}
	delete(g.edges, nodeID)
	g.changeLocked()
	return nil
}

// Edges returns the direct edges, sorted by node ID.
func (g *Graph) Edges() []Edge {
	v := g.view.Load()
	out := make([]Edge, 0, len(v.edges))
	for _, e := range v.edges {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Edge) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

// Level returns the level of the direct edge to nodeID, if there is one.
func (g *Graph) Level(nodeID string) (Level, bool) {
	e, ok := g.view.Load().edges[nodeID]
	return e.Level, ok
}

// Blocked reports whether nodeID has a direct LevelNone edge. A blocked node
// has no trust path, whoever vouches for it.
func (g *Graph) Blocked(nodeID string) bool {
	e, ok := g.view.Load().edges[nodeID]
	return ok && e.Level == LevelNone
}

// Limited reports whether nodeID has a direct LevelLimited edge: it is
// searched, but not synced from, and its lessons are not re-announced. A
// direct edge decides: a limited node stays limited when others vouch for
// it, and its own vouches are not followed.
func (g *Graph) Limited(nodeID string) bool {
	e, ok := g.view.Load().edges[nodeID]
	return ok && e.Level == LevelLimited
}

// Path returns the shortest trust path from this node to nodeID: hops[0] is
// this node, hops[len(hops)-1] is nodeID, and len(hops)-1 is the number of
// hops. Score is 1 at one hop (and for this node itself, at zero hops),
// halved per further hop, never below ScoreFloor. ok is false when there is
// no path: the node is blocked, unknown, or further than MaxDepth hops.
//
// A direct full or limited edge is a path of one hop. Longer paths follow
// the unexpired vouches of nodes trusted fully, directly or through such a
// path; they never pass through, or end at, a blocked node. Among paths of
// equal length the one through the smallest node IDs wins. The caller owns
// hops.
func (g *Graph) Path(nodeID string) (hops []string, score float64, ok bool) {
	if nodeID == g.self {
		return []string{g.self}, 1, true
	}
	p, ok := g.current().paths[nodeID]
	if !ok {
		return nil, 0, false
	}
	return slices.Clone(p), Score(len(p) - 1), true
}

// Score is the score of a trust path of n hops: 1 for 0 or 1 hop, halved per
// further hop, never below ScoreFloor.
func Score(n int) float64 {
	s := 1.0
	for i := 1; i < n && s > ScoreFloor; i++ {
		s /= 2
	}
	return max(s, ScoreFloor)
}

// Changed returns a channel closed at the next change: an edge set or
// removed, edges imported, a vouch or referral added, a vouch expired. Call
// it again for the next change after that.
func (g *Graph) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// current returns the view, recomputed first if a vouch it relies on has
// expired.
func (g *Graph) current() *view {
	v := g.view.Load()
	if v.expires == 0 || g.now().UnixMilli() < v.expires {
		return v
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	v = g.view.Load()
	if v.expires != 0 && g.now().UnixMilli() >= v.expires {
		g.changeLocked()
		v = g.view.Load()
	}
	return v
}

// changeLocked recomputes the view and wakes the Changed waiters.
func (g *Graph) changeLocked() {
	g.rebuildLocked()
	close(g.changed)
	g.changed = make(chan struct{})
}

// rebuildLocked drops expired vouches and recomputes the view.
func (g *Graph) rebuildLocked() {
	now := g.now()
	g.sweepLocked(now)
	v := &view{
		edges: make(map[string]Edge, len(g.edges)),
		paths: make(map[string][]string),
	}
	for id, e := range g.edges {
		v.edges[id] = e
	}
	for _, vo := range g.vouches {
		if v.expires == 0 || vo.ExpiresAt < v.expires {
			v.expires = vo.ExpiresAt
		}
	}

	// Breadth first from this node: direct edges first, then the vouches
	// of the nodes reached at full trust, one hop further each round.
	ids := make([]string, 0, len(g.edges))
	for id := range g.edges {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var frontier []string
	for _, id := range ids {
		switch g.edges[id].Level {
		case LevelFull:
			frontier = append(frontier, id)
		case LevelLimited:
		default:
			continue
		}
		v.paths[id] = []string{g.self, id}
	}
	for depth := 1; depth < g.maxDepth && len(frontier) > 0; depth++ {
		var next []string
		for _, from := range frontier {
			vo := g.vouches[from]
			if vo == nil {
				continue
			}
			for _, id := range vo.Trusts {
				if _, seen := v.paths[id]; seen || id == g.self {
					continue
				}
				if e, ok := g.edges[id]; ok && e.Level == LevelNone {
					continue
				}
				p := make([]string, len(v.paths[from])+1)
				copy(p, v.paths[from])
				p[len(p)-1] = id
				v.paths[id] = p
				next = append(next, id)
			}
		}
		slices.Sort(next)
		frontier = next
	}
	g.view.Store(v)
}

// sweepLocked drops the vouches expired at now, from memory and the
// datastore.
func (g *Graph) sweepLocked(now time.Time) {
	ctx := context.Background()
	for id, v := range g.vouches {
		if !v.Expired(now) {
			continue
		}
		delete(g.vouches, id)
		if err := g.ds.Delete(ctx, vouchKey(id)); err != nil {
			g.log.Warn("trust: cannot delete expired vouch", "peer", id, "err", err)
		}
	}
}

// checkEdge checks an edge's node ID, level and note.
func (g *Graph) checkEdge(e Edge) error {
	if _, err := protocol.PublicKeyOf(e.NodeID); err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	if e.NodeID == g.self {
		return fmt.Errorf("%w: trust: %s is this node", protocol.ErrInvalid, e.NodeID)
	}
	if !e.Level.Valid() {
		return fmt.Errorf("%w: trust: level %q: want full, limited or none", protocol.ErrInvalid, truncate(string(e.Level)))
	}
	if len(e.Note) > MaxNoteLength {
		return fmt.Errorf("%w: trust: note of %d bytes, the limit is %d", protocol.ErrInvalid, len(e.Note), MaxNoteLength)
	}
	if !utf8.ValidString(e.Note) {
		return fmt.Errorf("%w: trust: note is not valid UTF-8", protocol.ErrInvalid)
	}
	if e.AddedAt < 0 {
		return fmt.Errorf("%w: trust: addedAt %d: want Unix milliseconds", protocol.ErrInvalid, e.AddedAt)
	}
	return nil
}

// SignVouch signs this node's full edges as a vouch valid for ttl (zero
// means DefaultVouchTTL). key must be this node's key.
func (g *Graph) SignVouch(key ed25519.PrivateKey, ttl time.Duration) (*protocol.Vouch, error) {
	if len(key) == ed25519.PrivateKeySize {
		if id, err := protocol.NodeID(key.Public().(ed25519.PublicKey)); err == nil && id != g.self {
			return nil, fmt.Errorf("%w: trust: sign vouch: key of %s, this node is %s", protocol.ErrInvalid, id, g.self)
		}
	}
	if ttl == 0 {
		ttl = DefaultVouchTTL
	}
	var full []string
	for _, e := range g.Edges() {
		if e.Level == LevelFull {
			full = append(full, e.NodeID)
		}
	}
	v, err := protocol.SignVouch(key, full, g.now(), ttl)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
