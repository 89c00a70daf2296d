package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Code is a MESH wire error code. The seed's codes are fixed; new codes may be
// added, none renamed.
type Code string

// Wire error codes.
const (
	CodeInvalidSignature Code = "INVALID_SIGNATURE"
	CodeUntrustedNode    Code = "UNTRUSTED_NODE"
	CodeUnknownLesson    Code = "UNKNOWN_LESSON"
	CodeAlreadyRevoked   Code = "ALREADY_REVOKED"
	CodeRateLimited      Code = "RATE_LIMITED"
	CodeInvalidRequest   Code = "INVALID_REQUEST"
	// CodeTooLarge is returned for a request or message over its size cap.
	CodeTooLarge Code = "TOO_LARGE"
	// CodeInternal is returned when the node failed for reasons of its own.
	CodeInternal Code = "INTERNAL"
	// CodeUnknownNode is returned for a node ID the answering node knows
	// nothing of (a directory's GET /v1/nodes/{nodeId}).
	CodeUnknownNode Code = "UNKNOWN_NODE"
	// CodeNotFound is returned when a lookup found nothing (no node record
	// in the DHT, say).
	CodeNotFound Code = "NOT_FOUND"
	// CodeUnavailable is returned when the node cannot do what was asked
	// now or at all: it is offline, its DHT is off, or it knows no DHT
	// server yet.
	CodeUnavailable Code = "UNAVAILABLE"
	// CodeUnreachable is returned when a peer, relay or directory the
	// request needed could not be reached.
	CodeUnreachable Code = "UNREACHABLE"
	// CodeUnauthorized is returned when a request lacks the credentials
	// its API needs (the control API's bearer token).
	CodeUnauthorized Code = "UNAUTHORIZED"
	// CodeAccessDenied is returned when a key policy does not admit the
	// requester (a key server or escrow node refusing a key or a share).
	CodeAccessDenied Code = "ACCESS_DENIED"
	// CodeKeyRevoked is returned, forever, for a lesson key its author
	// revoked (the seed's "Cryptographic Revocation").
	CodeKeyRevoked Code = "KEY_REVOKED"
	// CodeInsufficientStorage is returned when the node refuses a write
	// because its disk is (nearly) full; reads go on, and writes resume
	// once space returns.
	CodeInsufficientStorage Code = "INSUFFICIENT_STORAGE"
)

// Sentinel errors. Wire codes map onto them with [CodeOf] and [ErrorFor].
var (
	// ErrInvalidSignature: the signature does not verify, or is malformed.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrKeyMismatch: a record's nodeId is not the peer ID of its publicKey.
	ErrKeyMismatch = errors.New("nodeId does not match publicKey")
	// ErrTimestamp: a signing timestamp lies outside the accepted window.
	ErrTimestamp = errors.New("timestamp outside the accepted window")
	// ErrTooLarge: an encoded value is larger than its cap.
	ErrTooLarge = errors.New("too large")
	// ErrInvalid: a value is malformed (bad JSON, a missing or ill-typed field).
	ErrInvalid = errors.New("invalid")
	// ErrUnsupportedVersion: a document names a version this code does not speak.
	ErrUnsupportedVersion = errors.New("unsupported version")
	// ErrUnknownLesson: no such lesson.
	ErrUnknownLesson = errors.New("unknown lesson")
	// ErrUnknownNode: no such node known here.
	ErrUnknownNode = errors.New("unknown node")
	// ErrAlreadyRevoked: the lesson was already revoked.
	ErrAlreadyRevoked = errors.New("already revoked")
	// ErrUntrusted: no trust path to the node.
	ErrUntrusted = errors.New("untrusted node")
	// ErrRateLimited: too many requests.
	ErrRateLimited = errors.New("rate limited")
	// ErrNotFound: a lookup found nothing.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the service asked for is not available on this node
	// (offline, DHT off, no DHT server known yet). Errors of other packages
	// that mean this wrap it (the node's ErrOffline, say), so they keep
	// their meaning across an API.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable: a peer the request needed could not be reached.
	ErrUnreachable = errors.New("unreachable")
	// ErrUnauthorized: the request lacks the credentials its API needs.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrAccessDenied: the key policy does not admit the requester.
	ErrAccessDenied = errors.New("access denied")
	// ErrKeyRevoked: the key was revoked; the content it encrypted is gone.
	ErrKeyRevoked = errors.New("key revoked")
	// ErrInsufficientStorage: the node's disk is (nearly) full; the write
	// was refused and changed nothing.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrDecrypt: a ciphertext or sealed key does not open: the key is
	// wrong, or the ciphertext, nonce, tag or what they are bound to was
	// altered. Errors that match it match ErrInvalid too.
	ErrDecrypt = errors.New("cannot decrypt")
)

// codeTable is the one table of MESH's errors: each wire code, the
// sentinel it maps to (nil for none), and the HTTP status every HTTP
// binding answers it with. CodeOf takes the first row whose sentinel
// matches, so more specific rows come first.
var codeTable = []struct {
	code   Code
	err    error
	status int
}{
	{CodeInvalidSignature, ErrInvalidSignature, 400},
	{CodeInvalidSignature, ErrKeyMismatch, 400},
	{CodeTooLarge, ErrTooLarge, 413},
	{CodeInvalidRequest, ErrInvalid, 400},
	{CodeInvalidRequest, ErrUnsupportedVersion, 400},
	{CodeInvalidRequest, ErrTimestamp, 400},
	{CodeUnknownLesson, ErrUnknownLesson, 404},
	{CodeUnknownNode, ErrUnknownNode, 404},
	{CodeNotFound, ErrNotFound, 404},
	{CodeAlreadyRevoked, ErrAlreadyRevoked, 409},
	{CodeUntrustedNode, ErrUntrusted, 403},
	{CodeAccessDenied, ErrAccessDenied, 403},
	{CodeKeyRevoked, ErrKeyRevoked, 410},
	{CodeRateLimited, ErrRateLimited, 429},
	{CodeUnavailable, ErrUnavailable, 503},
	{CodeUnreachable, ErrUnreachable, 502},
	{CodeUnauthorized, ErrUnauthorized, 401},
	{CodeInsufficientStorage, ErrInsufficientStorage, 507},
	{CodeInternal, nil, 500},
}

// CodeOf maps an error to its wire code. An error from [ErrorFor] keeps the
// code it was made from, so a node relaying a peer's error passes the code
// on. Errors that are not MESH errors map to CodeInternal; nil maps to "".
func CodeOf(err error) Code {
	var re *RemoteError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		if re.Code == "" {
			return CodeInternal
		}
		return re.Code
	}
	for _, row := range codeTable {
		if row.err != nil && errors.Is(err, row.err) {
			return row.code
		}
	}
	return CodeInternal
}

// HTTPStatus is the HTTP status an error answer carries for err: 400 for
// a bad request, 404 for an unknown lesson, 503 for a service that is
// unavailable, and so on (see the protocol README); 500 for an error that
// is not a MESH error.
func HTTPStatus(err error) int {
	return StatusOf(CodeOf(err))
}

// StatusOf is the HTTP status of a wire code; 500 for a code it does not
// know.
func StatusOf(code Code) int {
	for _, row := range codeTable {
		if row.code == code {
			return row.status
		}
	}
	return 500
}

// sentinel returns the sentinel error a wire code maps to, or nil.
func sentinel(code Code) error {
	for _, row := range codeTable {
		if row.code == code {
			return row.err
		}
	}
	return nil
}

// RemoteError is an error answer received from a peer. It matches the
// sentinel of its code with errors.Is (a code without one, such as
// CodeInternal or a code this version does not know, matches none), and
// [CodeOf] returns its Code.
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string {
	switch head := e.head(); {
	case e.Message == "":
		return head
	case strings.Contains(e.Message, head+": "):
		return e.Message // it names its code already ("connect X: unreachable: …")
	default:
		return head + ": " + e.Message
	}
}

// head is what Error says before the message: the sentinel's text, or
// "remote error CODE" for a code without one.
func (e *RemoteError) head() string {
	if base := sentinel(e.Code); base != nil {
		return base.Error()
	}
	return "remote error " + string(e.Code)
}

// Unwrap returns the sentinel of e.Code, or nil.
func (e *RemoteError) Unwrap() error { return sentinel(e.Code) }

// ErrorFor turns a wire code and message received from a peer back into an
// error that matches the corresponding sentinel with errors.Is, and whose
// CodeOf is code. A message that starts with what the error would say anyway
// (as one made by [NewError] does) is not repeated, so an error relayed over
// several hops reads the same at each.
func ErrorFor(code Code, message string) error {
	e := &RemoteError{Code: code}
	head := e.head()
	if message != head {
		e.Message = strings.TrimPrefix(message, head+": ")
	}
	if e.Message == "" {
		if base := sentinel(code); base != nil {
			return base
		}
	}
	return e
}

// Error is the JSON body of an error answer, on HTTP and on streams.
type Error struct {
	Error   bool   `json:"error"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// NewError builds the wire form of err. NewError(nil) is the zero Error.
func NewError(err error) Error {
	if err == nil {
		return Error{}
	}
	return Error{Error: true, Code: CodeOf(err), Message: err.Error()}
}

// ErrorOf is the wire form of err for an answer's error field: nil for a
// nil err.
func ErrorOf(err error) *Error {
	if err == nil {
		return nil
	}
	e := NewError(err)
	return &e
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
