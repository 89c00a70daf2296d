package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/nodetest"
)

// FuzzAMP sends arbitrary bodies to every AMP route of a real node and
// checks that the handler never panics, never answers 5xx, answers JSON,
// and that a request it refused changed nothing.
func FuzzAMP(f *testing.F) {
	for _, s := range []string{
		nodetest.AMPStoreLesson, nodetest.AMPStoreCheckpoint, nodetest.AMPSearch,
		`{"operation":"list","limit":-1}`, `{"operation":"get","id":"../x"}`,
		`{"record":{"type":"lesson","tags":[1]}}`, `{"query":"humidity > 60%"}`,
		`{"query":"\"unterminated phrase"}`, `{"query":"x","since":-5,"until":1e300}`,
		`[]`, `null`, `{"record":{"type":"lesson","expires_at":1.5}}`,
		`{"operation":"search","query":"x","origin":"remote"}`, `{"operation":"agent_status","agent":""}`,
		`{"operation":"delete","id":"nope"}`, `{"operation":"status"}`,
	} {
		f.Add(s)
	}
	n := offlineNode(f, node.Config{})
	h := httpapi.Handler(n, testToken)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/amp/store", "/amp/search", "/amp", "/api/v1/amp/store", "/api/v1/amp/search", "/api/v1/amp"} {
			before, err := n.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("POST %s %q: Content-Type %q: %s", path, body, ct, w.Body)
			}
			if w.Code != http.StatusOK {
				after, err := n.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if after.Total != before.Total {
					t.Fatalf("refused request %q changed the store: %d -> %d records", body, before.Total, after.Total)
				}
			}
		}
	})
}
