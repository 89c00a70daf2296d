package node_test

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
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

func TestIdentityPersistsAndIsThePeerID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := nodetest.Local(t, node.Config{RepoDir: dir})
	id := n.ID()
	if n.Host().ID() != id {
		t.Fatalf("host id %s != node id %s", n.Host().ID(), id)
	}
	want, err := protocol.NodeID(n.PublicKey())
	if err != nil || want != id.String() {
		t.Fatalf("node id %s is not the peer id of its key (%s, %v)", id, want, err)
	}
	st, err := os.Stat(filepath.Join(dir, node.KeyFile))
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
	n2 := nodetest.Local(t, node.Config{RepoDir: dir})
	if n2.ID() != id {
		t.Fatalf("restart changed identity: %s -> %s", id, n2.ID())
	}
}

func TestRefusesKeyReadableByOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := nodetest.New(t, node.Config{RepoDir: dir, Offline: true})
	n.Close()
	if err := os.Chmod(filepath.Join(dir, node.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := node.New(context.Background(), node.Config{RepoDir: dir, Offline: true})
	if !errors.Is(err, node.ErrKeyPermissions) {
		t.Fatalf("New = %v, want node.ErrKeyPermissions", err)
	}
	if !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("error %q does not say how to fix it", err)
	}
}

func TestSecondNodeOnRepoIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nodetest.New(t, node.Config{RepoDir: dir, Offline: true})
	_, err := node.New(context.Background(), node.Config{RepoDir: dir, Offline: true})
	if !errors.Is(err, repolock.ErrLocked) || !strings.Contains(err.Error(), "locked by pid") {
		t.Fatalf("second New = %v, want a repo-locked error", err)
	}
}

func TestPublishExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := nodetest.New(t, node.Config{Offline: true})
	id, created, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "t", Content: "c", Extra: nil})
	if err != nil || !created {
		t.Fatal(id, created, err)
	}
	if _, err := n.Export(ctx, id); !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("export before publish = %v, want ErrUnknownLesson", err)
	}
	if _, err := n.Publish(ctx, id, api.PublishOptions{Visibility: "private"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("publish private = %v, want ErrInvalid", err)
	}
	sl, err := n.Publish(ctx, id, api.PublishOptions{Visibility: "unlisted", Topics: []string{"go"}})
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
	if _, err := n.Publish(ctx, "nope", api.PublishOptions{Visibility: "public"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("publish missing = %v", err)
	}
}

func TestIdentityDocument(t *testing.T) {
	t.Parallel()
	n := nodetest.New(t, node.Config{})
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
