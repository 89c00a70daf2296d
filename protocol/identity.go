package protocol

import (
	"bytes"
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
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign identity: %w: want an Ed25519 private key", ErrInvalid)
	}
	pk := key.Public().(ed25519.PublicKey)
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	d := &Identity{
		Version:      Version,
		NodeID:       nodeID,
		PublicKey:    base64.StdEncoding.EncodeToString(pk),
		Addrs:        nonNil(addrs),
		Capabilities: nonNil(capabilities),
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
	if len(d.Addrs) > maxIdentityAddrs || len(d.Capabilities) > MaxTags {
		return invalidf("identity: too many addrs or capabilities")
	}
	if d.IssuedAt <= 0 || d.IssuedAt > maxSafeInt {
		return invalidf("identity: issuedAt: want Unix milliseconds")
	}
	return nil
}

// VerifyIdentity checks the version, that nodeId is the peer ID of publicKey,
// the self-signature, and that issuedAt is not in the future beyond opts.
func VerifyIdentity(d *Identity, opts VerifyOptions) error {
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

// DecodeIdentity decodes an identity document: size cap, I-JSON, no unknown
// fields, a known version. It does not verify: call VerifyIdentity.
func DecodeIdentity(data []byte) (*Identity, error) {
	if len(data) > MaxIdentitySize {
		return nil, fmt.Errorf("identity: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxIdentitySize)
	}
	if err := checkIJSON(data); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	var d Identity
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, invalidf("identity: %v", err)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &d, nil
}
