package keys_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// secret stores a lesson whose content carries marker on n.
func secret(t testing.TB, n *node.Node, marker string) string {
	t.Helper()
	id, _, err := n.Put(context.Background(), &protocol.Lesson{Type: "lesson", Title: "secret " + marker, Content: "only readers may see " + marker, Tags: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// publishEncrypted publishes id on n encrypted, public on topic lab.
func publishEncrypted(t testing.TB, n *node.Node, id string, p api.PolicyOptions) *api.EncryptedPublication {
	t.Helper()
	res, err := n.PublishEncrypted(context.Background(), id, api.EncryptOptions{Topics: []string{"lab"}, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Notices {
		if !s.Delivered {
			t.Fatalf("notice to %s (%s) not delivered: %s", s.NodeID, s.Role, s.Error)
		}
	}
	return res
}

func wantCode(t testing.TB, err error, sentinel error, says string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want an error matching %v", err, sentinel)
	}
	if says != "" && !strings.Contains(err.Error(), says) {
		t.Fatalf("error %q does not say %q", err, says)
	}
}

// TestReadersAndPolicies: a reader the policy admits reads (the key from
// the author, then from memory); a node outside it gets ACCESS_DENIED with
// the reason, for each access level; a policy change takes effect at once.
func TestReadersAndPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 5, 0, node.Config{Topics: []string{"lab"}})
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	nodetest.TrustAll(t, a, b)
	for _, n := range nodes[1:] {
		nodetest.SetTrust(t, n, a, trust.LevelFull)
		nodetest.Connect(t, n, a)
	}
	nodetest.SetTrust(t, a, d, trust.LevelLimited) // a trust path, score 1, but not full

	id := secret(t, a, "MARKER-1")
	res := publishEncrypted(t, a, id, api.PolicyOptions{Access: protocol.AccessTrusted})
	key := res.EncryptedLesson.Key()
	if res.Key.Access != protocol.AccessTrusted || res.Key.KeyID != res.EncryptedLesson.Encryption.KeyID {
		t.Fatalf("key info %+v", res.Key)
	}

	got, err := b.ReadLesson(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Encrypted || got.KeyFrom != "author" || !strings.Contains(got.Lesson.Content, "MARKER-1") {
		t.Fatalf("read %+v", got)
	}
	if got.ExpiresAt <= time.Now().UnixMilli() || got.ExpiresAt > time.Now().Add(keysTTL+time.Minute).UnixMilli() {
		t.Fatalf("expiresAt %d", got.ExpiresAt)
	}
	again, err := b.ReadLesson(ctx, key)
	if err != nil || again.KeyFrom != "memory" {
		t.Fatalf("second read: %+v %v", again, err)
	}
	if _, err := d.ReadLesson(ctx, key); err != nil {
		t.Fatalf("a limited edge is a trust path: %v", err)
	}
	_, err = c.ReadLesson(ctx, key)
	wantCode(t, err, protocol.ErrAccessDenied, "trust path")
	if protocol.CodeOf(err) != protocol.CodeAccessDenied {
		t.Fatalf("code %s", protocol.CodeOf(err))
	}

	// Explicit: only the nodes listed; a minimum score; public.
	if _, err := a.KeyPolicySet(ctx, id, api.PolicyOptions{Access: protocol.AccessExplicit, AllowedNodes: []string{c.ID().String()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadLesson(ctx, key); err != nil {
		t.Fatalf("an allowed node: %v", err)
	}
	_, err = e.ReadLesson(ctx, key)
	wantCode(t, err, protocol.ErrAccessDenied, "not among the allowed nodes")
	if !d.Keys().Cached(res.EncryptedLesson.Encryption.KeyID) {
		t.Fatal("d dropped a key it may keep until its expiresAt") // narrowing takes effect on the next fetch (rotate to cut readers off)
	}

	if _, err := a.KeyPolicySet(ctx, id, api.PolicyOptions{Access: protocol.AccessPublic}); err != nil {
		t.Fatal(err)
	}
	if list, err := a.KeyList(ctx); err != nil || len(list) != 1 || list[0].Access != protocol.AccessPublic || list[0].Readers < 2 {
		t.Fatalf("key list %+v %v", list, err)
	}
}

const keysTTL = time.Hour

// rawAsk asks p for keyID as the bare host h would: a node that kept a
// ciphertext and ignores revocations (no store, no tombstones, nothing but
// the key protocol).
func rawAsk(t testing.TB, h host.Host, p peer.ID, keyID string) *protocol.KeyResponse {
	t.Helper()
	req, _ := (&protocol.KeyRequest{Type: protocol.MsgKeyRequest, KeyID: keyID}).Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := streamrpc.Call(ctx, h, p, protocol.ProtocolKeys, req, protocol.MaxKeyResponseSize)
	if err != nil {
		t.Fatalf("ask %s for %s: %v", p, keyID, err)
	}
	resp, err := protocol.DecodeKeyResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestHardRevoke: after a hard revoke, a node that kept the ciphertext
// and asks for the key gets KEY_REVOKED (the author deleted it), a
// compliant reader's memory of the key and the plaintext is gone (pushed
// to it), and the lesson is revoked everywhere like any other.
func TestHardRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, nodes := nodetest.Mock(t, 3, 0, node.Config{Topics: []string{"lab"}, Keys: keys.Config{KeyTTL: time.Hour}})
	a, b, c := nodes[0], nodes[1], nodes[2]
	nodetest.TrustAll(t, nodes...)
	nodetest.Connect(t, b, a)
	nodetest.Connect(t, c, a)
	nodetest.WaitMesh(t, "lab", a, b, c)
	hold, err := m.NewHost() // keeps the ciphertext, ignores revocations
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Trust().Set(hold.ID().String(), trust.LevelFull, ""); err != nil {
		t.Fatal(err)
	}
	nodetest.ConnectHost(t, hold, a)

	id := secret(t, a, "MARKER-HARD")
	res := publishEncrypted(t, a, id, api.PolicyOptions{})
	el := res.EncryptedLesson
	keyID := el.Encryption.KeyID
	nodetest.Eventually(t, "the ciphertext at c by gossip", func() bool {
		_, err := c.Store().RemoteEncrypted(ctx, el.Key())
		return err == nil
	})
	if got, err := b.ReadLesson(ctx, el.Key()); err != nil || !strings.Contains(got.Lesson.Content, "MARKER-HARD") {
		t.Fatalf("b reads: %+v %v", got, err)
	}
	if r := rawAsk(t, hold, a.ID(), keyID); r.Key == "" {
		t.Fatalf("the key holder was refused before the revoke: %+v", r)
	}
	if !b.Keys().Cached(keyID) {
		t.Fatal("b does not hold the key in memory")
	}

	out, err := a.RevokeHard(ctx, id, protocol.ReasonPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.KeyIDs) != 1 || out.KeyIDs[0] != keyID || out.Revocation.Key() != el.Key() {
		t.Fatalf("revoke result %+v", out)
	}
	// Every reader served is told; the bare host speaks no notices: its
	// notice is kept, to be sent again when it is next seen.
	told := map[string]api.NoticeStatus{}
	for _, s := range out.Notices {
		told[s.NodeID] = s
	}
	if s := told[b.ID().String()]; !s.Delivered || s.Role != "reader" {
		t.Fatalf("b was not told: %+v", out.Notices)
	}
	if s, ok := told[hold.ID().String()]; !ok || s.Delivered || s.Role != "reader" {
		t.Fatalf("the bare host's notice: %+v", out.Notices)
	}
	if a.Keys().Pending(ctx)[hold.ID().String()] != 1 {
		t.Fatalf("pending notices %v", a.Keys().Pending(ctx))
	}

	// The compliant reader: key and plaintext gone at once, KEY_REVOKED.
	if b.Keys().Cached(keyID) {
		t.Fatal("b still holds the key in memory after the hard revoke")
	}
	_, err = b.ReadLesson(ctx, el.Key())
	wantCode(t, err, protocol.ErrAlreadyRevoked, "revoked")
	if _, err := b.Keys().Read(ctx, el); !errors.Is(err, protocol.ErrKeyRevoked) {
		t.Fatalf("b reads the kept ciphertext: %v", err)
	}
	// The one that kept the ciphertext: the author answers KEY_REVOKED, with its revocation.
	r := rawAsk(t, hold, a.ID(), keyID)
	if r.Error != protocol.CodeKeyRevoked || r.RevokedAt != out.Revocation.RevokedAt || r.Revocation == nil || r.Revocation.Key() != el.Key() {
		t.Fatalf("after the hard revoke the author answered %+v", r)
	}
	if _, err := protocol.DecryptLesson(el, make([]byte, protocol.LessonKeySize)); !errors.Is(err, protocol.ErrDecrypt) {
		t.Fatalf("decrypt without the key: %v", err)
	}
	// Every copy that followed the standard revocation is gone too.
	nodetest.Eventually(t, "the revocation at c", func() bool {
		_, err := c.Store().RemoteEncrypted(ctx, el.Key())
		return c.Store().Revoked(ctx, el.Key()) && errors.Is(err, store.ErrNotFound)
	})
	if _, err := a.RevokeHard(ctx, id, ""); !errors.Is(err, protocol.ErrAlreadyRevoked) {
		t.Fatalf("second hard revoke: %v", err)
	}
	list, _ := a.KeyList(ctx)
	if len(list) != 1 || !list[0].Revoked || list[0].RevokeReason != "revoked" {
		t.Fatalf("key list after the revoke: %+v", list)
	}

	// A lesson published signed has no key: --hard refuses it, clearly.
	sl := nodetest.Publish(t, a, "signed", "in the clear", "public", "lab")
	_, err = a.RevokeHard(ctx, sl.Lesson.ID, "")
	wantCode(t, err, protocol.ErrInvalid, "no key to delete")
}

// escrowWorld is an author, three escrow nodes it trusts fully (and which
// trust it), and a reader it trusts fully, all connected to each other.
type escrowWorld struct {
	author, reader *node.Node
	escrow         []*node.Node
}

func (w escrowWorld) escrowIDs() []string {
	var out []string
	for _, e := range w.escrow {
		out = append(out, e.ID().String())
	}
	return out
}

func newEscrowWorld(t *testing.T, start func(node.Config) *node.Node) escrowWorld {
	t.Helper()
	cfg := node.Config{Topics: []string{"lab"}}
	w := escrowWorld{author: start(cfg), reader: start(cfg)}
	for range 3 {
		w.escrow = append(w.escrow, start(cfg))
	}
	all := append([]*node.Node{w.author, w.reader}, w.escrow...)
	nodetest.TrustAll(t, all...)
	for i, a := range all {
		for _, b := range all[i+1:] {
			nodetest.Connect(t, a, b)
		}
	}
	return w
}

// TestEscrowAuthorOffline: with the author's process stopped, and one of
// the three escrow nodes too, a reader the policy admits reads through the
// 2 escrow nodes left; one outside the policy is refused by them too.
func TestEscrowAuthorOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	net := nodetest.NewNet(0)
	t.Cleanup(func() { net.Close() })
	start := func(cfg node.Config) *node.Node { return nodetest.MockNode(t, net, cfg) }
	w := newEscrowWorld(t, start)
	outsider := start(node.Config{})
	for _, e := range w.escrow {
		nodetest.Connect(t, outsider, e)
	}

	id := secret(t, w.author, "MARKER-ESCROW")
	res := publishEncrypted(t, w.author, id, api.PolicyOptions{Access: protocol.AccessExplicit,
		AllowedNodes: []string{w.reader.ID().String()}, EscrowNodes: w.escrowIDs(), Threshold: 2})
	if len(res.Notices) != 3 || res.Key.Threshold != 2 || len(res.Key.EscrowNodes) != 3 {
		t.Fatalf("publish result %+v", res)
	}
	el := res.EncryptedLesson
	for _, e := range w.escrow {
		list, err := e.KeyList(ctx)
		if err != nil || len(list) != 1 || list[0].Role != api.KeyRoleEscrow || list[0].KeyID != el.Encryption.KeyID {
			t.Fatalf("escrow node's keys %+v %v", list, err)
		}
	}

	// The author and one escrow node stopped: two shares are enough, and
	// the third node's silence costs nothing.
	if err := w.author.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.escrow[2].Close(); err != nil {
		t.Fatal(err)
	}
	start2 := time.Now()
	plain, err := w.reader.Keys().Read(ctx, el)
	if err != nil {
		t.Fatalf("read with the author offline: %v", err)
	}
	if !strings.Contains(plain.Lesson.Content, "MARKER-ESCROW") || !strings.HasPrefix(plain.From, "escrow (2 of 3") {
		t.Fatalf("read %+v", plain)
	}
	if took := time.Since(start2); took > 3*time.Second {
		t.Fatalf("reading through escrow took %s: the offline nodes were waited for", took)
	}
	t.Logf("read through escrow in %s: %s", time.Since(start2).Round(time.Millisecond), plain.From)

	_, err = outsider.Keys().Read(ctx, el)
	wantCode(t, err, protocol.ErrAccessDenied, "not among the allowed nodes")
}

// TestEscrowRevokeWithOneOffline: a hard revoke deletes the escrow shares
// at once where it can; the escrow node that was offline deletes its share
// when it comes back (the notice the author kept), and no escrow node ever
// serves a share of a revoked key, even to the node that kept the
// ciphertext.
func TestEscrowRevokeWithOneOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dirs := map[*node.Node]string{}
	start := func(cfg node.Config) *node.Node {
		cfg.RepoDir = t.TempDir()
		n := nodetest.Local(t, cfg)
		dirs[n] = cfg.RepoDir
		return n
	}
	w := newEscrowWorld(t, start)
	id := secret(t, w.author, "MARKER-OFFLINE")
	res := publishEncrypted(t, w.author, id, api.PolicyOptions{Access: protocol.AccessTrusted, EscrowNodes: w.escrowIDs(), Threshold: 2})
	el := res.EncryptedLesson
	keyID := el.Encryption.KeyID
	if _, err := w.reader.Keys().Read(ctx, el); err != nil {
		t.Fatal(err)
	}

	off := w.escrow[2]
	offDir := dirs[off]
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := w.author.RevokeHard(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, s := range out.Notices {
		if s.Delivered {
			delivered++
		} else if s.NodeID != off.ID().String() {
			t.Fatalf("notice to %s not delivered: %s", s.NodeID, s.Error)
		}
	}
	if delivered != 3 { // two escrow nodes and the reader
		t.Fatalf("notices %+v", out.Notices)
	}
	for _, e := range w.escrow[:2] {
		if _, err := e.Store().EscrowShare(ctx, keyID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an online escrow node kept its share: %v", err)
		}
		// Asked by the reader's host directly, as a node ignoring revocations would.
		if r := rawAsk(t, w.reader.Host(), e.ID(), keyID); r.Error != protocol.CodeKeyRevoked {
			t.Fatalf("escrow node answered %+v for a revoked key", r)
		}
	}

	// Back: its share is still on disk until it hears; it hears from the
	// author (the kept notice) as soon as they meet.
	back := nodetest.Local(t, node.Config{RepoDir: offDir, Topics: []string{"lab"}})
	if _, err := back.Store().EscrowShare(ctx, keyID); err != nil {
		t.Fatalf("the offline escrow node lost its share while offline: %v", err)
	}
	nodetest.Connect(t, back, w.author)
	nodetest.Eventually(t, "the returning escrow node to delete its share", func() bool {
		_, err := back.Store().EscrowShare(ctx, keyID)
		return errors.Is(err, store.ErrNotFound)
	})
	if r, err := back.Store().KeyRevoked(ctx, keyID); err != nil || r.Reason != store.KeyRevokedHard {
		t.Fatalf("the returning escrow node does not know the key revoked: %+v %v", r, err)
	}
	nodetest.Connect(t, w.reader, back)
	if r := rawAsk(t, w.reader.Host(), back.ID(), keyID); r.Error != protocol.CodeKeyRevoked {
		t.Fatalf("the returning escrow node answered %+v", r)
	}
	nodetest.Eventually(t, "the author to forget the delivered notice", func() bool { return len(w.author.Keys().Pending(ctx)) == 0 })
}

// TestEscrowLearnsRevocationWithoutTheAuthor: an escrow node that was
// offline during a hard revoke, and comes back while the author is
// offline, hears the revocation from another node (it follows the author's
// feed) and deletes its share before anyone can ask for it.
func TestEscrowLearnsRevocationWithoutTheAuthor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dirs := map[*node.Node]string{}
	start := func(cfg node.Config) *node.Node {
		cfg.RepoDir = t.TempDir()
		n := nodetest.Local(t, cfg)
		dirs[n] = cfg.RepoDir
		return n
	}
	w := newEscrowWorld(t, start)
	id := secret(t, w.author, "MARKER-FEED")
	res := publishEncrypted(t, w.author, id, api.PolicyOptions{EscrowNodes: w.escrowIDs()})
	keyID := res.EncryptedLesson.Encryption.KeyID
	if res.Key.Threshold != 2 {
		t.Fatalf("default threshold of 3 escrow nodes: %d", res.Key.Threshold)
	}
	off := w.escrow[2]
	if _, feeds, _ := off.Following(ctx); !contains(feeds, w.author.ID().String()) {
		t.Fatalf("the escrow node does not follow its author's feed: %v", feeds)
	}
	offDir := dirs[off]
	off.Close()
	if _, err := w.author.RevokeHard(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the revocation at the other escrow nodes", func() bool {
		return w.escrow[0].Store().Revoked(ctx, res.EncryptedLesson.Key())
	})
	w.author.Close()

	back := nodetest.Local(t, node.Config{RepoDir: offDir, Topics: []string{"lab"}})
	nodetest.Connect(t, back, w.escrow[0])
	nodetest.Eventually(t, "the returning escrow node to delete its share", func() bool {
		_, err := back.Store().EscrowShare(ctx, keyID)
		return errors.Is(err, store.ErrNotFound)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestKeyRevokedAfterRestart: the author answers KEY_REVOKED for a key it
// revoked, after a restart on the same repo, before it has heard from
// anyone.
func TestKeyRevokedAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	a := nodetest.Local(t, node.Config{RepoDir: dir})
	b := nodetest.Local(t, node.Config{})
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	id := secret(t, a, "MARKER-RESTART")
	el := publishEncrypted(t, a, id, api.PolicyOptions{}).EncryptedLesson
	rev, err := a.Revoke(ctx, id, "") // a plain revoke of an encrypted lesson revokes its key too
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	// Nobody else holds the revocation: b never got it (it is not on the topic).
	a2 := nodetest.Local(t, node.Config{RepoDir: dir, Keys: keys.Config{RelearnWait: time.Millisecond}})
	nodetest.Connect(t, b, a2)
	r := rawAsk(t, b.Host(), a2.ID(), el.Encryption.KeyID)
	if r.Error != protocol.CodeKeyRevoked || r.RevokedAt != rev.RevokedAt || r.Revocation == nil {
		t.Fatalf("after a restart the author answered %+v", r)
	}
	if _, err := b.Keys().Read(ctx, el); !errors.Is(err, protocol.ErrKeyRevoked) {
		t.Fatalf("read after the restart: %v", err)
	}
}

// TestRestoredBackupRelearns: an author restored from a backup made before
// a hard revoke holds the key again on disk; it re-learns the revocation
// from a peer before it serves anything, deletes the key again, and
// answers KEY_REVOKED.
func TestRestoredBackupRelearns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	a := nodetest.Local(t, node.Config{RepoDir: dir, Topics: []string{"lab"}})
	b := nodetest.Local(t, node.Config{Topics: []string{"lab"}})
	c := nodetest.Local(t, node.Config{})
	nodetest.TrustAll(t, a, b, c)
	nodetest.Connect(t, b, a)
	// b gets the ciphertext by gossip: publish once a knows b is in the
	// topic (the sync on connect ran before there was anything to sync).
	nodetest.WaitMesh(t, "lab", a, b)
	id := secret(t, a, "MARKER-BACKUP")
	el := publishEncrypted(t, a, id, api.PolicyOptions{}).EncryptedLesson
	keyID := el.Encryption.KeyID
	nodetest.Eventually(t, "the ciphertext at b", func() bool { return b.Store().Encrypted(el.Key()) })

	a.Close()
	backup := t.TempDir()
	copyRepo(t, backup, dir)
	a = nodetest.Local(t, node.Config{RepoDir: dir, Topics: []string{"lab"}})
	nodetest.Connect(t, b, a)
	// b holds only the ciphertext, so no revocation is pushed to it: it
	// hears by gossip, once the restarted a is in its topic mesh.
	nodetest.WaitMesh(t, "lab", a, b)
	if _, err := a.RevokeHard(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the revocation at b", func() bool { return b.Store().Revoked(ctx, el.Key()) })
	a.Close()

	// Restore the backup: the key is back on disk, the revocation is not.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyRepo(t, dir, backup)
	a = nodetest.Local(t, node.Config{RepoDir: dir, Topics: []string{"lab"}})
	if _, err := a.Store().LessonKey(ctx, keyID); err != nil {
		t.Fatalf("the backup does not hold the key: %v", err)
	}
	// c asks first; a has heard from no one yet. It must not hand the key out.
	nodetest.Connect(t, c, a)
	nodetest.Connect(t, b, a)
	r := rawAsk(t, c.Host(), a.ID(), keyID)
	if r.Error != protocol.CodeKeyRevoked || r.Revocation == nil {
		t.Fatalf("the restored author answered %+v", r)
	}
	if _, err := a.Store().LessonKey(ctx, keyID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the restored author kept the key: %v", err)
	}
	// It answered from the revocation it re-learned: either its relearn
	// gate ran (c's request) or b's sync brought the tombstone first.
	if !a.Keys().IsRelearned() && !a.Store().Revoked(ctx, el.Key()) {
		t.Fatal("the author answered without having re-learned the revocation")
	}
}

// copyRepo copies a stopped node's repo, as a backup tool would, with the
// identity key's mode.
func copyRepo(t *testing.T, dst, src string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dst, node.KeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRelearnGate: until a started node has re-learned its revocations
// from a peer, a key request is answered UNAVAILABLE (after at most
// RelearnWait), not with the key; once a peer answered, keys are served.
func TestRelearnGate(t *testing.T) {
	t.Parallel()
	m, nodes := nodetest.Mock(t, 2, 0, node.Config{Keys: keys.Config{RelearnWait: 50 * time.Millisecond}})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	el := publishEncrypted(t, a, secret(t, a, "MARKER-GATE"), api.PolicyOptions{Access: protocol.AccessPublic}).EncryptedLesson
	h, err := m.NewHost() // speaks no sync: a cannot re-learn from it
	if err != nil {
		t.Fatal(err)
	}
	nodetest.ConnectHost(t, h, a)
	if a.Keys().IsRelearned() {
		t.Fatal("re-learned without any peer")
	}
	r := rawAsk(t, h, a.ID(), el.Encryption.KeyID)
	if r.Error != protocol.CodeUnavailable || !strings.Contains(r.Message, "re-learning") {
		t.Fatalf("before re-learning the author answered %+v", r)
	}
	nodetest.Connect(t, b, a)
	if r := rawAsk(t, h, a.ID(), el.Encryption.KeyID); r.Key == "" || r.Policy == nil {
		t.Fatalf("with a peer to re-learn from, the author answered %+v", r)
	}
	if !a.Keys().IsRelearned() {
		t.Fatal("served a key without having re-learned")
	}
}

// TestRotate: mesh keys rotate re-encrypts under a new key and republishes
// (the newer publication supersedes the old at every node), the old key is
// KEY_REVOKED (rotated), its escrow shares are deleted, the new ones
// delivered, and a reader drops the old key at once.
func TestRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	net := nodetest.NewNet(0)
	t.Cleanup(func() { net.Close() })
	w := newEscrowWorld(t, func(cfg node.Config) *node.Node { return nodetest.MockNode(t, net, cfg) })
	a, b := w.author, w.reader
	nodetest.WaitMesh(t, "lab", a, b)
	id := secret(t, a, "MARKER-ROTATE")
	res := publishEncrypted(t, a, id, api.PolicyOptions{Access: protocol.AccessTrusted, EscrowNodes: w.escrowIDs(), Threshold: 2})
	old := res.EncryptedLesson
	nodetest.Eventually(t, "the first version at b", func() bool { return b.Store().Encrypted(old.Key()) })
	if _, err := b.Keys().Read(ctx, old); err != nil {
		t.Fatal(err)
	}
	rot, err := a.KeyRotate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	el := rot.EncryptedLesson
	if el.Encryption.KeyID == old.Encryption.KeyID || el.Publication.PublishedAt <= old.Publication.PublishedAt || rot.Key.Threshold != 2 {
		t.Fatalf("rotation %+v", rot)
	}
	for _, s := range rot.Notices {
		if !s.Delivered {
			t.Fatalf("rotation notice to %s (%s): %s", s.NodeID, s.Role, s.Error)
		}
	}
	if b.Keys().Cached(old.Encryption.KeyID) {
		t.Fatal("the reader kept the rotated key")
	}
	if r := rawAsk(t, b.Host(), a.ID(), old.Encryption.KeyID); r.Error != protocol.CodeKeyRevoked || r.Revocation != nil {
		t.Fatalf("the old key: %+v", r)
	}
	for _, e := range w.escrow {
		if _, err := e.Store().EscrowShare(ctx, old.Encryption.KeyID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("escrow node kept the rotated share: %v", err)
		}
		if _, err := e.Store().EscrowShare(ctx, el.Encryption.KeyID); err != nil {
			t.Fatalf("escrow node lacks the new share: %v", err)
		}
	}
	nodetest.Eventually(t, "the new version at b", func() bool {
		got, err := b.Store().RemoteEncrypted(ctx, el.Key())
		return err == nil && got.Encryption.KeyID == el.Encryption.KeyID
	})
	got, err := b.ReadLesson(ctx, el.Key())
	if err != nil || got.KeyID != el.Encryption.KeyID || !strings.Contains(got.Lesson.Content, "MARKER-ROTATE") {
		t.Fatalf("read after rotation: %+v %v", got, err)
	}
	if _, err := b.Keys().Read(ctx, old); !errors.Is(err, protocol.ErrKeyRevoked) {
		t.Fatalf("the old ciphertext after rotation: %v", err)
	}
	list, _ := a.KeyList(ctx)
	var live, rotated int
	for _, k := range list {
		if k.Revoked && k.RevokeReason == "rotated" {
			rotated++
		} else if !k.Revoked {
			live++
		}
	}
	if live != 1 || rotated != 1 {
		t.Fatalf("key list after rotation %+v", list)
	}
}

// TestTampering: a flipped ciphertext, a swapped nonce, tag or keyId, and
// a blob moved under another lesson ID are refused with a clear error,
// whether the change breaks the signature or the tamperer signed it again.
func TestTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	el := publishEncrypted(t, a, secret(t, a, "MARKER-TAMPER"), api.PolicyOptions{}).EncryptedLesson
	other := publishEncrypted(t, a, secret(t, a, "MARKER-OTHER"), api.PolicyOptions{}).EncryptedLesson
	if _, err := b.Keys().Read(ctx, el); err != nil {
		t.Fatal(err)
	}
	mallory := nodetest.NewKey(t)
	// flip flips one bit of the ciphertext itself: still valid base64
	// (flipping a base64 letter could make '+' a '*').
	flip := func(s string) string {
		c, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		c[len(c)/2] ^= 1
		return base64.StdEncoding.EncodeToString(c)
	}
	cases := []struct {
		name   string
		change func(e *protocol.EncryptedLesson)
	}{
		{"flipped ciphertext", func(e *protocol.EncryptedLesson) { e.Ciphertext = flip(e.Ciphertext) }},
		{"swapped nonce", func(e *protocol.EncryptedLesson) { e.Encryption.Nonce = other.Encryption.Nonce }},
		{"swapped tag", func(e *protocol.EncryptedLesson) { e.Encryption.Tag = other.Encryption.Tag }},
		{"swapped keyId", func(e *protocol.EncryptedLesson) { e.Encryption.KeyID = other.Encryption.KeyID }},
		{"moved under another lessonId", func(e *protocol.EncryptedLesson) { e.LessonID = other.LessonID }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// As it arrives: the author's signature no longer covers it.
			e := *el
			tc.change(&e)
			_, err := b.Keys().Read(ctx, &e)
			wantCode(t, err, protocol.ErrInvalidSignature, "signature does not match")
		})
		t.Run(tc.name+", re-signed by its author's key", func(t *testing.T) {
			// Even the author's own key cannot move a blob: the GCM AAD binds
			// keyId, lessonId and publisher, and the tag the bytes.
			e := *el
			tc.change(&e)
			e.Signature = protocol.Signature{}
			s, err := protocol.SignEncrypted(nodetest.Key(a), &e, e.Publication, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.Keys().Read(ctx, s)
			if !errors.Is(err, protocol.ErrDecrypt) && !errors.Is(err, protocol.ErrKeyRevoked) {
				t.Fatalf("got %v, want a decryption failure", err)
			}
			if errors.Is(err, protocol.ErrDecrypt) && !strings.Contains(err.Error(), "wrong key, or the ciphertext, nonce, tag, keyId, lessonId or publisher was altered") {
				t.Fatalf("unclear error: %v", err)
			}
		})
	}
	t.Run("re-signed as another publisher", func(t *testing.T) {
		e := *el
		e.Signature = protocol.Signature{}
		id := nodetest.PeerOf(t, mallory).String()
		e.Signature.NodeID = id
		s, err := protocol.SignEncrypted(mallory, &e, e.Publication, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// Mallory runs no key server: the key cannot even be asked for;
		// with the right key anyway, the AAD names the real publisher.
		if _, err := b.Keys().Read(ctx, s); err == nil {
			t.Fatal("a blob re-signed by another node was read")
		}
		key, _ := a.Store().LessonKey(ctx, el.Encryption.KeyID)
		if _, err := protocol.DecryptLesson(s, key.Key); !errors.Is(err, protocol.ErrDecrypt) {
			t.Fatalf("decrypt of a blob moved to another publisher: %v", err)
		}
	})
}

// httpKey asks base's GET /mesh/v1/keys/{keyId} as the node whose key is
// key (nil: unsigned), and checks the answer's signature.
func httpKey(t *testing.T, base, keyID string, key ed25519.PrivateKey) (int, *protocol.KeyResponse, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+protocol.KeyHTTPPrefix+keyID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		sr, err := protocol.SignKeyRequest(key, keyID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sr.KeyRequestHeaders() {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	kr, signer, err := protocol.VerifyKeyResponseHTTP(body, protocol.VerifyOptions{})
	if err != nil {
		t.Fatalf("answer %d %s: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, kr, signer
}

// TestKeyOverHTTP: the seed's GET /mesh/v1/keys/{keyId} on the public API
// answers a signed request with the key sealed to the requester (useless
// to anyone else, safe on plain HTTP), an escrow node with its share
// sealed the same way; unsigned, denied, unknown and revoked requests get
// their codes; every answer is signed by the serving node.
func TestKeyOverHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	net := nodetest.NewNet(0)
	t.Cleanup(func() { net.Close() })
	public := directory.Config{PublicAPI: "127.0.0.1:0"}
	w := newEscrowWorld(t, func(cfg node.Config) *node.Node {
		cfg.Directory = public
		return nodetest.MockNode(t, net, cfg)
	})
	a, b := w.author, w.reader
	outsider := nodetest.NewKey(t)
	el := publishEncrypted(t, a, secret(t, a, "MARKER-HTTP"), api.PolicyOptions{Access: protocol.AccessTrusted, EscrowNodes: w.escrowIDs(), Threshold: 2}).EncryptedLesson
	keyID := el.Encryption.KeyID
	base := a.Directory().PublicURL()
	bKey := nodetest.Key(b)

	status, kr, signer := httpKey(t, base, keyID, bKey)
	if status != http.StatusOK || signer != a.ID().String() || kr.SealedKey == "" || kr.Key != "" || kr.Policy == nil {
		t.Fatalf("%d %+v signed by %s", status, kr, signer)
	}
	sealed, _ := base64.StdEncoding.DecodeString(kr.SealedKey)
	key, err := protocol.OpenKey(bKey, sealed, protocol.KeySealInfo(keyID, b.ID().String()))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := protocol.DecryptLesson(el, key); err != nil || !strings.Contains(l.Content, "MARKER-HTTP") {
		t.Fatalf("decrypt with the key from HTTP: %v", err)
	}
	if _, err := protocol.OpenKey(outsider, sealed, protocol.KeySealInfo(keyID, b.ID().String())); !errors.Is(err, protocol.ErrDecrypt) {
		t.Fatalf("someone else opened the sealed key: %v", err)
	}

	// An escrow node's public API: its share, sealed to the requester.
	status, kr, signer = httpKey(t, w.escrow[0].Directory().PublicURL(), keyID, bKey)
	if status != http.StatusOK || signer != w.escrow[0].ID().String() || kr.SealedShare == "" || kr.Policy == nil {
		t.Fatalf("escrow: %d %+v", status, kr)
	}
	sealed, _ = base64.StdEncoding.DecodeString(kr.SealedShare)
	if _, err := protocol.OpenKey(bKey, sealed, protocol.ShareSealInfo(keyID, b.ID().String())); err != nil {
		t.Fatalf("the sealed share does not open: %v", err)
	}

	for _, tc := range []struct {
		name   string
		keyID  string
		key    ed25519.PrivateKey
		status int
		code   protocol.Code
	}{
		{"unsigned", keyID, nil, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"outside the policy", keyID, outsider, http.StatusForbidden, protocol.CodeAccessDenied},
		{"unknown key", "kNoSuchKey", bKey, http.StatusNotFound, protocol.CodeNotFound},
	} {
		status, kr, _ := httpKey(t, base, tc.keyID, tc.key)
		if status != tc.status || kr.Error != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, status, kr, tc.status, tc.code)
		}
	}

	if _, err := a.RevokeHard(ctx, el.LessonID, ""); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{a, w.escrow[0]} {
		status, kr, _ := httpKey(t, n.Directory().PublicURL(), keyID, bKey)
		if status != http.StatusGone || kr.Error != protocol.CodeKeyRevoked || kr.RevokedAt == 0 {
			t.Fatalf("after the revoke, %s answered %d %+v", n.ID(), status, kr)
		}
	}
}

// TestReaderMemoryExpires: a reader keeps a key and its plaintext in
// memory no longer than the answer's expiresAt (the author's KeyTTL), and
// asks the author again after.
func TestReaderMemoryExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{Keys: keys.Config{KeyTTL: 300 * time.Millisecond}})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	el := publishEncrypted(t, a, secret(t, a, "MARKER-TTL"), api.PolicyOptions{}).EncryptedLesson
	p, err := b.Keys().Read(ctx, el)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(p.ExpiresAt); d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("expires in %s, want within the author's 300 ms", d)
	}
	if !b.Keys().Cached(el.Encryption.KeyID) {
		t.Fatal("not held after the read")
	}
	nodetest.Eventually(t, "the key and plaintext to leave b's memory", func() bool { return !b.Keys().Cached(el.Encryption.KeyID) })
	if time.Now().Before(p.ExpiresAt) {
		t.Fatal("dropped before its expiresAt") // harmless, but the clock is off
	}
	p2, err := b.Keys().Read(ctx, el)
	if err != nil || p2.From != "author" {
		t.Fatalf("read after the expiry: %+v %v", p2, err)
	}
}

// TestHardRevokeAfterDelete: a record published encrypted and then
// deleted still has a live key, which opens every copy out there: a hard
// revoke kills it all the same.
func TestHardRevokeAfterDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	id := secret(t, a, "MARKER-DELETED")
	el := publishEncrypted(t, a, id, api.PolicyOptions{}).EncryptedLesson
	if _, err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Keys().Read(ctx, el); err != nil {
		t.Fatalf("the key outlives the record: %v", err)
	}
	out, err := a.RevokeHard(ctx, id, "")
	if err != nil || len(out.KeyIDs) != 1 {
		t.Fatalf("hard revoke of a deleted record: %+v %v", out, err)
	}
	if r := rawAsk(t, b.Host(), a.ID(), el.Encryption.KeyID); r.Error != protocol.CodeKeyRevoked {
		t.Fatalf("after the revoke: %+v", r)
	}
}
