// Package streamrpc is one framed request and one framed answer over a
// libp2p stream: the shape of every MESH stream protocol (fetch, sync,
// trust, directory registration, federated search). The frames are those of
// internal/frame: a varint length, then that many bytes.
//
// [Call] is the asking side: it opens a stream, writes the request,
// half-closes, and reads the answer, giving up (and resetting the stream)
// when its context is done. [Serve] is the answering side: it reads one
// request of at most a given size, hands it to a [Handler], and writes what
// the handler returns.
//
// A protocol may answer in several frames (federated search's late
// answers): [Exchange] reads them one by one, and a handler sends all but
// the last with [Request.Send].
package streamrpc

import (
	"bufio"
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/protocol"
)

// Timeout bounds one exchange when the caller's context allows longer.
const Timeout = 20 * time.Second

// Call sends req as one frame to peer p on a new stream of protocol proto
// and reads one answer frame of at most max bytes. It uses limited
// (relayed) connections too. ctx bounds the whole exchange, and at most
// Timeout; when ctx is done the stream is reset, so a peer that does not
// answer costs no more than ctx's deadline.
// frameReadBuffer is the read buffer of one exchange: enough for the
// frame's length, after which the body is read straight into its buffer
// (bufio reads a large request past its buffer), so every exchange does
// not allocate bufio's default 4 KiB.
const frameReadBuffer = 64

func Call(ctx context.Context, h host.Host, p peer.ID, proto string, req []byte, max int) ([]byte, error) {
	var answer []byte
	err := Exchange(ctx, h, p, []string{proto}, func(string) []byte { return req }, max,
		func(_ string, b []byte) (bool, error) {
			answer = b
			return true, nil
		})
	return answer, err
}

// Exchange is Call for protocols that may answer in several frames. It
// opens a stream for the first of protos that p supports (in the order
// given), writes the request req returns for that protocol, half-closes,
// and hands each answer frame, of at most max bytes, to each, until each
// returns done or an error (which Exchange returns) or ctx is done. Like
// Call, it gives up at ctx's deadline, and at most Timeout.
func Exchange(ctx context.Context, h host.Host, p peer.ID, protos []string, req func(proto string) []byte, max int, each func(proto string, frame []byte) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	ids := make([]libp2pproto.ID, len(protos))
	for i, proto := range protos {
		ids[i] = libp2pproto.ID(proto)
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, protos[0]), p, ids...)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	proto := string(s.Protocol())
	// The answer is what counts: a peer that answers before our request
	// is all written (one over its cap: it reads the length and says so)
	// or before our half-close lands may already have closed its side
	// (over QUIC, the write or CloseWrite then fails with "canceled
	// stream"), and its answer is still there to read.
	writeErr := frame.Write(s, req(proto))
	_ = s.CloseWrite()
	r := bufio.NewReaderSize(s, frameReadBuffer)
	for {
		b, err := frame.Read(r, max)
		if err != nil {
			s.Reset()
			if writeErr != nil {
				err = writeErr
			}
			return deadlineErr(ctx, err)
		}
		done, err := each(proto, b)
		if err != nil {
			s.Reset()
			return err
		}
		if done {
			return nil
		}
	}
}

// deadlineErr is ctx's error if the exchange ended because ctx is done or
// its deadline passed (the stream's deadline, set to the same time, may
// fire first), else err.
func deadlineErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return err
}

// Request is one request read by Serve.
type Request struct {
	// From is the peer that sent it, authenticated by the secure channel.
	From peer.ID
	// Body is the request frame; nil when Err is set.
	Body []byte
	// Err is nil, or wraps protocol.ErrTooLarge when the request was over
	// the cap: the handler answers with an error, which the asker reads.
	Err error
	// Received is when the request was read.
	Received time.Time
	// Protocol is the protocol the stream was opened for.
	Protocol string

	stream network.Stream
	after  func()
}

// AfterAnswer has f called once the handler's answer is written (or the
// stream reset): a handler that answers from a pooled buffer gives it
// back there.
func (r *Request) AfterAnswer(f func()) { r.after = f }

// SetDeadline moves the deadline of the stream the request came on: a
// handler that takes longer than Serve's timeout (a search forwarding to
// its peers within the asker's budget) sets its own.
func (r *Request) SetDeadline(t time.Time) { _ = r.stream.SetDeadline(t) }

// Send writes one answer frame before the handler's last, for protocols
// that answer in several. It must not be called once the handler has
// returned, nor concurrently.
func (r *Request) Send(b []byte) error { return frame.Write(r.stream, b) }

// Handler answers a request: it returns the answer frame, or nil to reset
// the stream without an answer. ctx ends when the stream's time is up or
// the server stops.
type Handler func(ctx context.Context, req *Request) []byte

// Encode is a handler's answer: the encoding of resp, or nil (the stream
// is reset) if it does not encode.
func Encode(resp interface{ Encode() ([]byte, error) }) []byte {
	b, err := resp.Encode()
	if err != nil {
		return nil
	}
	return b
}

// Serve returns a stream handler that reads one request frame of at most
// max bytes within timeout, calls h, and writes its answer. A request that
// cannot be read (a broken stream, a bad length) resets the stream; one
// over max is handed to h with Err set. base bounds every request's
// context: cancel it to stop serving.
func Serve(base context.Context, max int, timeout time.Duration, h Handler) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(timeout))
		data, err := frame.Read(bufio.NewReaderSize(s, frameReadBuffer), max)
		if err != nil && !errors.Is(err, protocol.ErrTooLarge) {
			s.Reset()
			return
		}
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		req := &Request{From: s.Conn().RemotePeer(), Body: data, Err: err, Received: time.Now(), Protocol: string(s.Protocol()), stream: s}
		ans := h(ctx, req)
		if req.after != nil {
			defer req.after()
		}
		if ans == nil {
			s.Reset()
			return
		}
		_ = frame.Write(s, ans)
	}
}
