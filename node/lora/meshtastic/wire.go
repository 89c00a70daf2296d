package meshtastic

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The stream protocol of Meshtastic's client API (the firmware's
// StreamAPI, served over USB serial and TCP port 4403): each message is
// framed as 0x94 0xC3, a 16-bit big-endian length and that many bytes of a
// protobuf ToRadio (client → radio) or FromRadio (radio → client). Bytes
// outside a frame (the firmware's debug log on serial) are skipped.
const (
	start1 = 0x94
	start2 = 0xc3
	// MaxFrame caps a frame's protobuf: the firmware's
	// MAX_TO_FROM_RADIO_SIZE.
	MaxFrame = 512
	// MaxPayload caps a Data payload: Constants.DATA_PAYLOAD_LEN in
	// meshtastic/mesh.proto.
	MaxPayload = 233
	// Broadcast is the "to" of a packet for every node.
	Broadcast = 0xffffffff
	// PortPrivateApp is PortNum.PRIVATE_APP (meshtastic/portnums.proto),
	// the port MESH's compact records travel on unless configured.
	PortPrivateApp = 256
	// DefaultHopLimit is the firmware's default hop limit.
	DefaultHopLimit = 3
)

// Field numbers, from the public meshtastic/protobufs repository,
// meshtastic/mesh.proto (messages ToRadio, FromRadio, MeshPacket, Data,
// MyNodeInfo) and meshtastic/portnums.proto (PortNum).
const (
	toRadioPacket       = 1 // MeshPacket packet
	toRadioWantConfigID = 3 // uint32 want_config_id
	toRadioDisconnect   = 4 // bool disconnect

	fromRadioID               = 1 // uint32 id
	fromRadioPacket           = 2 // MeshPacket packet
	fromRadioMyInfo           = 3 // MyNodeInfo my_info
	fromRadioConfigCompleteID = 7 // uint32 config_complete_id
	fromRadioRebooted         = 8 // bool rebooted

	packetFrom     = 1  // fixed32 from
	packetTo       = 2  // fixed32 to
	packetChannel  = 3  // uint32 channel
	packetDecoded  = 4  // Data decoded
	packetID       = 6  // fixed32 id
	packetRxTime   = 7  // fixed32 rx_time
	packetRxSNR    = 8  // float rx_snr
	packetHopLimit = 9  // uint32 hop_limit
	packetWantAck  = 10 // bool want_ack
	packetRxRSSI   = 12 // int32 rx_rssi
	packetHopStart = 15 // uint32 hop_start

	dataPortnum = 1 // PortNum portnum
	dataPayload = 2 // bytes payload

	myInfoNodeNum = 1 // uint32 my_node_num
)

// ErrFrame is wrapped by every error of a malformed frame or message.
var ErrFrame = errors.New("meshtastic: malformed message")

// Packet is the part of a MeshPacket MESH uses: a decoded Data on one
// port.
type Packet struct {
	From     uint32
	To       uint32
	Channel  uint32
	ID       uint32
	RxTime   uint32
	RxSNR    float32
	RxRSSI   int32
	HopLimit uint32
	HopStart uint32
	WantAck  bool
	Port     uint32
	Payload  []byte
	// Encrypted is set when the radio handed over a packet it could not
	// decrypt (MeshPacket.encrypted): no Port or Payload then.
	Encrypted bool
}

// ToRadio is a client's message to its radio: one of Packet,
// WantConfigID, Disconnect.
type ToRadio struct {
	Packet       *Packet
	WantConfigID uint32
	Disconnect   bool
}

// FromRadio is a radio's message to its client: one of Packet, MyNodeNum
// (my_info), ConfigCompleteID, Rebooted, or something else MESH does not
// read (Other: its field number).
type FromRadio struct {
	ID               uint32
	Packet           *Packet
	MyNodeNum        uint32
	HasMyInfo        bool
	ConfigCompleteID uint32
	HasConfigDone    bool
	Rebooted         bool
	Other            protowire.Number
}

// AppendPacket appends the MeshPacket encoding of p.
func AppendPacket(b []byte, p *Packet) []byte {
	b = protowire.AppendTag(b, packetFrom, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, p.From)
	b = protowire.AppendTag(b, packetTo, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, p.To)
	if p.Channel != 0 {
		b = protowire.AppendTag(b, packetChannel, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(p.Channel))
	}
	if !p.Encrypted {
		b = protowire.AppendTag(b, packetDecoded, protowire.BytesType)
		b = protowire.AppendBytes(b, AppendData(nil, p.Port, p.Payload))
	}
	b = protowire.AppendTag(b, packetID, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, p.ID)
	if p.RxTime != 0 {
		b = protowire.AppendTag(b, packetRxTime, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, p.RxTime)
	}
	if p.RxSNR != 0 {
		b = protowire.AppendTag(b, packetRxSNR, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(p.RxSNR))
	}
	if p.HopLimit != 0 {
		b = protowire.AppendTag(b, packetHopLimit, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(p.HopLimit))
	}
	if p.WantAck {
		b = protowire.AppendTag(b, packetWantAck, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	if p.RxRSSI != 0 {
		b = protowire.AppendTag(b, packetRxRSSI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(p.RxRSSI))) // int32: sign-extended
	}
	if p.HopStart != 0 {
		b = protowire.AppendTag(b, packetHopStart, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(p.HopStart))
	}
	return b
}

// AppendData appends the Data encoding of a payload on a port: what a
// radio encrypts and sends after its header.
func AppendData(b []byte, port uint32, payload []byte) []byte {
	b = protowire.AppendTag(b, dataPortnum, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(port))
	b = protowire.AppendTag(b, dataPayload, protowire.BytesType)
	return protowire.AppendBytes(b, payload)
}

// AppendToRadio appends the ToRadio encoding of m.
func AppendToRadio(b []byte, m *ToRadio) []byte {
	switch {
	case m.Packet != nil:
		b = protowire.AppendTag(b, toRadioPacket, protowire.BytesType)
		b = protowire.AppendBytes(b, AppendPacket(nil, m.Packet))
	case m.Disconnect:
		b = protowire.AppendTag(b, toRadioDisconnect, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	default:
		b = protowire.AppendTag(b, toRadioWantConfigID, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.WantConfigID))
	}
	return b
}

// AppendFromRadio appends the FromRadio encoding of m.
func AppendFromRadio(b []byte, m *FromRadio) []byte {
	if m.ID != 0 {
		b = protowire.AppendTag(b, fromRadioID, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.ID))
	}
	switch {
	case m.Packet != nil:
		b = protowire.AppendTag(b, fromRadioPacket, protowire.BytesType)
		b = protowire.AppendBytes(b, AppendPacket(nil, m.Packet))
	case m.HasMyInfo:
		var mi []byte
		mi = protowire.AppendTag(mi, myInfoNodeNum, protowire.VarintType)
		mi = protowire.AppendVarint(mi, uint64(m.MyNodeNum))
		b = protowire.AppendTag(b, fromRadioMyInfo, protowire.BytesType)
		b = protowire.AppendBytes(b, mi)
	case m.HasConfigDone:
		b = protowire.AppendTag(b, fromRadioConfigCompleteID, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.ConfigCompleteID))
	case m.Rebooted:
		b = protowire.AppendTag(b, fromRadioRebooted, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// fields walks the fields of one protobuf message, calling fn with each
// field's number, type and value (the varint or fixed value in v, the
// bytes of a length-delimited field in bs). Unknown fields are skipped, as
// protobuf requires; groups are refused.
func fields(b []byte, what string, fn func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %s: %v", ErrFrame, what, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("%w: %s: field %d of wire type %d", ErrFrame, what, num, typ)
		}
		if n < 0 {
			return fmt.Errorf("%w: %s: field %d: %v", ErrFrame, what, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

// want checks a known field's wire type.
func want(what string, num protowire.Number, got, typ protowire.Type) error {
	if got != typ {
		return fmt.Errorf("%w: %s: field %d of wire type %d, want %d", ErrFrame, what, num, got, typ)
	}
	return nil
}

// ParsePacket decodes a MeshPacket.
func ParsePacket(b []byte) (*Packet, error) {
	p := &Packet{}
	var decoded bool
	err := fields(b, "MeshPacket", func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		var err error
		switch num {
		case packetFrom, packetTo, packetID, packetRxTime, packetRxSNR:
			if err = want("MeshPacket", num, typ, protowire.Fixed32Type); err == nil {
				switch num {
				case packetFrom:
					p.From = uint32(v)
				case packetTo:
					p.To = uint32(v)
				case packetID:
					p.ID = uint32(v)
				case packetRxTime:
					p.RxTime = uint32(v)
				case packetRxSNR:
					p.RxSNR = math.Float32frombits(uint32(v))
				}
			}
		case packetChannel, packetHopLimit, packetWantAck, packetRxRSSI, packetHopStart:
			if err = want("MeshPacket", num, typ, protowire.VarintType); err == nil {
				switch num {
				case packetChannel:
					p.Channel = uint32(v)
				case packetHopLimit:
					p.HopLimit = uint32(v)
				case packetWantAck:
					p.WantAck = v != 0
				case packetRxRSSI:
					p.RxRSSI = int32(v)
				case packetHopStart:
					p.HopStart = uint32(v)
				}
			}
		case packetDecoded:
			if err = want("MeshPacket", num, typ, protowire.BytesType); err == nil {
				decoded = true
				p.Encrypted = false
				err = parseData(bs, p)
			}
		case 5: // bytes encrypted: the radio could not decrypt it
			if !decoded {
				p.Encrypted = true
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !decoded && !p.Encrypted {
		return nil, fmt.Errorf("%w: MeshPacket: neither decoded nor encrypted", ErrFrame)
	}
	return p, nil
}

func parseData(b []byte, p *Packet) error {
	return fields(b, "Data", func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case dataPortnum:
			if err := want("Data", num, typ, protowire.VarintType); err != nil {
				return err
			}
			p.Port = uint32(v)
		case dataPayload:
			if err := want("Data", num, typ, protowire.BytesType); err != nil {
				return err
			}
			if len(bs) > MaxPayload {
				return fmt.Errorf("%w: Data: payload of %d bytes, the limit is %d", ErrFrame, len(bs), MaxPayload)
			}
			p.Payload = append([]byte(nil), bs...)
		}
		return nil
	})
}

// ParseToRadio decodes a ToRadio.
func ParseToRadio(b []byte) (*ToRadio, error) {
	m := &ToRadio{}
	seen := false
	err := fields(b, "ToRadio", func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case toRadioPacket:
			if err := want("ToRadio", num, typ, protowire.BytesType); err != nil {
				return err
			}
			p, err := ParsePacket(bs)
			if err != nil {
				return err
			}
			*m, seen = ToRadio{Packet: p}, true
		case toRadioWantConfigID:
			if err := want("ToRadio", num, typ, protowire.VarintType); err != nil {
				return err
			}
			*m, seen = ToRadio{WantConfigID: uint32(v)}, true
		case toRadioDisconnect:
			if err := want("ToRadio", num, typ, protowire.VarintType); err != nil {
				return err
			}
			*m, seen = ToRadio{Disconnect: v != 0}, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !seen {
		return nil, fmt.Errorf("%w: ToRadio: no payload this radio serves", ErrFrame)
	}
	return m, nil
}

// ParseFromRadio decodes a FromRadio.
func ParseFromRadio(b []byte) (*FromRadio, error) {
	m := &FromRadio{}
	err := fields(b, "FromRadio", func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch num {
		case fromRadioID:
			if err := want("FromRadio", num, typ, protowire.VarintType); err != nil {
				return err
			}
			m.ID = uint32(v)
		case fromRadioPacket:
			if err := want("FromRadio", num, typ, protowire.BytesType); err != nil {
				return err
			}
			p, err := ParsePacket(bs)
			if err != nil {
				return err
			}
			m.Packet = p
		case fromRadioMyInfo:
			if err := want("FromRadio", num, typ, protowire.BytesType); err != nil {
				return err
			}
			m.HasMyInfo = true
			return fields(bs, "MyNodeInfo", func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == myInfoNodeNum {
					if err := want("MyNodeInfo", num, typ, protowire.VarintType); err != nil {
						return err
					}
					m.MyNodeNum = uint32(v)
				}
				return nil
			})
		case fromRadioConfigCompleteID:
			if err := want("FromRadio", num, typ, protowire.VarintType); err != nil {
				return err
			}
			m.ConfigCompleteID, m.HasConfigDone = uint32(v), true
		case fromRadioRebooted:
			m.Rebooted = v != 0
		default:
			m.Other = num
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFrame writes one framed message.
func WriteFrame(w io.Writer, msg []byte) error {
	if len(msg) > MaxFrame {
		return fmt.Errorf("%w: frame of %d bytes, the limit is %d", ErrFrame, len(msg), MaxFrame)
	}
	b := make([]byte, 4, 4+len(msg))
	b[0], b[1], b[2], b[3] = start1, start2, byte(len(msg)>>8), byte(len(msg))
	_, err := w.Write(append(b, msg...))
	return err
}

// FrameReader reads framed messages, skipping bytes outside frames (the
// firmware's debug output on a serial port) and resynchronizing after a
// frame too long to be one.
type FrameReader struct {
	r *bufio.Reader
	// Skipped counts bytes skipped outside frames.
	Skipped int
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 1024)}
}

// Next returns the next frame's message (valid until the next call).
func (f *FrameReader) Next() ([]byte, error) {
	buf := make([]byte, MaxFrame)
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c != start1 {
			f.Skipped++
			continue
		}
		c, err = f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c != start2 {
			f.Skipped++
			if c == start1 {
				f.r.UnreadByte()
			} else {
				f.Skipped++
			}
			continue
		}
		var hdr [2]byte
		if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
			return nil, err
		}
		n := int(hdr[0])<<8 | int(hdr[1])
		if n > MaxFrame {
			// Not a frame (or a corrupted one): look for the next start.
			f.Skipped += 4
			continue
		}
		if _, err := io.ReadFull(f.r, buf[:n]); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
