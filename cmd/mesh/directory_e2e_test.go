package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/protocol"
)

// startDaemonWith is startDaemon with extra daemon flags.
func startDaemonWith(t *testing.T, repo string, extra ...string) *daemon {
	t.Helper()
	os.Remove(filepath.Join(repo, node.APIFile))
	d := &daemon{logs: &bytes.Buffer{}, done: make(chan struct{})}
	args := append([]string{"--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns",
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
		if b, err := os.ReadFile(filepath.Join(repo, node.APIFile)); err == nil {
			d.api = strings.TrimSpace(string(b))
			if resp, err := http.Get(d.api + "/amp/status"); err == nil {
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

// freePort returns a loopback address with a port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCLIDirectory runs a directory daemon with a public API and a
// publisher daemon on loopback: the publisher registers with `mesh
// directory add`, the directory syncs its lesson, and a third repo with no
// daemon finds it with `mesh directory search`, verified, and over plain
// HTTP with a signed answer.
func TestCLIDirectory(t *testing.T) {
	rd, rp, ru := filepath.Join(t.TempDir(), "dir"), filepath.Join(t.TempDir(), "pub"), filepath.Join(t.TempDir(), "user")
	public := freePort(t)
	startDaemonWith(t, rd, "--directory", "--directory-topic", "rust", "--public-api", public, "--public-rate", "1000", "--contact", "ops@example.org")
	startDaemonWith(t, rp)
	var idd struct {
		NodeID string   `json:"nodeId"`
		Addrs  []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, rd, "", "--json", "id")), &idd); err != nil || len(idd.Addrs) == 0 {
		t.Fatalf("id of the directory: %+v %v", idd, err)
	}
	var st struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(mustMesh(t, rp, "", "--json", "store", "--title", "Cargo build crashes", "--content", "cargo parallel build crashes: lower the job count")), &st)
	mustMesh(t, rp, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
	var pid struct {
		NodeID string `json:"nodeId"`
	}
	json.Unmarshal([]byte(mustMesh(t, rp, "", "--json", "id")), &pid)
	key := st.ID + "@" + pid.NodeID

	out := mustMesh(t, rp, "", "directory", "add", idd.Addrs[0])
	if !strings.Contains(out, "registered; policy: directory; topics rust") || !strings.Contains(out, "contact ops@example.org") || !strings.Contains(out, "http://"+public) {
		t.Fatalf("directory add: %s", out)
	}
	if out := mustMesh(t, rp, "", "directory", "list"); !strings.Contains(out, idd.NodeID) || !strings.Contains(out, "1 directories") {
		t.Fatalf("directory list: %s", out)
	}
	if r := mesh(t, rp, "", "directory", "add", "not-a-directory"); r.code == 0 {
		t.Fatalf("a bad target was accepted: %s", r.stdout)
	}

	// A user with no daemon at all asks the directory.
	mustMesh(t, ru, "", "init")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := mesh(t, ru, "", "directory", "search", "--url", "http://"+public, "cargo parallel build")
		if r.code == 0 && strings.Contains(r.stdout, key) {
			if !strings.Contains(r.stdout, "(no trust path)") || !strings.Contains(r.stdout, "1 of 1 directories answered") {
				t.Fatalf("directory search: %s", r.stdout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lesson never showed up in the directory: %+v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// curl's view: a signed answer carrying the signed lesson.
	resp, err := http.Post("http://"+public+"/v1/search", "application/json", strings.NewReader(`{"query":"cargo parallel build","limit":5}`))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	v, err := protocol.VerifyResponse(bytes.TrimSpace(buf.Bytes()), protocol.VerifyOptions{})
	if err != nil || v.Directory.NodeID != idd.NodeID {
		t.Fatalf("answer: %v %s", err, buf.Bytes())
	}
	sr, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil || len(sr.Results) != 1 || protocol.Verify(sr.Results[0].SignedLesson, protocol.VerifyOptions{AllowOld: true}) != nil {
		t.Fatalf("results: %v %+v", err, sr)
	}

	if out := mustMesh(t, rp, "", "directory", "remove", idd.NodeID); !strings.Contains(out, "removed") {
		t.Fatalf("remove: %s", out)
	}
	if out := mustMesh(t, rp, "", "directory", "list"); !strings.Contains(out, "0 directories") {
		t.Fatalf("list after remove: %s", out)
	}
}
