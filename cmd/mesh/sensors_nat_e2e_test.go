package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/internal/netns"
	"github.com/meshprotocol/mesh/node/api"
)

// TestSensorBehindNAT runs the "sensors anywhere" story with real
// daemons in network namespaces (the NAT test's topology): a public node
// (also the relay) on the public segment, the cellar sensor behind one
// home router's NAT and the owner's laptop behind another, neither with a
// port forward, each knowing only the public node's address. The public
// node follows the sensor; it is not granted the stream.
//
// While the owner is offline the sensor pushes readings: the public node
// stores their ciphertext and cannot read it. The sensor goes offline too
// (its link drops); the owner comes back, gets the ciphertext from the
// public node alone (it cannot read it yet: the sensor, its key server, is
// away); the sensor comes back and the owner reads every reading, through
// the relay. Neither the public node's store holds the plaintext (the
// sensor's own store, searched alike, does: the search sees it), nor any
// answer the public node got.
func TestSensorBehindNAT(t *testing.T) {
	requireNetns(t)
	netns.CleanStale()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo, err := netns.Build(ctx, netns.Cone, netns.Cone)
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
	search := func(ns, repo, question string) api.SensorSearchResult {
		t.Helper()
		var res api.SensorSearchResult
		out := run(ns, repo, "--json", "search", question, "--sources", "cellar")
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Sources) != 1 {
			t.Fatalf("search in %s: %v\n%s", ns, err, out)
		}
		return res
	}
	began := time.Now()
	eventually := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%6.2fs  %s", time.Since(began).Seconds(), what)
	}
	dir := t.TempDir()
	pubRepo, sensorRepo, ownerRepo := filepath.Join(dir, "public"), filepath.Join(dir, "sensor"), filepath.Join(dir, "owner")
	sensorNS, ownerNS := topo.Homes[0].NS, topo.Homes[1].NS
	pubID, sensorID, ownerID := nodeID(topo.Server, pubRepo), nodeID(sensorNS, sensorRepo), nodeID(ownerNS, ownerRepo)
	relayVia := []string{
		"--relay-via", fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", netns.ServerIP, pubID),
		"--relay-via", fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s", netns.ServerIP, pubID),
	}

	// Set up offline: the sensor's stream and the owner's grant; the owner
	// and the public node follow and trust the sensor and name it.
	run(sensorNS, sensorRepo, "sensor", "add", "cellar/humidity", "--unit", "%", "--ttl", "7d")
	run(sensorNS, sensorRepo, "access", "grant", ownerID, "--stream", "cellar/*")
	for _, h := range []struct{ ns, repo string }{{topo.Server, pubRepo}, {ownerNS, ownerRepo}} {
		run(h.ns, h.repo, "follow", sensorID)
		run(h.ns, h.repo, "trust", "add", sensorID)
		run(h.ns, h.repo, "name", "set", "cellar", sensorID)
	}
	start(topo.Server, pubRepo, "public node", "--relay", "--reachability", "public")
	sensor := start(sensorNS, sensorRepo, "sensor", relayVia...)

	// The owner is offline; the sensor pushes. Values no other byte
	// sequence in a repo is likely to hold.
	values := []string{"61.73519", "64.28461", "66.91357"}
	for _, v := range values {
		run(sensorNS, sensorRepo, "sensor", "push", "cellar/humidity", v)
	}
	eventually(60*time.Second, "the public node holding the readings' ciphertext, unreadable", func() bool {
		res := search(topo.Server, pubRepo, "humidity")
		return len(res.Readings) == 0 && res.Sources[0].Unreadable == len(values) && res.Sources[0].Code == "ACCESS_DENIED"
	})

	// The sensor drops off; the owner comes back, knowing only the public
	// node, and gets the ciphertext from it: held, not yet readable.
	sensor.Kill()
	start(ownerNS, ownerRepo, "owner", relayVia...)
	eventually(60*time.Second, "the owner holding the ciphertext, from the public node", func() bool {
		run(ownerNS, ownerRepo, "sync")
		res := search(ownerNS, ownerRepo, "humidity")
		return len(res.Readings) == 0 && res.Sources[0].Unreadable == len(values)
	})

	// The sensor comes back behind its NAT: the owner reads everything,
	// through the relay; what it reads it also holds.
	start(sensorNS, sensorRepo, "sensor (back)", relayVia...)
	var read []api.Reading
	eventually(60*time.Second, "the owner reading the readings through the relay", func() bool {
		read = search(ownerNS, ownerRepo, "humidity > 60%").Readings
		if len(read) != len(values) {
			return false
		}
		for _, r := range read {
			if !r.Held {
				return false
			}
		}
		return true
	})
	if out := run(ownerNS, ownerRepo, "search", "humidity > 60%", "--sources", "cellar", "--stats"); !strings.Contains(out, "66.9136") {
		t.Errorf("the owner's --stats:\n%s", out)
	}
	// Still nothing for the public node.
	if res := search(topo.Server, pubRepo, "humidity"); len(res.Readings) != 0 || res.Sources[0].Unreadable != len(values) {
		t.Errorf("the public node after the owner read: %+v", res)
	}

	// No plaintext on the public node: not in its store (any file of its
	// repo; the node never restarted, so what it stored is in its
	// uncompressed write-ahead log), not in what its API answers. The
	// same look at its files does find the readings' ids, which travel
	// in the clear beside the ciphertext: the look is not blind.
	has := func(repo, s string) bool {
		t.Helper()
		found := false
		filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || found {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
				found = true
			}
			return nil
		})
		return found
	}
	for _, r := range read {
		if id, _, _ := strings.Cut(r.Key, "@"); !has(pubRepo, id) {
			t.Fatalf("the public node's files do not show the id %s of a reading it holds: the look is blind", id)
		}
	}
	pubAnswer := run(topo.Server, pubRepo, "--json", "search", "humidity", "--sources", "cellar")
	for _, v := range values {
		if has(pubRepo, v) || strings.Contains(pubAnswer, v) {
			t.Errorf("the public node holds the plaintext value %s", v)
		}
	}
	if has(pubRepo, "cellar/humidity") {
		t.Error("the public node holds the stream's name")
	}
}
