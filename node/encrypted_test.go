package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// TestEncryptedTravelsLikeSigned: an encrypted lesson goes where a signed
// one goes, and nobody on the way needs its key: gossip to a follower, a
// late joiner's sync, fetch by key from a node that is not the author, a
// directory's public API (which indexes only what is outside the
// ciphertext: it is not found by its words); a newer encrypted version
// supersedes a signed one at every node (its words are no longer found
// there either); and it is revoked like one.
func TestEncryptedTravelsLikeSigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, nodes := nodetest.Mock(t, 2, 0, node.Config{Topics: []string{"lab"}})
	a, b := nodes[0], nodes[1]
	dir := nodetest.MockNode(t, m, node.Config{Directory: directory.Config{Enabled: true, Topics: []string{"lab"}, PublicAPI: "127.0.0.1:0"}})
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	nodetest.Connect(t, dir, a)
	nodetest.WaitMesh(t, "lab", a, b, dir)

	// First published signed: its words are searchable at b.
	id, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "cargo WORDSIGNED", Content: "parallel builds crash"})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := a.Publish(ctx, id, api.PublishOptions{Visibility: "public", Topics: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the signed lesson at b", func() bool { return nodetest.HasRemote(b, sl.Key()) })

	// Then encrypted: it supersedes the signed copy everywhere.
	res, err := a.PublishEncrypted(ctx, id, api.EncryptOptions{Topics: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	el := res.EncryptedLesson
	for _, n := range []*node.Node{b, dir} {
		nodetest.Eventually(t, "the encrypted version at "+n.ID().String(), func() bool {
			got, err := n.Store().RemoteEncrypted(ctx, el.Key())
			return err == nil && got.Encryption.KeyID == el.Encryption.KeyID
		})
		if _, err := n.Store().Remote(ctx, el.Key()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the superseded signed copy is still at %s: %v", n.ID(), err)
		}
		res, err := n.Search(ctx, store.Query{Text: "wordsigned", Origin: store.OriginAll})
		if err != nil || len(res.Hits) != 0 {
			t.Fatalf("the words of an encrypted lesson are searchable at %s: %+v %v", n.ID(), res, err)
		}
	}
	if _, err := a.Export(ctx, id); !errors.Is(err, protocol.ErrUnknownLesson) || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("export of an encrypted lesson as signed: %v", err)
	}
	if exp, err := a.ExportEncrypted(ctx, id); err != nil || exp.Ciphertext != el.Ciphertext {
		t.Fatalf("export encrypted: %v", err)
	}

	// Fetch from a node that is not the author: the ciphertext, verified.
	got, _, err := a.FetchEncrypted(ctx, b.ID(), el.Key())
	if err != nil || got.Ciphertext != el.Ciphertext {
		t.Fatalf("fetch from b: %v", err)
	}
	if _, _, err := a.Fetch(ctx, b.ID(), el.Key()); !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("Fetch of an encrypted lesson: %v", err)
	}

	// The directory serves it by key on its public API, signed.
	body := publicGet(t, dir.Directory().PublicURL()+"/v1/lessons/"+el.Key())
	vr, err := protocol.VerifyResponse(body, protocol.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := protocol.DecodeDirectoryLessonResponse(vr.Body)
	if err != nil || lr.EncryptedLesson == nil || lr.EncryptedLesson.Ciphertext != el.Ciphertext || strings.Contains(string(body), "parallel builds") {
		t.Fatalf("directory answer %s: %v", body, err)
	}

	// A late joiner gets it by sync.
	c := nodetest.MockNode(t, m, node.Config{Topics: []string{"lab"}})
	nodetest.TrustAll(t, a, c)
	nodetest.Connect(t, c, b)
	nodetest.Eventually(t, "the encrypted lesson at the late joiner", func() bool { return c.Store().Encrypted(el.Key()) })
	nodetest.WaitMesh(t, "lab", b, c)

	// Revoked like any lesson.
	if _, err := a.Revoke(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{b, c, dir} {
		nodetest.Eventually(t, "the revocation at "+n.ID().String(), func() bool {
			_, err := n.Store().RemoteEncrypted(ctx, el.Key())
			return n.Store().Revoked(ctx, el.Key()) && errors.Is(err, store.ErrNotFound)
		})
	}
}

func publicGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSyncPagesLargeLessons: a late joiner syncs more large encrypted
// lessons than one sync answer can hold (its cap is 8 MiB; each is the
// base64 of ~120 KiB): the answering node ends a page early (asked by a
// bare host, the first page holds some and says there is more), and
// every lesson arrives at the joiner (which syncs by itself once it has
// identified the publisher).
func TestSyncPagesLargeLessons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, nodes := nodetest.Mock(t, 2, 0, node.Config{Topics: []string{"big"}})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	const count = 80 // ~13 MiB in all
	big := strings.Repeat("z", 120<<10)
	var keys []string
	for i := range count {
		id, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "big", Content: big})
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.PublishEncrypted(ctx, id, api.EncryptOptions{Topics: []string{"big"}})
		if err != nil {
			t.Fatal(i, err)
		}
		keys = append(keys, res.EncryptedLesson.Key())
	}

	h, err := m.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	if err := nodetest.ConnectHosts(ctx, h, a.Host()); err != nil {
		t.Fatal(err)
	}
	req, _ := (&protocol.SyncRequest{Type: protocol.MsgSyncRequest, Topics: []string{"big"}}).Encode()
	raw, err := streamrpc.Call(ctx, h, a.ID(), protocol.ProtocolSync, req, protocol.MaxSyncResponseSize)
	if err != nil {
		t.Fatal(err)
	}
	page, err := protocol.DecodeSyncResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !page.HasMore || len(page.EncryptedLessons) == 0 || len(page.EncryptedLessons) >= count {
		t.Fatalf("first page: %d of %d lessons, %d bytes, hasMore %v", len(page.EncryptedLessons), count, len(raw), page.HasMore)
	}

	nodetest.Connect(t, b, a)
	prog, err := b.SyncWith(ctx, a.ID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !b.Store().Encrypted(k) {
			t.Fatalf("%s did not arrive by sync (%+v)", k, prog)
		}
	}
}
