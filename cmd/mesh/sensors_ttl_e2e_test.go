package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node/api"
)

// TestSensorReadingsExpireEverywhere: a reading's TTL ends it on every
// holder. Three real daemons on loopback: the garage sensor, the owner's
// phone (granted; follows and trusts the sensor, so its store holds the
// ciphertext) and a public node (not granted; follows and trusts the
// sensor too: it holds the ciphertext and cannot read it). Once the reading's TTL has passed the
// sensor no longer answers it, the phone reads it neither from the sensor
// nor from its own copy with the sensor away, and the public node holds
// nothing of it any more.
func TestSensorReadingsExpireEverywhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pi, phone, public := filepath.Join(dir, "pi"), filepath.Join(dir, "phone"), filepath.Join(dir, "public")
	dpi := startDaemon(t, pi)
	startDaemon(t, phone)
	startDaemon(t, public)
	piID, phoneID := idOf(t, pi), idOf(t, phone)
	for _, repo := range []string{phone, public} {
		mustMesh(t, repo, "", "connect", piID.Addrs[0])
		mustMesh(t, repo, "", "follow", piID.NodeID)
		mustMesh(t, repo, "", "trust", "add", piID.NodeID)
		mustMesh(t, repo, "", "name", "set", "garage", piID.NodeID)
	}
	search := func(repo string, args ...string) *api.SensorSearchResult {
		t.Helper()
		var res api.SensorSearchResult
		out := mustMesh(t, repo, "", append([]string{"--json", "search"}, args...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Sources) != 1 {
			t.Fatalf("search %v: %v\n%s", args, err, out)
		}
		return &res
	}

	// A short TTL, long enough for the copies to travel on a slow machine.
	mustMesh(t, pi, "", "sensor", "add", "garage/temperature", "--unit", "°C", "--ttl", "10s")
	mustMesh(t, pi, "", "access", "grant", phoneID.NodeID, "--stream", "garage/*")
	mustMesh(t, pi, "", "sensor", "push", "garage/temperature", "3.5")

	// Before the TTL: the phone reads it and holds its ciphertext; the
	// public node holds the ciphertext and cannot read it.
	eventually(t, "the phone's copy of the reading", func() bool {
		mesh(t, phone, "", "sync")
		res := search(phone, "temperature", "--sources", "garage")
		return len(res.Readings) == 1 && res.Readings[0].Value == 3.5 && res.Readings[0].Held
	})
	eventually(t, "the public node's copy of the ciphertext", func() bool {
		mesh(t, public, "", "sync")
		res := search(public, "temperature", "--sources", "garage")
		return len(res.Readings) == 0 && res.Sources[0].Code == "ACCESS_DENIED" && res.Sources[0].Unreadable == 1
	})

	// After the TTL: gone from the sensor's answers and streams.
	eventually(t, "the reading's expiry on the sensor", func() bool {
		var streams []api.Stream
		out := mustMesh(t, pi, "", "--json", "sensor", "list")
		return json.Unmarshal([]byte(out), &streams) == nil && len(streams) == 1 && streams[0].Readings == 0
	})
	if res := search(phone, "temperature", "--sources", "garage"); len(res.Readings) != 0 || res.Sources[0].Unreadable != 0 {
		t.Fatalf("phone after the TTL: %+v", res)
	}
	if res := search(public, "temperature", "--sources", "garage"); len(res.Readings) != 0 || res.Sources[0].Unreadable != 0 {
		t.Fatalf("public node after the TTL: %+v", res)
	}
	// With the sensor away, the phone's own copy is gone too: nothing is
	// answered from what it holds.
	dpi.kill()
	res := search(phone, "temperature", "--sources", "garage")
	if len(res.Readings) != 0 || res.Sources[0].Unreadable != 0 || res.Sources[0].Code == "" {
		t.Fatalf("phone after the TTL, the sensor away: %+v", res)
	}
	if out := mustMesh(t, phone, "", "search", "temperature", "--sources", "garage"); strings.Contains(out, "3.5") {
		t.Fatalf("phone after the TTL, text:\n%s", out)
	}
}
