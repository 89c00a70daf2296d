package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/internal/netns"
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
	read := nodeMeshes(nodes, "bench")
	meshes, _ := read()
	if empty, below, parts := meshState(meshes, adj); empty != 4 || below != 0 || parts != 4 {
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
	if _, err := waitMeshes(read, adj, time.Minute); err != nil {
		t.Fatal(err)
	}
	meshes, _ = read()
	if empty, below, parts := meshState(meshes, adj); empty != 0 || below != 0 || parts != 1 {
		t.Fatalf("a line: %d empty, %d below, %d parts; want 0, 0, 1", empty, below, parts)
	}
}

// -procs: every node a mesh daemon process of its own, in a network
// namespace; every message and revocation reaches every node, and the
// connections are the graph's edges.
func TestPropagateProcs(t *testing.T) {
	if err := netns.Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("propagate -procs must run in CI: %v", err)
		}
		t.Skipf("skipping propagate -procs: %v", err)
	}
	m := lastJSON(t, "propagate", "-procs", "-nodes", "6", "-messages", "4", "-degree", "3")
	positive(t, m, "bound_ms", "p50_ms", "revoke_p50_ms", "cpu_us_per_delivery", "rss_mb")
	for _, k := range []string{"delivered", "revoke_delivered"} {
		if m[k] != 1.0 {
			t.Errorf("%s = %v, want 1", k, m[k])
		}
	}
	if m["procs"] != true || m["late_joiner_consistent"] != true {
		t.Errorf("got %v", m)
	}
	// Each hop waits for the proxy's delay: no message can beat the bound.
	if m["p50_ms"].(float64) < m["bound_ms"].(float64) {
		t.Errorf("p50 %v ms under the bound %v ms: the links are not delayed", m["p50_ms"], m["bound_ms"])
	}
}
