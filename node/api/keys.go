package api

import (
	"context"

	"github.com/meshprotocol/mesh/protocol"
)

// Keys is what a controller can do with encrypted lessons and their keys:
// publish a record encrypted, read one (its key fetched from the author or
// its escrow nodes), revoke one for good (the key deleted), and manage the
// keys and their policies.
type Keys interface {
	// PublishEncrypted encrypts the record id under a new key, signs the
	// encrypted form, keeps the key and its policy, announces a public one,
	// and hands the escrow shares (if any) to the escrow nodes.
	PublishEncrypted(ctx context.Context, id string, opts EncryptOptions) (*EncryptedPublication, error)
	// ExportEncrypted returns the EncryptedLesson of a record published
	// encrypted: it holds no plaintext.
	ExportEncrypted(ctx context.Context, id string) (*protocol.EncryptedLesson, error)
	// ReadLesson finds the lesson key (lessonId@nodeId), verifies it, and,
	// for an encrypted one, fetches its key (from a cache kept in memory,
	// the author, or k of its escrow nodes) and decrypts it. An error says
	// why not: ACCESS_DENIED, KEY_REVOKED, UNREACHABLE, ...
	ReadLesson(ctx context.Context, key string) (*ReadResult, error)
	// RevokeHard revokes an encrypted publication and deletes its keys:
	// KEY_REVOKED forever, the revocation announced and pushed to the
	// readers served and the escrow nodes.
	RevokeHard(ctx context.Context, id, reason string) (*HardRevokeResult, error)
	// KeyList lists the keys this node holds: its own (author), the escrow
	// shares it holds (escrow), those it fetched as a reader and still
	// holds in memory (reader), and those it knows revoked.
	KeyList(ctx context.Context) ([]KeyInfo, error)
	// KeyPolicySet replaces the policy of an encrypted publication's key
	// (same key; escrow shares are dealt again when the escrow changes).
	KeyPolicySet(ctx context.Context, id string, opts PolicyOptions) (*KeyInfo, error)
	// KeyRotate re-encrypts a publication under a new key, republishes it
	// (the newer publication supersedes the older), and retires the old
	// key.
	KeyRotate(ctx context.Context, id string) (*EncryptedPublication, error)
	// KeyStatus says whether the key of an encrypted lesson is still
	// available to this node, without decrypting anything.
	KeyStatus(ctx context.Context, el *protocol.EncryptedLesson) (*KeyStatus, error)
}

// PolicyOptions say who may have a lesson key (the seed's KeyPolicy).
type PolicyOptions struct {
	// Access is public, trusted or explicit; "" means trusted.
	Access string `json:"access,omitempty"`
	// AllowedNodes are the readers of explicit access.
	AllowedNodes []string `json:"allowedNodes,omitempty"`
	// MinTrustScore is the lowest trust score (from the author) of a
	// reader of trusted access; 0 means any trust path.
	MinTrustScore float64 `json:"minTrustScore,omitempty"`
	// EscrowNodes hold k-of-n shares of the key so that readers can read
	// while the author is offline; each must be trusted fully by the
	// author. Empty means no escrow.
	EscrowNodes []string `json:"escrowNodes,omitempty"`
	// Threshold is k, the shares it takes; 0 means a majority of
	// EscrowNodes.
	Threshold int `json:"threshold,omitempty"`
	// ExpiresAt ends the policy, Unix ms: nobody is given the key after
	// it. 0 means no end.
	ExpiresAt int64 `json:"expiresAt,omitempty"`
}

// EncryptOptions say how to publish a record encrypted.
type EncryptOptions struct {
	// Visibility is public or unlisted; "" means public.
	Visibility string `json:"visibility,omitempty"`
	// Topics are the MESH topics to announce on.
	Topics []string `json:"topics,omitempty"`
	// Policy says who may have the key.
	Policy PolicyOptions `json:"policy"`
}

// PublishEncryptedRequest is the control API's request.
type PublishEncryptedRequest struct {
	ID string `json:"id"`
	EncryptOptions
}

// KeyPolicyRequest is the control API's policy change.
type KeyPolicyRequest struct {
	ID string `json:"id"`
	PolicyOptions
}

// NoticeStatus says whether a node was told of a key's change (an escrow
// share delivered, a rotation or a hard revoke pushed).
type NoticeStatus struct {
	NodeID string `json:"nodeId"`
	// Role is "escrow" or "reader".
	Role string `json:"role"`
	// Delivered is true when the node acknowledged the notice; otherwise
	// it is kept and sent again when the node is next seen.
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

// EncryptedPublication is the answer to PublishEncrypted and KeyRotate.
type EncryptedPublication struct {
	EncryptedLesson *protocol.EncryptedLesson `json:"encryptedLesson"`
	// Key describes the key and its policy.
	Key KeyInfo `json:"key"`
	// Notices say which escrow nodes (and, for a rotation, readers of the
	// old key) were told.
	Notices []NoticeStatus `json:"notices"`
}

// HardRevokeResult is the answer to RevokeHard.
type HardRevokeResult struct {
	Revocation *protocol.Revocation `json:"revocation"`
	// KeyIDs are the keys deleted and marked revoked.
	KeyIDs []string `json:"keyIds"`
	// Notices say which readers and escrow nodes were told.
	Notices []NoticeStatus `json:"notices"`
}

// Roles of a KeyInfo.
const (
	KeyRoleAuthor = "author"
	KeyRoleEscrow = "escrow"
	KeyRoleReader = "reader"
)

// KeyInfo describes one key. It never holds the key.
type KeyInfo struct {
	KeyID    string `json:"keyId"`
	LessonID string `json:"lessonId"`
	// NodeID is the key's author.
	NodeID string `json:"nodeId"`
	// Role is author, escrow or reader (KeyRole...).
	Role          string   `json:"role"`
	Access        string   `json:"access,omitempty"`
	AllowedNodes  []string `json:"allowedNodes,omitempty"`
	MinTrustScore float64  `json:"minTrustScore,omitempty"`
	ExpiresAt     int64    `json:"expiresAt,omitempty"`
	EscrowNodes   []string `json:"escrowNodes,omitempty"`
	Threshold     int      `json:"threshold,omitempty"`
	IssuedAt      int64    `json:"issuedAt,omitempty"`
	// Readers is how many nodes the author gave the key to.
	Readers int `json:"readers,omitempty"`
	// CachedUntil is, for a reader, when the key and what it decrypted are
	// dropped from memory (Unix ms).
	CachedUntil int64 `json:"cachedUntil,omitempty"`
	// Revoked is set for a key revoked (RevokedAt, Unix ms; RevokeReason
	// "revoked" or "rotated"): KEY_REVOKED forever.
	Revoked      bool   `json:"revoked,omitempty"`
	RevokedAt    int64  `json:"revokedAt,omitempty"`
	RevokeReason string `json:"revokeReason,omitempty"`
}

// ReadResult is the answer to ReadLesson: the lesson, in the clear.
type ReadResult struct {
	Key string `json:"key"`
	// Lesson is the record, decrypted if it was published encrypted. It
	// is held in memory only, until ExpiresAt.
	Lesson *protocol.Lesson `json:"lesson"`
	// Encrypted says the lesson travels encrypted; KeyID is its key, and
	// ExpiresAt when this node drops the key and the plaintext (Unix ms).
	Encrypted bool   `json:"encrypted"`
	KeyID     string `json:"keyId,omitempty"`
	ExpiresAt int64  `json:"expiresAt,omitempty"`
	// From is where the lesson came from (this node, its cache, the
	// publisher, a peer); KeyFrom where the key came from (memory, the
	// author, escrow nodes).
	From    string `json:"from"`
	KeyFrom string `json:"keyFrom,omitempty"`
	// PublishedAt is the publication's time, Unix ms.
	PublishedAt int64 `json:"publishedAt"`
}

// Key statuses of a KeyStatus.
const (
	KeyAvailable   = "available"
	KeyRevoked     = "revoked"
	KeyDenied      = "denied"
	KeyUnreachable = "unreachable"
)

// KeyStatus is the answer to KeyStatus.
type KeyStatus struct {
	KeyID string `json:"keyId"`
	Key   string `json:"key"`
	// Status is available, revoked, denied or unreachable (Key...).
	Status string `json:"status"`
	// Detail says why, in words.
	Detail    string `json:"detail"`
	RevokedAt int64  `json:"revokedAt,omitempty"`
	// From is who answered: the author, escrow nodes, or this node's
	// memory.
	From string `json:"from,omitempty"`
}
