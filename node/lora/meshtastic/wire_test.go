package meshtastic

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestMessagesRoundTrip(t *testing.T) {
	p := &Packet{From: 0xa1b2c3d4, To: Broadcast, Channel: 1, ID: 77, RxTime: 1733337000, RxSNR: -7.25, RxRSSI: -118,
		HopLimit: 2, HopStart: 3, WantAck: true, Port: PortPrivateApp, Payload: []byte{1, 2, 3}}
	got, err := ParseToRadio(AppendToRadio(nil, &ToRadio{Packet: p}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Packet == nil || got.Packet.From != p.From || got.Packet.To != p.To || got.Packet.RxRSSI != -118 || got.Packet.RxSNR != -7.25 ||
		got.Packet.HopLimit != 2 || got.Packet.HopStart != 3 || !got.Packet.WantAck || got.Packet.Port != PortPrivateApp || !bytes.Equal(got.Packet.Payload, p.Payload) {
		t.Fatalf("packet round trip: %+v", got.Packet)
	}
	for _, m := range []*ToRadio{{WantConfigID: 42}, {Disconnect: true}} {
		got, err := ParseToRadio(AppendToRadio(nil, m))
		if err != nil || got.WantConfigID != m.WantConfigID || got.Disconnect != m.Disconnect {
			t.Fatalf("%+v: %+v %v", m, got, err)
		}
	}
	for _, m := range []*FromRadio{{ID: 5, Packet: p}, {HasMyInfo: true, MyNodeNum: 0xdeadbeef}, {HasConfigDone: true, ConfigCompleteID: 42}, {Rebooted: true}} {
		got, err := ParseFromRadio(AppendFromRadio(nil, m))
		if err != nil || got.ID != m.ID || got.MyNodeNum != m.MyNodeNum || got.HasMyInfo != m.HasMyInfo || got.ConfigCompleteID != m.ConfigCompleteID ||
			got.HasConfigDone != m.HasConfigDone || got.Rebooted != m.Rebooted || (m.Packet != nil) != (got.Packet != nil) {
			t.Fatalf("%+v: %+v %v", m, got, err)
		}
	}
}

// TestKnownBytes checks the encoding against bytes written out by hand
// from meshtastic/mesh.proto's field numbers, so that an error in a field
// number does not cancel itself out in a round trip.
func TestKnownBytes(t *testing.T) {
	// ToRadio{want_config_id: 42}: field 3 varint.
	if got := AppendToRadio(nil, &ToRadio{WantConfigID: 42}); !bytes.Equal(got, []byte{0x18, 42}) {
		t.Fatalf("want_config_id: % x", got)
	}
	// FromRadio{config_complete_id: 42}: field 7 varint.
	if got := AppendFromRadio(nil, &FromRadio{HasConfigDone: true, ConfigCompleteID: 42}); !bytes.Equal(got, []byte{0x38, 42}) {
		t.Fatalf("config_complete_id: % x", got)
	}
	// FromRadio{my_info: {my_node_num: 1}}: field 3 bytes, inner field 1.
	if got := AppendFromRadio(nil, &FromRadio{HasMyInfo: true, MyNodeNum: 1}); !bytes.Equal(got, []byte{0x1a, 2, 0x08, 1}) {
		t.Fatalf("my_info: % x", got)
	}
	// Data{portnum: 256, payload: "hi"}: 08 80 02 12 02 'h' 'i'.
	if got := AppendData(nil, PortPrivateApp, []byte("hi")); !bytes.Equal(got, []byte{0x08, 0x80, 0x02, 0x12, 2, 'h', 'i'}) {
		t.Fatalf("data: % x", got)
	}
	// MeshPacket: from (1, fixed32) 0d, to (2, fixed32) 15, decoded (4) 22,
	// id (6, fixed32) 35, hop_limit (9) 48.
	got := AppendPacket(nil, &Packet{From: 1, To: Broadcast, ID: 2, HopLimit: 3, Port: 1, Payload: []byte{9}})
	want := []byte{0x0d, 1, 0, 0, 0, 0x15, 0xff, 0xff, 0xff, 0xff, 0x22, 5, 0x08, 1, 0x12, 1, 9, 0x35, 2, 0, 0, 0, 0x48, 3}
	if !bytes.Equal(got, want) {
		t.Fatalf("packet:\n got % x\nwant % x", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated tag":     {0x80},
		"truncated varint":  {0x18, 0x80},
		"group":             {0x1b},
		"wrong type":        {0x1d, 0, 0, 0, 0}, // want_config_id as fixed32
		"no payload":        {0x40, 0},          // field 8: none this radio serves
		"packet no decoded": {0x0a, 5, 0x0d, 1, 0, 0, 0},
	} {
		if _, err := ParseToRadio(b); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	big := AppendData(nil, PortPrivateApp, make([]byte, MaxPayload+1))
	pkt := append([]byte{0x22, byte(len(big)), 0x01}, big...)
	if _, err := ParsePacket(pkt); !errors.Is(err, ErrFrame) {
		t.Errorf("oversized payload: %v", err)
	}
}

func TestFrameReaderSkipsNoise(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("INFO  | ??:??:?? 3 [Router] booting\r\n")
	WriteFrame(&b, []byte("one"))
	b.Write([]byte{0x94, 0x94, 0xc3, 0, 3}) // a stray start byte before a frame
	b.WriteString("two")
	b.Write([]byte{0x94, 0xc3, 0xff, 0xff}) // a length no frame has
	b.WriteString("log line\n")
	WriteFrame(&b, []byte("three"))
	fr := NewFrameReader(&b)
	for _, want := range []string{"one", "two", "three"} {
		got, err := fr.Next()
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
	if fr.Skipped == 0 {
		t.Fatal("no noise counted")
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrame) {
		t.Fatalf("oversized frame written: %v", err)
	}
}

func FuzzParseFromRadio(f *testing.F) {
	f.Add(AppendFromRadio(nil, &FromRadio{ID: 1, Packet: &Packet{From: 1, To: Broadcast, ID: 3, Port: PortPrivateApp, Payload: []byte("x")}}))
	f.Add(AppendFromRadio(nil, &FromRadio{HasMyInfo: true, MyNodeNum: 7}))
	f.Add(AppendToRadio(nil, &ToRadio{WantConfigID: 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseFromRadio(b); err == nil && m.Packet != nil && len(m.Packet.Payload) > MaxPayload {
			t.Fatalf("payload of %d bytes accepted", len(m.Packet.Payload))
		} else if err != nil && !errors.Is(err, ErrFrame) {
			t.Fatalf("error outside ErrFrame: %v", err)
		}
		if m, err := ParseToRadio(b); err == nil && m.Packet != nil {
			// What parses re-encodes to something that parses the same.
			again, err := ParseToRadio(AppendToRadio(nil, m))
			if err != nil || !bytes.Equal(again.Packet.Payload, m.Packet.Payload) || again.Packet.ID != m.Packet.ID {
				t.Fatalf("re-encoding: %+v %v", again, err)
			}
		}
	})
}

func FuzzFrameReader(f *testing.F) {
	var b bytes.Buffer
	WriteFrame(&b, []byte("hello"))
	f.Add(b.Bytes())
	f.Add([]byte{0x94, 0xc3, 0x02, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b))
		for range 1000 {
			m, err := fr.Next()
			if err != nil {
				return
			}
			if len(m) > MaxFrame {
				t.Fatalf("frame of %d bytes", len(m))
			}
		}
	})
}
