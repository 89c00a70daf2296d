package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/mcpserver"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// testToken is the control API token of the handlers the tests serve.
const testToken = "0123456789abcdef0123456789abcdef"

// mcpSession serves a with mcpserver.New over the SDK's in-memory transport
// and returns a connected SDK client session.
func mcpSession(t *testing.T, a api.API, opts *mcpserver.Options) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := mcpserver.New(a, node.Version, opts).Connect(ctx, st, nil)
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

// stepClock is a clock that moves on a millisecond each time it is read:
// records stored one after another have distinct created_at, so the order
// of a listing is defined without sleeping.
func stepClock() func() time.Time {
	base := time.Now()
	var ms atomic.Int64
	return func() time.Time { return base.Add(time.Duration(ms.Add(1)) * time.Millisecond) }
}

// offlineNode starts a node without libp2p (the AMP tools need only its
// store), closed when the test ends.
func offlineNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	cfg.Offline = true
	if cfg.Now == nil {
		cfg.Now = stepClock()
	}
	return nodetest.Local(t, cfg)
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

// rest is the body of a request to n's AMP REST binding (httpapi.Handler,
// in process), which must succeed.
func rest(t *testing.T, n *node.Node, method, path, body string) []byte {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "127.0.0.1"
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	httpapi.Handler(n, testToken).ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func restGET(t *testing.T, n *node.Node, path string) []byte {
	t.Helper()
	return rest(t, n, http.MethodGet, path, "")
}

func restPOST(t *testing.T, n *node.Node, path, body string) []byte {
	t.Helper()
	return rest(t, n, http.MethodPost, path, body)
}

func TestMCPListTools(t *testing.T) {
	t.Parallel()
	cs := mcpSession(t, offlineNode(t, node.Config{}), nil)
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
	want := []string{"amp_agent_status", "amp_delete", "amp_get", "amp_list", "amp_search", "amp_status", "amp_store",
		"mesh_connect", "mesh_directories", "mesh_directory_add", "mesh_directory_remove", "mesh_directory_search", "mesh_export",
		"mesh_follow", "mesh_following", "mesh_key_status", "mesh_keys_list", "mesh_keys_policy", "mesh_keys_rotate",
		"mesh_network_search", "mesh_node", "mesh_peers", "mesh_publish", "mesh_publish_encrypted", "mesh_read", "mesh_revoke",
		"mesh_revoke_hard", "mesh_sync", "mesh_trust_add", "mesh_trust_list", "mesh_trust_path", "mesh_trust_remove",
		"mesh_unfollow", "mesh_verify", "mesh_watch_add", "mesh_watch_list", "mesh_watch_poll", "mesh_watch_remove"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	// The schemas come from the Go types, with descriptions.
	store := tools[mcpserver.ToolStore].InputSchema.(map[string]any)
	if req, _ := store["required"].([]any); len(req) != 1 || req[0] != "record" {
		t.Errorf("amp_store requires %v, want [record]", store["required"])
	}
	rec := store["properties"].(map[string]any)["record"].(map[string]any)
	if rec["type"] != "object" || rec["additionalProperties"] == false {
		t.Errorf("record schema %v: want an open object", rec)
	}
	search := tools[mcpserver.ToolSearch].InputSchema.(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"query", "type", "tags", "project", "limit", "min_score", "origin"} {
		p, ok := search[f].(map[string]any)
		if !ok || p["description"] == "" || p["description"] == nil {
			t.Errorf("amp_search field %s: missing or undescribed: %v", f, search[f])
		}
	}
	list := tools[mcpserver.ToolList].InputSchema.(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"type", "agent", "tags", "limit", "offset", "order", "origin"} {
		p, ok := list[f].(map[string]any)
		if !ok || p["description"] == "" || p["description"] == nil {
			t.Errorf("amp_list field %s: missing or undescribed: %v", f, list[f])
		}
	}
	resultProps := tools[mcpserver.ToolSearch].OutputSchema.(map[string]any)["properties"].(map[string]any)["results"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"id", "score", "record", "key", "publisher"} {
		if _, ok := resultProps[f]; !ok {
			t.Errorf("amp_search result schema lacks %s", f)
		}
	}
	outProps := tools[mcpserver.ToolSearch].OutputSchema.(map[string]any)["properties"].(map[string]any)
	for _, f := range []string{"success", "results", "total"} {
		if _, ok := outProps[f]; !ok {
			t.Errorf("amp_search output schema lacks %s", f)
		}
	}
	if ann := tools[mcpserver.ToolSearch].Annotations; ann == nil || !ann.ReadOnlyHint {
		t.Errorf("amp_search annotations %+v: want read-only", ann)
	}
	if ann := tools[mcpserver.ToolDelete].Annotations; ann == nil || ann.DestructiveHint == nil || !*ann.DestructiveHint {
		t.Errorf("amp_delete annotations %+v: want destructive", ann)
	}
}

// TestMCPAMP drives every tool on a real node through a real SDK client,
// with the AMP spec's example requests, and checks each answer against the
// REST binding's answer to the same question.
func TestMCPAMP(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	n := offlineNode(t, node.Config{})
	cs := mcpSession(t, n, &mcpserver.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	// store: the AMP request bodies work as arguments, "operation" and all.
	var st api.StoreResponse
	sum, _ := callOK(t, cs, mcpserver.ToolStore, jsonArgs(t, nodetest.AMPStoreLesson), &st)
	if !st.Success || !st.Created || !strings.HasPrefix(st.ID, "lesson_") {
		t.Fatalf("store lesson: %+v", st)
	}
	if sum != "stored lesson "+st.ID {
		t.Errorf("store summary %q", sum)
	}
	lessonID := st.ID
	// created_at has millisecond resolution and ties break by the random
	// ID: the node's clock (stepClock) keeps the records in distinct
	// milliseconds, so list order is defined.
	callOK(t, cs, mcpserver.ToolStore, jsonArgs(t, nodetest.AMPStoreCheckpoint), &st)
	if !st.Created || !strings.HasPrefix(st.ID, "checkpoint_") {
		t.Fatalf("store checkpoint: %+v", st)
	}
	checkpointID := st.ID
	// Without "operation", and an upsert of an existing ID.
	callOK(t, cs, mcpserver.ToolStore, map[string]any{"record": map[string]any{
		"id": "snip-1", "type": "snippet", "content": "func main() {}", "language": "go", "project": "myapp-backend",
	}}, &st)
	if st.ID != "snip-1" || !st.Created {
		t.Fatalf("store snippet: %+v", st)
	}
	sum, _ = callOK(t, cs, mcpserver.ToolStore, map[string]any{"record": map[string]any{
		"id": "snip-1", "type": "snippet", "content": "func main() { run() }", "language": "go", "project": "myapp-backend",
	}}, &st)
	if st.Created || sum != "updated snippet snip-1" {
		t.Fatalf("update snippet: %+v %q", st, sum)
	}

	// search: the spec's example, answered as REST answers it.
	var sr api.SearchResponse
	_, got := callOK(t, cs, mcpserver.ToolSearch, jsonArgs(t, nodetest.AMPSearch), &sr)
	if sr.Total != 1 || len(sr.Results) != 1 || sr.Results[0].ID != lessonID || sr.Results[0].Record.Severity != "critical" {
		t.Fatalf("search: %s", got)
	}
	if want := restPOST(t, n, "/amp/search", nodetest.AMPSearch); !jsonEqual(t, got, want) {
		t.Errorf("search: MCP %s, REST %s", got, want)
	}

	// get
	var rr api.RecordResponse
	sum, got = callOK(t, cs, mcpserver.ToolGet, map[string]any{"id": lessonID}, &rr)
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
		var lr api.ListResponse
		_, got := callOK(t, cs, mcpserver.ToolList, tc.args, &lr)
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
	var sres api.StatusResponse
	sum, got = callOK(t, cs, mcpserver.ToolStatus, nil, &sres)
	if !sres.Healthy || sres.Protocol != api.AMPProtocol || sres.NodeID != n.ID().String() ||
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
	var as api.AgentStatusResponse
	sum, got = callOK(t, cs, mcpserver.ToolAgentStatus, map[string]any{"agent": "dev-agent-01"}, &as)
	if as.Status != "blocked" || as.CheckpointID != checkpointID || len(as.Blockers) != 1 || as.WorkingOn != "Implementing OAuth2 flow for GitHub integration" {
		t.Fatalf("agent status: %s", got)
	}
	if !strings.HasPrefix(sum, "dev-agent-01: blocked") {
		t.Errorf("agent status summary %q", sum)
	}
	if want := restGET(t, n, "/amp/agents/dev-agent-01/status"); !jsonEqual(t, got, want) {
		t.Errorf("agent status: MCP %s, REST %s", got, want)
	}
	callOK(t, cs, mcpserver.ToolAgentStatus, map[string]any{"agent": "nobody"}, &as)
	if as.Status != "idle" {
		t.Errorf("agent without checkpoints: %+v", as)
	}

	// publish, then export: the SignedLesson verifies on its own.
	var pub protocol.SignedLesson
	sum, pubJSON := callOK(t, cs, mcpserver.ToolPublish, map[string]any{"id": lessonID, "visibility": "public", "topics": []string{"security"}}, &pub)
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
	_, expJSON := callOK(t, cs, mcpserver.ToolExport, map[string]any{"id": lessonID}, &exp)
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
	var dr api.DeleteResponse
	sum, _ = callOK(t, cs, mcpserver.ToolDelete, map[string]any{"id": lessonID}, &dr)
	if !dr.Success || !dr.Deleted || sum != "deleted "+lessonID {
		t.Fatalf("delete: %+v %q", dr, sum)
	}
	if code, text := callErr(t, cs, mcpserver.ToolGet, map[string]any{"id": lessonID}); code != protocol.CodeUnknownLesson {
		t.Errorf("get after delete: %s", text)
	}
	if code, text := callErr(t, cs, mcpserver.ToolExport, map[string]any{"id": lessonID}); code != protocol.CodeUnknownLesson {
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
	t.Parallel()
	cs := mcpSession(t, offlineNode(t, node.Config{}), nil)
	var st api.StoreResponse
	callOK(t, cs, mcpserver.ToolStore, map[string]any{"record": map[string]any{
		"type": "reading", "content": "basement humidity", "humidity": 64.5, "sensor": map[string]any{"room": "basement"},
	}}, &st)
	var sr api.SearchResponse
	_, got := callOK(t, cs, mcpserver.ToolSearch, map[string]any{"query": "humidity > 60"}, &sr)
	if len(sr.Results) != 1 || sr.Results[0].ID != st.ID {
		t.Fatalf("search: %s", got)
	}
	if v, ok := sr.Results[0].Record.Number("humidity"); !ok || v != 64.5 {
		t.Errorf("humidity = %v, %v in %s", v, ok, got)
	}
	if !strings.Contains(string(got), `"sensor":{"room":"basement"}`) {
		t.Errorf("extra object field lost: %s", got)
	}
	callOK(t, cs, mcpserver.ToolSearch, map[string]any{"query": "humidity > 70"}, &sr)
	if len(sr.Results) != 0 {
		t.Errorf("humidity > 70 matched %+v", sr.Results)
	}
}

func TestMCPErrors(t *testing.T) {
	t.Parallel()
	n := offlineNode(t, node.Config{})
	cs := mcpSession(t, n, nil)
	var st api.StoreResponse
	callOK(t, cs, mcpserver.ToolStore, map[string]any{"record": map[string]any{"id": "private-1", "type": "lesson", "title": "t", "content": "c"}}, &st)

	for _, tc := range []struct {
		name string
		tool string
		args any
		code protocol.Code
		want string // in the message
	}{
		{"unknown id", mcpserver.ToolGet, map[string]any{"id": "lesson_0000000000000000"}, protocol.CodeUnknownLesson, "lesson_0000000000000000"},
		{"delete unknown id", mcpserver.ToolDelete, map[string]any{"id": "nope"}, protocol.CodeUnknownLesson, "nope"},
		{"bad id", mcpserver.ToolGet, map[string]any{"id": "../etc/passwd"}, protocol.CodeInvalidRequest, "record id"},
		{"missing id", mcpserver.ToolGet, map[string]any{}, protocol.CodeInvalidRequest, "id"},
		{"id not a string", mcpserver.ToolGet, map[string]any{"id": 7}, protocol.CodeInvalidRequest, "id"},
		{"invalid record", mcpserver.ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "severity": "urgent"}}, protocol.CodeInvalidRequest, "severity"},
		{"record without type", mcpserver.ToolStore, map[string]any{"record": map[string]any{"content": "x"}}, protocol.CodeInvalidRequest, "type"},
		{"record not an object", mcpserver.ToolStore, map[string]any{"record": "a lesson"}, protocol.CodeInvalidRequest, "record"},
		{"no record", mcpserver.ToolStore, map[string]any{}, protocol.CodeInvalidRequest, "record"},
		{"record with bad tags", mcpserver.ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "tags": "sql"}}, protocol.CodeInvalidRequest, "field record.tags"},
		{"record with a bad tag", mcpserver.ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "tags": []any{"sql", 7}}}, protocol.CodeInvalidRequest, "field record.tags"},
		{"record too large", mcpserver.ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "content": strings.Repeat("x", protocol.MaxRecordSize)}}, protocol.CodeTooLarge, ""},
		{"unknown field", mcpserver.ToolSearch, map[string]any{"queyr": "sql"}, protocol.CodeInvalidRequest, "queyr"},
		{"limit not a number", mcpserver.ToolSearch, map[string]any{"query": "sql", "limit": "ten"}, protocol.CodeInvalidRequest, "field limit"},
		{"limit fractional", mcpserver.ToolList, map[string]any{"limit": 1.5}, protocol.CodeInvalidRequest, "limit"},
		{"limit too large", mcpserver.ToolSearch, map[string]any{"query": "sql", "limit": 1000}, protocol.CodeInvalidRequest, "limit"},
		{"min_score out of range", mcpserver.ToolSearch, map[string]any{"query": "sql", "min_score": 2}, protocol.CodeInvalidRequest, "min_score"},
		{"bad query", mcpserver.ToolSearch, map[string]any{"query": `"unclosed`}, protocol.CodeInvalidRequest, ""},
		{"negative offset", mcpserver.ToolList, map[string]any{"offset": -1}, protocol.CodeInvalidRequest, "offset"},
		{"bad order", mcpserver.ToolList, map[string]any{"order": "sideways"}, protocol.CodeInvalidRequest, "order"},
		{"bad visibility", mcpserver.ToolList, map[string]any{"visibility": "secret"}, protocol.CodeInvalidRequest, "visibility"},
		{"wrong operation", mcpserver.ToolSearch, map[string]any{"operation": "store", "query": "sql"}, protocol.CodeInvalidRequest, "operation"},
		{"empty agent", mcpserver.ToolAgentStatus, map[string]any{"agent": ""}, protocol.CodeInvalidRequest, "agent"},
		{"publish private", mcpserver.ToolPublish, map[string]any{"id": "private-1", "visibility": "private"}, protocol.CodeInvalidRequest, "visibility"},
		{"publish without visibility", mcpserver.ToolPublish, map[string]any{"id": "private-1"}, protocol.CodeInvalidRequest, "visibility"},
		{"publish bad topic", mcpserver.ToolPublish, map[string]any{"id": "private-1", "visibility": "public", "topics": []string{"no spaces"}}, protocol.CodeInvalidRequest, "topic"},
		{"publish unknown", mcpserver.ToolPublish, map[string]any{"id": "nope", "visibility": "public"}, protocol.CodeUnknownLesson, "nope"},
		{"export unpublished", mcpserver.ToolExport, map[string]any{"id": "private-1"}, protocol.CodeUnknownLesson, "not published"},
		{"status with arguments", mcpserver.ToolStatus, map[string]any{"verbose": true}, protocol.CodeInvalidRequest, "verbose"},
		{"search bad origin", mcpserver.ToolSearch, map[string]any{"query": "sql", "origin": "elsewhere"}, protocol.CodeInvalidRequest, "origin"},
		{"list bad origin", mcpserver.ToolList, map[string]any{"origin": "elsewhere"}, protocol.CodeInvalidRequest, "origin"},
		{"origin not a string", mcpserver.ToolSearch, map[string]any{"query": "sql", "origin": 1}, protocol.CodeInvalidRequest, "origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, text := callErr(t, cs, tc.tool, tc.args)
			if code != tc.code || !strings.Contains(text, tc.want) {
				t.Errorf("%s %v: %q, want code %s mentioning %q", tc.tool, tc.args, text, tc.code, tc.want)
			}
		})
	}

	// A failed call changes nothing.
	var lr api.ListResponse
	callOK(t, cs, mcpserver.ToolList, nil, &lr)
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
	t.Parallel()
	n := offlineNode(t, node.Config{})
	srv := httptest.NewServer(httpapi.Handler(n, testToken))
	t.Cleanup(srv.Close)
	cs := mcpSession(t, httpapi.NewClient(srv.URL, testToken), nil)

	var st api.StoreResponse
	callOK(t, cs, mcpserver.ToolStore, jsonArgs(t, nodetest.AMPStoreLesson), &st)
	callOK(t, cs, mcpserver.ToolStore, jsonArgs(t, nodetest.AMPStoreCheckpoint), nil)
	if rec, err := n.Get(context.Background(), st.ID); err != nil || rec.Severity != "critical" {
		t.Fatalf("the daemon's node does not hold the record: %v %v", rec, err)
	}
	var sr api.SearchResponse
	_, got := callOK(t, cs, mcpserver.ToolSearch, jsonArgs(t, nodetest.AMPSearch), &sr)
	if want := restPOST(t, n, "/amp/search", nodetest.AMPSearch); !jsonEqual(t, got, want) {
		t.Errorf("search: MCP %s, REST %s", got, want)
	}
	var sres api.StatusResponse
	_, got = callOK(t, cs, mcpserver.ToolStatus, nil, &sres)
	if want := restGET(t, n, "/amp/status"); !jsonEqual(t, got, want) {
		t.Errorf("status: MCP %s, REST %s", got, want)
	}
	var as api.AgentStatusResponse
	_, got = callOK(t, cs, mcpserver.ToolAgentStatus, map[string]any{"agent": "dev-agent-01"}, &as)
	if want := restGET(t, n, "/amp/agents/dev-agent-01/status"); !jsonEqual(t, got, want) {
		t.Errorf("agent status: MCP %s, REST %s", got, want)
	}
	var lr api.ListResponse
	_, got = callOK(t, cs, mcpserver.ToolList, map[string]any{"type": "lesson", "tags": []string{"sql"}}, &lr)
	if want := restGET(t, n, "/amp/records?type=lesson&tag=sql"); !jsonEqual(t, got, want) {
		t.Errorf("list: MCP %s, REST %s", got, want)
	}
	var exp protocol.SignedLesson
	callOK(t, cs, mcpserver.ToolPublish, map[string]any{"id": st.ID, "visibility": "unlisted"}, nil)
	callOK(t, cs, mcpserver.ToolExport, map[string]any{"id": st.ID}, &exp)
	if err := protocol.Verify(&exp, protocol.VerifyOptions{}); err != nil || exp.Signature.NodeID != n.ID().String() {
		t.Fatalf("export over the client: %v", err)
	}
	if code, text := callErr(t, cs, mcpserver.ToolGet, map[string]any{"id": "nope"}); code != protocol.CodeUnknownLesson {
		t.Errorf("get unknown over the client: %s", text)
	}
	if code, text := callErr(t, cs, mcpserver.ToolStore, map[string]any{"record": map[string]any{"type": "lesson", "severity": "urgent"}}); code != protocol.CodeInvalidRequest {
		t.Errorf("invalid record over the client: %s", text)
	}
	callOK(t, cs, mcpserver.ToolDelete, map[string]any{"id": st.ID}, nil)
	if code, text := callErr(t, cs, mcpserver.ToolDelete, map[string]any{"id": st.ID}); code != protocol.CodeUnknownLesson {
		t.Errorf("second delete over the client: %s", text)
	}
}

// receivedLesson starts two nodes on a mocknet that follow "security" and
// trust each other: pub publishes a public lesson, recv holds one record
// of its own and, once connected, receives pub's lesson (by the sync that
// follows the connection). It returns recv, pub and the lesson's key.
func receivedLesson(t *testing.T) (recv, pub *node.Node, key string) {
	t.Helper()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{Topics: []string{"security"}})
	recv, pub = nodes[0], nodes[1]
	nodetest.TrustAll(t, recv, pub)
	key = nodetest.Publish(t, pub, "Rotate leaked credentials first", "Revoke and rotate leaked credentials before anything else.", protocol.VisibilityPublic, "security").Key()
	if _, _, err := recv.Put(context.Background(), &protocol.Lesson{ID: "own-1", Type: "lesson", Title: "Audit credentials quarterly", Content: "An audit of credentials finds the leaked ones."}); err != nil {
		t.Fatal(err)
	}
	nodetest.Connect(t, recv, pub)
	nodetest.Eventually(t, "the lesson reaches recv", func() bool { return nodetest.HasRemote(recv, key) })
	return recv, pub, key
}

// TestMCPReceivedLessons: amp_search and amp_list take origin (local by
// default, as AMP clients expect; remote; all), and a received lesson's
// result carries its key and publisher, in process and over a Client, as
// the REST binding answers them.
func TestMCPReceivedLessons(t *testing.T) {
	t.Parallel()
	recv, pub, key := receivedLesson(t)
	srv := httptest.NewServer(httpapi.Handler(recv, testToken))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name string
		a    api.API
	}{{"node", recv}, {"client", httpapi.NewClient(srv.URL, testToken)}} {
		t.Run(tc.name, func(t *testing.T) {
			cs := mcpSession(t, tc.a, nil)
			for _, c := range []struct {
				origin string
				want   []string // keys, "" for own records, sorted
			}{
				{"", []string{""}},
				{"local", []string{""}},
				{"remote", []string{key}},
				{"all", []string{"", key}},
			} {
				hasRemote := c.origin == "remote" || c.origin == "all"
				args := map[string]any{"query": "credentials leaked"}
				body := `{"query":"credentials leaked"}`
				if c.origin != "" {
					args["origin"] = c.origin
					body = `{"query":"credentials leaked","origin":"` + c.origin + `"}`
				}
				var sr api.SearchResponse
				sum, got := callOK(t, cs, mcpserver.ToolSearch, args, &sr)
				var keys []string
				for _, r := range sr.Results {
					keys = append(keys, r.Key)
					switch {
					case r.Key == "" && (r.Publisher != "" || r.ID != "own-1"):
						t.Errorf("origin %q: own hit %+v carries a publisher", c.origin, r)
					case r.Key != "" && (r.Publisher != pub.ID().String() || r.ID+"@"+r.Publisher != r.Key || r.Record.Title != "Rotate leaked credentials first"):
						t.Errorf("origin %q: received hit %+v: want key %s, publisher %s", c.origin, r, key, pub.ID())
					}
				}
				if slices.Sort(keys); !slices.Equal(keys, c.want) {
					t.Errorf("origin %q: keys %q, want %q: %s", c.origin, keys, c.want, got)
				}
				if c.origin == "remote" && !strings.Contains(sum, key) {
					t.Errorf("origin remote: summary %q does not name the lesson by its key", sum)
				}
				if !hasRemote && strings.Contains(string(got), `"publisher"`) {
					t.Errorf("origin %q: own hits carry key or publisher fields: %s", c.origin, got)
				}
				if want := restPOST(t, recv, "/amp/search", body); !jsonEqual(t, got, want) {
					t.Errorf("search origin %q: MCP %s, REST %s", c.origin, got, want)
				}

				lArgs, query := map[string]any{"order": "asc"}, "order=asc"
				if c.origin != "" {
					lArgs["origin"], query = c.origin, query+"&origin="+c.origin
				}
				var lr api.ListResponse
				_, got = callOK(t, cs, mcpserver.ToolList, lArgs, &lr)
				if len(lr.Records) != len(c.want) || lr.Total != len(c.want) {
					t.Errorf("list origin %q: %s, want %d records", c.origin, got, len(c.want))
				}
				if hasRemote {
					// Keys name each received record; own ones are "".
					for i, r := range lr.Records {
						if k := lr.Keys[i]; (k == "") != (r.ID == "own-1") || (k != "" && k != key) {
							t.Errorf("list origin %q: record %s has key %q", c.origin, r.ID, k)
						}
					}
				} else if lr.Keys != nil {
					t.Errorf("list origin %q: own records with keys %q", c.origin, lr.Keys)
				}
				if want := restGET(t, recv, "/amp/records?"+query); !jsonEqual(t, got, want) {
					t.Errorf("list origin %q: MCP %s, REST %s", c.origin, got, want)
				}
			}
			// A received lesson can be opened, by its key or by its id
			// when no record of the agent's own has that id; amp_delete,
			// which deletes the agent's own records, does not reach it.
			lessonID, _, _ := strings.Cut(key, "@")
			for _, ref := range []string{key, lessonID} {
				var got api.RecordResponse
				callOK(t, cs, mcpserver.ToolGet, map[string]any{"id": ref}, &got)
				if got.Record == nil || got.Record.ID != lessonID || got.Record.Visibility != protocol.VisibilityPublic {
					t.Errorf("get a received lesson by %s: %+v", ref, got.Record)
				}
			}
			if code, text := callErr(t, cs, mcpserver.ToolDelete, map[string]any{"id": lessonID}); code != protocol.CodeUnknownLesson {
				t.Errorf("delete a received lesson by its id: %s", text)
			}
		})
	}
}
