package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// A fixed key and clock keep the examples' output stable. Real nodes use
// their long-term key and time.Now().
var (
	key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func ExampleSign() {
	lesson := &protocol.Lesson{
		ID:      "rust-borrow-01",
		Type:    protocol.TypeLesson,
		Title:   "Borrow checker: clone is not a fix",
		Content: "Restructure ownership instead of calling .clone().",
		Tags:    []string{"rust"},
	}
	signed, err := protocol.Sign(key, lesson, protocol.Publication{
		Visibility: protocol.VisibilityPublic,
		Topics:     []string{"rust"},
	}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(signed.Key())
	fmt.Println(signed.Signature.Algorithm, signed.Signature.Timestamp)
	fmt.Println(protocol.TopicName("rust"))
	// Output:
	// rust-borrow-01@12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5
	// ed25519 1767225600000
	// /mesh/1/topic/rust
}

func ExampleVerify() {
	signed, _ := protocol.Sign(key, &protocol.Lesson{ID: "a", Type: protocol.TypeLesson, Content: "original"},
		protocol.Publication{Visibility: protocol.VisibilityPublic}, now)

	// Verify with the receiver's clock: announcements signed more than
	// DefaultTimestampWindow ago are refused unless AllowOld is set.
	fmt.Println(protocol.Verify(signed, protocol.VerifyOptions{Now: now.Add(time.Minute)}))
	err := protocol.Verify(signed, protocol.VerifyOptions{Now: now.Add(2 * time.Hour)})
	fmt.Println(errors.Is(err, protocol.ErrTimestamp))
	fmt.Println(protocol.Verify(signed, protocol.VerifyOptions{Now: now.Add(2 * time.Hour), AllowOld: true}))

	signed.Lesson.Content = "tampered"
	err = protocol.Verify(signed, protocol.VerifyOptions{Now: now})
	fmt.Println(errors.Is(err, protocol.ErrInvalidSignature), protocol.CodeOf(err))
	// Output:
	// <nil>
	// true
	// <nil>
	// true INVALID_SIGNATURE
}

func ExampleDecodeSignedLesson() {
	// A record as another implementation might send it, with a field MESH
	// does not know ("humidity"): it is kept, and covered by the signature.
	lesson, _ := protocol.DecodeLesson([]byte(`{"id":"r1","type":"reading","humidity":61.5}`))
	signed, _ := protocol.Sign(key, lesson, protocol.Publication{Visibility: protocol.VisibilityPublic}, now)
	wire, _ := signed.Encode()

	s, err := protocol.DecodeSignedLesson(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	humidity, _ := s.Lesson.Number("humidity")
	fmt.Println(s.Key(), humidity)
	fmt.Println(protocol.Verify(s, protocol.VerifyOptions{Now: now}))

	// Field names are exact: "Lesson" is not "lesson".
	_, err = protocol.DecodeSignedLesson(bytes.Replace(wire, []byte(`"lesson"`), []byte(`"Lesson"`), 1))
	fmt.Println(err)
	fmt.Println(protocol.CodeOf(err))
	// Output:
	// r1@12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5 61.5
	// <nil>
	// invalid: signed lesson: unknown field "Lesson" (field names are case-sensitive)
	// INVALID_REQUEST
}
