package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// handleSync answers /mesh/sync/1.0.0: one page of the sync log.
func (n *Node) handleSync(ctx context.Context, r *streamrpc.Request) []byte {
	if r.Err != nil {
		return nil
	}
	req, err := protocol.DecodeSyncRequest(r.Body)
	if err != nil {
		n.log.Debug("bad sync request", "peer", r.From.String(), "err", err)
		return nil
	}
	after, err := parseCheckpoint(req.Checkpoint)
	if err != nil {
		return nil
	}
	entries, next, more, err := n.store.Log(ctx, after, req.Limit, store.LogFilter{Since: req.Since, Topics: req.Topics, Publishers: req.Publishers})
	if err != nil {
		n.log.Warn("sync log", "err", err)
		return nil
	}
	resp := &protocol.SyncResponse{Type: protocol.MsgSyncResponse, Checkpoint: formatCheckpoint(next), HasMore: more}
	// A page holds what fits the answer's cap: large lessons (an encrypted
	// one is the base64 of up to 128 KiB) end it early, and the rest comes
	// with the next page.
	size := 0
	for i, e := range entries {
		n := syncEntrySize(e)
		if i > 0 && size+n > syncPageBudget {
			resp.Checkpoint, resp.HasMore = formatCheckpoint(entries[i-1].Seq), true
			break
		}
		size += n
		switch {
		case e.Lesson != nil && e.Lesson.Publication.Visibility == protocol.VisibilityPublic:
			resp.Lessons = append(resp.Lessons, e.Lesson)
		case e.Encrypted != nil && e.Encrypted.Publication.Visibility == protocol.VisibilityPublic:
			resp.EncryptedLessons = append(resp.EncryptedLessons, e.Encrypted)
		case e.Revocation != nil:
			resp.Revocations = append(resp.Revocations, e.Revocation)
		}
	}
	b, err := resp.Encode()
	if err != nil {
		return nil
	}
	return b
}

// syncPageBudget is what the records of one sync answer may take, leaving
// room under protocol.MaxSyncResponseSize for the envelope.
const syncPageBudget = protocol.MaxSyncResponseSize - 64<<10

// syncEntrySize is the encoded size of a log entry's record (0 if it does
// not encode: it is then left out anyway).
func syncEntrySize(e store.LogEntry) int {
	var b []byte
	switch {
	case e.Lesson != nil:
		b, _ = e.Lesson.Encode()
	case e.Encrypted != nil:
		b, _ = e.Encrypted.Encode()
	case e.Revocation != nil:
		b, _ = json.Marshal(e.Revocation)
	}
	return len(b) + 1
}

func formatCheckpoint(seq uint64) string { return fmt.Sprintf("%016x", seq) }

func parseCheckpoint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: checkpoint %q", protocol.ErrInvalid, s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return 0, fmt.Errorf("%w: checkpoint %q", protocol.ErrInvalid, s)
	}
	return strconv.ParseUint(s, 16, 64)
}

// Sync runs a catch-up sync with every connected peer, one after another.
func (n *Node) Sync(ctx context.Context, progress func(api.SyncProgress)) error {
	if n.host == nil {
		return api.ErrOffline
	}
	var errs []error
	for _, p := range n.host.Network().Peers() {
		if ok, _ := n.host.Peerstore().SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolSync)); len(ok) == 0 {
			continue
		}
		if _, err := n.SyncWith(ctx, p, progress); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncOnIdentified syncs with a peer once it is identified and speaks the
// sync protocol, so a node back from offline catches up on the lessons and
// revocations it missed. Limited peers are searched, never synced from.
func (n *Node) syncOnIdentified(e event.EvtPeerIdentificationCompleted) {
	if !slices.Contains(e.Protocols, libp2pproto.ID(protocol.ProtocolSync)) ||
		n.trust.Blocked(e.Peer.String()) || n.trust.Limited(e.Peer.String()) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if _, err := n.SyncWith(n.ctx, e.Peer, nil); err != nil && n.ctx.Err() == nil {
			n.log.Debug("sync", "peer", e.Peer.String(), "err", err)
		}
	}()
}

// catchUpSpacing is the least time between two catch-up syncs with one
// peer: meshes churn, and a queue that overflows does so many times over.
const catchUpSpacing = 5 * time.Second

// catchUp syncs with p soon, because this node may have missed messages
// p holds (pubsub.Config.CatchUp): p is the first peer of one of its
// meshes, or a full queue here dropped a message p sent. It is called
// from GossipSub's event loop, so the sync runs in a goroutine of its
// own, one per peer at a time, catchUpSpacing apart (n.catchUps).
func (n *Node) catchUp(p peer.ID) {
	if n.ctx.Err() != nil || n.host == nil {
		return
	}
	n.catchUps.Do(n.ctx, p, func(f func()) {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			f()
		}()
	})
}

// catchUpWith is one catch-up sync with p, if p is a peer to sync from.
func (n *Node) catchUpWith(ctx context.Context, p peer.ID) {
	if !n.catchesUpWith(p) {
		return
	}
	if _, err := n.SyncWith(ctx, p, nil); err != nil && ctx.Err() == nil {
		n.log.Debug("catch-up sync", "peer", p.String(), "err", err)
	}
}

// catchesUpWith reports whether p is a peer to sync from: it speaks the
// sync protocol, and is neither blocked nor limited.
func (n *Node) catchesUpWith(p peer.ID) bool {
	if ok, _ := n.host.Peerstore().SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolSync)); len(ok) == 0 {
		return false
	}
	return !n.trust.Blocked(p.String()) && !n.trust.Limited(p.String())
}

// SyncWith pulls from peer p, page by page, every public lesson on the
// followed topics and feeds and every revocation it has since the last
// checkpoint with that peer, verifies each, and stores it. Checkpoints persist
// across restarts. progress, if not nil, is called after each page.
func (n *Node) SyncWith(ctx context.Context, p peer.ID, progress func(api.SyncProgress)) (api.SyncProgress, error) {
	prog := api.SyncProgress{Peer: p.String()}
	if n.host == nil {
		return prog, api.ErrOffline
	}
	defer func() { n.metrics.Synced(&prog) }()
	topics, feeds, err := n.Following(ctx)
	if err != nil {
		return prog, err
	}
	// One pass per kind of subscription: topics, then feeds.
	for _, pass := range []protocol.SyncRequest{{Topics: topics}, {Publishers: feeds}} {
		if len(pass.Topics) == 0 && len(pass.Publishers) == 0 {
			continue
		}
		if err := n.syncPass(ctx, p, pass, &prog, progress); err != nil {
			return prog, err
		}
	}
	prog.Done = true
	if progress != nil {
		progress(prog)
	}
	return prog, nil
}

// peerLock returns the mutex that serializes syncs with peer p.
func (n *Node) peerLock(p peer.ID) *sync.Mutex {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	if n.syncLocks == nil {
		n.syncLocks = make(map[peer.ID]*sync.Mutex)
	}
	mu, ok := n.syncLocks[p]
	if !ok {
		mu = new(sync.Mutex)
		n.syncLocks[p] = mu
	}
	return mu
}

func (n *Node) syncPass(ctx context.Context, p peer.ID, req protocol.SyncRequest, prog *api.SyncProgress, progress func(api.SyncProgress)) error {
	mu := n.peerLock(p)
	mu.Lock()
	defer mu.Unlock()

	sum := sha256.Sum256([]byte(strings.Join(req.Topics, ",") + "|" + strings.Join(req.Publishers, ",")))
	cpKey := "sync/" + p.String() + "/" + hex.EncodeToString(sum[:8])
	if b, err := n.store.GetMeta(ctx, cpKey); err == nil {
		req.Checkpoint = string(b)
	}
	req.Type = protocol.MsgSyncRequest
	req.Limit = protocol.MaxSyncPage
	for page := 0; page < 100000; page++ {
		b, _ := req.Encode()
		ans, err := streamrpc.Call(ctx, n.host, p, protocol.ProtocolSync, b, protocol.MaxSyncResponseSize)
		if err != nil {
			return fmt.Errorf("sync with %s: %w", p, err)
		}
		resp, err := protocol.DecodeSyncResponse(ans)
		if err != nil {
			return fmt.Errorf("sync with %s: %w", p, err)
		}
		if _, err := parseCheckpoint(resp.Checkpoint); err != nil {
			return fmt.Errorf("sync with %s: %w", p, err)
		}
		prog.Pages++
		// Items of the page that did not even decode were left out
		// (protocol.SyncResponse.Invalid): counted, not fatal.
		prog.Received += resp.Invalid
		prog.Invalid += resp.Invalid
		for _, sl := range resp.Lessons {
			prog.Received++
			if err := n.acceptSynced(sl, nil, nil); err != nil {
				if errors.Is(err, protocol.ErrUntrusted) {
					prog.Untrusted++
					n.refused(sl.Signature.NodeID, sl.Key(), sl.Publication.Topics, p)
				} else {
					prog.Invalid++
				}
				continue
			}
			if n.ingest(ctx, sl, nil, nil) {
				prog.Lessons++
			}
		}
		for _, el := range resp.EncryptedLessons {
			prog.Received++
			if err := n.acceptSynced(nil, el, nil); err != nil {
				if errors.Is(err, protocol.ErrUntrusted) {
					prog.Untrusted++
					n.refused(el.Signature.NodeID, el.Key(), el.Publication.Topics, p)
				} else {
					prog.Invalid++
				}
				continue
			}
			if n.ingest(ctx, nil, el, nil) {
				prog.Lessons++
			}
		}
		for _, rev := range resp.Revocations {
			prog.Received++
			if err := n.acceptSynced(nil, nil, rev); err != nil {
				if !errors.Is(err, protocol.ErrUntrusted) {
					prog.Invalid++
				}
				continue
			}
			if n.ingest(ctx, nil, nil, rev) {
				prog.Revocations++
			}
		}
		if resp.Checkpoint != "" {
			req.Checkpoint = resp.Checkpoint
			if err := n.store.SetMeta(ctx, cpKey, []byte(resp.Checkpoint)); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(*prog)
		}
		if !resp.HasMore {
			return nil
		}
	}
	return nil
}

// acceptSynced verifies a record received by sync: any past signing time is
// fine (it may have been published while we were away), the future is not,
// and lessons (signed or encrypted) must be public.
func (n *Node) acceptSynced(sl *protocol.SignedLesson, el *protocol.EncryptedLesson, rev *protocol.Revocation) error {
	opts := protocol.VerifyOptions{Now: n.now(), AllowOld: true}
	if sl != nil || el != nil {
		var pub *protocol.Publication
		var publisher string
		if sl != nil {
			if err := protocol.Verify(sl, opts); err != nil {
				return err
			}
			pub, publisher = &sl.Publication, sl.Signature.NodeID
		} else {
			if err := protocol.VerifyEncrypted(el, opts); err != nil {
				return err
			}
			pub, publisher = &el.Publication, el.Signature.NodeID
		}
		if pub.Visibility != protocol.VisibilityPublic {
			return fmt.Errorf("%w: synced lesson is not public", protocol.ErrInvalid)
		}
		if !n.acceptsPublisher(publisher) {
			return fmt.Errorf("%w: %s", protocol.ErrUntrusted, publisher)
		}
		return nil
	}
	if err := protocol.VerifyRevocation(rev, opts); err != nil {
		return err
	}
	// A revocation can only take something away, and only its author can
	// sign one: accept it for a lesson held, or from a publisher accepted.
	if _, held := n.store.HeldVersion(context.Background(), rev.Key()); !held && !n.acceptsPublisher(rev.NodeID) {
		return fmt.Errorf("%w: %s", protocol.ErrUntrusted, rev.NodeID)
	}
	return nil
}
