package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// handleFetch answers /mesh/fetch/1.0.0: one lesson by its exact key.
// Only lessons that were published (public or unlisted) are ever answered;
// a private record has no publication and so is unknown to this handler.
func (n *Node) handleFetch(ctx context.Context, r *streamrpc.Request) []byte {
	resp := &protocol.FetchResponse{Type: protocol.MsgFetchResponse}
	err := r.Err
	if err == nil {
		var req *protocol.FetchRequest
		if req, err = protocol.DecodeFetchRequest(r.Body); err == nil {
			resp.SignedLesson, resp.EncryptedLesson, resp.Revocation, err = serving{n}.published(ctx, req.Key)
		}
	}
	resp.Error = protocol.ErrorOf(err)
	return streamrpc.Encode(resp)
}

// Fetch asks peer p for the lesson key (lessonId@nodeId) over
// /mesh/fetch/1.0.0 and verifies what comes back. A revoked lesson answers
// with its verified revocation and an error wrapping ErrAlreadyRevoked. A
// lesson published encrypted is an error wrapping ErrUnknownLesson here:
// FetchEncrypted gets it.
func (n *Node) Fetch(ctx context.Context, p peer.ID, key string) (*protocol.SignedLesson, *protocol.Revocation, error) {
	sl, el, rev, err := n.fetchAny(ctx, p, key)
	if el != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w: it is published encrypted (FetchEncrypted)", key, protocol.ErrUnknownLesson)
	}
	return sl, rev, err
}

// FetchEncrypted is Fetch for a lesson published encrypted: it returns the
// verified EncryptedLesson (the ciphertext; nothing is decrypted). A
// lesson published signed is an error wrapping ErrUnknownLesson here.
func (n *Node) FetchEncrypted(ctx context.Context, p peer.ID, key string) (*protocol.EncryptedLesson, *protocol.Revocation, error) {
	sl, el, rev, err := n.fetchAny(ctx, p, key)
	if sl != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w: it is published signed, not encrypted (Fetch)", key, protocol.ErrUnknownLesson)
	}
	return el, rev, err
}

// fetchAny asks p for the lesson key and verifies the answer: the lesson,
// signed or encrypted, or its revocation (with an error wrapping
// ErrAlreadyRevoked).
func (n *Node) fetchAny(ctx context.Context, p peer.ID, key string) (*protocol.SignedLesson, *protocol.EncryptedLesson, *protocol.Revocation, error) {
	if n.host == nil {
		return nil, nil, nil, api.ErrOffline
	}
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, nil, nil, err
	}
	req, _ := (&protocol.FetchRequest{Type: protocol.MsgFetch, Key: key}).Encode()
	b, err := streamrpc.Call(ctx, n.host, p, protocol.ProtocolFetch, req, protocol.MaxFetchResponseSize)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetch %s from %s: %w", key, p, err)
	}
	resp, err := protocol.DecodeFetchResponse(b)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetch %s from %s: %w", key, p, err)
	}
	if resp.Error != nil {
		return nil, nil, nil, protocol.ErrorFor(resp.Error.Code, resp.Error.Message)
	}
	opts := protocol.VerifyOptions{AllowOld: true}
	switch {
	case resp.Revocation != nil:
		if resp.Revocation.Key() != key {
			return nil, nil, nil, fmt.Errorf("fetch %s: %w: answer is about %s", key, protocol.ErrInvalid, resp.Revocation.Key())
		}
		if err := protocol.VerifyRevocation(resp.Revocation, opts); err != nil {
			return nil, nil, nil, fmt.Errorf("fetch %s: revocation: %w", key, err)
		}
		return nil, nil, resp.Revocation, fmt.Errorf("%s: %w", key, protocol.ErrAlreadyRevoked)
	case resp.EncryptedLesson != nil:
		el := resp.EncryptedLesson
		if el.Key() != key {
			return nil, nil, nil, fmt.Errorf("fetch %s: %w: answer is %s", key, protocol.ErrInvalid, el.Key())
		}
		if err := protocol.VerifyEncrypted(el, opts); err != nil {
			return nil, nil, nil, fmt.Errorf("fetch %s: %w", key, err)
		}
		return nil, el, nil, nil
	}
	sl := resp.SignedLesson
	if sl.Key() != key {
		return nil, nil, nil, fmt.Errorf("fetch %s: %w: answer is %s", key, protocol.ErrInvalid, sl.Key())
	}
	if err := protocol.Verify(sl, opts); err != nil {
		return nil, nil, nil, fmt.Errorf("fetch %s: %w", key, err)
	}
	return sl, nil, nil, nil
}
