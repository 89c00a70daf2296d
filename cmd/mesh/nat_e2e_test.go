package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/internal/netns"
	"github.com/meshprotocol/mesh/node/api"
)

// requireNetns fails under CI and skips elsewhere when network namespaces
// cannot be built here (not root, no ip or iptables).
func requireNetns(t *testing.T) {
	t.Helper()
	if err := netns.Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the NAT traversal test must run in CI (CI=true): %v", err)
		}
		t.Skipf("skipping the NAT traversal test: %v", err)
	}
}

// natHome is one home of the NAT test: a mesh daemon behind its router.
type natHome struct {
	netns.Home
	name string
	repo string
	id   string
	d    *netns.Daemon
}

// TestNATTraversal runs real mesh daemons in network namespaces: a relay on
// a public segment, and four homes behind their own NAT routers with no
// port forwards, each knowing only the relay's address. Homes a and b sit
// behind cone NATs (Linux MASQUERADE keeping ports, stateful firewall): a
// reaches b through the relay, the connection is upgraded to a direct one by
// hole punching, and a publication, a revocation and a federated search go
// across. Home c sits behind a symmetric NAT (random ports, the same
// firewall), where hole punching cannot work: it still federates with a,
// through the relay. Home d, behind a cone NAT too, is given the relay as a
// bootstrap peer only, not as a relay: it finds the relay by itself.
func TestNATTraversal(t *testing.T) {
	requireNetns(t)
	netns.CleanStale()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo, err := netns.Build(ctx, netns.Cone, netns.Cone, netns.Symmetric, netns.Cone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), topo.Name+"-") {
			t.Errorf("namespaces left behind:\n%s", out)
		}
	})
	var daemons []*netns.Daemon
	var names []string
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, d := range daemons {
			t.Logf("---- logs of %s (%s):\n%s", names[i], d.NS, d.Logs())
		}
		t.Logf("---- network:\n%s", topo.Dump())
	})
	start := func(ns, repo, name string, args ...string) *netns.Daemon {
		t.Helper()
		d, err := netns.StartDaemon(ctx, meshBin, ns, repo, append([]string{"-v"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		daemons, names = append(daemons, d), append(names, name)
		t.Cleanup(d.Kill)
		return d
	}
	run := func(ns, repo string, args ...string) string {
		t.Helper()
		out, err := netns.Mesh(ctx, meshBin, ns, repo, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	nodeID := func(ns, repo string) string {
		t.Helper()
		var v struct {
			NodeID string `json:"nodeId"`
		}
		if err := json.Unmarshal([]byte(run(ns, repo, "--json", "init")), &v); err != nil || !strings.HasPrefix(v.NodeID, "12D3KooW") {
			t.Fatalf("init in %s: %v %+v", ns, err, v)
		}
		return v.NodeID
	}
	dir := t.TempDir()

	// The relay, on the public segment.
	relayRepo := filepath.Join(dir, "relay")
	relayID := nodeID(topo.Server, relayRepo)
	start(topo.Server, relayRepo, "relay", "--relay", "--reachability", "public")
	// Its TCP and QUIC addresses: the homes reach it over QUIC, so their
	// hole punches go over UDP.
	relayVia := []string{
		"--relay-via", fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", netns.ServerIP, relayID),
		"--relay-via", fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s", netns.ServerIP, relayID),
	}

	// The homes: identities first, then each trusts the others it talks to
	// and follows the topic, all offline; then the daemons, knowing only the
	// relay.
	homes := make([]*natHome, len(topo.Homes))
	for i, h := range topo.Homes {
		homes[i] = &natHome{Home: h, name: string(rune('a' + i)), repo: filepath.Join(dir, "home"+string(rune('a'+i)))}
		homes[i].id = nodeID(h.NS, homes[i].repo)
	}
	a, b, c, d := homes[0], homes[1], homes[2], homes[3]
	for _, pair := range [][2]*natHome{{a, b}, {b, a}, {a, c}, {c, a}} {
		run(pair[0].NS, pair[0].repo, "trust", "add", pair[1].id, "--level", "full", "--note", "home "+pair[1].name)
	}
	for _, h := range homes {
		run(h.NS, h.repo, "follow", "homes")
	}
	for _, h := range homes[:3] {
		h.d = start(h.NS, h.repo, "home "+h.name, relayVia...)
	}
	// Home d knows the relay only as a bootstrap peer: it finds it is a
	// relay among its connected peers once AutoNAT says d is private.
	d.d = start(d.NS, d.repo, "home d", "--bootstrap", relayVia[1])

	status := func(h *natHome) api.Status {
		t.Helper()
		var st api.Status
		out := run(h.NS, h.repo, "--json", "status")
		if err := json.Unmarshal([]byte(out), &st); err != nil || st.Network == nil {
			t.Fatalf("status of %s: %v\n%s", h.name, err, out)
		}
		return st
	}
	peerOf := func(h *natHome, id string) (api.PeerInfo, bool) {
		t.Helper()
		var ps []api.PeerInfo
		out := run(h.NS, h.repo, "--json", "peers")
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatalf("peers of %s: %v\n%s", h.name, err, out)
		}
		for _, p := range ps {
			if p.ID == id {
				return p, true
			}
		}
		return api.PeerInfo{}, false
	}
	began := time.Now()
	step := func(what string) { t.Logf("%6.2fs  %s", time.Since(began).Seconds(), what) }
	// eventually polls cond every 200 ms until it holds or within runs out.
	eventually := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for i := 0; ; i++ {
			if cond() {
				step(what)
				return
			}
			if time.Now().After(deadline) || i > int(within/(200*time.Millisecond))+10 {
				t.Fatalf("%s: not within %s", what, within)
			}

			time.Sleep(200 * time.Millisecond)
		}
	}

	// Each home holds a slot on the relay, and advertises its relay address.
	for _, h := range homes[:3] {
		eventually(30*time.Second, "relay reservation of home "+h.name, func() bool {
			st := status(h)
			return len(st.Network.Reservations) == 1 && st.Network.Reservations[0].Relay == relayID &&
				strings.Contains(strings.Join(st.Network.Addrs, " "), "/p2p/"+relayID+"/p2p-circuit")
		})
	}

	// a publishes before anyone reaches it: the lesson crosses at the
	// first connection (sync), whatever the path.
	var stored struct {
		ID string `json:"id"`
	}
	storeLesson := func(h *natHome, title, content string) string {
		t.Helper()
		if err := json.Unmarshal([]byte(run(h.NS, h.repo, "--json", "store", "--title", title, "--content", content)), &stored); err != nil || stored.ID == "" {
			t.Fatalf("store on %s: %v", h.name, err)
		}
		return stored.ID
	}
	first := storeLesson(a, "Router firmware updates reset port forwards", "After a firmware update the router forgot every port forward; MESH needed none.")
	run(a.NS, a.repo, "publish", first, "--visibility", "public", "--topic", "homes")

	// (1) a reaches b and c by node ID alone: through the relay.
	run(a.NS, a.repo, "connect", b.id)
	run(a.NS, a.repo, "connect", c.id)

	// The lesson reaches b and c.
	finds := func(h *natHome, query, publisher string) bool {
		t.Helper()
		var res struct {
			Results []struct {
				Publisher string `json:"publisher"`
			} `json:"results"`
		}
		json.Unmarshal([]byte(run(h.NS, h.repo, "--json", "search", query)), &res)
		for _, r := range res.Results {
			if r.Publisher == publisher {
				return true
			}
		}
		return false
	}
	for _, h := range []*natHome{b, c} {
		eventually(30*time.Second, "a's lesson reaching "+h.name, func() bool { return finds(h, "firmware port forwards", a.id) })
	}

	// (2) a and b end up directly connected, by hole punching; the relayed
	// connection is then closed.
	eventually(100*time.Second, "a direct, hole-punched connection between a and b", func() bool {
		pa, oka := peerOf(a, b.id)
		pb, okb := peerOf(b, a.id)
		return oka && okb && pa.Connection == "direct" && pb.Connection == "direct" && (pa.HolePunched || pb.HolePunched)
	})
	pa, _ := peerOf(a, b.id)
	for _, addr := range pa.Addrs {
		if !strings.Contains(addr, b.WANIP) || strings.Contains(addr, "p2p-circuit") {
			t.Errorf("a's direct connection to b is from %s, want b's router %s", addr, b.WANIP)
		}
	}
	if out := run(a.NS, a.repo, "peers"); !strings.Contains(out, b.id) || !strings.Contains(out, "direct (hole punched)") && !strings.Contains(out, "direct") {
		t.Errorf("mesh peers of a:\n%s", out)
	}

	// Publication across the punched connection, both ways, and across the
	// relay from c.
	second := storeLesson(b, "Conntrack keeps UDP mappings for 30 seconds", "Keepalives every 15 seconds hold a UDP hole open through a home router.")
	run(b.NS, b.repo, "publish", second, "--visibility", "public", "--topic", "homes")
	eventually(30*time.Second, "b's lesson reaching a", func() bool { return finds(a, "conntrack UDP keepalives", b.id) })
	third := storeLesson(c, "Symmetric NAT defeats hole punching", "A carrier-grade NAT picks a new port per destination; only the relay gets through.")
	run(c.NS, c.repo, "publish", third, "--visibility", "public", "--topic", "homes")
	eventually(30*time.Second, "c's lesson reaching a through the relay", func() bool { return finds(a, "carrier-grade NAT relay", c.id) })

	// Revocation reaches both.
	run(a.NS, a.repo, "revoke", first, "--reason", "outdated")
	for _, h := range []*natHome{b, c} {
		eventually(30*time.Second, "a's revocation reaching "+h.name, func() bool { return !finds(h, "firmware port forwards", a.id) })
		key := first + "@" + a.id
		if out, err := netns.Mesh(ctx, meshBin, h.NS, h.repo, "verify", key); err == nil || !strings.Contains(out, "✗ Revoked") {
			t.Errorf("verify %s on %s after revocation: %v\n%s", key, h.name, err, out)
		}
	}

	// Federated search: a lesson published with no topic is not gossiped;
	// b and c find it by asking their trusted peers.
	fourth := storeLesson(a, "Tunnels are the fallback for strict networks", "A wss tunnel announced with --announce reaches a node no relay can.")
	run(a.NS, a.repo, "publish", fourth, "--visibility", "public")
	for _, h := range []*natHome{b, c} {
		key := fourth + "@" + a.id
		eventually(30*time.Second, "federated search from "+h.name, func() bool {
			out, err := netns.Mesh(ctx, meshBin, h.NS, h.repo, "search", "--sources", "trusted", "wss tunnel announce")
			return err == nil && strings.Contains(out, key)
		})
	}

	// c never got a direct connection: it is still relayed, through our
	// relay, and federated all along.
	// (Polled: a redials c through the relay now and then, to give hole
	// punching another chance.)
	eventually(30*time.Second, "a listing c as relayed through the relay", func() bool {
		pc, ok := peerOf(a, c.id)
		if ok && (pc.Connection != "relayed" || pc.HolePunched) {
			t.Fatalf("a's connection to c is not relayed: %+v", pc)
		}
		return ok && pc.Relay == relayID && strings.Contains(run(a.NS, a.repo, "peers"), "relayed via "+shortID(relayID))
	})

	// Status: the relay is public and serves the three homes; the homes see
	// themselves as not public, and the human-readable status says so.
	rs := status(&natHome{Home: netns.Home{NS: topo.Server}, repo: relayRepo, name: "relay"})
	if n := rs.Network; n.Reachability != "public" || n.RelayService == nil || n.RelayService.Reservations < 3 || n.RelayService.CircuitsTotal < 2 {
		t.Errorf("relay network status: %+v %+v", n, n.RelayService)
	}
	for _, h := range homes {
		eventually(60*time.Second, "home "+h.name+" finding itself private", func() bool {
			return status(h).Network.Reachability == "private"
		})
	}
	// d, told of no relay, found it among its peers once it knew it was
	// private, and is reachable through it by node ID.
	eventually(30*time.Second, "a relay reservation of home d, found without --relay-via", func() bool {
		st := status(d)
		return len(st.Network.Reservations) == 1 && st.Network.Reservations[0].Relay == relayID
	})
	run(a.NS, a.repo, "connect", d.id)
	eventually(30*time.Second, "d listing a", func() bool { _, ok := peerOf(d, a.id); return ok })
	out := run(a.NS, a.repo, "status")
	for _, want := range []string{"reachability: private", "relay reservations: 1", "via " + relayID, "hole punching: on"} {
		if !strings.Contains(out, want) {
			t.Errorf("mesh status of a lacks %q:\n%s", want, out)
		}
	}
}
