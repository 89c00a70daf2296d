package hass_test

import (
	"context"
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

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/hass"
	"github.com/meshprotocol/mesh/node/nodetest"
)

// broker starts a real Mosquitto broker (the Debian package's binary) on
// a free loopback port for this test alone and stops it at the end.
// Without the binary the test skips, and under CI=true it fails.
func broker(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: no mosquitto binary: install the Debian package mosquitto (.ci/run does)")
		}
		t.Skip("needs the Mosquitto broker: apt-get install mosquitto")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// subscriber is a real MQTT client that records every message under
// topics.
type subscriber struct {
	mu   sync.Mutex
	msgs map[string][]byte
}

func subscribe(t *testing.T, url string, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: map[string][]byte{}}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-sub-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	for _, topic := range topics {
		tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
			s.mu.Lock()
			s.msgs[m.Topic()] = append([]byte(nil), m.Payload()...)
			s.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	return s
}

func (s *subscriber) get(topic string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs[topic]
}

// The bridge on the owner's node asks the basement sensor (granted,
// named) for its readings, decrypted and verified on the owner, and
// publishes Home Assistant's discovery document and the newest reading to
// a real Mosquitto broker; a real subscriber sees both, and a late one
// gets them retained. A new reading is published at the next poll;
// nothing is published twice.
func TestBridgeMosquitto(t *testing.T) {
	url := broker(t)
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 2, 0, node.Config{})
	sensor, owner := nodes[0], nodes[1]
	nodetest.Connect(t, owner, sensor)
	if _, err := sensor.SensorAdd(ctx, api.StreamOptions{Name: "basement/humidity", Unit: "%"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sensor.AccessGrant(ctx, api.GrantOptions{Reader: owner.ID().String(), Streams: []string{"basement/*"}}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{58, 64.2} {
		if _, err := sensor.SensorPush(ctx, api.PushRequest{Stream: "basement/humidity", Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := owner.NameSet(ctx, "basement", []string{sensor.ID().String()}); err != nil {
		t.Fatal(err)
	}
	sid := sensor.ID().String()
	configTopic := "homeassistant/sensor/mesh_" + sid + "/basement_humidity/config"
	stateTopic := "mesh/" + sid + "/basement/humidity/state"
	sub := subscribe(t, url, "homeassistant/#", "mesh/#")

	b, err := hass.New(hass.Config{Broker: url, Sources: "basement", Streams: []string{"basement/*"}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := b.Poll(ctx)
	if err != nil || res.States != 1 || res.Configs != 1 {
		t.Fatalf("first poll: %+v %v", res, err)
	}
	nodetest.Eventually(t, "the discovery and state messages", func() bool { return sub.get(configTopic) != nil && sub.get(stateTopic) != nil })
	var d hass.Discovery
	if err := json.Unmarshal(sub.get(configTopic), &d); err != nil {
		t.Fatal(err)
	}
	if d.StateTopic != stateTopic || d.UnitOfMeasurement != "%" || d.DeviceClass != "humidity" || d.ValueTemplate != "{{ value_json.value }}" ||
		d.UniqueID == "" || d.Device.Name != "basement" || len(d.Device.Identifiers) != 1 || d.StateClass != "measurement" {
		t.Fatalf("discovery document: %+v", d)
	}
	var st struct {
		Value   float64 `json:"value"`
		Anomaly bool    `json:"anomaly"`
		At      string  `json:"at"`
	}
	if err := json.Unmarshal(sub.get(stateTopic), &st); err != nil || st.Value != 64.2 || st.At == "" {
		t.Fatalf("state: %s %v", sub.get(stateTopic), err)
	}

	// Nothing new: nothing published.
	if res, err := b.Poll(ctx); err != nil || res.States != 0 || res.Configs != 0 {
		t.Fatalf("idle poll: %+v %v", res, err)
	}
	if _, err := sensor.SensorPush(ctx, api.PushRequest{Stream: "basement/humidity", Value: 71}); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Poll(ctx); err != nil || res.States != 1 || res.Configs != 0 {
		t.Fatalf("poll after a new reading: %+v %v", res, err)
	}
	nodetest.Eventually(t, "the new state", func() bool {
		return json.Unmarshal(sub.get(stateTopic), &st) == nil && st.Value == 71
	})
	// Retained: a subscriber that comes later gets both at once.
	late := subscribe(t, url, configTopic, stateTopic)
	nodetest.Eventually(t, "retained messages", func() bool { return late.get(configTopic) != nil && late.get(stateTopic) != nil })
}

// Bad configuration is refused before anything connects.
func TestBridgeConfig(t *testing.T) {
	for _, c := range []hass.Config{
		{Broker: "", Sources: "x"},
		{Broker: "127.0.0.1:1883", Sources: "x"},
		{Broker: "tcp://127.0.0.1:1883"},
		{Broker: "tcp://127.0.0.1:1883", Sources: "x", Streams: []string{"Bad//"}},
		{Broker: "tcp://127.0.0.1:1883", Sources: "x", DiscoveryPrefix: "home/#"},
	} {
		if _, err := hass.New(c, nil); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}
