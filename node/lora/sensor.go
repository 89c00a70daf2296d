package lora

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/internal/atomicfile"
	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
)

// Duty-cycle limits of the EU868 sub-bands (ETSI EN 300 220): 1% on most
// of the band, 10% on 869.4–869.65 MHz (where Meshtastic's EU_868 default
// channel sits).
const (
	DutyCycleEU868     = 0.10
	DutyCycleEU868Low  = 0.01
	dutyWindow         = time.Hour
	seqReserve         = 64 // sequence numbers reserved on disk at a time
	maxAirLog          = 4096
	sensorStateVersion = 1
)

// ErrDutyCycle is returned when sending would exceed the duty-cycle
// budget.
var ErrDutyCycle = errors.New("duty-cycle budget spent")

// Transmitter sends a payload on the MESH port (a *meshtastic.Client, or
// a UDP socket for Wi-Fi sensors).
type Transmitter interface {
	Send(port uint32, payload []byte, hopLimit uint32) (uint32, error)
}

// SensorConfig configures a sensor.
type SensorConfig struct {
	Key ed25519.PrivateKey // the sensor's node key
	// StateFile keeps the sequence numbers and the airtime log across
	// restarts: a sequence number (and so a nonce) is never used twice.
	StateFile string
	Radio     Transmitter
	// Preset is the radio's modem preset, for airtime (default LongFast).
	Preset radiosim.Preset
	// DutyCycle is the share of any hour the sensor may transmit
	// (default DutyCycleEU868; 0 < DutyCycle ≤ 1).
	DutyCycle float64
	Port      uint32 // default PRIVATE_APP
	HopLimit  uint32 // default 3
	Streams   []protocol.CompactStream
	Now       func() time.Time
}

// Sensor signs and sends compact records within a duty-cycle budget.
type Sensor struct {
	cfg SensorConfig

	mu    sync.Mutex
	state sensorState
}

type sensorState struct {
	Version  int       `json:"version"`
	Reserved uint32    `json:"reserved"` // sequence numbers up to here may have been used
	Next     uint32    `json:"-"`
	Air      []airUse  `json:"air"`
	LastSeq  uint32    `json:"lastSeq"` // of the last record sent
	Sent     int       `json:"sent"`
	Refused  int       `json:"refused"`
	Last     time.Time `json:"last,omitzero"`
}

type airUse struct {
	At time.Time     `json:"at"`
	D  time.Duration `json:"d"`
}

// SensorStatus is what `mesh lora status` shows.
type SensorStatus struct {
	Seq        uint32        `json:"seq"`
	Sent       int           `json:"sent"`
	Refused    int           `json:"refused_duty_cycle"`
	AirtimeMs  float64       `json:"airtime_ms_last_hour"`
	BudgetMs   float64       `json:"budget_ms_per_hour"`
	DutyCycle  float64       `json:"duty_cycle_last_hour"`
	Limit      float64       `json:"duty_cycle_limit"`
	Preset     string        `json:"preset"`
	NextFreeIn time.Duration `json:"next_free_in_ns,omitempty"`
}

// OpenSensor loads a sensor's state (or starts it).
func OpenSensor(cfg SensorConfig) (*Sensor, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("lora: a sensor needs its Ed25519 key")
	}
	if cfg.StateFile == "" {
		return nil, errors.New("lora: a sensor needs a state file (its sequence numbers must survive restarts)")
	}
	if cfg.Preset.SF == 0 {
		cfg.Preset = radiosim.LongFast
	}
	if cfg.DutyCycle == 0 {
		cfg.DutyCycle = DutyCycleEU868
	}
	if cfg.DutyCycle < 0 || cfg.DutyCycle > 1 {
		return nil, fmt.Errorf("lora: duty cycle %g: want a share of the hour, 0 to 1", cfg.DutyCycle)
	}
	if cfg.Port == 0 {
		cfg.Port = meshtastic.PortPrivateApp
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sensor{cfg: cfg}
	b, err := os.ReadFile(cfg.StateFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.state.Version = sensorStateVersion
	case err != nil:
		return nil, fmt.Errorf("lora: sensor state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.state); err != nil || s.state.Version != sensorStateVersion {
			// Never start again from 1: a reused sequence number reuses a
			// nonce. A damaged state file stops the sensor.
			return nil, fmt.Errorf("lora: sensor state %s is damaged (%v); move it away only if this key never sent a record", cfg.StateFile, err)
		}
	}
	// Everything up to Reserved may have been sent before a crash.
	s.state.Next = s.state.Reserved + 1
	return s, nil
}

// reserveLocked hands out the next sequence number, reserving a block on
// disk first.
func (s *Sensor) reserveLocked() (uint32, error) {
	if s.state.Next > s.state.Reserved {
		s.state.Reserved = s.state.Next + seqReserve - 1
		if err := s.saveLocked(); err != nil {
			s.state.Reserved = s.state.Next - 1
			return 0, err
		}
	}
	seq := s.state.Next
	s.state.Next++
	return seq, nil
}

func (s *Sensor) saveLocked() error {
	b, err := json.Marshal(s.state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.StateFile), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.cfg.StateFile, b, 0o600)
}

// airLocked is the airtime spent in the last hour, and when the oldest
// use in the window leaves it.
func (s *Sensor) airLocked(now time.Time) (used time.Duration, oldest time.Time) {
	keep := s.state.Air[:0]
	for _, u := range s.state.Air {
		if now.Sub(u.At) < dutyWindow {
			keep = append(keep, u)
			used += u.D
			if oldest.IsZero() || u.At.Before(oldest) {
				oldest = u.At
			}
		}
	}
	s.state.Air = keep
	return used, oldest
}

// send transmits one encoded record if the budget allows.
func (s *Sensor) sendLocked(b []byte, seq uint32) error {
	now := s.cfg.Now()
	air := s.cfg.Preset.PacketAirtime(len(meshtastic.AppendData(nil, s.cfg.Port, b)))
	used, oldest := s.airLocked(now)
	budget := time.Duration(s.cfg.DutyCycle * float64(dutyWindow))
	if used+air > budget {
		s.state.Refused++
		s.saveLocked()
		wait := oldest.Add(dutyWindow).Sub(now)
		return fmt.Errorf("%w: %s of %s used in the last hour; a %d-byte record needs %s more (free again in %s)",
			ErrDutyCycle, used.Round(time.Millisecond), budget, len(b), air.Round(time.Millisecond), wait.Round(time.Second))
	}
	if _, err := s.cfg.Radio.Send(s.cfg.Port, b, s.cfg.HopLimit); err != nil {
		return err
	}
	s.state.Air = append(s.state.Air, airUse{At: now, D: air})
	if len(s.state.Air) > maxAirLog {
		s.state.Air = s.state.Air[len(s.state.Air)-maxAirLog:]
	}
	s.state.Sent++
	s.state.Last, s.state.LastSeq = now, seq
	return s.saveLocked()
}

// Announce sends the sensor's announcement: its key and streams.
func (s *Sensor) Announce() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, err := s.reserveLocked()
	if err != nil {
		return err
	}
	b, err := protocol.EncodeAnnouncement(s.cfg.Key, protocol.AnnouncementParams{Seq: seq, Time: s.cfg.Now(), Streams: s.cfg.Streams})
	if err != nil {
		return err
	}
	return s.sendLocked(b, seq)
}

// Send sends a reading of stream (its index in Streams), encrypted under
// key (epoch epoch) if key is set. It returns the reading's sequence
// number.
func (s *Sensor) Send(stream uint8, fields []protocol.CompactField, key []byte, epoch uint32) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(stream) >= len(s.cfg.Streams) {
		return 0, fmt.Errorf("lora: stream %d: the sensor has %d", stream, len(s.cfg.Streams))
	}
	if n := len(s.cfg.Streams[stream].Fields); len(fields) > n {
		return 0, fmt.Errorf("lora: %d fields, stream %s has %d", len(fields), s.cfg.Streams[stream].Name, n)
	}
	seq, err := s.reserveLocked()
	if err != nil {
		return 0, err
	}
	b, err := protocol.EncodeReading(s.cfg.Key, protocol.ReadingParams{Stream: stream, Seq: seq, Time: s.cfg.Now(), Fields: fields, Key: key, Epoch: epoch})
	if err != nil {
		return 0, err
	}
	return seq, s.sendLocked(b, seq)
}

// Status reports the sensor's airtime and budget.
func (s *Sensor) Status() SensorStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	used, oldest := s.airLocked(now)
	budget := time.Duration(s.cfg.DutyCycle * float64(dutyWindow))
	st := SensorStatus{Seq: s.state.LastSeq, Sent: s.state.Sent, Refused: s.state.Refused,
		AirtimeMs: float64(used) / float64(time.Millisecond), BudgetMs: float64(budget) / float64(time.Millisecond),
		DutyCycle: float64(used) / float64(dutyWindow), Limit: s.cfg.DutyCycle, Preset: s.cfg.Preset.Name}
	if used >= budget && !oldest.IsZero() {
		st.NextFreeIn = oldest.Add(dutyWindow).Sub(now)
	}
	return st
}

// UDPTransmitter sends compact records as UDP datagrams, to a gateway's
// --lora-udp address (Wi-Fi sensors).
type UDPTransmitter struct{ conn net.Conn }

// DialUDP returns a transmitter to a gateway's UDP address.
func DialUDP(addr string) (*UDPTransmitter, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("lora: udp %s: %w", addr, err)
	}
	return &UDPTransmitter{conn: c}, nil
}

// Send writes payload as one datagram; port and hop limit do not apply.
func (u *UDPTransmitter) Send(_ uint32, payload []byte, _ uint32) (uint32, error) {
	_, err := u.conn.Write(payload)
	return 0, err
}

// Close closes the socket.
func (u *UDPTransmitter) Close() error { return u.conn.Close() }
