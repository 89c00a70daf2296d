package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/protocol"
)

// mcpSession serves api with NewMCPServer over the SDK's in-memory transport
// and returns a connected SDK client session.
func mcpSession(t *testing.T, api API, opts *MCPOptions) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := NewMCPServer(api, opts).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "mesh-test", Version: "0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

func offlineNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.Offline = true
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// jsonArgs turns a JSON object into tool arguments.
func jsonArgs(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

// callOK calls a tool that must succeed and decodes its structured content
// into out. It checks the text content: a summary, then the same JSON.
func callOK(t *testing.T, cs *mcp.ClientSession, name string, args, out any) (summary string, structured []byte) {
	t.Helper()
	res := callTool(t, cs, name, args)
	if res.IsError {
		t.Fatalf("%s: tool error: %s", name, resultText(res))
	}
	structured, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Content) != 2 {
		t.Fatalf("%s: %d content blocks, want summary and JSON", name, len(res.Content))
	}
	summary = res.Content[0].(*mcp.TextContent).Text
	if summary == "" || strings.HasPrefix(summary, "{") {
		t.Errorf("%s: summary %q is not a summary", name, summary)
	}
	if js := res.Content[1].(*mcp.TextContent).Text; !jsonEqual(t, []byte(js), structured) {
		t.Errorf("%s: text JSON %s differs from structured content %s", name, js, structured)
	}
	if out != nil {
		if err := json.Unmarshal(structured, out); err != nil {
			t.Fatalf("%s: decode %s: %v", name, structured, err)
		}
	}
	return summary, structured
}

// callErr calls a tool that must fail and returns its MESH code and text.
func callErr(t *testing.T, cs *mcp.ClientSession, name string, args any) (protocol.Code, string) {
	t.Helper()
	res := callTool(t, cs, name, args)
	text := resultText(res)
	if !res.IsError {
		t.Fatalf("%s: succeeded, want a tool error: %s", name, text)
	}
	if res.StructuredContent != nil {
		t.Errorf("%s: error result carries structured content", name)
	}
	code, msg, ok := strings.Cut(text, ": ")
	if !ok || msg == "" {
		t.Fatalf("%s: error text %q: want CODE: message", name, text)
	}
	return protocol.Code(code), text
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// restGET is the body of a GET on the node's AMP REST binding.
func restGET(t *testing.T, n *Node, path string) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	n.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func restPOST(t *testing.T, n *Node, path, body string) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	n.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func TestMCPListTools(t *testing.T) {
	cs := mcpSession(t, offlineNode(t, Config{}), nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tools := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		tools[tool.Name] = tool
		if tool.Description == "" || tool.Title == "" {
			t.Errorf("%s: no description or title", tool.Name)
		}
		in, _ := tool.InputSchema.(map[string]any)
		if in["type"] != "object" {
			t.Errorf("%s: input schema %v: want an object", tool.Name, tool.InputSchema)
		}
		out, _ := tool.OutputSchema.(map[string]any)
		if out["type"] != "object" {
			t.Errorf("%s: output schema %v: want an object", tool.Name, tool.OutputSchema)
		}
	}
	slices.Sort(names)
	want := []string{"amp_agent_status", "amp_delete", "amp_get", "amp_list", "amp_search", "amp_status", "amp_store", "mesh_export", "mesh_publish"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	// The schemas come from the Go types, with descriptions.
	store := tools[ToolStore].InputSchema.(map[string]any)
	if req, _ := store["required"].([]any); len(req) != 1 || req[0] != "record" {
		t.Errorf("amp_store requires %v, want [record]", store["required"])
	}
	rec := store["properties"].(map[string]any)["record"].(map[string]any)
	if rec["type"] != "object" || rec["additionalProperties"] == false {
		t.Errorf("record schema %v: want an open object", rec)
	}
	search := tools[ToolSearch].InputSchema.(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"query", "type", "tags", "project", "limit", "min_score"} {
		p, ok := search[f].(map[string]any)
		if !ok || p["description"] == "" || p["description"] == nil {
			t.Errorf("amp_search field %s: missing or undescribed: %v", f, search[f])
		}
	}
	outProps := tools[ToolSearch].OutputSchema.(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"success", "results", "total"} {
		if _, ok := outProps[f]; !ok {
			t.Errorf("amp_search output schema lacks %s", f)
		}
	}
	if ann := tools[ToolSearch].Annotations; ann == nil || !ann.ReadOnlyHint {
		t.Errorf("amp_search annotations %+v: want read-only", ann)
	}
	if ann := tools[ToolDelete].Annotations; ann == nil || ann.DestructiveHint == nil || !*ann.DestructiveHint {
		t.Errorf("amp_delete annotations %+v: want destructive", ann)
	}
}

// TestMCPAMP drives every tool on a real node through a real SDK client,
// with the AMP spec's example requests, and checks each answer against the
// REST binding's answer to the same question.
func TestMCPAMP(t *testing.T) {
	var logs bytes.Buffer
	n := offlineNode(t, Config{})
	cs := mcpSession(t, n, &MCPOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	// store: the AMP request bodies work as arguments, "operation" and all.
	var st StoreResponse
	sum, _ := callOK(t, cs, ToolStore, jsonArgs(t, ampStoreLesson), &st)
	if !st.Success || !st.Created || !strings.HasPrefix(st.ID, "lesson_") {
		t.Fatalf("store lesson: %+v", st)
	}
	if sum != "stored lesson "+st.ID {
		t.Errorf("store summary %q", sum)
	}
	lessonID := st.ID
	// created_at has millisecond resolution and ties break by the random ID:
	// keep the records in distinct milliseconds so list order is defined.
	time.Sleep(2 * time.Millisecond)
	callOK(t, cs, ToolStore, jsonArgs(t, ampStoreCheckpoint), &st)
	if !st.Created || !strings.HasPrefix(st.ID, "checkpoint_") {
		t.Fatalf("store checkpoint: %+v", st)
	}
	checkpointID := st.ID
	time.Sleep(2 * time.Millisecond)
	// Without "operation", and an upsert of an existing ID.
	callOK(t, cs, ToolStore, map[string]any{"record": map[string]any{
		"id": "snip-1", "type": "snippet", "content": "func main() {}", "language": "go", "project": "myapp-backend",
	}}, &st)
	if st.ID != "snip-1" || !st.Created {
		t.Fatalf("store snippet: %+v", st)
	}
	sum, _ = callOK(t, cs, ToolStore, map[string]any{"record": map[string]any{
		"id": "snip-1", "type": "snippet", "content": "func main() { run() }", "language": "go", "project": "myapp-backend",
	}}, &st)
	if st.Created || sum != "updated snippet snip-1" {
		t.Fatalf("update snippet: %+v %q", st, sum)
	}

	// search: the spec's example, answered as REST answers it.
	var sr SearchResponse
	_, got := callOK(t, cs, ToolSearch, jsonArgs(t, ampSearch), &sr)
	if sr.Total != 1 || len(sr.Results) != 1 || sr.Results[0].ID != lessonID || sr.Results[0].Record.Severity != "critical" {
		t.Fatalf("search: %s", got)
	}
	if want := restPOST(t, n, "/amp/search", ampSearch); !jsonEqual(t, got, want) {
		t.Errorf("search: MCP %s, REST %s", got, want)
	}

	// get
	var rr RecordResponse
	sum, got = callOK(t, cs, ToolGet, map[string]any{"id": lessonID}, &rr)
	if rr.Record.Title != "Always validate user input before database queries" || !slices.Equal(rr.Record.Tags, []string{"security", "sql", "validation", "databases"}) {
		t.Fatalf("get: %s", got)
	}
	if !strings.Contains(sum, lessonID) {
		t.Errorf("get summary %q", sum)
	}
	if want := restGET(t, n, "/amp/records/"+lessonID); !jsonEqual(t, got, want) {
		t.Errorf("get: MCP %s, REST %s", got, want)
	}

	// list, with filters
	for _, tc := range []struct {
		args  map[string]any
		query string
		ids   []string
		more  bool
	}{
		{map[string]any{"type": "checkpoint", "agent": "dev-agent-01"}, "type=checkpoint&agent=dev-agent-01", []string{checkpointID}, false},
		{map[string]any{"project": "myapp-backend", "order": "asc"}, "project=myapp-backend&order=asc", []string{checkpointID, "snip-1"}, false},
		{map[string]any{"tags": []string{"sql"}}, "tag=sql", []string{lessonID}, false},
		{map[string]any{"limit": 1, "offset": 1, "order": "asc"}, "limit=1&offset=1&order=asc", []string{checkpointID}, true},
		{map[string]any{"type": "reading"}, "type=reading", nil, false},
	} {
		var lr ListResponse
		_, got := callOK(t, cs, ToolList, tc.args, &lr)
		var ids []string
		for _, r := range lr.Records {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tc.ids) || lr.HasMore != tc.more || !lr.Success {
			t.Errorf("list %v: %s, want %v (has_more %v)", tc.args, got, tc.ids, tc.more)
		}
		if want := restGET(t, n, "/amp/records?"+tc.query); !jsonEqual(t, got, want) {
			t.Errorf("list %v: MCP %s, REST %s", tc.args, got, want)
		}
	}

	// status
	var sres StatusResponse
	sum, got = callOK(t, cs, ToolStatus, nil, &sres)
	if !sres.Healthy || sres.Protocol != AMPProtocol || sres.NodeID != n.ID().String() ||
		sres.Stats["lessons"] != 1 || sres.Stats["checkpoints"] != 1 || sres.Stats["snippets"] != 1 || sres.Stats["total_records"] != 3 {
		t.Fatalf("status: %s", got)
	}
	if !strings.Contains(sum, "3 records") {
		t.Errorf("status summary %q", sum)
	}
	if want := restGET(t, n, "/amp/status"); !jsonEqual(t, got, want) {
		t.Errorf("status: MCP %s, REST %s", got, want)
	}

	// agent status: the checkpoint lists a blocker.
	var as AgentStatusResponse
	sum, got = callOK(t, cs, ToolAgentStatus, map[string]any{"agent": "dev-agent-01"}, &as)
	if as.Status != "blocked" || as.CheckpointID != checkpointID || len(as.Blockers) != 1 || as.WorkingOn != "Implementing OAuth2 flow for GitHub integration" {
		t.Fatalf("agent status: %s", got)
	}
	if !strings.HasPrefix(sum, "dev-agent-01: blocked") {
		t.Errorf("agent status summary %q", sum)
	}
	if want := restGET(t, n, "/amp/agents/dev-agent-01/status"); !jsonEqual(t, got, want) {
		t.Errorf("agent status: MCP %s, REST %s", got, want)
	}
	callOK(t, cs, ToolAgentStatus, map[string]any{"agent": "nobody"}, &as)
	if as.Status != "idle" {
		t.Errorf("agent without checkpoints: %+v", as)
	}

	// publish, then export: the SignedLesson verifies on its own.
	var pub protocol.SignedLesson
	sum, pubJSON := callOK(t, cs, ToolPublish, map[string]any{"id": lessonID, "visibility": "public", "topics": []string{"security"}}, &pub)
	if err := protocol.Verify(&pub, protocol.VerifyOptions{}); err != nil {
		t.Fatalf("published lesson does not verify: %v\n%s", err, pubJSON)
	}
	if pub.Signature.NodeID != n.ID().String() || pub.Lesson.ID != lessonID || pub.Publication.Visibility != "public" {
		t.Fatalf("publish: %s", pubJSON)
	}
	if !strings.Contains(sum, pub.Key()) {
		t.Errorf("publish summary %q", sum)
	}
	var exp protocol.SignedLesson
	_, expJSON := callOK(t, cs, ToolExport, map[string]any{"id": lessonID}, &exp)
	if err := protocol.Verify(&exp, protocol.VerifyOptions{}); err != nil {
		t.Fatalf("exported lesson does not verify: %v\n%s", err, expJSON)
	}
	if !jsonEqual(t, pubJSON, expJSON) {
		t.Errorf("export %s differs from publish %s", expJSON, pubJSON)
	}
	// What anyone can verify: decode the exported bytes from scratch.
	sl, err := protocol.DecodeSignedLesson(expJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{}); err != nil {
		t.Fatalf("exported JSON does not verify: %v", err)
	}

	// delete, then the record is gone.
	var dr DeleteResponse
	sum, _ = callOK(t, cs, ToolDelete, map[string]any{"id": lessonID}, &dr)
	if !dr.Success || !dr.Deleted || sum != "deleted "+lessonID {
		t.Fatalf("delete: %+v %q", dr, sum)
	}
	if code, text := callErr(t, cs, ToolGet, map[string]any{"id": lessonID}); code != protocol.CodeUnknownLesson {
		t.Errorf("get after delete: %s", text)
	}
	if code, text := callErr(t, cs, ToolExport, map[string]any{"id": lessonID}); code != protocol.CodeUnknownLesson {
		t.Errorf("export after delete: %s", text)
	}

	// Nothing the agent wrote or asked reached the log.
	for _, secret := range []string{"SQL injection", "parameterized", "OAuth2", "func main", "dev-agent-01"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds %q:\n%s", secret, logs.String())
		}
	}
}

// TestMCPOpenRecord: fields beyond AMP's survive, and comparisons find them.
func TestMCPOpenRecord(t *testing.T) {
	cs := mcpSession(t, offlineNode(t, Config{}), nil)
	var st StoreResponse
	callOK(t, cs, ToolStore, map[string]any{"record": map[string]any{
		"type": "reading", "content": "basement humidity", "humidity": 64.5, "sensor": map[string]any{"room": "basement"},
	}}, &st)
	var sr SearchResponse
	_, got := callOK(t, cs, ToolSearch, map[string]any{"query": "humidity > 60"}, &sr)
	if len(sr.Results) != 1 || sr.Results[0].ID != st.ID {
		t.Fatalf("search: %s", got)
	}
	if v, ok := sr.Results[0].Record.Number("humidity"); !ok || v != 64.5 {
		t.Errorf("humidity = %v, %v in %s", v, ok, got)
	}
	if !strings.Contains(string(got), `"sensor":{"room":"basement"}`) {
		t.Errorf("extra object field lost: %s", got)
	}
	callOK(t, cs, ToolSearch, map[string]any{"query": "humidity > 70"}, &sr)
	if len(sr.Results) != 0 {
		t.Errorf("humidity > 70 matched %+v", sr.Results)
	}
}

func TestMCPErrors(t *testing.T) {
	n := offlineNode(t, Config{})
	cs := mcpSession(t, n, nil)
	var st StoreResponse
	callOK(t, cs, ToolStore, map[string]any{"record": map[string]any{"id": "private-1", "type": "lesson", "title": "t", "content": "c"}}, &st)

	for _, tc := range []struct {
		name string
		tool string
		args any
		code protocol.Code
		want string // in the message
	}{
		{"unknown id", ToolGet, map[string]any{"id": "lesson_0000000000000000"}, protocol.CodeUnknownLesson, "lesson_0000000000000000"},
		{"delete unknown id", ToolDelete, map[string]any{"id": "nope"}, protocol.CodeUnknownLesson, "nope"},
		{"bad id", ToolGet, map[string]any{"id": "../etc/passwd"}, protocol.CodeInvalidRequest, "record id"},
		{"missing id", ToolGet, map[string]any{}, protocol.CodeInvalidRequest, "id"},
		{"id not a string", ToolGet, map[string]any{"id": 7}, protocol.CodeInvalidRequest, "id"},
		{"invalid record", ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "severity": "urgent"}}, protocol.CodeInvalidRequest, "severity"},
		{"record without type", ToolStore, map[string]any{"record": map[string]any{"content": "x"}}, protocol.CodeInvalidRequest, "type"},
		{"record not an object", ToolStore, map[string]any{"record": "a lesson"}, protocol.CodeInvalidRequest, "record"},
		{"no record", ToolStore, map[string]any{}, protocol.CodeInvalidRequest, "record"},
		{"record with bad tags", ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "tags": "sql"}}, protocol.CodeInvalidRequest, "field record.tags"},
		{"record with a bad tag", ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "tags": []any{"sql", 7}}}, protocol.CodeInvalidRequest, "field record.tags"},
		{"record too large", ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "content": strings.Repeat("x", protocol.MaxRecordSize)}}, protocol.CodeTooLarge, ""},
		{"unknown field", ToolSearch, map[string]any{"queyr": "sql"}, protocol.CodeInvalidRequest, "queyr"},
		{"limit not a number", ToolSearch, map[string]any{"query": "sql", "limit": "ten"}, protocol.CodeInvalidRequest, "field limit"},
		{"limit fractional", ToolList, map[string]any{"limit": 1.5}, protocol.CodeInvalidRequest, "limit"},
		{"limit too large", ToolSearch, map[string]any{"query": "sql", "limit": 1000}, protocol.CodeInvalidRequest, "limit"},
		{"min_score out of range", ToolSearch, map[string]any{"query": "sql", "min_score": 2}, protocol.CodeInvalidRequest, "min_score"},
		{"bad query", ToolSearch, map[string]any{"query": `"unclosed`}, protocol.CodeInvalidRequest, ""},
		{"negative offset", ToolList, map[string]any{"offset": -1}, protocol.CodeInvalidRequest, "offset"},
		{"bad order", ToolList, map[string]any{"order": "sideways"}, protocol.CodeInvalidRequest, "order"},
		{"bad visibility", ToolList, map[string]any{"visibility": "secret"}, protocol.CodeInvalidRequest, "visibility"},
		{"wrong operation", ToolSearch, map[string]any{"operation": "store", "query": "sql"}, protocol.CodeInvalidRequest, "operation"},
		{"empty agent", ToolAgentStatus, map[string]any{"agent": ""}, protocol.CodeInvalidRequest, "agent"},
		{"publish private", ToolPublish, map[string]any{"id": "private-1", "visibility": "private"}, protocol.CodeInvalidRequest, "visibility"},
		{"publish without visibility", ToolPublish, map[string]any{"id": "private-1"}, protocol.CodeInvalidRequest, "visibility"},
		{"publish bad topic", ToolPublish, map[string]any{"id": "private-1", "visibility": "public", "topics": []string{"no spaces"}}, protocol.CodeInvalidRequest, "topic"},
		{"publish unknown", ToolPublish, map[string]any{"id": "nope", "visibility": "public"}, protocol.CodeUnknownLesson, "nope"},
		{"export unpublished", ToolExport, map[string]any{"id": "private-1"}, protocol.CodeUnknownLesson, "not published"},
		{"status with arguments", ToolStatus, map[string]any{"verbose": true}, protocol.CodeInvalidRequest, "verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, text := callErr(t, cs, tc.tool, tc.args)
			if code != tc.code || !strings.Contains(text, tc.want) {
				t.Errorf("%s %v: %q, want code %s mentioning %q", tc.tool, tc.args, text, tc.code, tc.want)
			}
		})
	}

	// A failed call changes nothing.
	var lr ListResponse
	callOK(t, cs, ToolList, nil, &lr)
	if lr.Total != 1 {
		t.Errorf("after the failures the store holds %d records, want 1", lr.Total)
	}
	if _, err := n.Export(context.Background(), "private-1"); err == nil {
		t.Error("the private record got published")
	}

	// An unknown tool is a protocol error, not a crash.
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "amp_nope"}); err == nil {
		t.Error("unknown tool: no error")
	}
}

// TestMCPOverClient serves the tools over a daemon's control API (*Client)
// instead of an in-process node.
func TestMCPOverClient(t *testing.T) {
	n := offlineNode(t, Config{APIAddr: "127.0.0.1:0"})
	cs := mcpSession(t, NewClient(n.APIURL(), n.Token()), nil)

	var st StoreResponse
	callOK(t, cs, ToolStore, jsonArgs(t, ampStoreLesson), &st)
	callOK(t, cs, ToolStore, jsonArgs(t, ampStoreCheckpoint), nil)
	if rec, err := n.Get(context.Background(), st.ID); err != nil || rec.Severity != "critical" {
		t.Fatalf("the daemon's node does not hold the record: %v %v", rec, err)
	}
	var sr SearchResponse
	_, got := callOK(t, cs, ToolSearch, jsonArgs(t, ampSearch), &sr)
	if want := restPOST(t, n, "/amp/search", ampSearch); !jsonEqual(t, got, want) {
		t.Errorf("search: MCP %s, REST %s", got, want)
	}
	var sres StatusResponse
	_, got = callOK(t, cs, ToolStatus, nil, &sres)
	if want := restGET(t, n, "/amp/status"); !jsonEqual(t, got, want) {
		t.Errorf("status: MCP %s, REST %s", got, want)
	}
	var as AgentStatusResponse
	_, got = callOK(t, cs, ToolAgentStatus, map[string]any{"agent": "dev-agent-01"}, &as)
	if want := restGET(t, n, "/amp/agents/dev-agent-01/status"); !jsonEqual(t, got, want) {
		t.Errorf("agent status: MCP %s, REST %s", got, want)
	}
	var lr ListResponse
	_, got = callOK(t, cs, ToolList, map[string]any{"type": "lesson", "tags": []string{"sql"}}, &lr)
	if want := restGET(t, n, "/amp/records?type=lesson&tag=sql"); !jsonEqual(t, got, want) {
		t.Errorf("list: MCP %s, REST %s", got, want)
	}
	var exp protocol.SignedLesson
	callOK(t, cs, ToolPublish, map[string]any{"id": st.ID, "visibility": "unlisted"}, nil)
	callOK(t, cs, ToolExport, map[string]any{"id": st.ID}, &exp)
	if err := protocol.Verify(&exp, protocol.VerifyOptions{}); err != nil || exp.Signature.NodeID != n.ID().String() {
		t.Fatalf("export over the client: %v", err)
	}
	if code, text := callErr(t, cs, ToolGet, map[string]any{"id": "nope"}); code != protocol.CodeUnknownLesson {
		t.Errorf("get unknown over the client: %s", text)
	}
	if code, text := callErr(t, cs, ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "severity": "urgent"}}); code != protocol.CodeInvalidRequest {
		t.Errorf("invalid record over the client: %s", text)
	}
	callOK(t, cs, ToolDelete, map[string]any{"id": st.ID}, nil)
	if code, text := callErr(t, cs, ToolDelete, map[string]any{"id": st.ID}); code != protocol.CodeUnknownLesson {
		t.Errorf("second delete over the client: %s", text)
	}
}
