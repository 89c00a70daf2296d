package directory

import (
	"net"
	"sync"
)

// clientLimitListener accepts at most total connections at once, and at
// most perClient from one client (clientKey: an IPv4 address or an IPv6
// /64). A connection over either bound is closed as soon as it is
// accepted, before anything is read from it.
type clientLimitListener struct {
	net.Listener
	total, perClient int

	mu    sync.Mutex
	open  int
	count map[string]int
}

func newClientLimitListener(ln net.Listener, total, perClient int) net.Listener {
	return &clientLimitListener{Listener: ln, total: total, perClient: perClient, count: make(map[string]int)}
}

// Accept returns the next connection within the bounds.
func (l *clientLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := connKey(c)
		l.mu.Lock()
		if l.open >= l.total || l.count[key] >= l.perClient {
			l.mu.Unlock()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: nothing to keep for the client
			}
			c.Close()
			continue
		}
		l.open++
		l.count[key]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *clientLimitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.count[key]--; l.count[key] <= 0 {
		delete(l.count, key)
	}
}

func connKey(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return clientKey(host)
}

// limitedConn gives its slot back on its first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
