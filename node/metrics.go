package node

import (
	"context"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/metrics"
	"github.com/meshprotocol/mesh/store"
)

func (n *Node) newMetrics() error {
	m, err := metrics.New(n.cfg.Registerer, metricsState{n})
	if err != nil {
		return err
	}
	n.metrics = m
	return nil
}

// metricsState is the node as its metrics read it at scrape time.
type metricsState struct{ n *Node }

var _ metrics.State = metricsState{}

func (s metricsState) StoreStatus(ctx context.Context) (*store.Status, error) {
	return s.n.store.Status(ctx)
}
func (s metricsState) RepoDir() string { return s.n.cfg.RepoDir }
func (s metricsState) Following(ctx context.Context) ([]string, []string, error) {
	return s.n.Following(ctx)
}
func (s metricsState) TrustPending(ctx context.Context) ([]api.PendingPublisher, error) {
	return s.n.TrustPending(ctx)
}
func (s metricsState) NetworkStatus() *api.NetworkStatus { return s.n.reach.Status() }
func (s metricsState) DHTStatus(ctx context.Context) (*api.DHTStatus, error) {
	return s.n.disc.DHTStatus(ctx)
}
