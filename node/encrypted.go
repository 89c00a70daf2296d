package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Keys is the node's key subsystem: its lesson keys, the escrow shares it
// holds, and what it decrypted as a reader (in memory).
func (n *Node) Keys() *keys.Service { return n.keys }

// newKeys starts the key subsystem (the key server and notices, with a
// host).
func (n *Node) newKeys() {
	deps := keys.Deps{
		Self: n.id, Key: n.edKey, Store: n.store, Trust: n.trust, Now: n.now, Logger: n.log, Admit: n.admitSensor,
		Revoke: func(ctx context.Context, rev *protocol.Revocation) error {
			if err := n.acceptSynced(nil, nil, rev); err != nil {
				return err
			}
			n.ingest(ctx, nil, nil, rev)
			return nil
		},
		FollowFeed: func(ctx context.Context, nodeID string) error {
			if _, feeds, err := n.Following(ctx); err == nil && contains(feeds, nodeID) {
				return nil
			}
			return n.Follow(ctx, nodeID)
		},
	}
	if n.host != nil {
		deps.Host, deps.Relearn = n.host, n.relearnAll
	}
	n.keys = keys.New(n.cfg.Keys, deps)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PublishEncrypted encrypts the record id under a new random key, signs
// the encrypted form, keeps the key (before anything leaves the node) and
// the publication, announces a public one like any publication, and hands
// the escrow shares to the escrow nodes. A record already published
// encrypted gets a new key, and its old key is retired (as KeyRotate).
func (n *Node) PublishEncrypted(ctx context.Context, id string, opts api.EncryptOptions) (*api.EncryptedPublication, error) {
	vis := opts.Visibility
	if vis == "" {
		vis = protocol.VisibilityPublic
	}
	if vis != protocol.VisibilityPublic && vis != protocol.VisibilityUnlisted {
		return nil, fmt.Errorf("publish %s: %w: visibility %q: want public or unlisted", id, protocol.ErrInvalid, vis)
	}
	rec, err := n.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	if n.store.Revoked(ctx, id+"@"+n.id.String()) {
		return nil, fmt.Errorf("publish %s: %w: a revoked lesson stays revoked; store it under a new id", id, protocol.ErrAlreadyRevoked)
	}
	var oldKeyID string
	if cur, err := n.store.EncryptedPublication(ctx, id); err == nil {
		oldKeyID = cur.Encryption.KeyID
	}
	pub := protocol.Publication{Visibility: vis, PublishedAt: n.nextPublishedAt(ctx, id), Topics: opts.Topics}
	el, policy, err := n.keys.Encrypt(ctx, rec, pub, opts.Policy)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	return n.putEncrypted(ctx, el, policy, oldKeyID)
}

// nextPublishedAt is now, or just after the version of id held if that is
// not older (two publications in one millisecond).
func (n *Node) nextPublishedAt(ctx context.Context, id string) int64 {
	now := n.now().UnixMilli()
	if held, ok := n.store.HeldVersion(ctx, id+"@"+n.id.String()); ok && held >= now {
		return held + 1
	}
	return now
}

// putEncrypted keeps and announces an encrypted publication made by the
// key subsystem, then deposits its escrow shares, or, replacing oldKeyID,
// retires that key.
func (n *Node) putEncrypted(ctx context.Context, el *protocol.EncryptedLesson, policy *protocol.KeyPolicy, oldKeyID string) (*api.EncryptedPublication, error) {
	if err := n.store.PutEncryptedPublication(ctx, el); err != nil {
		n.keys.Forget(ctx, el.Encryption.KeyID, el.LessonID)
		if errors.Is(err, store.ErrRevoked) {
			err = fmt.Errorf("%w: %w", protocol.ErrAlreadyRevoked, err)
		}
		return nil, fmt.Errorf("publish %s: %w", el.LessonID, err)
	}
	if el.Publication.Visibility == protocol.VisibilityPublic {
		n.announce(ctx, &protocol.Announcement{Type: protocol.MsgPublication, EncryptedLesson: el}, el.Publication.Topics)
	}
	var notices []api.NoticeStatus
	if oldKeyID != "" && oldKeyID != el.Encryption.KeyID {
		notices = n.keys.Retire(ctx, oldKeyID, policy)
	} else {
		notices = n.keys.Deposit(ctx, policy)
	}
	out := &api.EncryptedPublication{EncryptedLesson: el, Notices: nonNilNotices(notices)}
	if info, err := n.keys.KeyOf(ctx, el.Encryption.KeyID); err == nil {
		out.Key = *info
	}
	return out, nil
}

func nonNilNotices(s []api.NoticeStatus) []api.NoticeStatus {
	if s == nil {
		return []api.NoticeStatus{}
	}
	return s
}

// ExportEncrypted returns the EncryptedLesson of a record published
// encrypted, or of a lesson by its key (as Get finds it). It holds no
// plaintext: anyone can verify its signature, only the readers the policy
// admits can read it.
func (n *Node) ExportEncrypted(ctx context.Context, id string) (*protocol.EncryptedLesson, error) {
	key, err := n.resolveKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	if key != "" {
		lessonID, nodeID, _ := protocol.ParseKey(key)
		if nodeID != n.id.String() {
			f, err := n.lookup(ctx, key)
			switch {
			case err != nil:
				return nil, fmt.Errorf("export %s: %w", key, err)
			case f.el != nil:
				return f.el, nil
			case f.sl != nil:
				return nil, fmt.Errorf("export %s: %w: it is published signed, not encrypted", key, protocol.ErrUnknownLesson)
			case f.rev != nil:
				return nil, fmt.Errorf("export %s: %w", key, protocol.ErrAlreadyRevoked)
			}
			return nil, fmt.Errorf("export %s: %w", key, f.notFound())
		}
		id = lessonID
	}
	el, err := n.store.EncryptedPublication(ctx, id)
	if err == nil {
		return el, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := n.store.Publication(ctx, id); perr == nil {
			return nil, fmt.Errorf("export %s: %w: it is published signed, not encrypted: mesh export %s prints its SignedLesson", id, protocol.ErrUnknownLesson, id)
		}
		if _, gerr := n.store.Get(ctx, id); gerr == nil {
			return nil, fmt.Errorf("export %s: %w: the record is not published; run: mesh publish %s --encrypt", id, protocol.ErrUnknownLesson, id)
		}
		return nil, fmt.Errorf("export %s: %w: %w", id, protocol.ErrUnknownLesson, err)
	}
	return nil, fmt.Errorf("export %s: %w", id, err)
}

// RevokeHard revokes a lesson published encrypted and kills its keys: they
// are deleted and marked revoked in one durable commit first (KEY_REVOKED
// forever, across restarts and kill -9), then the standard revocation is
// kept and announced, then pushed to every reader the key was given to and
// every escrow node, which delete what they hold. A lesson published
// signed has no key to delete: RevokeHard refuses it (use Revoke).
func (n *Node) RevokeHard(ctx context.Context, id, reason string) (*api.HardRevokeResult, error) {
	rev, res, err := n.revoke(ctx, id, reason, true)
	if err != nil {
		return nil, err
	}
	res.Revocation = rev
	return res, nil
}

// KeyList lists the keys this node holds and those it knows revoked.
func (n *Node) KeyList(ctx context.Context) ([]api.KeyInfo, error) {
	list, err := n.keys.List(ctx)
	if list == nil && err == nil {
		list = []api.KeyInfo{}
	}
	return list, err
}

// KeyPolicySet replaces the policy of the key of record id, published
// encrypted.
func (n *Node) KeyPolicySet(ctx context.Context, id string, opts api.PolicyOptions) (*api.KeyInfo, error) {
	cur, err := n.encryptedPublication(ctx, id)
	if err != nil {
		return nil, err
	}
	info, _, err := n.keys.SetPolicy(ctx, cur.Encryption.KeyID, opts)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", id, err)
	}
	return info, nil
}

// KeyRotate re-encrypts record id (as it is now) under a new key with the
// same policy, publishes it (the newer publishedAt supersedes the old
// version everywhere), and retires the old key: KEY_REVOKED from then on,
// its escrow shares deleted, its readers told to drop it.
func (n *Node) KeyRotate(ctx context.Context, id string) (*api.EncryptedPublication, error) {
	cur, err := n.encryptedPublication(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, err := n.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", id, err)
	}
	pub := protocol.Publication{Visibility: cur.Publication.Visibility, PublishedAt: n.nextPublishedAt(ctx, id), Topics: cur.Publication.Topics}
	el, policy, err := n.keys.Rotate(ctx, rec, pub, cur.Encryption.KeyID)
	if err != nil {
		return nil, err
	}
	return n.putEncrypted(ctx, el, policy, cur.Encryption.KeyID)
}

// encryptedPublication is this node's encrypted publication of id, or an
// error that says what id is instead.
func (n *Node) encryptedPublication(ctx context.Context, id string) (*protocol.EncryptedLesson, error) {
	if err := protocol.ValidateID(id); err != nil {
		return nil, err
	}
	el, err := n.store.EncryptedPublication(ctx, id)
	if err == nil {
		return el, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := n.store.Publication(ctx, id); perr == nil {
			return nil, fmt.Errorf("%s: %w: it is published signed; publish it with --encrypt to give it a key", id, keys.ErrNotEncrypted)
		}
		if n.store.Revoked(ctx, id+"@"+n.id.String()) {
			return nil, fmt.Errorf("%s: %w", id, protocol.ErrAlreadyRevoked)
		}
		return nil, fmt.Errorf("%s: %w: it is not published encrypted", id, protocol.ErrUnknownLesson)
	}
	return nil, err
}

// ReadLesson finds the lesson key (here, in the cache, at its publisher,
// at a connected peer), verifies it and, for one published encrypted,
// decrypts it with its key (see keys.Service.Read). The plaintext is not
// stored: it stays in the key subsystem's memory until the key's
// expiresAt.
func (n *Node) ReadLesson(ctx context.Context, key string) (*api.ReadResult, error) {
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, err
	}
	f, err := n.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	res := &api.ReadResult{Key: key, From: f.rep.Source}
	switch {
	case f.el != nil:
		plain, err := n.keys.Read(ctx, f.el)
		if err != nil {
			return nil, err
		}
		res.Lesson, res.Encrypted, res.KeyID, res.KeyFrom = plain.Lesson, true, plain.KeyID, plain.From
		res.ExpiresAt, res.PublishedAt = plain.ExpiresAt.UnixMilli(), f.el.Publication.PublishedAt
	case f.sl != nil:
		if err := protocol.Verify(f.sl, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		l := f.sl.Lesson
		res.Lesson, res.PublishedAt = &l, f.sl.Publication.PublishedAt
	case f.rev != nil:
		return nil, fmt.Errorf("read %s: %w: revoked at %s (a lesson published encrypted is unreadable for good: its key is revoked)",
			key, protocol.ErrAlreadyRevoked, time.UnixMilli(f.rev.RevokedAt).UTC().Format(time.RFC3339))
	default:
		return nil, fmt.Errorf("read %s: %w", key, f.notFound())
	}
	return res, nil
}

// KeyStatus verifies el and says whether its key is still available to
// this node (fetching it if need be; nothing is decrypted).
func (n *Node) KeyStatus(ctx context.Context, el *protocol.EncryptedLesson) (*api.KeyStatus, error) {
	if el == nil {
		return nil, fmt.Errorf("%w: no encrypted lesson", protocol.ErrInvalid)
	}
	if err := protocol.VerifyEncrypted(el, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		return nil, err
	}
	return n.keys.Status(ctx, el), nil
}

// keysOnIdentified tells the key subsystem a peer is there: it sends the
// notices kept for it.
func (n *Node) keysOnIdentified(e event.EvtPeerIdentificationCompleted) {
	n.keys.PeerSeen(e.Peer)
}

// relearnAll re-learns from every connected peer (but blocked and limited
// ones), at once, the revocations they hold of the lessons of publishers
// (this node's, and those of the authors whose escrow shares it holds).
// It succeeds if one peer answered.
func (n *Node) relearnAll(ctx context.Context, publishers []string) error {
	var peers []peer.ID
	for _, p := range n.host.Network().Peers() {
		if !n.trust.Blocked(p.String()) && !n.trust.Limited(p.String()) {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		return errors.New("no peer to ask")
	}
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.relearn(ctx, p, publishers)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// relearn pulls from p every revocation it holds of the lessons of
// publishers, from the start of p's log (not from a checkpoint: a node
// restored from an old backup must hear again what it revoked since the
// backup), and applies them. It takes nothing else from the answers.
func (n *Node) relearn(ctx context.Context, p peer.ID, pubs []string) error {
	req := protocol.SyncRequest{Type: protocol.MsgSyncRequest, Publishers: pubs, Limit: protocol.MaxSyncPage}
	for range 100000 {
		b, _ := req.Encode()
		ans, err := streamrpc.Call(ctx, n.host, p, protocol.ProtocolSync, b, protocol.MaxSyncResponseSize)
		if err != nil {
			return fmt.Errorf("relearn from %s: %w", p, err)
		}
		resp, err := protocol.DecodeSyncResponse(ans)
		if err != nil {
			return fmt.Errorf("relearn from %s: %w", p, err)
		}
		for _, rev := range resp.Revocations {
			if !slices.Contains(pubs, rev.NodeID) || protocol.VerifyRevocation(rev, protocol.VerifyOptions{Now: n.now(), AllowOld: true}) != nil {
				continue
			}
			if n.ingest(ctx, nil, nil, rev) {
				n.log.Info("re-learned a revocation from a peer", "peer", p.String(), "lesson", rev.LessonID)
			}
		}
		if !resp.HasMore || resp.Checkpoint == "" || resp.Checkpoint == req.Checkpoint {
			return nil
		}
		req.Checkpoint = resp.Checkpoint
	}
	return nil
}
