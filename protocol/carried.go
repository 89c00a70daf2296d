package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// A reading heard on a radio enters MESH inside a record the gateway
// publishes (signed by the gateway, as every lesson is by its publisher)
// that keeps the sensor's own proof: the compact record's bytes and the
// announcement that names the sensor's key and the reading's stream. Anyone
// can check the proof without trusting the gateway: VerifyCarried.

// Record fields of a carried reading (an AMP record of type "reading").
const (
	// CarriedCompactField holds the compact record, base64 (std, padded).
	CarriedCompactField = "compact"
	// CarriedAnnouncementField holds the sensor's announcement, base64.
	CarriedAnnouncementField = "announcement"
	// CarriedSensorField holds the sensor's node ID.
	CarriedSensorField = "sensor"
	// CarriedViaField says how the gateway heard it ("lora:…", "udp:…").
	CarriedViaField = "via"
)

// CarriedID is the record ID a carried compact record gets: the same at
// every gateway that carries it, so that a holder keeps it once.
func CarriedID(sender ShortID, seq uint32) string {
	return fmt.Sprintf("lora-%s-%d", sender, seq)
}

// Carried is what VerifyCarried established of a carried record.
type Carried struct {
	// Sensor is the sensor's node ID (12D3KooW…), from the key its
	// announcement carries.
	Sensor string
	Key    ed25519.PublicKey
	Record *Compact
	// Stream is the reading's stream, as the announcement names it (nil
	// for an announcement or a revocation).
	Stream *CompactStream
}

// VerifyCarried checks the sensor's proof of a carried record: the
// announcement verifies with the key it carries, the record has the same
// short ID and verifies with that key, and a reading's stream index names
// one of the announcement's streams. The errors wrap ErrInvalid or
// ErrInvalidSignature and name what failed.
func VerifyCarried(compact, announcement []byte) (*Carried, error) {
	ann, err := DecodeCompact(announcement)
	if err != nil {
		return nil, fmt.Errorf("carried record: announcement: %w", err)
	}
	if err := ann.VerifyAnnouncement(); err != nil {
		return nil, fmt.Errorf("carried record: %w", err)
	}
	rec, err := DecodeCompact(compact)
	if err != nil {
		return nil, fmt.Errorf("carried record: %w", err)
	}
	if rec.Sender != ann.Sender {
		return nil, fmt.Errorf("%w: carried record: sender %s, the announcement is %s's", ErrInvalidSignature, rec.Sender, ann.Sender)
	}
	if err := rec.Verify(ann.PublicKey); err != nil {
		return nil, fmt.Errorf("carried record: %w", err)
	}
	id, err := NodeID(ann.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("carried record: %w", err)
	}
	c := &Carried{Sensor: id, Key: ann.PublicKey, Record: rec}
	if rec.Kind == CompactReading {
		if int(rec.Stream) >= len(ann.Streams) {
			return nil, invalidf("carried record: stream %d, the announcement names %d", rec.Stream, len(ann.Streams))
		}
		c.Stream = &ann.Streams[rec.Stream]
	}
	return c, nil
}

// CarriedProof reads the proof fields of a lesson record (a carried
// reading); ok is false when the record carries none.
func CarriedProof(l *Lesson) (compact, announcement []byte, ok bool, err error) {
	str := func(k string) string {
		var v string
		json.Unmarshal(l.Extra[k], &v) // absent or not a string: ""
		return v
	}
	cs, as := str(CarriedCompactField), str(CarriedAnnouncementField)
	if cs == "" && as == "" {
		return nil, nil, false, nil
	}
	if compact, err = base64.StdEncoding.DecodeString(cs); err != nil || len(compact) == 0 {
		return nil, nil, true, invalidf("carried record: field %q is not base64 of a compact record", CarriedCompactField)
	}
	if announcement, err = base64.StdEncoding.DecodeString(as); err != nil || len(announcement) == 0 {
		return nil, nil, true, invalidf("carried record: field %q is not base64 of an announcement", CarriedAnnouncementField)
	}
	if s := str(CarriedSensorField); s != "" && !strings.HasPrefix(s, "12D3KooW") {
		return nil, nil, true, invalidf("carried record: field %q is not a node ID", CarriedSensorField)
	}
	return compact, announcement, true, nil
}

// CheckCarried checks a lesson record that carries a sensor's proof (a
// reading a gateway carried): the proof verifies and names the record's
// ID. carried is false for a record without proof fields (then c and err
// are nil); c is what the proof established, when it verifies.
func CheckCarried(l *Lesson) (c *Carried, carried bool, err error) {
	if l.Type != "reading" {
		return nil, false, nil
	}
	compact, ann, has, err := CarriedProof(l)
	if !has || err != nil {
		return nil, has, err
	}
	if c, err = VerifyCarried(compact, ann); err != nil {
		return nil, true, err
	}
	if id := CarriedID(c.Record.Sender, c.Record.Seq); id != l.ID {
		return nil, true, invalidf("carried record: its id is %q, its proof's is %q", compactClip(l.ID), id)
	}
	return c, true, nil
}
