// Package frame reads and writes the length-prefixed messages of MESH's
// stream protocols: an unsigned varint byte count, then that many bytes of
// JSON. Readers give a cap, so a peer cannot make us allocate more than the
// message type allows.
package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/meshprotocol/mesh/protocol"
)

// ErrTooLarge is returned (wrapped, and wrapping protocol.ErrTooLarge) when a
// frame announces more bytes than the reader's cap.
var ErrTooLarge = fmt.Errorf("frame: %w", protocol.ErrTooLarge)

// Write writes one frame, in one write: a length written on its own costs
// a stream a write (a yamux frame, a packet) of a few bytes, and on a
// mocknet link a second delivery delay. The frame is put together in a
// pooled buffer, up to maxPooled bytes; a larger one is written in two.
func Write(w io.Writer, msg []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(msg)))
	if n+len(msg) > maxPooled {
		if _, err := w.Write(hdr[:n]); err != nil {
			return err
		}
		_, err := w.Write(msg)
		return err
	}
	bp := writeBufs.Get().(*[]byte)
	b := append(append((*bp)[:0], hdr[:n]...), msg...)
	_, err := w.Write(b)
	*bp = b
	writeBufs.Put(bp)
	return err
}

// maxPooled is the largest frame Write puts together in a pooled buffer.
const maxPooled = 1 << 20

var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// Read reads one frame of at most max bytes.
func Read(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("frame: bad length: %w", err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes announced, the limit is %d", ErrTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("frame: short read: %w", err)
	}
	return buf, nil
}
