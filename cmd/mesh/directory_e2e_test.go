package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

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
	if out := mustMesh(t, rp, "", "directory", "list"); !strings.Contains(out, idd.NodeID) || !strings.Contains(out, "1 directory\n") {
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
			if !strings.Contains(r.stdout, "(no trust path)") || !strings.Contains(r.stdout, "1 of 1 directory answered") {
				t.Fatalf("directory search: %s", r.stdout)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lesson never showed up in the directory: %+v", r)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The same through mesh search: the publisher searches the directory
	// it added (its own lesson is trusted); the user names the URL, and
	// --trusted-only drops a publisher it has no trust path to.
	if out := mustMesh(t, rp, "", "search", "--directories", "cargo parallel build"); !strings.Contains(out, key) || strings.Contains(out, "(no trust path)") || !strings.Contains(out, "1 of 1 directory answered") {
		t.Fatalf("search --directories: %s", out)
	}
	out = mustMesh(t, ru, "", "search", "--directory-url", "http://"+public, "--trusted-only", "cargo parallel build")
	if strings.Contains(out, key) || !strings.Contains(out, "0 results; 1 of 1 directory answered") || !strings.Contains(out, "1 untrusted") {
		t.Fatalf("search --directory-url --trusted-only: %s", out)
	}
	for _, bad := range [][]string{
		{"--directories", "--sources", "rust"},
		{"--directories", "--project", "p"},
		{"--sources", "trusted", "--min-score", "0.5"},
		{"--directory-url", "http://" + public, "--freshness", "1h"},
	} {
		if r := mesh(t, ru, "", append(append([]string{"search"}, bad...), "cargo")...); r.code != 2 {
			t.Fatalf("search %v: %+v, want a usage error", bad, r)
		}
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
