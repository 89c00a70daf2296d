package node

import (
	"context"
	"crypto/ed25519"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// API is what a controller (the CLI, an agent) can ask of a node. *Node
// implements it in-process and *Client over the control API, so the same
// code drives a running daemon or an offline repo.
type API interface {
	Info(ctx context.Context) (*Info, error)
	Put(ctx context.Context, rec *protocol.Lesson) (id string, created bool, err error)
	Get(ctx context.Context, id string) (*protocol.Lesson, error)
	Delete(ctx context.Context, id string) (bool, error)
	List(ctx context.Context, o store.ListOptions) (*store.ListResult, error)
	Search(ctx context.Context, q store.Query) (*store.SearchResult, error)
	Status(ctx context.Context) (*Status, error)
	AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error)
	Publish(ctx context.Context, id string, opts PublishOptions) (*protocol.SignedLesson, error)
	Export(ctx context.Context, id string) (*protocol.SignedLesson, error)

	Revoke(ctx context.Context, id, reason string) (*protocol.Revocation, error)
	Follow(ctx context.Context, target string) error
	Unfollow(ctx context.Context, target string) error
	Following(ctx context.Context) (topics, feeds []string, err error)
	Connect(ctx context.Context, addr string) (peer.ID, error)
	Peers(ctx context.Context) ([]PeerInfo, error)
	Sync(ctx context.Context, progress func(SyncProgress)) error

	TrustSet(ctx context.Context, nodeID string, level trust.Level, note string) error
	TrustRemove(ctx context.Context, nodeID string) error
	TrustList(ctx context.Context) ([]TrustEntry, error)
	TrustPath(ctx context.Context, nodeID string) (*TrustPathInfo, error)
	TrustExport(ctx context.Context) ([]byte, error)
	TrustImport(ctx context.Context, data []byte) (int, error)
	Referrals(ctx context.Context) ([]*protocol.Referral, error)
	VerifyKey(ctx context.Context, key string) (*VerifyReport, error)
	SearchNetwork(ctx context.Context, req FedSearchRequest) (*FedSearchResponse, error)
}

var (
	_ API = (*Node)(nil)
	_ API = (*Client)(nil)
)

// PublishOptions say how to publish a record.
type PublishOptions struct {
	// Visibility is public or unlisted.
	Visibility string `json:"visibility"`
	// Topics are the MESH topics to announce on; nil for none.
	Topics []string `json:"topics,omitempty"`
}

// Info describes a node.
type Info struct {
	NodeID      string            `json:"nodeId"`
	Fingerprint string            `json:"fingerprint"`
	PublicKey   ed25519.PublicKey `json:"publicKey"`
	Addrs       []string          `json:"addrs"`
	API         string            `json:"api,omitempty"`
	Online      bool              `json:"online"`
}

// Status is a node's health and record counts.
type Status struct {
	Healthy bool           `json:"healthy"`
	Version string         `json:"version"`
	NodeID  string         `json:"nodeId"`
	Counts  map[string]int `json:"counts"`
	Total   int            `json:"total"`
	// Network is the node's reachability, relay reservations and relay
	// service; nil for an offline node.
	Network *NetworkStatus `json:"network,omitempty"`
}
