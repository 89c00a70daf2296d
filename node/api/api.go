package api

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// API is everything a controller (the CLI, an agent, the MCP server) can
// ask of a node. *node.Node implements it in-process and *httpapi.Client
// over the loopback control API, with the same results and the same errors
// (the contract test in node/httpapi runs both). Implementations are safe
// for concurrent use. An offline node answers the network operations with
// an error wrapping ErrOffline.
type API interface {
	AMP
	Publisher
	Keys
	Federation
	Trust
	Directory
	DHT
	Network
	Watches
	Sensors
}

// AMP is the Agent Memory Protocol over the node's own store, plus Info.
type AMP interface {
	Info(ctx context.Context) (*Info, error)
	Put(ctx context.Context, rec *protocol.Lesson) (id string, created bool, err error)
	// Get returns a record by id.
	Get(ctx context.Context, id string) (*protocol.Lesson, error)
	Delete(ctx context.Context, id string) (bool, error)
	List(ctx context.Context, o store.ListOptions) (*store.ListResult, error)
	Search(ctx context.Context, q store.Query) (*store.SearchResult, error)
	Status(ctx context.Context) (*Status, error)
	AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error)
}

// Publisher signs, exports and takes back the node's publications.
type Publisher interface {
	Publish(ctx context.Context, id string, opts PublishOptions) (*protocol.SignedLesson, error)
	Export(ctx context.Context, id string) (*protocol.SignedLesson, error)
	Revoke(ctx context.Context, id, reason string) (*protocol.Revocation, error)
}

// Federation is what the node follows, whom it is connected to, catch-up
// sync, and the federated search of its trusted network.
type Federation interface {
	Follow(ctx context.Context, target string) error
	Unfollow(ctx context.Context, target string) error
	Following(ctx context.Context) (topics, feeds []string, err error)
	Connect(ctx context.Context, addr string) (peer.ID, error)
	Peers(ctx context.Context) ([]PeerInfo, error)
	// Sync runs a catch-up sync with every connected peer, calling
	// progress (if not nil) after each page. The error joins every peer's
	// failure.
	Sync(ctx context.Context, progress func(SyncProgress)) error
	SearchNetwork(ctx context.Context, req FedSearchRequest) (*FedSearchResponse, error)
}

// Trust is the node's web of trust and verification by key.
type Trust interface {
	TrustSet(ctx context.Context, nodeID string, level trust.Level, note string) error
	TrustRemove(ctx context.Context, nodeID string) error
	TrustList(ctx context.Context) ([]TrustEntry, error)
	TrustPath(ctx context.Context, nodeID string) (*TrustPathInfo, error)
	TrustExport(ctx context.Context) ([]byte, error)
	TrustImport(ctx context.Context, data []byte) (int, error)
	Referrals(ctx context.Context) ([]*protocol.Referral, error)
	// TrustPending lists the publishers whose lessons were refused because
	// this node does not trust them, most recent first.
	TrustPending(ctx context.Context) ([]PendingPublisher, error)
	VerifyKey(ctx context.Context, key string) (*VerifyReport, error)
}

// Directory is the node's list of directories and the search of their
// public APIs.
type Directory interface {
	DirectoryAdd(ctx context.Context, target string) (*DirectoryEntry, error)
	DirectoryList(ctx context.Context) ([]DirectoryEntry, error)
	DirectoryRemove(ctx context.Context, target string) (bool, error)
	DirectorySearch(ctx context.Context, req DirectorySearchRequest) (*DirectorySearchResult, error)
}

// DHT is what a controller can ask of the node's DHT.
type DHT interface {
	DHTStatus(ctx context.Context) (*DHTStatus, error)
	TopicNodes(ctx context.Context, topic string, limit int) ([]NodeInfo, error)
	Directories(ctx context.Context, limit int) ([]NodeInfo, error)
	NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error)
	FindNode(ctx context.Context, nodeID string) (*NodeInfo, error)
}

// Network reports the node's reachability.
type Network interface {
	Network(ctx context.Context) (*NetworkStatus, error)
}
