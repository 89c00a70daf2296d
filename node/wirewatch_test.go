package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/insecure"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// wire records every byte that crosses it, both ways.
type wire struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *wire) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.buf.Bytes(), []byte(s))
}

// tap is a TCP proxy on loopback in front of one node: every connection to
// the node goes through it, and it copies all traffic to the wire.
type tap struct {
	ln     net.Listener
	target string
	w      *wire
	wg     sync.WaitGroup
}

func newTap(t *testing.T, w *wire) *tap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln, w: w}
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

func (tp *tap) addr() ma.Multiaddr {
	a := tp.ln.Addr().(*net.TCPAddr)
	return ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", a.Port))
}

func (tp *tap) serve() {
	tp.wg.Add(1)
	go func() {
		defer tp.wg.Done()
		for {
			c, err := tp.ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", tp.target)
			if err != nil {
				c.Close()
				continue
			}
			tp.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer tp.wg.Done()
				io.Copy(io.MultiWriter(dst, tp.w), src)
				dst.Close()
				src.Close()
			}
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
}

// TestWireWatchNoPrivateContent runs three nodes whose every connection goes
// through recording proxies, with libp2p's plaintext security so the
// recording shows content, and drives every protocol: gossip of a public
// lesson, a revocation, fetch of an unlisted lesson, a fetch attempt of a
// private record by its key, and sync of a late joiner. No byte of the
// private record's content may cross the wire; the public marker must (which
// proves the recording sees content at all).
func TestWireWatchNoPrivateContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := &wire{}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	privateMarker, publicMarker, unlistedMarker := "PRIVATEzz"+suffix, "PUBLICzz"+suffix, "UNLISTEDzz"+suffix

	mk := func(topic string) *node.Node {
		tp := newTap(t, w)
		n := nodetest.Local(t, node.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Topics:      []string{topic},
			Libp2pOptions: []libp2p.Option{
				libp2p.Security(insecure.ID, insecure.NewWithIdentity),
				libp2p.Transport(tcp.NewTCPTransport),
				libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{tp.addr()} }),
			},
		})
		for _, a := range n.Host().Network().ListenAddresses() {
			if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				tp.target = "127.0.0.1:" + port
			}
		}
		tp.serve()
		return n
	}
	viaTap := func(a, b *node.Node) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := mk("lab"), mk("lab")
	nodetest.TrustAll(t, a, b)
	viaTap(b, a)
	nodetest.WaitMesh(t, "lab", a, b)

	// The private record: in the title, the content, a tag and an extra field.
	priv := &protocol.Lesson{Type: "lesson", Title: privateMarker, Content: "do not share " + privateMarker, Tags: []string{privateMarker}}
	privID, _, err := a.Put(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	pub := nodetest.Publish(t, a, "public "+publicMarker, "shared "+publicMarker, "public", "lab")
	unl := nodetest.Publish(t, a, "unlisted", "by link "+unlistedMarker, "unlisted")
	nodetest.Eventually(t, "the public lesson at b", func() bool { return nodetest.HasRemote(b, pub.Key()) })
	if _, _, err := b.Fetch(ctx, a.ID(), unl.Key()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Fetch(ctx, a.ID(), privID+"@"+a.ID().String()); err == nil {
		t.Fatal("a private record was fetchable")
	}
	// Publishing the private record as private is refused before anything moves.
	if _, err := a.Publish(ctx, privID, api.PublishOptions{Visibility: "private"}); err == nil {
		t.Fatal("publish private succeeded")
	}
	if _, err := a.Revoke(ctx, pub.Lesson.ID, ""); err != nil {
		t.Fatal(err)
	}
	// A late joiner syncs everything there is from a.
	c := mk("lab")
	nodetest.TrustAll(t, a, c)
	viaTap(c, a)
	nodetest.Eventually(t, "c to sync the revocation", func() bool { return c.Store().Revoked(ctx, pub.Key()) })
	if _, err := c.SyncWith(ctx, a.ID(), nil); err != nil {
		t.Fatal(err)
	}

	if !w.contains(publicMarker) || !w.contains(unlistedMarker) {
		t.Fatal("the recording never saw the public or unlisted content: the wire watch is blind")
	}
	if w.contains(privateMarker) {
		t.Fatal("private content crossed the wire")
	}
	t.Logf("watched %d bytes", w.buf.Len())
}
