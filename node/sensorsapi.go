package node

import (
	"context"
	"fmt"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/sensors"
	"github.com/meshprotocol/mesh/protocol"
)

// Sensors is the node's sensor subsystem: its streams, grants and names.
func (n *Node) Sensors() *sensors.Service { return n.sensors.Load() }

// startSensors starts the sensor subsystem (after the key subsystem, whose
// epoch keys it uses, and which asks it about grants).
func (n *Node) startSensors(ctx context.Context) error {
	deps := sensors.Deps{
		Host: n.host, Self: n.id, Store: n.store, Keys: n.keys, Now: n.now, Logger: n.log,
		Publish: func(ctx context.Context, el *protocol.EncryptedLesson, announce bool) error {
			if err := n.store.PutEncryptedPublication(ctx, el); err != nil {
				return err
			}
			if announce {
				n.announce(ctx, &protocol.Announcement{Type: protocol.MsgPublication, EncryptedLesson: el}, el.Publication.Topics)
			}
			return nil
		},
		Decrypt: func(ctx context.Context, el *protocol.EncryptedLesson) (*protocol.Lesson, error) {
			p, err := n.keys.Read(ctx, el)
			if err != nil {
				return nil, err
			}
			return p.Lesson, nil
		},
	}
	s, err := sensors.New(ctx, n.cfg.Sensors, deps)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.sensors.Store(s)
	return nil
}

// admitSensor is the key server's hook into the sensor subsystem's grants
// (keys.Deps.Admit). Until the subsystem runs, epoch keys are served to
// nobody.
func (n *Node) admitSensor(ctx context.Context, p *protocol.KeyPolicy, requester string) (int64, error) {
	s := n.sensors.Load()
	if s == nil {
		if len(p.LessonID) > 7 && p.LessonID[:7] == "stream." {
			return 0, fmt.Errorf("%w: the node is starting", protocol.ErrUnavailable)
		}
		return 0, nil
	}
	return s.Admit(ctx, p, requester)
}

// withSensors calls f with the sensor subsystem, or fails with
// ErrUnavailable while it is not running.
func withSensors[T any](n *Node, f func(*sensors.Service) (T, error)) (T, error) {
	s := n.sensors.Load()
	if s == nil {
		var zero T
		return zero, fmt.Errorf("%w: the sensor subsystem is not running", protocol.ErrUnavailable)
	}
	return f(s)
}

// SensorAdd creates or changes a stream.
func (n *Node) SensorAdd(ctx context.Context, o api.StreamOptions) (*api.Stream, error) {
	return withSensors(n, func(s *sensors.Service) (*api.Stream, error) { return s.Add(ctx, o) })
}

// SensorList lists the node's streams.
func (n *Node) SensorList(ctx context.Context) ([]api.Stream, error) {
	return withSensors(n, func(s *sensors.Service) ([]api.Stream, error) { return s.List(ctx) })
}

// SensorPush records one reading.
func (n *Node) SensorPush(ctx context.Context, req api.PushRequest) (*api.Reading, error) {
	return withSensors(n, func(s *sensors.Service) (*api.Reading, error) { return s.Push(ctx, req) })
}

// AccessGrant grants a reader streams.
func (n *Node) AccessGrant(ctx context.Context, g api.GrantOptions) (*api.Grant, error) {
	return withSensors(n, func(s *sensors.Service) (*api.Grant, error) { return s.Grant(ctx, g) })
}

// AccessRevoke takes streams away from a reader, rotating their epochs.
func (n *Node) AccessRevoke(ctx context.Context, reader string, streams []string) (*api.RevokeResult, error) {
	return withSensors(n, func(s *sensors.Service) (*api.RevokeResult, error) { return s.Revoke(ctx, reader, streams) })
}

// AccessList lists the grants.
func (n *Node) AccessList(ctx context.Context) ([]api.Grant, error) {
	return withSensors(n, func(s *sensors.Service) ([]api.Grant, error) { return s.Grants(ctx) })
}

// NameSet sets a local name.
func (n *Node) NameSet(ctx context.Context, name string, targets []string) (*api.Name, error) {
	return withSensors(n, func(s *sensors.Service) (*api.Name, error) { return s.SetName(ctx, name, targets) })
}

// NameList lists the local names.
func (n *Node) NameList(ctx context.Context) ([]api.Name, error) {
	return withSensors(n, func(s *sensors.Service) ([]api.Name, error) { return s.Names(ctx) })
}

// NameRemove forgets a local name.
func (n *Node) NameRemove(ctx context.Context, name string) (bool, error) {
	return withSensors(n, func(s *sensors.Service) (bool, error) { return s.RemoveName(ctx, name) })
}

// SensorSearch asks sources a structured question.
func (n *Node) SensorSearch(ctx context.Context, req api.SensorSearchRequest) (*api.SensorSearchResult, error) {
	return withSensors(n, func(s *sensors.Service) (*api.SensorSearchResult, error) { return s.Search(ctx, req) })
}
