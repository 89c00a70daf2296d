// Command off-grid is the seed's off-grid story on a simulated LoRa
// channel, in one process: three sensors on Meshtastic radios (one of them
// encrypting), two gateways that are MESH nodes with radios of their own
// (mesh daemon --lora), and an owner node on the internet side. The
// sensors sign compact readings with their own keys; each gateway verifies
// what it hears, carries it into MESH, and the owner checks every reading
// as its sensor's, whichever gateway carried it. A forged reading is
// refused at both gateways, and a reading both gateways heard is kept once.
//
// The radios are virtual (node/lora/radiosim) but speak Meshtastic's client
// API on loopback TCP: the gateways run exactly the code a real radio on
// port 4403 or a USB serial port meets.
//
//	go run ./examples/off-grid
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/lora"
	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// ShortFast at 20x: the story takes seconds, the airtimes are real.
	ch := radiosim.New(radiosim.Config{Preset: radiosim.ShortFast, Speed: 20, Seed: 42})
	defer ch.Close()

	dir, err := os.MkdirTemp("", "off-grid-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	owner, err := node.New(ctx, node.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DisableMDNS: true, Topics: []string{node.DefaultLoraTopic}})
	if err != nil {
		return err
	}
	defer owner.Close()
	var gateways []*node.Node
	for i := range 2 {
		r, err := ch.AddRadio(uint32(0x6a00 + i))
		if err != nil {
			return err
		}
		g, err := node.New(ctx, node.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DisableMDNS: true,
			Lora: node.LoraConfig{Radios: []string{r.Addr()}}})
		if err != nil {
			return err
		}
		defer g.Close()
		gateways = append(gateways, g)
		if err := owner.Trust().Set(g.ID().String(), trust.LevelFull, "my gateway"); err != nil {
			return err
		}
		if err := owner.Host().Connect(ctx, peer.AddrInfo{ID: g.ID(), Addrs: g.Host().Addrs()}); err != nil {
			return err
		}
	}
	// Let the gateways reach their radios and the owner's GossipSub mesh form.
	time.Sleep(2 * time.Second)

	type sensor struct {
		name   string
		s      *lora.Sensor
		key    ed25519.PrivateKey
		epoch  []byte
		values []float32
	}
	var sensors []*sensor
	for i, spec := range []struct {
		name, stream, unit string
		fields             []string
		values             []float32
		encrypt            bool
	}{
		{"orchard", "orchard/soil", "%", []string{"moisture", "temp_c"}, []float32{31.5, 9.25}, false},
		{"well", "well/level", "cm", []string{"level"}, []float32{132}, false},
		{"barn", "barn/climate", "c", []string{"temp", "humidity"}, []float32{4.5, 91}, true},
	} {
		r, err := ch.AddRadio(uint32(0x5e00 + i))
		if err != nil {
			return err
		}
		c, err := meshtastic.Dial(ctx, r.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(0x50 + i)}, 32))
		s, err := lora.OpenSensor(lora.SensorConfig{Key: key, StateFile: filepath.Join(dir, spec.name+".json"), Radio: c,
			Preset: radiosim.ShortFast, Streams: []protocol.CompactStream{{Name: spec.stream, Unit: spec.unit, Fields: spec.fields}}})
		if err != nil {
			return err
		}
		x := &sensor{name: spec.name, s: s, key: key, values: spec.values}
		if spec.encrypt {
			x.epoch = bytes.Repeat([]byte{0xe0 + byte(i)}, 32)
		}
		sensors = append(sensors, x)
	}

	want := map[string]string{} // carried record ID -> sensor name
	for _, x := range sensors {
		if err := x.s.Announce(); err != nil {
			return err
		}
		var fs []protocol.CompactField
		for j, v := range x.values {
			fs = append(fs, protocol.CompactField{Index: uint8(j), Value: v})
		}
		seq, err := x.s.Send(0, fs, x.epoch, 1)
		if err != nil {
			return err
		}
		want[protocol.CarriedID(protocol.ShortIDOf(x.key.Public().(ed25519.PublicKey)), seq)] = x.name
		time.Sleep(100 * time.Millisecond)
	}
	// A thief replays the orchard's short ID with its own key.
	thief, err := ch.AddRadio(0x7f00)
	if err != nil {
		return err
	}
	tc, err := meshtastic.Dial(ctx, thief.Addr())
	if err != nil {
		return err
	}
	defer tc.Close()
	forged, _ := protocol.EncodeReading(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x66}, 32)),
		protocol.ReadingParams{Seq: 99, Time: time.Now(), Fields: []protocol.CompactField{{Index: 0, Value: 0}}})
	short := protocol.ShortIDOf(sensors[0].key.Public().(ed25519.PublicKey))
	copy(forged[1:5], short[:])
	if _, err := tc.Send(meshtastic.PortPrivateApp, forged, 1); err != nil {
		return err
	}

	// The owner's view: each reading once, checked as its sensor's.
	deadline := time.Now().Add(60 * time.Second)
	got := map[string]*protocol.SignedLesson{}
	for len(got) < len(want) && time.Now().Before(deadline) {
		for id := range want {
			for _, k := range owner.Store().RemoteKeys(id) {
				if sl, err := owner.Store().Remote(ctx, k); err == nil {
					got[id] = sl
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := slices.Sorted(maps.Keys(want))
	fmt.Fprintf(w, "the owner holds %d of %d readings\n", len(got), len(want))
	for _, id := range ids {
		sl, ok := got[id]
		if !ok {
			fmt.Fprintf(w, "  %s (%s): not arrived\n", id, want[id])
			continue
		}
		rep, err := owner.VerifyKey(ctx, sl.Key())
		if err != nil || rep.Carried == nil {
			return fmt.Errorf("verify %s: %v", sl.Key(), err)
		}
		carrier := "gateway 1"
		if rep.Carried.Carrier == gateways[1].ID().String() {
			carrier = "gateway 2"
		}
		fmt.Fprintf(w, "  %s: %q signed by sensor %s (%s) over LoRa, carried by %s; proof valid: %v\n",
			want[id], sl.Lesson.Content, shortID(rep.Carried.Sensor), want[id], carrier, rep.Carried.Valid)
		for _, x := range sensors {
			if x.name != want[id] || x.epoch == nil {
				continue
			}
			// Only the owner holds the barn's epoch key: the gateways
			// carried ciphertext.
			compact, _, _, _ := protocol.CarriedProof(&sl.Lesson)
			c, err := protocol.DecodeCompact(compact)
			if err != nil {
				return err
			}
			fs, err := c.Open(x.epoch, x.key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "    the owner opens it with the epoch key: temp=%g humidity=%g\n", fs[0].Value, fs[1].Value)
		}
		if n := len(owner.Store().RemoteKeys(id)); n != 1 {
			fmt.Fprintf(w, "    held %d times\n", n)
		}
	}
	// The forgery went on the air last: wait until both gateways heard it.
	for time.Now().Before(deadline) && (gateways[0].Gateway().Stats().Heard < 7 || gateways[1].Gateway().Stats().Heard < 7) {
		time.Sleep(50 * time.Millisecond)
	}
	for i, g := range gateways {
		st := g.Gateway().Stats()
		fmt.Fprintf(w, "gateway %d heard %d, accepted %d, refused forged %d, replays %d, unknown %d\n",
			i+1, st.Heard, st.Accepted, st.Forged, st.Replays, st.Unknown)
	}
	for _, x := range sensors {
		st := x.s.Status()
		fmt.Fprintf(w, "sensor %s: airtime %.0f ms this hour (budget %.0f)\n", x.name, st.AirtimeMs, st.BudgetMs)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 14 {
		return id[:10] + "…" + id[len(id)-4:]
	}
	return id
}
