package main

import (
	"context"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/nodetest"
)

// A small network: every message and revocation reaches every node, and
// publishing starts only after the meshes joined every node.
func TestPropagate(t *testing.T) {
	m := lastJSON(t, "propagate", "-nodes", "6", "-messages", "4", "-degree", "3")
	positive(t, m, "mesh_ready_ms", "bound_ms", "p50_ms", "revoke_p50_ms")
	for _, k := range []string{"delivered", "revoke_delivered"} {
		if m[k] != 1.0 {
			t.Errorf("%s = %v, want 1", k, m[k])
		}
	}
	if m["late_joiner_consistent"] != true {
		t.Errorf("late joiner not consistent: %v", m)
	}
}

// meshState counts nodes outside every mesh and the meshes' parts: before
// any connection each node is a part of its own; along a line, once the
// meshes formed, one part.
func TestMeshState(t *testing.T) {
	ctx := context.Background()
	net := nodetest.NewNet(0)
	net.LinkNone()
	t.Cleanup(func() { net.Close() })
	nodes := make([]*node.Node, 4)
	adj := make([]map[int]bool, len(nodes))
	for i := range nodes {
		var err error
		if nodes[i], err = net.Start(ctx, node.Config{Topics: []string{"bench"}}); err != nil {
			t.Fatal(err)
		}
		adj[i] = map[int]bool{}
	}
	if empty, below, parts := meshState(nodes, adj, "bench"); empty != 4 || below != 0 || parts != 4 {
		t.Fatalf("unconnected: %d empty, %d below, %d parts; want 4, 0, 4", empty, below, parts)
	}
	for i := 1; i < len(nodes); i++ {
		adj[i-1][i], adj[i][i-1] = true, true
		if _, err := net.Mocknet().LinkPeers(nodes[i-1].ID(), nodes[i].ID()); err != nil {
			t.Fatal(err)
		}
		if _, err := net.Mocknet().ConnectPeers(nodes[i-1].ID(), nodes[i].ID()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := waitMeshes(nodes, adj, "bench", time.Minute); err != nil {
		t.Fatal(err)
	}
	if empty, below, parts := meshState(nodes, adj, "bench"); empty != 0 || below != 0 || parts != 1 {
		t.Fatalf("a line: %d empty, %d below, %d parts; want 0, 0, 1", empty, below, parts)
	}
}
