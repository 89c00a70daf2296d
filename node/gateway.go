package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/lora"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// LoraConfig makes a node a gateway for off-grid sensors.
type LoraConfig struct {
	// Radios are Meshtastic radios: tcp://HOST:4403 or
	// serial:///dev/ttyUSB0.
	Radios []string
	// UDP is an address on which compact records are taken from Wi-Fi
	// sensors ("" for none).
	UDP string
	// Port is the Meshtastic port number of MESH payloads (0: PRIVATE_APP).
	Port uint32
	// Topics are the MESH topics carried readings are published on
	// (default "lora").
	Topics []string
}

// DefaultLoraTopic is the topic carried readings are published on.
const DefaultLoraTopic = "lora"

func (c LoraConfig) enabled() bool { return len(c.Radios) > 0 || c.UDP != "" }

func (n *Node) startLora(ctx context.Context) error {
	if !n.cfg.Lora.enabled() {
		return nil
	}
	g, err := lora.New(lora.Config{Radios: n.cfg.Lora.Radios, UDP: n.cfg.Lora.UDP, Port: n.cfg.Lora.Port,
		Meta: n.store, Sink: carrier{n}, Keys: knownSensors{n}, Logger: n.log, Now: n.now})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := g.Start(n.ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.lora = g
	return ctx.Err()
}

// Gateway is the node's LoRa gateway, nil if it is none.
func (n *Node) Gateway() *lora.Gateway { return n.lora }

// carrier is the gateway's way into MESH.
type carrier struct{ n *Node }

// Carry stores a verified compact record as a reading this node carries
// and publishes it: a public record of type "reading" whose fields keep the
// sensor's proof (protocol.VerifyCarried), under the ID every gateway
// gives it, so that a holder keeps it once. An announcement travels inside
// the readings it names; a compact revocation revokes the reading this
// node carried. An error keeps the record queued.
func (c carrier) Carry(ctx context.Context, r *lora.Carried) error {
	n := c.n
	d, err := protocol.DecodeCompact(r.Raw)
	if err != nil {
		return nil // cannot happen: the gateway decoded it; never retry
	}
	switch r.Kind {
	case protocol.CompactAnnouncement:
		return nil
	case protocol.CompactRevocation:
		id := protocol.CarriedID(d.Sender, d.Target)
		if _, err := n.store.Publication(ctx, id); err != nil {
			return nil // not carried here
		}
		if _, err := n.Revoke(ctx, id, "revoked by its sensor over LoRa"); err != nil && !errors.Is(err, protocol.ErrAlreadyRevoked) {
			return err
		}
		return nil
	}
	if r.Announcement == nil {
		n.log.Warn("lora: a reading whose stream no announcement names is not carried: nobody could check it", "sensor", r.Sensor, "seq", r.Seq)
		return nil
	}
	id := protocol.CarriedID(d.Sender, d.Seq)
	if len(n.store.RemoteKeys(id)) > 0 {
		return nil // another gateway carried it first
	}
	if _, err := n.store.Publication(ctx, id); err == nil {
		return nil
	}
	rec, err := carriedRecord(id, r)
	if err != nil {
		return nil
	}
	if _, err := n.store.Get(ctx, id); errors.Is(err, store.ErrNotFound) {
		if _, _, err := n.store.Put(ctx, rec); err != nil {
			return err
		}
	}
	topics := n.cfg.Lora.Topics
	if len(topics) == 0 {
		topics = []string{DefaultLoraTopic}
	}
	_, err = n.Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: topics})
	return err
}

// carriedRecord is the AMP record of a carried reading.
func carriedRecord(id string, r *lora.Carried) (*protocol.Lesson, error) {
	short := r.Sensor
	if len(short) > 12 {
		short = "…" + short[len(short)-6:]
	}
	var content string
	if r.Encrypted {
		content = fmt.Sprintf("encrypted reading of %s (epoch %d)", r.Stream, r.Epoch)
	} else {
		var parts []string
		for k, v := range r.Values {
			parts = append(parts, fmt.Sprintf("%s=%g", k, v))
		}
		content = strings.Join(slices.Sorted(slices.Values(parts)), " ") + " " + r.Unit
	}
	extra := map[string]any{
		protocol.CarriedCompactField:      base64.StdEncoding.EncodeToString(r.Raw),
		protocol.CarriedAnnouncementField: base64.StdEncoding.EncodeToString(r.Announcement),
		protocol.CarriedSensorField:       r.Sensor,
		protocol.CarriedViaField:          r.Via,
		"stream":                          r.Stream,
		"seq":                             r.Seq,
		"heard_at":                        r.Heard,
	}
	if r.Unit != "" {
		extra["unit"] = r.Unit
	}
	if r.Values != nil {
		extra["values"] = r.Values
	}
	if r.Encrypted {
		extra["encrypted"], extra["epoch"] = true, r.Epoch
	}
	rec := &protocol.Lesson{ID: id, Type: "reading", Title: fmt.Sprintf("%s from sensor %s", r.Stream, short),
		Content: strings.TrimSpace(content), CreatedAt: r.Time, Tags: []string{DefaultLoraTopic}, Visibility: protocol.VisibilityPublic,
		Extra: map[string]json.RawMessage{}}
	for k, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		rec.Extra[k] = b
	}
	if rec.CreatedAt == 0 {
		rec.CreatedAt = time.Now().UnixMilli()
	}
	return rec, nil
}

// checkCarried refuses a received reading whose sensor proof does not hold,
// and one another gateway's copy of is held already. ok is false to drop.
func (n *Node) checkCarried(ctx context.Context, sl *protocol.SignedLesson) (ok bool) {
	_, carried, err := protocol.CheckCarried(&sl.Lesson)
	if !carried {
		return true
	}
	if err != nil {
		n.log.Warn("refused a carried reading whose sensor proof fails", "key", sl.Key(), "err", err)
		return false
	}
	for _, k := range n.store.RemoteKeys(sl.Lesson.ID) {
		if k != sl.Key() {
			return false // carried by another gateway: held once
		}
	}
	if _, err := n.store.Publication(ctx, sl.Lesson.ID); err == nil {
		return false // this node carried it itself
	}
	return true
}

// knownSensors names sensors by the node IDs this node knows: those it
// trusts (a sensor the owner added with mesh trust add is known to its
// gateway before any announcement), then every peer whose key its
// peerstore holds (nodes met directly or through the DHT: an Ed25519 node
// ID is its key). The reading is still carried only once an announcement
// names its stream.
type knownSensors struct{ n *Node }

func (k knownSensors) KeyOf(_ context.Context, s protocol.ShortID) (ed25519.PublicKey, bool) {
	match := func(id peer.ID) (ed25519.PublicKey, bool) {
		pk, err := id.ExtractPublicKey()
		if err != nil {
			return nil, false
		}
		raw, err := pk.Raw()
		if err != nil || len(raw) != ed25519.PublicKeySize || protocol.ShortIDOf(raw) != s {
			return nil, false
		}
		return ed25519.PublicKey(raw), true
	}
	for _, e := range k.n.trust.Edges() {
		if e.Level == trust.LevelNone {
			continue
		}
		if id, err := peer.Decode(e.NodeID); err == nil {
			if key, ok := match(id); ok {
				return key, true
			}
		}
	}
	if k.n.host == nil {
		return nil, false
	}
	for _, id := range k.n.host.Peerstore().PeersWithKeys() {
		if k.n.trust.Blocked(id.String()) {
			continue
		}
		if key, ok := match(id); ok {
			return key, true
		}
	}
	return nil, false
}
