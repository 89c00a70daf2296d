package trust

import (
	"errors"
	"fmt"

	"github.com/meshprotocol/mesh/protocol"
)

// Sentinel errors. Errors about malformed input (a bad node ID, level or
// note, an unreadable import) wrap protocol.ErrInvalid instead.
var (
	// ErrNoEdge: there is no direct edge to the node. It wraps
	// protocol.ErrInvalid: asking to remove an edge that is not there is a
	// mistake in the request.
	ErrNoEdge = fmt.Errorf("trust: %w: no direct edge", protocol.ErrInvalid)
	// ErrStale: a record is not newer than the one held from the same node.
	ErrStale = errors.New("trust: not newer than the record held")
	// ErrExpired: a vouch has expired. Errors matching it match
	// protocol.ErrTimestamp too.
	ErrExpired = errors.New("trust: vouch expired")
	// ErrFull: the graph holds as many vouches or referrals as it keeps.
	ErrFull = errors.New("trust: too many records held")
)
