package node

import (
	"context"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/watch"
)

// startWatch starts the standing queries (package watch) on the store.
func (n *Node) startWatch(ctx context.Context) error {
	var err error
	n.watch, err = watch.New(ctx, watch.Deps{
		Store: n.store, Self: n.id.String(), Now: n.now, Logger: n.log, Registerer: n.cfg.Registerer,
		Following: func(ctx context.Context) ([]string, error) {
			topics, _, err := n.Following(ctx)
			return topics, err
		},
		Follow: n.Follow,
	})
	return err
}

// WatchAdd adds a standing query; a watch on a topic the node does not
// follow makes it follow the topic.
func (n *Node) WatchAdd(ctx context.Context, spec api.WatchSpec) (*api.WatchAdded, error) {
	return n.watch.Add(ctx, spec)
}

// WatchList lists the standing queries.
func (n *Node) WatchList(ctx context.Context) ([]api.Watch, error) { return n.watch.List(), nil }

// WatchRemove removes a standing query.
func (n *Node) WatchRemove(ctx context.Context, id string) (bool, error) {
	return n.watch.Remove(ctx, id)
}

// WatchPoll returns the matches after a Seq, waiting up to wait for the
// first.
func (n *Node) WatchPoll(ctx context.Context, after uint64, limit int, wait time.Duration) (*api.WatchPollResult, error) {
	return n.watch.Poll(ctx, after, limit, wait)
}

// WatchStream calls fn with every match after a Seq, then with each new
// one, until ctx ends or fn fails.
func (n *Node) WatchStream(ctx context.Context, after uint64, fn func(api.WatchMatch) error) error {
	return n.watch.Stream(ctx, after, fn)
}
