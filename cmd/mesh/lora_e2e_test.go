package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
)

// TestLoraGatewayE2E: a sensor on a (simulated) Meshtastic radio, a real
// `mesh daemon --lora tcp://…` gateway on another radio, and an owner
// daemon that follows the lora topic and trusts the gateway. The sensor's
// reading reaches the owner; `mesh verify` there says who signed it (the
// sensor, over LoRa) and who carried it (the gateway); a forged reading
// never enters MESH.
// loadEd25519 reads a repo's node key.
func loadEd25519(repo string) (ed25519.PrivateKey, error) {
	k, err := node.LoadKey(repo)
	if err != nil {
		return nil, err
	}
	raw, err := k.Raw()
	return ed25519.PrivateKey(raw), err
}

func TestLoraGatewayE2E(t *testing.T) {
	t.Parallel()
	ch := radiosim.New(radiosim.Config{Preset: radiosim.ShortFast, Speed: 10, Seed: 11})
	defer ch.Close()
	gwRadio, err := ch.AddRadio(0x6a01)
	if err != nil {
		t.Fatal(err)
	}
	sensorRadio, err := ch.AddRadio(0x5e01)
	if err != nil {
		t.Fatal(err)
	}

	rg, ro := filepath.Join(t.TempDir(), "gateway"), filepath.Join(t.TempDir(), "owner")
	startDaemonWith(t, rg, "--lora", gwRadio.Addr())
	startDaemon(t, ro)
	gw := idOf(t, rg)
	mustMesh(t, ro, "", "follow", "lora")
	mustMesh(t, ro, "", "trust", "add", gw.NodeID)
	mustMesh(t, ro, "", "connect", gw.Addrs[0])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	radio, err := meshtastic.Dial(ctx, sensorRadio.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer radio.Close()
	sensor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, 32))
	sensorID, _ := protocol.NodeID(sensor.Public().(ed25519.PublicKey))
	ann, err := protocol.EncodeAnnouncement(sensor, protocol.AnnouncementParams{Seq: 1, Time: time.Now(),
		Streams: []protocol.CompactStream{{Name: "barn/climate", Unit: "c", Fields: []string{"temp", "humidity"}}}})
	if err != nil {
		t.Fatal(err)
	}
	reading, err := protocol.EncodeReading(sensor, protocol.ReadingParams{Seq: 2, Time: time.Now(),
		Fields: []protocol.CompactField{{Index: 0, Value: 4.5}, {Index: 1, Value: 91}}})
	if err != nil {
		t.Fatal(err)
	}
	// A forgery: the sensor's short ID, seq 3, signed by another key.
	thief := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x66}, 32))
	forged, _ := protocol.EncodeReading(thief, protocol.ReadingParams{Seq: 3, Time: time.Now(), Fields: []protocol.CompactField{{Index: 0, Value: 99}}})
	short := protocol.ShortIDOf(sensor.Public().(ed25519.PublicKey))
	copy(forged[1:5], short[:])
	for _, b := range [][]byte{ann, reading, forged} {
		if _, err := radio.Send(meshtastic.PortPrivateApp, b, 1); err != nil {
			t.Fatal(err)
		}
	}

	key := protocol.CarriedID(short, 2) + "@" + gw.NodeID
	eventually(t, "the sensor's reading to reach the owner", func() bool {
		return strings.Contains(mustMesh(t, ro, "", "list", "--from", gw.NodeID), key)
	})
	out := mustMesh(t, ro, "", "verify", key)
	if !strings.Contains(out, "✓ Signed by sensor "+sensorID+" over LoRa (barn/climate, seq 2), carried by gateway "+gw.NodeID) {
		t.Fatalf("verify %s:\n%s", key, out)
	}
	var rep struct {
		Carried struct {
			Valid  bool   `json:"valid"`
			Sensor string `json:"sensor"`
			Via    string `json:"via"`
		} `json:"carried"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ro, "", "--json", "verify", key)), &rep); err != nil || !rep.Carried.Valid ||
		rep.Carried.Sensor != sensorID || !strings.HasPrefix(rep.Carried.Via, "lora:") {
		t.Fatalf("verify --json: %+v %v", rep, err)
	}
	if out := mustMesh(t, ro, "", "get", key); !strings.Contains(out, "humidity=91") {
		t.Fatalf("get %s:\n%s", key, out)
	}
	// The forgery went nowhere: neither stored at the gateway nor at the owner.
	forgedKey := protocol.CarriedID(short, 3)
	for _, r := range []string{rg, ro} {
		if out := mustMesh(t, r, "", "list", "--remote"); strings.Contains(out, forgedKey) {
			t.Fatalf("the forged reading was stored:\n%s", out)
		}
	}
	if out := mustMesh(t, rg, "", "list"); strings.Contains(out, forgedKey) || !strings.Contains(out, protocol.CarriedID(short, 2)) {
		t.Fatalf("gateway list:\n%s", out)
	}
	// A sensor run by the CLI on a third radio: mesh lora send signs with
	// its repo's node key; the reading verifies as that node's.
	sensorRadio2, err := ch.AddRadio(0x5e02)
	if err != nil {
		t.Fatal(err)
	}
	rs := filepath.Join(t.TempDir(), "sensor")
	mustMesh(t, rs, "", "init")
	if out := mustMesh(t, rs, "", "lora", "send", "--radio", sensorRadio2.Addr(), "--stream", "well/level", "--unit", "cm", "level=132"); !strings.Contains(out, "sent well/level reading seq 2") {
		t.Fatalf("lora send:\n%s", out)
	}
	priv, err := loadEd25519(rs)
	if err != nil {
		t.Fatal(err)
	}
	sensor2, _ := protocol.NodeID(priv.Public().(ed25519.PublicKey))
	key2 := protocol.CarriedID(protocol.ShortIDOf(priv.Public().(ed25519.PublicKey)), 2) + "@" + gw.NodeID
	eventually(t, "the CLI sensor's reading to reach the owner", func() bool {
		return strings.Contains(mustMesh(t, ro, "", "list", "--from", gw.NodeID), key2)
	})
	if out := mustMesh(t, ro, "", "verify", key2); !strings.Contains(out, "✓ Signed by sensor "+sensor2+" over LoRa (well/level, seq 2)") {
		t.Fatalf("verify %s:\n%s", key2, out)
	}
	if out := mustMesh(t, rs, "", "lora", "status"); !strings.Contains(out, "stream 0: well/level (cm) fields level") || !strings.Contains(out, "sent 2 records, last seq 2") {
		t.Fatalf("lora status:\n%s", out)
	}

	// A bad radio address is a usage error naming the flag.
	if r := mesh(t, filepath.Join(t.TempDir(), "x"), "", "daemon", "--lora", "http://radio"); r.code != 2 || !strings.Contains(r.stderr, "--lora") {
		t.Fatalf("daemon --lora http://radio: %+v", r)
	}
}
