package watch

import (
	"fmt"
	"net"
)

// errClosed is returned by a second Close, and by waits the closing ends.
var errClosed = fmt.Errorf("watch: %w", net.ErrClosed)
