package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/internal/interop"
)

// nodeInfo is what mesh --json id prints.
type nodeInfo struct {
	NodeID string   `json:"nodeId"`
	Addrs  []string `json:"addrs"`
}

func idOf(t *testing.T, repo string) nodeInfo {
	t.Helper()
	var id nodeInfo
	if err := json.Unmarshal([]byte(mustMesh(t, repo, "", "--json", "id")), &id); err != nil || len(id.Addrs) == 0 {
		t.Fatalf("id of %s: %+v %v", repo, id, err)
	}
	return id
}

// TestCLIEncrypted runs three real daemons on loopback: a publishes a
// lesson encrypted for b only; its export holds no plaintext and verifies
// with the independent verifier; b reads it (decrypted), c is told why it
// may not; a lists, shows and rotates the key and revokes it for good; b
// can no longer read it; a's daemon is killed with SIGKILL right after the
// revoke and restarted, and still answers KEY_REVOKED (mesh verify of the
// saved export, on c).
func TestCLIEncrypted(t *testing.T) {
	ra, rb, rc := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	da := startDaemon(t, ra)
	startDaemon(t, rb)
	startDaemon(t, rc)
	a, b, c := idOf(t, ra), idOf(t, rb), idOf(t, rc)
	for _, pair := range [][2]string{{ra, b.NodeID}, {ra, c.NodeID}, {rb, a.NodeID}, {rc, a.NodeID}} {
		mustMesh(t, pair[0], "", "trust", "add", pair[1])
	}
	mustMesh(t, rb, "", "connect", a.Addrs[0])
	mustMesh(t, rc, "", "connect", a.Addrs[0])

	const marker = "ZEBRA-PLAINTEXT-7731"
	var st struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "Sealed note", "--content", "only b may read "+marker)), &st)
	id := st.ID
	if r := mesh(t, ra, "", "publish", id, "--access", "explicit"); r.code != 2 || !strings.Contains(r.stderr, "--encrypt") {
		t.Fatalf("policy flag without --encrypt: %+v", r)
	}
	if r := mesh(t, ra, "", "publish", id, "--encrypt", "--access", "explicit"); r.code != 2 || !strings.Contains(r.stderr, "--allow") {
		t.Fatalf("explicit without readers: %+v", r)
	}
	out := mustMesh(t, ra, "", "publish", id, "--encrypt", "--access", "explicit", "--allow", b.NodeID, "--topic", "lab")
	key := id + "@" + a.NodeID
	if !strings.Contains(out, "published "+id+" encrypted") || !strings.Contains(out, "key: "+key) || !strings.Contains(out, "explicit access") {
		t.Fatalf("publish --encrypt: %s", out)
	}

	// The export: an EncryptedLesson, no plaintext, verified independently.
	exported := mustMesh(t, ra, "", "export", id)
	if strings.Contains(exported, marker) || strings.Contains(exported, "Sealed note") || !strings.Contains(exported, `"ciphertext"`) {
		t.Fatalf("export of an encrypted lesson: %s", exported)
	}
	t.Run("independent verifier", func(t *testing.T) { verifyEncryptedIndependently(t, exported) })
	file := filepath.Join(t.TempDir(), "sealed.json")
	os.WriteFile(file, []byte(exported), 0o644)
	out = mustMesh(t, ra, "", "verify", file)
	for _, want := range []string{"✓ Signature valid (ed25519)", "✓ Encrypted (aes-256-gcm", "✓ Key available"} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify lacks %q:\n%s", want, out)
		}
	}

	// b reads; c may not, and is told why.
	out = mustMesh(t, rb, "", "get", key)
	if !strings.Contains(out, marker) || !strings.Contains(out, "decrypted with key") {
		t.Fatalf("b get: %s", out)
	}
	if r := mesh(t, rc, "", "get", key); r.code != 1 || !strings.Contains(r.stderr, "ACCESS_DENIED") || !strings.Contains(r.stderr, "not among the allowed nodes") {
		t.Fatalf("c get: %+v", r)
	}
	if out := mustMesh(t, rc, "", "verify", file); !strings.Contains(out, "? Key denied") {
		t.Fatalf("verify on c: %s", out)
	}

	// Keys: list, policy, rotate.
	out = mustMesh(t, ra, "", "keys", "list")
	if !strings.Contains(out, "author") || !strings.Contains(out, "explicit access") || !strings.Contains(out, "1 key\n") {
		t.Fatalf("keys list: %s", out)
	}
	out = mustMesh(t, ra, "", "keys", "policy", id, "--allow", b.NodeID+","+c.NodeID)
	if !strings.Contains(out, c.NodeID) {
		t.Fatalf("keys policy: %s", out)
	}
	if out := mustMesh(t, rc, "", "get", key); !strings.Contains(out, marker) {
		t.Fatalf("c after the policy change: %s", out)
	}
	out = mustMesh(t, ra, "", "keys", "rotate", id)
	if !strings.Contains(out, "rotated "+id) || !strings.Contains(out, "reader "+c.NodeID+": told") {
		t.Fatalf("keys rotate: %s", out)
	}
	rotated := mustMesh(t, ra, "", "export", id)

	// Revoked for good; a killed at once, restarted: still KEY_REVOKED.
	out = mustMesh(t, ra, "", "revoke", id, "--hard")
	if !strings.Contains(out, "revoked "+key+" for good") {
		t.Fatalf("revoke --hard: %s", out)
	}
	da.kill()
	if r := mesh(t, rb, "", "get", key); r.code != 1 || !strings.Contains(r.stderr, "REVOKED") {
		t.Fatalf("b get after the revoke: %+v", r)
	}
	startDaemon(t, ra)
	a = idOf(t, ra)
	mustMesh(t, rc, "", "connect", a.Addrs[0])
	os.WriteFile(file, []byte(rotated), 0o644)
	r := mesh(t, rc, "", "verify", file)
	if r.code != 1 || !strings.Contains(r.stdout, "✓ Signature valid") || !strings.Contains(r.stdout, "✗ Key revoked") {
		t.Fatalf("verify after the revoke and a kill -9: %+v", r)
	}
	if out := mustMesh(t, ra, "", "keys", "list"); strings.Count(out, "REVOKED") != 2 {
		t.Fatalf("keys list after the revoke: %s", out)
	}
	if r := mesh(t, ra, "", "revoke", id, "--hard"); r.code != 1 || !strings.Contains(r.stderr, "ALREADY_REVOKED") && !strings.Contains(r.stderr, "already revoked") {
		t.Fatalf("second hard revoke: %+v", r)
	}
}

// verifyEncryptedIndependently checks an EncryptedLesson's signature with
// the Node.js verifier of protocol/testdata/interop (no MESH code), and
// that it rejects a copy with one ciphertext character changed.
func verifyEncryptedIndependently(t *testing.T, doc string) {
	t.Helper()
	nodeBin, dir := interop.Verifier(t)
	run := func(in string) ([]byte, error) {
		cmd := exec.Command(nodeBin, "verify.mjs", "--stdin", "--kind", "encryptedLesson")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(in)
		return cmd.CombinedOutput()
	}
	if out, err := run(doc); err != nil {
		t.Fatalf("the independent verifier rejects mesh export's encrypted lesson: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	ct := m["ciphertext"].(string)
	flipped := "A"
	if ct[0] == 'A' {
		flipped = "B"
	}
	if out, err := run(strings.Replace(doc, ct, flipped+ct[1:], 1)); err == nil {
		t.Fatalf("the independent verifier accepts a tampered ciphertext:\n%s", out)
	}
}
