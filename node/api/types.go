package api

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
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
	// Listen is what libp2p listens on, as bound ("/ip4/0.0.0.0/tcp/4001"):
	// Addrs are the addresses peers may dial, Listen the sockets open.
	Listen []string `json:"listen,omitempty"`
	// API is the base URL of the node's HTTP API (the AMP binding under
	// /amp, the control API under /api/v1), "" if it serves none.
	API string `json:"api,omitempty"`
	// PublicAPI is the base URL of the directory's public HTTP API, "" if
	// it serves none.
	PublicAPI string `json:"publicApi,omitempty"`
	Online    bool   `json:"online"`
}

// Status is a node's health and record counts.
type Status struct {
	Healthy bool           `json:"healthy"`
	Version string         `json:"version"`
	NodeID  string         `json:"nodeId"`
	Counts  map[string]int `json:"counts"`
	Total   int            `json:"total"`
	// Remote counts the lessons received from other nodes and held.
	Remote int `json:"remote"`
	// Pending sums the lessons refused because their publishers are not
	// trusted (Trust.TrustPending lists them).
	Pending PendingSummary `json:"pending"`
	// Network is the node's reachability, relay reservations and relay
	// service; nil for an offline node.
	Network *NetworkStatus `json:"network,omitempty"`
	// LastRecovery says what the last recovery of the node's datastore
	// did and when (a damaged write-ahead log found at start-up, or mesh
	// repair); empty if there was none.
	LastRecovery string `json:"lastRecovery,omitempty"`
}

// PendingSummary counts the untrusted publishers whose lessons were
// refused, and those lessons.
type PendingSummary struct {
	Publishers int `json:"publishers"`
	Lessons    int `json:"lessons"`
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Direction string   `json:"direction"` // inbound or outbound
	// Connection is "direct" when at least one connection to the peer is
	// direct, "relayed" when every one goes through a circuit relay.
	Connection string `json:"connection"`
	Relayed    bool   `json:"relayed"`         // every connection goes through a circuit relay
	Relay      string `json:"relay,omitempty"` // the relay's node ID, when relayed
	// HolePunched says the direct connection was made by hole punching
	// (DCUtR) from a relayed one.
	HolePunched bool `json:"holePunched,omitempty"`
	Kept        bool `json:"kept"` // redialled when the link drops
	// Mesh are the followed topics whose GossipSub mesh holds the peer:
	// this node sends it every message on them, not just gossip about
	// them.
	Mesh []string `json:"mesh,omitempty"`
}

// SyncProgress reports one page of a sync.
type SyncProgress struct {
	Peer        string `json:"peer"`
	Pages       int    `json:"pages"`
	Lessons     int    `json:"lessons"`     // stored so far
	Revocations int    `json:"revocations"` // applied so far
	Received    int    `json:"received"`    // records received, stored or not
	Invalid     int    `json:"invalid"`     // records that failed verification
	// Untrusted counts the valid lessons refused because this node does
	// not trust their publisher (see Trust.TrustPending).
	Untrusted int  `json:"untrusted"`
	Done      bool `json:"done"`
}

// PendingPublisher is a publisher whose valid lessons this node refused
// because it does not trust it: what it published and when, never the
// content. Trusting it brings its lessons in at once.
type PendingPublisher struct {
	NodeID string `json:"nodeId"`
	// Topics are the topics its refused lessons were published on.
	Topics []string `json:"topics"`
	// Lessons counts the distinct lessons refused.
	Lessons int `json:"lessons"`
	// FirstSeen and LastSeen are when the first and the last were refused,
	// Unix ms.
	FirstSeen int64 `json:"firstSeen"`
	LastSeen  int64 `json:"lastSeen"`
}

// TrustEntry is one row of the trust list: a direct edge, or a node trusted
// through the vouches of fully trusted nodes.
type TrustEntry struct {
	NodeID string      `json:"nodeId"`
	Level  trust.Level `json:"level"`
	Hops   int         `json:"hops"`
	Score  float64     `json:"score"`
	Note   string      `json:"note,omitempty"`
	Via    string      `json:"via,omitempty"` // first hop, for transitive entries
}

// TrustPathInfo is the trust path to one node.
type TrustPathInfo struct {
	NodeID  string   `json:"nodeId"`
	Trusted bool     `json:"trusted"`
	Blocked bool     `json:"blocked"`
	Limited bool     `json:"limited"`
	Hops    []string `json:"hops,omitempty"` // self first, the node last
	Score   float64  `json:"score"`
}

// VerifyReport is what mesh verify says about a lesson.
type VerifyReport struct {
	Key              string                 `json:"key"`
	Valid            bool                   `json:"valid"`
	Error            string                 `json:"error,omitempty"`
	Source           string                 `json:"source,omitempty"` // where the lesson came from
	NodeID           string                 `json:"nodeId,omitempty"`
	Fingerprint      string                 `json:"fingerprint,omitempty"`
	Timestamp        int64                  `json:"timestamp,omitempty"`
	PublishedAt      int64                  `json:"publishedAt,omitempty"`
	Revoked          bool                   `json:"revoked"`
	RevocationSource string                 `json:"revocationSource"`
	Trusted          bool                   `json:"trusted"`
	TrustPath        []string               `json:"trustPath,omitempty"`
	TrustScore       float64                `json:"trustScore"`
	Lesson           *protocol.SignedLesson `json:"signedLesson,omitempty"`
	// EncryptedLesson is set instead of Lesson for a lesson published
	// encrypted, and KeyStatus says whether its key is still available to
	// this node.
	EncryptedLesson *protocol.EncryptedLesson `json:"encryptedLesson,omitempty"`
	KeyStatus       *KeyStatus                `json:"keyStatus,omitempty"`
	// Carried is set for a reading a gateway carried from a radio: the
	// check of the sensor's own signature inside it.
	Carried *CarriedReport `json:"carried,omitempty"`
}

// CarriedReport is the check of a carried reading's sensor proof.
type CarriedReport struct {
	Valid   bool   `json:"valid"`
	Error   string `json:"error,omitempty"`
	Sensor  string `json:"sensor,omitempty"` // the sensor's node ID
	Stream  string `json:"stream,omitempty"`
	Seq     uint32 `json:"seq,omitempty"`
	Via     string `json:"via,omitempty"`     // how the gateway heard it: lora:…, udp:…
	Carrier string `json:"carrier,omitempty"` // the gateway: the lesson's publisher
}

// DirectoryEntry is a directory this node registers with.
type DirectoryEntry struct {
	// Target is what was added: a multiaddr, a node ID or a URL.
	Target string `json:"target"`
	// NodeID is the directory's node ID.
	NodeID string `json:"nodeId"`
	// Addrs are libp2p multiaddrs of the directory, if known.
	Addrs []string `json:"addrs,omitempty"`
	// URL is the base URL of the directory's public HTTP API, if known
	// (given, or learned from its policy).
	URL string `json:"url,omitempty"`
	// Registered is when the last registration succeeded, Unix ms; 0 for
	// never.
	Registered int64 `json:"registered,omitempty"`
	// Error is why the last registration failed, "" if it did not.
	Error string `json:"error,omitempty"`
	// Policy is the directory's policy, as of the last registration.
	Policy *protocol.DirectoryPolicy `json:"policy,omitempty"`
}

// DirectorySearchRequest asks several directories (and, if Peers, the
// trusted network) for public lessons.
type DirectorySearchRequest struct {
	Query   string                 `json:"query"`
	Filters protocol.SearchFilters `json:"filters"`
	// Limit: 0 means protocol.DefaultSearchLimit, at most
	// protocol.MaxSearchLimit.
	Limit int `json:"limit,omitempty"`
	// Directories are public API base URLs. Empty means the URLs of the
	// directories listed with DirectoryAdd.
	Directories []string `json:"directories,omitempty"`
	// Peers also runs a federated search of the trusted peers
	// (FederatedSearch) and merges its results.
	Peers bool `json:"peers,omitempty"`
	// Hops is the federated search's hops, when Peers.
	Hops int `json:"hops,omitempty"`
	// DeadlineMs bounds the search; 0 means DefaultDirectoryDeadline, at
	// most a minute.
	DeadlineMs int64 `json:"deadlineMs,omitempty"`
	// TrustedOnly drops the lessons of publishers with no trust path. By
	// default they are kept, ranked with a trust of 0.1, and marked.
	TrustedOnly bool `json:"trustedOnly,omitempty"`
}

// DirectorySearchHit is one verified, ranked result.
type DirectorySearchHit struct {
	Key          string                 `json:"key"`
	SignedLesson *protocol.SignedLesson `json:"signedLesson"`
	Relevance    float64                `json:"relevance"`
	// Trust is this node's trust in the publisher, or 0.1 for one it has
	// no trust path to (Trusted is then false).
	Trust   float64 `json:"trust"`
	Trusted bool    `json:"trusted"`
	// Score is Relevance × Trust.
	Score float64 `json:"score"`
	// Sources are the node IDs of the directories that returned the
	// lesson, and "peers" if the federated search did.
	Sources []string `json:"sources"`
}

// DirectoryAnswer says how one directory answered.
type DirectoryAnswer struct {
	URL    string `json:"url"`
	NodeID string `json:"nodeId,omitempty"`
	// Results is how many results it sent; Dropped how many of them
	// failed verification.
	Results int    `json:"results"`
	Dropped int    `json:"dropped"`
	Error   string `json:"error,omitempty"`
}

// DirectorySearchResult is the answer to DirectorySearch.
type DirectorySearchResult struct {
	Success     bool                 `json:"success"`
	Results     []DirectorySearchHit `json:"results"`
	Directories []DirectoryAnswer    `json:"directories"`
	// Warnings name each directory that failed, and each lesson dropped
	// because it failed verification, and from whom it came.
	Warnings []string `json:"warnings"`
	// Invalid counts the results dropped for failing verification;
	// Revoked those this node knows revoked; Blocked those of blocked
	// publishers; Untrusted those dropped for TrustedOnly.
	Invalid   int  `json:"invalid"`
	Revoked   int  `json:"revoked"`
	Blocked   int  `json:"blocked"`
	Untrusted int  `json:"untrusted"`
	Truncated bool `json:"truncated"`
}

// NodeInfo describes a node found in the DHT.
type NodeInfo struct {
	NodeID string   `json:"nodeId"`
	Addrs  []string `json:"addrs"`
	Topics []string `json:"topics"`
	Roles  []string `json:"roles"`
	// Record is the node's signed record, verified; nil when the DHT holds
	// none (Addrs then come from the provider record).
	Record *protocol.NodeRecord `json:"record,omitempty"`
}

// DHTStatus reports the node's DHT.
type DHTStatus struct {
	Enabled      bool   `json:"enabled"`
	Protocol     string `json:"protocol"`
	Mode         string `json:"mode"`    // as configured: auto, server, client, off
	Serving      bool   `json:"serving"` // in server mode now
	RoutingTable int    `json:"routingTable"`
	// LAN says the LAN DHT runs (it always serves, among nodes on private
	// or loopback addresses), LANRoutingTable how many of RoutingTable's
	// servers are in it.
	LAN             bool `json:"lan"`
	LANRoutingTable int  `json:"lanRoutingTable"`
	// Record is the node record last published, PublishedAt when (Unix ms).
	Record      *protocol.NodeRecord `json:"record,omitempty"`
	PublishedAt int64                `json:"publishedAt,omitempty"`
	Provided    []string             `json:"provided"` // topics and roles provided
	LastError   string               `json:"lastError,omitempty"`
}

// NetworkStatus is a node's view of its own reachability.
type NetworkStatus struct {
	// Reachability is public, private or unknown.
	Reachability string `json:"reachability"`
	// ReachabilitySource says who decided: "config" (forced by
	// NATConfig.Reachability) or "autonat".
	ReachabilitySource string `json:"reachabilitySource"`
	// Addrs are the addresses the node advertises.
	Addrs []string `json:"addrs"`
	// ReachableAddrs and UnreachableAddrs are the public addresses AutoNAT
	// v2 confirmed as reachable or not from the outside.
	ReachableAddrs   []string `json:"reachableAddrs,omitempty"`
	UnreachableAddrs []string `json:"unreachableAddrs,omitempty"`
	// Reservations are the relays holding a slot for this node.
	Reservations []RelayReservation `json:"reservations"`
	// HolePunching and PortMapping say whether DCUtR and UPnP/NAT-PMP are on.
	HolePunching bool `json:"holePunching"`
	PortMapping  bool `json:"portMapping"`
	// HolePunches counts the hole punches this node took part in.
	HolePunches struct {
		Succeeded int `json:"succeeded"`
		Failed    int `json:"failed"`
	} `json:"holePunches"`
	// Peers counts connected peers by how they are connected.
	Peers struct {
		Direct  int `json:"direct"`
		Relayed int `json:"relayed"`
	} `json:"peers"`
	// RelayService is set when this node runs a relay.
	RelayService *RelayServiceStatus `json:"relayService,omitempty"`
}

// RelayReservation is a slot this node holds on a relay.
type RelayReservation struct {
	Relay string   `json:"relay"` // the relay's node ID
	Addrs []string `json:"addrs"` // this node's addresses through that relay
}

// RelayServiceStatus describes the relay this node runs.
type RelayServiceStatus struct {
	Reservations    int    `json:"reservations"` // slots held now
	Circuits        int    `json:"circuits"`     // relayed connections open now
	CircuitsTotal   int    `json:"circuitsTotal"`
	BytesRelayed    int64  `json:"bytesRelayed"`
	MaxReservations int    `json:"maxReservations"`
	MaxCircuits     int    `json:"maxCircuits"`
	CircuitDuration string `json:"circuitDuration,omitempty"` // empty: no cap
	CircuitBytes    int64  `json:"circuitBytes,omitempty"`    // 0: no cap
	TrustedOnly     bool   `json:"trustedOnly,omitempty"`
}

// Duration is a time.Duration written as "90s", "1h" in config.json.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "90s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration: want a string such as \"90s\" or a number of seconds: %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// FedSearchRequest is a federated search: of this node's public lessons
// and those of its trusted network (see node.Node.SearchNetwork). Its JSON
// form is the control API's request, with the durations in milliseconds.
type FedSearchRequest struct {
	// Query is as in store.Query.Text, at most
	// protocol.MaxSearchQueryLength bytes. Empty matches every public
	// lesson that passes the filters.
	Query string `json:"query"`
	// Filters restrict the results; the zero value restricts nothing.
	Filters protocol.SearchFilters `json:"filters"`
	// Limit is the number of results: 0 means protocol.DefaultSearchLimit,
	// at most protocol.MaxSearchLimit.
	Limit int `json:"limit,omitempty"`
	// Hops is how far the search goes: 1 asks the peers only, 2 their
	// peers too. 0 means protocol.DefaultSearchHops, at most
	// protocol.MaxSearchHops.
	Hops int `json:"hops,omitempty"`
	// Deadline is how long the search may take (JSON: deadlineMs): 0
	// means DefaultFedDeadline. What arrived by then is returned, marked
	// Truncated if anything was missing.
	Deadline time.Duration `json:"-"`
	// Sources is whom to ask: "" or "trusted" asks the connected peers with
	// a trust path (and this node's store); a node ID asks that node only;
	// anything else is a topic name, and keeps only the lessons published
	// on that topic.
	Sources string `json:"sources,omitempty"`
	// FreshnessHalfLife, if set, halves a result's score for every such
	// age of its publication (JSON: freshnessHalfLifeMs). 0 turns
	// freshness off.
	FreshnessHalfLife time.Duration `json:"-"`
}

// DefaultFedDeadline is FedSearchRequest.Deadline when it is zero.
const DefaultFedDeadline = 2 * time.Second

type fedSearchRequestJSON FedSearchRequest

type fedSearchRequestWire struct {
	fedSearchRequestJSON
	DeadlineMs          int64 `json:"deadlineMs,omitempty"`
	FreshnessHalfLifeMs int64 `json:"freshnessHalfLifeMs,omitempty"`
}

// MarshalJSON writes the durations in milliseconds.
func (r FedSearchRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(fedSearchRequestWire{fedSearchRequestJSON(r), r.Deadline.Milliseconds(), r.FreshnessHalfLife.Milliseconds()})
}

// UnmarshalJSON reads the durations in milliseconds.
func (r *FedSearchRequest) UnmarshalJSON(b []byte) error {
	var w fedSearchRequestWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.DeadlineMs < 0 || w.FreshnessHalfLifeMs < 0 {
		return fmt.Errorf("%w: deadlineMs and freshnessHalfLifeMs must not be negative", protocol.ErrInvalid)
	}
	*r = FedSearchRequest(w.fedSearchRequestJSON)
	r.Deadline = time.Duration(w.DeadlineMs) * time.Millisecond
	r.FreshnessHalfLife = time.Duration(w.FreshnessHalfLifeMs) * time.Millisecond
	return nil
}

// FedSearchResponse is the answer to a federated search.
type FedSearchResponse struct {
	Success bool `json:"success"`
	// Results are ranked by Score, best first.
	Results []FedSearchHit `json:"results"`
	// Truncated says some peers did not answer in time, or answered
	// truncated themselves: more results may exist.
	Truncated bool `json:"truncated"`
	// Invalid, Revoked and Untrusted count the results dropped: a bad
	// signature or a lesson that is not public, a lesson this node knows
	// revoked, and a publisher without a trust path or blocked. Signatures
	// are checked only of the results that could be returned (best first,
	// until Limit are valid), so Invalid counts the invalid ones among
	// those.
	Invalid   int `json:"invalid"`
	Revoked   int `json:"revoked"`
	Untrusted int `json:"untrusted"`
}

// FedSearchHit is one ranked, verified result of a federated search.
type FedSearchHit struct {
	// Key is the lesson's key, lessonId@nodeId.
	Key string `json:"key"`
	// SignedLesson is the lesson as signed by its publisher, verified.
	SignedLesson *protocol.SignedLesson `json:"signedLesson"`
	// Relevance is BM25 under the statistics of every answering node's
	// corpus added up (the score one index over the union of their public
	// lessons would give), mapped into (0, 1] as s/(s+1); 1 for a query
	// without words.
	Relevance float64 `json:"relevance"`
	// Trust is this node's trust in the publisher, in (0, 1].
	Trust float64 `json:"trust"`
	// Freshness is 0.5^(age/FreshnessHalfLife), or 1 when that is off.
	Freshness float64 `json:"freshness"`
	// Score is Relevance × Trust × Freshness.
	Score float64 `json:"score"`
	// Via is the node whose store answered with the lesson (this node's
	// ID for its own store).
	Via string `json:"via"`
	// TrustPath is the trust path to the publisher, from this node
	// (TrustPath[0]) to the publisher; empty for this node's own lessons.
	TrustPath []string `json:"trustPath,omitempty"`
}
