package store

import (
	"fmt"
	"net"

	"github.com/meshprotocol/mesh/protocol"
)

// sentinel is an error with its own message that also matches a more
// general error with errors.Is.
type sentinel struct {
	msg  string
	also error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.also }

// Sentinel errors. Match them with errors.Is; the store wraps them with
// context ("store: get lesson_1: not found").
var (
	// ErrNotFound: no record or publication with that id, or the record has
	// expired. errors.Is(err, protocol.ErrUnknownLesson) holds too, so a
	// caller can answer with the wire code UNKNOWN_LESSON.
	ErrNotFound error = &sentinel{"not found", protocol.ErrUnknownLesson}

	// ErrClosed: the Store was closed. errors.Is(err, net.ErrClosed) holds
	// too, as for other closed resources.
	ErrClosed error = &sentinel{"store closed", net.ErrClosed}

	// ErrUnsupportedFormat: the datastore was written in a layout this
	// version of the store does not know (a newer one). errors.Is(err,
	// protocol.ErrUnsupportedVersion) holds too.
	ErrUnsupportedFormat error = &sentinel{"unsupported datastore format", protocol.ErrUnsupportedVersion}

	// ErrInsufficientStorage: the disk of the store has less free space
	// than its reserve (Options.DiskReserve); the write was refused and
	// changed nothing. errors.Is(err, protocol.ErrInsufficientStorage)
	// holds too (HTTP 507).
	ErrInsufficientStorage error = &sentinel{"disk nearly full", protocol.ErrInsufficientStorage}

	// ErrIndexUnavailable: the search index could not be opened or rebuilt.
	// Get, Put and Delete still work; reopen the store to rebuild the index.
	ErrIndexUnavailable error = &sentinel{"search index unavailable", nil}

	// ErrRevoked: PutRemote (or PutPublication) of a lesson whose key has a
	// tombstone. A revoked key stays revoked: publish under a new id.
	ErrRevoked error = &sentinel{"lesson revoked", nil}

	// ErrStale: PutRemote of a lesson of which an equal or newer version
	// (by publication.publishedAt) is held, or that has already expired.
	// Nothing was written; for gossip this is a duplicate, not an offence.
	ErrStale error = &sentinel{"an equal or newer version is held", nil}

	// ErrOwnLesson: PutRemote of a lesson signed by this node
	// (Options.SelfID): its own publications live with its records.
	// errors.Is(err, ErrStale) holds too, so a caller that ignores stale
	// lessons ignores an echo of its own.
	ErrOwnLesson error = &sentinel{"lesson published by this node", ErrStale}

	// ErrAlreadyRevoked: Revoke of a key that already has a tombstone.
	// errors.Is(err, protocol.ErrAlreadyRevoked) holds too, so a caller can
	// answer with the wire code ALREADY_REVOKED.
	ErrAlreadyRevoked error = &sentinel{"already revoked", protocol.ErrAlreadyRevoked}
)

// invalidf returns an error wrapping protocol.ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("store: %w: "+format, append([]any{protocol.ErrInvalid}, args...)...)
}
