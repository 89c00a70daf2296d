package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// eventually retries cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addrOf is a daemon's first libp2p address (with /p2p/).
func addrOf(t *testing.T, repo string) string {
	t.Helper()
	return idOf(t, repo).Addrs[0]
}

// TestFirstHourJourney drives real daemons through a newcomer's first
// hour: B follows a topic and is connected to A, which publishes before B
// trusts it; B lists A under mesh trust pending and in mesh status; mesh
// trust add brings A's lesson in by itself (no mesh sync): B lists it,
// reads it by key and by bare id, exports and verifies it; blocking A takes
// it away from search and list at once; a second daemon on A's busy port
// exits 1 naming the address and --listen; a bad node ID is a usage error.
func TestFirstHourJourney(t *testing.T) {
	t.Parallel()
	ra, rb := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	startDaemon(t, ra)
	startDaemon(t, rb)
	a := idOf(t, ra)
	for _, r := range []string{ra, rb} {
		mustMesh(t, r, "", "follow", "rust")
	}
	mustMesh(t, rb, "", "connect", a.Addrs[0])

	var st struct {
		ID string `json:"id"`
	}
	out := mustMesh(t, ra, "", "--json", "store", "--title", "Cargo parallel builds crash small servers",
		"--content", "Never run several cargo builds in parallel on a 2 GB VPS.", "--tags", "rust")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
	key := st.ID + "@" + a.NodeID

	// Refused, and told: by gossip (no mesh sync here).
	eventually(t, "B to list A as pending", func() bool {
		var pend []struct {
			NodeID  string   `json:"nodeId"`
			Lessons int      `json:"lessons"`
			Topics  []string `json:"topics"`
		}
		out := mustMesh(t, rb, "", "--json", "trust", "pending")
		if err := json.Unmarshal([]byte(out), &pend); err != nil {
			t.Fatalf("trust pending --json: %s", out)
		}
		return len(pend) == 1 && pend[0].NodeID == a.NodeID && pend[0].Lessons == 1 && slices.Equal(pend[0].Topics, []string{"rust"})
	})
	if out := mustMesh(t, rb, "", "status"); !strings.Contains(out, "refused: 1 lesson from 1 publisher not trusted: mesh trust pending") {
		t.Fatalf("status does not tell of the refused lesson:\n%s", out)
	}
	if out := mustMesh(t, rb, "", "trust", "pending"); !strings.Contains(out, a.NodeID) || !strings.Contains(out, "rust") {
		t.Fatalf("trust pending:\n%s", out)
	}

	// Trusted: the lesson comes by itself, within seconds.
	mustMesh(t, rb, "", "trust", "add", a.NodeID)
	eventually(t, "A's lesson to arrive at B", func() bool {
		return strings.Contains(mustMesh(t, rb, "", "list", "--from", a.NodeID), key)
	})
	if out := mustMesh(t, rb, "", "get", key); !strings.Contains(out, "Cargo parallel builds crash small servers") {
		t.Fatalf("get %s:\n%s", key, out)
	}
	if out := mustMesh(t, rb, "", "get", st.ID); !strings.Contains(out, "Never run several cargo builds") {
		t.Fatalf("get %s (bare id of a received lesson):\n%s", st.ID, out)
	}
	if out := mustMesh(t, rb, "", "export", key); !strings.Contains(out, `"signature"`) {
		t.Fatalf("export %s:\n%s", key, out)
	}
	if out := mustMesh(t, rb, "", "verify", key); !strings.Contains(out, "✓ Trust path") || !strings.Contains(out, "✓ Not revoked") {
		t.Fatalf("verify %s:\n%s", key, out)
	}
	if out := mustMesh(t, rb, "", "status"); !strings.Contains(out, "1 lesson from other nodes") || strings.Contains(out, "refused:") {
		t.Fatalf("status after trust:\n%s", out)
	}
	if out := mustMesh(t, rb, "", "--json", "trust", "pending"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("still pending after trust: %s", out)
	}

	// Blocked: gone from every read path at once; verify fails.
	mustMesh(t, rb, "", "trust", "add", a.NodeID, "--level", "none")
	if out := mustMesh(t, rb, "", "search", "cargo", "parallel"); strings.Contains(out, key) {
		t.Fatalf("search after the block:\n%s", out)
	}
	if out := mustMesh(t, rb, "", "list", "--from", a.NodeID); strings.Contains(out, key) {
		t.Fatalf("list after the block:\n%s", out)
	}
	if r := mesh(t, rb, "", "verify", key); r.code != 1 || !strings.Contains(r.stdout, "✗ Trust path") {
		t.Fatalf("verify of a blocked publisher's lesson: %+v", r)
	}

	// A busy port: exit 1, naming the address and the flag.
	tcp := ""
	for _, l := range a.Addrs {
		if strings.Contains(l, "/tcp/") {
			tcp = l[:strings.Index(l, "/p2p/")]
		}
	}
	r := mesh(t, filepath.Join(t.TempDir(), "c"), "", "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", tcp)
	if r.code != 1 || !strings.Contains(r.stderr, tcp) || !strings.Contains(r.stderr, "--listen") || strings.Contains(r.stdout, "daemon ready") {
		t.Fatalf("a daemon on a busy port: %+v", r)
	}

	// A lesson that does not exist: verify fails and never says "Not revoked".
	if r := mesh(t, rb, "", "verify", "lesson_0000000000000000@"+a.NodeID); r.code != 1 || strings.Contains(r.stdout, "Not revoked") || !strings.Contains(r.stdout, "✗") {
		t.Fatalf("verify of a lesson that does not exist: %+v", r)
	}

	// A bad node ID: a usage error.
	if r := mesh(t, rb, "", "trust", "add", "bob"); r.code != 2 || !strings.Contains(r.stderr, "not a node ID: bob (node IDs look like 12D3KooW") {
		t.Fatalf("trust add bob: %+v", r)
	}
}

// TestTrustOrdersE2E: C trusts B, B trusts C and A, in each of the six
// orders, on three real daemons connected in a line: C has the two-hop
// path to A within seconds (vouches are pushed when a node's own full
// edges change, and fetched by a node newly trusting a peer), never after
// the 30-minute vouch refresh.
func TestTrustOrdersE2E(t *testing.T) {
	t.Parallel()
	type edge struct{ from, to int }
	edges := []edge{{2, 1}, {1, 2}, {1, 0}} // C→B, B→C, B→A
	var orders [][]edge
	for _, i := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		orders = append(orders, []edge{edges[i[0]], edges[i[1]], edges[i[2]]})
	}
	for n, order := range orders {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			repos := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")}
			ids := make([]string, 3)
			for i, r := range repos {
				startDaemon(t, r)
				ids[i] = idOf(t, r).NodeID
			}
			mustMesh(t, repos[1], "", "connect", addrOf(t, repos[0]))
			mustMesh(t, repos[2], "", "connect", addrOf(t, repos[1]))
			for _, e := range order {
				mustMesh(t, repos[e.from], "", "trust", "add", ids[e.to])
			}
			eventually(t, "C's two-hop path to A", func() bool {
				var p struct {
					Trusted bool     `json:"trusted"`
					Hops    []string `json:"hops"`
				}
				out := mustMesh(t, repos[2], "", "--json", "trust", "path", ids[0])
				return json.Unmarshal([]byte(out), &p) == nil && p.Trusted && slices.Equal(p.Hops, []string{ids[2], ids[1], ids[0]})
			})
		})
	}
}

// TestDefaultDaemonsFindEachOther: three daemons with the default DHT
// mode (auto), bootstrapped to the first, on loopback, where AutoNAT never
// calls them public: through the LAN DHT each finds the others' signed
// node records.
func TestDefaultDaemonsFindEachOther(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r0 := filepath.Join(dir, "0")
	startDaemon(t, r0)
	boot := addrOf(t, r0)
	repos := []string{r0, filepath.Join(dir, "1"), filepath.Join(dir, "2")}
	for _, r := range repos[1:] {
		startDaemonWith(t, r, "--bootstrap", boot)
	}
	ids := make([]string, 3)
	for i, r := range repos {
		ids[i] = idOf(t, r).NodeID
	}
	for i, r := range repos {
		for j := range repos {
			if i == j {
				continue
			}
			eventually(t, fmt.Sprintf("node %d to find node %d's record", i, j), func() bool {
				res := mesh(t, r, "", "--json", "directory", "node", ids[j])
				return res.code == 0 && strings.Contains(res.stdout, ids[j])
			})
		}
	}
}

// TestREADMEWalkthrough runs the README's first-hour walk-through as it
// stands (the shell block between the walkthrough markers), with its
// ports swapped for free ones, HOME in a temporary directory, and the
// binary it installs going there too. The block's output must show the
// refusal, the trust, the lesson read and verified, and the revocation.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- walkthrough:begin -->\\s*```sh\\n(.*?)```\\s*<!-- walkthrough:end -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no walkthrough block")
	}
	script := string(m[1])
	for _, port := range []string{"8801", "8802", "4101", "4102"} {
		if !strings.Contains(script, port) {
			t.Fatalf("the walkthrough no longer uses port %s: update this test", port)
		}
		free := freePort(t)
		script = strings.ReplaceAll(script, ":"+port, free[strings.LastIndex(free, ":"):])
		script = strings.ReplaceAll(script, "/tcp/"+port, "/tcp/"+free[strings.LastIndex(free, ":")+1:])
	}
	home := t.TempDir()
	gobin := filepath.Join(home, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = "../.."
	// HOME moves, Go's caches do not: go install must not rebuild the
	// world or fetch modules again.
	env := append(os.Environ(), "HOME="+home, "GOBIN="+gobin, "PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"1 from untrusted publishers (mesh trust pending)",
		"to accept one's lessons: mesh trust add NODEID",
		"title:    Cargo parallel builds crash small servers",
		"✓ Signature valid (ed25519)",
		"✓ Trust path: you → ",
		"✗ Revoked: the publisher says so",
		"verify failed, as it should",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out.String())
		}
	}
}

// jsonCase is one run of a command with --json: its arguments (after
// --json), standard input, and the exit status it must have (anyCode: 0
// or 1, for a lookup that may not have its answer yet).
type jsonCase struct {
	args  []string
	stdin string
	code  int
}

const anyCode = -1

// TestEveryCommandJSON runs every command of the CLI with --json, on its
// success path and on a failure, against two real daemons: each prints
// exactly one JSON value on standard output (mesh sync: one object per
// line, the last a summary), an error as {"error":{"code","message"}}
// unless the command's own report (mesh verify's) carries it. A command
// added without a case here fails the test.
func TestEveryCommandJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ra, rb, offline := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "offline")
	startDaemon(t, ra)
	startDaemon(t, rb)
	mustMesh(t, offline, "", "init")
	a, b := idOf(t, ra), idOf(t, rb)
	var off struct {
		NodeID string `json:"nodeId"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, offline, "", "--json", "id")), &off); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, rb, "", "connect", a.Addrs[0])
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "JSON everywhere", "--content", "machines read stdout")), &st); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
	key := st.ID + "@" + a.NodeID
	export := mustMesh(t, ra, "", "export", key)
	trustFile := filepath.Join(dir, "trust.json")
	if err := os.WriteFile(trustFile, []byte(mustMesh(t, rb, "", "trust", "export")), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, ra, "", "sensor", "add", "setup/x", "--unit", "%")
	// A gateway's --lora-udp socket, for mesh lora send --udp.
	udpGateway, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpGateway.Close()
	bad := "12D3KooWBadBadBad"
	unknownKey := "lesson_0000000000000000@" + b.NodeID

	// Cases per command path, run in this order, on repo ra unless the
	// first argument is "@b" or "@offline".
	cases := map[string][]jsonCase{
		"mesh version":          {{args: []string{"version"}}},
		"mesh id":               {{args: []string{"id"}}, {args: []string{"id", "extra"}, code: 2}},
		"mesh init":             {{args: []string{"@offline", "init"}}},
		"mesh status":           {{args: []string{"status"}}, {args: []string{"status", "--wait", "x"}, code: 2}},
		"mesh store":            {{args: []string{"store", "--title", "t", "--content", "c"}}, {args: []string{"store"}, code: 2}, {args: []string{"store", "--field", "h=abc"}, code: 2}},
		"mesh get":              {{args: []string{"get", st.ID}}, {args: []string{"get", "no_such_id"}, code: 1}, {args: []string{"@b", "get", key}}},
		"mesh list":             {{args: []string{"list"}}, {args: []string{"@b", "list", "--remote"}}, {args: []string{"list", "--from", bad}, code: 2}},
		"mesh delete":           {{args: []string{"delete", "no_such_id"}, code: 1}},
		"mesh agent-status":     {{args: []string{"agent-status", "radarr"}}, {args: []string{"agent-status"}, code: 2}},
		"mesh search":           {{args: []string{"search", "machines"}}, {args: []string{"@b", "search", "machines", "--sources", "trusted"}}, {args: []string{"search", "x", "--origin", "bogus"}, code: 2}},
		"mesh publish":          {{args: []string{"publish", st.ID, "--topic", "rust"}}, {args: []string{"publish", "no_such_id"}, code: 1}},
		"mesh export":           {{args: []string{"export", st.ID}}, {args: []string{"export", "no_such_id"}, code: 1}},
		"mesh verify":           {{args: []string{"verify", "-"}, stdin: export}, {args: []string{"verify", "-"}, stdin: "garbage", code: 1}, {args: []string{"verify", key}}, {args: []string{"verify", unknownKey}, code: 1}},
		"mesh revoke":           {{args: []string{"revoke", "no_such_id"}, code: 1}},
		"mesh follow":           {{args: []string{"follow", "rust"}}, {args: []string{"follow"}, code: 2}},
		"mesh unfollow":         {{args: []string{"unfollow", "rust"}}},
		"mesh following":        {{args: []string{"following"}}},
		"mesh connect":          {{args: []string{"connect", b.Addrs[0]}}, {args: []string{"connect", "/ip4/127.0.0.1/tcp/1/p2p/" + off.NodeID}, code: 1}},
		"mesh peers":            {{args: []string{"peers"}}},
		"mesh sync":             {{args: []string{"@b", "sync"}}},
		"mesh trust add":        {{args: []string{"@b", "trust", "add", a.NodeID}}, {args: []string{"trust", "add", "bob"}, code: 2}},
		"mesh trust remove":     {{args: []string{"trust", "remove", b.NodeID}, code: 1}, {args: []string{"trust", "remove", "bob"}, code: 2}},
		"mesh trust list":       {{args: []string{"@b", "trust", "list"}}},
		"mesh trust path":       {{args: []string{"@b", "trust", "path", a.NodeID}}, {args: []string{"trust", "path", "bob"}, code: 2}},
		"mesh trust export":     {{args: []string{"trust", "export"}}},
		"mesh trust import":     {{args: []string{"trust", "import", trustFile}}, {args: []string{"trust", "import", "-"}, stdin: "{not json", code: 1}},
		"mesh trust referrals":  {{args: []string{"trust", "referrals"}}},
		"mesh trust pending":    {{args: []string{"trust", "pending"}}},
		"mesh keys list":        {{args: []string{"keys", "list"}}},
		"mesh keys policy":      {{args: []string{"keys", "policy", "no_such_id"}, code: 1}},
		"mesh keys rotate":      {{args: []string{"keys", "rotate", "no_such_id"}, code: 1}},
		"mesh directory add":    {{args: []string{"directory", "add", "http://127.0.0.1:1"}, code: 1}},
		"mesh directory list":   {{args: []string{"directory", "list"}}},
		"mesh directory remove": {{args: []string{"directory", "remove", "http://127.0.0.1:1"}, code: 1}},
		"mesh directory search": {{args: []string{"directory", "search", "x", "--url", "http://127.0.0.1:1"}, code: 1}},
		"mesh directory dht":    {{args: []string{"directory", "dht"}}},
		"mesh directory find":   {{args: []string{"directory", "find", b.NodeID}}, {args: []string{"directory", "find", "bob"}, code: 2}},
		"mesh directory node":   {{args: []string{"directory", "node", b.NodeID}, code: anyCode}, {args: []string{"directory", "node", "bob"}, code: 2}},
		"mesh directory nodes":  {{args: []string{"directory", "nodes", "--topic", "nothing-here"}}},
		"mesh repair":           {{args: []string{"repair"}, code: 1}},
		"mesh lora send": {{args: []string{"lora", "send", "--udp", udpGateway.LocalAddr().String(), "--stream", "barn/climate", "temp=4.5"}},
			{args: []string{"lora", "send", "--stream", "barn/climate", "temp=4.5"}, code: 2}, {args: []string{"lora", "send", "--udp", "127.0.0.1:9", "--stream", "Barn", "t=1"}, code: 2}},
		"mesh lora status":  {{args: []string{"lora", "status"}}},
		"mesh watch add":    {{args: []string{"watch", "add", "machines", "--topic", "rust"}}, {args: []string{"watch", "add"}, code: 2}, {args: []string{"watch", "add", "x", "--sources", "bob"}, code: 2}},
		"mesh watch list":   {{args: []string{"watch", "list"}}},
		"mesh watch remove": {{args: []string{"watch", "remove", "watch_nope"}, code: 1}},
		// A stream: one match per line and a summary (as mesh sync);
		// TestWatchEndToEnd reads one that delivers matches.
		"mesh watch":         {{args: []string{"watch", "--for", "1s"}}, {args: []string{"@offline", "watch", "--for", "1s"}, code: 1}},
		"mesh ui":            {{args: []string{"ui"}}, {args: []string{"@offline", "ui"}, code: 1}},
		"mesh sensor add":    {{args: []string{"sensor", "add", "setup/y", "--unit", "W", "--ttl", "2d"}}, {args: []string{"sensor", "add", "Bad//"}, code: 2}},
		"mesh sensor push":   {{args: []string{"sensor", "push", "setup/x", "61"}}, {args: []string{"sensor", "push", "setup/x", "wet"}, code: 2}, {args: []string{"sensor", "push", "no/stream", "1"}, code: 1}},
		"mesh sensor list":   {{args: []string{"sensor", "list"}}},
		"mesh access grant":  {{args: []string{"access", "grant", b.NodeID, "--stream", "setup/*"}}, {args: []string{"access", "grant", "bob"}, code: 2}},
		"mesh access revoke": {{args: []string{"access", "revoke", off.NodeID}, code: 1}, {args: []string{"access", "revoke", "bob"}, code: 2}},
		"mesh access list":   {{args: []string{"access", "list"}}},
		"mesh name set":      {{args: []string{"@b", "name", "set", "setup", a.NodeID}}, {args: []string{"name", "set", "only-a-name"}, code: 2}},
		"mesh name list":     {{args: []string{"@b", "name", "list"}}},
		"mesh name remove":   {{args: []string{"name", "remove", "nothing"}, code: 1}},
		"mesh bridge mqtt":   {{args: []string{"bridge", "mqtt", "--broker", "tcp://127.0.0.1:1", "--sources", a.NodeID, "--once"}, code: 1}, {args: []string{"bridge", "mqtt", "--broker", "bogus", "--sources", "x", "--once"}, code: 2}},
		// Not JSON by nature: the daemon prints its Info as JSON and runs
		// (TestDaemonJSONBanner); mcp speaks JSON-RPC on stdio.
		"mesh daemon": nil,
		"mesh mcp":    nil,
	}
	// Every command has its cases.
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			if _, ok := cases[c.CommandPath()]; !ok {
				t.Errorf("%s has no --json case here", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(&globals{}))
	// Plus unknown commands and flags.
	cases["(usage)"] = []jsonCase{{args: []string{"bogus"}, code: 2}, {args: []string{"trust", "bogus"}, code: 2}, {args: []string{"list", "--bogus"}, code: 2}}

	paths := make([]string, 0, len(cases))
	for p := range cases {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		for _, c := range cases[p] {
			repo, args := ra, c.args
			switch args[0] {
			case "@b":
				repo, args = rb, args[1:]
			case "@offline":
				repo, args = filepath.Join(dir, "fresh"), args[1:]
			}
			r := mesh(t, repo, c.stdin, append([]string{"--json"}, args...)...)
			name := strings.Join(args, " ")
			if r.code != c.code && !(c.code == anyCode && r.code <= 1) {
				t.Errorf("mesh --json %s: exit %d, want %d\nstdout: %s\nstderr: %s", name, r.code, c.code, r.stdout, r.stderr)
				continue
			}
			vals, err := jsonValues(r.stdout)
			if err != nil {
				t.Errorf("mesh --json %s: stdout is not JSON: %v\n%s", name, err, r.stdout)
				continue
			}
			if (p == "mesh sync" || p == "mesh watch") && r.code == 0 {
				last, _ := vals[len(vals)-1].(map[string]any)
				if last["summary"] != true {
					t.Errorf("mesh --json %s: the last line is no summary: %s", name, r.stdout)
				}
				for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("mesh --json %s: a line is not one JSON value: %q", name, line)
					}
				}
				continue
			}
			if len(vals) != 1 {
				t.Errorf("mesh --json %s: %d JSON values, want 1:\n%s", name, len(vals), r.stdout)
				continue
			}
			obj, _ := vals[0].(map[string]any)
			if r.code != 0 && !(p == "mesh verify" && obj["key"] != nil) {
				e, _ := obj["error"].(map[string]any)
				if code, _ := e["code"].(string); code == "" || e["message"] == "" {
					t.Errorf("mesh --json %s: failed without {\"error\":{code,message}}: %s", name, r.stdout)
				} else if r.code == 2 && code != "USAGE" {
					t.Errorf("mesh --json %s: a usage error coded %s", name, code)
				}
			}
		}
	}
}

// jsonValues decodes every JSON value in s.
func jsonValues(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no JSON value")
	}
	return out, nil
}

// TestDaemonJSONBanner: mesh daemon --json prints its Info (every
// address it serves) as one JSON value on standard output, then runs.
func TestDaemonJSONBanner(t *testing.T) {
	t.Parallel()
	repo := filepath.Join(t.TempDir(), "repo")
	cmd := exec.Command(meshBin, "--repo", repo, "--json", "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap", "--listen", "/ip4/127.0.0.1/tcp/0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	var info struct {
		NodeID string   `json:"nodeId"`
		API    string   `json:"api"`
		Listen []string `json:"listen"`
		Addrs  []string `json:"addrs"`
	}
	done := make(chan error, 1)
	go func() { done <- json.NewDecoder(stdout).Decode(&info) }()
	select {
	case err := <-done:
		if err != nil || info.NodeID == "" || !strings.HasPrefix(info.API, "http://127.0.0.1:") || len(info.Listen) == 0 || len(info.Addrs) == 0 {
			t.Fatalf("daemon --json: %+v %v", info, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon --json printed nothing")
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(info.API, "http://")); err != nil {
		t.Fatalf("the API the banner names does not answer: %v", err)
	}
}
