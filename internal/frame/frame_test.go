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

// countingWriter counts the writes it gets.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// TestWriteInOneWrite: a frame up to maxPooled goes out in one write, a
// larger one in two; both read back, and pooled buffers do not leak one
// frame's bytes into the next.
func TestWriteInOneWrite(t *testing.T) {
	for _, tc := range []struct {
		size, writes int
	}{{300, 1}, {5, 1}, {maxPooled - 3, 1}, {maxPooled + 1, 2}, {0, 1}} {
		var w countingWriter
		msg := bytes.Repeat([]byte{byte(tc.size)}, tc.size)
		if err := Write(&w, msg); err != nil {
			t.Fatal(err)
		}
		if w.writes != tc.writes {
			t.Errorf("%d bytes: %d writes, want %d", tc.size, w.writes, tc.writes)
		}
		got, err := Read(bufio.NewReader(&w.Buffer), maxPooled+8)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: read back %d bytes, %v", tc.size, len(got), err)
		}
	}
}
