package main

// Regression tests for issue 13 (hardening from an outside probe), each
// driven against a real daemon: the mesh binary, HTTP on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

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

// clientFrom is an HTTP client whose connections come from the loopback
// address src (127.0.0.2, say).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}}
}

// TestPublicAPISlowClients (issue 13 item 2): 300 connections from
// 127.0.0.1 that start a POST and never finish its body do not keep
// 127.0.0.2 from getting 200 from /v1/health and /v1/search. The
// directory allows 1000 requests a second per address, so its rate limit
// does not stop the 300 (the probe needed 15 s at 19 a second to get past
// the default): the request slots and the bounds per client must.
func TestPublicAPISlowClients(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "dir")
	public := freePort(t)
	startDaemonWith(t, repo, "--directory", "--directory-topic", "rust", "--public-api", public, "--public-rate", "1000")
	base := "http://" + public

	const slow = 300
	stop := make(chan struct{})
	done := make(chan struct{})
	var held atomic.Int64
	go func() {
		defer close(done)
		conns := make([]net.Conn, 0, slow)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		// Open them, and reopen what the server closes, until told to
		// stop (at most 20 rounds).
		for round := 0; round < 20; round++ {
			live := conns[:0]
			for _, c := range conns {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					c.Close()
					continue
				}
				live = append(live, c)
			}
			conns = live
			for len(conns) < slow {
				c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: time.Second}).Dial("tcp", public)
				if err != nil {
					break
				}
				c.Write([]byte("POST /v1/search HTTP/1.1\r\nHost: " + public + "\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"query\":"))
				conns = append(conns, c)
			}
			held.Store(int64(len(conns)))
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()

	hc := clientFrom("127.0.0.2")
	time.Sleep(time.Second) // the slow connections are in
	for i := 0; i < 40; i++ {
		resp, err := hc.Get(base + "/v1/health")
		if err != nil {
			t.Fatalf("health %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("health %d from 127.0.0.2 during the slow flood: %s", i, resp.Status)
		}
		resp, err = hc.Post(base+"/v1/search", "application/json", strings.NewReader(`{"query":"cargo build","limit":5}`))
		if err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("search %d from 127.0.0.2 during the slow flood: %s %s", i, resp.Status, body)
		}
		if _, err := protocol.VerifyResponse(bytes.TrimSpace(body), protocol.VerifyOptions{}); err != nil {
			t.Fatalf("search answer not signed: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // within the default 20 requests/s
	}
	t.Logf("slow connections held open by the flood at the end: %d of %d", held.Load(), slow)
}

// TestStrictEnvelope (issue 13 item 7): the AMP envelope is parsed as
// strictly as records (duplicate top-level keys and invalid UTF-8 are 400
// and store nothing), unknown AMP routes and wrong methods answer JSON
// errors, and the public API's 431 is signed.
func TestStrictEnvelope(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "dir")
	public := freePort(t)
	d := startDaemonWith(t, repo, "--directory", "--public-api", public)
	tok := token(t, repo)
	for _, tc := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/amp/store", `{"record":{"type":"lesson","title":"a"},"record":{"type":"lesson","title":"b"}}`, 400, "Duplicate key"},
		{"POST", "/amp", `{"operation":"status","operation":"store","record":{"type":"lesson","title":"c"}}`, 400, "Duplicate key"},
		{"POST", "/amp/store", "{\"record\":{\"type\":\"lesson\",\"title\":\"d\"},\"agent\":\"\xff\"}", 400, "UTF-8"},
		{"POST", "/amp/store", "{\"record\":{\"type\":\"lesson\",\"title\":\"\xc3(\"}}", 400, "UTF-8"},
		{"GET", "/amp/nowhere", "", 404, "no route"},
		{"PUT", "/amp/store", "", 405, "use POST"},
		{"PATCH", "/amp/records/x", "", 405, "use GET or DELETE"},
		{"GET", "/nowhere", "", 404, "no route"},
	} {
		code, body := ampDo(t, d, tok, tc.method, tc.path, tc.body)
		var e struct {
			Error   bool   `json:"error"`
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || code != tc.status || !e.Error || e.Code != "INVALID_REQUEST" || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s %s %.60q: %d %s (%v), want %d INVALID_REQUEST saying %q", tc.method, tc.path, tc.body, code, body, err, tc.status, tc.says)
		}
	}
	if code, body := ampDo(t, d, tok, "GET", "/amp/status", ""); code != 200 || !strings.Contains(body, `"total_records":0`) {
		t.Fatalf("the bad requests stored something: %d %s", code, body)
	}

	req, _ := http.NewRequest("GET", "http://"+public+"/v1/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 9<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Fatalf("9 KiB of headers: %s %s", resp.Status, body)
	}
	v, err := protocol.VerifyResponse(bytes.TrimSpace(body), protocol.VerifyOptions{})
	if err != nil || !strings.Contains(string(v.Body), "TOO_LARGE") {
		t.Fatalf("the 431 is not signed: %v %s", err, body)
	}
}

// TestMCPMalformedLine (issue 13 item 6): `mesh mcp` answers a line that is
// not JSON with a JSON-RPC -32700 error, and one that is JSON but no
// JSON-RPC message with -32600, and keeps serving the session: the calls
// around them get their answers.
func TestMCPMalformedLine(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustMesh(t, repo, "", "init")
	startDaemon(t, repo)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshBin, "--repo", repo, "mcp")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"amp_status","arguments":{}}}`,
		`{this is not json`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"amp_store","arguments":{"record":{"type":"lesson","title":"after the bad line"}}}}`,
		"\xff\xfe",
		`{"hello":"world"}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"amp_status","arguments":{}}}`,
	}
	go func() {
		for _, l := range lines {
			io.WriteString(stdin, l+"\n")
		}
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	answered := map[string]bool{}
	parseErrors, invalid := 0, 0
	for !(answered["2"] && answered["3"] && answered["4"] && parseErrors == 3 && invalid == 1) && sc.Scan() {
		var m struct {
			ID    json.RawMessage `json:"id"`
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("mesh mcp wrote a line that is not JSON: %q", sc.Bytes())
		}
		switch {
		case m.Error != nil && string(m.ID) == "null" && m.Error.Code == -32700:
			parseErrors++
		case m.Error != nil && string(m.ID) == "null" && m.Error.Code == -32600:
			invalid++
		case m.Error == nil && len(m.Result) > 0:
			answered[string(m.ID)] = true
			if string(m.ID) == "3" && strings.Contains(string(m.Result), `"isError":true`) {
				t.Fatalf("store after the bad line failed: %s", m.Result)
			}
		default:
			t.Fatalf("unexpected answer: %s", sc.Bytes())
		}
	}
	if !(answered["2"] && answered["3"] && answered["4"]) || parseErrors != 3 || invalid != 1 {
		t.Fatalf("answered %v, %d parse errors, %d invalid requests; stderr: %s", answered, parseErrors, invalid, stderr.String())
	}
}

// smallTmpfs mounts a tmpfs of size bytes for this test and returns its
// path. It needs root: it skips without it, except under CI=true, where it
// fails.
func smallTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a tmpfs and needs root; CI runs as root")
		}
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// freeOn is the free space of the file system of dir.
func freeOn(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill writes a file of n bytes (or until the disk is full, if n < 0) and
// returns its path.
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0x5a}, 1<<20)
	for written := int64(0); n < 0 || written < n; written += int64(len(buf)) {
		if n >= 0 && n-written < int64(len(buf)) {
			buf = buf[:n-written]
		}
		if _, err := f.Write(buf); err != nil {
			if n < 0 {
				return // full
			}
			t.Fatal(err)
		}
	}
}

// TestFullDisk (issue 13 item 4): on a small tmpfs, a daemon refuses writes
// with 507 INSUFFICIENT_STORAGE (saying how much is free) before the disk
// is full, and also once it is full to the last byte; it keeps answering
// reads and does not die; writes resume when space returns; and every
// acknowledged write is there after kill -9 and a restart.
func TestFullDisk(t *testing.T) {
	mnt := smallTmpfs(t, 160<<20)
	repo := filepath.Join(mnt, "repo")
	d := startDaemon(t, repo)
	tok := token(t, repo)
	var acked []string
	store := func(i int) (int, string) {
		code, body := ampDo(t, d, tok, "POST", "/amp/store", fmt.Sprintf(`{"record":{"type":"lesson","title":"full disk %d","content":"marker%d `+strings.Repeat("x", 2000)+`"}}`, i, i))
		if code == 200 {
			var st struct {
				ID string `json:"id"`
			}
			json.Unmarshal([]byte(body), &st)
			acked = append(acked, st.ID)
		}
		return code, body
	}
	for i := 0; i < 20; i++ {
		if code, body := store(i); code != 200 {
			t.Fatalf("store %d: %d %s", i, code, body)
		}
	}

	// Leave 40 MiB free: under the 64 MiB reserve.
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, freeOn(t, mnt)-40<<20)
	code, body := store(100)
	if code != 507 || !strings.Contains(body, "INSUFFICIENT_STORAGE") || !strings.Contains(body, "MiB free") {
		t.Fatalf("store with 40 MiB free: %d %s", code, body)
	}
	// Full to the last byte.
	fill(t, filler+"2", -1)
	for i := 0; i < 5; i++ {
		if code, body := store(200 + i); code != 507 {
			t.Fatalf("store on a full disk: %d %s", code, body)
		}
	}
	select {
	case <-d.done:
		t.Fatalf("the daemon died on a full disk: %s", d.logs)
	default:
	}
	if code, body := ampDo(t, d, tok, "GET", "/amp/records/"+acked[0], ""); code != 200 {
		t.Fatalf("read on a full disk: %d %s", code, body)
	}
	if code, body := ampDo(t, d, tok, "POST", "/amp/search", `{"query":"marker3"}`); code != 200 || !strings.Contains(body, acked[3]) {
		t.Fatalf("search on a full disk: %d %s", code, body)
	}
	if out := mustMesh(t, repo, "", "status"); !strings.Contains(out, "records: 20") {
		t.Fatalf("status on a full disk: %s", out)
	}

	// Space returns: writes resume by themselves.
	os.Remove(filler)
	os.Remove(filler + "2")
	if code, body := store(300); code != 200 {
		t.Fatalf("store after space returned: %d %s", code, body)
	}

	d.kill()
	d = startDaemon(t, repo)
	tok = token(t, repo)
	for _, id := range acked {
		if code, body := ampDo(t, d, tok, "GET", "/amp/records/"+id, ""); code != 200 {
			t.Fatalf("acknowledged record %s lost after kill -9: %d %s", id, code, body)
		}
	}
}

// TestDamagedStorage (issue 13 item 5): a table (.sst) with flipped bytes
// makes start-up say in one paragraph which file is damaged, what may be
// lost and what to do, not print pebble's stack trace; mesh repair
// salvages the rest and mesh status shows it; a write-ahead log damaged in
// the middle is told at start-up (pebble alone drops the writes after the
// damage silently), and mesh status shows that too.
func TestDamagedStorage(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	d := startDaemon(t, repo)
	tok := token(t, repo)
	for i := 0; i < 300; i++ {
		if code, body := ampDo(t, d, tok, "POST", "/amp/store", fmt.Sprintf(`{"record":{"type":"lesson","title":"t%d","content":"marker%d %s"}}`, i, i, strings.Repeat("bulk text ", 200))); code != 200 {
			t.Fatalf("store: %d %s", code, body)
		}
	}
	d.stop(t)
	mustMesh(t, repo, "", "status") // the log becomes a table
	ssts, _ := filepath.Glob(filepath.Join(repo, "datastore", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table in the datastore")
	}
	fi, _ := os.Stat(ssts[0])
	f, _ := os.OpenFile(ssts[0], os.O_RDWR, 0)
	f.WriteAt(bytes.Repeat([]byte{0xa5}, 64), fi.Size()/2)
	f.Close()

	r := mesh(t, repo, "", "status")
	if r.code != 1 || !strings.Contains(r.stderr, filepath.Base(ssts[0])) || !strings.Contains(r.stderr, "mesh repair") || !strings.Contains(r.stderr, "backup") ||
		strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || strings.Contains(r.stderr, "stack trace") {
		t.Fatalf("status of a damaged repo: exit %d\n%s", r.code, r.stderr)
	}
	// The daemon says the same and stops.
	dd := exec.Command(meshBin, "--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", "/ip4/127.0.0.1/tcp/0")
	out, err := dd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Base(ssts[0])) || strings.Contains(string(out), "stack trace") || strings.Contains(string(out), "goroutine") {
		t.Fatalf("daemon on a damaged repo: %v\n%s", err, out)
	}

	out2 := mustMesh(t, repo, "", "repair")
	if !strings.Contains(out2, "copied") || !strings.Contains(out2, "lost:") {
		t.Fatalf("repair: %s", out2)
	}
	st := mustMesh(t, repo, "", "status")
	if !strings.Contains(st, "last recovery: ") || !strings.Contains(st, "mesh repair") {
		t.Fatalf("status after repair: %s", st)
	}
	d = startDaemon(t, repo)

	// A damaged write-ahead log: 60 more writes, kill -9, bytes flipped in
	// the middle of the log that holds them.
	for i := 0; i < 60; i++ {
		if code, body := ampDo(t, d, tok, "POST", "/amp/store", fmt.Sprintf(`{"record":{"type":"lesson","title":"w%d","content":"walmarker%d %s"}}`, i, i, strings.Repeat("more text ", 60))); code != 200 {
			t.Fatalf("store: %d %s", code, body)
		}
	}
	d.kill()
	var wal string
	var size int64
	logs, _ := filepath.Glob(filepath.Join(repo, "datastore", "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > size {
			wal, size = l, fi.Size()
		}
	}
	f, _ = os.OpenFile(wal, os.O_RDWR, 0)
	f.WriteAt(bytes.Repeat([]byte{0xa5}, 16), size/2)
	f.Close()
	d = startDaemon(t, repo)
	if !strings.Contains(d.logs.String(), "write-ahead log "+filepath.Base(wal)) || !strings.Contains(d.logs.String(), "lost") {
		t.Fatalf("the daemon did not tell the damaged log: %s", d.logs)
	}
	st = mustMesh(t, repo, "", "status")
	if !strings.Contains(st, "last recovery: ") || !strings.Contains(st, filepath.Base(wal)) {
		t.Fatalf("status after a damaged log: %s", st)
	}
}

// TestSmallerHardening (issue 13 item 8): a record's type cannot change by
// upsert; the API's 401 carries its own code; mesh verify takes
// revocation files and a UTF-8 BOM and names the size limit; an unknown
// key in config.json is an error naming it; a flood is refused with
// signed 429s that are not signed once per request.
func TestSmallerHardening(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	public := freePort(t)
	d := startDaemonWith(t, repo, "--directory", "--public-api", public)
	tok := token(t, repo)

	if code, body := ampDo(t, d, tok, "POST", "/amp/store", `{"record":{"id":"reading_1","type":"reading","content":"basement","humidity":64}}`); code != 200 {
		t.Fatalf("store reading: %d %s", code, body)
	}
	code, body := ampDo(t, d, tok, "POST", "/amp/store", `{"record":{"id":"reading_1","type":"lesson","content":"now a lesson?"}}`)
	if code != 400 || !strings.Contains(body, "INVALID_REQUEST") || !strings.Contains(body, `\"reading\"`) || !strings.Contains(body, "type cannot change") {
		t.Fatalf("type change: %d %s", code, body)
	}
	if code, body := ampDo(t, d, tok, "GET", "/amp/records/reading_1", ""); code != 200 || !strings.Contains(body, `"type":"reading"`) || !strings.Contains(body, "basement") {
		t.Fatalf("the reading after a refused type change: %d %s", code, body)
	}
	if code, body := ampDo(t, d, "", "GET", "/api/v1/info", ""); code != 401 || !strings.Contains(body, `"code":"UNAUTHORIZED"`) {
		t.Fatalf("control API without a token: %d %s", code, body)
	}

	// mesh verify: a revocation file, a BOM, the size limit.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	rev, err := protocol.SignRevocation(key, "lesson_1", "outdated", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := json.Marshal(rev)
	dir := t.TempDir()
	revFile := filepath.Join(dir, "rev.json")
	os.WriteFile(revFile, append([]byte("\xef\xbb\xbf"), rb...), 0o644)
	if out := mustMesh(t, repo, "", "verify", revFile); !strings.Contains(out, "✓ Signature valid") || !strings.Contains(out, "Revocation of lesson_1@") {
		t.Fatalf("verify a revocation: %s", out)
	}
	bad := strings.Replace(string(rb), "outdated", "incorrect", 1)
	os.WriteFile(revFile, []byte(bad), 0o644)
	if r := mesh(t, repo, "", "verify", revFile); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "invalid") {
		t.Fatalf("verify a tampered revocation: %+v", r)
	}
	sl := signAs(t, key, "lesson_2", "BOM", "saved by an editor with a BOM")
	sb, _ := sl.Encode()
	slFile := filepath.Join(dir, "lesson.json")
	os.WriteFile(slFile, append([]byte("\xef\xbb\xbf"), sb...), 0o644)
	if out := mustMesh(t, repo, "", "verify", slFile); !strings.Contains(out, "✓ Signature valid") {
		t.Fatalf("verify with a BOM: %s", out)
	}
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, bytes.Repeat([]byte(" "), 1<<20), 0o644)
	if r := mesh(t, repo, "", "verify", big); r.code == 0 || !strings.Contains(r.stderr, fmt.Sprint(max(protocol.MaxSignedLessonSize, protocol.MaxEncryptedLessonSize))) || strings.Contains(r.stderr, fmt.Sprint(1<<20)) {
		t.Fatalf("verify a 1 MiB file: %+v", r)
	}

	// A flood from one address: 429s, each signed, not each signed anew.
	hc := clientFrom("127.0.0.3")
	bodies := map[string]bool{}
	refused := 0
	for i := 0; i < 300; i++ {
		resp, err := hc.Get("http://" + public + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 429 {
			continue
		}
		refused++
		if !bodies[string(b)] {
			if _, err := protocol.VerifyResponse(bytes.TrimSpace(b), protocol.VerifyOptions{}); err != nil {
				t.Fatalf("a 429 not signed: %v %s", err, b)
			}
			bodies[string(b)] = true
		}
	}
	if refused < 200 || len(bodies)*20 > refused {
		t.Fatalf("%d refused with %d distinct signed bodies: want most refused, with a signature reused", refused, len(bodies))
	}
	d.stop(t)

	// config.json with a misspelt key.
	cfg, _ := os.ReadFile(filepath.Join(repo, "config.json"))
	os.WriteFile(filepath.Join(repo, "config.json"), bytes.Replace(cfg, []byte(`"bootstrap"`), []byte(`"bootstraps"`), 1), 0o600)
	r := mesh(t, repo, "", "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", "/ip4/127.0.0.1/tcp/0")
	if r.code == 0 || !strings.Contains(r.stderr, `unknown key "bootstraps"`) {
		t.Fatalf("daemon with a misspelt config key: %+v", r)
	}
}

// rssMB is the resident memory of process pid, in MiB.
func rssMB(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return kb / 1024
		}
	}
	return -1
}

// TestConnectionFlood (issue 13 item 9): 2,000 fresh identities dial a
// daemon from 64 loopback addresses and hold what they get, while a peer
// it trusts fully (seen before at its address) connects and receives a
// publication. Each address holds at most 8 connections; the trusted peer
// gets in through the resource manager's allowlist though every inbound
// slot is taken. The daemon's RSS before, during and after is logged.
func TestConnectionFlood(t *testing.T) {
	const flood, addrs, concurrency = 2000, 64, 64 // 40 more from one address first
	rd, rt := filepath.Join(t.TempDir(), "d"), filepath.Join(t.TempDir(), "t")
	d := startDaemonWith(t, rd, "--topic", "rust")
	tr := startDaemonWith(t, rt, "--listen", "/ip4/127.0.0.2/tcp/0", "--topic", "rust")
	var idd, idt struct {
		NodeID string   `json:"nodeId"`
		Addrs  []string `json:"addrs"`
	}
	json.Unmarshal([]byte(mustMesh(t, rd, "", "--json", "id")), &idd)
	json.Unmarshal([]byte(mustMesh(t, rt, "", "--json", "id")), &idt)
	if len(idd.Addrs) == 0 || len(idt.Addrs) == 0 {
		t.Fatalf("ids: %+v %+v", idd, idt)
	}
	mustMesh(t, rd, "", "trust", "add", idt.NodeID, "--level", "full")
	mustMesh(t, rt, "", "trust", "add", idd.NodeID, "--level", "full")
	mustMesh(t, rt, "", "connect", idd.Addrs[0]) // d sees t at 127.0.0.2
	tr.stop(t)

	before := rssMB(t, d.cmd.Process.Pid)
	target, err := peer.AddrInfoFromString(idd.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hosts := make(chan host.Host, flood+40)
	defer func() {
		close(hosts)
		for h := range hosts {
			h.Close()
		}
	}()
	// One address holds at most 8 connections (libp2p leaves loopback
	// unlimited; the node does not).
	var one atomic.Int64
	var owg sync.WaitGroup
	for i := 0; i < 40; i++ {
		owg.Add(1)
		go func() {
			defer owg.Done()
			h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.2.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
				libp2p.DisableRelay(), libp2p.DisableMetrics(), libp2p.ResourceManager(&network.NullResourceManager{}))
			if err != nil {
				return
			}
			hosts <- h
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			defer dcancel()
			if h.Connect(dctx, *target) == nil {
				one.Add(1)
			}
		}()
	}
	owg.Wait()
	if one.Load() > 8 {
		t.Fatalf("40 identities from one address: %d connected, want at most 8", one.Load())
	}

	var connected, refused atomic.Int64
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := 0; i < flood && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := libp2p.New(libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/127.0.1.%d/tcp/0", 1+i%addrs)),
				libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(), libp2p.DisableMetrics(),
				libp2p.ResourceManager(&network.NullResourceManager{}))
			if err != nil {
				return
			}
			hosts <- h
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			defer dcancel()
			if err := h.Connect(dctx, *target); err != nil {
				refused.Add(1)
			} else {
				connected.Add(1)
			}
		}(i)
	}
	wg.Wait()
	during := rssMB(t, d.cmd.Process.Pid)
	t.Logf("flood: %d identities from %d addresses: %d connected, %d refused", flood, addrs, connected.Load(), refused.Load())

	// The trusted peer comes back while the flood holds its connections.
	tr = startDaemonWith(t, rt, "--listen", "/ip4/127.0.0.2/tcp/0", "--topic", "rust", "--bootstrap", idd.Addrs[0])
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(mustMesh(t, rt, "", "peers"), idd.NodeID) {
		if time.Now().After(deadline) {
			t.Fatalf("the trusted peer could not connect during the flood: %s", tr.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var st struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(mustMesh(t, rd, "", "--json", "store", "--title", "Flood survivor", "--content", "published while two thousand identities knock")), &st)
	mustMesh(t, rd, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
	for {
		var res struct {
			Results []struct {
				Publisher string `json:"publisher"`
			} `json:"results"`
		}
		json.Unmarshal([]byte(mustMesh(t, rt, "", "--json", "search", "--origin", "remote", "two thousand identities")), &res)
		if len(res.Results) == 1 && res.Results[0].Publisher == idd.NodeID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the trusted peer never received the publication during the flood")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	close(hosts)
	for h := range hosts {
		h.Close()
	}
	hosts = make(chan host.Host)
	time.Sleep(2 * time.Second)
	after := rssMB(t, d.cmd.Process.Pid)
	t.Logf("daemon RSS: before %.1f MiB, during %.1f MiB, after %.1f MiB", before, during, after)
	if connected.Load() > 8*addrs {
		t.Fatalf("%d flood connections held: more than %d per address", connected.Load(), 8)
	}
}
