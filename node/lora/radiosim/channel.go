package radiosim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/lora/meshtastic"
)

// Config configures a channel.
type Config struct {
	Preset Preset
	// Loss is the probability that a reception is lost (0 to 1).
	Loss float64
	// Speed makes simulated time run this many times faster than the wall
	// clock (default 1). Airtimes and delays are simulated time.
	Speed float64
	// Seed seeds the channel's random choices (loss, delays, packet IDs).
	Seed uint64
	// ContentionWindow bounds the random delay before a rebroadcast and
	// the backoff after a busy channel (simulated; default 16 symbols).
	ContentionWindow time.Duration
}

// Stats are a radio's counters.
type Stats struct {
	Sent         int           // packets its clients gave it
	Transmitted  int           // transmissions (own and rebroadcasts)
	Rebroadcasts int           // of others' packets
	Airtime      time.Duration // total, simulated
	Received     int           // first receptions delivered to clients
	Duplicates   int           // receptions of packets seen before
	Collisions   int           // receptions lost to overlapping transmissions
	Lost         int           // receptions lost at random
	Cancelled    int           // rebroadcasts cancelled: another radio's was heard first
}

// Channel is a shared radio channel.
type Channel struct {
	cfg   Config
	start time.Time

	mu     sync.Mutex
	rng    *rand.Rand
	radios []*Radio
	active []*tx
	hears  map[[2]*Radio]bool // nil: every radio hears every other
	closed bool
	wg     sync.WaitGroup
}

// tx is one transmission in the air.
type tx struct {
	from    *Radio
	pkt     meshtastic.Packet
	start   time.Time       // wall
	end     time.Time       // wall
	ok      map[*Radio]bool // receivers: true while nothing spoilt their reception
	relayed bool            // a rebroadcast, not the originator's
}

// New returns a channel.
func New(cfg Config) *Channel {
	if cfg.Speed <= 0 {
		cfg.Speed = 1
	}
	if cfg.Preset.SF == 0 {
		cfg.Preset = LongFast
	}
	if cfg.ContentionWindow <= 0 {
		cfg.ContentionWindow = 8 * 2 * cfg.Preset.Symbol()
	}
	return &Channel{cfg: cfg, start: time.Now(), rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6d657368))}
}

// Preset is the channel's modem preset.
func (ch *Channel) Preset() Preset { return ch.cfg.Preset }

// Speed is how many times faster than the wall clock simulated time runs.
func (ch *Channel) Speed() float64 { return ch.cfg.Speed }

// Now is the simulated time since the channel started.
func (ch *Channel) Now() time.Duration {
	return time.Duration(float64(time.Since(ch.start)) * ch.cfg.Speed)
}

// wall converts a simulated duration to wall-clock time.
func (ch *Channel) wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / ch.cfg.Speed)
}

// Radio is one virtual radio with a node number, serving the client API on
// a loopback TCP port.
type Radio struct {
	ch      *Channel
	nodeNum uint32
	ln      net.Listener

	mu      sync.Mutex
	clients map[*client]bool
	seen    map[[2]uint32]bool // (from, id) heard or sent
	pending map[[2]uint32]*time.Timer
	txUntil time.Time // wall: transmitting until
	queue   chan meshtastic.Packet
	mute    bool // does not rebroadcast (Meshtastic's CLIENT_MUTE role)
	stats   Stats
	airlog  []airUse // for the duty cycle
	done    chan struct{}
}

type airUse struct {
	at time.Duration // simulated
	d  time.Duration
}

type client struct {
	conn   net.Conn
	mu     sync.Mutex
	closed bool // out is closed
	out    chan []byte
}

// AddRadio adds a radio with node number n (non-zero, unique) and starts
// serving its client API on 127.0.0.1.
func (ch *Channel) AddRadio(n uint32) (*Radio, error) {
	if n == 0 || n == meshtastic.Broadcast {
		return nil, fmt.Errorf("radiosim: node number %#x is reserved", n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Radio{ch: ch, nodeNum: n, ln: ln, clients: map[*client]bool{}, seen: map[[2]uint32]bool{},
		pending: map[[2]uint32]*time.Timer{}, queue: make(chan meshtastic.Packet, 64), done: make(chan struct{})}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed {
		ln.Close()
		return nil, errors.New("radiosim: channel closed")
	}
	for _, o := range ch.radios {
		if o.nodeNum == n {
			ln.Close()
			return nil, fmt.Errorf("radiosim: node number %#x taken", n)
		}
	}
	ch.radios = append(ch.radios, r)
	ch.wg.Add(2)
	go r.accept()
	go r.transmitLoop()
	return r, nil
}

// Link makes a and b hear each other. Once any link is set, radios hear
// only the radios they are linked with.
func (ch *Channel) Link(a, b *Radio) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.hears == nil {
		ch.hears = map[[2]*Radio]bool{}
	}
	ch.hears[[2]*Radio{a, b}] = true
	ch.hears[[2]*Radio{b, a}] = true
}

// hearsLocked reports whether x hears y. ch.mu is held.
func (ch *Channel) hearsLocked(x, y *Radio) bool {
	if x == y {
		return false
	}
	return ch.hears == nil || ch.hears[[2]*Radio{x, y}]
}

// Close stops every radio and closes their clients.
func (ch *Channel) Close() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	radios := ch.radios
	ch.mu.Unlock()
	for _, r := range radios {
		r.close()
	}
	ch.wg.Wait()
}

// SetMute makes the radio deliver what it hears to its clients without
// rebroadcasting it, as Meshtastic's CLIENT_MUTE role does (battery
// sensors that should not relay).
func (r *Radio) SetMute(m bool) {
	r.mu.Lock()
	r.mute = m
	r.mu.Unlock()
}

// Addr is the radio's client API address, for meshtastic.Dial.
func (r *Radio) Addr() string { return "tcp://" + r.ln.Addr().String() }

// NodeNum is the radio's node number.
func (r *Radio) NodeNum() uint32 { return r.nodeNum }

// Stats returns the radio's counters.
func (r *Radio) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// DutyCycle is the fraction of the last simulated hour (or of the time
// since the channel started, if shorter) the radio spent transmitting.
func (r *Radio) DutyCycle() float64 {
	now := r.ch.Now()
	window := min(now, time.Hour)
	if window <= 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum time.Duration
	for _, u := range r.airlog {
		if u.at >= now-window {
			sum += u.d
		}
	}
	return float64(sum) / float64(window)
}

func (r *Radio) close() {
	r.ln.Close()
	r.mu.Lock()
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	for c := range r.clients {
		c.conn.Close()
	}
	for _, t := range r.pending {
		t.Stop()
	}
	r.mu.Unlock()
}

func (r *Radio) accept() {
	defer r.ch.wg.Done()
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			return
		}
		c := &client{conn: conn, out: make(chan []byte, 256)}
		r.mu.Lock()
		r.clients[c] = true
		r.mu.Unlock()
		r.ch.wg.Add(2)
		go r.serve(c)
		go r.write(c)
	}
}

// serve reads a client's ToRadio messages.
func (r *Radio) serve(c *client) {
	defer r.ch.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.clients, c)
		r.mu.Unlock()
		c.mu.Lock()
		c.closed = true
		close(c.out)
		c.mu.Unlock()
		c.conn.Close()
	}()
	fr := meshtastic.NewFrameReader(c.conn)
	for {
		msg, err := fr.Next()
		if err != nil {
			return
		}
		m, err := meshtastic.ParseToRadio(msg)
		if err != nil {
			continue // a heartbeat, or something this radio does not serve
		}
		switch {
		case m.Disconnect:
			return
		case m.Packet != nil:
			p := *m.Packet
			p.From = r.nodeNum
			if p.HopLimit > 7 {
				p.HopLimit = 7
			}
			r.mu.Lock()
			r.stats.Sent++
			r.seen[[2]uint32{p.From, p.ID}] = true
			r.mu.Unlock()
			select {
			case r.queue <- p:
			case <-r.done:
				return
			}
		default:
			// want_config_id: my_info, then the end of the config.
			r.push(c, &meshtastic.FromRadio{HasMyInfo: true, MyNodeNum: r.nodeNum})
			r.push(c, &meshtastic.FromRadio{HasConfigDone: true, ConfigCompleteID: m.WantConfigID})
		}
	}
}

func (r *Radio) push(c *client, m *meshtastic.FromRadio) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.out <- meshtastic.AppendFromRadio(nil, m):
	default: // a client that does not read loses packets, as on a radio
	}
}

func (r *Radio) write(c *client) {
	defer r.ch.wg.Done()
	for b := range c.out {
		if err := meshtastic.WriteFrame(c.conn, b); err != nil {
			c.conn.Close()
			for range c.out {
			}
			return
		}
	}
}

// transmitLoop sends the radio's own packets one at a time.
func (r *Radio) transmitLoop() {
	defer r.ch.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case p := <-r.queue:
			r.transmit(p, false)
		}
	}
}

// transmit puts p on the air once the channel is free (listen before
// talk, then a random backoff), and schedules its receptions.
func (r *Radio) transmit(p meshtastic.Packet, relay bool) {
	ch := r.ch
	air := ch.cfg.Preset.PacketAirtime(len(meshtastic.AppendData(nil, p.Port, p.Payload)))
	for {
		ch.mu.Lock()
		if ch.closed {
			ch.mu.Unlock()
			return
		}
		busy := time.Time{}
		for _, t := range ch.active {
			if t.from == r || ch.hearsLocked(r, t.from) {
				if t.end.After(busy) {
					busy = t.end
				}
			}
		}
		if busy.IsZero() {
			now := time.Now()
			t := &tx{from: r, pkt: p, start: now, end: now.Add(ch.wall(air)), ok: map[*Radio]bool{}, relayed: relay}
			for _, x := range ch.radios {
				if !ch.hearsLocked(x, r) {
					continue
				}
				t.ok[x] = true
				for _, u := range ch.active {
					// x hears both, or x is transmitting: nothing decodes.
					if u.from == x || ch.hearsLocked(x, u.from) {
						t.ok[x] = false
						if _, rx := u.ok[x]; rx {
							u.ok[x] = false
						}
					}
				}
			}
			// r stops hearing what it was receiving.
			for _, u := range ch.active {
				if _, rx := u.ok[r]; rx {
					u.ok[r] = false
				}
			}
			ch.active = append(ch.active, t)
			ch.mu.Unlock()
			r.mu.Lock()
			r.stats.Transmitted++
			if relay {
				r.stats.Rebroadcasts++
			}
			r.stats.Airtime += air
			r.airlog = append(r.airlog, airUse{at: ch.Now(), d: air})
			if len(r.airlog) > 4096 {
				r.airlog = r.airlog[len(r.airlog)-2048:]
			}
			r.mu.Unlock()
			select {
			case <-time.After(ch.wall(air)):
			case <-r.done:
				return
			}
			ch.finish(t)
			return
		}
		backoff := time.Duration(ch.rng.Int64N(int64(ch.cfg.ContentionWindow) + 1))
		ch.mu.Unlock()
		select {
		case <-time.After(time.Until(busy) + ch.wall(backoff)):
		case <-r.done:
			return
		}
	}
}

// finish ends t: every radio that decoded it and did not lose it receives.
func (ch *Channel) finish(t *tx) {
	ch.mu.Lock()
	for i, u := range ch.active {
		if u == t {
			ch.active = append(ch.active[:i], ch.active[i+1:]...)
			break
		}
	}
	type rx struct {
		r    *Radio
		ok   bool
		lost bool
	}
	var rxs []rx
	for x, ok := range t.ok {
		rxs = append(rxs, rx{x, ok, ok && ch.cfg.Loss > 0 && ch.rng.Float64() < ch.cfg.Loss})
	}
	ch.mu.Unlock()
	for _, e := range rxs {
		switch {
		case !e.ok:
			e.r.mu.Lock()
			e.r.stats.Collisions++
			e.r.mu.Unlock()
		case e.lost:
			e.r.mu.Lock()
			e.r.stats.Lost++
			e.r.mu.Unlock()
		default:
			e.r.receive(t.pkt)
		}
	}
}

// receive handles a packet decoded off the air: managed flooding.
func (r *Radio) receive(p meshtastic.Packet) {
	key := [2]uint32{p.From, p.ID}
	r.mu.Lock()
	if r.seen[key] {
		r.stats.Duplicates++
		if t, ok := r.pending[key]; ok {
			// Someone else rebroadcast it first: ours is not needed.
			t.Stop()
			delete(r.pending, key)
			r.stats.Cancelled++
		}
		r.mu.Unlock()
		return
	}
	r.seen[key] = true
	r.stats.Received++
	clients := make([]*client, 0, len(r.clients))
	for c := range r.clients {
		clients = append(clients, c)
	}
	if p.HopLimit > 0 && !r.mute {
		fwd := p
		fwd.HopLimit--
		r.ch.mu.Lock()
		delay := time.Duration(r.ch.rng.Int64N(int64(r.ch.cfg.ContentionWindow) + 1))
		r.ch.mu.Unlock()
		r.pending[key] = time.AfterFunc(r.ch.wall(delay), func() {
			r.mu.Lock()
			_, still := r.pending[key]
			delete(r.pending, key)
			r.mu.Unlock()
			if still {
				r.transmit(fwd, true)
			}
		})
	}
	r.mu.Unlock()
	in := p
	in.RxTime = uint32(time.Now().Unix())
	in.RxSNR = 6.5
	in.RxRSSI = -90
	for _, c := range clients {
		r.push(c, &meshtastic.FromRadio{Packet: &in})
	}
}
