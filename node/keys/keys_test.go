package keys_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
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
