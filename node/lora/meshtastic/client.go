package meshtastic

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultTCPPort is the port meshtasticd and network-attached radios
// serve the client API on.
const DefaultTCPPort = "4403"

// toRadioHeartbeat is ToRadio.heartbeat (a Heartbeat message): clients
// send one now and then so that the radio keeps the connection.
const toRadioHeartbeat = 7

// heartbeatEvery is how often an idle client sends a heartbeat.
const heartbeatEvery = 60 * time.Second

// Client is a connection to one Meshtastic radio over its client API.
type Client struct {
	conn    io.ReadWriteCloser
	nodeNum uint32
	packets chan *Packet

	wmu sync.Mutex // serializes frames written

	done      chan struct{}
	closeOnce sync.Once
	err       error // why the read loop stopped; read after done
	// Dropped counts received packets dropped because the reader of
	// Packets was too slow.
	dropped uint64
	mu      sync.Mutex
}

// Dial connects to a radio: "tcp://HOST[:4403]" or
// "serial:///dev/ttyUSB0" (115200 baud, the firmware's default), and
// completes the config handshake.
func Dial(ctx context.Context, target string) (*Client, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("meshtastic: radio %q: %w", target, err)
	}
	var conn io.ReadWriteCloser
	switch u.Scheme {
	case "tcp":
		host := u.Host
		if host == "" {
			return nil, fmt.Errorf("meshtastic: radio %q: no host (want tcp://HOST:4403)", target)
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), DefaultTCPPort)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("meshtastic: radio %s: %w", target, err)
		}
		conn = c
	case "serial":
		path := u.Path
		if path == "" {
			return nil, fmt.Errorf("meshtastic: radio %q: no device (want serial:///dev/ttyUSB0)", target)
		}
		p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
		if err != nil {
			return nil, fmt.Errorf("meshtastic: radio %s: %w", target, err)
		}
		conn = p
	default:
		return nil, fmt.Errorf("meshtastic: radio %q: want tcp://HOST:4403 or serial:///dev/DEVICE", target)
	}
	c, err := Open(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Open runs the client API over conn (already connected): it asks for the
// radio's configuration (want_config_id) and waits for the answer's end,
// learning the radio's node number on the way.
func Open(ctx context.Context, conn io.ReadWriteCloser) (*Client, error) {
	c := &Client{conn: conn, packets: make(chan *Packet, 256), done: make(chan struct{})}
	var nonce [4]byte
	rand.Read(nonce[:])
	id := binary.BigEndian.Uint32(nonce[:]) | 1
	if err := c.write(&ToRadio{WantConfigID: id}); err != nil {
		return nil, err
	}
	fr := NewFrameReader(conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	for {
		msg, err := fr.Next()
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("meshtastic: config handshake: %w", ctx.Err())
			}
			return nil, fmt.Errorf("meshtastic: config handshake: %w", err)
		}
		m, err := ParseFromRadio(msg)
		if err != nil {
			continue // a message this client cannot read is not fatal
		}
		if m.HasMyInfo {
			c.nodeNum = m.MyNodeNum
		}
		if m.Packet != nil {
			c.deliver(m.Packet)
		}
		if m.HasConfigDone && m.ConfigCompleteID == id {
			break
		}
	}
	if !stop() {
		return nil, fmt.Errorf("meshtastic: config handshake: %w", ctx.Err())
	}
	if c.nodeNum == 0 {
		return nil, errors.New("meshtastic: the radio did not say its node number (no my_info)")
	}
	go c.readLoop(fr)
	go c.heartbeat()
	return c, nil
}

// NodeNum is the radio's node number (what its packets carry as from).
func (c *Client) NodeNum() uint32 { return c.nodeNum }

// Packets delivers the packets the radio receives. It is closed when the
// connection ends (Err says why).
func (c *Client) Packets() <-chan *Packet { return c.packets }

// Err is why the connection ended, once Packets is closed.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

// Dropped counts received packets dropped because Packets was not read.
func (c *Client) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// Send broadcasts payload on port with the given hop limit (0: the
// default, 3) and returns the packet's ID.
func (c *Client) Send(port uint32, payload []byte, hopLimit uint32) (uint32, error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("meshtastic: payload of %d bytes, the limit is %d", len(payload), MaxPayload)
	}
	if hopLimit == 0 {
		hopLimit = DefaultHopLimit
	}
	if hopLimit > 7 {
		return 0, fmt.Errorf("meshtastic: hop limit %d, the most is 7", hopLimit)
	}
	var b [4]byte
	rand.Read(b[:])
	id := binary.BigEndian.Uint32(b[:]) | 1
	p := &Packet{To: Broadcast, ID: id, Port: port, Payload: payload, HopLimit: hopLimit, HopStart: hopLimit}
	return id, c.write(&ToRadio{Packet: p})
}

// Close says goodbye to the radio and closes the connection.
func (c *Client) Close() error {
	c.write(&ToRadio{Disconnect: true})
	c.closeOnce.Do(func() { c.conn.Close() })
	<-c.done
	return nil
}

func (c *Client) write(m *ToRadio) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := WriteFrame(c.conn, AppendToRadio(nil, m)); err != nil {
		return fmt.Errorf("meshtastic: write: %w", err)
	}
	return nil
}

func (c *Client) deliver(p *Packet) {
	select {
	case c.packets <- p:
	default:
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
	}
}

func (c *Client) readLoop(fr *FrameReader) {
	defer func() {
		close(c.packets)
		close(c.done)
	}()
	for {
		msg, err := fr.Next()
		if err != nil {
			c.err = err
			return
		}
		m, err := ParseFromRadio(msg)
		if err != nil {
			continue
		}
		if m.Rebooted {
			c.err = errors.New("meshtastic: the radio rebooted")
			c.closeOnce.Do(func() { c.conn.Close() })
			return
		}
		if m.Packet != nil && !m.Packet.Encrypted {
			c.deliver(m.Packet)
		}
	}
}

func (c *Client) heartbeat() {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.wmu.Lock()
			var b []byte
			b = protowire.AppendTag(b, toRadioHeartbeat, protowire.BytesType)
			b = protowire.AppendBytes(b, nil)
			WriteFrame(c.conn, b)
			c.wmu.Unlock()
		}
	}
}
