package directory_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// TestPublicSearchPage: the directory's HTML search page shows a public
// lesson with its publisher and checked signature, escapes what the
// lesson and the query carry, never shows a private record, holds no
// form that posts, and answers an over-long query with a message.
func TestPublicSearchPage(t *testing.T) {
	t.Parallel()
	_, nodes := nodetest.Mock(t, 1, 0, node.Config{Directory: directory.Config{PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	n := nodes[0]
	pub := nodetest.Publish(t, n, "Quagga <script>alert(1)</script>", "a quagga is an extinct zebra", protocol.VisibilityPublic)
	if _, _, err := n.Put(context.Background(), &protocol.Lesson{Type: "lesson", Title: "quagga secret", Content: "private quagga notes"}); err != nil {
		t.Fatal(err)
	}
	get := func(q string) (int, string) {
		t.Helper()
		u := publicURL(n) + "/"
		if q != "" {
			u += "?q=" + url.QueryEscape(q)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("content type %q", ct)
		}
		return resp.StatusCode, string(b)
	}
	code, page := get("")
	if code != 200 || !strings.Contains(page, `role="search"`) || strings.Contains(page, `id="summary"`) {
		t.Fatalf("the empty page: %d\n%s", code, page)
	}
	code, page = get(`quagga`)
	if code != 200 {
		t.Fatalf("search: %d", code)
	}
	for _, want := range []string{`data-key="` + pub.Key() + `"`, "✓ signature valid", pub.Signature.NodeID, "&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the results lack %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "private quagga", `method="post"`, `method="POST"`} {
		if strings.Contains(page, bad) {
			t.Errorf("the results hold %q", bad)
		}
	}
	if _, page = get(`"<b>zebra</b>"`); strings.Contains(page, "<b>") || !strings.Contains(page, "&lt;b&gt;") {
		t.Errorf("the query is not escaped on the page")
	}
	code, page = get(strings.Repeat("q", protocol.MaxSearchQueryLength+1))
	if code != 200 || !strings.Contains(page, "too long") {
		t.Fatalf("an over-long query: %d", code)
	}
}
