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

// Write writes one frame.
func Write(w io.Writer, msg []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(msg)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(msg)
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
