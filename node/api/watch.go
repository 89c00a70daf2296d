package api

import (
	"context"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// Watches are the node's standing queries: persisted searches that every
// lesson the node stores or receives (its own records, gossip, sync,
// fetches, directory ingest) is matched against as it arrives. Matches are
// numbered in the order they were found and kept in memory (the last
// MaxWatchBacklog), so a reader that comes back with the last Seq it saw
// misses nothing in between.
type Watches interface {
	// WatchAdd adds a standing query. A watch on a topic the node does not
	// follow makes it follow the topic, and says so (WatchAdded.Followed).
	WatchAdd(ctx context.Context, spec WatchSpec) (*WatchAdded, error)
	// WatchList lists the standing queries, oldest first.
	WatchList(ctx context.Context) ([]Watch, error)
	// WatchRemove removes a standing query; false if there was none with
	// that id. A topic followed for it stays followed.
	WatchRemove(ctx context.Context, id string) (bool, error)
	// WatchPoll returns the matches with Seq > after, oldest first, at
	// most limit (0: DefaultWatchPollLimit). If there is none yet it waits
	// for the first, at most wait (0: it does not wait).
	WatchPoll(ctx context.Context, after uint64, limit int, wait time.Duration) (*WatchPollResult, error)
	// WatchStream calls fn with every match with Seq > after, oldest
	// first, and then with each new one as it is found, until ctx ends
	// (it then returns ctx's error) or fn returns an error (returned).
	// WatchFromNow as after streams only the matches found from now on.
	WatchStream(ctx context.Context, after uint64, fn func(WatchMatch) error) error
}

// WatchFromNow, as WatchStream's after, skips the matches found so far.
const WatchFromNow = ^uint64(0)

// Limits of standing queries.
const (
	// MaxWatches caps the standing queries of a node.
	MaxWatches = 256
	// MaxWatchBacklog is how many of the latest matches a node keeps for
	// WatchPoll and WatchStream to replay.
	MaxWatchBacklog = 1000
	// DefaultWatchPollLimit is WatchPoll's limit when 0; MaxWatchPollLimit
	// its largest.
	DefaultWatchPollLimit = 100
	MaxWatchPollLimit     = 1000
	// MaxWatchPollWait caps WatchPoll's wait.
	MaxWatchPollWait = 5 * time.Minute
)

// WatchSpec says what a standing query matches.
type WatchSpec struct {
	// Query is as in a search: words (any may match), "quoted phrases"
	// and numeric comparisons (each must match). Empty matches every lesson
	// that passes Sources and Topic.
	Query string `json:"query"`
	// Sources, if set, keeps the lessons of these publishers only: node IDs,
	// or "self" for this node's own records.
	Sources []string `json:"sources,omitempty"`
	// Topic, if set, keeps the lessons published on this topic, and makes
	// the node follow it.
	Topic string `json:"topic,omitempty"`
}

// Watch is a standing query.
type Watch struct {
	ID string `json:"id"`
	WatchSpec
	// Created is when it was added, Unix ms.
	Created int64 `json:"created"`
	// Matches counts its matches since the node started.
	Matches int `json:"matches"`
}

// WatchAdded is the answer to WatchAdd.
type WatchAdded struct {
	Watch Watch `json:"watch"`
	// Followed is the topic the node started to follow for this watch, ""
	// if it followed it already (or the watch names none).
	Followed string `json:"followed,omitempty"`
}

// WatchMatch is one lesson that matched a standing query.
type WatchMatch struct {
	// Seq numbers the node's matches: a later match has a larger Seq.
	Seq uint64 `json:"seq"`
	// Watch is the id of the standing query, Query its text.
	Watch string `json:"watch"`
	Query string `json:"query"`
	// Key is the lesson's key: lessonId@nodeId, or the record id of one of
	// this node's own private records.
	Key string `json:"key"`
	// Publisher is the node that signed it (this node for its own records).
	Publisher string `json:"publisher"`
	// Origin says how the lesson came: "local" (stored on this node),
	// "publication" (published by this node) or "remote" (received: by
	// gossip, sync, fetch or a directory's ingest).
	Origin string `json:"origin"`
	// Topics are the topics it was published on.
	Topics []string `json:"topics,omitempty"`
	// Lesson is the record.
	Lesson *protocol.Lesson `json:"lesson"`
	// At is when the node matched it, Unix ms.
	At int64 `json:"at"`
}

// WatchPollResult is the answer to WatchPoll.
type WatchPollResult struct {
	Matches []WatchMatch `json:"matches"`
	// Next is the Seq to poll after next time: the last match's, or the
	// after given if there was none.
	Next uint64 `json:"next"`
	// Missed says matches after the given Seq were dropped from the backlog
	// (more than MaxWatchBacklog came since).
	Missed bool `json:"missed,omitempty"`
}
