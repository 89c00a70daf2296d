package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/meshprotocol/mesh/protocol"
)

func ExampleEncryptLesson() {
	nodeID, _ := protocol.NodeID(key.Public().(ed25519.PublicKey))
	lessonKey := protocol.NewLessonKey() // kept on the author's node, never logged
	el, err := protocol.EncryptLesson(lessonKey, &protocol.Lesson{
		ID:      "rust-borrow-01",
		Type:    protocol.TypeLesson,
		Content: "Restructure ownership instead of calling .clone().",
	}, protocol.EncryptParams{NodeID: nodeID, KeyID: "k1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	el, err = protocol.SignEncrypted(key, el, protocol.Publication{Visibility: protocol.VisibilityPublic}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Anyone can check who published it, without the key.
	fmt.Println(protocol.VerifyEncrypted(el, protocol.VerifyOptions{Now: now}))
	fmt.Println(el.Key(), el.Encryption.Algorithm, el.Encryption.KeyEndpoint)
	// A reader with the key reads it.
	lesson, err := protocol.DecryptLesson(el, lessonKey)
	fmt.Println(lesson.Content, err)
	// Output:
	// <nil>
	// rust-borrow-01@12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5 aes-256-gcm mesh://12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5/keys/k1
	// Restructure ownership instead of calling .clone(). <nil>
}

func ExampleSealKey() {
	reader := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	readerID, _ := protocol.NodeID(reader.Public().(ed25519.PublicKey))
	lessonKey := protocol.NewLessonKey()

	// The author answers GET /mesh/v1/keys/k1 with the key sealed to the reader.
	sealed, err := protocol.SealKey(reader.Public().(ed25519.PublicKey), lessonKey, protocol.KeySealInfo("k1", readerID))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Only the reader opens it.
	got, err := protocol.OpenKey(reader, sealed, protocol.KeySealInfo("k1", readerID))
	fmt.Println(len(sealed), bytes.Equal(got, lessonKey), err)
	_, err = protocol.OpenKey(key, sealed, protocol.KeySealInfo("k1", readerID))
	fmt.Println(err != nil)
	// Output:
	// 80 true <nil>
	// true
}
