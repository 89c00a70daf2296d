package node

import (
	"context"
	"errors"
	"fmt"

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
const DefaultLoraTopic = lora.DefaultTopic

func (c LoraConfig) enabled() bool { return len(c.Radios) > 0 || c.UDP != "" }

func (n *Node) startLora(ctx context.Context) error {
	if !n.cfg.Lora.enabled() {
		return nil
	}
	keys := lora.PeerKeys{Trusted: n.trustedIDs, Blocked: n.trust.Blocked}
	if n.host != nil {
		keys.Known = func() []peer.ID { return n.host.Peerstore().PeersWithKeys() }
	}
	g, err := lora.New(lora.Config{Radios: n.cfg.Lora.Radios, UDP: n.cfg.Lora.UDP, Port: n.cfg.Lora.Port,
		Meta: n.store, Sink: lora.Carrier{Node: carrierNode{n}, Topics: n.cfg.Lora.Topics, Log: n.log},
		Keys: keys, Logger: n.log, Now: n.now})
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

// trustedIDs lists the node IDs trusted at a level above none.
func (n *Node) trustedIDs() []string {
	var out []string
	for _, e := range n.trust.Edges() {
		if e.Level != trust.LevelNone {
			out = append(out, e.NodeID)
		}
	}
	return out
}

// checkCarried is lora.CheckReceived for this node.
func (n *Node) checkCarried(ctx context.Context, sl *protocol.SignedLesson) bool {
	return lora.CheckReceived(ctx, carrierNode{n}, sl, n.log)
}

// carrierNode is the node as a LoRa carrier sees it.
type carrierNode struct{ n *Node }

var _ lora.Node = carrierNode{}

func (c carrierNode) Published(ctx context.Context, id string) bool {
	_, err := c.n.store.Publication(ctx, id)
	return err == nil
}

func (c carrierNode) RemoteKeys(id string) []string { return c.n.store.RemoteKeys(id) }

func (c carrierNode) StoreNew(ctx context.Context, rec *protocol.Lesson) error {
	if _, err := c.n.store.Get(ctx, rec.ID); !errors.Is(err, store.ErrNotFound) {
		return nil
	}
	_, _, err := c.n.store.Put(ctx, rec)
	return err
}

func (c carrierNode) Publish(ctx context.Context, id string, topics []string) error {
	_, err := c.n.Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: topics})
	return err
}

func (c carrierNode) Revoke(ctx context.Context, id, reason string) error {
	if _, err := c.n.Revoke(ctx, id, reason); err != nil && !errors.Is(err, protocol.ErrAlreadyRevoked) {
		return err
	}
	return nil
}
