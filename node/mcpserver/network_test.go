package mcpserver_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/mcpserver"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// TestMCPNetwork drives the network tools through the SDK's client on two
// real nodes (a mocknet): B's agent finds nothing of A's until it trusts
// A, then finds A's lesson with its trust path, verifies it by key and as
// a document, follows and watches A's topic and polls a match of a lesson
// A publishes after, syncs; A's agent revokes it and B's verify says so.
func TestMCPNetwork(t *testing.T) {
	t.Parallel()
	a, b := nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})
	nodetest.Connect(t, a, b)
	ca, cb := mcpSession(t, a, nil), mcpSession(t, b, nil)
	aID := a.ID().String()

	var node_ struct {
		Info    api.Info          `json:"info"`
		Network api.NetworkStatus `json:"network"`
	}
	callOK(t, cb, mcpserver.ToolNode, nil, &node_)
	if node_.Info.NodeID != b.ID().String() || node_.Network.Reachability == "" {
		t.Fatalf("mesh_node: %+v", node_)
	}
	var peers struct {
		Peers []api.PeerInfo `json:"peers"`
	}
	callOK(t, cb, mcpserver.ToolPeers, nil, &peers)
	if len(peers.Peers) != 1 || peers.Peers[0].ID != aID {
		t.Fatalf("mesh_peers: %+v", peers)
	}

	sl := nodetest.Publish(t, a, "Pin the toolchain", "A pinned rust-toolchain.toml keeps CI builds reproducible.", protocol.VisibilityPublic, "rust")
	search := map[string]any{"query": "toolchain reproducible"}
	var res api.FedSearchResponse
	callOK(t, cb, mcpserver.ToolNetworkSearch, search, &res)
	if len(res.Results) != 0 {
		t.Fatalf("B found %d result(s) of a publisher it does not trust", len(res.Results))
	}

	callOK(t, cb, mcpserver.ToolTrustAdd, map[string]any{"node_id": aID, "note": "alice"}, nil)
	var tl struct {
		Entries []api.TrustEntry `json:"entries"`
	}
	callOK(t, cb, mcpserver.ToolTrustList, nil, &tl)
	if len(tl.Entries) != 1 || tl.Entries[0].NodeID != aID || tl.Entries[0].Level != "full" || tl.Entries[0].Note != "alice" {
		t.Fatalf("mesh_trust_list: %+v", tl)
	}
	var path api.TrustPathInfo
	callOK(t, cb, mcpserver.ToolTrustPath, map[string]any{"node_id": aID}, &path)
	if !path.Trusted || len(path.Hops) != 2 {
		t.Fatalf("mesh_trust_path: %+v", path)
	}
	sum, _ := callOK(t, cb, mcpserver.ToolNetworkSearch, search, &res)
	if len(res.Results) != 1 || res.Results[0].Key != sl.Key() || len(res.Results[0].TrustPath) != 2 || !strings.Contains(sum, sl.Key()) {
		t.Fatalf("mesh_network_search after trust: %+v (%s)", res, sum)
	}

	var rep api.VerifyReport
	callOK(t, cb, mcpserver.ToolVerify, map[string]any{"key": sl.Key()}, &rep)
	if !rep.Valid || rep.Revoked || !rep.Trusted {
		t.Fatalf("mesh_verify key: %+v", rep)
	}
	doc, _ := json.Marshal(sl)
	var docArg map[string]any
	_ = json.Unmarshal(doc, &docArg)
	callOK(t, cb, mcpserver.ToolVerify, map[string]any{"document": docArg}, &rep)
	if !rep.Valid || rep.Key != sl.Key() || rep.Fingerprint == "" {
		t.Fatalf("mesh_verify document: %+v", rep)
	}
	docArg["lesson"].(map[string]any)["content"] = "tampered"
	sum, _ = callOK(t, cb, mcpserver.ToolVerify, map[string]any{"document": docArg}, &rep)
	if rep.Valid || rep.Error == "" || !strings.HasPrefix(sum, "✗") {
		t.Fatalf("mesh_verify of a tampered document: %+v (%s)", rep, sum)
	}

	// Follow and watch: a lesson A publishes after arrives as a match.
	callOK(t, ca, mcpserver.ToolFollow, map[string]any{"target": "rust"}, nil)
	callOK(t, cb, mcpserver.ToolFollow, map[string]any{"target": "rust"}, nil)
	var added api.WatchAdded
	callOK(t, cb, mcpserver.ToolWatchAdd, map[string]any{"query": "borrow checker", "topic": "rust"}, &added)
	if added.Watch.ID == "" || added.Followed != "" {
		t.Fatalf("mesh_watch_add: %+v (rust is followed already)", added)
	}
	var wl struct {
		Watches []api.Watch `json:"watches"`
	}
	callOK(t, cb, mcpserver.ToolWatchList, nil, &wl)
	if len(wl.Watches) != 1 || wl.Watches[0].ID != added.Watch.ID {
		t.Fatalf("mesh_watch_list: %+v", wl)
	}
	nodetest.WaitMesh(t, "rust", a, b)
	second := nodetest.Publish(t, a, "Fighting the borrow checker", "Clone first, optimise later.", protocol.VisibilityPublic, "rust")
	var poll api.WatchPollResult
	callOK(t, cb, mcpserver.ToolWatchPoll, map[string]any{"wait_ms": 30000}, &poll)
	if len(poll.Matches) != 1 || poll.Matches[0].Key != second.Key() || poll.Next != poll.Matches[0].Seq {
		t.Fatalf("mesh_watch_poll: %+v", poll)
	}
	callOK(t, cb, mcpserver.ToolWatchPoll, map[string]any{"after": poll.Next}, &poll)
	if len(poll.Matches) != 0 {
		t.Fatalf("mesh_watch_poll after the last match: %+v", poll)
	}
	callOK(t, cb, mcpserver.ToolWatchRemove, map[string]any{"id": added.Watch.ID}, nil)
	if code, _ := callErr(t, cb, mcpserver.ToolWatchRemove, map[string]any{"id": added.Watch.ID}); code != protocol.CodeNotFound {
		t.Errorf("removing a removed watch: %s", code)
	}
	var sync struct {
		Peers []api.SyncProgress `json:"peers"`
	}
	callOK(t, cb, mcpserver.ToolSync, nil, &sync)
	if len(sync.Peers) != 1 || sync.Peers[0].Peer != aID {
		t.Fatalf("mesh_sync: %+v", sync)
	}
	var fol struct {
		Topics []string `json:"topics"`
	}
	callOK(t, cb, mcpserver.ToolFollowing, nil, &fol)
	if !slices.Contains(fol.Topics, "rust") {
		t.Fatalf("mesh_following: %+v", fol)
	}
	callOK(t, cb, mcpserver.ToolUnfollow, map[string]any{"target": "rust"}, nil)
	callOK(t, cb, mcpserver.ToolFollowing, nil, &fol)
	if slices.Contains(fol.Topics, "rust") {
		t.Fatalf("mesh_unfollow: still following %v", fol.Topics)
	}

	// A revokes; B's verify by key sees the revocation.
	var rv protocol.Revocation
	callOK(t, ca, mcpserver.ToolRevoke, map[string]any{"id": sl.Lesson.ID, "reason": "outdated"}, &rv)
	if rv.LessonID != sl.Lesson.ID {
		t.Fatalf("mesh_revoke: %+v", rv)
	}
	nodetest.Eventually(t, "B to see the revocation", func() bool {
		var r api.VerifyReport
		callOK(t, cb, mcpserver.ToolVerify, map[string]any{"key": sl.Key()}, &r)
		return r.Revoked
	})
	callOK(t, cb, mcpserver.ToolTrustRemove, map[string]any{"node_id": aID}, nil)
	callOK(t, cb, mcpserver.ToolTrustPath, map[string]any{"node_id": aID}, &path)
	if path.Trusted {
		t.Fatalf("still trusted after mesh_trust_remove: %+v", path)
	}
	var dirs struct {
		Directories []api.DirectoryEntry `json:"directories"`
	}
	callOK(t, cb, mcpserver.ToolDirectories, nil, &dirs)
	if dirs.Directories == nil || len(dirs.Directories) != 0 {
		t.Fatalf("mesh_directories: %+v", dirs)
	}
}

// TestMCPNetworkBadArguments: bad arguments are INVALID_REQUEST tool
// errors naming what is wrong, never a panic or a protocol error.
func TestMCPNetworkBadArguments(t *testing.T) {
	t.Parallel()
	cs := mcpSession(t, nodetest.New(t, node.Config{}), nil)
	for _, c := range []struct {
		tool string
		args map[string]any
		want protocol.Code
	}{
		{mcpserver.ToolVerify, nil, protocol.CodeInvalidRequest},
		{mcpserver.ToolVerify, map[string]any{"key": "k@n", "document": map[string]any{}}, protocol.CodeInvalidRequest},
		{mcpserver.ToolVerify, map[string]any{"key": "not a key"}, protocol.CodeInvalidRequest},
		{mcpserver.ToolVerify, map[string]any{"document": "a string"}, protocol.CodeInvalidRequest},
		{mcpserver.ToolTrustAdd, map[string]any{"node_id": "12D3KooWBad"}, protocol.CodeInvalidRequest},
		{mcpserver.ToolTrustAdd, map[string]any{"node_id": "12D3KooWBad", "level": "total"}, protocol.CodeInvalidRequest},
		{mcpserver.ToolTrustPath, map[string]any{}, protocol.CodeInvalidRequest},
		{mcpserver.ToolNetworkSearch, map[string]any{"deadline_ms": -1}, protocol.CodeInvalidRequest},
		{mcpserver.ToolNetworkSearch, map[string]any{"query": 7}, protocol.CodeInvalidRequest},
		{mcpserver.ToolWatchAdd, map[string]any{"sources": []any{"bob"}}, protocol.CodeInvalidRequest},
		{mcpserver.ToolWatchPoll, map[string]any{"wait_ms": -5}, protocol.CodeInvalidRequest},
		{mcpserver.ToolRevoke, map[string]any{"id": "../etc"}, protocol.CodeInvalidRequest},
		{mcpserver.ToolFollow, map[string]any{"target": ""}, protocol.CodeInvalidRequest},
		{mcpserver.ToolConnect, map[string]any{"addr": ""}, protocol.CodeInvalidRequest},
		{mcpserver.ToolPeers, map[string]any{"extra": 1}, protocol.CodeInvalidRequest},
	} {
		if code, text := callErr(t, cs, c.tool, c.args); code != c.want {
			t.Errorf("%s %v: %s, want %s", c.tool, c.args, text, c.want)
		}
	}
	// Verifying a lesson that is nowhere: an answer, not valid, saying why.
	var rep api.VerifyReport
	sum, _ := callOK(t, cs, mcpserver.ToolVerify, map[string]any{"key": "lesson_0000000000000000@" + nodetest.New(t, node.Config{}).ID().String()}, &rep)
	if rep.Valid || rep.Error == "" || !strings.HasPrefix(sum, "✗") {
		t.Errorf("verify of a lesson that is nowhere: %+v (%s)", rep, sum)
	}
}
