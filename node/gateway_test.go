package node_test

import (
	"crypto/ed25519"
	"net"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// TestGatewayKnowsPeersKeys: a gateway node knows the key of a node it has
// met (its peerstore), so a forgery under that node's short ID is refused
// as a forgery, before any announcement, where an unknown short ID is only
// held aside.
func TestGatewayKnowsPeersKeys(t *testing.T) {
	gw := nodetest.Local(t, node.Config{Lora: node.LoraConfig{UDP: "127.0.0.1:0"}})
	sensorNode := nodetest.Local(t, node.Config{})
	nodetest.Connect(t, gw, sensorNode)
	pub, err := sensorNode.Host().Peerstore().PubKey(sensorNode.ID()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	thief := ed25519.NewKeyFromSeed(make([]byte, 32))
	forge := func(victim ed25519.PublicKey, seq uint32) []byte {
		b, err := protocol.EncodeReading(thief, protocol.ReadingParams{Seq: seq, Time: time.Now(), Fields: []protocol.CompactField{{Index: 0, Value: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		s := protocol.ShortIDOf(victim)
		copy(b[1:5], s[:])
		return b
	}
	conn, err := net.Dial("udp", gw.Gateway().UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stranger := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	stranger[0] ^= 1 // a key no node here has
	for _, b := range [][]byte{forge(pub, 1), forge(stranger, 1)} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.Eventually(t, "the gateway to hear both", func() bool { return gw.Gateway().Stats().Heard == 2 })
	if st := gw.Gateway().Stats(); st.Forged != 1 || st.Unknown != 1 {
		t.Fatalf("a forgery under a met node's short ID: %+v, want forged 1, unknown 1", st)
	}
}
