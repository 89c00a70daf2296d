package lora

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// owner is the MESH side of the tests: it keeps what the gateways carry
// by record ID and sensor, as MESH keys a lesson (id@node), and counts
// what was carried twice. It can be offline.
type owner struct {
	mu      sync.Mutex
	offline bool
	got     map[string]*Carried
	twice   int
}

func newOwner() *owner { return &owner{got: map[string]*Carried{}} }

var errOffline = errors.New("no route to MESH")

func (o *owner) Carry(_ context.Context, c *Carried) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.offline {
		return errOffline
	}
	k := c.ID() + "@" + c.Sensor
	if _, ok := o.got[k]; ok {
		o.twice++
		return nil
	}
	o.got[k] = c
	return nil
}

func (o *owner) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.got)
}

func (o *owner) setOffline(v bool) {
	o.mu.Lock()
	o.offline = v
	o.mu.Unlock()
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testSensor is a sensor: its key, its sequence numbers, its stream.
type testSensor struct {
	priv ed25519.PrivateKey
	seq  uint32
	key  []byte // epoch key of its stream, if encrypted
}

func newSensor(i int, encrypted bool) *testSensor {
	s := &testSensor{priv: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(0x30 + i)}, 32))}
	if encrypted {
		s.key = bytes.Repeat([]byte{byte(0x90 + i)}, 32)
	}
	return s
}

func (s *testSensor) nodeID() string {
	id, _ := protocol.NodeID(s.priv.Public().(ed25519.PublicKey))
	return id
}

func (s *testSensor) announce(t *testing.T) []byte {
	t.Helper()
	s.seq++
	b, err := protocol.EncodeAnnouncement(s.priv, protocol.AnnouncementParams{Seq: s.seq, Time: time.Now(),
		Streams: []protocol.CompactStream{{Name: "field/soil", Unit: "%", Fields: []string{"moisture", "temp_c", "battery"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *testSensor) reading(t *testing.T, v float32) []byte {
	t.Helper()
	s.seq++
	b, err := protocol.EncodeReading(s.priv, protocol.ReadingParams{Seq: s.seq, Time: time.Now(), Key: s.key, Epoch: 1,
		Fields: []protocol.CompactField{{Index: 0, Value: v}, {Index: 1, Value: 11.5}, {Index: 2, Value: 3.7}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGatewaysOverRadio is the scene on the simulated channel:
// five sensors (one encrypted), two gateways that both hear every sensor,
// an owner. Every reading reaches the owner once, verified; the encrypted
// one crosses the gateways unread; the same reading heard by both
// gateways and over rebroadcasts is carried once.
func TestGatewaysOverRadio(t *testing.T) {
	ch := radiosim.New(radiosim.Config{Preset: radiosim.ShortFast, Speed: 20, Seed: 7})
	defer ch.Close()
	o := newOwner()
	var gws []*Gateway
	for i := range 2 {
		r, err := ch.AddRadio(uint32(0x6a000 + i))
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, startGateway(t, Config{Radios: []string{r.Addr()}, Meta: openStore(t, ""), Sink: o}))
	}
	eventually(t, "gateways connect to their radios", func() bool { return gws[0].Stats().Radios == 1 && gws[1].Stats().Radios == 1 })

	const sensors, readings = 5, 3
	var clients []*meshtastic.Client
	var ss []*testSensor
	for i := range sensors {
		r, err := ch.AddRadio(uint32(0x5e000 + i))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := meshtastic.Dial(ctx, r.Addr())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		ss = append(ss, newSensor(i, i == 0))
	}
	for i, s := range ss {
		if _, err := clients[i].Send(meshtastic.PortPrivateApp, s.announce(t), 2); err != nil {
			t.Fatal(err)
		}
	}
	for n := range readings {
		for i, s := range ss {
			if _, err := clients[i].Send(meshtastic.PortPrivateApp, s.reading(t, float32(40+n)), 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := sensors * (1 + readings)
	eventually(t, fmt.Sprintf("the owner has %d records", want), func() bool { return o.count() == want })
	time.Sleep(200 * time.Millisecond) // late copies from the other gateway
	if o.count() != want {
		t.Fatalf("the owner has %d records, want %d", o.count(), want)
	}
	for _, g := range gws {
		if st := g.Stats(); st.Forged+st.Replays+st.Malformed+st.Unknown != 0 {
			t.Errorf("a clean channel refused records: %+v", st)
		}
	}
	// Both gateways hear every sensor: each record was carried twice and
	// kept once.
	eventually(t, "both gateways carried every record", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.twice == want
	})
	for k, c := range o.got {
		d, err := protocol.DecodeCompact(c.Raw)
		if err != nil {
			t.Fatal(k, err)
		}
		var s *testSensor
		for _, x := range ss {
			if x.nodeID() == c.Sensor {
				s = x
			}
		}
		if s == nil || d.Verify(s.priv.Public().(ed25519.PublicKey)) != nil {
			t.Fatalf("%s: not verifiable as its sensor's", k)
		}
		if c.Kind != protocol.CompactReading {
			continue
		}
		if c.Stream != "field/soil" || c.Unit != "%" || len(c.Announcement) == 0 {
			t.Errorf("%s: stream %q unit %q", k, c.Stream, c.Unit)
		}
		if s.key != nil {
			if !c.Encrypted || c.Values != nil {
				t.Errorf("%s: the gateway read an encrypted reading: %+v", k, c.Values)
			}
			fs, err := d.Open(s.key, s.priv.Public().(ed25519.PublicKey))
			if err != nil || fs[1].Value != 11.5 {
				t.Errorf("%s: the owner cannot open it: %v", k, err)
			}
		} else if c.Values["temp_c"] != 11.5 || c.Values["battery"] != float64(float32(3.7)) {
			t.Errorf("%s: values %v", k, c.Values)
		}
	}
}

// TestGatewayRefuses: forged, replayed and unknown-sender records are
// refused and counted; an identical copy is a duplicate, not a replay; a
// record from an unknown sender is taken once its announcement arrives.
func TestGatewayRefuses(t *testing.T) {
	ctx := context.Background()
	o := newOwner()
	g := startGateway(t, Config{Meta: openStore(t, ""), Sink: o})
	s := newSensor(1, false)

	early := s.reading(t, 1) // before any announcement: held aside
	if err := g.Handle(ctx, early, "test"); !errors.Is(err, protocol.ErrUnknownSender) {
		t.Fatalf("unknown sender: %v", err)
	}
	ann := s.announce(t)
	if err := g.Handle(ctx, ann, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the early reading is taken once the sensor is known", func() bool { return o.count() == 2 })

	r := s.reading(t, 2)
	if err := g.Handle(ctx, r, "test"); err != nil {
		t.Fatal(err)
	}
	if err := g.Handle(ctx, r, "test"); err != nil {
		t.Fatalf("an identical copy: %v", err)
	}
	// A replay: the same sequence number, other bytes (re-signed with
	// another time).
	s.seq--
	time.Sleep(1100 * time.Millisecond) // another second: other bytes
	replay := s.reading(t, 2)
	if err := g.Handle(ctx, replay, "test"); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// A forgery: the sensor's short ID, another key's signature.
	thief := newSensor(9, false)
	forged := s.reading(t, 99)
	sig := ed25519.Sign(thief.priv, append([]byte("MESH-compact-v1\x00"), forged[:len(forged)-64]...))
	copy(forged[len(forged)-64:], sig)
	if err := g.Handle(ctx, forged, "test"); !errors.Is(err, protocol.ErrInvalidSignature) {
		t.Fatalf("forgery: %v", err)
	}
	if err := g.Handle(ctx, []byte("hello"), "test"); err == nil {
		t.Fatal("garbage accepted")
	}
	st := g.Stats()
	if st.Unknown != 1 || st.Duplicates != 1 || st.Replays != 1 || st.Forged != 1 || st.Malformed != 1 || st.Accepted != 3 {
		t.Fatalf("stats %+v", st)
	}
	eventually(t, "three records carried", func() bool { return o.count() == 3 })
}

// TestStoreAndForward: a gateway without MESH keeps what it heard,
// across a restart (kill: nothing but the store survives), and carries it
// all when MESH is back.
func TestStoreAndForward(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := newOwner()
	o.setOffline(true)
	st := openStore(t, dir)
	g, err := New(Config{Meta: st, Sink: o})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s := newSensor(2, true)
	if err := g.Handle(ctx, s.announce(t), "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := g.Handle(ctx, s.reading(t, float32(i)), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if q := g.Stats().Queued; q != 11 {
		t.Fatalf("queued %d, want 11", q)
	}
	g.Close()
	st.Close()

	st = openStore(t, dir)
	defer st.Close()
	o.setOffline(false)
	g2 := startGateway(t, Config{Meta: st, Sink: o})
	g2.Flush()
	eventually(t, "everything heard while offline reaches the owner", func() bool { return o.count() == 11 })
	eventually(t, "the queue empties", func() bool { return g2.Stats().Queued == 0 })
	// The replay window survived too: an old reading is refused.
	s.seq = 3
	if err := g2.Handle(ctx, s.reading(t, 0), "test"); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("a replay after a restart: %v", err)
	}
}

// TestUDPSensors: a Wi-Fi sensor sends the same compact records as UDP
// datagrams.
func TestUDPSensors(t *testing.T) {
	o := newOwner()
	g := startGateway(t, Config{UDP: "127.0.0.1:0", Meta: openStore(t, ""), Sink: o})
	conn, err := net.Dial("udp", g.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := newSensor(3, false)
	for _, b := range [][]byte{s.announce(t), s.reading(t, 5)} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the UDP records are carried", func() bool { return o.count() == 2 })
	for _, c := range o.got {
		if c.Kind == protocol.CompactReading && (c.Values["moisture"] != 5 || c.Via[:4] != "udp:") {
			t.Fatalf("%+v", c)
		}
	}
}

// keyring is a Keys of fixed keys (what the node's trust graph gives).
type keyring []ed25519.PublicKey

func (k keyring) KeyOf(_ context.Context, s protocol.ShortID) (ed25519.PublicKey, bool) {
	for _, p := range k {
		if protocol.ShortIDOf(p) == s {
			return p, true
		}
	}
	return nil, false
}

// TestGatewayKnowsTrustedSensors: a sensor the node trusts is known
// before its announcement, so a forgery under its short ID is refused as
// one at once; its own reading waits for the announcement that names its
// stream, then is carried.
func TestGatewayKnowsTrustedSensors(t *testing.T) {
	ctx := context.Background()
	o := newOwner()
	s := newSensor(4, false)
	g := startGateway(t, Config{Meta: openStore(t, ""), Sink: o, Keys: keyring{s.priv.Public().(ed25519.PublicKey)}})

	thief := newSensor(8, false)
	forged := s.reading(t, 1)
	copy(forged[len(forged)-64:], ed25519.Sign(thief.priv, append([]byte("MESH-compact-v1\x00"), forged[:len(forged)-64]...)))
	if err := g.Handle(ctx, forged, "test"); !errors.Is(err, protocol.ErrInvalidSignature) {
		t.Fatalf("forgery of a trusted sensor: %v", err)
	}
	early := s.reading(t, 2)
	if err := g.Handle(ctx, early, "test"); !errors.Is(err, protocol.ErrUnknownSender) {
		t.Fatalf("a reading before its stream is announced: %v", err)
	}
	if err := g.Handle(ctx, s.announce(t), "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the early reading carried after the announcement", func() bool { return o.count() == 2 })
	if st := g.Stats(); st.Forged != 1 || st.Unknown != 1 || st.Accepted != 2 {
		t.Fatalf("stats %+v", st)
	}
}
