package protocol

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Access levels of a KeyPolicy (the seed's KeyPolicy.access).
const (
	// AccessPublic: any node may fetch the key.
	AccessPublic = "public"
	// AccessTrusted: only nodes in the author's trust graph, with a trust
	// score of at least minTrustScore.
	AccessTrusted = "trusted"
	// AccessExplicit: only the nodes in allowedNodes.
	AccessExplicit = "explicit"
)

// maxKeyPolicyDepth caps a KeyPolicy's nesting: the document, escrow,
// escrow.shares and one share.
const maxKeyPolicyDepth = 4

// KeyPolicy is the author's signed statement of who may have a lesson key,
// and where its escrow shares are. Key servers and escrow nodes answer by
// it; it travels with the shares to the escrow nodes. A newer issuedAt for
// the same lessonId@nodeId supersedes an older policy, and a policy naming
// another keyId (a rotation) retires the older key: escrow nodes delete
// its shares.
//
//	{"keyId": "k…", "lessonId": "…", "nodeId": "12D3KooW…",
//	 "access": "public|trusted|explicit", "minTrustScore": 0.5, "allowedNodes": ["12D3KooW…"],
//	 "expiresAt": 1767830400000,
//	 "escrow": {"threshold": 2, "shares": [{"nodeId": "12D3KooW…", "sealedShare": "base64"}, …]},
//	 "issuedAt": 1767225600000,
//	 "signature": {"algorithm": "ed25519", "publicKey": "base64", "sig": "base64"}}
//
// The signature covers the RFC 8785 JSON of the document without
// signature; nodeId (the author) must be the peer ID of the signing key.
// expiresAt and escrow are optional; every other field is required.
// minTrustScore is a number from 0 to 1, not 0 only for "trusted";
// allowedNodes is an array, empty except for "explicit".
type KeyPolicy struct {
	KeyID         string              `json:"keyId"`
	LessonID      string              `json:"lessonId"`
	NodeID        string              `json:"nodeId"` // the author
	Access        string              `json:"access"`
	MinTrustScore float64             `json:"minTrustScore"`
	AllowedNodes  []string            `json:"allowedNodes"`
	ExpiresAt     int64               `json:"expiresAt,omitempty"` // Unix ms; 0 = no end
	Escrow        *Escrow             `json:"escrow,omitempty"`
	IssuedAt      int64               `json:"issuedAt"`
	Signature     RevocationSignature `json:"signature"`
}

// Key is the global key of the lesson the policy is for, lessonId@nodeId.
func (p *KeyPolicy) Key() string { return p.LessonID + "@" + p.NodeID }

// MarshalJSON encodes p, with an empty allowedNodes as [] rather than null.
func (p KeyPolicy) MarshalJSON() ([]byte, error) {
	type plain KeyPolicy
	q := plain(p)
	q.AllowedNodes = nonNil(q.AllowedNodes)
	return json.Marshal(q)
}

// Encode returns the JSON encoding of p.
func (p *KeyPolicy) Encode() ([]byte, error) { return encodeJSON(p) }

func (p *KeyPolicy) signingPayload() ([]byte, error) {
	body := struct {
		KeyID         string   `json:"keyId"`
		LessonID      string   `json:"lessonId"`
		NodeID        string   `json:"nodeId"`
		Access        string   `json:"access"`
		MinTrustScore float64  `json:"minTrustScore"`
		AllowedNodes  []string `json:"allowedNodes"`
		ExpiresAt     int64    `json:"expiresAt,omitempty"`
		Escrow        *Escrow  `json:"escrow,omitempty"`
		IssuedAt      int64    `json:"issuedAt"`
	}{p.KeyID, p.LessonID, p.NodeID, p.Access, p.MinTrustScore, nonNil(p.AllowedNodes), p.ExpiresAt, p.Escrow, p.IssuedAt}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, invalidf("key policy: %v", err)
	}
	return Canonical(b)
}

// SignKeyPolicy signs p as issued by key's node at now: it sets NodeID,
// IssuedAt and Signature on a copy, checks it and returns it. AllowedNodes
// is copied and sorted.
func SignKeyPolicy(key ed25519.PrivateKey, p KeyPolicy, now time.Time) (*KeyPolicy, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign key policy: %w", err)
	}
	if p.NodeID, err = NodeID(pk); err != nil {
		return nil, err
	}
	p.IssuedAt = now.UnixMilli()
	p.AllowedNodes = slices.Clone(nonNil(p.AllowedNodes))
	slices.Sort(p.AllowedNodes)
	if p.Escrow != nil {
		e := *p.Escrow
		e.Shares = slices.Clone(e.Shares)
		p.Escrow = &e
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("sign key policy: %w", err)
	}
	payload, err := p.signingPayload()
	if err != nil {
		return nil, err
	}
	p.Signature = signBlock(key, pk, payload)
	return &p, nil
}

// VerifyKeyPolicy checks the document, that nodeId is the peer ID of the
// signing key (only the author states a key's policy), the signature, that
// issuedAt is not further in the future than opts.Window, and that the
// policy has not expired at opts.Now.
func VerifyKeyPolicy(p *KeyPolicy, opts VerifyOptions) error {
	if p == nil {
		return invalidf("key policy: nil")
	}
	if err := p.validate(); err != nil {
		return err
	}
	payload, err := p.signingPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if err := verifyBlock("key policy", p.NodeID, p.Signature, payload); err != nil {
		return err
	}
	opts.AllowOld = true
	if err := opts.check(p.IssuedAt); err != nil {
		return err
	}
	if p.Expired(opts.now()) {
		return fmt.Errorf("%w: key policy expired at %s", ErrTimestamp, time.UnixMilli(p.ExpiresAt).UTC().Format(time.RFC3339))
	}
	return nil
}

// Expired reports whether p has an end and it has passed at now.
func (p *KeyPolicy) Expired(now time.Time) bool {
	return p.ExpiresAt != 0 && now.UnixMilli() >= p.ExpiresAt
}

// Admits says whether the policy gives the key (or an escrow share) to
// requester at now: nil, or an error matching ErrAccessDenied that says
// why. trustScore is the author's trust score for the requester (1 for a
// direct edge, halved per hop; 0 for no path), as the author's or the
// escrow node's trust graph has it. The author itself is always admitted.
func (p *KeyPolicy) Admits(requester string, trustScore float64, now time.Time) error {
	if requester == p.NodeID {
		return nil
	}
	if p.Expired(now) {
		return fmt.Errorf("key %s: %w: the policy expired at %s", truncate(p.KeyID), ErrAccessDenied, time.UnixMilli(p.ExpiresAt).UTC().Format(time.RFC3339))
	}
	switch p.Access {
	case AccessPublic:
		return nil
	case AccessTrusted:
		if trustScore > 0 && trustScore >= p.MinTrustScore {
			return nil
		}
		if p.MinTrustScore == 0 {
			return fmt.Errorf("key %s: %w: readers need a trust path from the author, %s has none", truncate(p.KeyID), ErrAccessDenied, truncate(requester))
		}
		return fmt.Errorf("key %s: %w: readers need a trust score of at least %g from the author, %s has %g",
			truncate(p.KeyID), ErrAccessDenied, p.MinTrustScore, truncate(requester), trustScore)
	case AccessExplicit:
		if slices.Contains(p.AllowedNodes, requester) {
			return nil
		}
		return fmt.Errorf("key %s: %w: %s is not among the allowed nodes", truncate(p.KeyID), ErrAccessDenied, truncate(requester))
	}
	return fmt.Errorf("key %s: %w: unknown access %q", truncate(p.KeyID), ErrAccessDenied, truncate(p.Access))
}

// RevokesKeyOf reports whether r, a verified Revocation, revokes the key of
// policy p: a hard revoke is the lesson's standard revocation, and it kills
// every key of the lesson whose policy was issued before it (a policy
// issued after it is for a later publication, if the node allowed one).
func (r *Revocation) RevokesKeyOf(p *KeyPolicy) bool {
	return r.NodeID == p.NodeID && r.LessonID == p.LessonID && p.IssuedAt <= r.RevokedAt
}

// validate checks the document's rules, not its signature nor its times
// against a clock.
func (p *KeyPolicy) validate() error {
	if err := ValidateID(p.KeyID); err != nil {
		return fmt.Errorf("key policy.keyId: %w", err)
	}
	if err := ValidateID(p.LessonID); err != nil {
		return fmt.Errorf("key policy.lessonId: %w", err)
	}
	if _, err := PublicKeyOf(p.NodeID); err != nil {
		return fmt.Errorf("key policy.nodeId: %w", err)
	}
	if math.IsNaN(p.MinTrustScore) || p.MinTrustScore < 0 || p.MinTrustScore > 1 {
		return invalidf("key policy.minTrustScore: want a number from 0 to 1")
	}
	switch p.Access {
	case AccessPublic, AccessExplicit:
		if p.MinTrustScore != 0 {
			return invalidf("key policy: minTrustScore is for trusted access only: use 0")
		}
	case AccessTrusted:
	default:
		return invalidf("key policy.access %q: want public, trusted or explicit", truncate(p.Access))
	}
	if (p.Access == AccessExplicit) != (len(p.AllowedNodes) > 0) {
		return invalidf("key policy: allowedNodes lists the readers of explicit access, and only of it")
	}
	if len(p.AllowedNodes) > MaxAllowedNodes {
		return invalidf("key policy.allowedNodes: %d entries, the limit is %d", len(p.AllowedNodes), MaxAllowedNodes)
	}
	seen := make(map[string]bool, len(p.AllowedNodes))
	for i, id := range p.AllowedNodes {
		if seen[id] {
			return invalidf("key policy.allowedNodes[%d]: duplicate %s", i, truncate(id))
		}
		seen[id] = true
		if _, err := PublicKeyOf(id); err != nil {
			return fmt.Errorf("key policy.allowedNodes[%d]: %w", i, err)
		}
	}
	if p.IssuedAt <= 0 || p.IssuedAt > maxSafeInt {
		return invalidf("key policy.issuedAt: want Unix milliseconds")
	}
	if p.ExpiresAt != 0 && (p.ExpiresAt <= p.IssuedAt || p.ExpiresAt > maxSafeInt) {
		return invalidf("key policy.expiresAt: want Unix milliseconds after issuedAt")
	}
	if p.Escrow != nil {
		if err := p.Escrow.validate(p.NodeID); err != nil {
			return fmt.Errorf("key policy: %w", err)
		}
	}
	return nil
}

// DecodeKeyPolicy decodes a key policy: size cap, nesting depth, I-JSON,
// exact field names (case-sensitive, no unknown fields, none missing), field
// types, and the document's rules. It does not verify: call
// VerifyKeyPolicy.
func DecodeKeyPolicy(data []byte) (*KeyPolicy, error) {
	var p KeyPolicy
	if err := p.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// UnmarshalJSON decodes a key policy with exact field names and types, so
// that the canonical JSON of the decoded document is that of the bytes
// received. It does not check the document's rules: DecodeKeyPolicy does.
func (p *KeyPolicy) UnmarshalJSON(data []byte) error {
	if len(data) > MaxKeyPolicySize {
		return fmt.Errorf("key policy: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxKeyPolicySize)
	}
	o, err := parseObjectDepth("key policy", data, maxKeyPolicyDepth)
	if err != nil {
		return err
	}
	if err := o.only([]string{"keyId", "lessonId", "nodeId", "access", "minTrustScore", "allowedNodes", "issuedAt", "signature"}, "expiresAt", "escrow"); err != nil {
		return err
	}
	var out KeyPolicy
	for _, f := range []struct {
		name string
		dst  *string
	}{{"keyId", &out.KeyID}, {"lessonId", &out.LessonID}, {"nodeId", &out.NodeID}, {"access", &out.Access}} {
		if *f.dst, err = o.str(f.name); err != nil {
			return err
		}
	}
	if out.MinTrustScore, err = o.float("minTrustScore"); err != nil {
		return err
	}
	if out.AllowedNodes, err = o.strs("allowedNodes"); err != nil {
		return err
	}
	if o.has("expiresAt") {
		if out.ExpiresAt, err = o.int("expiresAt"); err != nil {
			return err
		}
		if out.ExpiresAt <= 0 {
			return invalidf("key policy.expiresAt: want Unix milliseconds")
		}
	}
	if o.has("escrow") {
		out.Escrow = new(Escrow)
		if err := out.Escrow.unmarshalChecked(o.get("escrow")); err != nil {
			return fmt.Errorf("key policy: %w", err)
		}
	}
	if out.IssuedAt, err = o.int("issuedAt"); err != nil {
		return err
	}
	if err := out.Signature.decode("key policy.signature", o.get("signature")); err != nil {
		return err
	}
	*p = out
	return nil
}

// unmarshalChecked decodes an escrow block already checked as I-JSON.
func (e *Escrow) unmarshalChecked(data []byte) error {
	o, err := splitObject("escrow", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"threshold", "shares"}); err != nil {
		return err
	}
	out := Escrow{Shares: []EscrowShare{}}
	n, err := o.int("threshold")
	if err != nil {
		return err
	}
	out.Threshold = int(n)
	raw := o.get("shares")
	if len(raw) == 0 || raw[0] != '[' {
		return invalidf("escrow.shares: want an array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return invalidf("escrow.shares: want an array")
	}
	if len(items) > MaxEscrowShares {
		return invalidf("escrow.shares: %d shares, at most %d", len(items), MaxEscrowShares)
	}
	for i, item := range items {
		so, err := splitObject(fmt.Sprintf("escrow.shares[%d]", i), item)
		if err != nil {
			return err
		}
		if err := so.only([]string{"nodeId", "sealedShare"}); err != nil {
			return err
		}
		var s EscrowShare
		if s.NodeID, err = so.str("nodeId"); err != nil {
			return err
		}
		if s.SealedShare, err = so.str("sealedShare"); err != nil {
			return err
		}
		out.Shares = append(out.Shares, s)
	}
	*e = out
	return nil
}

// now is the verifier's clock.
func (o VerifyOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}
