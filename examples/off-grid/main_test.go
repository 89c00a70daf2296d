package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun runs the example: every reading reaches the owner once with a
// valid sensor proof, the encrypted one opens only with the epoch key, and
// both gateways refuse the forgery.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"the owner holds 3 of 3 readings",
		`well: "level=132 cm" signed by sensor`,
		`orchard: "moisture=31.5 temp_c=9.25 %" signed by sensor`,
		"barn: \"encrypted reading of barn/climate (epoch 1)\"",
		"the owner opens it with the epoch key: temp=4.5 humidity=91",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in:\n%s", want, s)
		}
	}
	if strings.Count(s, "proof valid: true") != 3 || strings.Contains(s, "held ") {
		t.Errorf("proofs or copies:\n%s", s)
	}
	if strings.Count(s, "refused forged 1") != 2 {
		t.Errorf("a gateway took the forgery:\n%s", s)
	}
}
