package protocol

import "strings"

// Version is the protocol version string carried by versioned documents.
const Version = "mesh/1.0"

// Stream protocol IDs.
const (
	ProtocolFetch  = "/mesh/fetch/1.0.0"
	ProtocolSync   = "/mesh/sync/1.0.0"
	ProtocolSearch = "/mesh/search/1.0.0"
	// ProtocolSearchLate is ProtocolSearch with late answers: a request
	// may carry lateMs, and a forwarder then answers in up to
	// MaxSearchFrames frames, the last with more false, passing on what
	// its peers answered after its own deadline (see SearchResponse.More).
	// A node serves both; a requester asks for this one first.
	ProtocolSearchLate = "/mesh/search/1.1.0"
	ProtocolIdentity   = "/mesh/identity/1.0.0"
	ProtocolTrust      = "/mesh/trust/1.0.0"
	// ProtocolKeys serves lesson keys (and escrow shares) to the readers a
	// key policy admits: KeyRequest in, KeyResponse out.
	ProtocolKeys = "/mesh/keys/1.0.0"
	// ProtocolKeyNotice carries an author's notices about its keys to the
	// nodes holding something of them (escrow nodes, readers it served):
	// KeyNotice in, KeyNoticeAck out.
	ProtocolKeyNotice = "/mesh/keynotice/1.0.0"
	// DHTPrefix is the Kademlia protocol prefix: MESH runs its own DHT and
	// never joins the IPFS one.
	DHTPrefix = "/mesh"
)

// Topic naming. Publications and revocations travel on GossipSub topics under
// TopicRoot:
//
//	/mesh/1/topic/<name>    one per MESH topic (say "rust"), lower-case
//	/mesh/1/feed/<nodeId>   one per publisher: everything it publishes
const (
	TopicRoot   = "/mesh/1/"
	topicPrefix = TopicRoot + "topic/"
	feedPrefix  = TopicRoot + "feed/"
)

// TopicName returns the GossipSub topic for a MESH topic.
func TopicName(topic string) string { return topicPrefix + strings.ToLower(topic) }

// FeedName returns the GossipSub topic carrying one publisher's feed.
func FeedName(nodeID string) string { return feedPrefix + nodeID }

// Lesson types defined by AMP. Any other non-empty string is allowed too.
const (
	TypeLesson     = "lesson"
	TypeCheckpoint = "checkpoint"
	TypeSnippet    = "snippet"
)

// Visibility levels. The zero value of a record's visibility means private.
const (
	VisibilityPrivate  = "private"
	VisibilityUnlisted = "unlisted"
	VisibilityPublic   = "public"
)

// Revocation reasons.
const (
	ReasonOutdated  = "outdated"
	ReasonIncorrect = "incorrect"
	ReasonPrivate   = "private"
	ReasonOther     = "other"
)

// ValidVisibility reports whether v names a visibility level ("" counts as private).
func ValidVisibility(v string) bool {
	switch v {
	case "", VisibilityPrivate, VisibilityUnlisted, VisibilityPublic:
		return true
	}
	return false
}
