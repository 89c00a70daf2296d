package pubsub

import (
	"errors"
	"fmt"
	"net"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrClosed is returned by every method called after Close, and by a
	// second Close. It wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("pubsub: service closed: %w", net.ErrClosed)
	// ErrNotPublic: Announce was given a lesson that is not public. Unlisted
	// and private lessons are never announced.
	ErrNotPublic = errors.New("pubsub: only public lessons are announced")
	// ErrRevoked: Announce was given a lesson whose key carries a tombstone.
	ErrRevoked = errors.New("pubsub: the lesson was revoked")
	// ErrTopic: a MESH topic name or node ID is not one the service can
	// follow or publish on.
	ErrTopic = errors.New("pubsub: invalid topic")
	// ErrAnnouncement: Announce was given an announcement that other nodes
	// would reject (malformed, badly signed, out of the time window, or on
	// a topic the lesson was not published on).
	ErrAnnouncement = errors.New("pubsub: invalid announcement")
)
