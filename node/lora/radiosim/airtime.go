package radiosim

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Preset is a LoRa modem setting: spreading factor, bandwidth, coding rate
// and preamble, as Meshtastic's modem presets fix them.
type Preset struct {
	Name        string
	SF          int     // spreading factor, 7 to 12
	BandwidthHz float64 // 125, 250 or 500 kHz
	CodingRate  int     // the n of 4/n, 5 to 8
	Preamble    int     // symbols; Meshtastic uses 16
}

// Meshtastic's presets (meshtastic/protobufs config.proto,
// Config.LoRaConfig.ModemPreset, with the firmware's parameters).
var (
	LongFast   = Preset{Name: "longfast", SF: 11, BandwidthHz: 250e3, CodingRate: 5, Preamble: 16}
	MediumFast = Preset{Name: "mediumfast", SF: 9, BandwidthHz: 250e3, CodingRate: 5, Preamble: 16}
	ShortFast  = Preset{Name: "shortfast", SF: 7, BandwidthHz: 250e3, CodingRate: 5, Preamble: 16}
)

// PresetByName finds a preset by name, in any case, with or without '_'.
func PresetByName(name string) (Preset, error) {
	n := strings.ToLower(strings.ReplaceAll(name, "_", ""))
	for _, p := range []Preset{LongFast, MediumFast, ShortFast} {
		if p.Name == n {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("radiosim: unknown modem preset %q (longfast, mediumfast, shortfast)", name)
}

// HeaderSize is the size of the header Meshtastic sends before a packet's
// encrypted Data (destination, sender, packet ID, flags, channel hash,
// next hop, relay node).
const HeaderSize = 16

// Symbol is the duration of one LoRa symbol: 2^SF / BW.
func (p Preset) Symbol() time.Duration {
	return time.Duration(math.Pow(2, float64(p.SF)) / p.BandwidthHz * float64(time.Second))
}

// BitRate is the modem's raw bit rate: SF · BW / 2^SF · 4/CR.
func (p Preset) BitRate() float64 {
	return float64(p.SF) * p.BandwidthHz / math.Pow(2, float64(p.SF)) * 4 / float64(p.CodingRate)
}

// Airtime is the time on air of a LoRa frame with a PHY payload of n
// bytes (explicit header, CRC on), by Semtech's formula (AN1200.13):
// preamble (n_preamble + 4.25 symbols) and 8 + max(ceil((8n − 4SF + 28 +
// 16) / (4(SF − 2DE))) · CR, 0) payload symbols, DE (low data rate
// optimisation) on when a symbol lasts more than 16 ms.
func (p Preset) Airtime(n int) time.Duration {
	tsym := math.Pow(2, float64(p.SF)) / p.BandwidthHz
	de := 0.0
	if tsym > 0.016 {
		de = 1
	}
	pre := (float64(p.Preamble) + 4.25) * tsym
	num := 8*float64(n) - 4*float64(p.SF) + 28 + 16
	payload := 8 + math.Max(math.Ceil(num/(4*(float64(p.SF)-2*de)))*float64(p.CodingRate), 0)
	return time.Duration((pre + payload*tsym) * float64(time.Second))
}

// PacketAirtime is the airtime of a Meshtastic packet whose Data protobuf
// is dataLen bytes: the header and the Data (encrypted with AES-CTR by
// the radio, which keeps its length).
func (p Preset) PacketAirtime(dataLen int) time.Duration {
	return p.Airtime(HeaderSize + dataLen)
}
