package protocol

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// Compact records are the binary records MESH sends over LoRa radios
// (Meshtastic) and to Wi-Fi microcontrollers: a reading, an announcement
// and a revocation, each signed by the sensor's Ed25519 node key and small
// enough for one radio packet. The byte layout is in the protocol README
// ("Compact records"); golden vectors are in testdata/golden/compact.json.

// Compact record sizes and limits.
const (
	// MaxCompactSize caps every compact record: Meshtastic's payload
	// limit (DATA_PAYLOAD_LEN, 233 bytes).
	MaxCompactSize = 233
	// CompactVersion is the version in the high nibble of a compact
	// record's first byte.
	CompactVersion = 1
	// ShortIDSize is the size of a sender's short ID.
	ShortIDSize = 4
	// MaxCompactFields caps the fields of a stream and of a reading: a
	// reading's field mask is one byte.
	MaxCompactFields = 8
	// MaxCompactStreams caps the streams of one announcement.
	MaxCompactStreams = 8
	// MaxCompactNameLength caps a stream name in an announcement.
	MaxCompactNameLength = 32
	// MaxCompactFieldNameLength caps a field name in an announcement.
	MaxCompactFieldNameLength = 16
	// MaxCompactUnitLength caps a stream's unit in an announcement.
	MaxCompactUnitLength = 8
)

// CompactKind is the type of a compact record, the low nibble of its
// first byte.
type CompactKind uint8

// The compact record kinds.
const (
	CompactReading      CompactKind = 1
	CompactAnnouncement CompactKind = 2
	CompactRevocation   CompactKind = 3
)

func (k CompactKind) String() string {
	switch k {
	case CompactReading:
		return "reading"
	case CompactAnnouncement:
		return "announcement"
	case CompactRevocation:
		return "revocation"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// compactSigContext prefixes the bytes a compact record's signature
// covers, so that no other MESH or libp2p signature is ever a valid one.
const compactSigContext = "MESH-compact-v1\x00"

// compactNonceContext prefixes what a compact reading's nonce is hashed
// from.
const compactNonceContext = "MESH-compact-nonce-v1\x00"

// Errors of compact records. Where this package returns them they also
// wrap ErrInvalid, so they map to the INVALID_REQUEST code.
var (
	// ErrShortIDCollision: two different keys have the same short ID;
	// the second is refused.
	ErrShortIDCollision = errors.New("short ID collision")
	// ErrUnknownSender: no key is known for a record's short ID.
	ErrUnknownSender = errors.New("unknown sender")
	// ErrReplay: the sender's sequence number was seen already, or is
	// too old to tell.
	ErrReplay = errors.New("replayed sequence number")
)

// ShortID names a compact record's sender: the first ShortIDSize bytes of
// SHA-256 of its 32-byte Ed25519 public key. It is not unique: receivers
// map short IDs to keys (ShortIDTable) and refuse collisions.
type ShortID [ShortIDSize]byte

// ShortIDOf is the short ID of an Ed25519 public key.
func ShortIDOf(pub ed25519.PublicKey) ShortID {
	h := sha256.Sum256(pub)
	var s ShortID
	copy(s[:], h[:ShortIDSize])
	return s
}

func (s ShortID) String() string { return hex.EncodeToString(s[:]) }

// CompactStream is one stream of an announcement: its name, its unit and
// its fields, in the order a reading's field mask and values follow.
type CompactStream struct {
	Name   string   // a stream name ("basement/humidity"), at most MaxCompactNameLength bytes
	Unit   string   // optional, at most MaxCompactUnitLength bytes
	Fields []string // 1 to MaxCompactFields names, each at most MaxCompactFieldNameLength bytes
}

// CompactField is one field of a reading: its index in the stream's
// fields, and its value.
type CompactField struct {
	Index uint8
	Value float32
}

// Compact is a decoded compact record. DecodeCompact fills it from bytes
// without checking the signature (the sender's key may not be known yet);
// Verify checks it.
type Compact struct {
	Kind CompactKind
	// Sender is the sender's short ID (for an announcement, the short ID
	// of PublicKey).
	Sender ShortID
	// Seq is the sender's sequence number: 1 or more, one per record the
	// sender ever signs, whatever its kind.
	Seq uint32
	// Time is when the sender made the record, in whole seconds.
	Time time.Time

	// Reading: the stream's index in the sender's announcement, and either
	// Fields (plain) or Epoch and Ciphertext (encrypted: the GCM output,
	// the field mask and values encrypted, tag last).
	Stream     uint8
	Encrypted  bool
	Epoch      uint32
	Fields     []CompactField
	Ciphertext []byte

	// Announcement: the sender's key and streams.
	PublicKey ed25519.PublicKey
	Streams   []CompactStream

	// Revocation: the sequence number of the sender's record it revokes,
	// and why (0 unspecified, 1 erroneous, 2 key compromised; others are
	// kept as they are).
	Target uint32
	Reason uint8

	// Raw is the whole record as received; Signature its last 64 bytes.
	Raw       []byte
	Signature []byte
}

// ReadingParams is what a sensor signs into a compact reading.
type ReadingParams struct {
	Stream uint8
	Seq    uint32
	Time   time.Time
	Fields []CompactField // 1 to MaxCompactFields, indexes distinct and below MaxCompactFields
	// Key, if set, is the stream's current epoch key (32 bytes, AES-256):
	// the fields are encrypted under it and Epoch names it.
	Key   []byte
	Epoch uint32
}

// EncodeReading signs a compact reading with the sensor's key.
func EncodeReading(priv ed25519.PrivateKey, p ReadingParams) ([]byte, error) {
	if err := checkSigner(priv); err != nil {
		return nil, err
	}
	if err := checkSeqTime(p.Seq, p.Time); err != nil {
		return nil, err
	}
	if len(p.Fields) == 0 || len(p.Fields) > MaxCompactFields {
		return nil, invalidf("compact reading: %d fields, want 1 to %d", len(p.Fields), MaxCompactFields)
	}
	pub := priv.Public().(ed25519.PublicKey)
	sender := ShortIDOf(pub)
	b := make([]byte, 0, MaxCompactSize)
	b = append(b, compactHead(CompactReading))
	b = append(b, sender[:]...)
	flags := byte(0)
	if p.Key != nil {
		flags |= flagEncrypted
	}
	b = append(b, flags, p.Stream)
	b = binary.AppendUvarint(b, uint64(p.Seq))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Time.Unix()))
	if p.Key != nil {
		b = binary.AppendUvarint(b, uint64(p.Epoch))
	}
	body, err := encodeFields(p.Fields)
	if err != nil {
		return nil, err
	}
	if p.Key != nil {
		aead, err := compactAEAD(p.Key)
		if err != nil {
			return nil, err
		}
		header := append([]byte(nil), b...) // the additional data
		b = aead.Seal(b, CompactNonce(pub, p.Stream, p.Epoch, p.Seq), body, header)
	} else {
		b = append(b, body...)
	}
	return finishCompact(priv, b)
}

// AnnouncementParams is what a sensor signs into an announcement.
type AnnouncementParams struct {
	Seq     uint32
	Time    time.Time
	Streams []CompactStream // 1 to MaxCompactStreams
}

// EncodeAnnouncement signs an announcement: the sensor's full public key
// (which its short ID is derived from) and its streams.
func EncodeAnnouncement(priv ed25519.PrivateKey, p AnnouncementParams) ([]byte, error) {
	if err := checkSigner(priv); err != nil {
		return nil, err
	}
	if err := checkSeqTime(p.Seq, p.Time); err != nil {
		return nil, err
	}
	if len(p.Streams) == 0 || len(p.Streams) > MaxCompactStreams {
		return nil, invalidf("compact announcement: %d streams, want 1 to %d", len(p.Streams), MaxCompactStreams)
	}
	b := make([]byte, 0, MaxCompactSize)
	b = append(b, compactHead(CompactAnnouncement))
	b = append(b, priv.Public().(ed25519.PublicKey)...)
	b = binary.AppendUvarint(b, uint64(p.Seq))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Time.Unix()))
	b = append(b, byte(len(p.Streams)))
	for i, s := range p.Streams {
		if err := checkCompactStream(s); err != nil {
			return nil, fmt.Errorf("compact announcement: stream %d: %w", i, err)
		}
		b = appendShort(b, s.Name)
		b = appendShort(b, s.Unit)
		b = append(b, byte(len(s.Fields)))
		for _, f := range s.Fields {
			b = appendShort(b, f)
		}
	}
	return finishCompact(priv, b)
}

// RevocationParams is what a sensor signs into a compact revocation.
type RevocationParams struct {
	Seq    uint32
	Time   time.Time
	Target uint32 // the sequence number of the record revoked
	Reason uint8
}

// EncodeCompactRevocation signs a compact revocation of one of the
// sensor's earlier records.
func EncodeCompactRevocation(priv ed25519.PrivateKey, p RevocationParams) ([]byte, error) {
	if err := checkSigner(priv); err != nil {
		return nil, err
	}
	if err := checkSeqTime(p.Seq, p.Time); err != nil {
		return nil, err
	}
	if p.Target == 0 || p.Target >= p.Seq {
		return nil, invalidf("compact revocation: target %d: want an earlier sequence number than %d", p.Target, p.Seq)
	}
	sender := ShortIDOf(priv.Public().(ed25519.PublicKey))
	b := make([]byte, 0, 96)
	b = append(b, compactHead(CompactRevocation))
	b = append(b, sender[:]...)
	b = binary.AppendUvarint(b, uint64(p.Seq))
	b = binary.BigEndian.AppendUint32(b, uint32(p.Time.Unix()))
	b = binary.AppendUvarint(b, uint64(p.Target))
	b = append(b, p.Reason)
	return finishCompact(priv, b)
}

const flagEncrypted = 0x01

func compactHead(k CompactKind) byte { return CompactVersion<<4 | byte(k) }

func checkSigner(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return invalidf("compact record: signing key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	return nil
}

func checkSeqTime(seq uint32, t time.Time) error {
	if seq == 0 {
		return invalidf("compact record: sequence number 0: sequence numbers start at 1")
	}
	if t.Unix() <= 0 || t.Unix() > math.MaxUint32 {
		return invalidf("compact record: time %s: want 1970-01-01 to 2106-02-07", t.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkCompactStream(s CompactStream) error {
	if err := checkCompactName("name", s.Name, MaxCompactNameLength, true); err != nil {
		return err
	}
	if len(s.Unit) > MaxCompactUnitLength {
		return invalidf("unit %q: %d bytes, the limit is %d", compactClip(s.Unit), len(s.Unit), MaxCompactUnitLength)
	}
	if !printableUTF8(s.Unit) {
		return invalidf("unit %q: want printable UTF-8", compactClip(s.Unit))
	}
	if len(s.Fields) == 0 || len(s.Fields) > MaxCompactFields {
		return invalidf("stream %q: %d fields, want 1 to %d", s.Name, len(s.Fields), MaxCompactFields)
	}
	seen := make(map[string]bool, len(s.Fields))
	for _, f := range s.Fields {
		if err := checkCompactName("field", f, MaxCompactFieldNameLength, false); err != nil {
			return err
		}
		if seen[f] {
			return invalidf("stream %q: field %q twice", s.Name, f)
		}
		seen[f] = true
	}
	return nil
}

// ValidateCompactStreamName checks a stream name as an announcement
// carries it.
func ValidateCompactStreamName(name string) error {
	return checkCompactName("stream", name, MaxCompactNameLength, true)
}

// checkCompactName checks a stream name (slashes allowed between
// segments) or a field name: lower-case ASCII letters, digits, '_', '-'.
func checkCompactName(what, s string, limit int, slashes bool) error {
	if s == "" || len(s) > limit {
		return invalidf("%s %q: want 1 to %d bytes", what, compactClip(s), limit)
	}
	prev := byte('/')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '/' && slashes && prev != '/' && i != len(s)-1:
		default:
			return invalidf("%s %q: use lower-case letters, digits, '_' and '-'%s", what, compactClip(s), map[bool]string{true: " between '/'", false: ""}[slashes])
		}
		prev = c
	}
	return nil
}

// compactClip shortens s for an error message.
func compactClip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func printableUTF8(s string) bool {
	for _, r := range s {
		if r == 0xfffd || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func appendShort(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// encodeFields is a reading's body: a mask of the field indexes present,
// then each present field's value as a big-endian IEEE 754 float32, in
// index order.
func encodeFields(fs []CompactField) ([]byte, error) {
	var mask byte
	var vals [MaxCompactFields]float32
	for _, f := range fs {
		if f.Index >= MaxCompactFields {
			return nil, invalidf("compact reading: field index %d, the limit is %d", f.Index, MaxCompactFields-1)
		}
		if mask&(1<<f.Index) != 0 {
			return nil, invalidf("compact reading: field %d twice", f.Index)
		}
		if math.IsNaN(float64(f.Value)) || math.IsInf(float64(f.Value), 0) {
			return nil, invalidf("compact reading: field %d: %v is not a number", f.Index, f.Value)
		}
		mask |= 1 << f.Index
		vals[f.Index] = f.Value
	}
	b := []byte{mask}
	for i := range MaxCompactFields {
		if mask&(1<<i) != 0 {
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(vals[i]))
		}
	}
	return b, nil
}

func decodeFields(b []byte) ([]CompactField, error) {
	if len(b) == 0 {
		return nil, invalidf("compact reading: no fields")
	}
	mask, rest := b[0], b[1:]
	if mask == 0 {
		return nil, invalidf("compact reading: no fields")
	}
	var fs []CompactField
	for i := range MaxCompactFields {
		if mask&(1<<i) == 0 {
			continue
		}
		if len(rest) < 4 {
			return nil, invalidf("compact reading: field %d cut short", i)
		}
		v := math.Float32frombits(binary.BigEndian.Uint32(rest))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, invalidf("compact reading: field %d is not a number", i)
		}
		fs = append(fs, CompactField{Index: uint8(i), Value: v})
		rest = rest[4:]
	}
	if len(rest) != 0 {
		return nil, invalidf("compact reading: %d bytes after the fields", len(rest))
	}
	return fs, nil
}

func finishCompact(priv ed25519.PrivateKey, b []byte) ([]byte, error) {
	sig := ed25519.Sign(priv, compactSigned(b))
	b = append(b, sig...)
	if len(b) > MaxCompactSize {
		return nil, fmt.Errorf("%w: %w: compact record of %d bytes, the limit is %d", ErrInvalid, ErrTooLarge, len(b), MaxCompactSize)
	}
	return b, nil
}

func compactSigned(body []byte) []byte {
	m := make([]byte, 0, len(compactSigContext)+len(body))
	m = append(m, compactSigContext...)
	return append(m, body...)
}

func compactAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != LessonKeySize {
		return nil, invalidf("compact reading: epoch key of %d bytes, want %d", len(key), LessonKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// CompactNonce is the GCM nonce of an encrypted compact reading: the first
// 12 bytes of SHA-256 of a context string, the sensor's public key, the
// stream index, the epoch and the sequence number. A sensor never signs two
// records with one sequence number, so a nonce is never used twice with
// one key; it is not sent, which saves 12 bytes of every packet.
func CompactNonce(pub ed25519.PublicKey, stream uint8, epoch, seq uint32) []byte {
	h := sha256.New()
	h.Write([]byte(compactNonceContext))
	h.Write(pub)
	var tail [9]byte
	tail[0] = stream
	binary.BigEndian.PutUint32(tail[1:], epoch)
	binary.BigEndian.PutUint32(tail[5:], seq)
	h.Write(tail[:])
	return h.Sum(nil)[:NonceSize]
}

// DecodeCompact parses a compact record without checking its signature
// (see Verify). It refuses, with an error wrapping ErrInvalid, anything
// over MaxCompactSize bytes, of another version or kind, with a field out
// of range, or with bytes left over.
func DecodeCompact(b []byte) (*Compact, error) {
	if len(b) > MaxCompactSize {
		return nil, fmt.Errorf("%w: %w: compact record of %d bytes, the limit is %d", ErrInvalid, ErrTooLarge, len(b), MaxCompactSize)
	}
	if len(b) < 1+ed25519.SignatureSize {
		return nil, invalidf("compact record: %d bytes, too short", len(b))
	}
	if v := b[0] >> 4; v != CompactVersion {
		return nil, fmt.Errorf("%w: compact record of version %d, this node reads version %d", ErrUnsupportedVersion, v, CompactVersion)
	}
	c := &Compact{Kind: CompactKind(b[0] & 0x0f), Raw: append([]byte(nil), b...)}
	body := c.Raw[:len(c.Raw)-ed25519.SignatureSize]
	c.Signature = c.Raw[len(body):]
	r := compactReader{b: body, off: 1, what: "compact " + c.Kind.String()}
	switch c.Kind {
	case CompactReading:
		copy(c.Sender[:], r.bytes(ShortIDSize, "sender"))
		flags := r.byte("flags")
		if flags&^flagEncrypted != 0 {
			r.fail("unknown flags %#02x", flags)
		}
		c.Encrypted = flags&flagEncrypted != 0
		c.Stream = r.byte("stream")
		c.Seq, c.Time = r.seqTime()
		if c.Encrypted {
			c.Epoch = r.uvarint32("epoch")
			rest := r.rest()
			// At least a field mask and one value, and the tag.
			if r.err == nil && len(rest) < 1+4+TagSize {
				r.fail("ciphertext of %d bytes, too short", len(rest))
			}
			c.Ciphertext = rest
		} else if r.err == nil {
			fs, err := decodeFields(r.rest())
			if err != nil {
				return nil, err
			}
			c.Fields = fs
		}
	case CompactAnnouncement:
		c.PublicKey = ed25519.PublicKey(append([]byte(nil), r.bytes(ed25519.PublicKeySize, "public key")...))
		if r.err == nil {
			c.Sender = ShortIDOf(c.PublicKey)
		}
		c.Seq, c.Time = r.seqTime()
		n := int(r.byte("stream count"))
		if r.err == nil && (n == 0 || n > MaxCompactStreams) {
			r.fail("%d streams, want 1 to %d", n, MaxCompactStreams)
		}
		for i := 0; i < n && r.err == nil; i++ {
			s := CompactStream{Name: r.short("stream name"), Unit: r.short("unit")}
			nf := int(r.byte("field count"))
			for j := 0; j < nf && r.err == nil; j++ {
				s.Fields = append(s.Fields, r.short("field name"))
			}
			if r.err == nil {
				if err := checkCompactStream(s); err != nil {
					return nil, fmt.Errorf("compact announcement: stream %d: %w", i, err)
				}
			}
			c.Streams = append(c.Streams, s)
		}
		r.end()
	case CompactRevocation:
		copy(c.Sender[:], r.bytes(ShortIDSize, "sender"))
		c.Seq, c.Time = r.seqTime()
		c.Target = r.uvarint32("target")
		c.Reason = r.byte("reason")
		if r.err == nil && (c.Target == 0 || c.Target >= c.Seq) {
			r.fail("target %d: want an earlier sequence number than %d", c.Target, c.Seq)
		}
		r.end()
	default:
		return nil, invalidf("compact record: unknown kind %d", uint8(c.Kind))
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// Verify checks the record's signature with the sender's public key,
// which must be the key its short ID names (for an announcement, the key it
// carries). A failure wraps ErrInvalidSignature.
func (c *Compact) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: compact %s: public key of %d bytes", ErrInvalidSignature, c.Kind, len(pub))
	}
	if ShortIDOf(pub) != c.Sender {
		return fmt.Errorf("%w: compact %s: the key %x is not sender %s's", ErrInvalidSignature, c.Kind, []byte(pub[:4]), c.Sender)
	}
	if c.Kind == CompactAnnouncement && !pub.Equal(c.PublicKey) {
		return fmt.Errorf("%w: compact announcement: signed by another key than it announces", ErrInvalidSignature)
	}
	if !ed25519.Verify(pub, compactSigned(c.Raw[:len(c.Raw)-ed25519.SignatureSize]), c.Signature) {
		return fmt.Errorf("%w: compact %s from %s seq %d", ErrInvalidSignature, c.Kind, c.Sender, c.Seq)
	}
	return nil
}

// VerifyAnnouncement checks a decoded announcement's signature with the key
// it carries.
func (c *Compact) VerifyAnnouncement() error {
	if c.Kind != CompactAnnouncement {
		return invalidf("compact %s: not an announcement", c.Kind)
	}
	return c.Verify(c.PublicKey)
}

// Open decrypts an encrypted reading's fields with the stream's epoch key
// (the key Epoch names) and the sensor's public key, which the nonce is
// derived from. A wrong key or altered bytes give an error wrapping
// ErrInvalid. A plain reading's fields are returned as they are.
func (c *Compact) Open(key []byte, pub ed25519.PublicKey) ([]CompactField, error) {
	if c.Kind != CompactReading {
		return nil, invalidf("compact %s: not a reading", c.Kind)
	}
	if !c.Encrypted {
		return c.Fields, nil
	}
	aead, err := compactAEAD(key)
	if err != nil {
		return nil, err
	}
	header := c.Raw[:len(c.Raw)-ed25519.SignatureSize-len(c.Ciphertext)]
	plain, err := aead.Open(nil, CompactNonce(pub, c.Stream, c.Epoch, c.Seq), c.Ciphertext, header)
	if err != nil {
		return nil, invalidf("compact reading from %s seq %d: cannot decrypt with this key (epoch %d)", c.Sender, c.Seq, c.Epoch)
	}
	return decodeFields(plain)
}

// compactReader reads a compact record's fields in order; the first error
// sticks and later reads return zero values.
type compactReader struct {
	b    []byte
	off  int
	what string
	err  error
}

func (r *compactReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = invalidf("%s: "+format, append([]any{r.what}, args...)...)
	}
}

func (r *compactReader) bytes(n int, name string) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.b)-r.off < n {
		r.fail("%s cut short", name)
		return make([]byte, n)
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *compactReader) byte(name string) byte { return r.bytes(1, name)[0] }

func (r *compactReader) uvarint32(name string) uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		r.fail("%s cut short", name)
		return 0
	case n < 0 || v > math.MaxUint32:
		r.fail("%s out of range", name)
		return 0
	case n != len(binary.AppendUvarint(nil, v)):
		r.fail("%s not in its shortest form", name)
		return 0
	}
	r.off += n
	return uint32(v)
}

func (r *compactReader) seqTime() (uint32, time.Time) {
	seq := r.uvarint32("sequence number")
	if r.err == nil && seq == 0 {
		r.fail("sequence number 0")
	}
	t := binary.BigEndian.Uint32(r.bytes(4, "time"))
	if r.err == nil && t == 0 {
		r.fail("time 0")
	}
	return seq, time.Unix(int64(t), 0).UTC()
}

func (r *compactReader) short(name string) string {
	n := int(r.byte(name + " length"))
	return string(r.bytes(n, name))
}

func (r *compactReader) rest() []byte {
	if r.err != nil {
		return nil
	}
	v := r.b[r.off:]
	r.off = len(r.b)
	return v
}

func (r *compactReader) end() {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over", len(r.b)-r.off)
	}
}

// ShortIDTable maps short IDs to the keys they name, from verified
// announcements, the trust graph and DHT node records. It refuses a second
// key for a short ID. It is not safe for concurrent use.
type ShortIDTable struct {
	keys map[ShortID]ed25519.PublicKey
	max  int
}

// NewShortIDTable returns a table of at most max keys (0: no limit).
func NewShortIDTable(max int) *ShortIDTable {
	return &ShortIDTable{keys: make(map[ShortID]ed25519.PublicKey), max: max}
}

// Learn records pub under its short ID. It returns an error wrapping
// ErrShortIDCollision when another key holds that short ID, and one
// wrapping ErrTooLarge when the table is full.
func (t *ShortIDTable) Learn(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return invalidf("short ID table: public key of %d bytes", len(pub))
	}
	s := ShortIDOf(pub)
	if old, ok := t.keys[s]; ok {
		if old.Equal(pub) {
			return nil
		}
		return fmt.Errorf("%w: %w: short ID %s is already the key %x…, refusing %x…", ErrInvalid, ErrShortIDCollision, s, []byte(old[:6]), []byte(pub[:6]))
	}
	if t.max > 0 && len(t.keys) >= t.max {
		return fmt.Errorf("%w: short ID table holds %d keys, the limit", ErrTooLarge, t.max)
	}
	t.keys[s] = append(ed25519.PublicKey(nil), pub...)
	return nil
}

// Lookup returns the key of a short ID, if known.
func (t *ShortIDTable) Lookup(s ShortID) (ed25519.PublicKey, bool) {
	k, ok := t.keys[s]
	return k, ok
}

// Len is the number of keys held.
func (t *ShortIDTable) Len() int { return len(t.keys) }

// ReplayWindowSize is how far behind a sender's highest sequence number a
// record may arrive and still be accepted once (radio floods reorder).
const ReplayWindowSize = 64

// ReplayWindow refuses a sender's sequence numbers seen before: it keeps
// the highest accepted and a bitmap of the ReplayWindowSize below it, as
// IPsec's anti-replay window does. Older numbers are refused: they cannot
// be told apart from replays.
type ReplayWindow struct {
	Highest uint32
	Seen    uint64 // bit i: Highest-i was accepted
}

// Check reports whether seq would be accepted, without recording it.
func (w *ReplayWindow) Check(seq uint32) error {
	switch {
	case seq == 0:
		return fmt.Errorf("%w: %w: sequence number 0", ErrInvalid, ErrReplay)
	case seq > w.Highest:
		return nil
	case w.Highest-seq >= ReplayWindowSize:
		return fmt.Errorf("%w: %w: %d is more than %d behind %d", ErrInvalid, ErrReplay, seq, ReplayWindowSize, w.Highest)
	case w.Seen&(1<<(w.Highest-seq)) != 0:
		return fmt.Errorf("%w: %w: %d seen already", ErrInvalid, ErrReplay, seq)
	}
	return nil
}

// Accept records seq if Check accepts it.
func (w *ReplayWindow) Accept(seq uint32) error {
	if err := w.Check(seq); err != nil {
		return err
	}
	if seq > w.Highest {
		shift := seq - w.Highest
		if shift >= ReplayWindowSize {
			w.Seen = 0
		} else {
			w.Seen <<= shift
		}
		w.Seen |= 1
		w.Highest = seq
		return nil
	}
	w.Seen |= 1 << (w.Highest - seq)
	return nil
}
