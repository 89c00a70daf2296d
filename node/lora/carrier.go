package lora

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
)

// DefaultTopic is the MESH topic carried readings are published on.
const DefaultTopic = "lora"

// Node is what a gateway's carrier needs of the MESH node it carries
// readings into.
type Node interface {
	// Published reports whether the node published a record with id
	// itself.
	Published(ctx context.Context, id string) bool
	// RemoteKeys lists the keys of the remote copies of lesson id the
	// node holds.
	RemoteKeys(id string) []string
	// StoreNew stores rec as the node's own record unless one with its ID
	// exists.
	StoreNew(ctx context.Context, rec *protocol.Lesson) error
	// Publish publishes the node's record id, public, on topics.
	Publish(ctx context.Context, id string, topics []string) error
	// Revoke revokes the node's publication of id; one revoked already
	// is no error.
	Revoke(ctx context.Context, id, reason string) error
}

// Carrier is a gateway's Sink into a MESH node: it stores a verified
// compact record as a reading the node carries and publishes it.
type Carrier struct {
	Node   Node
	Topics []string // default DefaultTopic
	Log    *slog.Logger
}

// Carry stores a verified compact record as a reading this node carries
// and publishes it: a public record of type "reading" whose fields keep the
// sensor's proof (protocol.VerifyCarried), under the ID every gateway
// gives it, so that a holder keeps it once. An announcement travels inside
// the readings it names; a compact revocation revokes the reading this
// node carried. An error keeps the record queued.
func (c Carrier) Carry(ctx context.Context, r *Carried) error {
	d, err := protocol.DecodeCompact(r.Raw)
	if err != nil {
		return nil // cannot happen: the gateway decoded it; never retry
	}
	switch r.Kind {
	case protocol.CompactAnnouncement:
		return nil
	case protocol.CompactRevocation:
		id := protocol.CarriedID(d.Sender, d.Target)
		if !c.Node.Published(ctx, id) {
			return nil // not carried here
		}
		return c.Node.Revoke(ctx, id, "revoked by its sensor over LoRa")
	}
	if r.Announcement == nil {
		if c.Log != nil {
			c.Log.Warn("lora: a reading whose stream no announcement names is not carried: nobody could check it", "sensor", r.Sensor, "seq", r.Seq)
		}
		return nil
	}
	id := protocol.CarriedID(d.Sender, d.Seq)
	if len(c.Node.RemoteKeys(id)) > 0 || c.Node.Published(ctx, id) {
		return nil // carried already, by another gateway or this one
	}
	rec, err := carriedRecord(id, r)
	if err != nil {
		return nil
	}
	if err := c.Node.StoreNew(ctx, rec); err != nil {
		return err
	}
	topics := c.Topics
	if len(topics) == 0 {
		topics = []string{DefaultTopic}
	}
	return c.Node.Publish(ctx, id, topics)
}

// carriedRecord is the AMP record of a carried reading.
func carriedRecord(id string, r *Carried) (*protocol.Lesson, error) {
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
		Content: strings.TrimSpace(content), CreatedAt: r.Time, Tags: []string{DefaultTopic}, Visibility: protocol.VisibilityPublic,
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

// CheckReceived refuses a received reading whose sensor proof does not
// hold, and one another gateway's copy of is held already. ok is false to
// drop it. Anything else passes.
func CheckReceived(ctx context.Context, n Node, sl *protocol.SignedLesson, log *slog.Logger) (ok bool) {
	_, carried, err := protocol.CheckCarried(&sl.Lesson)
	if !carried {
		return true
	}
	if err != nil {
		if log != nil {
			log.Warn("refused a carried reading whose sensor proof fails", "key", sl.Key(), "err", err)
		}
		return false
	}
	for _, k := range n.RemoteKeys(sl.Lesson.ID) {
		if k != sl.Key() {
			return false // carried by another gateway: held once
		}
	}
	return !n.Published(ctx, sl.Lesson.ID) // else this node carried it itself
}

// PeerKeys names sensors by the node IDs a node knows: those it trusts (a
// sensor the owner added with mesh trust add is known to its gateway
// before any announcement), then every peer whose key its peerstore holds
// (nodes met directly or through the DHT: an Ed25519 node ID is its key),
// blocked ones left out. The reading is still carried only once an
// announcement names its stream.
type PeerKeys struct {
	Trusted func() []string   // node IDs trusted at any level above none
	Known   func() []peer.ID  // peers whose keys the node holds; nil for none
	Blocked func(string) bool // a blocked node ID
}

// KeyOf returns the key of the known node whose short ID is s.
func (k PeerKeys) KeyOf(_ context.Context, s protocol.ShortID) (ed25519.PublicKey, bool) {
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
	for _, nodeID := range k.Trusted() {
		if id, err := peer.Decode(nodeID); err == nil {
			if key, ok := match(id); ok {
				return key, true
			}
		}
	}
	if k.Known == nil {
		return nil, false
	}
	for _, id := range k.Known() {
		if k.Blocked(id.String()) {
			continue
		}
		if key, ok := match(id); ok {
			return key, true
		}
	}
	return nil, false
}
