package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/lora"
	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

func init() {
	scenarios = append(scenarios, scenario{"lora", loraFlags})
}

// loraResult is the JSON line of the lora scenario. Times are simulated
// (the channel may run faster than the wall clock: speed).
type loraResult struct {
	Scenario       string  `json:"scenario"`
	Sensors        int     `json:"sensors"`
	Gateways       int     `json:"gateways"`
	Preset         string  `json:"preset"`
	Loss           float64 `json:"loss"`
	Speed          float64 `json:"speed"`
	Readings       int     `json:"readings"`
	BytesReading   int     `json:"bytes_per_reading"` // a signed, encrypted three-field reading
	BytesAnnounce  int     `json:"bytes_announcement"`
	BytesRevoke    int     `json:"bytes_revocation"`
	AirtimeMs      float64 `json:"airtime_ms_per_reading"`
	BoundMs        float64 `json:"bound_ms"` // one reading's airtime: the least a first hop takes
	Delivery       float64 `json:"delivery"` // readings carried / sent
	P50Ms          float64 `json:"p50_ms"`   // send → carried, simulated
	P99Ms          float64 `json:"p99_ms"`
	Collisions     int     `json:"collisions"` // receptions spoilt, summed over radios
	Lost           int     `json:"lost"`       // receptions lost at random
	Rebroadcasts   int     `json:"rebroadcasts"`
	CopiesOffered  int     `json:"copies_offered"` // records carried by more than one gateway
	DupStored      int     `json:"duplicates_stored"`
	DutyCycleMax   float64 `json:"duty_cycle_max"` // the busiest sensor radio, over the run's simulated time
	SimulatedS     float64 `json:"simulated_s"`
	RefusedForged  uint64  `json:"refused_forged"`
	RefusedReplays uint64  `json:"refused_replays"`
	HeldUnknown    uint64  `json:"held_unknown_sender"` // readings from a sensor whose announcement the gateway missed
}

type loraConfig struct {
	sensors, gateways, readings int
	preset                      string
	loss, speed, hear           float64
	relay                       bool
	interval                    time.Duration
	seed                        uint64
}

func loraFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c loraConfig
	fs.IntVar(&c.sensors, "sensors", 20, "sensors, each on its own simulated radio")
	fs.IntVar(&c.gateways, "gateways", 2, "gateways, each on its own radio, hearing every sensor")
	fs.IntVar(&c.readings, "readings", 5, "readings each sensor sends (encrypted, three fields)")
	fs.StringVar(&c.preset, "preset", "longfast", "modem preset: longfast, mediumfast, shortfast")
	fs.Float64Var(&c.loss, "loss", 0.1, "probability a reception is lost")
	fs.Float64Var(&c.speed, "speed", 20, "simulated time runs this many times faster than the wall clock")
	fs.Float64Var(&c.hear, "hear", 0.5, "probability two sensors hear each other (the rest are hidden terminals)")
	fs.DurationVar(&c.interval, "interval", 5*time.Minute, "simulated time between a sensor's readings (each sensor starts at a random offset)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the channel and the placement")
	fs.BoolVar(&c.relay, "relay", false, "sensors rebroadcast what they hear (default: muted, as Meshtastic's CLIENT_MUTE role)")
	return func(e *env) (any, error) { return runLora(context.Background(), e, c) }
}

// loraOwner keeps what the gateways carry in a real store, keyed as MESH
// keys a record (its ID at its sensor's node ID), and when.
type loraOwner struct {
	st     *store.Store
	mu     sync.Mutex
	at     map[string]time.Time
	copies int
}

func (o *loraOwner) Carry(ctx context.Context, c *lora.Carried) error {
	k := "carried/" + c.Sensor + "/" + c.ID()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.st.GetMeta(ctx, k); err == nil {
		o.copies++
		return nil
	}
	if err := o.st.SetMeta(ctx, k, c.Raw); err != nil {
		return err
	}
	o.at[k] = time.Now()
	return nil
}

func runLora(ctx context.Context, e *env, c loraConfig) (*loraResult, error) {
	if c.sensors < 1 || c.gateways < 1 || c.readings < 1 || c.speed <= 0 || c.loss < 0 || c.loss >= 1 {
		return nil, errors.New("-sensors, -gateways and -readings must be positive, -speed positive, -loss in [0, 1)")
	}
	preset, err := radiosim.PresetByName(c.preset)
	if err != nil {
		return nil, err
	}
	ch := radiosim.New(radiosim.Config{Preset: preset, Loss: c.loss, Speed: c.speed, Seed: c.seed})
	defer ch.Close()
	rng := rand.New(rand.NewPCG(c.seed, 99))

	st, err := store.Open(store.Options{SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	owner := &loraOwner{st: st, at: map[string]time.Time{}}

	var gwRadios, sensorRadios []*radiosim.Radio
	var gws []*lora.Gateway
	for i := range c.gateways {
		r, err := ch.AddRadio(uint32(0x6a0000 + i))
		if err != nil {
			return nil, err
		}
		gwRadios = append(gwRadios, r)
		meta, err := store.Open(store.Options{SweepInterval: -1})
		if err != nil {
			return nil, err
		}
		defer meta.Close()
		g, err := lora.New(lora.Config{Radios: []string{r.Addr()}, Meta: meta, Sink: owner})
		if err != nil {
			return nil, err
		}
		if err := g.Start(ctx); err != nil {
			return nil, err
		}
		defer g.Close()
		gws = append(gws, g)
	}
	type sensor struct {
		priv   ed25519.PrivateKey
		key    []byte
		client *meshtastic.Client
		seq    uint32
	}
	var ss []*sensor
	for i := range c.sensors {
		r, err := ch.AddRadio(uint32(0x5e0000 + i))
		if err != nil {
			return nil, err
		}
		r.SetMute(!c.relay)
		sensorRadios = append(sensorRadios, r)
		var seed [32]byte
		binary.BigEndian.PutUint64(seed[:], c.seed)
		binary.BigEndian.PutUint32(seed[8:], uint32(i))
		s := &sensor{priv: ed25519.NewKeyFromSeed(seed[:]), key: bytes.Repeat([]byte{byte(i + 1)}, 32)}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s.client, err = meshtastic.Dial(dctx, r.Addr())
		cancel()
		if err != nil {
			return nil, err
		}
		defer s.client.Close()
		ss = append(ss, s)
	}
	// Placement: gateways hear every sensor and each other; two sensors
	// hear each other with probability -hear.
	for i, g := range gwRadios {
		for _, s := range sensorRadios {
			ch.Link(g, s)
		}
		for _, h := range gwRadios[i+1:] {
			ch.Link(g, h)
		}
	}
	for i := range sensorRadios {
		for j := i + 1; j < len(sensorRadios); j++ {
			if rng.Float64() < c.hear {
				ch.Link(sensorRadios[i], sensorRadios[j])
			}
		}
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		ready := true
		for _, g := range gws {
			ready = ready && g.Stats().Radios == 1
		}
		if ready {
			break
		}
		if time.Since(start) > 30*time.Second {
			return nil, errors.New("the gateways did not connect to their radios")
		}
	}

	res := &loraResult{Scenario: "lora", Sensors: c.sensors, Gateways: c.gateways, Preset: preset.Name, Loss: c.loss,
		Speed: c.speed, Readings: c.sensors * c.readings}
	fields := []protocol.CompactField{{Index: 0, Value: 21.5}, {Index: 1, Value: 64.2}, {Index: 2, Value: 3.71}}
	now := time.Now()
	sample, _ := protocol.EncodeReading(ss[0].priv, protocol.ReadingParams{Seq: 1 << 14, Time: now, Fields: fields, Key: ss[0].key, Epoch: 1})
	ann := func(s *sensor) []byte {
		s.seq++
		b, _ := protocol.EncodeAnnouncement(s.priv, protocol.AnnouncementParams{Seq: s.seq, Time: time.Now(),
			Streams: []protocol.CompactStream{{Name: "orchard/soil", Unit: "%", Fields: []string{"temp_c", "moisture", "battery_v"}}}})
		return b
	}
	res.BytesReading = len(sample)
	res.BytesAnnounce = len(ann(&sensor{priv: ss[0].priv}))
	rv, _ := protocol.EncodeCompactRevocation(ss[0].priv, protocol.RevocationParams{Seq: 1 << 14, Time: now, Target: 1})
	res.BytesRevoke = len(rv)
	air := preset.PacketAirtime(len(meshtastic.AppendData(nil, meshtastic.PortPrivateApp, sample)))
	res.AirtimeMs = round(float64(air)/float64(time.Millisecond), 1)
	res.BoundMs = res.AirtimeMs

	e.logf("%d readings each, every %s simulated, at %gx", c.readings, c.interval, c.speed)
	type sent struct {
		key string
		at  time.Time
	}
	var mu sync.Mutex
	var all []sent
	var wg sync.WaitGroup
	wall := time.Duration(float64(c.interval) / c.speed)
	simStart := ch.Now()
	for _, s := range ss {
		wg.Add(1)
		go func(s *sensor, offset time.Duration) {
			defer wg.Done()
			time.Sleep(offset)
			for n := range c.readings {
				// A sensor announces itself before its first reading
				// and again every fourth: a gateway that missed one
				// (collision, loss) learns it later.
				if n%4 == 0 {
					mu.Lock()
					a := ann(s)
					mu.Unlock()
					s.client.Send(meshtastic.PortPrivateApp, a, 2)
					time.Sleep(time.Duration(float64(2*air) / c.speed))
				}
				mu.Lock()
				s.seq++
				seq := s.seq
				mu.Unlock()
				b, err := protocol.EncodeReading(s.priv, protocol.ReadingParams{Seq: seq, Time: time.Now(), Fields: fields, Key: s.key, Epoch: 1})
				if err != nil {
					return
				}
				id, _ := protocol.NodeID(s.priv.Public().(ed25519.PublicKey))
				mu.Lock()
				all = append(all, sent{key: fmt.Sprintf("carried/%s/lora-%d", id, seq), at: time.Now()})
				mu.Unlock()
				s.client.Send(meshtastic.PortPrivateApp, b, 2)
				time.Sleep(wall)
			}
		}(s, time.Duration(rng.Int64N(int64(wall)+1)))
	}
	wg.Wait()
	// Wait for the air to clear: every reading carried, or 30 airtimes of
	// simulated time after the last one.
	deadline := time.Now().Add(time.Duration(float64(30*air) / c.speed))
	for time.Now().Before(deadline) {
		owner.mu.Lock()
		n := 0
		for _, s := range all {
			if _, ok := owner.at[s.key]; ok {
				n++
			}
		}
		owner.mu.Unlock()
		if n == len(all) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.SimulatedS = round((ch.Now() - simStart).Seconds(), 1)

	owner.mu.Lock()
	var lat []float64
	for _, s := range all {
		if t, ok := owner.at[s.key]; ok {
			lat = append(lat, float64(t.Sub(s.at))*c.speed/float64(time.Millisecond))
		}
	}
	res.CopiesOffered = owner.copies
	stored := 0
	st.ListMeta(ctx, "carried/", func(string, []byte) error { stored++; return nil })
	res.DupStored = stored - len(owner.at)
	owner.mu.Unlock()
	slices.Sort(lat)
	res.Delivery = round(float64(len(lat))/float64(len(all)), 4)
	res.P50Ms, res.P99Ms = round(quantile(lat, 0.5), 1), round(quantile(lat, 0.99), 1)
	for _, r := range append(append([]*radiosim.Radio{}, gwRadios...), sensorRadios...) {
		s := r.Stats()
		res.Collisions += s.Collisions
		res.Lost += s.Lost
		res.Rebroadcasts += s.Rebroadcasts
	}
	for _, r := range sensorRadios {
		res.DutyCycleMax = max(res.DutyCycleMax, round(r.DutyCycle(), 4))
	}
	for _, g := range gws {
		s := g.Stats()
		res.RefusedForged += s.Forged
		res.RefusedReplays += s.Replays
		res.HeldUnknown += s.Unknown
		e.logf("gateway: %+v", s)
	}
	return res, nil
}
