package directory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/internal/interop"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// httpVerifier returns the node binary and the interop directory, or skips
// (see interop.Verifier).
func httpVerifier(t *testing.T) (nodeBin, dir string) {
	t.Helper()
	return interop.Verifier(t)
}

// runHTTPVerifier runs verify-http.mjs on body and reports its output and
// whether it exited 0.
func runHTTPVerifier(t *testing.T, nodeBin, dir string, body []byte, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(nodeBin, append([]string{"verify-http.mjs"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running node: %v", err)
		}
		if cmd.ProcessState.ExitCode() == 2 {
			t.Fatalf("verify-http.mjs usage error: %s", out)
		}
	}
	return string(out), err == nil
}

// TestInteropHTTPResponse fetches real answers from a real directory on
// loopback and has the independent verifier check them, and tampered
// copies of them.
func TestInteropHTTPResponse(t *testing.T) {
	t.Parallel()
	nodeBin, dir := httpVerifier(t)
	ctx := context.Background()
	m := newNet(t)
	d := newDirectory(t, m)
	key := nodetest.Key(d)
	p := nodetest.MockNode(t, m, node.Config{})
	a := nodetest.Publish(t, p, "Flaky CI", "retry the network step, not the whole job \"quoted\" <&> é 🦀", protocol.VisibilityPublic)
	b := nodetest.Publish(t, p, "Flaky CI again", "pin the runner image; retry the network step", protocol.VisibilityPublic)
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the directory indexes both lessons", func() bool { return nodetest.HasRemote(d, a.Key()) && nodetest.HasRemote(d, b.Key()) })
	if _, err := p.Revoke(ctx, b.Lesson.ID, protocol.ReasonOutdated); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), nil); err != nil { // the directory syncs the revocation
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the directory applies the revocation", func() bool { return d.Store().Revoked(ctx, b.Key()) })
	nodetest.Publish(t, p, "Second", "retry the network step once more", protocol.VisibilityPublic)

	base := publicURL(d)
	fetch := func(method, path, body string) []byte {
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		} else {
			rd = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, base+path, rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return buf.Bytes()
	}
	search := fetch("POST", "/v1/search", `{"query":"retry network step"}`)
	if !bytes.Contains(search, []byte(a.Signature.Sig)) {
		t.Fatalf("search answer lacks %s: %s", a.Key(), search)
	}
	answers := map[string][]byte{
		"search":   search,
		"lesson":   fetch("GET", "/v1/lessons/"+a.Key(), ""),
		"revoked":  fetch("GET", "/v1/lessons/"+b.Key(), ""),
		"error":    fetch("POST", "/v1/search", `{"query":`),
		"policy":   fetch("GET", "/v1/policy", ""),
		"identity": fetch("GET", "/.well-known/mesh/identity", ""),
		"health":   fetch("GET", "/v1/health", ""),
	}
	for name, body := range answers {
		out, ok := runHTTPVerifier(t, nodeBin, dir, body, "--expect-node", d.ID().String())
		if !ok {
			t.Fatalf("%s: the independent verifier rejects a real answer:\n%s\n%s", name, out, body)
		}
		if name == "search" && strings.Count(out, "ok   results[") < 1 || name == "revoked" && !strings.Contains(out, "ok   revocation") {
			t.Fatalf("%s: lessons not checked:\n%s", name, out)
		}
	}
	if out, ok := runHTTPVerifier(t, nodeBin, dir, search, "--expect-node", p.ID().String()); ok {
		t.Fatalf("accepted an answer signed by another node than expected:\n%s", out)
	}

	// A year-old answer, validly signed: refused as a live answer, as
	// protocol.VerifyResponse does, accepted with --allow-old (kept as
	// proof); one from the future is refused either way.
	policyBody, err := protocol.VerifyResponse(bytes.TrimSpace(answers["policy"]), protocol.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pol map[string]json.RawMessage
	if err := json.Unmarshal(policyBody.Body, &pol); err != nil {
		t.Fatal(err)
	}
	delete(pol, protocol.ServedAtField)
	polRaw, _ := json.Marshal(pol)
	for _, c := range []struct {
		at        time.Time
		args      []string
		ok        bool
		whatInOut string
	}{
		{time.Now().AddDate(-1, 0, 0), nil, false, "older than"},
		{time.Now().AddDate(-1, 0, 0), []string{"--allow-old"}, true, "ok   response"},
		{time.Now().Add(time.Hour), []string{"--allow-old"}, false, "future"},
	} {
		signed, err := protocol.SignResponse(key, polRaw, c.at)
		if err != nil {
			t.Fatal(err)
		}
		if out, ok := runHTTPVerifier(t, nodeBin, dir, signed, c.args...); ok != c.ok || !strings.Contains(out, c.whatInOut) {
			t.Fatalf("an answer signed at %s %v: ok=%v, want %v:\n%s", c.at, c.args, ok, c.ok, out)
		}
	}
	// A duplicate member: JSON.parse keeps the last one and the signature
	// verifies over it, but the body reads two ways; refused, as in Go.
	dup := append([]byte(`{"query":"something else",`), bytes.TrimSpace(search)[1:]...)
	if _, err := protocol.VerifyResponse(dup, protocol.VerifyOptions{}); err == nil {
		t.Fatal("the Go verifier accepts a duplicate member")
	}
	if out, ok := runHTTPVerifier(t, nodeBin, dir, dup); ok || !strings.Contains(out, "duplicate member") {
		t.Fatalf("the independent verifier accepts a duplicate member:\n%s", out)
	}

	// Tampered: one character of a lesson changed; the response signature
	// catches it.
	tampered := bytes.Replace(search, []byte("not the whole job"), []byte("not the whole jab"), 1)
	if bytes.Equal(tampered, search) {
		t.Fatal("tampering changed nothing")
	}
	if out, ok := runHTTPVerifier(t, nodeBin, dir, tampered); ok || !strings.Contains(out, "FAIL response") {
		t.Fatalf("the independent verifier accepts a tampered answer:\n%s", out)
	}
	// Tampered and signed again by the directory itself (a lying
	// directory): the response verifies, the altered lesson does not.
	v, err := protocol.VerifyResponse(bytes.TrimSpace(search), protocol.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(v.Body, &body); err != nil {
		t.Fatal(err)
	}
	delete(body, protocol.ServedAtField)
	raw, _ := json.Marshal(body)
	raw = bytes.Replace(raw, []byte("not the whole job"), []byte("not the whole jab"), 1)
	resigned, err := protocol.SignResponse(key, raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out, ok := runHTTPVerifier(t, nodeBin, dir, resigned)
	if ok || !strings.Contains(out, "ok   response") || !strings.Contains(out, "FAIL results[") {
		t.Fatalf("a re-signed answer with an altered lesson:\n%s", out)
	}
}
