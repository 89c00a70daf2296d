package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAMP sends arbitrary bodies to every AMP route of a real node and
// checks that the node never panics, never answers 5xx, and that a request it
// refused changed nothing.
func FuzzAMP(f *testing.F) {
	for _, s := range []string{
		ampStoreLesson, ampStoreCheckpoint, ampSearch,
		`{"operation":"list","limit":-1}`, `{"operation":"get","id":"../x"}`,
		`{"record":{"type":"lesson","tags":[1]}}`, `{"query":"humidity > 60%"}`,
		`{"query":"\"unterminated phrase"}`, `{"query":"x","since":-5,"until":1e300}`,
		`[]`, `null`, `{"record":{"type":"lesson","expires_at":1.5}}`,
	} {
		f.Add(s)
	}
	n, err := New(context.Background(), Config{Offline: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	h := n.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/amp/store", "/amp/search", "/amp"} {
			before, err := n.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+path, strings.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
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
