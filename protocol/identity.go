package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Identity is a node's self-signed identity document, served at
// /.well-known/mesh/identity, over ProtocolIdentity, and stored in the DHT.
// The signature covers the canonical JSON of the document without signature.
type Identity struct {
	Version      string   `json:"version"` // Version
	NodeID       string   `json:"nodeId"`
	PublicKey    string   `json:"publicKey"` // raw Ed25519 key, base64 std padded
	Addrs        []string `json:"addrs"`     // multiaddrs
	Capabilities []string `json:"capabilities"`
	IssuedAt     int64    `json:"issuedAt"` // Unix ms; the newest valid document wins
	Signature    string   `json:"signature"`
}

// Capabilities a node may advertise.
const (
	CapabilityStore     = "store"
	CapabilitySearch    = "search"
	CapabilitySync      = "sync"
	CapabilityFetch     = "fetch"
	CapabilityDirectory = "directory"
	CapabilityRelay     = "relay"
)

// maxIdentityAddrs caps the addresses in one identity document.
const maxIdentityAddrs = 64

func (d *Identity) signingPayload() ([]byte, error) {
	c := *d
	c.Signature = ""
	body := struct {
		Version      string   `json:"version"`
		NodeID       string   `json:"nodeId"`
		PublicKey    string   `json:"publicKey"`
		Addrs        []string `json:"addrs"`
		Capabilities []string `json:"capabilities"`
		IssuedAt     int64    `json:"issuedAt"`
	}{c.Version, c.NodeID, c.PublicKey, nonNil(c.Addrs), nonNil(c.Capabilities), c.IssuedAt}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SignIdentity builds and signs an identity document.
func SignIdentity(key ed25519.PrivateKey, addrs, capabilities []string, now time.Time) (*Identity, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign identity: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	d := &Identity{
		Version:      Version,
		NodeID:       nodeID,
		PublicKey:    base64.StdEncoding.EncodeToString(pk),
		Addrs:        append([]string{}, addrs...),
		Capabilities: append([]string{}, capabilities...),
		IssuedAt:     now.UnixMilli(),
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	payload, err := d.signingPayload()
	if err != nil {
		return nil, err
	}
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))
	return d, nil
}

func (d *Identity) validate() error {
	if d.Version != Version {
		return fmt.Errorf("identity: %w: %q, this node speaks %q", ErrUnsupportedVersion, truncate(d.Version), Version)
	}
	if len(d.Addrs) > maxIdentityAddrs {
		return invalidf("identity: %d addrs, the limit is %d", len(d.Addrs), maxIdentityAddrs)
	}
	for _, a := range d.Addrs {
		if a == "" {
			return invalidf("identity: empty address in addrs")
		}
	}
	if len(d.Capabilities) > MaxTags {
		return invalidf("identity: %d capabilities, the limit is %d", len(d.Capabilities), MaxTags)
	}
	for _, c := range d.Capabilities {
		if c == "" || len(c) > MaxTagLength || !safeName(c) {
			return invalidf("identity: capability %q: use 1 to %d letters, digits, '_', '-' or '.'", truncate(c), MaxTagLength)
		}
	}
	if d.IssuedAt <= 0 || d.IssuedAt > maxSafeInt {
		return invalidf("identity: issuedAt: want Unix milliseconds")
	}
	return nil
}

// VerifyIdentity checks the version, that nodeId is the peer ID of publicKey,
// the self-signature, and that issuedAt is not in the future beyond opts.
func VerifyIdentity(d *Identity, opts VerifyOptions) error {
	if d == nil {
		return invalidf("identity: nil")
	}
	if err := d.validate(); err != nil {
		return err
	}
	pk, err := verifyKey(AlgorithmEd25519, d.NodeID, d.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: identity signature is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	payload, err := d.signingPayload()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: identity signature does not match", ErrInvalidSignature)
	}
	opts.AllowOld = true
	return opts.check(d.IssuedAt)
}

// DecodeIdentity decodes an identity document: size cap, I-JSON, exact field
// names (case-sensitive, no unknown fields, none missing), field types, a
// known version. It does not verify: call VerifyIdentity.
func DecodeIdentity(data []byte) (*Identity, error) {
	if len(data) > MaxIdentitySize {
		return nil, fmt.Errorf("identity: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxIdentitySize)
	}
	var d Identity
	if err := d.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// UnmarshalJSON decodes an identity document with exact field names and
// types: every field is required, addrs and capabilities are arrays of
// strings (not null). So the canonical JSON of the decoded document, which
// VerifyIdentity checks, is that of the bytes received. It does not check the
// version: DecodeIdentity does.
func (d *Identity) UnmarshalJSON(data []byte) error {
	if len(data) > MaxIdentitySize {
		return fmt.Errorf("identity: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxIdentitySize)
	}
	o, err := parseObject("identity", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"version", "nodeId", "publicKey", "addrs", "capabilities", "issuedAt", "signature"}); err != nil {
		return err
	}
	var out Identity
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
	if out.Capabilities, err = o.strs("capabilities"); err != nil {
		return err
	}
	if out.IssuedAt, err = o.int("issuedAt"); err != nil {
		return err
	}
	if out.Signature, err = o.str("signature"); err != nil {
		return err
	}
	*d = out
	return nil
}

// MarshalJSON encodes the document; nil addrs or capabilities encode as [],
// as they are signed.
func (d Identity) MarshalJSON() ([]byte, error) {
	type plain Identity
	p := plain(d)
	p.Addrs = nonNil(p.Addrs)
	p.Capabilities = nonNil(p.Capabilities)
	return json.Marshal(p)
}
