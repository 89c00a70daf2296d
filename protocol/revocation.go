package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Revocation takes a publication back. Only the lesson's publisher can sign
// one; receivers delete their copy and keep the revocation as a tombstone so a
// replayed publication is refused.
//
// The signature covers the canonical JSON of the record without its signature
// field.
type Revocation struct {
	Type      string              `json:"type"` // always "revocation"
	LessonID  string              `json:"lessonId"`
	NodeID    string              `json:"nodeId"`
	RevokedAt int64               `json:"revokedAt"` // Unix ms
	Reason    string              `json:"reason,omitempty"`
	Signature RevocationSignature `json:"signature"`
}

// RevocationSignature is the signature block of a Revocation.
type RevocationSignature struct {
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"publicKey"`
	Sig       string `json:"sig"`
}

// TypeRevocation is the type field of a Revocation.
const TypeRevocation = "revocation"

// Key is the revoked lesson's global key, lessonId@nodeId.
func (r *Revocation) Key() string { return r.LessonID + "@" + r.NodeID }

// signingPayload is the canonical JSON of r without the signature.
func (r *Revocation) signingPayload() ([]byte, error) {
	body := struct {
		Type      string `json:"type"`
		LessonID  string `json:"lessonId"`
		NodeID    string `json:"nodeId"`
		RevokedAt int64  `json:"revokedAt"`
		Reason    string `json:"reason,omitempty"`
	}{r.Type, r.LessonID, r.NodeID, r.RevokedAt, r.Reason}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

// SignRevocation signs a revocation of lessonID with key.
func SignRevocation(key ed25519.PrivateKey, lessonID, reason string, now time.Time) (*Revocation, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign revocation: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	r := &Revocation{Type: TypeRevocation, LessonID: lessonID, NodeID: nodeID, RevokedAt: now.UnixMilli(), Reason: reason}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("sign revocation: %w", err)
	}
	payload, err := r.signingPayload()
	if err != nil {
		return nil, err
	}
	r.Signature = RevocationSignature{
		Algorithm: AlgorithmEd25519,
		PublicKey: base64.StdEncoding.EncodeToString(pk),
		Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}
	return r, nil
}

func (r *Revocation) validate() error {
	if r.Type != TypeRevocation {
		return invalidf("revocation: type %q, want %q", truncate(r.Type), TypeRevocation)
	}
	if err := ValidateID(r.LessonID); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	switch r.Reason {
	case "", ReasonOutdated, ReasonIncorrect, ReasonPrivate, ReasonOther:
	default:
		return invalidf("revocation: reason %q: want outdated, incorrect, private or other", truncate(r.Reason))
	}
	if r.RevokedAt <= 0 || r.RevokedAt > maxSafeInt {
		return invalidf("revocation: revokedAt: want Unix milliseconds")
	}
	return nil
}

// VerifyRevocation checks the record, that nodeId is the peer ID of the
// signing key (so only the publisher can revoke its lessons), the signature,
// and the revocation time against opts.
func VerifyRevocation(r *Revocation, opts VerifyOptions) error {
	if r == nil {
		return invalidf("revocation: nil")
	}
	if err := r.validate(); err != nil {
		return err
	}
	pk, err := verifyKey(r.Signature.Algorithm, r.NodeID, r.Signature.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	payload, err := r.signingPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: revocation signature does not match", ErrInvalidSignature)
	}
	return opts.check(r.RevokedAt)
}

// DecodeRevocation decodes a Revocation: size cap, I-JSON, exact field
// names (case-sensitive, no unknown fields, none missing), field types, and
// the record's rules. It does not verify: call VerifyRevocation.
func DecodeRevocation(data []byte) (*Revocation, error) {
	if len(data) > MaxRevocationSize {
		return nil, fmt.Errorf("revocation: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxRevocationSize)
	}
	var r Revocation
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// UnmarshalJSON decodes a revocation with exact field names and types, so
// that the canonical JSON of the decoded record (what VerifyRevocation
// checks) is the canonical JSON of the bytes received (what an independent
// verifier checks). reason may be absent but not empty or null. It does not
// check the record's rules: DecodeRevocation does.
func (r *Revocation) UnmarshalJSON(data []byte) error {
	if len(data) > MaxRevocationSize {
		return fmt.Errorf("revocation: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxRevocationSize)
	}
	o, err := parseObject("revocation", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"type", "lessonId", "nodeId", "revokedAt", "signature"}, "reason"); err != nil {
		return err
	}
	var out Revocation
	if out.Type, err = o.str("type"); err != nil {
		return err
	}
	if out.LessonID, err = o.str("lessonId"); err != nil {
		return err
	}
	if out.NodeID, err = o.str("nodeId"); err != nil {
		return err
	}
	if out.RevokedAt, err = o.int("revokedAt"); err != nil {
		return err
	}
	if o.has("reason") {
		if out.Reason, err = o.str("reason"); err != nil {
			return err
		}
		if out.Reason == "" {
			// The signed form omits an empty reason; accepting "" would
			// sign different bytes than an independent verifier checks.
			return invalidf("revocation.reason: empty: omit the field instead")
		}
	}
	if err := out.Signature.decode("revocation.signature", o.get("signature")); err != nil {
		return err
	}
	*r = out
	return nil
}

// UnmarshalJSON decodes a revocation's signature block with exact field names.
func (s *RevocationSignature) UnmarshalJSON(data []byte) error {
	return s.decode("signature", data)
}

func (s *RevocationSignature) decode(path string, data []byte) error {
	o, err := parseObject(path, data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"algorithm", "publicKey", "sig"}); err != nil {
		return err
	}
	var out RevocationSignature
	if out.Algorithm, err = o.str("algorithm"); err != nil {
		return err
	}
	if out.PublicKey, err = o.str("publicKey"); err != nil {
		return err
	}
	if out.Sig, err = o.str("sig"); err != nil {
		return err
	}
	*s = out
	return nil
}
