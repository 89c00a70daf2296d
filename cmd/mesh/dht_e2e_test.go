package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/protocol"
)

// writeConfig writes REPO/config.json before the daemon first starts.
func writeConfig(t *testing.T, repo string, rc RepoConfig) {
	t.Helper()
	if err := os.MkdirAll(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteRepoConfig(repo, rc); err != nil {
		t.Fatal(err)
	}
}

func TestCLIDirectoryNodes(t *testing.T) {
	root := t.TempDir()
	rboot, rpub, rq := filepath.Join(root, "boot"), filepath.Join(root, "pub"), filepath.Join(root, "q")
	writeConfig(t, rboot, RepoConfig{DHT: discovery.Config{Mode: "server"}})
	startDaemon(t, rboot)
	var boot struct {
		NodeID string   `json:"nodeId"`
		Addrs  []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, rboot, "", "--json", "id")), &boot); err != nil || len(boot.Addrs) == 0 {
		t.Fatalf("id of boot: %+v %v", boot, err)
	}
	// The publisher and q know only the bootstrap node's address.
	writeConfig(t, rpub, RepoConfig{Bootstrap: []string{boot.Addrs[0]}, Topics: []string{"rust"}, DHT: discovery.Config{Mode: "server"}})
	writeConfig(t, rq, RepoConfig{Bootstrap: []string{boot.Addrs[0]}, DHT: discovery.Config{Mode: "client"}})
	startDaemon(t, rpub)
	startDaemon(t, rq)
	var pub struct {
		NodeID string `json:"nodeId"`
	}
	json.Unmarshal([]byte(mustMesh(t, rpub, "", "--json", "id")), &pub)

	var nodes []api.NodeInfo
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Until q's routing table has a server the lookup fails ("no DHT
		// server known yet"); then it may find nobody until pub provides.
		nodes = nil
		r := mesh(t, rq, "", "--json", "directory", "nodes", "--topic", "rust")
		json.Unmarshal([]byte(r.stdout), &nodes)
		if len(nodes) == 1 && nodes[0].NodeID == pub.NodeID && nodes[0].Record != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("q never found the publisher of rust: %+v %s", nodes, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := protocol.VerifyNodeRecord(nodes[0].Record, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := mustMesh(t, rq, "", "directory", "nodes", "--topic", "rust"); !strings.Contains(out, pub.NodeID) || !strings.Contains(out, "topics: rust") {
		t.Fatalf("directory nodes: %s", out)
	}
	if out := mustMesh(t, rq, "", "directory", "node", pub.NodeID); !strings.Contains(out, "record: signed") {
		t.Fatalf("directory node: %s", out)
	}
	if out := mustMesh(t, rq, "", "directory", "find", pub.NodeID); !strings.Contains(out, "/ip4/127.0.0.1/") {
		t.Fatalf("directory find: %s", out)
	}
	if out := mustMesh(t, rq, "", "directory", "dht"); !strings.Contains(out, "/mesh/kad/1.0.0: mode client") {
		t.Fatalf("directory dht: %s", out)
	}
	if out := mustMesh(t, rboot, "", "directory", "dht"); !strings.Contains(out, "now a server") {
		t.Fatalf("directory dht on the bootstrap node: %s", out)
	}
	// Usage errors: exit code 2, a message naming what is wrong.
	for _, a := range [][]string{
		{"directory", "nodes"},
		{"directory", "nodes", "--topic", "rust", "--role", "directory"},
		{"directory", "nodes", "--topic", "rust", "--limit", "-1"},
		{"directory", "node", "not-a-node-id"},
	} {
		if r := mesh(t, rq, "", a...); r.code != 2 || r.stderr == "" {
			t.Errorf("mesh %v: code %d, stderr %q", a, r.code, r.stderr)
		}
	}
	// Without a daemon the DHT cannot be asked; the error says so.
	offline := filepath.Join(root, "offline")
	mustMesh(t, offline, "", "init")
	if r := mesh(t, offline, "", "directory", "nodes", "--topic", "rust"); r.code != 1 || !strings.Contains(r.stderr, "mesh daemon") {
		t.Errorf("offline: code %d, stderr %q", r.code, r.stderr)
	}
}
