package node

import (
	"context"
	"encoding/base64"
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
	return n.trust.Set(nodeID, level, note)
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
	return n.trust.Import(data)
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
	rep := &api.VerifyReport{Key: key, NodeID: nodeID}
	publisher, _ := peer.Decode(nodeID)
	var sl *protocol.SignedLesson
	var rev *protocol.Revocation

	switch {
	case nodeID == n.id.String():
		sl, err = n.store.Publication(ctx, lessonID)
		rep.Source = "this node"
	default:
		sl, err = n.store.Remote(ctx, key)
		rep.Source = "local cache"
	}
	if err != nil {
		sl = nil
	}
	if tomb, terr := n.store.Tombstone(ctx, key); terr == nil {
		rev = tomb
	}
	// The publisher is asked when it can be reached: for the lesson if we
	// lack it, and in any case for its revocation status.
	askedPublisher := false
	if n.host != nil && nodeID != n.id.String() {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, grev, ferr := n.Fetch(fctx, publisher, key)
		cancel()
		switch {
		case ferr == nil:
			askedPublisher = true
			if sl == nil || got.Publication.PublishedAt > sl.Publication.PublishedAt {
				sl, rep.Source = got, "publisher"
			}
		case errors.Is(ferr, protocol.ErrAlreadyRevoked) && grev != nil:
			askedPublisher, rev = true, grev
		case errors.Is(ferr, protocol.ErrUnknownLesson):
			askedPublisher = true
		}
		if sl == nil && rev == nil {
			for _, p := range n.host.Network().Peers() {
				if p == publisher || n.host.Network().Connectedness(p) != network.Connected {
					continue
				}
				fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				got, grev, ferr := n.Fetch(fctx, p, key)
				cancel()
				if ferr == nil {
					sl, rep.Source = got, "peer "+p.String()
					break
				}
				if grev != nil {
					rev = grev
					break
				}
			}
		}
	}
	switch {
	case rev != nil:
		rep.Revoked = true
		rep.RevocationSource = "revoked: " + revocationSource(askedPublisher, rev)
	case askedPublisher:
		rep.RevocationSource = "the publisher says it is not revoked"
	case nodeID == n.id.String():
		rep.RevocationSource = "this node published it and has not revoked it"
	default:
		rep.RevocationSource = "publisher unreachable; no revocation in this node's cache"
	}
	rep.TrustPath, rep.TrustScore, rep.Trusted = n.trust.Path(nodeID)
	if sl == nil {
		rep.Error = fmt.Sprintf("%v: %s was not found locally, at its publisher, or at any connected peer", protocol.ErrUnknownLesson, key)
		if rev != nil {
			rep.Error = fmt.Sprintf("%v: %s", protocol.ErrAlreadyRevoked, key)
		}
		return rep, nil
	}
	rep.Lesson = sl
	rep.Timestamp, rep.PublishedAt = sl.Signature.Timestamp, sl.Publication.PublishedAt
	if pk, err := base64.StdEncoding.DecodeString(sl.Signature.PublicKey); err == nil && len(pk) == 32 {
		rep.Fingerprint = protocol.Fingerprint(pk)
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		rep.Error = err.Error()
		return rep, nil
	}
	rep.Valid = sl.Key() == key
	if !rep.Valid {
		rep.Error = fmt.Sprintf("%v: got %s", protocol.ErrInvalid, sl.Key())
	}
	return rep, nil
}

func revocationSource(askedPublisher bool, rev *protocol.Revocation) string {
	at := time.UnixMilli(rev.RevokedAt).UTC().Format(time.RFC3339)
	if askedPublisher {
		return "the publisher says so (revoked " + at + ")"
	}
	return "according to this node's tombstones (revoked " + at + ")"
}
