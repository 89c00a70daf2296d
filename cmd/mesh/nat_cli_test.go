package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
)

// TestDaemonNATFlags: bad reachability flags are usage errors (exit 2) with
// a message that names the problem, and nothing starts.
func TestDaemonNATFlags(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	base := []string{"--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", "/ip4/127.0.0.1/tcp/0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--announce", "mesh.example.org:443"}, "announce address"},
		{[]string{"--announce", "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDiYeF3p3ScPTgkqyy7xTDPMs94ieUEnt6ZmqbCuL3MYF"}, "leave out /p2p/"},
		{[]string{"--announce-append", "/tcp/443"}, "announce address"},
		{[]string{"--reachability", "sometimes"}, "want auto, public or private"},
		{[]string{"--relay-via", "/ip4/11.0.0.1/tcp/4001"}, "/p2p/<node ID>"},
		{[]string{"--relay", "--relay-max-circuits", "-3"}, "must not be negative"},
	} {
		r := mesh(t, repo, "", append(base, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "panic") {
			t.Errorf("daemon %v: exit %d, want 2 with %q\nstderr: %s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}

// TestDaemonAnnounce: a daemon behind a tunnel advertises the tunnel's
// address instead of its listen addresses, and shows its network status.
func TestDaemonAnnounce(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	const tunnel = "/dns4/mesh.example.org/tcp/443/wss"
	cmd := exec.Command(meshBin, "--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--announce", tunnel)
	var logs lockedBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for i := 0; !strings.Contains(logs.String(), "daemon ready"); i++ {
		select {
		case <-done:
			t.Fatalf("daemon exited: %s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if i > 1200 {
			t.Fatalf("daemon did not come up: %s", logs.String())
		}
	}
	var info api.Info
	if err := json.Unmarshal([]byte(mustMesh(t, repo, "", "--json", "id")), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Addrs) != 1 || info.Addrs[0] != tunnel+"/p2p/"+info.NodeID {
		t.Fatalf("addresses %v, want only %s", info.Addrs, tunnel)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(mustMesh(t, repo, "", "--json", "status")), &st); err != nil || st.Network == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
	if st.Network.PortMapping || !st.Network.HolePunching || st.Network.RelayService != nil || len(st.Network.Addrs) != 1 {
		t.Errorf("network status: %+v", st.Network)
	}
	out := mustMesh(t, repo, "", "status")
	for _, want := range []string{"reachability: ", "relay reservations: none", "hole punching: on", "port mapping: off"} {
		if !strings.Contains(out, want) {
			t.Errorf("mesh status lacks %q:\n%s", want, out)
		}
	}
	// With the daemon gone, status says the node is offline.
	cmd.Process.Kill()
	<-done
	os.Remove(filepath.Join(repo, httpapi.APIFile))
	if out := mustMesh(t, repo, "", "status"); !strings.Contains(out, "network: offline") {
		t.Errorf("offline status:\n%s", out)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
