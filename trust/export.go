package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/meshprotocol/mesh/protocol"
)

// ExportVersion is the version of the export format.
const ExportVersion = 1

// export is the export format: {"version":1,"edges":[…]}.
type export struct {
	Version int    `json:"version"`
	Edges   []Edge `json:"edges"`
}

// Export returns the direct edges as JSON, {"version":1,"edges":[…]}, sorted
// by node ID. Vouches and referrals are not exported.
func (g *Graph) Export() ([]byte, error) {
	b, err := json.MarshalIndent(export{Version: ExportVersion, Edges: g.Edges()}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("trust: export: %w", err)
	}
	return append(b, '\n'), nil
}

// Import adds the edges of an export (at most MaxImportSize bytes) and
// returns how many it added. It is additive: an edge to a node that already
// has one is left as it is, so an import never removes, downgrades, raises
// or unblocks anything. Everything is checked before anything changes; a bad
// document or edge (an unknown field, a duplicate node, an invalid ID, level
// or note, this node's own ID) is an error wrapping protocol.ErrInvalid, an
// unknown version one wrapping protocol.ErrUnsupportedVersion. An edge to
// this node itself (a friend's export may list it) is skipped. An edge
// without addedAt is stamped with the current time.
func (g *Graph) Import(data []byte) (added int, err error) {
	if len(data) > MaxImportSize {
		return 0, fmt.Errorf("trust: import: %w: %d bytes, the limit is %d", protocol.ErrTooLarge, len(data), MaxImportSize)
	}
	var doc struct {
		Version *int    `json:"version"`
		Edges   *[]Edge `json:"edges"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return 0, fmt.Errorf("%w: trust: import: %v", protocol.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, fmt.Errorf("%w: trust: import: data after the document", protocol.ErrInvalid)
	}
	switch {
	case doc.Version == nil:
		return 0, fmt.Errorf("%w: trust: import: version is missing", protocol.ErrInvalid)
	case *doc.Version != ExportVersion:
		return 0, fmt.Errorf("trust: import: %w: version %d, want %d", protocol.ErrUnsupportedVersion, *doc.Version, ExportVersion)
	case doc.Edges == nil:
		return 0, fmt.Errorf("%w: trust: import: edges is missing", protocol.ErrInvalid)
	}
	now := g.now().UnixMilli()
	seen := make(map[string]bool, len(*doc.Edges))
	for i, e := range *doc.Edges {
		if e.NodeID == g.self {
			continue
		}
		if err := g.checkEdge(e); err != nil {
			return 0, fmt.Errorf("trust: import: edges[%d]: %w", i, err)
		}
		if seen[e.NodeID] {
			return 0, fmt.Errorf("%w: trust: import: edges[%d]: %s appears twice", protocol.ErrInvalid, i, e.NodeID)
		}
		seen[e.NodeID] = true
		if e.AddedAt == 0 {
			(*doc.Edges)[i].AddedAt = now
		}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	var fresh []Edge
	for _, e := range *doc.Edges {
		if _, ok := g.edges[e.NodeID]; !ok && e.NodeID != g.self {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	ctx := context.Background()
	batch, err := g.ds.Batch(ctx)
	if err != nil {
		return 0, fmt.Errorf("trust: import: %w", err)
	}
	for _, e := range fresh {
		b, err := encodeEdge(e)
		if err != nil {
			return 0, err
		}
		if err := batch.Put(ctx, edgeKey(e.NodeID), b); err != nil {
			return 0, fmt.Errorf("trust: import: %w", err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, fmt.Errorf("trust: import: %w", err)
	}
	if err := g.ds.Sync(ctx, edgePrefix); err != nil {
		return 0, fmt.Errorf("trust: import: %w", err)
	}
	for _, e := range fresh {
		g.edges[e.NodeID] = e
	}
	g.changeLocked()
	return len(fresh), nil
}
