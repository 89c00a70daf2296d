package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/protocol"
)

// bootAddr is a node's first address with /p2p/<id>, as a config lists it.
func bootAddr(n *Node) string { return n.Addrs()[0].String() }

// dhtNode starts a node whose DHT runs in mode and knows only boot.
func dhtNode(t *testing.T, mode string, boot *Node, cfg Config) *Node {
	t.Helper()
	cfg.DHT.Mode = mode
	if boot != nil {
		cfg.Bootstrap = []string{bootAddr(boot)}
	}
	return newTestNode(t, cfg)
}

func TestDHTModeAndConfig(t *testing.T) {
	n := dhtNode(t, "server", nil, Config{})
	st, err := n.DHTStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || !st.Serving || st.Mode != "server" || st.Protocol != "/mesh/kad/1.0.0" {
		t.Fatalf("status %+v", st)
	}
	if !slices.Contains(n.Host().Mux().Protocols(), "/mesh/kad/1.0.0") {
		t.Fatal("a server does not serve /mesh/kad/1.0.0")
	}
	c := dhtNode(t, "client", nil, Config{})
	if st, _ := c.DHTStatus(context.Background()); st.Serving || !st.Enabled {
		t.Fatalf("client status %+v", st)
	}
	off := dhtNode(t, "off", nil, Config{})
	if st, _ := off.DHTStatus(context.Background()); st.Enabled {
		t.Fatalf("off status %+v", st)
	}
	if _, err := off.TopicNodes(context.Background(), "rust", 1); !errors.Is(err, ErrNoDHT) {
		t.Fatalf("TopicNodes with the DHT off = %v", err)
	}
	for _, bad := range []Config{
		{DHT: DHTConfig{Mode: "public"}},
		{DHT: DHTConfig{Roles: []string{"a b"}}},
		{DHT: DHTConfig{RecordTTL: Duration(48 * time.Hour)}},
		{DHT: DHTConfig{Heartbeat: Duration(-time.Second)}},
	} {
		bad.ListenAddrs, bad.DisableMDNS = loopback, true
		if n, err := New(context.Background(), bad); !errors.Is(err, protocol.ErrInvalid) {
			if n != nil {
				n.Close()
			}
			t.Errorf("New(%+v) = %v, want ErrInvalid", bad.DHT, err)
		}
	}
}

// TestDHTModeAutoFollowsReachability: in auto mode the DHT serves when the
// host learns it is publicly reachable, and not otherwise.
func TestDHTModeAutoFollowsReachability(t *testing.T) {
	pub := newTestNode(t, Config{NAT: NATConfig{Reachability: ReachabilityPublic}})
	priv := newTestNode(t, Config{NAT: NATConfig{Reachability: ReachabilityPrivate}})
	eventually(t, "the public node to serve the DHT", func() bool {
		st, _ := pub.DHTStatus(context.Background())
		return st.Mode == "auto" && st.Serving
	})
	if !slices.Contains(pub.Host().Mux().Protocols(), "/mesh/kad/1.0.0") {
		t.Fatal("the public node does not serve /mesh/kad/1.0.0")
	}
	// The private node has heard the same kind of event by now.
	eventually(t, "the private node's reachability", func() bool { return priv.Host() != nil })
	time.Sleep(200 * time.Millisecond)
	if st, _ := priv.DHTStatus(context.Background()); st.Serving {
		t.Fatal("a privately reachable node serves the DHT")
	}
	if slices.Contains(priv.Host().Mux().Protocols(), "/mesh/kad/1.0.0") {
		t.Fatal("a privately reachable node serves /mesh/kad/1.0.0")
	}
}

// TestNewcomerDiscoversTopicPublishers: a new node that knows only one
// bootstrap address finds the publishers of a topic in the DHT, connects to
// them and syncs their lessons.
func TestNewcomerDiscoversTopicPublishers(t *testing.T) {
	ctx := context.Background()
	// The DHT: a bootstrap node and two more servers, none following rust.
	boot := dhtNode(t, "server", nil, Config{})
	servers := []*Node{boot, dhtNode(t, "server", boot, Config{}), dhtNode(t, "server", boot, Config{})}
	// The publishers are clients (home nodes behind NAT, say): no routing
	// table lists them, so only their provider records lead to them.
	var pubs []*Node
	var keys []string
	for i := 0; i < 3; i++ {
		p := dhtNode(t, "client", boot, Config{Topics: []string{"rust"}})
		pubs = append(pubs, p)
		for j := 0; j < 2; j++ {
			sl := publishLesson(t, p, fmt.Sprintf("lesson %d.%d", i, j), "borrow checker notes", "public", "rust")
			keys = append(keys, sl.Key())
		}
	}
	// Every publisher has put its record and provided the topic.
	for _, p := range pubs {
		eventually(t, "publisher provides rust", func() bool {
			st, _ := p.DHTStatus(ctx)
			return st.Record != nil && slices.Contains(st.Provided, "topic/rust")
		})
	}

	// The newcomer: a client that knows only the bootstrap node, follows
	// rust, and accepts lessons of publishers it has no trust path to.
	nc := dhtNode(t, "client", boot, Config{Topics: []string{"rust"}, AcceptUntrusted: true})
	for _, k := range keys {
		eventually(t, "newcomer has "+k, func() bool { return hasRemote(nc, k) })
	}
	for _, p := range pubs {
		if nc.Host().Network().Connectedness(p.ID()) != network.Connected {
			t.Errorf("newcomer not connected to publisher %s", p.ID())
		}
	}
	// Nothing came through the servers: they follow nothing.
	for _, k := range keys {
		for _, s := range servers {
			if hasRemote(s, k) {
				t.Fatalf("server %s holds %s", s.ID(), k)
			}
		}
	}

	// The directory view: who follows rust, with verified records.
	nodes, err := nc.TopicNodes(ctx, "rust", 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ni := range nodes {
		ids = append(ids, ni.NodeID)
		if ni.Record == nil {
			t.Errorf("no record for %s", ni.NodeID)
			continue
		}
		if err := protocol.VerifyNodeRecord(ni.Record, protocol.VerifyOptions{}); err != nil || !slices.Contains(ni.Topics, "rust") || len(ni.Addrs) == 0 {
			t.Errorf("record of %s: %+v, %v", ni.NodeID, ni, err)
		}
	}
	for _, p := range pubs {
		if !slices.Contains(ids, p.ID().String()) {
			t.Errorf("TopicNodes(rust) = %v, missing %s", ids, p.ID())
		}
	}
	// The newcomer follows rust too, so it provides it as well.
	if len(ids) != len(pubs)+1 || !slices.Contains(ids, nc.ID().String()) {
		t.Errorf("TopicNodes(rust) = %v, want the %d publishers and the newcomer", ids, len(pubs))
	}
}

// TestPeerRoutingFetchesFromUnknownNode: a node resolves another node's
// addresses by ID through the DHT and fetches a lesson from it with no
// prior connection.
func TestPeerRoutingFetchesFromUnknownNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	boot := dhtNode(t, "server", nil, Config{})
	pub := dhtNode(t, "server", boot, Config{})
	sl := publishLesson(t, pub, "unlisted lesson", "fetch me by key", "unlisted")
	q := dhtNode(t, "client", boot, Config{})
	eventually(t, "the publisher's record", func() bool {
		st, _ := pub.DHTStatus(ctx)
		return st.Record != nil
	})
	eventually(t, "the client's routing table", func() bool {
		st, _ := q.DHTStatus(ctx)
		return st.RoutingTable > 0
	})
	// Whatever q learned about pub while filling its routing table is
	// forgotten: q knows only pub's ID.
	forget := func() {
		t.Helper()
		_ = q.Host().Network().ClosePeer(pub.ID())
		q.Host().Peerstore().ClearAddrs(pub.ID())
		eventually(t, "disconnection", func() bool {
			return q.Host().Network().Connectedness(pub.ID()) != network.Connected
		})
	}
	forget()
	info, err := q.FindNode(ctx, pub.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Addrs) == 0 {
		t.Fatalf("FindNode = %+v", info)
	}
	forget()
	got, _, err := q.Fetch(ctx, pub.ID(), sl.Key())
	if err != nil {
		t.Fatalf("fetch %s with no prior connection: %v", sl.Key(), err)
	}
	if got.Key() != sl.Key() {
		t.Fatalf("fetched %s", got.Key())
	}
	// The node record, looked up by ID.
	rec, err := q.NodeRecord(ctx, pub.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if rec.NodeID != pub.ID().String() || len(rec.Addrs) == 0 {
		t.Fatalf("record %+v", rec)
	}
	if _, err := q.NodeRecord(ctx, "not-a-node"); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("NodeRecord(not-a-node) = %v", err)
	}
	if _, err := q.NodeRecord(ctx, q.ID().String()); err != nil {
		t.Fatalf("own record: %v", err)
	}
}

// TestDHTControlAPI: the DHT routes of the control API, through Client.
func TestDHTControlAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	boot := dhtNode(t, "server", nil, Config{})
	pub := dhtNode(t, "server", boot, Config{Topics: []string{"go"}, DHT: DHTConfig{Roles: []string{protocol.RoleDirectory}}})
	n := dhtNode(t, "client", boot, Config{RepoDir: t.TempDir(), APIAddr: "127.0.0.1:0"})
	c := NewClient(n.APIURL(), n.Token())
	eventually(t, "the publisher's providers", func() bool {
		st, _ := pub.DHTStatus(ctx)
		return slices.Contains(st.Provided, "topic/go") && slices.Contains(st.Provided, "role/directory")
	})
	var api DHTAPI = c
	st, err := api.DHTStatus(ctx)
	if err != nil || !st.Enabled || st.Mode != "client" {
		t.Fatalf("status %+v, %v", st, err)
	}
	// The client's routing table and the provider records settle in the
	// background: ask until the answer is complete, then check it.
	var nodes []NodeInfo
	eventually(t, "the topic's providers through the control API", func() bool {
		nodes, err = api.TopicNodes(ctx, "go", 5)
		return err == nil && len(nodes) == 1 && nodes[0].Record != nil
	})
	if nodes[0].NodeID != pub.ID().String() {
		t.Fatalf("TopicNodes = %+v", nodes)
	}
	var dirs []NodeInfo
	eventually(t, "the directories through the control API", func() bool {
		dirs, err = api.Directories(ctx, 0)
		return err == nil && len(dirs) == 1
	})
	if dirs[0].NodeID != pub.ID().String() || !slices.Contains(dirs[0].Roles, protocol.RoleDirectory) {
		t.Fatalf("Directories = %+v", dirs)
	}
	rec, err := api.NodeRecord(ctx, pub.ID().String())
	if err != nil || rec.NodeID != pub.ID().String() {
		t.Fatalf("NodeRecord = %+v, %v", rec, err)
	}
	stranger, _, _ := crypto.GenerateEd25519Key(nil)
	strangerID, _ := peer.IDFromPrivateKey(stranger)
	if _, err := api.NodeRecord(ctx, strangerID.String()); !errors.Is(err, dht.ErrNotFound) {
		t.Fatalf("record of a node not in the network: %v, want dht.ErrNotFound", err)
	}
	if _, err := api.FindNode(ctx, pub.ID().String()); err != nil {
		t.Fatal(err)
	}
	if nodes, err := api.TopicNodes(ctx, "nobody-follows-this", 5); err != nil || len(nodes) != 0 {
		t.Fatalf("TopicNodes of an empty topic = %v, %v", nodes, err)
	}
	// Bad input: a clear 400, nothing else.
	for _, path := range []string{"/api/v1/dht/nodes", "/api/v1/dht/nodes?topic=a/b", "/api/v1/dht/nodes?topic=go&limit=-1", "/api/v1/dht/nodes/xyz", "/api/v1/dht/find/xyz"} {
		req, _ := http.NewRequest(http.MethodGet, n.APIURL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+n.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", path, resp.StatusCode)
		}
	}
	// Without the token: refused.
	resp, err := http.Get(n.APIURL() + "/api/v1/dht")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/dht without a token = %d", resp.StatusCode)
	}
}

// TestDHTOnGivenHost: a node given a host (mocknet) runs the DHT on it and
// resolves bare node IDs through it, like a node that starts its own host.
func TestDHTOnGivenHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var nodes []*Node
	for i := 0; i < 3; i++ {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.%d/tcp/4001", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		cfg := Config{PrivateKey: priv, Host: h, DHT: DHTConfig{Mode: "server"}}
		if i > 0 {
			cfg.Bootstrap = []string{bootAddr(nodes[0])}
		}
		nodes = append(nodes, newTestNode(t, cfg))
	}
	pub, q := nodes[1], nodes[2]
	sl := publishLesson(t, pub, "on mocknet", "routed", "unlisted")
	eventually(t, "routing tables", func() bool {
		for _, n := range nodes {
			if st, _ := n.DHTStatus(ctx); st.RoutingTable == 0 || st.Record == nil {
				return false
			}
		}
		return true
	})
	// Drop the connection and every address q has of pub. Either side's
	// DHT may dial the other again at any moment (a refresh, a provide),
	// so close again until a check finds them apart.
	eventually(t, "disconnection", func() bool {
		if q.Host().Network().Connectedness(pub.ID()) != network.Connected {
			return true
		}
		_ = q.Host().Network().ClosePeer(pub.ID())
		q.Host().Peerstore().ClearAddrs(pub.ID())
		return false
	})
	got, _, err := q.Fetch(ctx, pub.ID(), sl.Key())
	if err != nil || got.Key() != sl.Key() {
		t.Fatalf("fetch by bare ID on mocknet: %v", err)
	}
}

// TestRecordFollowsFollow: following a topic re-publishes the node record
// and provides the topic within a heartbeat check, not a heartbeat period;
// unfollowing takes it out of the record.
func TestRecordFollowsFollow(t *testing.T) {
	ctx := context.Background()
	boot := dhtNode(t, "server", nil, Config{})
	a := dhtNode(t, "server", boot, Config{})
	eventually(t, "a's first record", func() bool {
		st, _ := a.DHTStatus(ctx)
		return st.Record != nil
	})
	st, _ := a.DHTStatus(ctx)
	first := st.Record
	if err := a.Follow(ctx, "zig"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's record to name zig", func() bool {
		st, _ := a.DHTStatus(ctx)
		return slices.Contains(st.Record.Topics, "zig") && slices.Contains(st.Provided, "topic/zig")
	})
	var rec *protocol.NodeRecord
	eventually(t, "boot to see the new record", func() bool {
		r, err := boot.NodeRecord(ctx, a.ID().String())
		rec = r
		return err == nil && slices.Contains(r.Topics, "zig")
	})
	if rec.IssuedAt <= first.IssuedAt {
		t.Fatalf("new record issued at %d, not after %d", rec.IssuedAt, first.IssuedAt)
	}
	nodes, err := boot.TopicNodes(ctx, "zig", 5)
	if err != nil || len(nodes) != 1 || nodes[0].NodeID != a.ID().String() {
		t.Fatalf("TopicNodes(zig) = %+v, %v", nodes, err)
	}
	if err := a.Unfollow(ctx, "zig"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's record to drop zig", func() bool {
		r, err := boot.NodeRecord(ctx, a.ID().String())
		return err == nil && !slices.Contains(r.Topics, "zig")
	})
}
