package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIFederation runs two real daemons on loopback: b connects to a,
// both follow a topic, a publishes, b finds the lesson with its publisher,
// a revokes, and the lesson is gone from b.
func TestCLIFederation(t *testing.T) {
	ra, rb := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	startDaemon(t, ra)
	startDaemon(t, rb)
	var ida struct {
		NodeID string   `json:"nodeId"`
		Addrs  []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "id")), &ida); err != nil || len(ida.Addrs) == 0 {
		t.Fatalf("id of a: %+v %v", ida, err)
	}
	for _, r := range []string{ra, rb} {
		mustMesh(t, r, "", "follow", "rust")
	}
	// b accepts a's lessons only once it trusts a.
	mustMesh(t, rb, "", "trust", "add", ida.NodeID, "--level", "full", "--note", "node a")
	if out := mustMesh(t, rb, "", "following"); !strings.Contains(out, "topic rust") {
		t.Fatalf("following: %s", out)
	}
	mustMesh(t, rb, "", "connect", ida.Addrs[0])
	if out := mustMesh(t, rb, "", "peers"); !strings.Contains(out, ida.NodeID) || !strings.Contains(out, "direct") {
		t.Fatalf("peers of b: %s", out)
	}
	time.Sleep(1500 * time.Millisecond) // GossipSub mesh

	var st struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "Borrow checker tips", "--content", "Prefer restructuring ownership over cloning")), &st)
	mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")

	found := func() bool {
		var res struct {
			Results []struct {
				ID        string `json:"id"`
				Publisher string `json:"publisher"`
			} `json:"results"`
		}
		json.Unmarshal([]byte(mustMesh(t, rb, "", "--json", "search", "restructuring ownership")), &res)
		return len(res.Results) == 1 && res.Results[0].Publisher == ida.NodeID
	}
	deadline := time.Now().Add(30 * time.Second)
	for !found() {
		if time.Now().After(deadline) {
			t.Fatal("the published lesson never reached b")
		}
		time.Sleep(100 * time.Millisecond)
	}
	key := st.ID + "@" + ida.NodeID
	out := mustMesh(t, rb, "", "verify", key)
	for _, want := range []string{"✓ Signature valid (ed25519)", "✓ Author: " + ida.NodeID + " (fingerprint: ", "✓ Timestamp: ", "✓ Not revoked (the publisher says it is not revoked)", "✓ Trust path: you → "} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify %s lacks %q:\n%s", key, want, out)
		}
	}
	if out := mustMesh(t, rb, "", "trust", "list"); !strings.Contains(out, ida.NodeID) || !strings.Contains(out, "node a") {
		t.Fatalf("trust list: %s", out)
	}
	if out := mustMesh(t, rb, "", "search", "--sources", "trusted", "restructuring ownership"); !strings.Contains(out, key) || !strings.Contains(out, "1 result\n") {
		t.Fatalf("federated search: %s", out)
	}
	// b's own AMP listing does not mix it in.
	if out := mustMesh(t, rb, "", "search", "--origin", "local", "restructuring ownership"); !strings.Contains(out, "0 of 0") {
		t.Fatalf("local search of b: %s", out)
	}
	if out := mustMesh(t, rb, "", "sync"); !strings.Contains(out, "sync finished") {
		t.Fatalf("sync: %s", out)
	}

	mustMesh(t, ra, "", "revoke", st.ID, "--reason", "outdated")
	if r := mesh(t, ra, "", "revoke", st.ID); r.code != 1 || !strings.Contains(r.stderr, "already revoked") {
		t.Fatalf("second revoke: %+v", r)
	}
	if r := mesh(t, rb, "", "verify", key); r.code != 1 || !strings.Contains(r.stdout, "✗ Revoked") {
		t.Fatalf("verify after revocation: %+v", r)
	}
	deadline = time.Now().Add(30 * time.Second)
	for found() {
		if time.Now().After(deadline) {
			t.Fatal("the revocation never reached b")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
