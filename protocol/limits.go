package protocol

import "time"

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

	// MaxIDLength caps a record ID.
	MaxIDLength = 128
	// MaxTags caps the number of tags or topics on a record.
	MaxTags = 64
	// MaxTagLength caps one tag or topic.
	MaxTagLength = 128
	// MaxTypeLength caps a record type.
	MaxTypeLength = 64
)

// DefaultTimestampWindow is how far a fresh announcement's signing time may be
// from the verifier's clock, either way.
const DefaultTimestampWindow = time.Hour
