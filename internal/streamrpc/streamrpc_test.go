package streamrpc

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/protocol"
)

const proto = "/mesh/test/1.0.0"

func pair(t *testing.T) (a, b host.Host) {
	t.Helper()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	hs := mn.Hosts()
	return hs[0], hs[1]
}

func TestCallServe(t *testing.T) {
	a, b := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got *Request
	b.SetStreamHandler(proto, Serve(ctx, 16, time.Minute, func(_ context.Context, r *Request) []byte {
		got = r
		switch {
		case r.Err != nil:
			return []byte("too large")
		case string(r.Body) == "reset":
			return nil
		}
		return append([]byte("echo "), r.Body...)
	}))

	ans, err := Call(ctx, a, b.ID(), proto, []byte("hello"), 64)
	if err != nil || string(ans) != "echo hello" {
		t.Fatalf("call: %q, %v", ans, err)
	}
	if got.From != a.ID() || got.Received.IsZero() {
		t.Fatalf("request from %s at %v", got.From, got.Received)
	}
	// An answer over the caller's cap is refused.
	if _, err := Call(ctx, a, b.ID(), proto, []byte("hello"), 4); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("answer over the cap: %v", err)
	}
	// A handler that answers nil resets the stream: the caller gets an error.
	if _, err := Call(ctx, a, b.ID(), proto, []byte("reset"), 64); err == nil {
		t.Fatal("a reset stream answered")
	}
}

// TestServeTooLarge: a request over the server's cap reaches the handler
// with Err set, so it can say so.
func TestServeTooLarge(t *testing.T) {
	a, b := pair(t)
	ctx := context.Background()
	b.SetStreamHandler(proto, Serve(ctx, 8, time.Minute, func(_ context.Context, r *Request) []byte {
		if !errors.Is(r.Err, protocol.ErrTooLarge) || r.Body != nil {
			return []byte("wrong")
		}
		return []byte("too large")
	}))
	// Only the length is sent: the server reads it and answers at once.
	s, err := a.NewStream(ctx, b.ID(), libp2pproto.ID(proto))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte{100}); err != nil {
		t.Fatal(err)
	}
	ans, err := frame.Read(bufio.NewReader(s), 64)
	if err != nil || string(ans) != "too large" {
		t.Fatalf("answer %q, %v", ans, err)
	}
}

// TestCallGivesUpAtDeadline: a peer that never answers costs the caller
// its deadline, then an error.
func TestCallGivesUpAtDeadline(t *testing.T) {
	a, b := pair(t)
	hold := make(chan struct{})
	defer close(hold)
	b.SetStreamHandler(proto, func(s network.Stream) { <-hold; s.Reset() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Call(ctx, a, b.ID(), proto, []byte("hello"), 64); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent peer: %v, want the deadline", err)
	}
}
