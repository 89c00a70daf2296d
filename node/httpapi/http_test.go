package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// maxRequestBody is the handler's cap on request bodies (unexported there):
// a record of protocol.MaxRecordSize bytes and room for the request around it.
const maxRequestBody = protocol.MaxRecordSize + 16<<10

// testToken is the control API token of the handlers the tests serve.
const testToken = "0123456789abcdef0123456789abcdef"

// apiClient sends raw requests to an HTTP API and decodes the JSON answers.
type apiClient struct {
	t    *testing.T
	base string
	// tok, if set, is sent as the bearer token when hdr names no
	// Authorization.
	tok string
}

func (c apiClient) do(method, path, body string, hdr ...string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
	}
	return resp.StatusCode, m
}

// offlineNode starts a node without libp2p (the AMP binding needs only its
// store), closed when the test ends.
func offlineNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	cfg.Offline = true
	return nodetest.Local(t, cfg)
}

// serve serves httpapi.Handler over n on a loopback port of its own.
func serve(t *testing.T, n *node.Node) apiClient {
	t.Helper()
	srv := httptest.NewServer(httpapi.Handler(n, testToken))
	t.Cleanup(srv.Close)
	return apiClient{t: t, base: srv.URL, tok: testToken}
}

// startAPI starts a node and serves its HTTP API on loopback.
func startAPI(t *testing.T) (*node.Node, apiClient) {
	n := offlineNode(t, node.Config{})
	return n, serve(t, n)
}

func TestAMPRestBinding(t *testing.T) {
	t.Parallel()
	_, c := startAPI(t)

	code, m := c.do("POST", "/amp/store", nodetest.AMPStoreLesson)
	if code != 200 || m["success"] != true || m["created"] != true {
		t.Fatalf("store lesson: %d %v", code, m)
	}
	lessonID := m["id"].(string)
	if !strings.HasPrefix(lessonID, "lesson_") {
		t.Fatalf("id %q, want lesson_<hex>", lessonID)
	}
	code, m = c.do("POST", "/amp/store", nodetest.AMPStoreCheckpoint)
	if code != 200 || m["success"] != true {
		t.Fatalf("store checkpoint: %d %v", code, m)
	}
	cpID := m["id"].(string)

	// Upsert by id keeps the id and reports created=false.
	code, m = c.do("POST", "/amp/store", `{"operation":"store","record":{"id":"`+lessonID+`","type":"lesson","title":"Always validate user input","content":"Use parameterized queries against SQL injection.","tags":["sql"]}}`)
	if code != 200 || m["created"] != false || m["id"] != lessonID {
		t.Fatalf("upsert: %d %v", code, m)
	}

	code, m = c.do("POST", "/amp/search", nodetest.AMPSearch)
	if code != 200 || m["success"] != true {
		t.Fatalf("search: %d %v", code, m)
	}
	results := m["results"].([]any)
	if len(results) != 1 || m["total"].(float64) != 1 {
		t.Fatalf("search results: %v", m)
	}
	hit := results[0].(map[string]any)
	if hit["id"] != lessonID || hit["score"].(float64) <= 0 || hit["record"].(map[string]any)["title"] != "Always validate user input" {
		t.Fatalf("hit: %v", hit)
	}
	// An own record has no key or publisher: AMP clients see AMP's shape.
	if _, ok := hit["key"]; ok {
		t.Errorf("own hit carries a key: %v", hit)
	}
	if _, ok := hit["publisher"]; ok {
		t.Errorf("own hit carries a publisher: %v", hit)
	}

	code, m = c.do("GET", "/amp/records/"+cpID, "")
	if code != 200 || m["record"].(map[string]any)["working_on"] == nil {
		t.Fatalf("get: %d %v", code, m)
	}
	code, m = c.do("GET", "/amp/records?type=checkpoint&agent=dev-agent-01&limit=1&offset=0&order=desc", "")
	if code != 200 || m["total"].(float64) != 1 || m["has_more"] != false || len(m["records"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
	code, m = c.do("GET", "/amp/records?limit=1", "")
	if code != 200 || m["total"].(float64) != 2 || m["has_more"] != true {
		t.Fatalf("list page: %d %v", code, m)
	}
	code, m = c.do("GET", "/amp/status", "")
	stats, _ := m["stats"].(map[string]any)
	if code != 200 || m["healthy"] != true || stats["lessons"].(float64) != 1 || stats["checkpoints"].(float64) != 1 || stats["total_records"].(float64) != 2 {
		t.Fatalf("status: %d %v", code, m)
	}
	code, m = c.do("GET", "/amp/agents/dev-agent-01/status", "")
	if code != 200 || m["status"] != store.StatusBlocked {
		t.Fatalf("agent status: %d %v", code, m)
	}
	code, m = c.do("POST", "/amp", `{"operation":"get","id":"`+cpID+`"}`)
	if code != 200 || m["success"] != true {
		t.Fatalf("operation get: %d %v", code, m)
	}
	code, m = c.do("DELETE", "/amp/records/"+cpID, "")
	if code != 200 || m["deleted"] != true {
		t.Fatalf("delete: %d %v", code, m)
	}
	code, m = c.do("GET", "/amp/records/"+cpID, "")
	if code != 404 || m["code"] != string(protocol.CodeUnknownLesson) {
		t.Fatalf("get deleted: %d %v", code, m)
	}
}

func TestAMPBadRequests(t *testing.T) {
	t.Parallel()
	n, c := startAPI(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     protocol.Code
		says                     string
	}{
		{"not json", "POST", "/amp/store", `{"operation":`, 400, protocol.CodeInvalidRequest, "JSON object"},
		{"no record", "POST", "/amp/store", `{"operation":"store"}`, 400, protocol.CodeInvalidRequest, "record"},
		{"no type", "POST", "/amp/store", `{"record":{"content":"x"}}`, 400, protocol.CodeInvalidRequest, "type is required"},
		{"title not string", "POST", "/amp/store", `{"record":{"type":"lesson","title":5}}`, 400, protocol.CodeInvalidRequest, "title"},
		{"bad visibility", "POST", "/amp/store", `{"record":{"type":"lesson","visibility":"everyone"}}`, 400, protocol.CodeInvalidRequest, "visibility"},
		{"duplicate key", "POST", "/amp/store", `{"record":{"type":"lesson","type":"x"}}`, 400, protocol.CodeInvalidRequest, "Duplicate"},
		{"wrong operation", "POST", "/amp/store", `{"operation":"delete","record":{"type":"lesson"}}`, 400, protocol.CodeInvalidRequest, "operation"},
		{"limit type", "POST", "/amp/search", `{"query":"x","limit":"ten"}`, 400, protocol.CodeInvalidRequest, "limit"},
		{"bad list limit", "GET", "/amp/records?limit=-1", "", 400, protocol.CodeInvalidRequest, "limit"},
		{"bad order", "GET", "/amp/records?order=sideways", "", 400, protocol.CodeInvalidRequest, "order"},
		{"bad origin", "GET", "/amp/records?origin=elsewhere", "", 400, protocol.CodeInvalidRequest, "origin"},
		{"bad search origin", "POST", "/amp/search", `{"query":"x","origin":"elsewhere"}`, 400, protocol.CodeInvalidRequest, "origin"},
		{"bad id", "GET", "/amp/records/..%2f..%2fetc", "", 400, protocol.CodeInvalidRequest, "id"},
		{"unknown", "GET", "/amp/records/lesson_00", "", 404, protocol.CodeUnknownLesson, "lesson_00"},
		{"unknown op", "POST", "/amp", `{"operation":"explode"}`, 400, protocol.CodeInvalidRequest, "explode"},
		{"no route", "GET", "/amp/nowhere", "", 404, protocol.CodeInvalidRequest, "no route"},
		{"no route at all", "GET", "/nowhere", "", 404, protocol.CodeInvalidRequest, "no route"},
		{"wrong method", "GET", "/amp/store", "", 405, protocol.CodeInvalidRequest, "use POST"},
		{"wrong method on a record", "POST", "/amp/records/lesson_00", "", 405, protocol.CodeInvalidRequest, "use GET or DELETE"},
		{"wrong method on identity", "POST", "/.well-known/mesh/identity", "", 405, protocol.CodeInvalidRequest, "use GET"},
		{"duplicate envelope key", "POST", "/amp/store", `{"record":{"type":"lesson","content":"a"},"record":{"type":"lesson","content":"b"}}`, 400, protocol.CodeInvalidRequest, "Duplicate key"},
		{"duplicate operation", "POST", "/amp", `{"operation":"status","operation":"store","record":{"type":"lesson"}}`, 400, protocol.CodeInvalidRequest, "Duplicate key"},
		{"envelope not utf-8", "POST", "/amp/store", "{\"record\":{\"type\":\"lesson\"},\"x\":\"\xff\"}", 400, protocol.CodeInvalidRequest, "UTF-8"},
		{"record not utf-8", "POST", "/amp/store", "{\"record\":{\"type\":\"lesson\",\"title\":\"\xc3\"}}", 400, protocol.CodeInvalidRequest, "UTF-8"},
		{"record 33 deep", "POST", "/amp/store", `{"record":{"type":"lesson","x":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}}`, 400, protocol.CodeInvalidRequest, "nested 33 levels deep, the limit is 32"},
		{"record 9998 deep", "POST", "/amp/store", `{"record":{"type":"lesson","x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}}`, 400, protocol.CodeInvalidRequest, "the limit is 32"},
		{"envelope too deep", "POST", "/amp/search", `{"query":"x","filters":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}`, 400, protocol.CodeInvalidRequest, "64 levels deep"},
		{"wrong method on store", "PUT", "/amp/store", "", 405, protocol.CodeInvalidRequest, "use POST"},
		{"wrong method on /amp", "GET", "/amp", "", 405, protocol.CodeInvalidRequest, "use POST"},
		{"too large", "POST", "/amp/store", `{"record":{"type":"lesson","content":"` + strings.Repeat("a", maxRequestBody) + `"}}`, 413, protocol.CodeTooLarge, "bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := c
			c.t = t
			code, m := c.do(tc.method, tc.path, tc.body)
			if code != tc.status || m["code"] != string(tc.code) || m["success"] != false || m["error"] != true {
				t.Fatalf("%d %v, want %d %s", code, m, tc.status, tc.code)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, tc.says) {
				t.Fatalf("message %q does not mention %q", msg, tc.says)
			}
		})
	}
	st, err := n.Status(context.Background())
	if err != nil || st.Total != 0 {
		t.Fatalf("bad requests changed the store: %+v %v", st, err)
	}
}

func TestAPIRefusesRebindingAndCrossOrigin(t *testing.T) {
	t.Parallel()
	_, c := startAPI(t)
	for _, tc := range []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"rebinding host", "/amp/status", []string{"Host", "evil.example:8765"}, 403},
		{"lan host", "/amp/status", []string{"Host", "192.168.1.5:8765"}, 403},
		{"cross origin", "/amp/status", []string{"Origin", "http://evil.example"}, 403},
		{"cross site fetch", "/amp/status", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same site fetch", "/amp/status", []string{"Sec-Fetch-Site", "same-site"}, 403},
		// The control API is guarded the same way, before its token is
		// even looked at.
		{"control rebinding", "/api/v1/info", []string{"Host", "evil.example:8765", "Authorization", "Bearer " + testToken}, 403},
		{"control cross origin", "/api/v1/info", []string{"Origin", "http://evil.example", "Authorization", "Bearer " + testToken}, 403},
		{"identity rebinding", "/.well-known/mesh/identity", []string{"Host", "evil.example"}, 403},
		{"localhost", "/amp/status", []string{"Host", "localhost:8765"}, 200},
		{"ipv6 loopback", "/amp/status", []string{"Host", "[::1]:8765"}, 200},
		{"same origin", "/amp/status", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c
			c.t = t
			hdr := tc.hdr
			if tc.name == "same origin" {
				hdr = []string{"Origin", c.base}
			}
			code, m := c.do("GET", tc.path, "", hdr...)
			if code != tc.want {
				t.Fatalf("%d %v, want %d", code, m, tc.want)
			}
			if code == 403 && (m["code"] != string(protocol.CodeInvalidRequest) || m["success"] != false) {
				t.Fatalf("refusal %v: want an INVALID_REQUEST error body", m)
			}
		})
	}
}

// TestControlAPIAndClient runs a node the way the daemon does (a repo, an
// API address) and drives it with the Client that DialRepo finds.
func TestControlAPIAndClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	n := offlineNode(t, node.Config{RepoDir: dir, APIAddr: "127.0.0.1:0"})
	c := apiClient{t: t, base: n.APIURL()}
	code, m := c.do("GET", "/api/v1/info", "")
	if code != 401 || m["code"] != string(protocol.CodeUnauthorized) {
		t.Fatalf("control API without token: %d %v", code, m)
	}
	code, m = c.do("POST", "/api/v1/publish", `{"id":"x","visibility":"public"}`, "Authorization", "Bearer wrong")
	if code != 401 || m["code"] != string(protocol.CodeUnauthorized) {
		t.Fatalf("control API with wrong token: %d %v", code, m)
	}
	if _, err := httpapi.NewClient(n.APIURL(), "wrong").Info(ctx); !errors.Is(err, protocol.ErrUnauthorized) {
		t.Fatalf("client with a wrong token: %v, want ErrUnauthorized", err)
	}
	// Unknown routes and methods of the control API answer JSON errors
	// too, behind the token.
	for _, tc := range []struct {
		method, path string
		status       int
	}{{"GET", "/api/v1/nowhere", 404}, {"GET", "/api/v1/publish", 405}, {"GET", "/api/v1/amp/nowhere", 404}} {
		code, m = c.do(tc.method, tc.path, "", "Authorization", "Bearer "+n.Token())
		if code != tc.status || m["code"] != string(protocol.CodeInvalidRequest) {
			t.Errorf("%s %s: %d %v, want %d INVALID_REQUEST", tc.method, tc.path, code, m, tc.status)
		}
	}
	cl, err := httpapi.DialRepo(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cl.Info(ctx)
	if err != nil || info.NodeID != n.ID().String() || info.API != n.APIURL() {
		t.Fatalf("info %+v %v", info, err)
	}
	id, created, err := cl.Put(ctx, &protocol.Lesson{Type: "reading", Content: "basement humidity", Extra: map[string]json.RawMessage{"humidity": json.RawMessage("64")}})
	if err != nil || !created {
		t.Fatal(err)
	}
	res, err := cl.Search(ctx, store.Query{Text: "humidity > 60"})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != id {
		t.Fatalf("search %+v %v", res, err)
	}
	if _, err := cl.Export(ctx, id); !errors.Is(err, protocol.ErrUnknownLesson) {
		t.Fatalf("export unpublished = %v", err)
	}
	sl, err := cl.Publish(ctx, id, api.PublishOptions{Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.Export(ctx, id)
	if err != nil || got.Signature.Sig != sl.Signature.Sig {
		t.Fatalf("export %v", err)
	}
	if err := protocol.Verify(got, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	code, m = c.do("GET", "/.well-known/mesh/identity", "")
	if code != 200 || m["nodeId"] != n.ID().String() {
		t.Fatalf("identity: %d %v", code, m)
	}
	b, _ := json.Marshal(m)
	doc, err := protocol.DecodeIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyIdentity(doc, protocol.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	ok, err := cl.Delete(ctx, id)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := cl.Export(ctx, id); err == nil {
		t.Fatal("publication survived the record's deletion")
	}
	// The daemon's repo tells the CLI where it is; a closed node does not
	// answer any more.
	n.Close()
	if _, err := httpapi.DialRepo(ctx, dir, ""); !errors.Is(err, httpapi.ErrNoDaemon) {
		t.Fatalf("dial a stopped daemon: %v, want ErrNoDaemon", err)
	}
}
