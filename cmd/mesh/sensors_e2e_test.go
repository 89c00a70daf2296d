package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node/api"
)

// TestSovereignIoTCommands runs the commands as shown, against
// real daemons on loopback: a basement sensor, a phone (the owner) and a
// tenant. The sensor makes a stream and pushes readings; the phone and
// the tenant are granted (the tenant until a date); both name the sensor
// and ask it "humidity > 60%"; the tenant is revoked and can read neither
// the source's answer nor the next reading; the phone reads on, --stats
// included. The sensor is killed with SIGKILL after acknowledging a push:
// the reading is there after a restart.
func TestSovereignIoTCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pi, phone, tenant := filepath.Join(dir, "pi"), filepath.Join(dir, "phone"), filepath.Join(dir, "tenant")
	dpi := startDaemon(t, pi)
	startDaemon(t, phone)
	startDaemon(t, tenant)
	piID, phoneID, tenantID := idOf(t, pi), idOf(t, phone), idOf(t, tenant)
	mustMesh(t, phone, "", "connect", piID.Addrs[0])
	mustMesh(t, tenant, "", "connect", piID.Addrs[0])

	// On the basement Pi.
	mustMesh(t, pi, "", "sensor", "add", "basement/humidity", "--unit", "%", "--ttl", "7d")
	for _, v := range []string{"58", "64.2", "61"} {
		mustMesh(t, pi, "", "sensor", "push", "basement/humidity", v)
	}
	mustMesh(t, pi, "", "access", "grant", phoneID.NodeID, "--stream", "basement/*")
	mustMesh(t, pi, "", "access", "grant", tenantID.NodeID, "--stream", "basement/humidity", "--until", "2099-06-01")
	var grants []api.Grant
	if err := json.Unmarshal([]byte(mustMesh(t, pi, "", "--json", "access", "list")), &grants); err != nil || len(grants) != 2 {
		t.Fatalf("access list: %v %v", grants, err)
	}
	if out := mustMesh(t, pi, "", "access", "list"); !strings.Contains(out, phoneID.NodeID) || !strings.Contains(out, "2099-06-01") {
		t.Fatalf("access list text:\n%s", out)
	}

	// On the phone and the tenant's laptop.
	search := func(repo string, args ...string) *api.SensorSearchResult {
		t.Helper()
		var res api.SensorSearchResult
		out := mustMesh(t, repo, "", append([]string{"--json", "search"}, args...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("search %v: %v\n%s", args, err, out)
		}
		return &res
	}
	for _, repo := range []string{phone, tenant} {
		mustMesh(t, repo, "", "name", "set", "basement", piID.NodeID)
	}
	if out := mustMesh(t, phone, "", "name", "list"); !strings.Contains(out, "basement") || !strings.Contains(out, piID.NodeID) {
		t.Fatalf("name list:\n%s", out)
	}
	res := search(phone, "humidity > 60%", "--sources", "basement")
	if len(res.Readings) != 2 || res.Readings[0].Value != 61 || res.Readings[1].Value != 64.2 {
		t.Fatalf("phone: humidity > 60%%: %+v", res)
	}
	if out := mustMesh(t, phone, "", "search", "humidity > 60%", "--sources", "basement"); !strings.Contains(out, "64.2") || !strings.Contains(out, "2 readings from 1 source") {
		t.Fatalf("phone, text:\n%s", out)
	}
	if res := search(tenant, "humidity > 60%", "--sources", "basement"); len(res.Readings) != 2 {
		t.Fatalf("tenant before revoke: %+v", res)
	}

	// Revoke: instant; the next reading is unreadable to the tenant.
	mustMesh(t, pi, "", "access", "revoke", tenantID.NodeID)
	mustMesh(t, pi, "", "sensor", "push", "basement/humidity", "72.5")
	res = search(tenant, "humidity > 60%", "--sources", "basement")
	if len(res.Readings) != 0 || res.Sources[0].Code != "ACCESS_DENIED" {
		t.Fatalf("tenant after revoke: %+v", res)
	}
	r := mesh(t, tenant, "", "search", "humidity > 60%", "--sources", "basement")
	if r.code != 0 || !strings.Contains(r.stdout, "ACCESS_DENIED") && !strings.Contains(r.stdout, "granted") {
		t.Fatalf("tenant after revoke, text: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res = search(phone, "humidity > 60%", "--sources", "basement", "--stats")
	if len(res.Readings) != 3 || len(res.Stats) != 1 || res.Stats[0].Last != 72.5 || res.Stats[0].Max != 72.5 || res.Stats[0].Min != 61 {
		t.Fatalf("phone after the tenant's revoke, --stats: %+v", res)
	}
	if out := mustMesh(t, phone, "", "search", "humidity last 24h", "--sources", "basement", "--stats"); !strings.Contains(out, "basement/humidity") || !strings.Contains(out, "72.5") {
		t.Fatalf("--stats text:\n%s", out)
	}

	// kill -9 right after an acknowledged push loses nothing.
	mustMesh(t, pi, "", "sensor", "push", "basement/humidity", "80.25")
	dpi.kill()
	startDaemon(t, pi)
	mustMesh(t, phone, "", "connect", idOf(t, pi).Addrs[0])
	res = search(phone, "humidity > 80", "--sources", "basement")
	if len(res.Readings) != 1 || res.Readings[0].Value != 80.25 {
		t.Fatalf("after kill -9: %+v", res)
	}
	var streams []api.Stream
	if err := json.Unmarshal([]byte(mustMesh(t, pi, "", "--json", "sensor", "list")), &streams); err != nil || len(streams) != 1 || streams[0].Readings != 5 || streams[0].Epochs != 2 {
		t.Fatalf("sensor list after kill -9: %+v %v", streams, err)
	}

	// Bad input: a clear error, nothing changed.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sensor", "push", "basement/humidity", "wet"}, 2, "want a number"},
		{[]string{"sensor", "push", "garage/nothing", "1"}, 1, "no stream garage/nothing"},
		{[]string{"sensor", "add", "Basement//x"}, 2, "stream name"},
		{[]string{"access", "grant", "bob"}, 2, "NODEID"},
		{[]string{"access", "grant", phoneID.NodeID, "--until", "yesterday-ish"}, 2, "--until"},
		{[]string{"access", "revoke", tenantID.NodeID}, 1, "no grant"},
		{[]string{"name", "set", "Home!", piID.NodeID}, 1, "name"},
		{[]string{"name", "remove", "nothing"}, 1, "no name"},
	} {
		repo := pi
		if c.args[0] == "name" {
			repo = phone
		}
		r := mesh(t, repo, "", c.args...)
		if r.code != c.code || !strings.Contains(r.stderr+r.stdout, c.want) {
			t.Errorf("mesh %v: exit %d (want %d)\n%s%s", c.args, r.code, c.code, r.stdout, r.stderr)
		}
	}
	if r := mesh(t, phone, "", "search", "humidity >", "--sources", "basement"); r.code == 0 {
		t.Errorf("a question that is not one: exit 0\n%s", r.stdout)
	}
	mustMesh(t, phone, "", "name", "remove", "basement")
	if _, err := os.Stat(pi); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonProfileSensor: mesh daemon --profile sensor runs a DHT client
// that serves streams as any daemon does; a profile it does not know, or a
// directory with it, is a usage error before anything starts.
func TestDaemonProfileSensor(t *testing.T) {
	t.Parallel()
	repo := filepath.Join(t.TempDir(), "pi")
	for _, bad := range [][]string{{"--profile", "tiny"}, {"--profile", "sensor", "--directory"}} {
		r := mesh(t, repo, "", append([]string{"daemon", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"}, bad...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "--profile") {
			t.Errorf("daemon %v: exit %d\n%s%s", bad, r.code, r.stdout, r.stderr)
		}
	}
	startDaemonWith(t, repo, "--profile", "sensor")
	var st api.DHTStatus
	if err := json.Unmarshal([]byte(mustMesh(t, repo, "", "--json", "directory", "dht")), &st); err != nil || st.Mode != "client" {
		t.Fatalf("the DHT under --profile sensor: %+v %v", st, err)
	}
	mustMesh(t, repo, "", "sensor", "add", "garage/temperature", "--unit", "°C")
	if out := mustMesh(t, repo, "", "sensor", "push", "garage/temperature", "4.5"); !strings.Contains(out, "4.5") {
		t.Fatalf("push under --profile sensor:\n%s", out)
	}

	// The same from config.json's "profile", which --profile overrides.
	cfgRepo := filepath.Join(t.TempDir(), "pi2")
	writeConfig := func(profile string) {
		t.Helper()
		if err := os.MkdirAll(cfgRepo, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgRepo, ConfigFile), []byte(`{"bootstrap":[],"topics":[],"profile":"`+profile+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("tiny")
	r := mesh(t, cfgRepo, "", "daemon", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0")
	if r.code != 2 || !strings.Contains(r.stderr, "config.json's profile \"tiny\"") {
		t.Errorf("config.json profile tiny: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	writeConfig("sensor")
	startDaemonWith(t, cfgRepo)
	st = api.DHTStatus{}
	if err := json.Unmarshal([]byte(mustMesh(t, cfgRepo, "", "--json", "directory", "dht")), &st); err != nil || st.Mode != "client" {
		t.Fatalf("the DHT under config.json's profile sensor: %+v %v", st, err)
	}
}

// TestSovereignIoTQuestions runs the other questions against real
// daemons: two sensors (the garage's temperature and power, the
// basement's humidity) and a phone that names them and a group of both.
// "temperature last 24h" asked of garage,basement finds the garage's
// readings only; "power anomaly" asked of the group finds the power spike
// the garage marked.
func TestSovereignIoTQuestions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garage, basement, phone := filepath.Join(dir, "garage"), filepath.Join(dir, "basement"), filepath.Join(dir, "phone")
	for _, r := range []string{garage, basement, phone} {
		startDaemon(t, r)
	}
	garageID, basementID, phoneID := idOf(t, garage), idOf(t, basement), idOf(t, phone)
	mustMesh(t, phone, "", "connect", garageID.Addrs[0])
	mustMesh(t, phone, "", "connect", basementID.Addrs[0])

	mustMesh(t, garage, "", "sensor", "add", "garage/temperature", "--unit", "°C", "--ttl", "7d")
	mustMesh(t, garage, "", "sensor", "add", "garage/power", "--unit", "W", "--anomaly-min", "5")
	mustMesh(t, basement, "", "sensor", "add", "basement/humidity", "--unit", "%")
	for _, v := range []string{"3.5", "4.25"} {
		mustMesh(t, garage, "", "sensor", "push", "garage/temperature", v)
	}
	for _, v := range []string{"410", "425", "418", "432", "405", "421", "5200"} {
		mustMesh(t, garage, "", "sensor", "push", "garage/power", v)
	}
	mustMesh(t, basement, "", "sensor", "push", "basement/humidity", "64.2")
	mustMesh(t, garage, "", "access", "grant", phoneID.NodeID)
	mustMesh(t, basement, "", "access", "grant", phoneID.NodeID, "--stream", "basement/*")

	mustMesh(t, phone, "", "name", "set", "garage", garageID.NodeID)
	mustMesh(t, phone, "", "name", "set", "basement", basementID.NodeID)
	mustMesh(t, phone, "", "name", "set", "home", "garage", "basement")
	var names []api.Name
	if err := json.Unmarshal([]byte(mustMesh(t, phone, "", "--json", "name", "list")), &names); err != nil || len(names) != 3 {
		t.Fatalf("name list: %+v %v", names, err)
	}
	search := func(args ...string) *api.SensorSearchResult {
		t.Helper()
		var res api.SensorSearchResult
		out := mustMesh(t, phone, "", append([]string{"--json", "search"}, args...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("search %v: %v\n%s", args, err, out)
		}
		return &res
	}
	res := search("temperature last 24h", "--sources", "garage,basement")
	if len(res.Sources) != 2 || len(res.Readings) != 2 || res.Readings[0].Stream != "garage/temperature" || res.Readings[0].Value != 4.25 {
		t.Fatalf("temperature last 24h: %+v", res)
	}
	res = search("power anomaly", "--sources", "home")
	if len(res.Sources) != 2 || len(res.Readings) != 1 || res.Readings[0].Value != 5200 || !res.Readings[0].Anomaly {
		t.Fatalf("power anomaly: %+v", res)
	}
	if out := mustMesh(t, phone, "", "search", "power anomaly", "--sources", "home"); !strings.Contains(out, "5200") || !strings.Contains(out, "anomaly") {
		t.Fatalf("power anomaly, text:\n%s", out)
	}
}
