package dht

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/meshprotocol/mesh/protocol"
)

// NodeNamespace is the DHT record namespace of signed node records: a node's
// record is stored under /mesh-node/<nodeId> (the base58 peer ID string).
const NodeNamespace = "mesh-node"

// nodeKeyPrefix starts every node record key.
const nodeKeyPrefix = "/" + NodeNamespace + "/"

// NodeKey is the DHT key of a node's signed record: "/mesh-node/<nodeId>".
func NodeKey(id peer.ID) string { return nodeKeyPrefix + id.String() }

// parseNodeKey returns the node ID a node record key names. The ID must be a
// canonical Ed25519 node ID: anything else could never carry a valid record.
func parseNodeKey(key string) (peer.ID, error) {
	s, ok := strings.CutPrefix(key, nodeKeyPrefix)
	if !ok {
		return "", fmt.Errorf("%w: dht key %q is not under %s", protocol.ErrInvalid, truncate(key), nodeKeyPrefix)
	}
	if _, err := protocol.PublicKeyOf(s); err != nil {
		return "", fmt.Errorf("dht key %q: %w", truncate(key), err)
	}
	return peer.Decode(s)
}

// TopicKey is the provider key of a MESH topic: a CIDv1 (raw codec) of the
// SHA-256 of "mesh/topic/<topic>", the topic lower-cased. Nodes that follow
// the topic provide it.
func TopicKey(topic string) cid.Cid { return contentKey("mesh/topic/" + strings.ToLower(topic)) }

// RoleKey is the provider key of a role: a CIDv1 (raw codec) of the SHA-256
// of "mesh/role/<role>". Directory nodes provide RoleKey("directory").
func RoleKey(role string) cid.Cid { return contentKey("mesh/role/" + role) }

func contentKey(s string) cid.Cid {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		panic(err) // SHA2-256 is always registered
	}
	return cid.NewCidV1(cid.Raw, h)
}

// checkName checks a topic or role name the way node records do.
func checkName(what, s string) error {
	if s == "" || len(s) > protocol.MaxTagLength {
		return fmt.Errorf("%w: %s %q: want 1 to %d letters, digits, '_', '-' or '.'", protocol.ErrInvalid, what, truncate(s), protocol.MaxTagLength)
	}
	if err := protocol.ValidateID(s); err != nil {
		return fmt.Errorf("%w: %s %q: use letters, digits, '_', '-' or '.'", protocol.ErrInvalid, what, truncate(s))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
