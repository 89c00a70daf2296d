package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Size caps of the trust records, checked before parsing.
const (
	// MaxVouchSize caps an encoded Vouch: MaxVouchEntries node IDs of about
	// 55 bytes each, and the rest of the record.
	MaxVouchSize = 64 << 10
	// MaxVouchEntries caps the node IDs one Vouch lists.
	MaxVouchEntries = 1024
	// MaxReferralSize caps an encoded Referral.
	MaxReferralSize = 4 << 10
	// MaxNoteLength caps a referral's note, in bytes.
	MaxNoteLength = 1024
)

// Types of the trust records.
const (
	TypeVouch    = "vouch"
	TypeReferral = "referral"
)

// Vouch is a node's signed list of the nodes it trusts fully. A node hands
// it only to the peers it trusts fully; they cache it until ExpiresAt and
// follow it to find transitive trust paths.
//
//	{"type": "vouch", "nodeId": "12D3KooW…", "trusts": ["12D3KooW…"],
//	 "issuedAt": 1767225600000, "expiresAt": 1767830400000,
//	 "signature": {"algorithm": "ed25519", "publicKey": "base64", "sig": "base64"}}
//
// The signature covers the canonical JSON of the record without its
// signature field; nodeId must be the peer ID of the signing key. trusts is
// an array, possibly empty (a node that stopped trusting anyone), never null,
// of at most MaxVouchEntries distinct node IDs other than nodeId. A newer
// issuedAt from the same node supersedes an older vouch.
type Vouch struct {
	Type      string              `json:"type"`   // always "vouch"
	NodeID    string              `json:"nodeId"` // the voucher
	Trusts    []string            `json:"trusts"` // node IDs it trusts fully
	IssuedAt  int64               `json:"issuedAt"`
	ExpiresAt int64               `json:"expiresAt"` // Unix ms; not valid from then on
	Signature RevocationSignature `json:"signature"`
}

// MarshalJSON encodes v, with an empty trusts list as [] rather than null.
func (v Vouch) MarshalJSON() ([]byte, error) {
	type plain Vouch
	p := plain(v)
	p.Trusts = nonNil(p.Trusts)
	return json.Marshal(p)
}

// Expired reports whether v is no longer valid at now.
func (v *Vouch) Expired(now time.Time) bool {
	return now.UnixMilli() >= v.ExpiresAt
}

func (v *Vouch) signingPayload() ([]byte, error) {
	body := struct {
		Type      string   `json:"type"`
		NodeID    string   `json:"nodeId"`
		Trusts    []string `json:"trusts"`
		IssuedAt  int64    `json:"issuedAt"`
		ExpiresAt int64    `json:"expiresAt"`
	}{v.Type, v.NodeID, nonNil(v.Trusts), v.IssuedAt, v.ExpiresAt}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

// SignVouch signs the list of nodes the key's owner trusts fully, valid from
// now for ttl. The list is copied and sorted.
func SignVouch(key ed25519.PrivateKey, trusts []string, now time.Time, ttl time.Duration) (*Vouch, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign vouch: %w", err)
	}
	if ttl < time.Millisecond {
		return nil, invalidf("sign vouch: ttl %s: want at least 1ms", ttl)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	list := slices.Clone(nonNil(trusts))
	slices.Sort(list)
	v := &Vouch{
		Type:      TypeVouch,
		NodeID:    nodeID,
		Trusts:    list,
		IssuedAt:  now.UnixMilli(),
		ExpiresAt: now.Add(ttl).UnixMilli(),
	}
	if err := v.validate(); err != nil {
		return nil, fmt.Errorf("sign vouch: %w", err)
	}
	payload, err := v.signingPayload()
	if err != nil {
		return nil, err
	}
	v.Signature = signBlock(key, pk, payload)
	return v, nil
}

func signBlock(key ed25519.PrivateKey, pk ed25519.PublicKey, payload []byte) RevocationSignature {
	return RevocationSignature{
		Algorithm: AlgorithmEd25519,
		PublicKey: base64.StdEncoding.EncodeToString(pk),
		Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}
}

// validate checks the record's rules, not its signature or its times
// against a clock.
func (v *Vouch) validate() error {
	if v.Type != TypeVouch {
		return invalidf("vouch: type %q, want %q", truncate(v.Type), TypeVouch)
	}
	if _, err := PublicKeyOf(v.NodeID); err != nil {
		return fmt.Errorf("vouch.nodeId: %w", err)
	}
	if len(v.Trusts) > MaxVouchEntries {
		return invalidf("vouch.trusts: %d entries, the limit is %d", len(v.Trusts), MaxVouchEntries)
	}
	seen := make(map[string]struct{}, len(v.Trusts))
	for i, id := range v.Trusts {
		if id == v.NodeID {
			return invalidf("vouch.trusts[%d]: the voucher itself", i)
		}
		if _, dup := seen[id]; dup {
			return invalidf("vouch.trusts[%d]: duplicate %s", i, truncate(id))
		}
		seen[id] = struct{}{}
		if _, err := PublicKeyOf(id); err != nil {
			return fmt.Errorf("vouch.trusts[%d]: %w", i, err)
		}
	}
	if v.IssuedAt <= 0 || v.IssuedAt > maxSafeInt {
		return invalidf("vouch.issuedAt: want Unix milliseconds")
	}
	if v.ExpiresAt <= v.IssuedAt || v.ExpiresAt > maxSafeInt {
		return invalidf("vouch.expiresAt: want Unix milliseconds after issuedAt")
	}
	return nil
}

// VerifyVouch checks the record, that nodeId is the peer ID of the signing
// key, the signature, that issuedAt is not further in the future than
// opts.Window, and that the vouch has not expired at opts.Now. Any past
// issuedAt is accepted: a vouch is valid until it expires.
func VerifyVouch(v *Vouch, opts VerifyOptions) error {
	if v == nil {
		return invalidf("vouch: nil")
	}
	if err := v.validate(); err != nil {
		return err
	}
	payload, err := v.signingPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if err := verifyBlock("vouch", v.NodeID, v.Signature, payload); err != nil {
		return err
	}
	opts.AllowOld = true
	if err := opts.check(v.IssuedAt); err != nil {
		return err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if v.Expired(now) {
		return fmt.Errorf("%w: vouch expired at %s", ErrTimestamp, time.UnixMilli(v.ExpiresAt).UTC().Format(time.RFC3339))
	}
	return nil
}

// verifyBlock checks a signature block over payload, and that nodeID is the
// peer ID of its key.
func verifyBlock(what, nodeID string, s RevocationSignature, payload []byte) error {
	pk, err := verifyKey(s.Algorithm, nodeID, s.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: %s signature does not match", ErrInvalidSignature, what)
	}
	return nil
}

// DecodeVouch decodes a Vouch: size cap, I-JSON, exact field names
// (case-sensitive, no unknown fields, none missing), field types, and the
// record's rules. It does not verify: call VerifyVouch.
func DecodeVouch(data []byte) (*Vouch, error) {
	var v Vouch
	if err := v.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := v.validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// UnmarshalJSON decodes a vouch with exact field names and types, so that
// the canonical JSON of the decoded record is the canonical JSON of the bytes
// received. It does not check the record's rules: DecodeVouch does.
func (v *Vouch) UnmarshalJSON(data []byte) error {
	if len(data) > MaxVouchSize {
		return fmt.Errorf("vouch: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxVouchSize)
	}
	o, err := parseObject("vouch", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"type", "nodeId", "trusts", "issuedAt", "expiresAt", "signature"}); err != nil {
		return err
	}
	var out Vouch
	if out.Type, err = o.str("type"); err != nil {
		return err
	}
	if out.NodeID, err = o.str("nodeId"); err != nil {
		return err
	}
	if out.Trusts, err = o.strs("trusts"); err != nil {
		return err
	}
	if out.IssuedAt, err = o.int("issuedAt"); err != nil {
		return err
	}
	if out.ExpiresAt, err = o.int("expiresAt"); err != nil {
		return err
	}
	if err := out.Signature.decode("vouch.signature", o.get("signature")); err != nil {
		return err
	}
	*v = out
	return nil
}

// Referral is a signed recommendation: "you may want to trust Subject". A
// node keeps and lists the referrals it receives; it never acts on them
// without its operator.
//
//	{"type": "referral", "nodeId": "12D3KooW…", "subject": "12D3KooW…",
//	 "note": "runs the team's build cache", "issuedAt": 1767225600000,
//	 "signature": {"algorithm": "ed25519", "publicKey": "base64", "sig": "base64"}}
//
// nodeId (who recommends) must be the peer ID of the signing key. note is
// optional; when present it is non-empty valid UTF-8 of at most
// MaxNoteLength bytes. The signature covers the canonical JSON of the record
// without its signature field.
type Referral struct {
	Type      string              `json:"type"`   // always "referral"
	NodeID    string              `json:"nodeId"` // who recommends
	Subject   string              `json:"subject"`
	Note      string              `json:"note,omitempty"`
	IssuedAt  int64               `json:"issuedAt"` // Unix ms
	Signature RevocationSignature `json:"signature"`
}

func (r *Referral) signingPayload() ([]byte, error) {
	body := struct {
		Type     string `json:"type"`
		NodeID   string `json:"nodeId"`
		Subject  string `json:"subject"`
		Note     string `json:"note,omitempty"`
		IssuedAt int64  `json:"issuedAt"`
	}{r.Type, r.NodeID, r.Subject, r.Note, r.IssuedAt}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

// SignReferral signs a recommendation to trust subject.
func SignReferral(key ed25519.PrivateKey, subject, note string, now time.Time) (*Referral, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign referral: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	r := &Referral{Type: TypeReferral, NodeID: nodeID, Subject: subject, Note: note, IssuedAt: now.UnixMilli()}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("sign referral: %w", err)
	}
	payload, err := r.signingPayload()
	if err != nil {
		return nil, err
	}
	r.Signature = signBlock(key, pk, payload)
	return r, nil
}

func (r *Referral) validate() error {
	if r.Type != TypeReferral {
		return invalidf("referral: type %q, want %q", truncate(r.Type), TypeReferral)
	}
	if _, err := PublicKeyOf(r.NodeID); err != nil {
		return fmt.Errorf("referral.nodeId: %w", err)
	}
	if _, err := PublicKeyOf(r.Subject); err != nil {
		return fmt.Errorf("referral.subject: %w", err)
	}
	if len(r.Note) > MaxNoteLength {
		return invalidf("referral.note: %d bytes, the limit is %d", len(r.Note), MaxNoteLength)
	}
	if !utf8.ValidString(r.Note) {
		return invalidf("referral.note: not valid UTF-8")
	}
	if r.IssuedAt <= 0 || r.IssuedAt > maxSafeInt {
		return invalidf("referral.issuedAt: want Unix milliseconds")
	}
	return nil
}

// VerifyReferral checks the record, that nodeId is the peer ID of the
// signing key, the signature, and issuedAt against opts.
func VerifyReferral(r *Referral, opts VerifyOptions) error {
	if r == nil {
		return invalidf("referral: nil")
	}
	if err := r.validate(); err != nil {
		return err
	}
	payload, err := r.signingPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if err := verifyBlock("referral", r.NodeID, r.Signature, payload); err != nil {
		return err
	}
	return opts.check(r.IssuedAt)
}

// DecodeReferral decodes a Referral: size cap, I-JSON, exact field names,
// field types, and the record's rules. It does not verify: call
// VerifyReferral.
func DecodeReferral(data []byte) (*Referral, error) {
	var r Referral
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// UnmarshalJSON decodes a referral with exact field names and types. note
// may be absent but not empty or null. It does not check the record's rules:
// DecodeReferral does.
func (r *Referral) UnmarshalJSON(data []byte) error {
	if len(data) > MaxReferralSize {
		return fmt.Errorf("referral: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxReferralSize)
	}
	o, err := parseObject("referral", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"type", "nodeId", "subject", "issuedAt", "signature"}, "note"); err != nil {
		return err
	}
	var out Referral
	if out.Type, err = o.str("type"); err != nil {
		return err
	}
	if out.NodeID, err = o.str("nodeId"); err != nil {
		return err
	}
	if out.Subject, err = o.str("subject"); err != nil {
		return err
	}
	if o.has("note") {
		if out.Note, err = o.str("note"); err != nil {
			return err
		}
		if out.Note == "" {
			// The signed form omits an empty note; accepting "" would sign
			// different bytes than an independent verifier checks.
			return invalidf("referral.note: empty: omit the field instead")
		}
	}
	if out.IssuedAt, err = o.int("issuedAt"); err != nil {
		return err
	}
	if err := out.Signature.decode("referral.signature", o.get("signature")); err != nil {
		return err
	}
	*r = out
	return nil
}
