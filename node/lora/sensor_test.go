package lora

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
)

// TestSensorDutyCycleAndSequence: a sensor on a simulated radio sends
// until its hourly budget is spent, is refused (counted, with the time it
// is free again), sends again an hour later; its sequence numbers never
// repeat across restarts, even after a crash.
func TestSensorDutyCycleAndSequence(t *testing.T) {
	ch := radiosim.New(radiosim.Config{Preset: radiosim.LongFast, Speed: 50, Seed: 5})
	defer ch.Close()
	tx, err := ch.AddRadio(0x5e10)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := ch.AddRadio(0x6a10)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	radio, err := meshtastic.Dial(ctx, tx.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer radio.Close()
	listener, err := meshtastic.Dial(ctx, rx.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()

	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	state := filepath.Join(t.TempDir(), "sensor.json")
	cfg := SensorConfig{Key: key, StateFile: state, Radio: radio, Preset: radiosim.LongFast,
		DutyCycle: 0.001, // 3.6 s an hour: three 1.1-s readings
		Streams:   []protocol.CompactStream{{Name: "well/level", Unit: "cm", Fields: []string{"level"}}},
		Now:       func() time.Time { return now }}
	s, err := OpenSensor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(); err != nil {
		t.Fatal(err)
	}
	var seqs []uint32
	var refused error
	for i := range 6 {
		seq, err := s.Send(0, []protocol.CompactField{{Index: 0, Value: float32(100 + i)}}, nil, 0)
		if err != nil {
			refused = err
			break
		}
		seqs = append(seqs, seq)
	}
	if !errors.Is(refused, ErrDutyCycle) || len(seqs) == 0 || len(seqs) > 3 {
		t.Fatalf("sent %d readings, then %v", len(seqs), refused)
	}
	st := s.Status()
	if st.Refused != 1 || st.AirtimeMs > st.BudgetMs || st.Limit != 0.001 || !strings.Contains(refused.Error(), "free again in 1h0m0s") {
		t.Fatalf("status %+v", st)
	}
	// What went on the air arrives, signed, in order of sequence.
	for range 1 + len(seqs) {
		select {
		case p := <-listener.Packets():
			c, err := protocol.DecodeCompact(p.Payload)
			if err != nil || c.Verify(key.Public().(ed25519.PublicKey)) != nil {
				t.Fatalf("received %x: %v", p.Payload, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a sent record did not arrive")
		}
	}

	// An hour later the budget is back.
	now = now.Add(time.Hour)
	if _, err := s.Send(0, []protocol.CompactField{{Index: 0, Value: 1}}, nil, 0); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	last := s.Status().Seq

	// A restart continues after every number reserved: none is reused.
	s2, err := OpenSensor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s2.Send(0, []protocol.CompactField{{Index: 0, Value: 2}}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if seq <= last {
		t.Fatalf("after a restart: seq %d, the last sent was %d", seq, last)
	}
	if s2.Status().Sent != s.Status().Sent+1 {
		t.Fatalf("sent counter: %d then %d", s.Status().Sent, s2.Status().Sent)
	}
	// Too many fields, an unknown stream: refused before anything is sent.
	if _, err := s2.Send(3, []protocol.CompactField{{Index: 0, Value: 2}}, nil, 0); err == nil {
		t.Fatal("an unknown stream accepted")
	}
}

func TestSensorDamagedState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sensor.json")
	if err := writeFile(state, "{not json"); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if _, err := OpenSensor(SensorConfig{Key: key, StateFile: state}); err == nil {
		t.Fatal("a damaged state file was taken for a fresh start (sequence numbers, and nonces, would repeat)")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
