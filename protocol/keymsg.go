package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Message types of the key protocol (ProtocolKeys).
const (
	MsgKeyRequest  = "keyRequest"
	MsgKeyResponse = "keyResponse"
)

// KeyHTTPPrefix is the path of the seed's key endpoint on a node's public
// HTTP API: GET KeyHTTPPrefix + keyId, with a signed request (see
// SignedKeyRequest).
const KeyHTTPPrefix = "/mesh/v1/keys/"

// DefaultKeyRequestWindow is how far a signed HTTP key request's timestamp
// may be from the server's clock, either way.
const DefaultKeyRequestWindow = 5 * time.Minute

// maxKeyResponseDepth caps a KeyResponse's nesting: the answer and the
// revocation it may carry with its signature block (3), or the key policy
// it may carry with its escrow block, shares and one share (5).
const maxKeyResponseDepth = 1 + maxKeyPolicyDepth

// KeyRequest asks a key server (the author, or an escrow node) for a key
// over ProtocolKeys. The requester is the peer at the other end of the
// secure channel; nothing in the request says who it is.
//
//	{"type":"keyRequest","keyId":"k…"}
type KeyRequest struct {
	Type  string `json:"type"` // MsgKeyRequest
	KeyID string `json:"keyId"`
}

// Encode returns the JSON encoding of r.
func (r *KeyRequest) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeKeyRequest decodes and checks a key request: size cap, depth, I-JSON,
// exact field names, type, a valid keyId.
func DecodeKeyRequest(data []byte) (*KeyRequest, error) {
	if len(data) > MaxKeyRequestSize {
		return nil, fmt.Errorf("key request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxKeyRequestSize)
	}
	o, err := parseObjectDepth("key request", data, 1)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "keyId"}); err != nil {
		return nil, err
	}
	r := &KeyRequest{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgKeyRequest {
		return nil, invalidf("key request: type %q, want %q", truncate(r.Type), MsgKeyRequest)
	}
	if r.KeyID, err = o.str("keyId"); err != nil {
		return nil, err
	}
	if err := ValidateID(r.KeyID); err != nil {
		return nil, fmt.Errorf("key request.keyId: %w", err)
	}
	return r, nil
}

// KeyResponse answers a KeyRequest (ProtocolKeys) or a signed
// GET /mesh/v1/keys/{keyId}. It is one of, with the seed's field names:
//
//	{"type":"keyResponse","keyId":"k…","key":"base64","expiresAt":…}          the key (stream: inside the secure channel)
//	{"type":"keyResponse","keyId":"k…","sealedKey":"base64","expiresAt":…}    the key sealed to the requester (HTTP)
//	{"type":"keyResponse","keyId":"k…","share":"base64","expiresAt":…}        an escrow share (stream)
//	{"type":"keyResponse","keyId":"k…","sealedShare":"base64","expiresAt":…}  an escrow share sealed to the requester (HTTP)
//	{"type":"keyResponse","keyId":"k…","error":"KEY_REVOKED","revokedAt":…[,"revocation":{…}]}
//	{"type":"keyResponse","keyId":"k…","error":"ACCESS_DENIED"[,"message":"…"]}  (or any other code)
//
// expiresAt (Unix ms) is how long the reader may keep the key, and the
// plaintext it decrypts, before asking again. A KEY_REVOKED answer is
// final; it may carry the author's signed Revocation of the lesson.
//
// An answer that gives a key or a share may also carry the key's signed
// KeyPolicy ("policy"): an escrow node sends it with its share, so the
// reader learns the threshold and where the other shares are; the author
// may send it with the key, so the reader knows the escrow nodes to ask
// when the author is offline later.
type KeyResponse struct {
	Type        string      `json:"type"` // MsgKeyResponse
	KeyID       string      `json:"keyId"`
	Key         string      `json:"key,omitempty"`         // base64 std padded, LessonKeySize bytes
	SealedKey   string      `json:"sealedKey,omitempty"`   // base64 of SealKey(requester, key, KeySealInfo(keyId, requester))
	Share       string      `json:"share,omitempty"`       // base64 of one SplitKey share
	SealedShare string      `json:"sealedShare,omitempty"` // base64 of SealKey(requester, share, ShareSealInfo(keyId, requester))
	ExpiresAt   int64       `json:"expiresAt,omitempty"`
	Error       Code        `json:"error,omitempty"`
	RevokedAt   int64       `json:"revokedAt,omitempty"`
	Message     string      `json:"message,omitempty"`
	Revocation  *Revocation `json:"revocation,omitempty"`
	Policy      *KeyPolicy  `json:"policy,omitempty"` // the key's policy, with a key or share
}

// Encode returns the JSON encoding of r.
func (r *KeyResponse) Encode() ([]byte, error) { return encodeJSON(r) }

// KeyErrorResponse is the answer for a key that is not given: err's code
// (ACCESS_DENIED for ErrAccessDenied, NOT_FOUND for ErrNotFound, …) and
// message (nil is taken as UNAVAILABLE). For a revoked key use
// KeyRevokedResponse: KEY_REVOKED needs its revokedAt.
func KeyErrorResponse(keyID string, err error) *KeyResponse {
	if err == nil {
		err = fmt.Errorf("%w: no error given", ErrUnavailable)
	}
	e := NewError(err)
	return &KeyResponse{Type: MsgKeyResponse, KeyID: keyID, Error: e.Code, Message: e.Message}
}

// KeyRevokedResponse is the answer for a revoked key, forever. rev, the
// author's revocation of the lesson, may be nil (a key rotated away).
func KeyRevokedResponse(keyID string, revokedAt int64, rev *Revocation) *KeyResponse {
	return &KeyResponse{Type: MsgKeyResponse, KeyID: keyID, Error: CodeKeyRevoked, RevokedAt: revokedAt, Revocation: rev}
}

// Err returns the error an error answer stands for, matching its sentinel
// (ErrKeyRevoked, ErrAccessDenied, …) with errors.Is; nil for an answer
// that carries a key or share.
func (r *KeyResponse) Err() error {
	switch r.Error {
	case "":
		return nil
	case CodeKeyRevoked:
		return fmt.Errorf("key %s: %w at %s", truncate(r.KeyID), ErrKeyRevoked, time.UnixMilli(r.RevokedAt).UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("key %s: %w", truncate(r.KeyID), ErrorFor(r.Error, r.Message))
}

// RawKey returns the key of an answer that carries it in the clear (over
// ProtocolKeys). For a sealed key, use OpenKey with KeySealInfo.
func (r *KeyResponse) RawKey() ([]byte, error) {
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.Key == "" {
		return nil, invalidf("key response: no key in the clear (sealed: %t)", r.SealedKey != "")
	}
	k, _ := base64.StdEncoding.DecodeString(r.Key) // checked by validate
	return k, nil
}

// validate checks that r is one of the documented forms.
func (r *KeyResponse) validate() error {
	if r.Type != MsgKeyResponse {
		return invalidf("key response: type %q, want %q", truncate(r.Type), MsgKeyResponse)
	}
	if err := ValidateID(r.KeyID); err != nil {
		return fmt.Errorf("key response.keyId: %w", err)
	}
	carried := 0
	for _, f := range []string{r.Key, r.SealedKey, r.Share, r.SealedShare} {
		if f != "" {
			carried++
		}
	}
	if r.Error != "" {
		if carried > 0 || r.ExpiresAt != 0 {
			return invalidf("key response: an error answer carries no key, share or expiresAt")
		}
		if len(r.Error) > 64 || !safeName(string(r.Error)) {
			return invalidf("key response.error %q: want a wire error code", truncate(string(r.Error)))
		}
		if (r.Error == CodeKeyRevoked) != (r.RevokedAt > 0) {
			return invalidf("key response: KEY_REVOKED, and only it, carries revokedAt")
		}
		if r.RevokedAt > maxSafeInt {
			return invalidf("key response.revokedAt: want Unix milliseconds")
		}
		if r.Revocation != nil && r.Error != CodeKeyRevoked {
			return invalidf("key response: only KEY_REVOKED carries a revocation")
		}
		if r.Policy != nil {
			return invalidf("key response: an error answer carries no policy")
		}
		if len(r.Message) > MaxNoteLength {
			return invalidf("key response.message: at most %d bytes", MaxNoteLength)
		}
		return nil
	}
	if r.RevokedAt != 0 || r.Revocation != nil || r.Message != "" {
		return invalidf("key response: revokedAt, revocation and message belong to error answers")
	}
	if carried != 1 {
		return invalidf("key response: want exactly one of key, sealedKey, share, sealedShare, or an error")
	}
	if r.ExpiresAt <= 0 || r.ExpiresAt > maxSafeInt {
		return invalidf("key response.expiresAt: want Unix milliseconds")
	}
	if r.Policy != nil {
		if r.Policy.KeyID != r.KeyID {
			return invalidf("key response: the policy is of key %s, the answer of %s", truncate(r.Policy.KeyID), truncate(r.KeyID))
		}
		if err := r.Policy.validate(); err != nil {
			return fmt.Errorf("key response: %w", err)
		}
	}
	switch {
	case r.Key != "":
		return checkBase64Len("key response.key", r.Key, LessonKeySize)
	case r.SealedKey != "":
		return checkBase64Len("key response.sealedKey", r.SealedKey, LessonKeySize+sealOverhead)
	case r.Share != "":
		return checkBase64Len("key response.share", r.Share, ShareSize)
	default:
		return checkBase64Len("key response.sealedShare", r.SealedShare, SealedShareSize)
	}
}

// DecodeKeyResponse decodes and checks a key answer: size cap, depth,
// I-JSON, exact field names and types, and that it is one of the documented
// forms. A revocation it carries is decoded, not verified.
func DecodeKeyResponse(data []byte) (*KeyResponse, error) {
	if len(data) > MaxKeyResponseSize {
		return nil, fmt.Errorf("key response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxKeyResponseSize)
	}
	o, err := parseObjectDepth("key response", data, maxKeyResponseDepth)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "keyId"}, "key", "sealedKey", "share", "sealedShare", "expiresAt", "error", "revokedAt", "message", "revocation", "policy"); err != nil {
		return nil, err
	}
	r := &KeyResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.KeyID, err = o.str("keyId"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"key", &r.Key}, {"sealedKey", &r.SealedKey}, {"share", &r.Share}, {"sealedShare", &r.SealedShare}, {"message", &r.Message}} {
		if o.has(f.name) {
			if *f.dst, err = o.str(f.name); err != nil {
				return nil, err
			}
			if *f.dst == "" {
				return nil, invalidf("key response.%s: empty: omit the field instead", f.name)
			}
		}
	}
	if o.has("error") {
		code, err := o.str("error")
		if err != nil {
			return nil, err
		}
		if code == "" {
			return nil, invalidf("key response.error: empty: omit the field instead")
		}
		r.Error = Code(code)
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"expiresAt", &r.ExpiresAt}, {"revokedAt", &r.RevokedAt}} {
		if o.has(f.name) {
			if *f.dst, err = o.int(f.name); err != nil {
				return nil, err
			}
			if *f.dst <= 0 {
				return nil, invalidf("key response.%s: want Unix milliseconds", f.name)
			}
		}
	}
	if o.has("revocation") {
		r.Revocation = new(Revocation)
		if err := r.Revocation.UnmarshalJSON(o.get("revocation")); err != nil {
			return nil, fmt.Errorf("key response: %w", err)
		}
	}
	if o.has("policy") {
		r.Policy = new(KeyPolicy)
		if err := r.Policy.UnmarshalJSON(o.get("policy")); err != nil {
			return nil, fmt.Errorf("key response: %w", err)
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// SignedKeyRequest is a node's signed request for a key over HTTP
// (GET /mesh/v1/keys/{keyId}), where no secure channel says who asks. The
// signature covers the RFC 8785 JSON of
//
//	{"keyId":…,"nodeId":…,"publicKey":…,"timestamp":…}
//
// and travels in four headers (KeyRequestHeaders); the keyId is the path's.
// The answer seals the key to nodeId's key, so it is safe on plain HTTP.
type SignedKeyRequest struct {
	KeyID     string `json:"keyId"`
	NodeID    string `json:"nodeId"`    // the requester
	PublicKey string `json:"publicKey"` // raw Ed25519 key, base64 std padded
	Timestamp int64  `json:"timestamp"` // Unix ms
	Sig       string `json:"sig"`       // base64 std padded
}

// Headers of a signed HTTP key request.
const (
	HeaderNodeID    = "Mesh-Node-Id"
	HeaderPublicKey = "Mesh-Public-Key"
	HeaderTimestamp = "Mesh-Timestamp" // decimal Unix ms
	HeaderSignature = "Mesh-Signature"
)

// SigningPayload returns the bytes r's signature covers.
func (r *SignedKeyRequest) SigningPayload() []byte {
	b := append([]byte(nil), `{"keyId":`...)
	b = appendJSONString(b, r.KeyID)
	b = append(b, `,"nodeId":`...)
	b = appendJSONString(b, r.NodeID)
	b = append(b, `,"publicKey":`...)
	b = appendJSONString(b, r.PublicKey)
	b = append(b, `,"timestamp":`...)
	b = appendCanonicalInt(b, r.Timestamp)
	return append(b, '}')
}

// SignKeyRequest signs a request for keyID by the node whose key is key.
func SignKeyRequest(key ed25519.PrivateKey, keyID string, now time.Time) (*SignedKeyRequest, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign key request: %w", err)
	}
	if err := ValidateID(keyID); err != nil {
		return nil, fmt.Errorf("sign key request: keyId: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	r := &SignedKeyRequest{KeyID: keyID, NodeID: nodeID, PublicKey: base64.StdEncoding.EncodeToString(pk), Timestamp: now.UnixMilli()}
	if err := checkTimestamp(r.Timestamp); err != nil {
		return nil, fmt.Errorf("sign key request: %w", err)
	}
	r.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, r.SigningPayload()))
	return r, nil
}

// VerifyKeyRequest checks a signed key request: a valid keyId, that nodeId
// is the peer ID of publicKey, the signature, and the timestamp against
// opts, whose zero Window means DefaultKeyRequestWindow here. A server
// should also refuse a (nodeId, timestamp, keyId) it has already answered
// within the window if it wants no replays; the answer is sealed to nodeId
// either way.
func VerifyKeyRequest(r *SignedKeyRequest, opts VerifyOptions) error {
	if r == nil {
		return invalidf("key request: nil")
	}
	if err := ValidateID(r.KeyID); err != nil {
		return fmt.Errorf("key request.keyId: %w", err)
	}
	if err := checkTimestamp(r.Timestamp); err != nil {
		return err
	}
	pk, err := verifyKey(AlgorithmEd25519, r.NodeID, r.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s is not a base64 Ed25519 signature", ErrInvalidSignature, HeaderSignature)
	}
	if !ed25519.Verify(pk, r.SigningPayload(), sig) {
		return fmt.Errorf("%w: key request signature does not match", ErrInvalidSignature)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultKeyRequestWindow
	}
	return opts.check(r.Timestamp)
}

// KeyRequestHeaders returns the HTTP headers that carry r, name to value;
// set each on the request to KeyHTTPPrefix + r.KeyID.
func (r *SignedKeyRequest) KeyRequestHeaders() map[string]string {
	return map[string]string{
		HeaderNodeID:    r.NodeID,
		HeaderPublicKey: r.PublicKey,
		HeaderTimestamp: strconv.FormatInt(r.Timestamp, 10),
		HeaderSignature: r.Sig,
	}
}

// ParseKeyRequestHeaders reads a signed key request for keyID (the path's
// last segment) from its headers; header returns a header's value, ""
// when absent (http.Header.Get). It checks the form, not the signature:
// call VerifyKeyRequest. A request without the headers is ErrUnauthorized.
func ParseKeyRequestHeaders(keyID string, header func(name string) string) (*SignedKeyRequest, error) {
	r := &SignedKeyRequest{KeyID: keyID, NodeID: header(HeaderNodeID), PublicKey: header(HeaderPublicKey), Sig: header(HeaderSignature)}
	ts := header(HeaderTimestamp)
	if r.NodeID == "" || r.PublicKey == "" || ts == "" || r.Sig == "" {
		return nil, fmt.Errorf("key request: %w: sign it: headers %s, %s, %s and %s are required", ErrUnauthorized, HeaderNodeID, HeaderPublicKey, HeaderTimestamp, HeaderSignature)
	}
	if err := ValidateID(keyID); err != nil {
		return nil, fmt.Errorf("key request: keyId: %w", err)
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != ts {
		return nil, invalidf("key request: %s %q: want decimal Unix milliseconds", HeaderTimestamp, truncate(ts))
	}
	r.Timestamp = n
	return r, nil
}

// VerifyKeyResponseHTTP checks a signed answer of GET /mesh/v1/keys/{keyId}
// (the public HTTP API signs every answer: see VerifyResponse, whose opts
// it takes) and decodes the KeyResponse it carries, without the servedAt
// the signature added. signer is the node that signed the answer: the
// author for a key, an escrow node for a share.
func VerifyKeyResponseHTTP(data []byte, opts VerifyOptions) (resp *KeyResponse, signer string, err error) {
	vr, err := VerifyResponse(data, opts)
	if err != nil {
		return nil, "", fmt.Errorf("key response: %w", err)
	}
	o, err := parseObject("key response", vr.Body)
	if err != nil {
		return nil, "", err
	}
	members := o.asMap()
	delete(members, ServedAtField)
	body, err := json.Marshal(members)
	if err != nil {
		return nil, "", invalidf("key response: %v", err)
	}
	if resp, err = DecodeKeyResponse(body); err != nil {
		return nil, "", err
	}
	return resp, vr.Directory.NodeID, nil
}
