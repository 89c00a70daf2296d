package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/meshprotocol/mesh/internal/interop"
	"github.com/meshprotocol/mesh/node/httpapi"
)

// meshBin is the mesh binary built once for the end-to-end tests.
var meshBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshBin = filepath.Join(dir, "mesh")
	out, err := exec.Command("go", "build", "-o", meshBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mesh: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// mesh runs the CLI on repo with stdin.
func mesh(t *testing.T, repo, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshBin, append([]string{"--repo", repo}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{out.String(), errb.String(), code}
}

func mustMesh(t *testing.T, repo, stdin string, args ...string) string {
	t.Helper()
	r := mesh(t, repo, stdin, args...)
	if r.code != 0 {
		t.Fatalf("mesh %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

type daemon struct {
	cmd  *exec.Cmd
	api  string
	repo string
	logs *bytes.Buffer
	done chan struct{}
}

// bearer adds the repo's API token to every request: the AMP routes need
// it (unless the daemon runs with --api-open).
type bearer struct{ repo string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(filepath.Join(b.repo, httpapi.TokenFile))
	if err == nil {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// client is an HTTP client for the daemon's API that sends the repo's
// token.
func (d *daemon) client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: bearer{d.repo}}
}

// startDaemon runs `mesh daemon` on repo, on loopback only (TCP and QUIC),
// and waits until its API answers.
func startDaemon(t *testing.T, repo string) *daemon {
	t.Helper()
	return startDaemonWith(t, repo, "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
}

// startDaemonWith runs `mesh daemon` on repo, listening on loopback TCP
// plus whatever the extra daemon flags add, and waits until its API answers.
func startDaemonWith(t *testing.T, repo string, extra ...string) *daemon {
	t.Helper()
	os.Remove(filepath.Join(repo, httpapi.APIFile))
	d := &daemon{repo: repo, logs: &bytes.Buffer{}, done: make(chan struct{})}
	args := append([]string{"--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap",
		"--listen", "/ip4/127.0.0.1/tcp/0"}, extra...)
	d.cmd = exec.Command(meshBin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			t.Fatalf("daemon exited: %s", d.logs)
		default:
		}
		if b, err := os.ReadFile(filepath.Join(repo, httpapi.APIFile)); err == nil {
			d.api = strings.TrimSpace(string(b))
			if resp, err := d.client(10 * time.Second).Get(d.api + "/amp/status"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return d
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon did not come up: %s", d.logs)
	return nil
}

func (d *daemon) kill() {
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
}

func (d *daemon) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM: %s", d.logs)
	}
}

func TestCLIEndToEnd(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	out := mustMesh(t, repo, "", "init")
	if !strings.Contains(out, "node ID: 12D3KooW") {
		t.Fatalf("init: %s", out)
	}
	d := startDaemon(t, repo)

	var st struct {
		ID      string `json:"id"`
		Created bool   `json:"created"`
	}
	out = mustMesh(t, repo, "", "--json", "store", "--type", "lesson", "--title", "Cargo parallel builds crash small servers",
		"--content", "Never run several cargo builds in parallel on a small VPS; the linker runs out of memory.", "--tags", "rust,cargo")
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.Created || !strings.HasPrefix(st.ID, "lesson_") {
		t.Fatalf("store --json: %s (%v)", out, err)
	}
	id := st.ID
	mustMesh(t, repo, `{"type":"checkpoint","agent":"radarr","working_on":"Debugging auth","state":{"blockers":["no API key"]}}`, "store", "-f", "-")

	out = mustMesh(t, repo, "", "search", "cargo", "parallel", "build", "crashes")
	if !strings.Contains(out, id) {
		t.Fatalf("search: %s", out)
	}
	out = mustMesh(t, repo, "", "--json", "list", "--type", "checkpoint")
	if !strings.Contains(out, `"total": 1`) || !strings.Contains(out, "radarr") {
		t.Fatalf("list: %s", out)
	}
	out = mustMesh(t, repo, "", "agent-status", "radarr")
	if !strings.Contains(out, "radarr: blocked") {
		t.Fatalf("agent-status: %s", out)
	}
	out = mustMesh(t, repo, "", "status")
	if !strings.Contains(out, "records: 2") {
		t.Fatalf("status: %s", out)
	}
	out = mustMesh(t, repo, "", "id")
	if !strings.Contains(out, "fingerprint:") || !strings.Contains(out, "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("id: %s", out)
	}

	if r := mesh(t, repo, "", "export", id); r.code != 1 || !strings.Contains(r.stderr, "not published") {
		t.Fatalf("export of unpublished: %+v", r)
	}
	mustMesh(t, repo, "", "publish", id, "--visibility", "public", "--topic", "rust")
	signed := mustMesh(t, repo, "", "export", id)
	file := filepath.Join(t.TempDir(), "lesson.json")
	os.WriteFile(file, []byte(signed), 0o644)
	out = mustMesh(t, repo, "", "verify", file)
	for _, want := range []string{"✓ Signature valid (ed25519)", "✓ Author: 12D3KooW", "fingerprint: ", "✓ Timestamp: "} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify output lacks %q:\n%s", want, out)
		}
	}
	// An independent RFC 8785 + Ed25519 implementation accepts the export.
	t.Run("independent verifier", func(t *testing.T) { verifyIndependently(t, signed) })

	// The same file with one word changed must fail, with exit code 1.
	tampered := strings.Replace(signed, "small VPS", "large VPS", 1)
	if r := mesh(t, repo, tampered, "verify", "-"); r.code != 1 || !strings.Contains(r.stdout, "✗ Signature invalid") {
		t.Fatalf("verify tampered: %+v", r)
	}

	// Usage errors exit 2; failures exit 1.
	if r := mesh(t, repo, "", "get"); r.code != 2 {
		t.Fatalf("get without id: %+v", r)
	}
	if r := mesh(t, repo, "", "publish", id, "--visibility", "private"); r.code != 2 {
		t.Fatalf("publish private: %+v", r)
	}
	if r := mesh(t, repo, "", "get", "lesson_0000"); r.code != 1 {
		t.Fatalf("get unknown: %+v", r)
	}

	// A second daemon on the same repo is refused, naming the pid.
	r := mesh(t, repo, "", "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", "/ip4/127.0.0.1/tcp/0")
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("locked by pid %d", d.cmd.Process.Pid)) {
		t.Fatalf("second daemon: %+v", r)
	}

	// With the daemon stopped, the CLI opens the repo itself.
	d.stop(t)
	out = mustMesh(t, repo, "", "get", id)
	if !strings.Contains(out, "Cargo parallel builds") || !strings.Contains(out, "public") {
		t.Fatalf("offline get: %s", out)
	}
	out = mustMesh(t, repo, "", "--json", "export", id)
	if !strings.Contains(out, `"sig"`) {
		t.Fatalf("offline export: %s", out)
	}
}

// TestKill9LosesNothing kills the daemon with SIGKILL in the middle of a
// burst of concurrent stores, restarts it, and checks that every store that
// was acknowledged is still there and searchable.
func TestKill9LosesNothing(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	d := startDaemon(t, repo)

	const workers = 8
	const maxPerWorker = 400
	var (
		mu    sync.Mutex
		acked = map[string]string{} // id -> unique word
		n     atomic.Int64
		wg    sync.WaitGroup
	)
	hc := d.client(10 * time.Second)
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < maxPerWorker; i++ {
				select {
				case <-stop:
					return
				default:
				}
				word := fmt.Sprintf("zq%dx%d", w, i)
				body := fmt.Sprintf(`{"operation":"store","record":{"type":"lesson","title":"burst %d %d","content":"marker %s survives kill"}}`, w, i, word)
				resp, err := hc.Post(d.api+"/amp/store", "application/json", strings.NewReader(body))
				if err != nil {
					return // the daemon is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var sr struct {
					Success bool   `json:"success"`
					ID      string `json:"id"`
				}
				if resp.StatusCode != 200 || json.Unmarshal(b, &sr) != nil || !sr.Success {
					return
				}
				mu.Lock()
				acked[sr.ID] = word
				mu.Unlock()
				n.Add(1)
			}
		}(w)
	}
	// Kill once a good number of writes were acknowledged, mid-burst.
	deadline := time.Now().Add(60 * time.Second)
	for n.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	d.kill()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no store was acknowledged before the kill: %s", d.logs)
	}
	t.Logf("%d stores acknowledged before kill -9", len(acked))

	d2 := startDaemon(t, repo)
	for id, word := range acked {
		resp, err := hc.Get(d2.api + "/amp/records/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("acknowledged record %s lost after kill -9 (%d)", id, resp.StatusCode)
		}
		resp, err = hc.Post(d2.api+"/amp/search", "application/json", strings.NewReader(`{"query":"`+word+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var sr struct {
			Results []struct {
				ID string `json:"id"`
			} `json:"results"`
		}
		json.NewDecoder(resp.Body).Decode(&sr)
		resp.Body.Close()
		if len(sr.Results) != 1 || sr.Results[0].ID != id {
			t.Fatalf("acknowledged record %s not found by search for %q after kill -9: %+v", id, word, sr)
		}
	}
}

// verifyIndependently checks a SignedLesson with the Node.js verifier in
// protocol/testdata/interop (npm canonicalize + node's Ed25519), which shares
// no code with ours. It skips when node or its modules are missing, except
// under CI=true, where that is a failure.
func verifyIndependently(t *testing.T, signed string) {
	t.Helper()
	nodeBin, dir := interop.Verifier(t)
	cmd := exec.Command(nodeBin, "verify.mjs", "--stdin", "--kind", "signedLesson")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(signed)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the independent verifier rejects mesh export's output: %v\n%s", err, out)
	}
	// And it must reject a tampered copy, or it proves nothing.
	cmd = exec.Command(nodeBin, "verify.mjs", "--stdin", "--kind", "signedLesson")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(strings.Replace(signed, "small VPS", "large VPS", 1))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("the independent verifier accepts a tampered lesson:\n%s", out)
	}
}
