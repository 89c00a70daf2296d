package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/insecure"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// TestWireWatchSensors records every connection of a sensor, its owner
// (granted) and a follower that keeps the readings' ciphertext (not
// granted), with libp2p's plaintext security so the recording sees what
// the secure channel would hide, while readings are pushed, gossiped on
// the sensor's feed, asked for over /mesh/sensors/1.0.0 by both and
// decrypted by the owner. No reading's value crosses the wire in the
// clear; every reading's ciphertext does.
func TestWireWatchSensors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := &wire{}
	mk := func() *node.Node {
		tp := newTap(t, w)
		n := nodetest.Local(t, node.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Libp2pOptions: []libp2p.Option{
				libp2p.Security(insecure.ID, insecure.NewWithIdentity),
				libp2p.Transport(tcp.NewTCPTransport),
				libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return []ma.Multiaddr{tp.addr()} }),
			},
		})
		for _, a := range n.Host().Network().ListenAddresses() {
			if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				tp.target = "127.0.0.1:" + port
			}
		}
		tp.serve()
		return n
	}
	sensor, owner, follower := mk(), mk(), mk()
	nodetest.TrustAll(t, sensor, owner, follower)
	for _, n := range []*node.Node{owner, follower} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Host().Connect(cctx, peer.AddrInfo{ID: sensor.ID(), Addrs: sensor.Host().Addrs()})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	sid := sensor.ID().String()
	if err := follower.Follow(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := sensor.SensorAdd(ctx, api.StreamOptions{Name: "cellar/humidity", Unit: "%"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sensor.AccessGrant(ctx, api.GrantOptions{Reader: owner.ID().String(), Streams: []string{"cellar/*"}}); err != nil {
		t.Fatal(err)
	}
	// Values whose digits nothing else on the wire is likely to hold.
	var values []string
	for range 3 {
		s := fmt.Sprintf("6%d.%07d1", rand.IntN(10), rand.IntN(1e7)) // 10 digits, the last not 0
		v, _ := strconv.ParseFloat(s, 64)
		values = append(values, s)
		if _, err := sensor.SensorPush(ctx, api.PushRequest{Stream: "cellar/humidity", Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	var held []*protocol.EncryptedLesson
	nodetest.Eventually(t, "the follower holding the readings' ciphertext", func() bool {
		held = held[:0]
		_ = follower.Store().RemoteEncryptedOf(ctx, sid, 100, func(el *protocol.EncryptedLesson) bool {
			held = append(held, el)
			return true
		})
		return len(held) == len(values)
	})
	res, err := owner.SensorSearch(ctx, api.SensorSearchRequest{Query: "humidity > 60%", Sources: sid})
	if err != nil || len(res.Readings) != len(values) {
		t.Fatalf("the owner: %+v %v", res, err)
	}
	res, err = follower.SensorSearch(ctx, api.SensorSearchRequest{Query: "humidity > 60%", Sources: sid})
	if err != nil || len(res.Readings) != 0 || res.Sources[0].Unreadable != len(values) {
		t.Fatalf("the follower: %+v %v", res, err)
	}
	for _, el := range held {
		if !w.contains(el.Ciphertext[:64]) {
			t.Fatal("the recording never saw a reading's ciphertext: the wire watch is blind")
		}
	}
	for _, v := range values {
		if w.contains(v) {
			t.Fatalf("the value %s crossed the wire in the clear", v)
		}
	}
	t.Logf("watched %d bytes", w.size())
}
