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

	"github.com/meshprotocol/mesh/protocol"
)

// ErrTooLarge is returned (wrapped, and wrapping protocol.ErrTooLarge) when a
// frame announces more bytes than the reader's cap.
var ErrTooLarge = fmt.Errorf("frame: %w", protocol.ErrTooLarge)

// Write writes one frame, in one write: a length written on its own costs
// a stream a write (a yamux frame, a packet) of a few bytes, and on a
// mocknet link a second delivery delay.
func Write(w io.Writer, msg []byte) error {
	b := make([]byte, 0, binary.MaxVarintLen64+len(msg))
	b = binary.AppendUvarint(b, uint64(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

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
