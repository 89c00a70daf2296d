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
}

// MarshalJSON keeps an empty, non-nil Topics, so a publication that arrived
// with "topics":[] re-encodes exactly.
func (p Publication) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"publishedAt":`)
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

// UnmarshalJSON rejects unknown fields and ill-typed ones.
func (p *Publication) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return invalidf("publication: must be a JSON object")
	}
	var out Publication
	for k, v := range raw {
		switch k {
		case "visibility":
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &out.Visibility) != nil {
				return invalidf("publication.visibility: want a string")
			}
		case "publishedAt":
			n, err := parseSafeInt(v)
			if err != nil {
				return invalidf("publication.publishedAt: %v", err)
			}
			out.PublishedAt = n
		case "topics":
			if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &out.Topics) != nil {
				return invalidf("publication.topics: want an array of strings")
			}
			if out.Topics == nil {
				out.Topics = []string{}
			}
		default:
			return invalidf("publication: unknown field %q", truncate(k))
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
	if p.PublishedAt <= 0 {
		return invalidf("publication.publishedAt: want Unix milliseconds")
	}
	if len(p.Topics) > MaxTags {
		return invalidf("publication: %d topics, the limit is %d", len(p.Topics), MaxTags)
	}
	for _, t := range p.Topics {
		if t == "" || len(t) > MaxTagLength || !safeName(t) {
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

// Encode returns the JSON encoding.
func (s *SignedLesson) Encode() ([]byte, error) { return json.Marshal(s) }

// DecodeSignedLesson decodes a SignedLesson, checking the size cap, I-JSON
// and field types. It does not verify the signature: call [Verify].
func DecodeSignedLesson(data []byte) (*SignedLesson, error) {
	if len(data) > MaxSignedLessonSize {
		return nil, fmt.Errorf("signed lesson: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSignedLessonSize)
	}
	if err := checkIJSON(data); err != nil {
		return nil, fmt.Errorf("signed lesson: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, invalidf("signed lesson: must be a JSON object")
	}
	for k := range raw {
		if k != "lesson" && k != "publication" && k != "signature" {
			return nil, invalidf("signed lesson: unknown field %q", truncate(k))
		}
	}
	for _, k := range []string{"lesson", "publication", "signature"} {
		if _, ok := raw[k]; !ok {
			return nil, invalidf("signed lesson: %s is missing", k)
		}
	}
	var s SignedLesson
	if err := s.Lesson.UnmarshalJSON(raw["lesson"]); err != nil {
		return nil, fmt.Errorf("signed lesson: %w", err)
	}
	if err := s.Publication.UnmarshalJSON(raw["publication"]); err != nil {
		return nil, fmt.Errorf("signed lesson: %w", err)
	}
	if err := decodeSignature(raw["signature"], &s.Signature); err != nil {
		return nil, err
	}
	return &s, nil
}

func decodeSignature(data []byte, sig *Signature) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sig); err != nil {
		return invalidf("signature: %v", err)
	}
	return nil
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Now is the verifier's clock. Zero means time.Now().
	Now time.Time
	// Window is how far the signing time may be from Now. Zero means
	// DefaultTimestampWindow.
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
	if w == 0 {
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
func SigningPayload(l *Lesson, p *Publication, timestamp int64) ([]byte, error) {
	lb, err := l.MarshalJSON()
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"lesson":`)
	b.Write(lb)
	b.WriteString(`,"publication":`)
	b.Write(pb)
	fmt.Fprintf(&b, `,"timestamp":%d}`, timestamp)
	return Canonical(b.Bytes())
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
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign: %w: want an Ed25519 private key", ErrInvalid)
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
	pk := key.Public().(ed25519.PublicKey)
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	ts := now.UnixMilli()
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

// PublicKeyOf extracts the Ed25519 public key embedded in a node ID.
func PublicKeyOf(nodeID string) (ed25519.PublicKey, error) {
	id, err := peer.Decode(nodeID)
	if err != nil {
		return nil, invalidf("node id %q: %v", truncate(nodeID), err)
	}
	k, err := id.ExtractPublicKey()
	if err != nil {
		return nil, invalidf("node id %q carries no public key", truncate(nodeID))
	}
	raw, err := k.Raw()
	if err != nil || k.Type() != crypto.Ed25519 {
		return nil, invalidf("node id %q is not an Ed25519 identity", truncate(nodeID))
	}
	return ed25519.PublicKey(raw), nil
}

// Fingerprint is the human-readable short form of a key: the first 16 hex
// digits of SHA-256 of the raw 32-byte public key, upper case.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// ParseKey splits "lessonId@nodeId".
func ParseKey(key string) (lessonID, nodeID string, err error) {
	i := strings.LastIndexByte(key, '@')
	if i <= 0 || i == len(key)-1 {
		return "", "", invalidf("lesson key %q: want lessonId@nodeId", truncate(key))
	}
	lessonID, nodeID = key[:i], key[i+1:]
	if err := ValidateID(lessonID); err != nil {
		return "", "", err
	}
	if _, err := peer.Decode(nodeID); err != nil {
		return "", "", invalidf("lesson key %q: bad node id: %v", truncate(key), err)
	}
	return lessonID, nodeID, nil
}
