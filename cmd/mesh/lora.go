package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/lora"
	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/node/lora/radiosim"
	"github.com/meshprotocol/mesh/protocol"
)

// loraFlags adds the gateway flags of `mesh daemon`.
func loraFlags(c *cobra.Command) func(*cobra.Command, *node.Config) error {
	var (
		radios []string
		udp    string
		port   uint32
		topics []string
	)
	f := c.Flags()
	f.StringArrayVar(&radios, "lora", nil, "be a gateway for the Meshtastic radio at tcp://HOST:4403 or serial:///dev/ttyUSB0 (repeatable)")
	f.StringVar(&udp, "lora-udp", "", "also take compact sensor records as UDP datagrams on this address (Wi-Fi sensors), e.g. 0.0.0.0:4404")
	f.Uint32Var(&port, "lora-port", 0, "Meshtastic port number of MESH payloads (default 256, PRIVATE_APP)")
	f.StringArrayVar(&topics, "lora-topic", nil, "MESH topic carried readings are published on (repeatable; default lora)")
	return func(c *cobra.Command, cfg *node.Config) error {
		for _, r := range radios {
			if !strings.HasPrefix(r, "tcp://") && !strings.HasPrefix(r, "serial://") {
				return fmt.Errorf("--lora %q: want tcp://HOST:4403 or serial:///dev/DEVICE", r)
			}
		}
		if (port != 0 || len(topics) > 0) && len(radios) == 0 && udp == "" {
			return fmt.Errorf("--lora-port and --lora-topic need --lora or --lora-udp")
		}
		cfg.Lora = node.LoraConfig{Radios: radios, UDP: udp, Port: port, Topics: topics}
		return nil
	}
}

// loraSetup is what `mesh lora send` keeps in REPO/lora/setup.json: the
// sensor's streams (their order gives the indexes readings refer to), its
// preset and duty cycle, and how many readings since its last
// announcement.
type loraSetup struct {
	Streams   []protocol.CompactStream `json:"streams"`
	Preset    string                   `json:"preset"`
	DutyCycle float64                  `json:"dutyCycle"`
	SinceAnn  int                      `json:"sinceAnnouncement"`
}

// announceEvery is how many readings a sensor sends between two
// announcements (a gateway that missed one learns it again).
const announceEvery = 10

func loraPaths(repo string) (setup, state string) {
	return filepath.Join(repo, "lora", "setup.json"), filepath.Join(repo, "lora", "sensor.json")
}

func loadLoraSetup(repo string) (*loraSetup, error) {
	p, _ := loraPaths(repo)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &loraSetup{Preset: "longfast", DutyCycle: lora.DutyCycleEU868, SinceAnn: announceEvery}, nil
	}
	if err != nil {
		return nil, err
	}
	var s loraSetup
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &s, nil
}

func loraCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "lora",
		Short: "Be a sensor on a LoRa radio: send signed compact readings, show the airtime used",
		Long: `Be a sensor on a LoRa radio (Meshtastic) or on Wi-Fi: send readings signed with this
repo's node key, in the compact form a radio packet holds, within a duty-cycle
budget. A gateway (mesh daemon --lora) carries them into MESH.`,
	}
	c.AddCommand(loraSendCmd(g), loraStatusCmd(g))
	return c
}

func loraSendCmd(g *globals) *cobra.Command {
	var (
		radio, udp, stream, unit, preset, keyFile string
		duty                                      float64
		epoch                                     uint32
	)
	c := &cobra.Command{
		Use:   "send --radio tcp://HOST:4403 --stream NAME FIELD=VALUE...",
		Short: "Send one reading (and the sensor's announcement when due)",
		Example: `  mesh lora send --radio serial:///dev/ttyUSB0 --stream barn/climate --unit c temp=4.5 humidity=91
  mesh lora send --udp 192.168.1.10:4404 --stream well/level level=132`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(c *cobra.Command, fields []string) error {
			if (radio == "") == (udp == "") {
				return usageError{errors.New("give one of --radio tcp://HOST:4403 | serial:///dev/DEVICE and --udp HOST:PORT")}
			}
			if err := protocol.ValidateCompactStreamName(stream); err != nil {
				return usageError{fmt.Errorf("--stream: %w", err)}
			}
			names, values := make([]string, 0, len(fields)), make([]float32, 0, len(fields))
			for _, f := range fields {
				k, v, ok := strings.Cut(f, "=")
				x, err := strconv.ParseFloat(v, 32)
				if !ok || err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
					return usageError{fmt.Errorf("%q: want FIELD=NUMBER, e.g. humidity=64.2", f)}
				}
				names, values = append(names, k), append(values, float32(x))
			}
			var key []byte
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return err
				}
				if key, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(key) != 32 {
					return usageError{fmt.Errorf("--key-file %s: want the stream's 32-byte epoch key in hex", keyFile)}
				}
			}
			setup, err := loadLoraSetup(g.repo)
			if err != nil {
				return err
			}
			if c.Flags().Changed("preset") {
				setup.Preset = preset
			}
			if c.Flags().Changed("duty-cycle") {
				setup.DutyCycle = duty
			}
			p, err := radiosim.PresetByName(setup.Preset)
			if err != nil {
				return usageError{err}
			}
			idx, changed, err := setup.stream(stream, unit, names)
			if err != nil {
				return usageError{err}
			}
			var cf []protocol.CompactField
			for i, name := range names {
				cf = append(cf, protocol.CompactField{Index: uint8(slices.Index(setup.Streams[idx].Fields, name)), Value: values[i]})
			}
			priv, _, err := node.LoadOrCreateKey(g.repo)
			if err != nil {
				return err
			}
			raw, err := priv.Raw()
			if err != nil {
				return err
			}
			var tx lora.Transmitter
			if udp != "" {
				u, err := lora.DialUDP(udp)
				if err != nil {
					return err
				}
				defer u.Close()
				tx = u
			} else {
				ctx, cancel := context.WithTimeout(c.Context(), 30*time.Second)
				defer cancel()
				m, err := meshtastic.Dial(ctx, radio)
				if err != nil {
					return err
				}
				defer m.Close()
				tx = m
			}
			_, state := loraPaths(g.repo)
			s, err := lora.OpenSensor(lora.SensorConfig{Key: ed25519.PrivateKey(raw), StateFile: state, Radio: tx, Preset: p,
				DutyCycle: setup.DutyCycle, Streams: setup.Streams})
			if err != nil {
				return err
			}
			if changed || setup.SinceAnn >= announceEvery {
				if err := s.Announce(); err != nil {
					return err
				}
				setup.SinceAnn = 0
			}
			seq, err := s.Send(uint8(idx), cf, key, epoch)
			if err != nil {
				if errors.Is(err, lora.ErrDutyCycle) {
					return coded(protocol.ErrRateLimited, "%v", err)
				}
				return err
			}
			setup.SinceAnn++
			if err := setup.save(g.repo); err != nil {
				return err
			}
			st := s.Status()
			if g.json {
				return g.printJSON(map[string]any{"seq": seq, "stream": stream, "status": st})
			}
			g.printf("sent %s reading seq %d (%s); airtime %.0f of %.0f ms this hour\n", stream, seq,
				map[bool]string{true: "encrypted", false: "plain"}[key != nil], st.AirtimeMs, st.BudgetMs)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&radio, "radio", "", "the Meshtastic radio: tcp://HOST:4403 or serial:///dev/ttyUSB0")
	f.StringVar(&udp, "udp", "", "send to a gateway's --lora-udp address instead (Wi-Fi)")
	f.StringVar(&stream, "stream", "", "the stream, e.g. barn/climate (its fields are learned from the first reading)")
	f.StringVar(&unit, "unit", "", "the stream's unit, at most 8 bytes")
	f.StringVar(&preset, "preset", "longfast", "the radio's modem preset, for airtime: longfast, mediumfast, shortfast")
	f.Float64Var(&duty, "duty-cycle", lora.DutyCycleEU868, "share of any hour the sensor may transmit (EU868: 0.1 on 869.4-869.65 MHz, 0.01 elsewhere)")
	f.StringVar(&keyFile, "key-file", "", "encrypt the fields under this stream epoch key (32 bytes, hex)")
	f.Uint32Var(&epoch, "epoch", 1, "the epoch of --key-file's key")
	return c
}

// stream finds or adds a stream and its fields: a new stream, or new
// fields, need an announcement (changed).
func (s *loraSetup) stream(name, unit string, fields []string) (idx int, changed bool, err error) {
	idx = slices.IndexFunc(s.Streams, func(c protocol.CompactStream) bool { return c.Name == name })
	if idx < 0 {
		if len(s.Streams) >= protocol.MaxCompactStreams {
			return 0, false, fmt.Errorf("this sensor has %d streams, the most one announcement holds", len(s.Streams))
		}
		s.Streams = append(s.Streams, protocol.CompactStream{Name: name, Unit: unit})
		idx, changed = len(s.Streams)-1, true
	}
	st := &s.Streams[idx]
	if unit != "" && unit != st.Unit {
		st.Unit, changed = unit, true
	}
	for _, f := range fields {
		if !slices.Contains(st.Fields, f) {
			st.Fields = append(st.Fields, f)
			changed = true
		}
	}
	if len(st.Fields) > protocol.MaxCompactFields {
		return 0, false, fmt.Errorf("stream %s: %d fields, the most is %d", name, len(st.Fields), protocol.MaxCompactFields)
	}
	// The announcement must encode: names and sizes within the limits.
	if _, err := protocol.EncodeAnnouncement(ed25519.NewKeyFromSeed(make([]byte, 32)), protocol.AnnouncementParams{Seq: 1, Time: time.Now(), Streams: s.Streams}); err != nil {
		return 0, false, err
	}
	return idx, changed, nil
}

func (s *loraSetup) save(repo string) error {
	p, _ := loraPaths(repo)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}

func loraStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the sensor's streams, sequence number and airtime used this hour",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			setup, err := loadLoraSetup(g.repo)
			if err != nil {
				return err
			}
			p, err := radiosim.PresetByName(setup.Preset)
			if err != nil {
				return err
			}
			priv, err := node.LoadKey(g.repo)
			if err != nil {
				return err
			}
			raw, _ := priv.Raw()
			_, state := loraPaths(g.repo)
			s, err := lora.OpenSensor(lora.SensorConfig{Key: ed25519.PrivateKey(raw), StateFile: state, Preset: p, DutyCycle: setup.DutyCycle, Streams: setup.Streams})
			if err != nil {
				return err
			}
			st := s.Status()
			if g.json {
				return g.printJSON(map[string]any{"streams": setup.Streams, "status": st})
			}
			id, _ := protocol.NodeID(ed25519.PrivateKey(raw).Public().(ed25519.PublicKey))
			g.printf("sensor %s, short ID %s\n", id, protocol.ShortIDOf(ed25519.PrivateKey(raw).Public().(ed25519.PublicKey)))
			for i, s := range setup.Streams {
				g.printf("  stream %d: %s (%s) fields %s\n", i, s.Name, s.Unit, strings.Join(s.Fields, ", "))
			}
			g.printf("sent %s, last seq %d; refused by the duty cycle: %d\n", plural(st.Sent, "record", "records"), st.Seq, st.Refused)
			g.printf("airtime this hour: %.0f of %.0f ms (%.2f%% of the hour, limit %.0f%%, %s)\n", st.AirtimeMs, st.BudgetMs, 100*st.DutyCycle, 100*st.Limit, st.Preset)
			return nil
		},
	}
}
