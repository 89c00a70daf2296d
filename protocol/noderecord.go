package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// NodeRecord is a node's signed entry in the MESH DHT, stored under
// /mesh-node/<nodeId>: where the node can be reached, the topics it follows
// and the roles it plays ("directory", "relay"). The node signs it itself;
// the signature covers the RFC 8785 canonical JSON of the record without its
// signature field. Of two valid records the one with the newer issuedAt wins;
// a record past expiresAt is invalid. Re-publishing it is the node's
// heartbeat.
type NodeRecord struct {
	Version   string   `json:"version"` // Version
	NodeID    string   `json:"nodeId"`
	PublicKey string   `json:"publicKey"` // raw Ed25519 key, base64 std padded
	Addrs     []string `json:"addrs"`     // multiaddrs
	Topics    []string `json:"topics"`    // followed MESH topics, lower-case
	Roles     []string `json:"roles"`     // RoleDirectory, RoleRelay, ...
	IssuedAt  int64    `json:"issuedAt"`  // Unix ms; the newest valid record wins
	ExpiresAt int64    `json:"expiresAt"` // Unix ms; invalid from then on
	Signature string   `json:"signature"`
}

// Roles a node record may name. Other names are allowed too.
const (
	RoleDirectory = "directory"
	RoleRelay     = "relay"
)

// Node record limits.
const (
	// MaxNodeRecordSize caps an encoded node record.
	MaxNodeRecordSize = 16 << 10
	// MaxNodeRecordTTL is the longest a node record may be valid for
	// (expiresAt - issuedAt).
	MaxNodeRecordTTL = 24 * time.Hour
	// maxNodeRecordAddrs caps the addresses in a node record.
	maxNodeRecordAddrs = 32
	// maxNodeRecordTopics caps the topics in a node record.
	maxNodeRecordTopics = MaxTags
	// maxNodeRecordRoles caps the roles in a node record.
	maxNodeRecordRoles = 16
	// maxNodeRecordAddrLength caps one address.
	maxNodeRecordAddrLength = 256
)

var nodeRecordFields = []string{"version", "nodeId", "publicKey", "addrs", "topics", "roles", "issuedAt", "expiresAt", "signature"}

// SigningPayload returns the bytes a node record's signature
// covers: the canonical JSON of the record without its signature field.
func (r *NodeRecord) SigningPayload() ([]byte, error) {
	body := struct {
		Version   string   `json:"version"`
		NodeID    string   `json:"nodeId"`
		PublicKey string   `json:"publicKey"`
		Addrs     []string `json:"addrs"`
		Topics    []string `json:"topics"`
		Roles     []string `json:"roles"`
		IssuedAt  int64    `json:"issuedAt"`
		ExpiresAt int64    `json:"expiresAt"`
	}{r.Version, r.NodeID, r.PublicKey, nonNil(r.Addrs), nonNil(r.Topics), nonNil(r.Roles), r.IssuedAt, r.ExpiresAt}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

// SignNodeRecord builds and signs a node record valid from now for ttl
// (at most MaxNodeRecordTTL). Topics are lower-cased.
func SignNodeRecord(key ed25519.PrivateKey, addrs, topics, roles []string, now time.Time, ttl time.Duration) (*NodeRecord, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign node record: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > MaxNodeRecordTTL {
		return nil, invalidf("sign node record: ttl %s: want more than 0 and at most %s", ttl, MaxNodeRecordTTL)
	}
	lower := make([]string, len(topics))
	for i, t := range topics {
		lower[i] = strings.ToLower(t)
	}
	r := &NodeRecord{
		Version:   Version,
		NodeID:    nodeID,
		PublicKey: base64.StdEncoding.EncodeToString(pk),
		Addrs:     append([]string{}, addrs...),
		Topics:    lower,
		Roles:     append([]string{}, roles...),
		IssuedAt:  now.UnixMilli(),
		ExpiresAt: now.Add(ttl).UnixMilli(),
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("sign node record: %w", err)
	}
	payload, err := r.SigningPayload()
	if err != nil {
		return nil, err
	}
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))
	return r, nil
}

// validate checks the shape of a record, not its signature or its times
// against a clock.
func (r *NodeRecord) validate() error {
	if r.Version != Version {
		return fmt.Errorf("node record: %w: %q, this node speaks %q", ErrUnsupportedVersion, truncate(r.Version), Version)
	}
	if len(r.Addrs) > maxNodeRecordAddrs {
		return invalidf("node record: %d addrs, the limit is %d", len(r.Addrs), maxNodeRecordAddrs)
	}
	for _, a := range r.Addrs {
		if a == "" || len(a) > maxNodeRecordAddrLength {
			return invalidf("node record: address %q: want 1 to %d characters", truncate(a), maxNodeRecordAddrLength)
		}
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return invalidf("node record: address %q is not a multiaddr: %v", truncate(a), err)
		}
		if m.String() != a {
			return invalidf("node record: address %q is not in canonical form, want %q", truncate(a), truncate(m.String()))
		}
	}
	if len(r.Topics) > maxNodeRecordTopics {
		return invalidf("node record: %d topics, the limit is %d", len(r.Topics), maxNodeRecordTopics)
	}
	for _, t := range r.Topics {
		if t == "" || len(t) > MaxTagLength || !safeName(t) || strings.ToLower(t) != t {
			return invalidf("node record: topic %q: use 1 to %d lower-case letters, digits, '_', '-' or '.'", truncate(t), MaxTagLength)
		}
	}
	if len(r.Roles) > maxNodeRecordRoles {
		return invalidf("node record: %d roles, the limit is %d", len(r.Roles), maxNodeRecordRoles)
	}
	for _, role := range r.Roles {
		if role == "" || len(role) > MaxTagLength || !safeName(role) {
			return invalidf("node record: role %q: use 1 to %d letters, digits, '_', '-' or '.'", truncate(role), MaxTagLength)
		}
	}
	if r.IssuedAt <= 0 || r.IssuedAt > maxSafeInt {
		return invalidf("node record: issuedAt: want Unix milliseconds")
	}
	if r.ExpiresAt <= r.IssuedAt || r.ExpiresAt > maxSafeInt {
		return invalidf("node record: expiresAt must be after issuedAt")
	}
	if time.Duration(r.ExpiresAt-r.IssuedAt)*time.Millisecond > MaxNodeRecordTTL {
		return invalidf("node record: valid for %s, the limit is %s", time.Duration(r.ExpiresAt-r.IssuedAt)*time.Millisecond, MaxNodeRecordTTL)
	}
	return nil
}

// Expired reports whether the record is past its expiresAt at now.
func (r *NodeRecord) Expired(now time.Time) bool { return now.UnixMilli() >= r.ExpiresAt }

// HasRole reports whether the record names role.
func (r *NodeRecord) HasRole(role string) bool { return contains(r.Roles, role) }

// VerifyNodeRecord checks the version and shape, that nodeId is the peer ID
// of publicKey, the self-signature, that issuedAt is not in the future
// beyond opts' window, and that the record has not expired at opts.Now.
func VerifyNodeRecord(r *NodeRecord, opts VerifyOptions) error {
	if r == nil {
		return invalidf("node record: nil")
	}
	if err := r.validate(); err != nil {
		return err
	}
	pk, err := verifyKey(AlgorithmEd25519, r.NodeID, r.PublicKey)
	if err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: node record signature is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	payload, err := r.SigningPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: node record signature does not match", ErrInvalidSignature)
	}
	opts.AllowOld = true
	if err := opts.check(r.IssuedAt); err != nil {
		return fmt.Errorf("node record: %w", err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if r.Expired(now) {
		return fmt.Errorf("node record: %w: expired at %s", ErrTimestamp, time.UnixMilli(r.ExpiresAt).UTC().Format(time.RFC3339))
	}
	return nil
}

// DecodeNodeRecord decodes a node record: size cap, I-JSON, exact field
// names (case-sensitive, no unknown fields, none missing), field types, a
// known version and a valid shape. It does not verify: call
// VerifyNodeRecord.
func DecodeNodeRecord(data []byte) (*NodeRecord, error) {
	if len(data) > MaxNodeRecordSize {
		return nil, fmt.Errorf("node record: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxNodeRecordSize)
	}
	var r NodeRecord
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// UnmarshalJSON decodes a node record with exact field names and types:
// every field is required and the arrays are arrays of strings (not null),
// so the canonical JSON of the decoded record is that of the bytes
// received. It does not check the version: DecodeNodeRecord does.
func (r *NodeRecord) UnmarshalJSON(data []byte) error {
	if len(data) > MaxNodeRecordSize {
		return fmt.Errorf("node record: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxNodeRecordSize)
	}
	o, err := parseObject("nodeRecord", data)
	if err != nil {
		return err
	}
	if err := o.only(nodeRecordFields); err != nil {
		return err
	}
	var out NodeRecord
	if out.Version, err = o.str("version"); err != nil {
		return err
	}
	if out.NodeID, err = o.str("nodeId"); err != nil {
		return err
	}
	if out.PublicKey, err = o.str("publicKey"); err != nil {
		return err
	}
	if out.Addrs, err = o.strs("addrs"); err != nil {
		return err
	}
	if out.Topics, err = o.strs("topics"); err != nil {
		return err
	}
	if out.Roles, err = o.strs("roles"); err != nil {
		return err
	}
	if out.IssuedAt, err = o.int("issuedAt"); err != nil {
		return err
	}
	if out.ExpiresAt, err = o.int("expiresAt"); err != nil {
		return err
	}
	if out.Signature, err = o.str("signature"); err != nil {
		return err
	}
	*r = out
	return nil
}

// MarshalJSON encodes the record; nil arrays encode as [], as they are
// signed.
func (r NodeRecord) MarshalJSON() ([]byte, error) {
	type plain NodeRecord
	p := plain(r)
	p.Addrs = nonNil(p.Addrs)
	p.Topics = nonNil(p.Topics)
	p.Roles = nonNil(p.Roles)
	return json.Marshal(p)
}

// Encode returns the record's JSON encoding, as stored in the DHT.
func (r *NodeRecord) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxNodeRecordSize {
		return nil, fmt.Errorf("node record: %w: %d bytes, the limit is %d", ErrTooLarge, len(b), MaxNodeRecordSize)
	}
	return b, nil
}
