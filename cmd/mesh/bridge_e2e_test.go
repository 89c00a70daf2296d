package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mosquitto starts the Debian package's Mosquitto broker on a free
// loopback port for this test alone. Without the binary the test skips,
// and under CI=true it fails (.ci/run installs it).
func mosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			bin, err = "/usr/sbin/mosquitto", nil
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: no mosquitto binary: install the Debian package mosquitto (.ci/run does)")
		}
		t.Skip("needs the Mosquitto broker: apt-get install mosquitto")
	}
	port := freePort(t)
	port = port[strings.LastIndex(port, ":")+1:]
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	eventually(t, "mosquitto listening on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "tcp://" + addr
}

// TestBridgeMQTTCommand runs `mesh bridge mqtt --once` on the owner's
// daemon against a real Mosquitto broker: a real MQTT subscriber gets
// Home Assistant's discovery document and the newest reading of the
// basement sensor, decrypted on the owner.
func TestBridgeMQTTCommand(t *testing.T) {
	t.Parallel()
	url := mosquitto(t)
	dir := t.TempDir()
	pi, phone := filepath.Join(dir, "pi"), filepath.Join(dir, "phone")
	startDaemon(t, pi)
	startDaemon(t, phone)
	piID, phoneID := idOf(t, pi), idOf(t, phone)
	mustMesh(t, phone, "", "connect", piID.Addrs[0])
	mustMesh(t, pi, "", "sensor", "add", "basement/humidity", "--unit", "%")
	mustMesh(t, pi, "", "access", "grant", phoneID.NodeID, "--stream", "basement/*")
	mustMesh(t, pi, "", "sensor", "push", "basement/humidity", "58")
	mustMesh(t, pi, "", "sensor", "push", "basement/humidity", "64.2")
	mustMesh(t, phone, "", "name", "set", "basement", piID.NodeID)

	var mu sync.Mutex
	got := map[string][]byte{}
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("e2e-sub-%d", time.Now().UnixNano())))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("#", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got[m.Topic()] = append([]byte(nil), m.Payload()...)
		mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	var res struct {
		States  int `json:"states"`
		Configs int `json:"configs"`
	}
	out := mustMesh(t, phone, "", "--json", "bridge", "mqtt", "--broker", url, "--sources", "basement", "--stream", "basement/*", "--once")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.States != 1 || res.Configs != 1 {
		t.Fatalf("bridge --once: %v\n%s", err, out)
	}
	config := "homeassistant/sensor/mesh_" + piID.NodeID + "/basement_humidity/config"
	state := "mesh/" + piID.NodeID + "/basement/humidity/state"
	get := func(topic string) []byte { mu.Lock(); defer mu.Unlock(); return got[topic] }
	eventually(t, "the discovery document and the state", func() bool { return get(config) != nil && get(state) != nil })
	var d struct {
		StateTopic string `json:"state_topic"`
		Unit       string `json:"unit_of_measurement"`
	}
	var st struct {
		Value float64 `json:"value"`
	}
	if json.Unmarshal(get(config), &d) != nil || d.StateTopic != state || d.Unit != "%" {
		t.Fatalf("discovery: %s", get(config))
	}
	if json.Unmarshal(get(state), &st) != nil || st.Value != 64.2 {
		t.Fatalf("state: %s", get(state))
	}
	if out := mustMesh(t, phone, "", "bridge", "mqtt", "--broker", url, "--sources", "basement", "--once"); !strings.Contains(out, "published 1 states and 1 discovery documents") {
		t.Fatalf("bridge --once, text:\n%s", out)
	}
}
