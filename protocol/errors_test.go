package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestCodeOfErrorForRoundTrip(t *testing.T) {
	codes := []Code{CodeInvalidSignature, CodeUntrustedNode, CodeUnknownLesson, CodeAlreadyRevoked,
		CodeRateLimited, CodeInvalidRequest, CodeTooLarge, CodeInternal, CodeAccessDenied, CodeKeyRevoked, Code("SOMETHING_NEW")}
	for _, code := range codes {
		for _, msg := range []string{"", "lesson a@b"} {
			t.Run(string(code)+"/"+msg, func(t *testing.T) {
				err := ErrorFor(code, msg)
				if err == nil {
					t.Fatal("nil error")
				}
				if got := CodeOf(err); got != code {
					t.Fatalf("CodeOf(ErrorFor(%s)) = %s", code, got)
				}
				if got := CodeOf(fmt.Errorf("fetch: %w", err)); got != code {
					t.Fatalf("CodeOf(wrapped) = %s", got)
				}
				// Over the wire again: a relaying node keeps the code.
				w := NewError(err)
				b, _ := json.Marshal(w)
				var back Error
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				again := ErrorFor(back.Code, back.Message)
				if CodeOf(again) != code || again.Error() != err.Error() {
					t.Fatalf("second hop: %v (%s), first hop %v", again, CodeOf(again), err)
				}
			})
		}
	}
}

func TestErrorForSentinels(t *testing.T) {
	for code, sentinel := range map[Code]error{
		CodeInvalidSignature: ErrInvalidSignature,
		CodeUntrustedNode:    ErrUntrusted,
		CodeUnknownLesson:    ErrUnknownLesson,
		CodeAlreadyRevoked:   ErrAlreadyRevoked,
		CodeRateLimited:      ErrRateLimited,
		CodeInvalidRequest:   ErrInvalid,
		CodeTooLarge:         ErrTooLarge,
		CodeUnknownNode:      ErrUnknownNode,
		CodeAccessDenied:     ErrAccessDenied,
		CodeKeyRevoked:       ErrKeyRevoked,
	} {
		if err := ErrorFor(code, "x"); !errors.Is(err, sentinel) {
			t.Errorf("ErrorFor(%s) = %v, not %v", code, err, sentinel)
		}
		if err := ErrorFor(code, ""); err != sentinel {
			t.Errorf("ErrorFor(%s, \"\") = %v, want the sentinel itself", code, err)
		}
	}
	for _, code := range []Code{CodeInternal, "NEW"} {
		err := ErrorFor(code, "boom")
		for _, s := range []error{ErrInvalid, ErrInvalidSignature, ErrUnknownLesson} {
			if errors.Is(err, s) {
				t.Errorf("ErrorFor(%s) matches %v", code, s)
			}
		}
		if err.Error() != "remote error "+string(code)+": boom" {
			t.Errorf("ErrorFor(%s).Error() = %q", code, err)
		}
	}
	// The sentinel's own text is not repeated.
	if got := ErrorFor(CodeInvalidRequest, NewError(invalidf("record: type is required")).Message).Error(); got != "invalid: record: type is required" {
		t.Errorf("ErrorFor(NewError(err)) = %q", got)
	}
	if got := ErrorFor(CodeInvalidRequest, "invalidity").Error(); got != "invalid: invalidity" {
		t.Errorf("ErrorFor(invalidity) = %q", got)
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{nil, ""},
		{errors.New("disk full"), CodeInternal},
		{fmt.Errorf("x: %w", ErrKeyMismatch), CodeInvalidSignature},
		{fmt.Errorf("x: %w", ErrTimestamp), CodeInvalidRequest},
		{fmt.Errorf("x: %w", ErrUnsupportedVersion), CodeInvalidRequest},
		{fmt.Errorf("x: %w", ErrTooLarge), CodeTooLarge},
		{fmt.Errorf("x: %w", ErrAccessDenied), CodeAccessDenied},
		{fmt.Errorf("x: %w", ErrKeyRevoked), CodeKeyRevoked},
		{fmt.Errorf("x: %w: %w", ErrDecrypt, ErrInvalid), CodeInvalidRequest},
		{&RemoteError{}, CodeInternal},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
	if e := NewError(nil); e != (Error{}) {
		t.Errorf("NewError(nil) = %+v", e)
	}
	if e := NewError(ErrRateLimited); !e.Error || e.Code != CodeRateLimited || e.Message != "rate limited" {
		t.Errorf("NewError = %+v", e)
	}
}
