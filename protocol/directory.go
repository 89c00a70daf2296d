package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/gowebpki/jcs"
)

// Directories and the public HTTP API.
//
// A directory node indexes public lessons and answers anyone, over
// libp2p and over plain HTTP. Every HTTP response body it sends, errors
// included, is a JSON object signed by the serving node:
//
//	{
//	  "directory": {"nodeId": "12D3KooW...", "timestamp": 1767225600000, "signature": "base64..."},
//	  "servedAt": 1767225600000,
//	  ... the response's own members ...
//	}
//
// The signature is Ed25519, by the key the node ID embeds, over the RFC
// 8785 canonical JSON of the body without its "directory" member. The body
// carries servedAt, which must equal directory.timestamp: so the signing
// time is covered by the signature too, and a verifier holding the body
// can prove what the node said, and when. See docs/directory.md.

// ProtocolDirectory is the stream protocol by which a node registers with
// a directory (DirectoryRegister, answered by DirectoryRegistered).
const ProtocolDirectory = "/mesh/directory/1.0.0"

// Members of a signed response body.
const (
	// DirectoryField is the member that carries a response's signature.
	DirectoryField = "directory"
	// ServedAtField is the signed member that repeats directory.timestamp.
	ServedAtField = "servedAt"
)

// Size caps of the directory protocols.
const (
	// MaxSignedResponseSize caps a signed HTTP response body.
	MaxSignedResponseSize = MaxSearchResponseSize
	// MaxDirectoryRequestSize caps an HTTP search request body and a
	// registration message.
	MaxDirectoryRequestSize = 8 << 10
	// MaxDirectoryMessageSize caps a registration answer.
	MaxDirectoryMessageSize = 64 << 10
	// maxDirectoryText caps free-text policy fields (contact, URL).
	maxDirectoryText = 512
	// maxDirectoryAddrs caps the addresses in a policy or a node entry.
	maxDirectoryAddrs = 32
	// MaxDirectoryNodes caps the nodes in a nodes response.
	MaxDirectoryNodes = 200
)

// DefaultResponseWindow is how far a signed response's timestamp may be
// from the verifier's clock, either way, unless the verifier says otherwise.
const DefaultResponseWindow = 5 * time.Minute

// DirectoryBlock is the signature block of a signed response body.
type DirectoryBlock struct {
	// NodeID is the serving node; its Ed25519 key is embedded in it.
	NodeID string `json:"nodeId"`
	// Timestamp is when the response was signed, Unix ms; equal to the
	// body's servedAt.
	Timestamp int64 `json:"timestamp"`
	// Signature is the Ed25519 signature, base64 std padded.
	Signature string `json:"signature"`
}

// SignResponse signs an HTTP response body. body must be a JSON object
// (I-JSON) without "directory" or "servedAt" members: SignResponse adds
// servedAt = now, signs the canonical form, and returns that form with the
// directory block in front.
func SignResponse(key ed25519.PrivateKey, body []byte, now time.Time) ([]byte, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxSignedResponseSize {
		return nil, fmt.Errorf("sign response: %w: %d bytes, the limit is %d", ErrTooLarge, len(body), MaxSignedResponseSize)
	}
	o, err := parseObject("response", body)
	if err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	if o.has(DirectoryField) || o.has(ServedAtField) {
		return nil, invalidf("sign response: the body already has a %q or %q member", DirectoryField, ServedAtField)
	}
	ts := now.UnixMilli()
	if err := checkTimestamp(ts); err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	// {"servedAt":ts, ...body's members}
	t := bytes.TrimSpace(body)
	with := make([]byte, 0, len(t)+32)
	with = append(with, `{"servedAt":`...)
	with = strconv.AppendInt(with, ts, 10)
	if rest := bytes.TrimSpace(t[1:]); len(rest) > 0 && rest[0] != '}' {
		with = append(with, ',')
	}
	with = append(with, t[1:]...)
	payload, err := Canonical(with)
	if err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))
	out := make([]byte, 0, len(payload)+len(nodeID)+len(sig)+64)
	out = append(out, `{"directory":{"nodeId":`...)
	out = appendJSONString(out, nodeID)
	out = append(out, `,"signature":`...)
	out = appendJSONString(out, sig)
	out = append(out, `,"timestamp":`...)
	out = strconv.AppendInt(out, ts, 10)
	out = append(out, `},`...)
	out = append(out, payload[1:]...) // payload has servedAt: never empty
	return out, nil
}

// VerifiedResponse is a signed response body that verified.
type VerifiedResponse struct {
	// Directory is the signature block.
	Directory DirectoryBlock
	// Body is what the signature covers: the canonical JSON of the body
	// without its directory block. Decode the response from it.
	Body []byte
}

// VerifyResponse checks a signed response body: the size cap, I-JSON, the
// directory block's fields, that servedAt equals directory.timestamp, the
// Ed25519 signature by the key of directory.nodeId over the canonical JSON
// of the body without the block, and the timestamp against opts (a zero
// opts.Window means DefaultResponseWindow; opts.AllowOld accepts any past
// time, to check a response kept as proof).
func VerifyResponse(data []byte, opts VerifyOptions) (*VerifiedResponse, error) {
	if len(data) > MaxSignedResponseSize {
		return nil, fmt.Errorf("signed response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSignedResponseSize)
	}
	o, err := parseObject("signed response", data)
	if err != nil {
		return nil, err
	}
	raw, ok := o.lookup(DirectoryField)
	if !ok {
		return nil, fmt.Errorf("%w: the response carries no %q block: it is not signed", ErrInvalidSignature, DirectoryField)
	}
	bo, err := splitObject("signed response.directory", raw)
	if err != nil {
		return nil, err
	}
	if err := bo.only([]string{"nodeId", "timestamp", "signature"}); err != nil {
		return nil, err
	}
	var blk DirectoryBlock
	if blk.NodeID, err = bo.str("nodeId"); err != nil {
		return nil, err
	}
	if blk.Timestamp, err = bo.int("timestamp"); err != nil {
		return nil, err
	}
	if blk.Signature, err = bo.str("signature"); err != nil {
		return nil, err
	}
	if !o.has(ServedAtField) {
		return nil, invalidf("signed response.servedAt is missing")
	}
	servedAt, err := o.int(ServedAtField)
	if err != nil {
		return nil, err
	}
	if servedAt != blk.Timestamp {
		return nil, fmt.Errorf("%w: servedAt %d differs from directory.timestamp %d", ErrInvalidSignature, servedAt, blk.Timestamp)
	}
	if err := checkTimestamp(blk.Timestamp); err != nil {
		return nil, err
	}
	pk, err := PublicKeyOf(blk.NodeID)
	if err != nil {
		return nil, fmt.Errorf("%w: directory.nodeId: %v", ErrInvalidSignature, err)
	}
	sig, err := base64.StdEncoding.DecodeString(blk.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: directory.signature is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	rest := make(map[string]json.RawMessage, len(o.members)-1)
	for _, m := range o.members {
		if m.name != DirectoryField {
			rest[m.name] = m.value
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return nil, invalidf("signed response: %v", err)
	}
	payload, err := Canonical(b)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(pk, payload, sig) {
		return nil, fmt.Errorf("%w: the directory signature does not match the body", ErrInvalidSignature)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultResponseWindow
	}
	if err := opts.check(blk.Timestamp); err != nil {
		return nil, err
	}
	return &VerifiedResponse{Directory: blk, Body: payload}, nil
}

// DirectorySearchRequest is the body of POST /v1/search.
type DirectorySearchRequest struct {
	// Query is as in SearchRequest.Query; "" matches every public lesson
	// that passes the filters.
	Query   string         `json:"query"`
	Filters *SearchFilters `json:"filters,omitempty"`
	// Limit: 0 means DefaultSearchLimit, at most MaxSearchLimit.
	Limit int `json:"limit,omitempty"`
}

// DecodeDirectorySearchRequest decodes a POST /v1/search body: size cap,
// I-JSON, exact field names, a query of at most MaxSearchQueryLength bytes,
// a limit from 0 to MaxSearchLimit.
func DecodeDirectorySearchRequest(data []byte) (*DirectorySearchRequest, error) {
	if len(data) > MaxDirectoryRequestSize {
		return nil, fmt.Errorf("search request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxDirectoryRequestSize)
	}
	o, err := parseObject("search request", data)
	if err != nil {
		return nil, err
	}
	if err := o.only(nil, "query", "filters", "limit"); err != nil {
		return nil, err
	}
	r := &DirectorySearchRequest{}
	if o.has("query") {
		if r.Query, err = o.str("query"); err != nil {
			return nil, err
		}
		if len(r.Query) > MaxSearchQueryLength {
			return nil, invalidf("search request.query: %d bytes, the limit is %d", len(r.Query), MaxSearchQueryLength)
		}
	}
	if o.has("limit") {
		v, err := o.nonNegative("limit")
		if err != nil {
			return nil, err
		}
		if v > MaxSearchLimit {
			return nil, invalidf("search request.limit: %d, the limit is %d", v, MaxSearchLimit)
		}
		r.Limit = int(v)
	}
	if o.has("filters") {
		fo, err := splitObject("search request.filters", o.get("filters"))
		if err != nil {
			return nil, err
		}
		if r.Filters, err = decodeSearchFilters(fo); err != nil {
			return nil, err
		}
		if r.Filters.Empty() {
			r.Filters = nil
		}
	}
	return r, nil
}

// MsgDirectorySearch is the type of a DirectorySearchResponse.
const MsgDirectorySearch = "directorySearch"

// DirectorySearchResponse is the signed answer to POST /v1/search. It
// repeats the request, so a signed answer cannot be passed off as the
// answer to another query; Results carry the lessons as their publishers
// signed them, best first by the serving node's index.
type DirectorySearchResponse struct {
	Type    string         `json:"type"` // MsgDirectorySearch
	Query   string         `json:"query"`
	Filters *SearchFilters `json:"filters,omitempty"`
	Limit   int            `json:"limit"`
	// More says the node holds more public lessons matching the request
	// than Results.
	More    bool           `json:"more"`
	Results []SearchResult `json:"results"`
	// Invalid counts the results of a decoded answer that were left out
	// because they did not decode. Never sent.
	Invalid int `json:"-"`
}

// Encode returns the JSON encoding (the unsigned body); nil Results
// encode as [].
func (r *DirectorySearchResponse) Encode() ([]byte, error) {
	c := *r
	if c.Results == nil {
		c.Results = []SearchResult{}
	}
	return encodeJSON(&c)
}

// DecodeDirectorySearchResponse decodes the verified body of a search
// answer (VerifiedResponse.Body): size cap, exact field names, at most
// MaxSearchResults results, each signed lesson held to DecodeSignedLesson's
// rules. It does not verify the lessons.
func DecodeDirectorySearchResponse(body []byte) (*DirectorySearchResponse, error) {
	if len(body) > MaxSignedResponseSize {
		return nil, fmt.Errorf("directory search response: %w: %d bytes, the limit is %d", ErrTooLarge, len(body), MaxSignedResponseSize)
	}
	o, err := parseObject("directory search response", body)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "query", "limit", "more", "results"}, "filters", ServedAtField); err != nil {
		return nil, err
	}
	r := &DirectorySearchResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgDirectorySearch {
		return nil, invalidf("directory search response: type %q, want %q", truncate(r.Type), MsgDirectorySearch)
	}
	if r.Query, err = o.str("query"); err != nil {
		return nil, err
	}
	var v int64
	if v, err = o.nonNegative("limit"); err != nil {
		return nil, err
	}
	r.Limit = int(min(v, MaxSearchResults))
	switch string(bytes.TrimSpace(o.get("more"))) {
	case "true":
		r.More = true
	case "false":
	default:
		return nil, invalidf("directory search response.more: want true or false")
	}
	if o.has("filters") {
		fo, err := splitObject("directory search response.filters", o.get("filters"))
		if err != nil {
			return nil, err
		}
		if r.Filters, err = decodeSearchFilters(fo); err != nil {
			return nil, err
		}
	}
	elems, isArray := splitArray(o.get("results"), MaxSearchResults+1)
	if !isArray {
		return nil, invalidf("directory search response.results: want an array")
	}
	if len(elems) > MaxSearchResults {
		return nil, fmt.Errorf("directory search response: %w: more than %d results", ErrTooLarge, MaxSearchResults)
	}
	r.Results = make([]SearchResult, 0, len(elems))
	for i, raw := range elems {
		res, err := decodeSearchResult(fmt.Sprintf("directory search response.results[%d]", i), raw)
		if err != nil {
			r.Invalid++ // one bad result does not cost the others
			continue
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}

// DirectoryLessonResponse is the signed answer to GET
// /v1/lessons/{lessonId}@{nodeId}: the lesson as signed by its publisher
// (signedLesson, or encryptedLesson for one published encrypted), or, for
// a revoked lesson (status 410), its signed revocation.
type DirectoryLessonResponse struct {
	Key             string           `json:"key"`
	SignedLesson    *SignedLesson    `json:"signedLesson,omitempty"`
	EncryptedLesson *EncryptedLesson `json:"encryptedLesson,omitempty"`
	Revocation      *Revocation      `json:"revocation,omitempty"`
	// Error is set on the 410 answer for a revoked lesson.
	Error   bool   `json:"error,omitempty"`
	Code    Code   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// DecodeDirectoryLessonResponse decodes the verified body of a lesson
// answer: size cap, exact field names, a lesson or a revocation held to
// their decoders' rules. It checks that what it carries is about Key; it
// does not verify signatures.
func DecodeDirectoryLessonResponse(body []byte) (*DirectoryLessonResponse, error) {
	if len(body) > maxPublishedSize+MaxRevocationSize+4<<10 {
		return nil, fmt.Errorf("directory lesson response: %w: %d bytes", ErrTooLarge, len(body))
	}
	o, err := parseObject("directory lesson response", body)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"key"}, "signedLesson", "encryptedLesson", "revocation", "error", "code", "message", ServedAtField); err != nil {
		return nil, err
	}
	r := &DirectoryLessonResponse{}
	if r.Key, err = o.str("key"); err != nil {
		return nil, err
	}
	if _, _, err := ParseKey(r.Key); err != nil {
		return nil, err
	}
	carried := 0
	for _, m := range []string{"signedLesson", "encryptedLesson", "revocation"} {
		if o.has(m) {
			carried++
		}
	}
	if carried != 1 {
		return nil, invalidf("directory lesson response: want exactly one of signedLesson, encryptedLesson and revocation")
	}
	if o.has("encryptedLesson") {
		r.EncryptedLesson = new(EncryptedLesson)
		if err := r.EncryptedLesson.UnmarshalJSON(o.get("encryptedLesson")); err != nil {
			return nil, fmt.Errorf("directory lesson response: %w", err)
		}
		if r.EncryptedLesson.Key() != r.Key {
			return nil, invalidf("directory lesson response: asked for %s, the lesson is %s", truncate(r.Key), truncate(r.EncryptedLesson.Key()))
		}
	} else if o.has("signedLesson") {
		r.SignedLesson = new(SignedLesson)
		if err := r.SignedLesson.unmarshalChecked(o.get("signedLesson")); err != nil {
			return nil, fmt.Errorf("directory lesson response: %w", err)
		}
		if r.SignedLesson.Key() != r.Key {
			return nil, invalidf("directory lesson response: asked for %s, the lesson is %s", truncate(r.Key), truncate(r.SignedLesson.Key()))
		}
	} else {
		if r.Revocation, err = DecodeRevocation(o.get("revocation")); err != nil {
			return nil, fmt.Errorf("directory lesson response: %w", err)
		}
		if r.Revocation.Key() != r.Key {
			return nil, invalidf("directory lesson response: asked for %s, the revocation is of %s", truncate(r.Key), truncate(r.Revocation.Key()))
		}
	}
	if o.has("code") {
		c, err := o.str("code")
		if err != nil {
			return nil, err
		}
		r.Code = Code(c)
	}
	if o.has("message") {
		if r.Message, err = o.str("message"); err != nil {
			return nil, err
		}
	}
	r.Error = o.has("error") && string(bytes.TrimSpace(o.get("error"))) == "true"
	return r, nil
}

// Roles a policy states.
const (
	// PolicyDirectory: a directory, indexing the lessons of others.
	PolicyDirectory = "directory"
	// PolicyNode: a node serving its own public lessons.
	PolicyNode = "node"
)

// DirectoryPolicy is what a node serving the public API says about itself:
// GET /v1/policy, and the answer to a registration.
type DirectoryPolicy struct {
	NodeID string `json:"nodeId"`
	// Role is PolicyDirectory or PolicyNode.
	Role string `json:"role"`
	// Topics are the topics a directory follows and indexes; a directory
	// also indexes every lesson of the nodes registered with it.
	Topics []string `json:"topics"`
	// RetentionDays: lessons published longer ago are not served; 0 means
	// until revoked or expired.
	RetentionDays int `json:"retentionDays"`
	// Contact is free text: who runs the directory.
	Contact string `json:"contact,omitempty"`
	// PublicURL is the base URL of the public HTTP API, if announced.
	PublicURL string `json:"publicUrl,omitempty"`
	// Addrs are libp2p multiaddrs (with /p2p/) of the node.
	Addrs []string `json:"addrs"`
	// Registration is the registration stream protocol, "" if the node
	// does not take registrations.
	Registration string `json:"registration,omitempty"`
}

// Validate checks the policy's fields and sizes.
func (p *DirectoryPolicy) Validate() error {
	if _, err := PublicKeyOf(p.NodeID); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if p.Role != PolicyDirectory && p.Role != PolicyNode {
		return invalidf("policy.role %q: want %q or %q", truncate(p.Role), PolicyDirectory, PolicyNode)
	}
	if len(p.Topics) > MaxTags {
		return invalidf("policy: %d topics, the limit is %d", len(p.Topics), MaxTags)
	}
	for _, t := range p.Topics {
		if t == "" || len(t) > MaxTagLength || !safeName(t) {
			return invalidf("policy: topic %q: use 1 to %d letters, digits, '_', '-' or '.'", truncate(t), MaxTagLength)
		}
	}
	if p.RetentionDays < 0 || p.RetentionDays > 1<<20 {
		return invalidf("policy.retentionDays: %d, want 0 to %d", p.RetentionDays, 1<<20)
	}
	if len(p.Contact) > maxDirectoryText || len(p.PublicURL) > maxDirectoryText || len(p.Registration) > maxDirectoryText {
		return invalidf("policy: contact, publicUrl and registration are at most %d bytes", maxDirectoryText)
	}
	if len(p.Addrs) > maxDirectoryAddrs {
		return invalidf("policy: %d addrs, the limit is %d", len(p.Addrs), maxDirectoryAddrs)
	}
	for _, a := range p.Addrs {
		if a == "" || len(a) > maxDirectoryText {
			return invalidf("policy: an address is empty or over %d bytes", maxDirectoryText)
		}
	}
	return nil
}

// DecodeDirectoryPolicy decodes a policy (the verified body of GET
// /v1/policy, or the policy in a registration answer): size cap, exact
// field names and types, Validate.
func DecodeDirectoryPolicy(data []byte) (*DirectoryPolicy, error) {
	if len(data) > MaxDirectoryMessageSize {
		return nil, fmt.Errorf("policy: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxDirectoryMessageSize)
	}
	o, err := parseObject("policy", data)
	if err != nil {
		return nil, err
	}
	return decodePolicy(o)
}

func decodePolicy(o object) (*DirectoryPolicy, error) {
	if err := o.only([]string{"nodeId", "role", "topics", "retentionDays", "addrs"}, "contact", "publicUrl", "registration", ServedAtField); err != nil {
		return nil, err
	}
	p := &DirectoryPolicy{}
	var err error
	if p.NodeID, err = o.str("nodeId"); err != nil {
		return nil, err
	}
	if p.Role, err = o.str("role"); err != nil {
		return nil, err
	}
	if p.Topics, err = o.strs("topics"); err != nil {
		return nil, err
	}
	if p.Addrs, err = o.strs("addrs"); err != nil {
		return nil, err
	}
	v, err := o.nonNegative("retentionDays")
	if err != nil {
		return nil, err
	}
	p.RetentionDays = int(min(v, 1<<21))
	for _, f := range []struct {
		name string
		dst  *string
	}{{"contact", &p.Contact}, {"publicUrl", &p.PublicURL}, {"registration", &p.Registration}} {
		if o.has(f.name) {
			if *f.dst, err = o.str(f.name); err != nil {
				return nil, err
			}
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Message types of ProtocolDirectory.
const (
	MsgRegister   = "register"
	MsgRegistered = "registered"
)

// DirectoryRegister asks a directory to index the sender's public lessons.
// The sender is the stream's authenticated peer: the message names no one.
// The directory answers with DirectoryRegistered, then follows the
// sender's feed and syncs from it.
type DirectoryRegister struct {
	Type string `json:"type"` // MsgRegister
	// Topics are the topics the sender publishes on, for information.
	Topics []string `json:"topics,omitempty"`
}

// Encode returns the JSON encoding.
func (r *DirectoryRegister) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeDirectoryRegister decodes a registration: size cap, exact field
// names, at most MaxTags well-formed topics.
func DecodeDirectoryRegister(data []byte) (*DirectoryRegister, error) {
	if len(data) > MaxDirectoryRequestSize {
		return nil, fmt.Errorf("register: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxDirectoryRequestSize)
	}
	o, err := parseObject("register", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "topics"); err != nil {
		return nil, err
	}
	r := &DirectoryRegister{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgRegister {
		return nil, invalidf("register: type %q, want %q", truncate(r.Type), MsgRegister)
	}
	if o.has("topics") {
		if r.Topics, err = o.strs("topics"); err != nil {
			return nil, err
		}
		if len(r.Topics) > MaxTags {
			return nil, invalidf("register: %d topics, the limit is %d", len(r.Topics), MaxTags)
		}
		for _, t := range r.Topics {
			if t == "" || len(t) > MaxTagLength || !safeName(t) {
				return nil, invalidf("register: topic %q: use 1 to %d letters, digits, '_', '-' or '.'", truncate(t), MaxTagLength)
			}
		}
	}
	return r, nil
}

// DirectoryRegistered answers a DirectoryRegister: the directory's policy,
// or an error (RATE_LIMITED, UNTRUSTED_NODE, INVALID_REQUEST, ...).
type DirectoryRegistered struct {
	Type   string           `json:"type"` // MsgRegistered
	Policy *DirectoryPolicy `json:"policy,omitempty"`
	Error  *Error           `json:"error,omitempty"`
}

// Encode returns the JSON encoding.
func (r *DirectoryRegistered) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeDirectoryRegistered decodes a registration answer: size cap, exact
// field names, a valid policy or an error.
func DecodeDirectoryRegistered(data []byte) (*DirectoryRegistered, error) {
	if len(data) > MaxDirectoryMessageSize {
		return nil, fmt.Errorf("registered: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxDirectoryMessageSize)
	}
	o, err := parseObject("registered", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "policy", "error"); err != nil {
		return nil, err
	}
	r := &DirectoryRegistered{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgRegistered {
		return nil, invalidf("registered: type %q, want %q", truncate(r.Type), MsgRegistered)
	}
	if o.has("error") {
		r.Error = new(Error)
		if err := decodeError(o.get("error"), r.Error); err != nil {
			return nil, prefixErr("registered", err)
		}
	}
	if o.has("policy") {
		po, err := splitObject("registered.policy", o.get("policy"))
		if err != nil {
			return nil, err
		}
		if r.Policy, err = decodePolicy(po); err != nil {
			return nil, err
		}
	}
	if (r.Policy == nil) == (r.Error == nil) {
		return nil, invalidf("registered: want exactly one of policy and error")
	}
	return r, nil
}

// SignSearchResponse signs a search answer: it returns exactly what
// SignResponse(key, r.Encode(), now) does, but writes the canonical form
// straight from the values instead of encoding, parsing and
// canonicalizing the body (a directory signs every answer it sends).
func SignSearchResponse(key ed25519.PrivateKey, r *DirectorySearchResponse, now time.Time) ([]byte, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	ts := now.UnixMilli()
	if err := checkTimestamp(ts); err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	payload, err := r.appendCanonical(make([]byte, 0, 4096), ts)
	if err != nil {
		return nil, fmt.Errorf("sign response: %w", err)
	}
	if len(payload) > MaxSignedResponseSize {
		return nil, fmt.Errorf("sign response: %w: %d bytes, the limit is %d", ErrTooLarge, len(payload), MaxSignedResponseSize)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload))
	out := make([]byte, 0, len(payload)+len(nodeID)+len(sig)+64)
	out = append(out, `{"directory":{"nodeId":`...)
	out = appendJSONString(out, nodeID)
	out = append(out, `,"signature":`...)
	out = appendJSONString(out, sig)
	out = append(out, `,"timestamp":`...)
	out = strconv.AppendInt(out, ts, 10)
	out = append(out, `},`...)
	return append(out, payload[1:]...), nil
}

// appendCanonical appends the RFC 8785 form of r's body with servedAt:
// the members in UTF-16 order (all ASCII names: byte order), strings
// escaped as RFC 8785 does, numbers in ECMAScript form.
func (r *DirectorySearchResponse) appendCanonical(b []byte, servedAt int64) ([]byte, error) {
	var err error
	b = append(b, '{')
	if r.Filters != nil {
		b = append(b, `"filters":`...)
		b = appendCanonicalFilters(b, r.Filters)
		b = append(b, ',')
	}
	b = append(b, `"limit":`...)
	b = appendCanonicalInt(b, int64(r.Limit))
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, r.More)
	b = append(b, `,"query":`...)
	b = appendJSONString(b, r.Query)
	b = append(b, `,"results":[`...)
	for i := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendCanonicalResult(b, &r.Results[i]); err != nil {
			return nil, err
		}
	}
	b = append(b, `],"servedAt":`...)
	b = appendCanonicalInt(b, servedAt)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, r.Type)
	return append(b, '}'), nil
}

// appendCanonicalFilters appends the canonical form of f as encoding/json
// writes it (empty members omitted).
func appendCanonicalFilters(b []byte, f *SearchFilters) []byte {
	b = append(b, '{')
	sep := false
	list := func(name string, ss []string) {
		if len(ss) == 0 {
			return
		}
		if sep {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = appendJSONStrings(b, ss)
		sep = true
	}
	list("nodes", f.Nodes)
	if f.Since != 0 {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"since":`...)
		b = appendCanonicalInt(b, f.Since)
		sep = true
	}
	list("tags", f.Tags)
	list("topics", f.Topics)
	list("types", f.Types)
	return append(b, '}')
}

// appendCanonicalResult appends the canonical form of one SearchResult.
func appendCanonicalResult(b []byte, r *SearchResult) ([]byte, error) {
	if r.SignedLesson == nil {
		return nil, invalidf("search result without a signed lesson")
	}
	s, err := jcs.NumberToJSON(r.Score)
	if err != nil {
		return nil, invalidf("score: %v", err)
	}
	b = append(b, `{"score":`...)
	b = append(b, s...)
	b = append(b, `,"signedLesson":{"lesson":`...)
	sl := r.SignedLesson
	if b, err = appendCanonicalLesson(b, &sl.Lesson); err != nil {
		return nil, err
	}
	b = append(b, `,"publication":`...)
	b = appendCanonicalPublication(b, &sl.Publication)
	b = append(b, `,"signature":{"algorithm":`...)
	b = appendJSONString(b, sl.Signature.Algorithm)
	b = append(b, `,"nodeId":`...)
	b = appendJSONString(b, sl.Signature.NodeID)
	b = append(b, `,"publicKey":`...)
	b = appendJSONString(b, sl.Signature.PublicKey)
	b = append(b, `,"sig":`...)
	b = appendJSONString(b, sl.Signature.Sig)
	b = append(b, `,"timestamp":`...)
	b = appendCanonicalInt(b, sl.Signature.Timestamp)
	b = append(b, `}},"trustScore":`...)
	if s, err = jcs.NumberToJSON(r.TrustScore); err != nil {
		return nil, invalidf("trustScore: %v", err)
	}
	b = append(b, s...)
	if r.Via != "" {
		b = append(b, `,"via":`...)
		b = appendJSONString(b, r.Via)
	}
	return append(b, '}'), nil
}
