package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/protocol"
)

// mcpClient runs `mesh mcp` on repo and connects the SDK's client to it over
// stdio. The server's stderr goes to the returned buffer.
func mcpClient(t *testing.T, repo string) (*mcp.ClientSession, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.Command(meshBin, "--repo", repo, "mcp")
	cmd.Stderr = &stderr
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "mesh-e2e", Version: "0"}, nil).
		Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to mesh mcp: %v\nstderr: %s", err, stderr.String())
	}
	t.Cleanup(func() { cs.Close() })
	return cs, &stderr
}

// mcpCall calls a tool that must succeed and decodes its structured content.
func mcpCall(t *testing.T, cs *mcp.ClientSession, tool string, args, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error: %s", tool, mcpText(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: decode %s: %v", tool, b, err)
		}
	}
}

// mcpFail calls a tool that must fail and returns its error text.
func mcpFail(t *testing.T, cs *mcp.ClientSession, tool string, args any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if !res.IsError {
		t.Fatalf("%s: succeeded, want a tool error", tool)
	}
	return mcpText(res)
}

func mcpText(res *mcp.CallToolResult) string {
	var s []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			s = append(s, tc.Text)
		}
	}
	return strings.Join(s, "\n")
}

type mcpStored struct {
	Success bool   `json:"success"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

// TestMCPStdio: `mesh mcp` with no daemon opens the repo itself, serves the
// AMP tools over stdio, and lets go of the repo when the client hangs up.
func TestMCPStdio(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustMesh(t, repo, "", "init")
	cs, stderr := mcpClient(t, repo)

	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tool := range tools.Tools {
		names[tool.Name] = true
	}
	for _, want := range []string{"amp_store", "amp_search", "amp_get", "amp_delete", "amp_list", "amp_status", "amp_agent_status", "mesh_publish", "mesh_export"} {
		if !names[want] {
			t.Errorf("tool %s missing: %v", want, names)
		}
	}

	var st mcpStored
	mcpCall(t, cs, "amp_store", map[string]any{"operation": "store", "record": map[string]any{
		"type": "lesson", "title": "Check array bounds before access",
		"content": "Always verify array indices are within bounds before indexing.", "tags": []string{"javascript", "arrays"}, "severity": "warning",
	}}, &st)
	if !st.Success || !st.Created || !strings.HasPrefix(st.ID, "lesson_") {
		t.Fatalf("store: %+v", st)
	}
	mcpCall(t, cs, "amp_store", map[string]any{"record": map[string]any{
		"type": "checkpoint", "agent": "radarr", "working_on": "Debugging auth flow",
		"state": map[string]any{"blockers": []string{"Missing API key for OAuth provider"}},
	}}, nil)

	var sr struct {
		Results []struct {
			ID     string           `json:"id"`
			Record *protocol.Lesson `json:"record"`
		} `json:"results"`
		Total int `json:"total"`
	}
	mcpCall(t, cs, "amp_search", map[string]any{"query": "array bounds", "type": "lesson"}, &sr)
	if sr.Total != 1 || sr.Results[0].ID != st.ID || sr.Results[0].Record.Severity != "warning" {
		t.Fatalf("search: %+v", sr)
	}
	var as struct{ Status string }
	mcpCall(t, cs, "amp_agent_status", map[string]any{"agent": "radarr"}, &as)
	if as.Status != "blocked" {
		t.Fatalf("agent status: %+v", as)
	}
	var status struct {
		Stats map[string]int `json:"stats"`
	}
	mcpCall(t, cs, "amp_status", nil, &status)
	if status.Stats["total_records"] != 2 {
		t.Fatalf("status: %+v", status)
	}

	var exp protocol.SignedLesson
	mcpCall(t, cs, "mesh_publish", map[string]any{"id": st.ID, "visibility": "public", "topics": []string{"javascript"}}, nil)
	mcpCall(t, cs, "mesh_export", map[string]any{"id": st.ID}, &exp)
	if err := protocol.Verify(&exp, protocol.VerifyOptions{}); err != nil {
		t.Fatalf("exported lesson does not verify: %v", err)
	}

	if text := mcpFail(t, cs, "amp_get", map[string]any{"id": "lesson_0000000000000000"}); !strings.HasPrefix(text, "UNKNOWN_LESSON: ") {
		t.Errorf("get unknown: %q", text)
	}
	if text := mcpFail(t, cs, "amp_store", map[string]any{"record": map[string]any{"type": "lesson", "severity": "urgent"}}); !strings.HasPrefix(text, "INVALID_REQUEST: ") || !strings.Contains(text, "severity") {
		t.Errorf("invalid record: %q", text)
	}

	// The client hangs up: mesh mcp exits cleanly and frees the repo, whose
	// records the CLI then reads.
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v\nstderr: %s", err, stderr)
	}
	if strings.Contains(stderr.String(), "Always verify array indices") || strings.Contains(stderr.String(), "array bounds") {
		t.Errorf("mesh mcp logged record contents or queries:\n%s", stderr)
	}
	out := mustMesh(t, repo, "", "get", st.ID)
	if !strings.Contains(out, "Check array bounds before access") {
		t.Fatalf("get after mesh mcp: %s", out)
	}
}

// TestMCPStdioDaemon: with a daemon running, `mesh mcp` goes through its
// control API, so the daemon sees what the MCP client stores at once.
func TestMCPStdioDaemon(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustMesh(t, repo, "", "init")
	d := startDaemon(t, repo)
	cs, _ := mcpClient(t, repo)

	var st mcpStored
	mcpCall(t, cs, "amp_store", map[string]any{"record": map[string]any{"type": "reading", "content": "basement humidity", "humidity": 64}}, &st)
	resp, err := d.client(10 * time.Second).Get(d.api + "/amp/records/" + st.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"humidity":64`) {
		t.Fatalf("the daemon does not have the record: %d %s", resp.StatusCode, body)
	}
	var sr struct{ Total int }
	mcpCall(t, cs, "amp_search", map[string]any{"query": "humidity > 60"}, &sr)
	if sr.Total != 1 {
		t.Fatalf("search over the daemon: %+v", sr)
	}
	// The CLI works alongside: the daemon, not mesh mcp, holds the repo.
	if out := mustMesh(t, repo, "", "get", st.ID); !strings.Contains(out, "basement humidity") {
		t.Fatalf("get: %s", out)
	}
	var dr struct{ Deleted bool }
	mcpCall(t, cs, "amp_delete", map[string]any{"id": st.ID}, &dr)
	if !dr.Deleted {
		t.Fatal("delete: not deleted")
	}
	if text := mcpFail(t, cs, "amp_delete", map[string]any{"id": st.ID}); !strings.HasPrefix(text, "UNKNOWN_LESSON: ") {
		t.Errorf("second delete: %q", text)
	}
}
