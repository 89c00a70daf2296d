package protocol

import (
	"errors"
	"fmt"
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
	// ErrAlreadyRevoked: the lesson was already revoked.
	ErrAlreadyRevoked = errors.New("already revoked")
	// ErrUntrusted: no trust path to the node.
	ErrUntrusted = errors.New("untrusted node")
	// ErrRateLimited: too many requests.
	ErrRateLimited = errors.New("rate limited")
)

// CodeOf maps an error to its wire code. Errors that are not MESH errors map to
// CodeInternal; nil maps to "".
func CodeOf(err error) Code {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrInvalidSignature), errors.Is(err, ErrKeyMismatch):
		return CodeInvalidSignature
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrTimestamp):
		return CodeInvalidRequest
	case errors.Is(err, ErrUnknownLesson):
		return CodeUnknownLesson
	case errors.Is(err, ErrAlreadyRevoked):
		return CodeAlreadyRevoked
	case errors.Is(err, ErrUntrusted):
		return CodeUntrustedNode
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	}
	return CodeInternal
}

// ErrorFor turns a wire code and message received from a peer back into an
// error that matches the corresponding sentinel with errors.Is.
func ErrorFor(code Code, message string) error {
	var base error
	switch code {
	case CodeInvalidSignature:
		base = ErrInvalidSignature
	case CodeTooLarge:
		base = ErrTooLarge
	case CodeInvalidRequest:
		base = ErrInvalid
	case CodeUnknownLesson:
		base = ErrUnknownLesson
	case CodeAlreadyRevoked:
		base = ErrAlreadyRevoked
	case CodeUntrustedNode:
		base = ErrUntrusted
	case CodeRateLimited:
		base = ErrRateLimited
	default:
		return fmt.Errorf("remote error %s: %s", code, message)
	}
	if message == "" {
		return base
	}
	return fmt.Errorf("%w: %s", base, message)
}

// Error is the JSON body of an error answer, on HTTP and on streams.
type Error struct {
	Error   bool   `json:"error"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// NewError builds the wire form of err.
func NewError(err error) Error {
	return Error{Error: true, Code: CodeOf(err), Message: err.Error()}
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
