package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
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
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
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

// size is how many bytes crossed so far.
func (w *wire) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
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
	t.Logf("watched %d bytes", w.size())
}

// count counts the occurrences of s in the recording.
func (w *wire) count(s string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Count(w.buf.Bytes(), []byte(s))
}

// TestWireWatchEncrypted records every connection of an author, two escrow
// nodes and two readers (libp2p's plaintext security, so the recording
// sees what the secure channel would hide), and the public HTTP API of the
// author, while an encrypted lesson is published, gossiped, deposited in
// escrow, read from the author over /mesh/keys/1.0.0, read over HTTP, read
// through escrow, and revoked for good. The lesson's plaintext marker never
// crosses any of them. The key appears only in the answers of
// /mesh/keys/1.0.0 (which in a real node run inside the secure channel),
// and only sealed on HTTP; escrow shares appear only sealed, except in the
// answers of /mesh/keys/1.0.0.
func TestWireWatchEncrypted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := &wire{}
	marker := fmt.Sprintf("PLAINzz%08x", rand.Uint32())
	mk := func(cfg node.Config) *node.Node {
		tp := newTap(t, w)
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.Topics = []string{"lab"}
		cfg.Libp2pOptions = []libp2p.Option{
			libp2p.Security(insecure.ID, insecure.NewWithIdentity),
			libp2p.Transport(tcp.NewTCPTransport),
			libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{tp.addr()} }),
		}
		n := nodetest.Local(t, cfg)
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
	author := mk(node.Config{Directory: directory.Config{PublicAPI: "127.0.0.1:0"}})
	e1, e2, r1, r2 := mk(node.Config{}), mk(node.Config{}), mk(node.Config{}), mk(node.Config{})
	all := []*node.Node{author, e1, e2, r1, r2}
	nodetest.TrustAll(t, all...)
	for i, a := range all {
		for _, b := range all[i+1:] {
			viaTap(b, a)
		}
	}
	nodetest.WaitMesh(t, "lab", all...)

	// The author's public API, through a recording proxy too.
	httpTap := newTap(t, w)
	httpTap.target = strings.TrimPrefix(author.Directory().PublicURL(), "http://")
	httpTap.serve()

	id, _, err := author.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "title " + marker, Content: "content " + marker, Tags: []string{marker}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := author.PublishEncrypted(ctx, id, api.EncryptOptions{Topics: []string{"lab"}, Policy: api.PolicyOptions{
		Access: protocol.AccessExplicit, AllowedNodes: []string{r1.ID().String(), r2.ID().String()},
		EscrowNodes: []string{e1.ID().String(), e2.ID().String()}, Threshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	el := res.EncryptedLesson
	keyID := el.Encryption.KeyID
	lk, err := author.Store().LessonKey(ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	var shares []string
	for _, e := range []*node.Node{e1, e2} {
		sh, err := lk.Policy.Escrow.OpenShare(nodetest.Key(e), keyID)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, base64.StdEncoding.EncodeToString(sh))
	}
	nodetest.Eventually(t, "the ciphertext at r2 by gossip", func() bool { return r2.Store().Encrypted(el.Key()) })

	// r1 reads from the author; over HTTP too; r2, cut off from the
	// author, reads through escrow.
	if got, err := r1.ReadLesson(ctx, el.Key()); err != nil || !strings.Contains(got.Lesson.Content, marker) {
		t.Fatalf("r1: %v", err)
	}
	sr, err := protocol.SignKeyRequest(nodetest.Key(r1), keyID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpTap.ln.Addr().String()+protocol.KeyHTTPPrefix+keyID, nil)
	req.Close = true // no idle connection left for the tap to wait on
	for k, v := range sr.KeyRequestHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP key: %s", resp.Status)
	}
	if err := r2.TrustSet(ctx, author.ID().String(), trust.LevelNone, "cut off"); err != nil {
		t.Fatal(err)
	}
	plain, err := r2.Keys().Read(ctx, el)
	if err != nil || !strings.HasPrefix(plain.From, "escrow") {
		t.Fatalf("r2 through escrow: %+v %v", plain, err)
	}
	if _, err := author.RevokeHard(ctx, id, ""); err != nil {
		t.Fatal(err)
	}

	keyB64 := base64.StdEncoding.EncodeToString(lk.Key)
	switch {
	case w.contains(marker):
		t.Fatal("the plaintext of an encrypted lesson crossed the wire")
	case !w.contains(el.Ciphertext[:64]) || !w.contains(`"sealedKey":"`) || !w.contains(`"sealedShare":"`):
		t.Fatal("the recording never saw the ciphertext or the sealed key and shares: the wire watch is blind")
	case w.contains(string(lk.Key)):
		t.Fatal("the raw key crossed the wire")
	case w.count(keyB64) != w.count(`"key":"`+keyB64):
		t.Fatal("the key crossed the wire outside the answers of /mesh/keys/1.0.0")
	case w.count(keyB64) == 0:
		t.Fatal("the recording never saw the key protocol's answer: the wire watch is blind")
	}
	for _, sh := range shares {
		if w.count(sh) != w.count(`"share":"`+sh) {
			t.Fatal("an escrow share crossed the wire unsealed outside the answers of /mesh/keys/1.0.0")
		}
	}
	t.Logf("watched %d bytes", w.size())
}
