package directory_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// newNet is an empty mocknet for this test, closed when it ends.
func newNet(t *testing.T) *nodetest.Net {
	t.Helper()
	m, _ := nodetest.Mock(t, 0, 0, node.Config{})
	return m
}

// newDirectory starts a directory node on m with its public API on
// loopback.
func newDirectory(t *testing.T, m *nodetest.Net, topics ...string) *node.Node {
	t.Helper()
	return nodetest.MockNode(t, m, node.Config{Directory: directory.Config{
		Enabled: true, Topics: topics, PublicAPI: "127.0.0.1:0", Contact: "ops@example.org", RateLimit: 1000,
	}})
}

// publicURL is the base URL of n's public API.
func publicURL(n *node.Node) string { return n.Directory().PublicURL() }

// noRedirects is an HTTP client that reports a redirect rather than
// following it: the public API never redirects, and a redirect's body is
// not signed.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// call makes one public API request and verifies the signed answer.
func call(t *testing.T, method, url string, body []byte) (int, *protocol.VerifiedResponse, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.VerifyResponse(bytes.TrimSpace(raw), protocol.VerifyOptions{})
	if err != nil {
		t.Fatalf("%s %s: %d answer does not verify: %v\n%s", method, url, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, v, raw
}

// publicSearch runs POST /v1/search on d and returns the verified answer.
func publicSearch(t *testing.T, d *node.Node, query string) *protocol.DirectorySearchResponse {
	t.Helper()
	b, _ := json.Marshal(protocol.DirectorySearchRequest{Query: query})
	status, v, raw := call(t, http.MethodPost, publicURL(d)+"/v1/search", b)
	if status != http.StatusOK {
		t.Fatalf("search %q: %d %s", query, status, raw)
	}
	if v.Directory.NodeID != d.ID().String() {
		t.Fatalf("signed by %s, want %s", v.Directory.NodeID, d.ID())
	}
	r, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resultKeys(r *protocol.DirectorySearchResponse) []string {
	var out []string
	for _, x := range r.Results {
		out = append(out, x.SignedLesson.Key())
	}
	return out
}

// dhtNode starts a node on m whose DHT runs in mode and knows only boot.
func dhtNode(t *testing.T, m *nodetest.Net, mode string, boot *node.Node, cfg node.Config) *node.Node {
	t.Helper()
	cfg.DHT.Mode = mode
	if boot != nil {
		cfg.Bootstrap = []string{boot.Addrs()[0].String()}
	}
	return nodetest.MockNode(t, m, cfg)
}
