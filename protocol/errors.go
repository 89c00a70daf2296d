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
)

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
	case errors.Is(err, ErrInvalidSignature), errors.Is(err, ErrKeyMismatch):
		return CodeInvalidSignature
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrTimestamp):
		return CodeInvalidRequest
	case errors.Is(err, ErrUnknownLesson):
		return CodeUnknownLesson
	case errors.Is(err, ErrUnknownNode):
		return CodeUnknownNode
	case errors.Is(err, ErrAlreadyRevoked):
		return CodeAlreadyRevoked
	case errors.Is(err, ErrUntrusted):
		return CodeUntrustedNode
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	}
	return CodeInternal
}

// sentinel returns the sentinel error a wire code maps to, or nil.
func sentinel(code Code) error {
	switch code {
	case CodeInvalidSignature:
		return ErrInvalidSignature
	case CodeTooLarge:
		return ErrTooLarge
	case CodeInvalidRequest:
		return ErrInvalid
	case CodeUnknownLesson:
		return ErrUnknownLesson
	case CodeUnknownNode:
		return ErrUnknownNode
	case CodeAlreadyRevoked:
		return ErrAlreadyRevoked
	case CodeUntrustedNode:
		return ErrUntrusted
	case CodeRateLimited:
		return ErrRateLimited
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
	if e.Message == "" {
		return e.head()
	}
	return e.head() + ": " + e.Message
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

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
