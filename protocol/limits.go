package protocol

import (
	"slices"
	"time"
)

// Size caps. Every decoder checks its cap before parsing.
const (
	// MaxRecordSize caps the JSON encoding of one AMP record.
	MaxRecordSize = 128 << 10
	// MaxSignedLessonSize caps an encoded SignedLesson (a record plus
	// publication and signature).
	MaxSignedLessonSize = MaxRecordSize + 16<<10
	// MaxRevocationSize caps an encoded Revocation.
	MaxRevocationSize = 4 << 10
	// MaxIdentitySize caps an encoded identity document.
	MaxIdentitySize = 16 << 10
	// MaxEncryptedLessonSize caps an encoded EncryptedLesson: the base64 of
	// a ciphertext of at most MaxRecordSize bytes, and the rest.
	MaxEncryptedLessonSize = (MaxRecordSize+2)/3*4 + 16<<10
	// MaxKeyPolicySize caps an encoded KeyPolicy (MaxAllowedNodes node IDs
	// and MaxEscrowShares sealed shares at most).
	MaxKeyPolicySize = 96 << 10
	// MaxKeyRequestSize caps a KeyRequest on ProtocolKeys.
	MaxKeyRequestSize = 1 << 10
	// MaxKeyResponseSize caps a KeyResponse (with the revocation or the
	// key policy it may carry).
	MaxKeyResponseSize = max(MaxRevocationSize, MaxKeyPolicySize) + 4<<10
	// MaxKeyNoticeSize caps a KeyNotice (a key policy or a revocation).
	MaxKeyNoticeSize = max(MaxRevocationSize, MaxKeyPolicySize) + 1<<10
	// MaxKeyNoticeAckSize caps a KeyNoticeAck.
	MaxKeyNoticeAckSize = 4 << 10

	// MaxRecordDepth caps how deeply one AMP record nests arrays and
	// objects, the record itself counting one: {"a":[{}]} is 3 deep. A
	// deeper record is refused wherever it enters (the AMP and MCP store,
	// every decoder of a signed lesson), so that every envelope that wraps
	// a lesson stays far below MaxDepth and below the 10000 levels other
	// JSON implementations (RFC 8785 libraries, Python's json) give up at.
	MaxRecordDepth = 32
	// MaxDepth caps the nesting of any JSON document a decoder accepts:
	// a record of MaxRecordDepth levels inside the deepest envelope (a
	// signed directory answer: response, body, results, result, signed
	// lesson, lesson) with room to spare.
	MaxDepth = 64

	// MaxIDLength caps a record ID.
	MaxIDLength = 128
	// MaxTags caps the number of tags or topics on a record.
	MaxTags = 64
	// MaxTagLength caps one tag or topic.
	MaxTagLength = 128
	// MaxTypeLength caps a record type.
	MaxTypeLength = 64
	// MaxKeyEndpointLength caps an EncryptedLesson's keyEndpoint.
	MaxKeyEndpointLength = 1024
	// MaxAllowedNodes caps a KeyPolicy's allowedNodes.
	MaxAllowedNodes = 1024
	// MaxEscrowShares caps a KeyPolicy's escrow shares (n of k-of-n).
	MaxEscrowShares = 32
)

// DefaultTimestampWindow is how far a fresh announcement's signing time may be
// from the verifier's clock, either way.
const DefaultTimestampWindow = time.Hour

// CapTopics returns at most MaxTags topics, the limit of a node record and
// of a directory policy: topics as they are if there are no more, else the
// first MaxTags in sorted order, with the first topic left out (else "").
func CapTopics(topics []string) (capped []string, firstLeftOut string) {
	if len(topics) <= MaxTags {
		return topics, ""
	}
	sorted := slices.Clone(topics)
	slices.Sort(sorted)
	return sorted[:MaxTags], sorted[MaxTags]
}
