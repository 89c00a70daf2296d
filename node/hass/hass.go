package hass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// Searcher asks sources a question (api.API's SensorSearch: a *node.Node
// or the daemon's control API client). It must be safe for concurrent use.
type Searcher interface {
	SensorSearch(ctx context.Context, req api.SensorSearchRequest) (*api.SensorSearchResult, error)
}

// Config says where to publish what.
type Config struct {
	// Broker is the MQTT broker's URL: tcp://host:1883, ssl://host:8883.
	Broker string
	// ClientID is the MQTT client ID; "" means "mesh-bridge-" and the time.
	ClientID string
	// Username and Password log in to the broker; empty for none.
	Username, Password string
	// DiscoveryPrefix is Home Assistant's discovery prefix; "" means
	// "homeassistant".
	DiscoveryPrefix string
	// StatePrefix is the root of the state topics; "" means "mesh".
	StatePrefix string
	// Sources are the names or node IDs to ask (comma-separated).
	Sources string
	// Streams keep only the streams matching these patterns; none: all.
	Streams []string
	// Timeout bounds one MQTT operation and one question; 0 means 10 s.
	Timeout time.Duration
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
}

// Bridge publishes readings to an MQTT broker. It is safe for concurrent
// use.
type Bridge struct {
	cfg    Config
	search Searcher
	client mqtt.Client
	log    *slog.Logger

	mu         sync.Mutex
	configured map[string]bool  // discovery documents published
	last       map[string]int64 // newest reading published, per state topic
	since      int64            // the newest reading seen, Unix ms
}

// Result says what one Poll published.
type Result struct {
	// Streams are the streams (source/stream) whose state was published.
	Streams []string `json:"streams"`
	// Configs counts the discovery documents published, States the state
	// messages.
	Configs int `json:"configs"`
	States  int `json:"states"`
	// Errors are the sources' errors, if any.
	Errors []string `json:"errors,omitempty"`
}

// New checks cfg and makes a bridge; Connect connects it.
func New(cfg Config, s Searcher) (*Bridge, error) {
	if cfg.Broker == "" || !(strings.HasPrefix(cfg.Broker, "tcp://") || strings.HasPrefix(cfg.Broker, "ssl://") ||
		strings.HasPrefix(cfg.Broker, "ws://") || strings.HasPrefix(cfg.Broker, "wss://") || strings.HasPrefix(cfg.Broker, "mqtt://")) {
		return nil, fmt.Errorf("%w: broker %q: want tcp://HOST:PORT (or ssl://, ws://, wss://)", protocol.ErrInvalid, cfg.Broker)
	}
	if cfg.Sources == "" {
		return nil, fmt.Errorf("%w: name the sources to bridge (--sources NAME[,NAME])", protocol.ErrInvalid)
	}
	for _, p := range cfg.Streams {
		if err := protocol.ValidateStreamPattern(p); err != nil {
			return nil, err
		}
	}
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = "homeassistant"
	}
	if cfg.StatePrefix == "" {
		cfg.StatePrefix = "mesh"
	}
	for _, p := range []string{cfg.DiscoveryPrefix, cfg.StatePrefix} {
		if strings.ContainsAny(p, "#+") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			return nil, fmt.Errorf("%w: topic prefix %q: no wildcards, no leading or trailing '/'", protocol.ErrInvalid, p)
		}
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("mesh-bridge-%d", time.Now().UnixNano())
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	b := &Bridge{cfg: cfg, search: s, log: cfg.Logger, configured: map[string]bool{}, last: map[string]int64{}}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// Connect connects to the broker (and reconnects by itself afterwards).
func (b *Bridge) Connect(ctx context.Context) error {
	opts := mqtt.NewClientOptions().AddBroker(strings.Replace(b.cfg.Broker, "mqtt://", "tcp://", 1)).SetClientID(b.cfg.ClientID).
		SetAutoReconnect(true).SetConnectTimeout(b.cfg.Timeout).SetCleanSession(true)
	if b.cfg.Username != "" {
		opts.SetUsername(b.cfg.Username).SetPassword(b.cfg.Password)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if err := wait(ctx, tok, b.cfg.Timeout); err != nil {
		return fmt.Errorf("%w: mqtt broker %s: %v", protocol.ErrUnreachable, b.cfg.Broker, err)
	}
	b.mu.Lock()
	b.client = c
	b.mu.Unlock()
	return nil
}

// Close disconnects from the broker.
func (b *Bridge) Close() {
	b.mu.Lock()
	c := b.client
	b.client = nil
	b.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
	}
}

func wait(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return errors.New("timed out")
	}
}

// Poll asks the sources for the readings since the last poll and
// publishes the newest of each stream (and, the first time a stream is
// seen, its discovery document).
func (b *Bridge) Poll(ctx context.Context) (*Result, error) {
	b.mu.Lock()
	c, since := b.client, b.since
	b.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: the bridge is not connected", protocol.ErrUnavailable)
	}
	q := ""
	if since > 0 {
		q = "since " + time.UnixMilli(since).UTC().Format(time.RFC3339Nano)
	}
	qctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	res, err := b.search.SensorSearch(qctx, api.SensorSearchRequest{Query: q, Sources: b.cfg.Sources, Streams: b.cfg.Streams, Limit: protocol.MaxSensorReadings})
	if err != nil {
		return nil, err
	}
	out := &Result{Streams: []string{}}
	for _, s := range res.Sources {
		if s.Error != "" {
			out.Errors = append(out.Errors, s.Source+": "+s.Error)
		}
	}
	newest := map[string]api.Reading{}
	var order []string
	for _, r := range res.Readings {
		k := r.Source + "/" + r.Stream
		if cur, ok := newest[k]; !ok || r.At > cur.At {
			if !ok {
				order = append(order, k)
			}
			newest[k] = r
		}
	}
	for _, k := range order {
		r := newest[k]
		state := b.stateTopic(r)
		b.mu.Lock()
		configured, last := b.configured[state], b.last[state]
		b.mu.Unlock()
		if r.At <= last {
			continue
		}
		if !configured {
			doc, err := json.Marshal(b.discovery(r))
			if err != nil {
				return nil, err
			}
			if err := wait(ctx, c.Publish(b.configTopic(r), 1, true, doc), b.cfg.Timeout); err != nil {
				return out, fmt.Errorf("%w: publish to %s: %v", protocol.ErrUnreachable, b.cfg.Broker, err)
			}
			out.Configs++
		}
		payload, _ := json.Marshal(statePayload{Value: r.Value, At: time.UnixMilli(r.At).UTC().Format(time.RFC3339Nano), Anomaly: r.Anomaly, Key: r.Key, Unit: r.Unit})
		if err := wait(ctx, c.Publish(state, 1, true, payload), b.cfg.Timeout); err != nil {
			return out, fmt.Errorf("%w: publish to %s: %v", protocol.ErrUnreachable, b.cfg.Broker, err)
		}
		out.States++
		out.Streams = append(out.Streams, k)
		b.mu.Lock()
		b.configured[state], b.last[state] = true, r.At
		if r.At > b.since {
			b.since = r.At
		}
		b.mu.Unlock()
	}
	return out, nil
}

// Run polls every interval until ctx ends; a failed poll is logged and
// tried again at the next.
func (b *Bridge) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if res, err := b.Poll(ctx); err != nil {
			b.log.Warn("bridge: poll", "err", err)
		} else if res.States > 0 {
			b.log.Info("bridge: published", "states", res.States, "configs", res.Configs)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type statePayload struct {
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	At      string  `json:"at"`
	Anomaly bool    `json:"anomaly"`
	Key     string  `json:"key"`
}

// Discovery is Home Assistant's MQTT discovery document of a sensor.
type Discovery struct {
	Name              string `json:"name"`
	UniqueID          string `json:"unique_id"`
	ObjectID          string `json:"object_id"`
	StateTopic        string `json:"state_topic"`
	ValueTemplate     string `json:"value_template"`
	AttributesTopic   string `json:"json_attributes_topic"`
	UnitOfMeasurement string `json:"unit_of_measurement,omitempty"`
	DeviceClass       string `json:"device_class,omitempty"`
	StateClass        string `json:"state_class"`
	Device            Device `json:"device"`
}

// Device is the device block of a discovery document: one per source.
type Device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
}

func deviceID(source string) string { return "mesh_" + source }

func objectID(stream string) string { return strings.ReplaceAll(stream, "/", "_") }

func (b *Bridge) configTopic(r api.Reading) string {
	return b.cfg.DiscoveryPrefix + "/sensor/" + deviceID(r.Source) + "/" + objectID(r.Stream) + "/config"
}

func (b *Bridge) stateTopic(r api.Reading) string {
	return b.cfg.StatePrefix + "/" + r.Source + "/" + r.Stream + "/state"
}

func (b *Bridge) discovery(r api.Reading) Discovery {
	dev := r.Name
	if dev == "" {
		dev = "MESH " + r.Source[max(0, len(r.Source)-6):]
	}
	state := b.stateTopic(r)
	return Discovery{Name: r.Stream, UniqueID: deviceID(r.Source) + "_" + objectID(r.Stream), ObjectID: "mesh_" + objectID(r.Stream),
		StateTopic: state, ValueTemplate: "{{ value_json.value }}", AttributesTopic: state,
		UnitOfMeasurement: r.Unit, DeviceClass: deviceClass(r.Stream, r.Unit), StateClass: "measurement",
		Device: Device{Identifiers: []string{deviceID(r.Source)}, Name: dev, Manufacturer: "MESH", Model: "mesh sensor node"}}
}

// deviceClass guesses Home Assistant's device class from the unit (and,
// for %, the stream's name); "" when it cannot tell.
func deviceClass(stream, unit string) string {
	switch strings.TrimPrefix(unit, "°") {
	case "C", "F", "K":
		return "temperature"
	case "W", "kW":
		return "power"
	case "Wh", "kWh":
		return "energy"
	case "V":
		return "voltage"
	case "A":
		return "current"
	case "hPa", "Pa", "mbar":
		return "pressure"
	case "%":
		if strings.Contains(stream, "humid") {
			return "humidity"
		}
		if strings.Contains(stream, "batt") {
			return "battery"
		}
	}
	return ""
}
