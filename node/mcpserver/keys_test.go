package mcpserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/mcpserver"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// TestMCPKeys: an agent publishes a memory encrypted, another node's agent
// reads it (decrypted) and checks its key, the author changes the policy,
// rotates the key and revokes it for good, and the reader can no longer
// read it; failures carry their MESH codes.
func TestMCPKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{})
	a, b := nodes[0], nodes[1]
	nodetest.TrustAll(t, a, b)
	nodetest.Connect(t, b, a)
	if _, _, err := a.Put(ctx, &protocol.Lesson{ID: "sealed-1", Type: "lesson", Title: "Sealed", Content: "SEALED-CONTENT for readers"}); err != nil {
		t.Fatal(err)
	}
	as, bs := mcpSession(t, a, nil), mcpSession(t, b, nil)

	var pub api.EncryptedPublication
	sum, _ := callOK(t, as, mcpserver.ToolPublishEncrypted, map[string]any{"id": "sealed-1", "access": "explicit", "allowed_nodes": []string{b.ID().String()}}, &pub)
	if pub.EncryptedLesson == nil || pub.Key.Access != protocol.AccessExplicit || !strings.Contains(sum, "encrypted") {
		t.Fatalf("publish: %s %+v", sum, pub)
	}
	key := pub.EncryptedLesson.Key()

	var read api.ReadResult
	sum, _ = callOK(t, bs, mcpserver.ToolRead, map[string]any{"key": key}, &read)
	if !read.Encrypted || !strings.Contains(read.Lesson.Content, "SEALED-CONTENT") || !strings.Contains(sum, "decrypted") {
		t.Fatalf("read: %s %+v", sum, read)
	}
	var st api.KeyStatus
	callOK(t, bs, mcpserver.ToolKeyStatus, map[string]any{"encrypted_lesson": pub.EncryptedLesson}, &st)
	if st.Status != api.KeyAvailable {
		t.Fatalf("status %+v", st)
	}
	var list struct {
		Keys []api.KeyInfo `json:"keys"`
	}
	callOK(t, as, mcpserver.ToolKeysList, map[string]any{}, &list)
	if len(list.Keys) != 1 || list.Keys[0].Readers != 1 {
		t.Fatalf("keys list %+v", list)
	}
	var info api.KeyInfo
	callOK(t, as, mcpserver.ToolKeysPolicy, map[string]any{"id": "sealed-1", "access": "trusted", "min_trust_score": 0.5}, &info)
	if info.Access != protocol.AccessTrusted || info.MinTrustScore != 0.5 {
		t.Fatalf("policy %+v", info)
	}
	var rot api.EncryptedPublication
	callOK(t, as, mcpserver.ToolKeysRotate, map[string]any{"id": "sealed-1"}, &rot)
	if rot.Key.KeyID == pub.Key.KeyID {
		t.Fatal("rotation kept the key")
	}
	var rev api.HardRevokeResult
	sum, _ = callOK(t, as, mcpserver.ToolRevokeHard, map[string]any{"id": "sealed-1", "reason": "private"}, &rev)
	if len(rev.KeyIDs) != 1 || !strings.Contains(sum, "for good") {
		t.Fatalf("revoke: %s %+v", sum, rev)
	}
	if code, _ := callErr(t, bs, mcpserver.ToolRead, map[string]any{"key": key}); code != protocol.CodeAlreadyRevoked {
		t.Fatalf("read after the revoke: %s", code)
	}
	callOK(t, bs, mcpserver.ToolKeyStatus, map[string]any{"encrypted_lesson": pub.EncryptedLesson}, &st)
	if st.Status != api.KeyRevoked {
		t.Fatalf("status after the revoke %+v", st)
	}

	for _, tc := range []struct {
		cs   *mcp.ClientSession
		tool string
		args map[string]any
		want protocol.Code
	}{
		{as, mcpserver.ToolPublishEncrypted, map[string]any{"id": "sealed-1"}, protocol.CodeAlreadyRevoked},
		{as, mcpserver.ToolPublishEncrypted, map[string]any{"id": "nope", "access": "friends"}, protocol.CodeUnknownLesson},
		{as, mcpserver.ToolKeysRotate, map[string]any{"id": "nope"}, protocol.CodeUnknownLesson},
		{bs, mcpserver.ToolRead, map[string]any{"key": "no-key"}, protocol.CodeInvalidRequest},
		{bs, mcpserver.ToolKeyStatus, map[string]any{}, protocol.CodeInvalidRequest},
		{bs, mcpserver.ToolRevokeHard, map[string]any{"id": "../x"}, protocol.CodeInvalidRequest},
	} {
		if code, text := callErr(t, tc.cs, tc.tool, tc.args); code != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.tool, tc.args, text, tc.want)
		}
	}
}
