package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// AlgorithmEd25519 is the only signature algorithm MESH speaks.
const AlgorithmEd25519 = "ed25519"

// Publication says how a lesson is published.
type Publication struct {
	// Visibility is unlisted or public; private records are never signed.
	Visibility string `json:"visibility"`
	// PublishedAt is Unix ms. A newer PublishedAt from the same publisher
	// supersedes an older one.
	PublishedAt int64 `json:"publishedAt"`
	// Topics are the MESH topics the lesson is announced on. Nil is omitted;
	// an empty, non-nil slice encodes as [].
	Topics []string `json:"topics,omitempty"`
	// ExpiresAt (Unix ms, 0 = never, omitted) is when every holder drops
	// the publication: the sensor that made it, readers, and the relays and
	// directories that keep only its ciphertext and cannot see the
	// record's own expires_at. It is signed with the rest, so nobody can
	// extend it.
	ExpiresAt int64 `json:"expiresAt,omitempty"`
}

// Expired reports whether the publication has an end that has passed at
// now (Unix ms).
func (p *Publication) Expired(now int64) bool { return p.ExpiresAt != 0 && p.ExpiresAt <= now }

// MarshalJSON keeps an empty, non-nil Topics, so a publication that arrived
// with "topics":[] re-encodes exactly.
func (p Publication) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if p.ExpiresAt != 0 {
		fmt.Fprintf(&b, `"expiresAt":%d,`, p.ExpiresAt)
	}
	b.WriteString(`"publishedAt":`)
	fmt.Fprint(&b, p.PublishedAt)
	if p.Topics != nil {
		b.WriteString(`,"topics":`)
		b.Write(marshalStrings(p.Topics))
	}
	b.WriteString(`,"visibility":`)
	b.Write(marshalString(p.Visibility))
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes a publication with exact field names and types:
// visibility and publishedAt are required, topics is optional but, when
// present, an array of strings. It does not check values: Validate does.
func (p *Publication) UnmarshalJSON(data []byte) error {
	o, err := parseObject("publication", data)
	if err != nil {
		return err
	}
	return p.decode(o)
}

// unmarshalChecked is UnmarshalJSON for data already checked as I-JSON as
// part of a larger document.
func (p *Publication) unmarshalChecked(data []byte) error {
	o, err := splitObject("publication", data)
	if err != nil {
		return err
	}
	return p.decode(o)
}

func (p *Publication) decode(o object) error {
	var err error
	if err := o.only([]string{"visibility", "publishedAt"}, "topics", "expiresAt"); err != nil {
		return err
	}
	var out Publication
	if out.Visibility, err = o.str("visibility"); err != nil {
		return err
	}
	if out.PublishedAt, err = o.int("publishedAt"); err != nil {
		return err
	}
	if o.has("topics") {
		if out.Topics, err = o.strs("topics"); err != nil {
			return err
		}
	}
	if o.has("expiresAt") {
		if out.ExpiresAt, err = o.int("expiresAt"); err != nil {
			return err
		}
		if out.ExpiresAt == 0 {
			return invalidf("publication.expiresAt: 0 is written by leaving the field out")
		}
	}
	*p = out
	return nil
}

// Validate checks visibility, time and topics.
func (p *Publication) Validate() error {
	if p.Visibility != VisibilityPublic && p.Visibility != VisibilityUnlisted {
		return invalidf("publication.visibility %q: want public or unlisted", truncate(p.Visibility))
	}
	if p.PublishedAt <= 0 || p.PublishedAt > maxSafeInt {
		return invalidf("publication.publishedAt: want Unix milliseconds")
	}
	if p.ExpiresAt < 0 || p.ExpiresAt > maxSafeInt || (p.ExpiresAt != 0 && p.ExpiresAt <= p.PublishedAt) {
		return invalidf("publication.expiresAt: want Unix milliseconds after publishedAt, or no field")
	}
	if len(p.Topics) > MaxTags {
		return invalidf("publication: %d topics, the limit is %d", len(p.Topics), MaxTags)
	}
	for _, t := range p.Topics {
		if t == "" || len(t) > MaxTagLength || !safeName(t) { // safeName: ASCII only
			return invalidf("publication: topic %q: use 1 to %d letters, digits, '_', '-' or '.'", truncate(t), MaxTagLength)
		}
	}
	return nil
}

// Signature is the signature block of a SignedLesson.
type Signature struct {
	Algorithm string `json:"algorithm"`
	NodeID    string `json:"nodeId"`
	PublicKey string `json:"publicKey"` // raw 32-byte Ed25519 key, base64 std padded
	Timestamp int64  `json:"timestamp"` // Unix ms
	Sig       string `json:"sig"`       // base64 std padded
}

// SignedLesson is a lesson as it travels: the record, how it is published,
// and the publisher's signature over both.
type SignedLesson struct {
	Lesson      Lesson      `json:"lesson"`
	Publication Publication `json:"publication"`
	Signature   Signature   `json:"signature"`
}

// Key is the lesson's global key, lessonId@nodeId.
func (s *SignedLesson) Key() string { return s.Lesson.ID + "@" + s.Signature.NodeID }

// Encode returns the JSON encoding. Strings are not HTML-escaped.
func (s *SignedLesson) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeSignedLesson decodes a SignedLesson, checking the size cap, I-JSON,
// exact field names and field types. It does not verify the signature nor
// validate the lesson: call [Verify].
func DecodeSignedLesson(data []byte) (*SignedLesson, error) {
	var s SignedLesson
	if err := s.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &s, nil
}

// UnmarshalJSON decodes a SignedLesson as [DecodeSignedLesson] does, so that
// a SignedLesson inside a larger message is held to the same rules.
func (s *SignedLesson) UnmarshalJSON(data []byte) error {
	if len(data) > MaxSignedLessonSize {
		return fmt.Errorf("signed lesson: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSignedLessonSize)
	}
	o, err := parseObject("signed lesson", data)
	if err != nil {
		return err
	}
	return s.decode(o)
}

// unmarshalChecked is UnmarshalJSON for data already checked as I-JSON as
// part of a larger message (an announcement, a sync page).
func (s *SignedLesson) unmarshalChecked(data []byte) error {
	if len(data) > MaxSignedLessonSize {
		return fmt.Errorf("signed lesson: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSignedLessonSize)
	}
	o, err := splitObject("signed lesson", data)
	if err != nil {
		return err
	}
	return s.decode(o)
}

func (s *SignedLesson) decode(o object) error {
	if err := o.only([]string{"lesson", "publication", "signature"}); err != nil {
		return err
	}
	// parseObject checked the whole message; its members are not checked
	// again.
	var out SignedLesson
	if err := out.Lesson.unmarshalChecked(o.get("lesson")); err != nil {
		return fmt.Errorf("signed lesson: %w", err)
	}
	if err := out.Publication.unmarshalChecked(o.get("publication")); err != nil {
		return fmt.Errorf("signed lesson: %w", err)
	}
	if err := out.Signature.unmarshalChecked(o.get("signature")); err != nil {
		return fmt.Errorf("signed lesson: %w", err)
	}
	*s = out
	return nil
}

// UnmarshalJSON decodes a signature block with exact field names and types;
// every field is required and timestamp is an integer of at most 2^53-1.
func (sig *Signature) UnmarshalJSON(data []byte) error {
	o, err := parseObject("signature", data)
	if err != nil {
		return err
	}
	return sig.decode(o)
}

// unmarshalChecked is UnmarshalJSON for data already checked as I-JSON as
// part of a larger document.
func (sig *Signature) unmarshalChecked(data []byte) error {
	o, err := splitObject("signature", data)
	if err != nil {
		return err
	}
	return sig.decode(o)
}

func (sig *Signature) decode(o object) error {
	var err error
	if err := o.only([]string{"algorithm", "nodeId", "publicKey", "timestamp", "sig"}); err != nil {
		return err
	}
	var out Signature
	if out.Algorithm, err = o.str("algorithm"); err != nil {
		return err
	}
	if out.NodeID, err = o.str("nodeId"); err != nil {
		return err
	}
	if out.PublicKey, err = o.str("publicKey"); err != nil {
		return err
	}
	if out.Timestamp, err = o.int("timestamp"); err != nil {
		return err
	}
	if out.Sig, err = o.str("sig"); err != nil {
		return err
	}
	*sig = out
	return nil
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Now is the verifier's clock. Zero means time.Now().
	Now time.Time
	// Window is how far the signing time may be from Now. Zero (or
	// negative) means DefaultTimestampWindow.
	Window time.Duration
	// AllowOld accepts any signing time in the past (sync, archives, offline
	// verification); only the future bound is checked.
	AllowOld bool
}

func (o VerifyOptions) check(ts int64) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	w := o.Window
	if w <= 0 {
		w = DefaultTimestampWindow
	}
	t := time.UnixMilli(ts)
	if t.After(now.Add(w)) {
		return fmt.Errorf("%w: signed %s, more than %s in the future", ErrTimestamp, t.UTC().Format(time.RFC3339), w)
	}
	if !o.AllowOld && t.Before(now.Add(-w)) {
		return fmt.Errorf("%w: signed %s, more than %s ago", ErrTimestamp, t.UTC().Format(time.RFC3339), w)
	}
	return nil
}

// SigningPayload returns the bytes a SignedLesson's signature covers: the
// RFC 8785 canonical JSON of {lesson, publication, timestamp}.
//
// It is written in one pass from the values (see canonical.go), and is
// exactly Canonical of the JSON document {"lesson": l, "publication": p,
// "timestamp": timestamp}. It is computed afresh on every call: nothing
// cached at decode could go stale when a caller changes the values.
func SigningPayload(l *Lesson, p *Publication, timestamp int64) ([]byte, error) {
	if l == nil || p == nil {
		return nil, invalidf("signing payload: nil lesson or publication")
	}
	b := make([]byte, 0, signingPayloadSizeHint(l, p))
	b = append(b, `{"lesson":`...)
	b, err := appendCanonicalLesson(b, l)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"publication":`...)
	b = appendCanonicalPublication(b, p)
	b = append(b, `,"timestamp":`...)
	b = appendCanonicalInt(b, timestamp)
	return append(b, '}'), nil
}

// signingPayloadSizeHint is about the size of the signing payload, so that
// it is written into one allocation.
func signingPayloadSizeHint(l *Lesson, p *Publication) int {
	n := 256 + len(l.ID) + len(l.Type) + len(l.Title) + len(l.Content) + len(l.Agent) + len(l.Project) +
		len(l.WorkingOn) + len(l.State) + len(l.SessionID) + len(l.FilePath) + len(l.Language) + len(l.Repo) +
		len(l.Severity) + len(l.Visibility) + len(p.Visibility)
	for _, t := range l.Tags {
		n += len(t) + 3
	}
	for k, v := range l.Extra {
		n += len(k) + len(v) + 4
	}
	for _, t := range p.Topics {
		n += len(t) + 3
	}
	return n + n/16
}

// Canonical returns the RFC 8785 canonical form of a JSON text.
func Canonical(data []byte) ([]byte, error) {
	c, err := jcs.Transform(data)
	if err != nil {
		return nil, invalidf("canonical JSON: %v", err)
	}
	return c, nil
}

// Sign signs lesson as published by pub at time now with key. The lesson must
// have an ID and validate; its Visibility field is dropped (the publication
// carries visibility).
func Sign(key ed25519.PrivateKey, lesson *Lesson, pub Publication, now time.Time) (*SignedLesson, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if lesson == nil {
		return nil, invalidf("sign: nil lesson")
	}
	l := lesson.Clone()
	l.Visibility = ""
	delete(l.Extra, "visibility")
	if l.ID == "" {
		return nil, invalidf("sign: the lesson has no id")
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if pub.PublishedAt == 0 {
		pub.PublishedAt = now.UnixMilli()
	}
	if err := pub.Validate(); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if pub.Topics != nil {
		pub.Topics = append([]string{}, pub.Topics...)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	ts := now.UnixMilli()
	if err := checkTimestamp(ts); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	payload, err := SigningPayload(l, &pub, ts)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &SignedLesson{
		Lesson:      *l,
		Publication: pub,
		Signature: Signature{
			Algorithm: AlgorithmEd25519,
			NodeID:    nodeID,
			PublicKey: base64.StdEncoding.EncodeToString(pk),
			Timestamp: ts,
			Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
		},
	}, nil
}

// Verify checks a SignedLesson: the algorithm, that nodeId is the peer ID of
// publicKey, the Ed25519 signature over the canonical payload, the signing
// time against opts, and that the lesson and publication are well formed.
func Verify(s *SignedLesson, opts VerifyOptions) error {
	if s == nil {
		return invalidf("signed lesson: nil")
	}
	// A timestamp beyond 2^53 is not held exactly by every JSON
	// implementation: two different values would sign the same bytes.
	if err := checkTimestamp(s.Signature.Timestamp); err != nil {
		return err
	}
	pk, err := verifyKey(s.Signature.Algorithm, s.Signature.NodeID, s.Signature.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	payload, err := SigningPayload(&s.Lesson, &s.Publication, s.Signature.Timestamp)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: ed25519 signature does not match the content", ErrInvalidSignature)
	}
	if err := opts.check(s.Signature.Timestamp); err != nil {
		return err
	}
	if s.Lesson.ID == "" {
		return invalidf("signed lesson: lesson has no id")
	}
	if err := s.Lesson.Validate(); err != nil {
		return err
	}
	return s.Publication.Validate()
}

// checkTimestamp checks that a signing time is Unix milliseconds that every
// JSON implementation holds exactly.
func checkTimestamp(ts int64) error {
	if ts <= 0 || ts > maxSafeInt {
		return fmt.Errorf("%w: timestamp %d: want Unix milliseconds between 1 and 2^53-1", ErrTimestamp, ts)
	}
	return nil
}

// checkPrivateKey checks that key is an Ed25519 private key whose public half
// belongs to its seed (a mismatched key signs what nobody can verify), and
// returns the public key.
func checkPrivateKey(key ed25519.PrivateKey) (ed25519.PublicKey, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: want a %d-byte Ed25519 private key, got %d bytes", ErrInvalid, ed25519.PrivateKeySize, len(key))
	}
	if !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()), key) {
		return nil, fmt.Errorf("%w: the private key's public half does not match its seed", ErrInvalid)
	}
	return key.Public().(ed25519.PublicKey), nil
}

// verifyKey checks the algorithm, decodes the public key and checks that
// nodeID is its peer ID.
func verifyKey(alg, nodeID, publicKey string) (ed25519.PublicKey, error) {
	if alg != AlgorithmEd25519 {
		return nil, fmt.Errorf("%w: algorithm %q, want ed25519", ErrInvalidSignature, truncate(alg))
	}
	raw, err := base64.StdEncoding.DecodeString(publicKey)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: publicKey is not a base64 32-byte Ed25519 key", ErrInvalidSignature)
	}
	pk := ed25519.PublicKey(raw)
	want, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	if nodeID != want {
		return nil, fmt.Errorf("%w: nodeId %s, key belongs to %s", ErrKeyMismatch, truncate(nodeID), want)
	}
	return pk, nil
}

// NodeID returns the libp2p peer ID (12D3KooW...) of an Ed25519 public key.
func NodeID(pub ed25519.PublicKey) (string, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id, err := peer.IDFromPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return id.String(), nil
}

// PublicKeyOf extracts the Ed25519 public key embedded in a node ID. The ID
// must be in its canonical form, the base58btc string (12D3KooW...) that
// [NodeID] returns.
func PublicKeyOf(nodeID string) (ed25519.PublicKey, error) {
	id, err := peer.Decode(nodeID)
	if err != nil {
		return nil, invalidf("node id %q: %v", truncate(nodeID), err)
	}
	if id.String() != nodeID {
		return nil, invalidf("node id %q: not in canonical form, want %s", truncate(nodeID), id)
	}
	k, err := id.ExtractPublicKey()
	if err != nil {
		return nil, invalidf("node id %q carries no public key", truncate(nodeID))
	}
	if k.Type() != crypto.Ed25519 {
		return nil, invalidf("node id %q is not an Ed25519 identity", truncate(nodeID))
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, invalidf("node id %q: %v", truncate(nodeID), err)
	}
	return ed25519.PublicKey(raw), nil
}

// Fingerprint is the human-readable short form of a key: the first 16 hex
// digits of SHA-256 of the raw 32-byte public key, upper case.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// ParseKey splits "lessonId@nodeId", checking that lessonId is a valid record
// ID and nodeId a canonical Ed25519 node ID.
func ParseKey(key string) (lessonID, nodeID string, err error) {
	i := strings.LastIndexByte(key, '@')
	if i <= 0 || i == len(key)-1 {
		return "", "", invalidf("lesson key %q: want lessonId@nodeId", truncate(key))
	}
	lessonID, nodeID = key[:i], key[i+1:]
	if err := ValidateID(lessonID); err != nil {
		return "", "", err
	}
	if _, err := PublicKeyOf(nodeID); err != nil {
		return "", "", fmt.Errorf("lesson key %q: %w", truncate(key), err)
	}
	return lessonID, nodeID, nil
}
