package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/repolock"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

func newTestNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = loopback
	}
	cfg.DisableMDNS = true // tests talk to loopback only
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestIdentityPersistsAndIsThePeerID(t *testing.T) {
	dir := t.TempDir()
	n := newTestNode(t, Config{RepoDir: dir})
	id := n.ID()
	if n.Host().ID() != id {
		t.Fatalf("host id %s != node id %s", n.Host().ID(), id)
	}
	want, err := protocol.NodeID(n.PublicKey())
	if err != nil || want != id.String() {
		t.Fatalf("node id %s is not the peer id of its key (%s, %v)", id, want, err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %#o, want 0600", st.Mode().Perm())
	}
	var tcp, quic bool
	for _, a := range n.Addrs() {
		s := a.String()
		tcp = tcp || strings.Contains(s, "/tcp/")
		quic = quic || strings.Contains(s, "/quic-v1")
		if !strings.HasSuffix(s, "/p2p/"+id.String()) {
			t.Errorf("address %s lacks /p2p/%s", s, id)
		}
	}
	if !tcp || !quic {
		t.Fatalf("want TCP and QUIC listeners, have %v", n.Addrs())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	n2 := newTestNode(t, Config{RepoDir: dir})
	if n2.ID() != id {
		t.Fatalf("restart changed identity: %s -> %s", id, n2.ID())
	}
}

func TestRefusesKeyReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	n := newTestNode(t, Config{RepoDir: dir, Offline: true})
	n.Close()
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Config{RepoDir: dir, Offline: true})
	if !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("New = %v, want ErrKeyPermissions", err)
	}
	if !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("error %q does not say how to fix it", err)
	}
}

func TestSecondNodeOnRepoIsRefused(t *testing.T) {
	dir := t.TempDir()
	newTestNode(t, Config{RepoDir: dir, Offline: true})
	_, err := New(context.Background(), Config{RepoDir: dir, Offline: true})
	if !errors.Is(err, repolock.ErrLocked) || !strings.Contains(err.Error(), "locked by pid") {
		t.Fatalf("second New = %v, want a repo-locked error", err)
	}
}

func TestPublishExport(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{Offline: true})
	id, created, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "t", Content: "c", Extra: nil})
	if err != nil || !created {
		t.Fatal(id, created, err)
	}
	if _, err := n.Export(ctx, id); !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("export before publish = %v, want ErrUnknownLesson", err)
	}
	if _, err := n.Publish(ctx, id, PublishOptions{Visibility: "private"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("publish private = %v, want ErrInvalid", err)
	}
	sl, err := n.Publish(ctx, id, PublishOptions{Visibility: "unlisted", Topics: []string{"go"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if sl.Key() != id+"@"+n.ID().String() {
		t.Fatalf("key %s", sl.Key())
	}
	got, err := n.Export(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.Verify(got, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err := n.Get(ctx, id)
	if err != nil || rec.Visibility != "unlisted" {
		t.Fatalf("record visibility after publish = %q (%v)", rec.Visibility, err)
	}
	if _, err := n.Publish(ctx, "nope", PublishOptions{Visibility: "public"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("publish missing = %v", err)
	}
}

func TestIdentityDocument(t *testing.T) {
	n := newTestNode(t, Config{})
	doc, err := n.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyIdentity(doc, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if doc.NodeID != n.ID().String() || len(doc.Addrs) == 0 {
		t.Fatalf("identity %+v", doc)
	}
	if _, err := peer.Decode(doc.NodeID); err != nil {
		t.Fatal(err)
	}
}
