package frame

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/meshprotocol/mesh/protocol"
)

func TestRoundTripAndCap(t *testing.T) {
	var b bytes.Buffer
	for _, m := range [][]byte{[]byte(`{"a":1}`), {}, bytes.Repeat([]byte("x"), 300)} {
		if err := Write(&b, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&b)
	for _, want := range []int{7, 0, 300} {
		got, err := Read(r, 1000)
		if err != nil || len(got) != want {
			t.Fatalf("got %d bytes, %v; want %d", len(got), err, want)
		}
	}
	if _, err := Read(r, 1000); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	b.Reset()
	Write(&b, bytes.Repeat([]byte("x"), 2000))
	if _, err := Read(bufio.NewReader(&b), 1000); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("oversize frame: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 16; i++ {
			m, err := Read(r, 64)
			if err != nil {
				return
			}
			if len(m) > 64 {
				t.Fatalf("frame of %d bytes over the cap", len(m))
			}
		}
	})
}
