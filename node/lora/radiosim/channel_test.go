package radiosim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/lora/meshtastic"
)

// TestAirtimeKnownValues checks the airtime formula against values of
// Semtech's LoRa calculator (explicit header, CRC on, 4/5, 8-symbol
// preamble): 10 bytes at SF7/125 kHz take 41.216 ms, at SF12/125 kHz (low
// data rate optimisation on) 991.232 ms.
func TestAirtimeKnownValues(t *testing.T) {
	for _, c := range []struct {
		p    Preset
		n    int
		want float64 // ms
	}{
		{Preset{SF: 7, BandwidthHz: 125e3, CodingRate: 5, Preamble: 8}, 10, 41.216},
		{Preset{SF: 12, BandwidthHz: 125e3, CodingRate: 5, Preamble: 8}, 10, 991.232},
	} {
		got := float64(c.p.Airtime(c.n)) / float64(time.Millisecond)
		if math.Abs(got-c.want) > 0.01 {
			t.Errorf("SF%d, %d bytes: %.3f ms, want %.3f", c.p.SF, c.n, got, c.want)
		}
	}
	// LongFast is the "about 1.07 kbit/s" preset.
	if r := LongFast.BitRate(); math.Abs(r-1074) > 1 {
		t.Errorf("LongFast: %.0f bit/s", r)
	}
	if _, err := PresetByName("Long_Fast"); err != nil {
		t.Error(err)
	}
	if _, err := PresetByName("turbo"); err == nil {
		t.Error("an unknown preset accepted")
	}
}

// dial connects the real Meshtastic client to a virtual radio.
func dial(t *testing.T, r *Radio) *meshtastic.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := meshtastic.Dial(ctx, r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.NodeNum() != r.NodeNum() {
		t.Fatalf("the client says node %#x, the radio is %#x", c.NodeNum(), r.NodeNum())
	}
	return c
}

func recv(t *testing.T, c *meshtastic.Client, within time.Duration) *meshtastic.Packet {
	t.Helper()
	if within == 0 {
		// The callers first wait for the radio's counters to show the
		// event; a packet the radio would have pushed by then is at most
		// a loopback write away.
		time.Sleep(50 * time.Millisecond)
		within = time.Nanosecond
	}
	select {
	case p := <-c.Packets():
		return p
	case <-time.After(within):
		return nil
	}
}

// eventually waits for cond, failing after 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func radios(t *testing.T, ch *Channel, n int) []*Radio {
	t.Helper()
	var rs []*Radio
	for i := range n {
		r, err := ch.AddRadio(uint32(0x100 + i))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// TestFloodAcrossHops: A, B, C in a line (A and C out of range of each
// other); what A's client sends reaches C's client through B's
// rebroadcast, with one hop less, once.
func TestFloodAcrossHops(t *testing.T) {
	ch := New(Config{Preset: ShortFast, Speed: 10, Seed: 1})
	defer ch.Close()
	rs := radios(t, ch, 3)
	ch.Link(rs[0], rs[1])
	ch.Link(rs[1], rs[2])
	ca, cb, cc := dial(t, rs[0]), dial(t, rs[1]), dial(t, rs[2])
	id, err := ca.Send(meshtastic.PortPrivateApp, []byte("reading"), 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*meshtastic.Client{"B": cb, "C": cc} {
		p := recv(t, c, 10*time.Second)
		if p == nil {
			t.Fatalf("%s received nothing", name)
		}
		if p.From != rs[0].NodeNum() || p.ID != id || string(p.Payload) != "reading" || p.Port != meshtastic.PortPrivateApp {
			t.Fatalf("%s received %+v", name, p)
		}
		want := uint32(3)
		if name == "C" {
			want = 2
		}
		if p.HopLimit != want {
			t.Errorf("%s: hop limit %d, want %d", name, p.HopLimit, want)
		}
	}
	// A hears B's rebroadcast of its own packet: a duplicate, not
	// delivered; C's rebroadcast reaches B, a duplicate too.
	eventually(t, "A and B hear the rebroadcasts", func() bool {
		return rs[0].Stats().Duplicates == 1 && rs[1].Stats().Duplicates == 1
	})
	if p := recv(t, ca, 0); p != nil {
		t.Fatalf("A's client got its own packet back: %+v", p)
	}
	if p := recv(t, cc, 0); p != nil {
		t.Fatalf("C delivered a packet twice: %+v", p)
	}
	if s := rs[1].Stats(); s.Rebroadcasts != 1 || s.Received != 1 {
		t.Errorf("B: %+v", s)
	}
	if s := rs[0].Stats(); s.Sent != 1 || s.Airtime <= 0 || rs[0].DutyCycle() <= 0 {
		t.Errorf("A: %+v, duty cycle %v", s, rs[0].DutyCycle())
	}
}

// TestHiddenTerminalsCollide: A and C cannot hear each other, so both
// transmit at once and B, which hears both, decodes neither.
func TestHiddenTerminalsCollide(t *testing.T) {
	ch := New(Config{Preset: LongFast, Speed: 1, Seed: 2})
	defer ch.Close()
	rs := radios(t, ch, 3)
	ch.Link(rs[0], rs[1])
	ch.Link(rs[1], rs[2])
	ca, cb, cc := dial(t, rs[0]), dial(t, rs[1]), dial(t, rs[2])
	// A 200-byte payload is about 1.8 s on air at LongFast: both are in
	// the air together however the two sends are scheduled.
	if _, err := ca.Send(meshtastic.PortPrivateApp, make([]byte, 200), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Send(meshtastic.PortPrivateApp, make([]byte, 200), 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both transmissions end at B", func() bool { s := rs[1].Stats(); return s.Collisions+s.Received == 2 })
	if s := rs[1].Stats(); s.Collisions != 2 {
		t.Fatalf("B: %+v, want 2 collisions", s)
	}
	if p := recv(t, cb, 0); p != nil {
		t.Fatalf("B decoded a packet through a collision: %+v", p)
	}
}

// TestLossAndListenBeforeTalk: with loss 1 nothing is received; radios
// that hear each other take turns instead of colliding.
func TestLossAndListenBeforeTalk(t *testing.T) {
	lossy := New(Config{Preset: ShortFast, Speed: 10, Loss: 1, Seed: 3})
	defer lossy.Close()
	rs := radios(t, lossy, 2)
	ca, cb := dial(t, rs[0]), dial(t, rs[1])
	ca.Send(meshtastic.PortPrivateApp, []byte("x"), 1)
	eventually(t, "the packet is lost", func() bool { return rs[1].Stats().Lost == 1 })
	if p := recv(t, cb, 0); p != nil {
		t.Fatalf("received through loss 1: %+v", p)
	}

	ch := New(Config{Preset: ShortFast, Speed: 5, Seed: 4})
	defer ch.Close()
	rs = radios(t, ch, 3)
	c0, c1, c2 := dial(t, rs[0]), dial(t, rs[1]), dial(t, rs[2])
	for i := range 3 {
		c0.Send(meshtastic.PortPrivateApp, []byte{0, byte(i)}, 0)
		c1.Send(meshtastic.PortPrivateApp, []byte{1, byte(i)}, 0)
	}
	got := map[[2]byte]bool{}
	for len(got) < 6 {
		p := recv(t, c2, 20*time.Second)
		if p == nil {
			t.Fatalf("radio 2 received %d of 6; stats %+v", len(got), rs[2].Stats())
		}
		got[[2]byte{p.Payload[0], p.Payload[1]}] = true
	}
	if s := rs[2].Stats(); s.Collisions != 0 {
		t.Errorf("radios in range of each other collided: %+v", s)
	}
}
