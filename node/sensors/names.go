package sensors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Names are local: "basement" means a node ID on this node only, and a
// name may stand for a group of nodes ("home" = garage, basement and the
// breaker panel). A name given as a target of another is expanded when it
// is set.

// MaxNameLength and MaxNameNodes bound a name and its group.
const (
	MaxNameLength = 32
	MaxNameNodes  = 64
)

// ValidateName checks a local name: 1 to MaxNameLength lower-case ASCII
// letters, digits, '_' or '-', starting with a letter.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w: name %q: want 1 to %d characters", protocol.ErrInvalid, truncate(name), MaxNameLength)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-')) {
			return fmt.Errorf("%w: name %q: use lower-case letters, digits, '_' and '-', starting with a letter", protocol.ErrInvalid, truncate(name))
		}
	}
	return nil
}

// SetName gives targets (node IDs, or names set before, whose nodes are
// taken) the local name name, replacing what it meant.
func (s *Service) SetName(ctx context.Context, name string, targets []string) (*api.Name, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: name %s: give at least one node ID or name", protocol.ErrInvalid, name)
	}
	var nodes []string
	for _, t := range targets {
		ids, err := s.resolveOne(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("name %s: %w", name, err)
		}
		for _, id := range ids {
			if !slices.Contains(nodes, id) {
				nodes = append(nodes, id)
			}
		}
	}
	if len(nodes) > MaxNameNodes {
		return nil, fmt.Errorf("%w: name %s: %d nodes, the limit is %d", protocol.ErrInvalid, name, len(nodes), MaxNameNodes)
	}
	n := &api.Name{Name: name, Nodes: nodes}
	b, err := json.Marshal(n)
	if err == nil {
		err = s.deps.Store.SetMeta(ctx, metaName+name, b)
	}
	if err != nil {
		return nil, fmt.Errorf("sensors: keep the name %s: %w", name, err)
	}
	return n, nil
}

// resolveOne is the nodes of a node ID or a name.
func (s *Service) resolveOne(ctx context.Context, t string) ([]string, error) {
	t = strings.TrimSpace(t)
	if _, err := protocol.PublicKeyOf(t); err == nil {
		return []string{t}, nil
	}
	if ValidateName(t) != nil {
		return nil, fmt.Errorf("%w: %q is neither a node ID (12D3KooW…) nor a name", protocol.ErrInvalid, truncate(t))
	}
	n, err := s.Name(ctx, t)
	if err != nil {
		return nil, err
	}
	return n.Nodes, nil
}

// Name returns a name; an error wrapping protocol.ErrNotFound if it is
// not set.
func (s *Service) Name(ctx context.Context, name string) (*api.Name, error) {
	b, err := s.deps.Store.GetMeta(ctx, metaName+name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no name %q here: set it with mesh name set %s NODEID", protocol.ErrNotFound, name, name)
	}
	if err != nil {
		return nil, err
	}
	var n api.Name
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("sensors: the name %s is unreadable: %w", name, err)
	}
	return &n, nil
}

// Names lists the names, sorted.
func (s *Service) Names(ctx context.Context) ([]api.Name, error) {
	out := []api.Name{}
	err := s.deps.Store.ListMeta(ctx, metaName, func(_ string, v []byte) error {
		var n api.Name
		if json.Unmarshal(v, &n) == nil && n.Name != "" {
			out = append(out, n)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// RemoveName forgets a name; false if it was not set.
func (s *Service) RemoveName(ctx context.Context, name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	if _, err := s.deps.Store.GetMeta(ctx, metaName+name); errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err := s.deps.Store.DeleteMeta(ctx, metaName+name); err != nil {
		return false, err
	}
	return true, nil
}

// source is a node to ask, with the name it was asked by.
type source struct {
	id   string
	name string
}

// resolve turns --sources (names and node IDs, comma-separated) into the
// nodes to ask, each once.
func (s *Service) resolve(ctx context.Context, sources string) ([]source, error) {
	var out []source
	for _, part := range strings.Split(sources, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name := ""
		if _, err := protocol.PublicKeyOf(part); err != nil {
			name = part
		}
		ids, err := s.resolveOne(ctx, part)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if !slices.ContainsFunc(out, func(x source) bool { return x.id == id }) {
				out = append(out, source{id: id, name: name})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --sources names no node: give names (mesh name list) or node IDs, comma-separated", protocol.ErrInvalid)
	}
	if len(out) > MaxNameNodes {
		return nil, fmt.Errorf("%w: %d sources, the limit is %d", protocol.ErrInvalid, len(out), MaxNameNodes)
	}
	return out, nil
}

// IsName reports whether every comma-separated part of sources is a name
// set here or a node ID, and at least one is a name: the CLI's cue that
// mesh search --sources is a question to sensor sources.
func (s *Service) IsName(ctx context.Context, sources string) bool {
	named := false
	for _, part := range strings.Split(sources, ",") {
		part = strings.TrimSpace(part)
		if _, err := protocol.PublicKeyOf(part); err == nil {
			continue
		}
		if ValidateName(part) != nil {
			return false
		}
		if _, err := s.Name(ctx, part); err != nil {
			return false
		}
		named = true
	}
	return named
}
