package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/mcpserver"
)

// TestMCPNetworkStdio: an agent that has only `mesh mcp` reaches the whole
// network. The SDK's client drives the real binary over stdio, on B's repo
// with B's daemon running (so the tools go through the control API),
// against real daemons A and a directory D: it lists every network tool,
// then calls each one: connect, node, peers, trust add/list/path, follow,
// following, watch add/list/poll/remove, network search, verify, directory
// add/list/search/remove, sync, unfollow, trust remove; A's agent revokes.
func TestMCPNetworkStdio(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ra, rb, rd := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "dir")
	public := freePort(t)
	startDaemonWith(t, rd, "--directory", "--directory-topic", "rust", "--public-api", public, "--public-rate", "1000")
	startDaemon(t, ra)
	startDaemon(t, rb)
	a, d := idOf(t, ra), idOf(t, rd)
	mustMesh(t, ra, "", "follow", "rust")
	mustMesh(t, ra, "", "directory", "add", d.Addrs[0])

	cb, _ := mcpClient(t, rb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cb.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{mcpserver.ToolNode, mcpserver.ToolPeers, mcpserver.ToolConnect, mcpserver.ToolSync,
		mcpserver.ToolNetworkSearch, mcpserver.ToolDirectorySearch, mcpserver.ToolDirectories, mcpserver.ToolDirectoryAdd,
		mcpserver.ToolDirectoryRemove, mcpserver.ToolVerify, mcpserver.ToolRevoke, mcpserver.ToolFollow, mcpserver.ToolUnfollow,
		mcpserver.ToolFollowing, mcpserver.ToolTrustList, mcpserver.ToolTrustAdd, mcpserver.ToolTrustRemove, mcpserver.ToolTrustPath,
		mcpserver.ToolWatchAdd, mcpserver.ToolWatchList, mcpserver.ToolWatchRemove, mcpserver.ToolWatchPoll} {
		if !slices.Contains(names, want) {
			t.Errorf("mesh mcp does not list %s", want)
		}
	}

	var conn struct {
		NodeID string `json:"nodeId"`
	}
	mcpCall(t, cb, mcpserver.ToolConnect, map[string]any{"addr": a.Addrs[0]}, &conn)
	if conn.NodeID != a.NodeID {
		t.Fatalf("mesh_connect: %+v", conn)
	}
	var nd struct {
		Info api.Info `json:"info"`
	}
	mcpCall(t, cb, mcpserver.ToolNode, nil, &nd)
	if !nd.Info.Online || nd.Info.API == "" {
		t.Fatalf("mesh_node: %+v", nd.Info)
	}
	var peers struct {
		Peers []api.PeerInfo `json:"peers"`
	}
	mcpCall(t, cb, mcpserver.ToolPeers, nil, &peers)
	if !slices.ContainsFunc(peers.Peers, func(p api.PeerInfo) bool { return p.ID == a.NodeID }) {
		t.Fatalf("mesh_peers: %+v", peers)
	}
	mcpCall(t, cb, mcpserver.ToolTrustAdd, map[string]any{"node_id": a.NodeID, "level": "full", "note": "alice"}, nil)
	var tl struct {
		Entries []api.TrustEntry `json:"entries"`
	}
	mcpCall(t, cb, mcpserver.ToolTrustList, nil, &tl)
	if len(tl.Entries) != 1 || tl.Entries[0].Note != "alice" {
		t.Fatalf("mesh_trust_list: %+v", tl)
	}
	var path api.TrustPathInfo
	mcpCall(t, cb, mcpserver.ToolTrustPath, map[string]any{"node_id": a.NodeID}, &path)
	if !path.Trusted {
		t.Fatalf("mesh_trust_path: %+v", path)
	}
	mcpCall(t, cb, mcpserver.ToolFollow, map[string]any{"target": "rust"}, nil)
	var fol struct {
		Topics []string `json:"topics"`
	}
	mcpCall(t, cb, mcpserver.ToolFollowing, nil, &fol)
	if !slices.Contains(fol.Topics, "rust") {
		t.Fatalf("mesh_following: %+v", fol)
	}
	var added api.WatchAdded
	mcpCall(t, cb, mcpserver.ToolWatchAdd, map[string]any{"query": "linker memory", "topic": "rust"}, &added)
	var wl struct {
		Watches []api.Watch `json:"watches"`
	}
	mcpCall(t, cb, mcpserver.ToolWatchList, nil, &wl)
	if len(wl.Watches) != 1 || wl.Watches[0].ID != added.Watch.ID {
		t.Fatalf("mesh_watch_list: %+v", wl)
	}

	// A publishes; B's agent finds it, verifies it, and its watch matches.
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "Cargo builds exhaust memory",
		"--content", "Parallel cargo builds run the linker out of memory on a small VPS.")), &st); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
	key := st.ID + "@" + a.NodeID
	var poll api.WatchPollResult
	mcpCall(t, cb, mcpserver.ToolWatchPoll, map[string]any{"wait_ms": 30000}, &poll)
	if len(poll.Matches) == 0 {
		// Gossip may not have reached B (the mesh forms in the background):
		// a sync brings it, and the watch matches it as it arrives.
		mcpCall(t, cb, mcpserver.ToolSync, nil, nil)
		mcpCall(t, cb, mcpserver.ToolWatchPoll, map[string]any{"wait_ms": 30000}, &poll)
	}
	if len(poll.Matches) != 1 || poll.Matches[0].Key != key {
		t.Fatalf("mesh_watch_poll: %+v", poll)
	}
	mcpCall(t, cb, mcpserver.ToolWatchRemove, map[string]any{"id": added.Watch.ID}, nil)
	var fs api.FedSearchResponse
	mcpCall(t, cb, mcpserver.ToolNetworkSearch, map[string]any{"query": "cargo linker memory"}, &fs)
	if len(fs.Results) == 0 || fs.Results[0].Key != key {
		t.Fatalf("mesh_network_search: %+v", fs)
	}
	var rep api.VerifyReport
	mcpCall(t, cb, mcpserver.ToolVerify, map[string]any{"key": key}, &rep)
	if !rep.Valid || rep.Revoked || !rep.Trusted {
		t.Fatalf("mesh_verify: %+v", rep)
	}
	var sync struct {
		Peers []api.SyncProgress `json:"peers"`
	}
	mcpCall(t, cb, mcpserver.ToolSync, nil, &sync)
	if len(sync.Peers) == 0 {
		t.Fatalf("mesh_sync: %+v", sync)
	}

	// The directory: added by its address, listed, searched, removed.
	mcpCall(t, cb, mcpserver.ToolDirectoryAdd, map[string]any{"target": d.Addrs[0]}, nil)
	var dirs struct {
		Directories []api.DirectoryEntry `json:"directories"`
	}
	mcpCall(t, cb, mcpserver.ToolDirectories, nil, &dirs)
	if len(dirs.Directories) != 1 {
		t.Fatalf("mesh_directories: %+v", dirs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ds api.DirectorySearchResult
		mcpCall(t, cb, mcpserver.ToolDirectorySearch, map[string]any{"query": "cargo linker", "directories": []string{"http://" + public}}, &ds)
		if len(ds.Results) > 0 && ds.Results[0].Key == key && ds.Results[0].Trusted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mesh_directory_search never found the lesson: %+v", ds)
		}
		time.Sleep(300 * time.Millisecond)
	}
	mcpCall(t, cb, mcpserver.ToolDirectoryRemove, map[string]any{"target": d.NodeID}, nil)

	// A's agent revokes; B's verify says so.
	ca, _ := mcpClient(t, ra)
	mcpCall(t, ca, mcpserver.ToolRevoke, map[string]any{"id": st.ID, "reason": "outdated"}, nil)
	mcpCall(t, cb, mcpserver.ToolVerify, map[string]any{"key": key}, &rep)
	if !rep.Revoked {
		t.Fatalf("mesh_verify after revoke: %+v", rep)
	}
	mcpCall(t, cb, mcpserver.ToolUnfollow, map[string]any{"target": "rust"}, nil)
	mcpCall(t, cb, mcpserver.ToolTrustRemove, map[string]any{"node_id": a.NodeID}, nil)
	mcpCall(t, cb, mcpserver.ToolTrustPath, map[string]any{"node_id": a.NodeID}, &path)
	if path.Trusted {
		t.Fatalf("trusted after mesh_trust_remove: %+v", path)
	}
}
