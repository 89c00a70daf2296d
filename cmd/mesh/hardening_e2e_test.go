package main

// Regression tests for issue 13 (hardening from an outside probe), each
// driven against a real daemon: the mesh binary, HTTP on loopback.

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

// token is the repo's API bearer token.
func token(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, httpapi.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ampDo sends an AMP request to the daemon with the repo's token (tok ""
// sends none) and returns the status and body.
func ampDo(t *testing.T, d *daemon, tok, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// loopbackHost is a libp2p host on loopback TCP with key.
func loopbackHost(t *testing.T, key ed25519.PrivateKey) host.Host {
	t.Helper()
	priv, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func signAs(t *testing.T, key ed25519.PrivateKey, id, title, content string) *protocol.SignedLesson {
	t.Helper()
	now := time.Now()
	sl, err := protocol.Sign(key, &protocol.Lesson{ID: id, Type: "lesson", Title: title, Content: content, CreatedAt: now.UnixMilli()},
		protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), Topics: []string{"rust"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// TestNestingBomb (issue 13 item 1): the AMP store refuses a record nested
// deeper than protocol.MaxRecordDepth with 400 naming the limit, and a sync
// page holding one bad record among good ones stores the good ones, and
// `mesh sync` shows the count and exits 1.
func TestNestingBomb(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "b")
	d := startDaemon(t, repo)
	tok := token(t, repo)
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, depth := range []int{protocol.MaxRecordDepth, 9997} {
		code, body := ampDo(t, d, tok, "POST", "/amp/store", `{"record":{"type":"lesson","title":"deep","x":`+nest(depth)+`}}`)
		if code != 400 || !strings.Contains(body, "the limit is 32") || !strings.Contains(body, "INVALID_REQUEST") {
			t.Fatalf("record %d+1 deep: %d %s", depth, code, body)
		}
	}
	code, body := ampDo(t, d, tok, "POST", "/amp/store", `{"record":{"type":"lesson","title":"ok","x":`+nest(protocol.MaxRecordDepth-1)+`}}`)
	if code != 200 {
		t.Fatalf("record %d deep: %d %s", protocol.MaxRecordDepth, code, body)
	}

	// A peer whose sync page holds a good lesson, a nesting bomb, and
	// another good lesson.
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	good1 := signAs(t, key, "good_1", "Borrow checker tips", "Prefer restructuring ownership over cloning")
	good2 := signAs(t, key, "good_2", "Cargo builds", "Never run parallel cargo builds on a small server")
	enc := func(sl *protocol.SignedLesson) string {
		b, err := sl.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bomb := strings.Replace(enc(signAs(t, key, "bomb", "bomb", "bomb")), `"lesson":{`, `"lesson":{"x":`+nest(9990)+`,`, 1)
	page := `{"type":"syncResponse","lessons":[` + enc(good1) + `,` + bomb + `,` + enc(good2) + `],"revocations":[],"checkpoint":"0000000000000003","hasMore":false}`
	h := loopbackHost(t, key)
	h.SetStreamHandler(protocol.ProtocolSync, func(s network.Stream) {
		defer s.Close()
		if _, err := frame.Read(bufio.NewReader(s), protocol.MaxSyncRequestSize); err != nil {
			s.Reset()
			return
		}
		frame.Write(s, []byte(page))
	})
	mustMesh(t, repo, "", "follow", "rust")
	mustMesh(t, repo, "", "trust", "add", h.ID().String(), "--level", "full")
	mustMesh(t, repo, "", "connect", h.Addrs()[0].String()+"/p2p/"+h.ID().String())
	r := mesh(t, repo, "", "sync")
	if r.code != 1 || !strings.Contains(r.stdout, "1 invalid") || !strings.Contains(r.stderr, "invalid and skipped") {
		t.Fatalf("mesh sync: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, q := range []string{"restructuring ownership", "parallel cargo builds"} {
		var res struct {
			Results []struct {
				Publisher string `json:"publisher"`
			} `json:"results"`
		}
		out := mustMesh(t, repo, "", "--json", "search", "--origin", "remote", q)
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 1 || res.Results[0].Publisher != h.ID().String() {
			t.Fatalf("the good lessons of the page were not all stored: search %q: %s %v", q, out, err)
		}
	}
}

// TestAMPNeedsToken (issue 13 item 3): another local user without the
// repo's token gets 401 UNAUTHORIZED from every AMP route and changes
// nothing; the CLI and MCP (which read the token) work; --api-open serves
// /amp/ without it and warns; a repo directory open to other users is
// tightened to 0700.
func TestAMPNeedsToken(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustMesh(t, repo, "", "init")
	if err := os.Chmod(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, repo)
	if fi, err := os.Stat(repo); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("repo mode after start: %v %v, want 0700", fi.Mode(), err)
	}
	if !strings.Contains(d.logs.String(), "tightened to 0700") {
		t.Fatalf("no warning about the repo's mode: %s", d.logs)
	}
	out := mustMesh(t, repo, "", "--json", "store", "--title", "secret", "--content", "my private note")
	var st struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(out), &st)
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/amp/records", ""},
		{"GET", "/amp/records/" + st.ID, ""},
		{"DELETE", "/amp/records/" + st.ID, ""},
		{"POST", "/amp/search", `{"query":"private"}`},
		{"POST", "/amp/store", `{"record":{"type":"lesson","title":"x"}}`},
		{"POST", "/amp", `{"operation":"get","id":"` + st.ID + `"}`},
		{"GET", "/amp/status", ""},
		{"GET", "/amp/nowhere", ""},
	} {
		for _, tok := range []string{"", "wrong-token"} {
			code, body := ampDo(t, d, tok, rq.method, rq.path, rq.body)
			if code != 401 || !strings.Contains(body, `"UNAUTHORIZED"`) || !strings.Contains(body, "api.token") {
				t.Fatalf("%s %s with token %q: %d %s", rq.method, rq.path, tok, code, body)
			}
		}
	}
	if code, body := ampDo(t, d, token(t, repo), "GET", "/amp/records/"+st.ID, ""); code != 200 || !strings.Contains(body, "my private note") {
		t.Fatalf("with the token: %d %s", code, body)
	}
	if out := mustMesh(t, repo, "", "get", st.ID); !strings.Contains(out, "my private note") {
		t.Fatalf("the CLI: %s", out)
	}
	cs, _ := mcpClient(t, repo)
	var got map[string]any
	mcpCall(t, cs, "amp_get", map[string]any{"id": st.ID}, &got)
	if !strings.Contains(fmt.Sprint(got), "my private note") {
		t.Fatalf("mesh mcp: %v", got)
	}
	d.stop(t)

	d = startDaemonWith(t, repo, "--api-open")
	if code, body := ampDo(t, d, "", "GET", "/amp/records/"+st.ID, ""); code != 200 {
		t.Fatalf("--api-open without a token: %d %s", code, body)
	}
	if code, _ := ampDo(t, d, "", "GET", "/api/v1/info", ""); code != 401 {
		t.Fatalf("--api-open opened the control API: %d", code)
	}
	if !strings.Contains(d.logs.String(), "api open") {
		t.Fatalf("--api-open without a warning: %s", d.logs)
	}
}
