package node

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// streamTimeout bounds one request/answer exchange on a stream.
const streamTimeout = 20 * time.Second

// handleFetch answers /mesh/fetch/1.0.0: one lesson by its exact key.
// Only lessons that were published (public or unlisted) are ever answered;
// a private record has no publication and so is unknown to this handler.
func (n *Node) handleFetch(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	ctx, cancel := context.WithTimeout(n.ctx, streamTimeout)
	defer cancel()
	resp := &protocol.FetchResponse{Type: protocol.MsgFetchResponse}
	data, err := frame.Read(bufio.NewReader(s), protocol.MaxFetchRequestSize)
	if err == nil {
		var req *protocol.FetchRequest
		if req, err = protocol.DecodeFetchRequest(data); err == nil {
			resp.SignedLesson, resp.Revocation, err = n.lookupFetchable(ctx, req.Key)
		}
	}
	if err != nil {
		e := protocol.NewError(err)
		resp.Error = &e
	}
	b, err := resp.Encode()
	if err != nil {
		s.Reset()
		return
	}
	_ = frame.Write(s, b)
}

// lookupFetchable finds what may be handed out for key: a tombstone first,
// then this node's own publication, then a cached remote lesson.
func (n *Node) lookupFetchable(ctx context.Context, key string) (*protocol.SignedLesson, *protocol.Revocation, error) {
	if rev, err := n.store.Tombstone(ctx, key); err == nil {
		return nil, rev, nil
	}
	lessonID, nodeID, err := protocol.ParseKey(key)
	if err != nil {
		return nil, nil, err
	}
	var sl *protocol.SignedLesson
	if nodeID == n.id.String() {
		sl, err = n.store.Publication(ctx, lessonID)
	} else {
		sl, err = n.store.Remote(ctx, key)
	}
	if err != nil || (sl.Publication.Visibility != protocol.VisibilityPublic && sl.Publication.Visibility != protocol.VisibilityUnlisted) {
		return nil, nil, fmt.Errorf("%w: %s", protocol.ErrUnknownLesson, key)
	}
	return sl, nil, nil
}

// handleSync answers /mesh/sync/1.0.0: one page of the sync log.
func (n *Node) handleSync(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	ctx, cancel := context.WithTimeout(n.ctx, streamTimeout)
	defer cancel()
	data, err := frame.Read(bufio.NewReader(s), protocol.MaxSyncRequestSize)
	if err != nil {
		s.Reset()
		return
	}
	req, err := protocol.DecodeSyncRequest(data)
	if err != nil {
		n.log.Debug("bad sync request", "peer", s.Conn().RemotePeer().String(), "err", err)
		s.Reset()
		return
	}
	after, err := parseCheckpoint(req.Checkpoint)
	if err != nil {
		s.Reset()
		return
	}
	entries, next, more, err := n.store.Log(ctx, after, req.Limit, store.LogFilter{Since: req.Since, Topics: req.Topics, Publishers: req.Publishers})
	if err != nil {
		n.log.Warn("sync log", "err", err)
		s.Reset()
		return
	}
	resp := &protocol.SyncResponse{Type: protocol.MsgSyncResponse, Checkpoint: formatCheckpoint(next), HasMore: more}
	for _, e := range entries {
		switch {
		case e.Lesson != nil && e.Lesson.Publication.Visibility == protocol.VisibilityPublic:
			resp.Lessons = append(resp.Lessons, e.Lesson)
		case e.Revocation != nil:
			resp.Revocations = append(resp.Revocations, e.Revocation)
		}
	}
	b, err := resp.Encode()
	if err != nil {
		s.Reset()
		return
	}
	_ = frame.Write(s, b)
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

// roundTrip sends one request frame on a new stream and reads one answer.
func (n *Node) roundTrip(ctx context.Context, p peer.ID, proto string, req []byte, max int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, proto), p, libp2pproto.ID(proto))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := frame.Write(s, req); err != nil {
		s.Reset()
		return nil, err
	}
	// The answer is what counts: a peer that answers before our half-close
	// lands may already have closed its side (over QUIC, CloseWrite then
	// fails with "canceled stream"), and its answer is still there to read.
	_ = s.CloseWrite()
	b, err := frame.Read(bufio.NewReader(s), max)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return b, nil
}

// Fetch asks peer p for the lesson key (lessonId@nodeId) over
// /mesh/fetch/1.0.0 and verifies what comes back. A revoked lesson answers
// with its verified revocation and an error wrapping ErrAlreadyRevoked.
func (n *Node) Fetch(ctx context.Context, p peer.ID, key string) (*protocol.SignedLesson, *protocol.Revocation, error) {
	if n.host == nil {
		return nil, nil, ErrOffline
	}
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, nil, err
	}
	req, _ := (&protocol.FetchRequest{Type: protocol.MsgFetch, Key: key}).Encode()
	b, err := n.roundTrip(ctx, p, protocol.ProtocolFetch, req, protocol.MaxFetchResponseSize)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s from %s: %w", key, p, err)
	}
	resp, err := protocol.DecodeFetchResponse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s from %s: %w", key, p, err)
	}
	if resp.Error != nil {
		return nil, nil, protocol.ErrorFor(resp.Error.Code, resp.Error.Message)
	}
	if resp.Revocation != nil {
		if resp.Revocation.Key() != key {
			return nil, nil, fmt.Errorf("fetch %s: %w: answer is about %s", key, protocol.ErrInvalid, resp.Revocation.Key())
		}
		if err := protocol.VerifyRevocation(resp.Revocation, protocol.VerifyOptions{AllowOld: true}); err != nil {
			return nil, nil, fmt.Errorf("fetch %s: revocation: %w", key, err)
		}
		return nil, resp.Revocation, fmt.Errorf("%s: %w", key, protocol.ErrAlreadyRevoked)
	}
	sl := resp.SignedLesson
	if sl.Key() != key {
		return nil, nil, fmt.Errorf("fetch %s: %w: answer is %s", key, protocol.ErrInvalid, sl.Key())
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{AllowOld: true}); err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", key, err)
	}
	return sl, nil, nil
}

// ErrOffline is returned by network operations of an offline node.
var ErrOffline = errors.New("node is offline")
