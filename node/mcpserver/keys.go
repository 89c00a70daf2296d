package mcpserver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// MCP tools of encrypted lessons and their keys (api.Keys).
const (
	ToolPublishEncrypted = "mesh_publish_encrypted"
	ToolRead             = "mesh_read"
	ToolRevokeHard       = "mesh_revoke_hard"
	ToolKeysList         = "mesh_keys_list"
	ToolKeysPolicy       = "mesh_keys_policy"
	ToolKeysRotate       = "mesh_keys_rotate"
	ToolKeyStatus        = "mesh_key_status"
)

type mcpPolicyArgs struct {
	Access        string   `json:"access,omitempty" jsonschema:"who may have the key: public (anyone), trusted (nodes with a trust path from this node; the default) or explicit (allowed_nodes only)"`
	AllowedNodes  []string `json:"allowed_nodes,omitempty" jsonschema:"explicit access: the node IDs (12D3KooW...) that may read"`
	MinTrustScore float64  `json:"min_trust_score,omitempty" jsonschema:"trusted access: the lowest trust score a reader needs, 0 to 1 (1 direct, halved per hop); 0 means any trust path"`
	EscrowNodes   []string `json:"escrow_nodes,omitempty" jsonschema:"node IDs, trusted fully by this node, that hold k-of-n shares of the key so readers can read while this node is offline"`
	Threshold     int      `json:"threshold,omitempty" jsonschema:"escrow: the shares it takes to rebuild the key (k); default a majority of escrow_nodes"`
}

func (a mcpPolicyArgs) options() api.PolicyOptions {
	return api.PolicyOptions{Access: a.Access, AllowedNodes: a.AllowedNodes, MinTrustScore: a.MinTrustScore, EscrowNodes: a.EscrowNodes, Threshold: a.Threshold}
}

type mcpPublishEncryptedArgs struct {
	ID         string   `json:"id" jsonschema:"the record's id"`
	Visibility string   `json:"visibility,omitempty" jsonschema:"public (the default: the ciphertext is announced) or unlisted (fetchable by exact key only)"`
	Topics     []string `json:"topics,omitempty" jsonschema:"MESH topics to announce the encrypted lesson on"`
	mcpPolicyArgs
}

type mcpKeyPolicyArgs struct {
	ID string `json:"id" jsonschema:"the id of a record published encrypted"`
	mcpPolicyArgs
}

type mcpReadArgs struct {
	Key string `json:"key" jsonschema:"the lesson's key, lessonId@nodeId"`
}

type mcpRevokeArgs struct {
	ID     string `json:"id" jsonschema:"the id of a record published encrypted"`
	Reason string `json:"reason,omitempty" jsonschema:"outdated, incorrect, private or other"`
}

type mcpKeyStatusArgs struct {
	EncryptedLesson *protocol.EncryptedLesson `json:"encrypted_lesson" jsonschema:"an EncryptedLesson, as mesh_export_encrypted or a peer gave it"`
}

// keyList is the answer of mesh_keys_list: an object, as a tool's
// structured content must be.
type keyList struct {
	Keys []api.KeyInfo `json:"keys"`
}

// addKeyTools adds the tools of encrypted lessons and keys.
func addKeyTools(s *mcp.Server, log *slog.Logger, t tools) {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)}
	addTool(s, log, &mcp.Tool{
		Name: ToolPublishEncrypted, Title: "Publish a record encrypted",
		Description: "Encrypt a record (AES-256-GCM) under a new key this node keeps, sign the encrypted form, and " +
			"publish it: every node may hold and forward the ciphertext, only the readers the key policy admits get " +
			"the key, and mesh_revoke_hard later deletes the key so that every copy becomes unreadable. Answers the " +
			"EncryptedLesson, the key's policy and which escrow nodes took their share.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, "publish_encrypted", t.publishEncrypted)
	addTool(s, log, &mcp.Tool{
		Name: ToolRead, Title: "Read a lesson by key",
		Description: "Find a lesson by its key (lessonId@nodeId), verify its signature and, if it is encrypted, " +
			"fetch its key (from the author, or k of its escrow nodes) and decrypt it. Fails with ACCESS_DENIED, " +
			"KEY_REVOKED or UNREACHABLE and the reason when it cannot be read. The plaintext is held in memory only.",
		Annotations: readOnly,
	}, "read", t.read)
	addTool(s, log, &mcp.Tool{
		Name: ToolRevokeHard, Title: "Revoke an encrypted lesson for good",
		Description: "Delete the key of an encrypted publication (KEY_REVOKED forever), announce the revocation, and " +
			"push it to the readers and escrow nodes: every copy of the ciphertext becomes noise. What a reader " +
			"already decrypted and saved is out of reach.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, "revoke_hard", t.revokeHard)
	addTool(s, log, &mcp.Tool{
		Name: ToolKeysList, Title: "List keys",
		Description: "The keys this node holds (its own, escrow shares it holds, those in a reader's memory) and those " +
			"it knows revoked, with their policies. Never the keys themselves.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(false)},
	}, "keys_list", t.keysList)
	addTool(s, log, &mcp.Tool{
		Name: ToolKeysPolicy, Title: "Change a key's policy",
		Description: "Replace who may have the key of a record published encrypted (the same key). Readers that " +
			"already hold it keep it until its expiry: rotate the key to cut them off.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, "keys_policy", t.keysPolicy)
	addTool(s, log, &mcp.Tool{
		Name: ToolKeysRotate, Title: "Rotate a key",
		Description: "Re-encrypt a record published encrypted under a new key, republish it (the newer publication " +
			"supersedes the old), and revoke the old key.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
	}, "keys_rotate", t.keysRotate)
	addTool(s, log, &mcp.Tool{
		Name: ToolKeyStatus, Title: "Verify an encrypted lesson",
		Description: "Check an EncryptedLesson's signature (over the ciphertext: no key needed) and say whether its " +
			"key is still available to this node: available, revoked, denied or unreachable.",
		Annotations: readOnly,
	}, "key_status", t.keyStatus)
}

func (t tools) publishEncrypted(ctx context.Context, a *mcpPublishEncryptedArgs) (*api.EncryptedPublication, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	res, err := t.api.PublishEncrypted(ctx, a.ID, api.EncryptOptions{Visibility: a.Visibility, Topics: a.Topics, Policy: a.options()})
	if err != nil {
		return nil, "", err
	}
	sum := fmt.Sprintf("published %s encrypted as %s, key %s (%s access)", a.ID, res.EncryptedLesson.Key(), res.Key.KeyID, res.Key.Access)
	if n := len(res.Key.EscrowNodes); n > 0 {
		sum += fmt.Sprintf(", %d-of-%d escrow", res.Key.Threshold, n)
	}
	return res, sum, nil
}

func (t tools) read(ctx context.Context, a *mcpReadArgs) (*api.ReadResult, string, error) {
	res, err := t.api.ReadLesson(ctx, a.Key)
	if err != nil {
		return nil, "", err
	}
	sum := a.Key + " " + recordSummary(res.Lesson)
	if res.Encrypted {
		sum += fmt.Sprintf(" (decrypted; key from %s, held until %s)", res.KeyFrom, time.UnixMilli(res.ExpiresAt).UTC().Format(time.RFC3339))
	}
	return res, sum, nil
}

func (t tools) revokeHard(ctx context.Context, a *mcpRevokeArgs) (*api.HardRevokeResult, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	res, err := t.api.RevokeHard(ctx, a.ID, a.Reason)
	if err != nil {
		return nil, "", err
	}
	told := 0
	for _, s := range res.Notices {
		if s.Delivered {
			told++
		}
	}
	return res, fmt.Sprintf("revoked %s for good: %d key(s) deleted, %d of %d readers and escrow nodes told",
		res.Revocation.Key(), len(res.KeyIDs), told, len(res.Notices)), nil
}

func (t tools) keysList(ctx context.Context, _ *struct{}) (*keyList, string, error) {
	list, err := t.api.KeyList(ctx)
	if err != nil {
		return nil, "", err
	}
	if list == nil {
		list = []api.KeyInfo{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d keys", len(list))
	for _, k := range list {
		state := k.Access
		if k.Revoked {
			state = "revoked (" + k.RevokeReason + ")"
		}
		fmt.Fprintf(&b, "\n%s %s %s@%s %s", k.Role, k.KeyID, k.LessonID, k.NodeID, state)
	}
	return &keyList{Keys: list}, b.String(), nil
}

func (t tools) keysPolicy(ctx context.Context, a *mcpKeyPolicyArgs) (*api.KeyInfo, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	info, err := t.api.KeyPolicySet(ctx, a.ID, a.options())
	if err != nil {
		return nil, "", err
	}
	return info, fmt.Sprintf("key %s of %s: %s access", info.KeyID, a.ID, info.Access), nil
}

func (t tools) keysRotate(ctx context.Context, a *mcpIDArgs) (*api.EncryptedPublication, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	res, err := t.api.KeyRotate(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	return res, fmt.Sprintf("rotated %s: new key %s; the old one is revoked", a.ID, res.Key.KeyID), nil
}

func (t tools) keyStatus(ctx context.Context, a *mcpKeyStatusArgs) (*api.KeyStatus, string, error) {
	if a.EncryptedLesson == nil {
		return nil, "", fmt.Errorf("%w: encrypted_lesson: required", protocol.ErrInvalid)
	}
	st, err := t.api.KeyStatus(ctx, a.EncryptedLesson)
	if err != nil {
		return nil, "", err
	}
	return st, fmt.Sprintf("signature valid; key %s: %s (%s)", st.KeyID, st.Status, st.Detail), nil
}
