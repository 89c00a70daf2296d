package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// testNow is the clock every test signs and verifies with.
var testNow = time.UnixMilli(1767225600000) // 2026-01-01T00:00:00Z

// testKey returns a deterministic key: the seed is 32 copies of b.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func testNodeID(t testing.TB, key ed25519.PrivateKey) string {
	t.Helper()
	id, err := NodeID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testLesson() *Lesson {
	return &Lesson{
		ID:        "rust-borrow-01",
		Type:      TypeLesson,
		Title:     "Borrow checker: clone is not a fix",
		Content:   "Prefer restructuring ownership over .clone(). <&> \u00e9 \u2028 🦀",
		Tags:      []string{"rust", "ownership"},
		Severity:  "warning",
		CreatedAt: 1767225500000,
		Agent:     "claude",
		Project:   "mesh",
		Extra: map[string]json.RawMessage{
			"humidity": json.RawMessage(`61.5`),
			"nested":   json.RawMessage(`{"b":[1,2,{"z":null}],"a":"x"}`),
		},
	}
}

func testPublication() Publication {
	return Publication{Visibility: VisibilityPublic, PublishedAt: testNow.UnixMilli(), Topics: []string{"rust"}}
}

func mustSign(t testing.TB, key ed25519.PrivateKey, l *Lesson) *SignedLesson {
	t.Helper()
	s, err := Sign(key, l, testPublication(), testNow)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s
}

func mustEncode(t testing.TB, s *SignedLesson) []byte {
	t.Helper()
	b, err := s.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func mustCanonical(t testing.TB, b []byte) []byte {
	t.Helper()
	c, err := Canonical(b)
	if err != nil {
		t.Fatalf("Canonical(%s): %v", b, err)
	}
	return c
}

// wantErr checks that err matches target and, when wantMsg is set, that its
// message contains wantMsg.
func wantErr(t testing.TB, err, target error, wantMsg string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if wantMsg != "" && !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("error = %q, want it to mention %q", err, wantMsg)
	}
}

// replaceOnce replaces old by new in s, failing the test unless old occurs
// exactly once.
func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times in %s", old, n, s)
	}
	return strings.Replace(s, old, new, 1)
}
