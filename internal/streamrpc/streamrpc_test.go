package streamrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// A request over the server's cap gets the handler's answer, though
	// the server stops reading it after its length.
	if ans, err := Call(ctx, a, b.ID(), proto, make([]byte, 4096), 64); err != nil || string(ans) != "too large" {
		t.Fatalf("request over the cap: %q, %v", ans, err)
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

// TestExchangeFrames: a handler answers in several frames (Send, then its
// return), which Exchange hands over one by one until each says done; a
// peer that speaks only an older protocol is asked in that one, with the
// request made for it.
func TestExchangeFrames(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	hs := mn.Hosts()
	a, b, old := hs[0], hs[1], hs[2]
	ctx := context.Background()
	const newer = "/mesh/test/1.1.0"
	b.SetStreamHandler(newer, Serve(ctx, 64, time.Minute, func(_ context.Context, r *Request) []byte {
		if r.Protocol != newer {
			return []byte("wrong protocol " + r.Protocol)
		}
		for i := range 2 {
			if err := r.Send(fmt.Appendf(nil, "%s %d", r.Body, i)); err != nil {
				return nil
			}
		}
		return append(r.Body, " last"...)
	}))
	old.SetStreamHandler(proto, Serve(ctx, 64, time.Minute, func(_ context.Context, r *Request) []byte {
		return append([]byte("old "), r.Body...)
	}))
	exchange := func(p host.Host, stopAfter int) (frames []string, asked string, err error) {
		err = Exchange(ctx, a, p.ID(), []string{newer, proto},
			func(pr string) []byte { asked = pr; return []byte("q") }, 64,
			func(pr string, f []byte) (bool, error) {
				if pr != asked {
					return false, fmt.Errorf("frame for %s, asked in %s", pr, asked)
				}
				frames = append(frames, string(f))
				if len(frames) == stopAfter {
					return true, nil
				}
				return strings.HasSuffix(string(f), " last") || strings.HasPrefix(string(f), "old "), nil
			})
		return frames, asked, err
	}
	frames, asked, err := exchange(b, 0)
	if err != nil || asked != newer || !slices.Equal(frames, []string{"q 0", "q 1", "q last"}) {
		t.Fatalf("newer peer: %q in %s, %v", frames, asked, err)
	}
	// The asker may stop early.
	if frames, _, err = exchange(b, 1); err != nil || !slices.Equal(frames, []string{"q 0"}) {
		t.Fatalf("stopping after one frame: %q, %v", frames, err)
	}
	frames, asked, err = exchange(old, 0)
	if err != nil || asked != proto || !slices.Equal(frames, []string{"old q"}) {
		t.Fatalf("older peer: %q in %s, %v", frames, asked, err)
	}
	// An error of each ends the exchange with it.
	boom := errors.New("boom")
	err = Exchange(ctx, a, b.ID(), []string{newer}, func(string) []byte { return []byte("q") }, 64,
		func(string, []byte) (bool, error) { return false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("each's error: %v", err)
	}
	// A frame over the cap is refused, after others were read.
	err = Exchange(ctx, a, b.ID(), []string{newer}, func(string) []byte { return []byte("a longer request") }, 20,
		func(string, []byte) (bool, error) { return false, nil })
	if !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("frame over the cap: %v", err)
	}
}

// TestAfterAnswer: the function a handler registers runs once its answer
// is written, and when it answers nothing (the stream is reset).
func TestAfterAnswer(t *testing.T) {
	a, b := pair(t)
	ctx := context.Background()
	done := make(chan string, 2)
	b.SetStreamHandler(proto, Serve(ctx, 64, time.Minute, func(_ context.Context, r *Request) []byte {
		body := string(r.Body)
		r.AfterAnswer(func() { done <- body })
		if body == "reset" {
			return nil
		}
		return []byte("ok")
	}))
	for _, body := range []string{"answer", "reset"} {
		ans, err := Call(ctx, a, b.ID(), proto, []byte(body), 64)
		if (body == "answer") != (err == nil && string(ans) == "ok") {
			t.Fatalf("%s: %q, %v", body, ans, err)
		}
		select {
		case got := <-done:
			if got != body {
				t.Fatalf("after %q ran for %q", body, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the function registered never ran", body)
		}
	}
}
