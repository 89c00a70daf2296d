package lora

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/lora/meshtastic"
	"github.com/meshprotocol/mesh/protocol"
)

// Defaults.
const (
	// DefaultMaxQueue is Config.MaxQueue's default: records held for MESH
	// while it cannot take them.
	DefaultMaxQueue = 10000
	// DefaultMaxSensors is Config.MaxSensors's default.
	DefaultMaxSensors = 4096
	// maxAside caps records held for a short ID no announcement has named
	// yet, and asideFor how long they are held.
	maxAside = 256
	asideFor = 10 * time.Minute
	// recentSize is how many record hashes are remembered to tell a copy
	// heard again (another hop, another radio) from a replay.
	recentSize = 4096
	// retryEvery is how often a queue MESH refused is offered again.
	retryEvery = 5 * time.Second
)

// Meta keys of the gateway's durable state.
const (
	metaQueue  = "lora/queue/"  // + sender/seq: a record waiting for MESH
	metaSensor = "lora/sensor/" // + short ID: the sensor's last announcement and replay window
)

// Meta is the small durable state the gateway keeps (*store.Store).
type Meta interface {
	GetMeta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
	DeleteMeta(ctx context.Context, key string) error
	ListMeta(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// Keys names sensors the gateway has heard no announcement from: the
// trust graph, DHT node records. It may be nil.
type Keys interface {
	KeyOf(ctx context.Context, s protocol.ShortID) (ed25519.PublicKey, bool)
}

// Sink takes verified records into MESH: stores each as the sensor's and
// publishes it. An error leaves the record queued, to be offered again
// (the gateway may be offline).
type Sink interface {
	Carry(ctx context.Context, r *Carried) error
}

// Carried is a verified compact record on its way into MESH, with the
// original bytes that prove it.
type Carried struct {
	Kind   protocol.CompactKind `json:"kind"`
	Sensor string               `json:"sensor"` // the sensor's node ID, 12D3KooW…
	Seq    uint32               `json:"seq"`
	Time   int64                `json:"time"` // the sensor's, Unix ms
	// Raw is the compact record as the sensor signed it.
	Raw []byte `json:"raw"`
	// Announcement is the sensor's announcement that names the reading's
	// stream and fields (raw, signed by the sensor), if known.
	Announcement []byte `json:"announcement,omitempty"`
	// Stream, Unit and Fields are what the announcement says of a
	// reading's stream; Values its plain fields by name (none when
	// encrypted).
	Stream    string             `json:"stream,omitempty"`
	Unit      string             `json:"unit,omitempty"`
	Encrypted bool               `json:"encrypted,omitempty"`
	Epoch     uint32             `json:"epoch,omitempty"`
	Values    map[string]float64 `json:"values,omitempty"`
	// Heard is when this gateway first heard it (Unix ms), and Via how:
	// "lora:<radio node number>" or "udp:<address>".
	Heard int64  `json:"heard"`
	Via   string `json:"via"`
}

// ID is the record's ID in MESH: the same for every gateway that carries
// it, so it is stored once.
func (c *Carried) ID() string { return fmt.Sprintf("lora-%d", c.Seq) }

// Config configures a gateway.
type Config struct {
	// Radios are the Meshtastic radios to listen on: tcp://HOST:4403 or
	// serial:///dev/ttyUSB0.
	Radios []string
	// UDP, if set, is an address on which the same compact records are
	// taken as UDP datagrams (Wi-Fi microcontrollers on the LAN).
	UDP string
	// Port is the Meshtastic port number of MESH payloads (default
	// PRIVATE_APP, 256).
	Port uint32
	// MaxQueue caps the records held for MESH (default DefaultMaxQueue);
	// beyond it the oldest are dropped and counted.
	MaxQueue int
	// MaxSensors caps the sensors remembered (default DefaultMaxSensors).
	MaxSensors int
	Meta       Meta // required
	Sink       Sink // required
	Keys       Keys
	Logger     *slog.Logger
	Now        func() time.Time
}

// Stats are the gateway's counters.
type Stats struct {
	Heard         uint64 `json:"heard"`          // payloads on the MESH port
	Accepted      uint64 `json:"accepted"`       // verified, new records
	Announcements uint64 `json:"announcements"`  // of them, announcements
	Duplicates    uint64 `json:"duplicates"`     // the same bytes heard again (another hop or radio)
	Replays       uint64 `json:"replays"`        // a (sender, seq) seen before with other bytes, or too old
	Forged        uint64 `json:"forged"`         // bad signatures
	Unknown       uint64 `json:"unknown_sender"` // short IDs no key is known for (held aside a while)
	Collisions    uint64 `json:"collisions"`     // announcements of a key whose short ID another key holds
	Malformed     uint64 `json:"malformed"`      // not a compact record
	Carried       uint64 `json:"carried"`        // taken by MESH
	Queued        int    `json:"queued"`         // waiting for MESH now
	QueueDropped  uint64 `json:"queue_dropped"`  // dropped from a full queue
	Radios        int    `json:"radios"`         // connected now
}

// Gateway hears compact records from radios and UDP, verifies them and
// carries them into MESH.
type Gateway struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	table   *protocol.ShortIDTable
	sensors map[protocol.ShortID]*sensor
	recent  map[[32]byte]struct{}
	order   [][32]byte
	aside   []asideRec
	queue   []*queued
	stats   Stats
	kick    chan struct{}

	udp    net.PacketConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// sensor is what the gateway keeps of one sensor (persisted).
type sensor struct {
	Key          ed25519.PublicKey        `json:"key"`
	Announcement []byte                   `json:"announcement,omitempty"`
	Streams      []protocol.CompactStream `json:"streams,omitempty"`
	AnnSeq       uint32                   `json:"annSeq,omitempty"`
	Window       protocol.ReplayWindow    `json:"window"`
}

type asideRec struct {
	raw   []byte
	via   string
	until time.Time
}

type queued struct {
	key string
	c   *Carried
}

// New returns a gateway; Start runs it.
func New(cfg Config) (*Gateway, error) {
	if cfg.Meta == nil || cfg.Sink == nil {
		return nil, errors.New("lora: a gateway needs Meta and Sink")
	}
	if cfg.Port == 0 {
		cfg.Port = meshtastic.PortPrivateApp
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.MaxSensors <= 0 {
		cfg.MaxSensors = DefaultMaxSensors
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, r := range cfg.Radios {
		if _, err := checkRadio(r); err != nil {
			return nil, err
		}
	}
	return &Gateway{cfg: cfg, log: cfg.Logger, table: protocol.NewShortIDTable(cfg.MaxSensors),
		sensors: map[protocol.ShortID]*sensor{}, recent: map[[32]byte]struct{}{}, kick: make(chan struct{}, 1)}, nil
}

func checkRadio(r string) (string, error) {
	if len(r) > 6 && (r[:6] == "tcp://" || (len(r) > 9 && r[:9] == "serial://")) {
		return r, nil
	}
	return "", fmt.Errorf("lora: radio %q: want tcp://HOST:4403 or serial:///dev/DEVICE", r)
}

// Start loads the persisted state (sensors, replay windows, the queue) and
// starts listening. It returns once the state is loaded and the UDP socket
// bound; radios are (re)connected in the background.
func (g *Gateway) Start(ctx context.Context) error {
	if err := g.load(ctx); err != nil {
		return err
	}
	if g.cfg.UDP != "" {
		pc, err := net.ListenPacket("udp", g.cfg.UDP)
		if err != nil {
			return fmt.Errorf("lora: udp: %w", err)
		}
		g.udp = pc
	}
	ctx, g.cancel = context.WithCancel(ctx)
	for _, r := range g.cfg.Radios {
		g.wg.Add(1)
		go g.radioLoop(ctx, r)
	}
	if g.udp != nil {
		g.wg.Add(1)
		go g.udpLoop(ctx)
	}
	g.wg.Add(1)
	go g.carryLoop(ctx)
	return nil
}

// UDPAddr is the bound UDP address, if any.
func (g *Gateway) UDPAddr() net.Addr {
	if g.udp == nil {
		return nil
	}
	return g.udp.LocalAddr()
}

// Close stops the gateway. The queue stays persisted.
func (g *Gateway) Close() {
	if g.cancel != nil {
		g.cancel()
	}
	if g.udp != nil {
		g.udp.Close()
	}
	g.wg.Wait()
}

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Queued = len(g.queue)
	return s
}

// Flush offers the queue to MESH now (when connectivity returns).
func (g *Gateway) Flush() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *Gateway) load(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.cfg.Meta.ListMeta(ctx, metaSensor, func(key string, v []byte) error {
		var s sensor
		if err := json.Unmarshal(v, &s); err != nil || len(s.Key) != ed25519.PublicKeySize {
			g.log.Warn("lora: a sensor's state does not decode; dropped", "key", key)
			return nil
		}
		if err := g.table.Learn(s.Key); err != nil {
			return nil
		}
		g.sensors[protocol.ShortIDOf(s.Key)] = &s
		return nil
	})
	if err != nil {
		return fmt.Errorf("lora: load sensors: %w", err)
	}
	err = g.cfg.Meta.ListMeta(ctx, metaQueue, func(key string, v []byte) error {
		var c Carried
		if err := json.Unmarshal(v, &c); err != nil {
			g.log.Warn("lora: a queued record does not decode; dropped", "key", key)
			return nil
		}
		g.queue = append(g.queue, &queued{key: key, c: &c})
		return nil
	})
	if err != nil {
		return fmt.Errorf("lora: load queue: %w", err)
	}
	sort.Slice(g.queue, func(i, j int) bool { return g.queue[i].c.Heard < g.queue[j].c.Heard })
	return nil
}

// radioLoop keeps one radio connected and handles what it hears.
func (g *Gateway) radioLoop(ctx context.Context, url string) {
	defer g.wg.Done()
	backoff := time.Second
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := meshtastic.Dial(dctx, url)
		cancel()
		if err != nil {
			g.log.Warn("lora: radio unreachable", "radio", url, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		g.mu.Lock()
		g.stats.Radios++
		g.mu.Unlock()
		via := fmt.Sprintf("lora:%08x", c.NodeNum())
		stop := context.AfterFunc(ctx, func() { c.Close() })
		for p := range c.Packets() {
			if p.Port != g.cfg.Port {
				continue
			}
			g.Handle(ctx, p.Payload, via)
		}
		stop()
		c.Close()
		g.mu.Lock()
		g.stats.Radios--
		g.mu.Unlock()
	}
}

func (g *Gateway) udpLoop(ctx context.Context) {
	defer g.wg.Done()
	buf := make([]byte, protocol.MaxCompactSize+1)
	for {
		n, addr, err := g.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		g.Handle(ctx, append([]byte(nil), buf[:n]...), "udp:"+addr.String())
	}
}

// Handle takes one payload heard on the MESH port: it is decoded,
// verified with the sender's key, checked against replays and copies, and
// queued for MESH. The error says why a payload was refused.
func (g *Gateway) Handle(ctx context.Context, raw []byte, via string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stats.Heard++
	return g.handleLocked(ctx, raw, via, true)
}

func (g *Gateway) handleLocked(ctx context.Context, raw []byte, via string, fresh bool) error {
	h := sha256.Sum256(raw)
	if _, ok := g.recent[h]; ok {
		g.stats.Duplicates++
		return nil
	}
	c, err := protocol.DecodeCompact(raw)
	if err != nil {
		g.stats.Malformed++
		return err
	}
	if c.Kind == protocol.CompactAnnouncement {
		return g.announceLocked(ctx, c, h, via)
	}
	s := g.sensors[c.Sender]
	var key ed25519.PublicKey
	if s != nil {
		key = s.Key
	} else if k, ok := g.keyOf(ctx, c.Sender); ok {
		key = k
		s = g.sensors[c.Sender] // learned while the lock was released
		if s != nil && !s.Key.Equal(k) {
			key = s.Key
		}
	}
	if key == nil {
		if fresh {
			g.stats.Unknown++
			g.setAsideLocked(raw, via)
		}
		return fmt.Errorf("%w: %w: compact %s from %s", protocol.ErrInvalid, protocol.ErrUnknownSender, c.Kind, c.Sender)
	}
	if err := c.Verify(key); err != nil {
		g.stats.Forged++
		return err
	}
	if s == nil {
		if err := g.table.Learn(key); err != nil {
			g.stats.Collisions++
			return err
		}
		s = &sensor{Key: key}
		g.sensors[c.Sender] = s
	}
	if c.Kind == protocol.CompactReading && int(c.Stream) >= len(s.Streams) {
		// Verified, but no announcement names its stream yet: nobody
		// could read or check it in MESH. Held aside like an unknown
		// sender's, until the announcement comes.
		if fresh {
			g.stats.Unknown++
			g.setAsideLocked(raw, via)
		}
		return fmt.Errorf("%w: %w: compact reading from %s names stream %d, which no announcement of it names yet", protocol.ErrInvalid, protocol.ErrUnknownSender, c.Sender, c.Stream)
	}
	if err := s.Window.Accept(c.Seq); err != nil {
		g.stats.Replays++
		return err
	}
	g.rememberLocked(h)
	g.stats.Accepted++
	if err := g.saveSensorLocked(ctx, c.Sender, s); err != nil {
		return err
	}
	return g.enqueueLocked(ctx, g.carried(c, s, via))
}

// keyOf asks Keys without holding the lock for long: Keys may look in the
// DHT.
func (g *Gateway) keyOf(ctx context.Context, s protocol.ShortID) (ed25519.PublicKey, bool) {
	if g.cfg.Keys == nil {
		return nil, false
	}
	g.mu.Unlock()
	defer g.mu.Lock()
	k, ok := g.cfg.Keys.KeyOf(ctx, s)
	if ok && protocol.ShortIDOf(k) != s {
		return nil, false
	}
	return k, ok
}

func (g *Gateway) announceLocked(ctx context.Context, c *protocol.Compact, h [32]byte, via string) error {
	if err := c.VerifyAnnouncement(); err != nil {
		g.stats.Forged++
		return err
	}
	if err := g.table.Learn(c.PublicKey); err != nil {
		g.stats.Collisions++
		return err
	}
	s := g.sensors[c.Sender]
	if s == nil {
		s = &sensor{Key: c.PublicKey}
		g.sensors[c.Sender] = s
	}
	if err := s.Window.Accept(c.Seq); err != nil {
		g.stats.Replays++
		return err
	}
	g.rememberLocked(h)
	g.stats.Accepted++
	g.stats.Announcements++
	if c.Seq > s.AnnSeq {
		s.Announcement, s.Streams, s.AnnSeq = c.Raw, c.Streams, c.Seq
	}
	if err := g.saveSensorLocked(ctx, c.Sender, s); err != nil {
		return err
	}
	if err := g.enqueueLocked(ctx, g.carried(c, s, via)); err != nil {
		return err
	}
	// Records held aside for this sender can be checked now.
	now := g.cfg.Now()
	keep := g.aside[:0]
	var retry []asideRec
	for _, a := range g.aside {
		switch {
		case now.After(a.until):
		case len(a.raw) > 5 && protocol.ShortID(a.raw[1:5]) == c.Sender:
			retry = append(retry, a)
		default:
			keep = append(keep, a)
		}
	}
	g.aside = keep
	for _, a := range retry {
		g.handleLocked(ctx, a.raw, a.via, false)
	}
	return nil
}

func (g *Gateway) setAsideLocked(raw []byte, via string) {
	now := g.cfg.Now()
	keep := g.aside[:0]
	for _, a := range g.aside {
		if now.Before(a.until) {
			keep = append(keep, a)
		}
	}
	g.aside = keep
	if len(g.aside) >= maxAside {
		g.aside = g.aside[1:]
	}
	g.aside = append(g.aside, asideRec{raw: raw, via: via, until: now.Add(asideFor)})
}

func (g *Gateway) rememberLocked(h [32]byte) {
	g.recent[h] = struct{}{}
	g.order = append(g.order, h)
	if len(g.order) > recentSize {
		delete(g.recent, g.order[0])
		g.order = g.order[1:]
	}
}

func (g *Gateway) saveSensorLocked(ctx context.Context, id protocol.ShortID, s *sensor) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := g.cfg.Meta.SetMeta(ctx, metaSensor+id.String(), b); err != nil {
		return fmt.Errorf("lora: save sensor %s: %w", id, err)
	}
	return nil
}

// carried builds what MESH gets of an accepted record.
func (g *Gateway) carried(c *protocol.Compact, s *sensor, via string) *Carried {
	id, _ := protocol.NodeID(s.Key)
	out := &Carried{Kind: c.Kind, Sensor: id, Seq: c.Seq, Time: c.Time.UnixMilli(), Raw: c.Raw,
		Heard: g.cfg.Now().UnixMilli(), Via: via}
	if c.Kind != protocol.CompactReading {
		return out
	}
	out.Encrypted, out.Epoch = c.Encrypted, c.Epoch
	if int(c.Stream) < len(s.Streams) {
		st := s.Streams[c.Stream]
		out.Stream, out.Unit, out.Announcement = st.Name, st.Unit, s.Announcement
		if !c.Encrypted {
			out.Values = map[string]float64{}
			for _, f := range c.Fields {
				if int(f.Index) < len(st.Fields) {
					out.Values[st.Fields[f.Index]] = float64(f.Value)
				}
			}
		}
	}
	return out
}

// enqueueLocked persists c in the queue before it is acknowledged: a
// record the gateway accepted survives a restart until MESH has it.
func (g *Gateway) enqueueLocked(ctx context.Context, c *Carried) error {
	var sk [4]byte
	binary.BigEndian.PutUint32(sk[:], c.Seq)
	key := metaQueue + c.Sensor + "/" + hex.EncodeToString(sk[:])
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := g.cfg.Meta.SetMeta(ctx, key, b); err != nil {
		return fmt.Errorf("lora: queue: %w", err)
	}
	g.queue = append(g.queue, &queued{key: key, c: c})
	for len(g.queue) > g.cfg.MaxQueue {
		g.cfg.Meta.DeleteMeta(ctx, g.queue[0].key)
		g.queue = g.queue[1:]
		g.stats.QueueDropped++
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
	return nil
}

// carryLoop offers the queue to MESH, oldest first, and again every
// retryEvery while MESH refuses.
func (g *Gateway) carryLoop(ctx context.Context) {
	defer g.wg.Done()
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		case <-t.C:
		}
		for ctx.Err() == nil {
			g.mu.Lock()
			if len(g.queue) == 0 {
				g.mu.Unlock()
				break
			}
			q := g.queue[0]
			g.mu.Unlock()
			if err := g.cfg.Sink.Carry(ctx, q.c); err != nil {
				g.log.Debug("lora: MESH did not take a record; kept", "sensor", q.c.Sensor, "seq", q.c.Seq, "err", err)
				break
			}
			g.mu.Lock()
			if len(g.queue) > 0 && g.queue[0] == q {
				g.queue = g.queue[1:]
			}
			g.stats.Carried++
			g.mu.Unlock()
			if err := g.cfg.Meta.DeleteMeta(ctx, q.key); err != nil && ctx.Err() == nil {
				g.log.Warn("lora: unqueue", "err", err)
			}
		}
	}
}
