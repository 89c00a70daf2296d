package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/coalesce"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/pubsub"
	"github.com/meshprotocol/mesh/store"
)

// follows is what the node follows, persisted in the store's meta state.
type follows struct {
	Topics []string `json:"topics"`
	Feeds  []string `json:"feeds"`
}

const followKey = "follow"

// checker answers the GossipSub validators from the store.
type checker struct{ n *Node }

func (c checker) Revoked(ctx context.Context, key string) bool { return c.n.store.Revoked(ctx, key) }
func (c checker) HeldVersion(ctx context.Context, key string) (int64, bool) {
	return c.n.store.HeldVersion(ctx, key)
}

// Trusted says whether lessons of a publisher may be stored and forwarded.
func (c checker) Trusted(nodeID string) bool { return c.n.acceptsPublisher(nodeID) }

// startFederation starts GossipSub, the fetch and sync handlers, and the
// loop that stores deliveries. Peers are synced with as they are
// identified (see trustLoop), and again when GossipSub says this node may
// have missed what they hold (catchUp).
func (n *Node) startFederation() error {
	params := pubsub.DefaultParams()
	if n.cfg.Pubsub != nil {
		params = *n.cfg.Pubsub
	}
	n.catchUps = coalesce.New(catchUpSpacing, n.catchUpWith)
	ps, err := pubsub.New(pubsub.Config{
		Host: n.host, Params: params, Checker: checker{n}, Now: n.now,
		Logger: n.log, Registerer: n.cfg.Registerer,
		Refused: func(r pubsub.Refusal) { n.refused(r.Publisher, r.Key, r.Topics, r.ReceivedFrom) },
		CatchUp: n.catchUp,
	})
	if err != nil {
		return fmt.Errorf("node: pubsub: %w", err)
	}
	n.ps = ps
	n.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolFetch),
		streamrpc.Serve(n.ctx, protocol.MaxFetchRequestSize, streamrpc.Timeout, n.handleFetch))
	n.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSync),
		streamrpc.Serve(n.ctx, protocol.MaxSyncRequestSize, streamrpc.Timeout, n.handleSync))

	f, err := n.loadFollows(n.ctx)
	if err != nil {
		return err
	}
	for _, t := range n.cfg.Topics {
		f.Topics = appendUnique(f.Topics, strings.ToLower(t))
	}
	for _, t := range f.Topics {
		if err := ps.Follow(t); err != nil {
			return fmt.Errorf("node: follow %s: %w", t, err)
		}
	}
	for _, id := range f.Feeds {
		if err := ps.FollowFeed(id); err != nil {
			return fmt.Errorf("node: follow %s: %w", id, err)
		}
	}
	n.wg.Add(1)
	go n.deliveryLoop()
	return nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func (n *Node) loadFollows(ctx context.Context) (follows, error) {
	var f follows
	b, err := n.store.GetMeta(ctx, followKey)
	if errors.Is(err, store.ErrNotFound) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("node: load follows: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("node: load follows: %w", err)
	}
	return f, nil
}

// deliveryLoop stores what GossipSub validated: lessons into the remote
// cache, revocations as tombstones.
func (n *Node) deliveryLoop() {
	defer n.wg.Done()
	for d := range n.ps.Deliveries() {
		a := d.Announcement
		n.ingest(n.ctx, a.SignedLesson, a.EncryptedLesson, a.Revocation)
	}
}

// ingest stores one verified lesson (signed or encrypted) or revocation;
// duplicates, superseded versions and replays of revoked lessons are
// dropped quietly. The key subsystem hears of what was stored: a
// revocation kills the keys and shares it revokes and the plaintext a
// reader holds, a newer encrypted version retires the keys of the older.
func (n *Node) ingest(ctx context.Context, sl *protocol.SignedLesson, el *protocol.EncryptedLesson, rev *protocol.Revocation) (stored bool) {
	var err error
	var key string // for the debug log line once stored
	switch {
	case sl != nil:
		if sl.Signature.NodeID == n.id.String() {
			return false
		}
		if !n.checkCarried(ctx, sl) {
			return false
		}
		key, err = sl.Key(), n.store.PutRemote(ctx, sl)
	case el != nil:
		if el.Signature.NodeID == n.id.String() {
			return false
		}
		if key, err = el.Key(), n.store.PutRemoteEncrypted(ctx, el); err == nil {
			n.keys.OnPublication(el)
		}
	case rev != nil:
		if key, err = rev.Key(), n.store.Revoke(ctx, rev); err == nil {
			n.keys.OnRevocation(ctx, rev)
		}
	}
	switch {
	case err == nil:
		n.log.Debug("stored received record", "key", key, "revocation", rev != nil)
		return true
	case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrRevoked), errors.Is(err, protocol.ErrAlreadyRevoked):
	default:
		if n.ctx.Err() == nil {
			n.log.Warn("store received record", "err", err)
		}
	}
	return false
}

// Follow makes the node follow a MESH topic ("rust") or, given a node ID,
// that publisher's feed. It persists across restarts and syncs the new
// subscription with connected peers.
func (n *Node) Follow(ctx context.Context, target string) error {
	return n.changeFollow(ctx, target, true)
}

// Unfollow undoes Follow.
func (n *Node) Unfollow(ctx context.Context, target string) error {
	return n.changeFollow(ctx, target, false)
}

func (n *Node) changeFollow(ctx context.Context, target string, add bool) error {
	n.followMu.Lock()
	defer n.followMu.Unlock()
	f, err := n.loadFollows(ctx)
	if err != nil {
		return err
	}
	isFeed := false
	if _, err := peer.Decode(target); err == nil && strings.HasPrefix(target, "12D3KooW") {
		isFeed = true
	} else {
		target = strings.ToLower(target)
		if len(target) == 0 || len(target) > protocol.MaxTagLength {
			return fmt.Errorf("%w: topic %q: 1 to %d letters, digits, '_', '-' or '.'", protocol.ErrInvalid, target, protocol.MaxTagLength)
		}
		if err := protocol.ValidateID(target); err != nil {
			return fmt.Errorf("%w: topic %q: use letters, digits, '_', '-' or '.'", protocol.ErrInvalid, target)
		}
	}
	list := &f.Topics
	if isFeed {
		list = &f.Feeds
	}
	if add {
		*list = appendUnique(*list, target)
	} else {
		out := (*list)[:0]
		for _, x := range *list {
			if x != target {
				out = append(out, x)
			}
		}
		*list = out
	}
	b, _ := json.Marshal(f)
	if err := n.store.SetMeta(ctx, followKey, b); err != nil {
		return err
	}
	if n.ps == nil {
		return nil
	}
	switch {
	case isFeed && add:
		err = n.ps.FollowFeed(target)
	case isFeed:
		err = n.ps.UnfollowFeed(target)
	case add:
		err = n.ps.Follow(target)
	default:
		err = n.ps.Unfollow(target)
	}
	if err != nil {
		return err
	}
	if add {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for _, p := range n.host.Network().Peers() {
				_, _ = n.SyncWith(n.ctx, p, nil)
			}
		}()
	}
	return nil
}

// Following lists the followed topics and publisher feeds.
func (n *Node) Following(ctx context.Context) (topics, feeds []string, err error) {
	f, err := n.loadFollows(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range n.cfg.Topics {
		f.Topics = appendUnique(f.Topics, strings.ToLower(t))
	}
	sort.Strings(f.Topics)
	sort.Strings(f.Feeds)
	return f.Topics, f.Feeds, nil
}

// announce sends a signed record to the network; offline nodes keep it for
// the sync protocol to hand out later.
func (n *Node) announce(ctx context.Context, a *protocol.Announcement, topics []string) {
	if n.ps == nil {
		return
	}
	if err := n.ps.Announce(ctx, a, topics); err != nil {
		n.log.Warn("announce", "err", err)
	}
}

// Revoke takes a publication back: it signs a revocation, deletes the
// publication, keeps a tombstone, and announces the revocation, so every node
// that holds the lesson deletes it. Revoking twice gives ErrAlreadyRevoked.
func (n *Node) Revoke(ctx context.Context, id, reason string) (*protocol.Revocation, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	key := id + "@" + n.id.String()
	if _, err := n.store.Tombstone(ctx, key); err == nil {
		return nil, fmt.Errorf("revoke %s: %w", id, protocol.ErrAlreadyRevoked)
	}
	rev, _, err := n.revoke(ctx, id, reason, false)
	return rev, err
}

// revoke signs a revocation of id, kills the keys of an encrypted
// publication first (durably), keeps the tombstone, announces it, and
// pushes it to the readers and escrow nodes of the keys: at once for a
// hard revoke (whose result says who was told), in the background
// otherwise. hard refuses a lesson published signed: it has no key.
func (n *Node) revoke(ctx context.Context, id, reason string, hard bool) (*protocol.Revocation, *api.HardRevokeResult, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, nil, fmt.Errorf("revoke: %w", err)
	}
	key := id + "@" + n.id.String()
	if _, err := n.store.Tombstone(ctx, key); err == nil {
		return nil, nil, fmt.Errorf("revoke %s: %w", id, protocol.ErrAlreadyRevoked)
	}
	var pub *protocol.Publication
	encrypted := false
	if sl, err := n.store.Publication(ctx, id); err == nil {
		pub = &sl.Publication
	} else if el, err := n.store.EncryptedPublication(ctx, id); err == nil {
		pub, encrypted = &el.Publication, true
	}
	if pub == nil && n.keys.HasKeys(ctx, id) {
		// Published encrypted, then deleted or made private: its key still
		// lives, and still opens every copy out there.
		pub, encrypted = &protocol.Publication{Visibility: protocol.VisibilityPublic}, true
	}
	if pub == nil {
		return nil, nil, fmt.Errorf("revoke %s: %w: it was never published", id, protocol.ErrUnknownLesson)
	}
	if hard && !encrypted {
		return nil, nil, fmt.Errorf("revoke %s: %w: it was published signed, so there is no key to delete and its copies stay readable; "+
			"mesh revoke %s (without --hard) takes it back as far as nodes comply; publish lessons with --encrypt to be able to revoke them for good",
			id, keys.ErrNotEncrypted, id)
	}
	rev, err := protocol.SignRevocation(n.edKey, id, reason, n.now())
	if err != nil {
		return nil, nil, fmt.Errorf("revoke %s: %w", id, err)
	}
	// The keys die first, durably: whatever happens next, KEY_REVOKED.
	killed, err := n.keys.KillKeys(ctx, rev)
	if err != nil {
		return nil, nil, err
	}
	if err := n.store.Revoke(ctx, rev); err != nil {
		return nil, nil, fmt.Errorf("revoke %s: %w", id, err)
	}
	if pub.Visibility == protocol.VisibilityPublic {
		n.announce(ctx, &protocol.Announcement{Type: protocol.MsgRevocation, Revocation: rev}, pub.Topics)
	}
	res := &api.HardRevokeResult{KeyIDs: []string{}}
	for _, k := range killed {
		res.KeyIDs = append(res.KeyIDs, k.KeyID)
	}
	if hard {
		res.Notices = nonNilNotices(n.keys.PushRevocation(ctx, rev, killed))
	} else if len(killed) > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.keys.PushRevocation(n.ctx, rev, killed)
		}()
	}
	return rev, res, nil
}
