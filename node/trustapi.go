package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// TrustSet adds or changes a direct trust edge (full, limited, or none to
// block). It takes effect at once.
func (n *Node) TrustSet(ctx context.Context, nodeID string, level trust.Level, note string) error {
	if err := n.trust.Set(nodeID, level, note); err != nil {
		return err
	}
	if level == trust.LevelNone {
		return n.dropBlocked(ctx, nodeID)
	}
	return nil
}

// dropBlocked takes a blocked publisher's lessons out of every read path
// at once: the cache of received lessons (search, get, list, directory
// answers) and the list of refused publishers. Gossip stops forwarding
// them by itself: the validator asks the trust graph.
func (n *Node) dropBlocked(ctx context.Context, nodeID string) error {
	n.pending.Take(nodeID)
	if _, err := n.store.DropPublisher(ctx, nodeID); err != nil {
		return fmt.Errorf("block %s: %w", nodeID, err)
	}
	return nil
}

// TrustRemove removes a direct edge and every path through it.
func (n *Node) TrustRemove(ctx context.Context, nodeID string) error {
	return n.trust.Remove(nodeID)
}

// TrustList lists direct edges and the nodes trusted through vouches.
func (n *Node) TrustList(ctx context.Context) ([]api.TrustEntry, error) {
	var out []api.TrustEntry
	seen := map[string]bool{}
	for _, e := range n.trust.Edges() {
		seen[e.NodeID] = true
		row := api.TrustEntry{NodeID: e.NodeID, Level: e.Level, Hops: 1, Note: e.Note}
		if e.Level != trust.LevelNone {
			row.Score = trust.Score(1)
		}
		out = append(out, row)
	}
	for _, v := range n.trust.Vouches() {
		for _, id := range v.Trusts {
			if seen[id] || id == n.id.String() {
				continue
			}
			hops, score, ok := n.trust.Path(id)
			if !ok || len(hops) < 3 {
				continue
			}
			seen[id] = true
			out = append(out, api.TrustEntry{NodeID: id, Level: trust.LevelFull, Hops: len(hops) - 1, Score: score, Via: hops[1]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Hops != out[j].Hops {
			return out[i].Hops < out[j].Hops
		}
		return out[i].NodeID < out[j].NodeID
	})
	return out, nil
}

// TrustPath reports the trust path to nodeID.
func (n *Node) TrustPath(ctx context.Context, nodeID string) (*api.TrustPathInfo, error) {
	if _, err := peer.Decode(nodeID); err != nil {
		return nil, fmt.Errorf("%w: node id %q", protocol.ErrInvalid, nodeID)
	}
	info := &api.TrustPathInfo{NodeID: nodeID, Blocked: n.trust.Blocked(nodeID), Limited: n.trust.Limited(nodeID)}
	info.Hops, info.Score, info.Trusted = n.trust.Path(nodeID)
	return info, nil
}

// TrustExport returns the direct edges as JSON, for mesh trust import elsewhere.
func (n *Node) TrustExport(ctx context.Context) ([]byte, error) { return n.trust.Export() }

// TrustImport adds the edges of an export; existing edges are never changed.
func (n *Node) TrustImport(ctx context.Context, data []byte) (int, error) {
	added, err := n.trust.Import(data)
	if err != nil {
		return added, err
	}
	for _, e := range n.trust.Edges() {
		if e.Level == trust.LevelNone {
			if err := n.dropBlocked(ctx, e.NodeID); err != nil {
				return added, err
			}
		}
	}
	return added, nil
}

// Referrals lists the signed referrals received from peers.
func (n *Node) Referrals(ctx context.Context) ([]*protocol.Referral, error) {
	return n.trust.Referrals(), nil
}

// VerifyKey finds the lesson key (lessonId@nodeId) — in the local cache,
// else from its publisher, else from any connected peer that has it —
// verifies its signature, asks the publisher whether it was revoked (or says
// which cache answered), and reports the trust path to the publisher.
func (n *Node) VerifyKey(ctx context.Context, key string) (*api.VerifyReport, error) {
	lessonID, nodeID, err := protocol.ParseKey(key)
	if err != nil {
		return nil, err
	}
	f := &verifyFind{rep: &api.VerifyReport{Key: key, NodeID: nodeID}}
	n.findLocally(ctx, f, lessonID)
	if n.host != nil && nodeID != n.id.String() {
		// Even with a copy here: the publisher says whether it revoked it.
		n.askPublisher(ctx, f)
		if f.sl == nil && f.el == nil && f.rev == nil {
			n.askPeers(ctx, f)
		}
	}
	rep, sl, rev := f.rep, f.sl, f.rev
	switch {
	case rev != nil:
		rep.Revoked = true
		rep.RevocationSource = "revoked: " + revocationSource(f.askedPublisher, rev)
	case f.askedPublisher:
		rep.RevocationSource = "the publisher says it is not revoked"
	case nodeID == n.id.String() && (sl != nil || f.el != nil):
		rep.RevocationSource = "this node published it and has not revoked it"
	case nodeID == n.id.String():
		rep.RevocationSource = "not checked: this node holds no such lesson"
	default:
		rep.RevocationSource = "publisher unreachable; no revocation in this node's cache"
	}
	rep.TrustPath, rep.TrustScore, rep.Trusted = n.trust.Path(nodeID)
	if sl == nil && f.el != nil {
		n.checkEncrypted(ctx, rep, f.el, rev != nil)
		return rep, nil
	}
	if sl == nil {
		rep.Error = f.notFound().Error()
		if rev != nil {
			rep.Error = fmt.Sprintf("%v: %s", protocol.ErrAlreadyRevoked, key)
		}
		return rep, nil
	}
	n.checkSignature(rep, sl)
	rep.Carried = carriedReport(sl)
	return rep, nil
}

// carriedReport checks the sensor proof of a carried reading; nil if sl
// carries none.
func carriedReport(sl *protocol.SignedLesson) *api.CarriedReport {
	c, carried, err := protocol.CheckCarried(&sl.Lesson)
	if !carried {
		return nil
	}
	r := &api.CarriedReport{Carrier: sl.Signature.NodeID}
	json.Unmarshal(sl.Lesson.Extra[protocol.CarriedViaField], &r.Via) // absent: ""
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Valid, r.Sensor, r.Seq = true, c.Sensor, c.Record.Seq
	if c.Stream != nil {
		r.Stream = c.Stream.Name
	}
	return r
}

// verifyFind is what VerifyKey found of a lesson so far.
type verifyFind struct {
	rep            *api.VerifyReport
	sl             *protocol.SignedLesson
	el             *protocol.EncryptedLesson
	rev            *protocol.Revocation
	askedPublisher bool
	publisherErr   error // why the publisher could not be asked, if it could not
}

// lookup finds the lesson key names: here (this node's publication, a
// received copy, a tombstone), else at its publisher, else at a connected
// peer. What it found is in the verifyFind; nothing found is no error (an
// offline node that holds nothing is one).
func (n *Node) lookup(ctx context.Context, key string) (*verifyFind, error) {
	lessonID, nodeID, err := protocol.ParseKey(key)
	if err != nil {
		return nil, err
	}
	f := &verifyFind{rep: &api.VerifyReport{Key: key, NodeID: nodeID}}
	n.findLocally(ctx, f, lessonID)
	if f.sl != nil || f.el != nil || f.rev != nil || nodeID == n.id.String() {
		return f, nil
	}
	if n.host == nil {
		return nil, fmt.Errorf("%w: %s is not held here, and an offline node cannot ask its publisher", api.ErrOffline, key)
	}
	n.askPublisher(ctx, f)
	if f.sl == nil && f.el == nil && f.rev == nil {
		n.askPeers(ctx, f)
	}
	return f, nil
}

// notFound says why nothing was found: UNREACHABLE (naming the publisher)
// if the publisher could not be asked, else UNKNOWN_LESSON.
func (f *verifyFind) notFound() error {
	if f.publisherErr != nil {
		return fmt.Errorf("%w: %s is not held here or by a connected peer, and its publisher %s could not be reached: %v", protocol.ErrUnreachable, f.rep.Key, f.rep.NodeID, f.publisherErr)
	}
	return fmt.Errorf("%w: %s was not found here, at its publisher, or at any connected peer", protocol.ErrUnknownLesson, f.rep.Key)
}

// findLocally looks the lesson and its tombstone up in the store.
func (n *Node) findLocally(ctx context.Context, f *verifyFind, lessonID string) {
	var err error
	if f.rep.NodeID == n.id.String() {
		f.sl, err = n.store.Publication(ctx, lessonID)
		f.rep.Source = "this node"
		if err != nil {
			if el, eerr := n.store.EncryptedPublication(ctx, lessonID); eerr == nil {
				f.el = el
			}
		}
	} else {
		f.sl, err = n.store.Remote(ctx, f.rep.Key)
		f.rep.Source = "local cache"
		if err != nil {
			if el, eerr := n.store.RemoteEncrypted(ctx, f.rep.Key); eerr == nil {
				f.el = el
			}
		}
	}
	if err != nil {
		f.sl = nil
	}
	if tomb, err := n.store.Tombstone(ctx, f.rep.Key); err == nil {
		f.rev = tomb
	}
}

// askPublisher asks the publisher, when it can be reached, for the lesson
// if this node lacks it, and in any case for its revocation status.
func (n *Node) askPublisher(ctx context.Context, f *verifyFind) {
	publisher, _ := peer.Decode(f.rep.NodeID)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	got, gotEnc, grev, err := n.fetchAny(fctx, publisher, f.rep.Key)
	cancel()
	held := int64(0)
	if f.sl != nil {
		held = f.sl.Publication.PublishedAt
	} else if f.el != nil {
		held = f.el.Publication.PublishedAt
	}
	switch {
	case err == nil && gotEnc != nil:
		f.askedPublisher = true
		if gotEnc.Publication.PublishedAt > held {
			f.sl, f.el, f.rep.Source = nil, gotEnc, "publisher"
		}
	case err == nil:
		f.askedPublisher = true
		if got.Publication.PublishedAt > held {
			f.sl, f.el, f.rep.Source = got, nil, "publisher"
		}
	case errors.Is(err, protocol.ErrAlreadyRevoked) && grev != nil:
		f.askedPublisher, f.rev = true, grev
	case errors.Is(err, protocol.ErrUnknownLesson):
		f.askedPublisher = true
	case err != nil:
		f.publisherErr = err
	}
}

// askPeers asks the connected peers other than the publisher, one after
// another, until one has the lesson or its revocation.
func (n *Node) askPeers(ctx context.Context, f *verifyFind) {
	for _, p := range n.host.Network().Peers() {
		if p.String() == f.rep.NodeID || n.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, gotEnc, grev, err := n.fetchAny(fctx, p, f.rep.Key)
		cancel()
		if err == nil {
			f.sl, f.el, f.rep.Source = got, gotEnc, "peer "+p.String()
			return
		}
		if grev != nil {
			f.rev = grev
			return
		}
	}
}

// checkSignature verifies the lesson found and fills the report with it.
func (n *Node) checkSignature(rep *api.VerifyReport, sl *protocol.SignedLesson) {
	rep.Lesson = sl
	rep.Timestamp, rep.PublishedAt = sl.Signature.Timestamp, sl.Publication.PublishedAt
	if pk, err := base64.StdEncoding.DecodeString(sl.Signature.PublicKey); err == nil && len(pk) == 32 {
		rep.Fingerprint = protocol.Fingerprint(pk)
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		rep.Error = err.Error()
		return
	}
	rep.Valid = sl.Key() == rep.Key
	if !rep.Valid {
		rep.Error = fmt.Sprintf("%v: got %s", protocol.ErrInvalid, sl.Key())
	}
}

// checkEncrypted verifies an encrypted lesson found, fills the report
// with it, and says whether its key is still available to this node (a
// revoked lesson's is not: nothing is asked).
func (n *Node) checkEncrypted(ctx context.Context, rep *api.VerifyReport, el *protocol.EncryptedLesson, revoked bool) {
	rep.EncryptedLesson = el
	rep.Timestamp, rep.PublishedAt = el.Signature.Timestamp, el.Publication.PublishedAt
	if pk, err := base64.StdEncoding.DecodeString(el.Signature.PublicKey); err == nil && len(pk) == 32 {
		rep.Fingerprint = protocol.Fingerprint(pk)
	}
	if err := protocol.VerifyEncrypted(el, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		rep.Error = err.Error()
		return
	}
	rep.Valid = el.Key() == rep.Key
	if !rep.Valid {
		rep.Error = fmt.Sprintf("%v: got %s", protocol.ErrInvalid, el.Key())
		return
	}
	if revoked {
		rep.KeyStatus = &api.KeyStatus{KeyID: el.Encryption.KeyID, Key: el.Key(), Status: api.KeyRevoked, Detail: "the lesson is revoked, and with it its key"}
		return
	}
	rep.KeyStatus = n.keys.Status(ctx, el)
}

func revocationSource(askedPublisher bool, rev *protocol.Revocation) string {
	at := time.UnixMilli(rev.RevokedAt).UTC().Format(time.RFC3339)
	if askedPublisher {
		return "the publisher says so (revoked " + at + ")"
	}
	return "according to this node's tombstones (revoked " + at + ")"
}
