package discovery_test

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
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/node/reach"
	"github.com/meshprotocol/mesh/protocol"
)

const kad = libp2pproto.ID(dht.ProtocolID) // "/mesh/kad/1.0.0"

// newNet is an empty mocknet for this test, closed when it ends.
func newNet(t *testing.T) *nodetest.Net {
	t.Helper()
	m, _ := nodetest.Mock(t, 0, 0, node.Config{})
	return m
}

// bootAddr is a node's first address with /p2p/<id>, as a config lists it.
func bootAddr(n *node.Node) string { return n.Addrs()[0].String() }

// dhtNode starts a node on m whose DHT runs in mode and knows only boot.
func dhtNode(t *testing.T, m *nodetest.Net, mode string, boot *node.Node, cfg node.Config) *node.Node {
	t.Helper()
	cfg.DHT.Mode = mode
	if boot != nil {
		cfg.Bootstrap = []string{bootAddr(boot)}
	}
	return nodetest.MockNode(t, m, cfg)
}

func dhtStatus(t *testing.T, n *node.Node) *api.DHTStatus {
	t.Helper()
	st, err := n.DHTStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestDHTModeAndConfig(t *testing.T) {
	t.Parallel()
	m := newNet(t)
	n := dhtNode(t, m, "server", nil, node.Config{})
	st := dhtStatus(t, n)
	if !st.Enabled || !st.Serving || st.Mode != "server" || st.Protocol != "/mesh/kad/1.0.0" {
		t.Fatalf("status %+v", st)
	}
	if !slices.Contains(n.Host().Mux().Protocols(), kad) {
		t.Fatal("a server does not serve /mesh/kad/1.0.0")
	}
	c := dhtNode(t, m, "client", nil, node.Config{})
	if st := dhtStatus(t, c); st.Serving || !st.Enabled {
		t.Fatalf("client status %+v", st)
	}
	off := dhtNode(t, m, "off", nil, node.Config{})
	if st := dhtStatus(t, off); st.Enabled {
		t.Fatalf("off status %+v", st)
	}
	_, err := off.TopicNodes(context.Background(), "rust", 1)
	if !errors.Is(err, api.ErrNoDHT) || !errors.Is(err, protocol.ErrUnavailable) {
		t.Fatalf("TopicNodes with the DHT off = %v, want api.ErrNoDHT (protocol.ErrUnavailable)", err)
	}
	for _, bad := range []discovery.Config{
		{Mode: "public"},
		{Roles: []string{"a b"}},
		{RecordTTL: api.Duration(48 * time.Hour)},
		{Heartbeat: api.Duration(-time.Second)},
	} {
		if _, err := discovery.New(bad, discovery.Deps{}); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("discovery.New(%+v) = %v, want ErrInvalid", bad, err)
		}
		cfg := node.Config{DHT: bad, ListenAddrs: []string{}, DisableMDNS: true}
		if n, err := node.New(context.Background(), cfg); !errors.Is(err, protocol.ErrInvalid) {
			if n != nil {
				n.Close()
			}
			t.Errorf("node.New(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

// TestDHTModeAutoFollowsReachability: in auto mode the DHT serves when the
// host learns it is publicly reachable, and not otherwise. (Loopback: the
// reachability a node is configured with reaches a host it starts itself.)
func TestDHTModeAutoFollowsReachability(t *testing.T) {
	t.Parallel()
	pub := nodetest.Local(t, node.Config{NAT: reach.Config{Reachability: reach.ReachabilityPublic}})
	priv := nodetest.Local(t, node.Config{NAT: reach.Config{Reachability: reach.ReachabilityPrivate}})
	nodetest.Eventually(t, "the public node to serve the DHT", func() bool {
		st := dhtStatus(t, pub)
		return st.Mode == "auto" && st.Serving
	})
	if !slices.Contains(pub.Host().Mux().Protocols(), kad) {
		t.Fatal("the public node does not serve /mesh/kad/1.0.0")
	}
	// The DHT takes the host's events in order, its reachability first:
	// once it has put a peer it identified later into its routing table,
	// it has decided its mode.
	nodetest.Connect(t, priv, pub)
	nodetest.Eventually(t, "the private node's WAN routing table", func() bool {
		st := dhtStatus(t, priv)
		return st.RoutingTable-st.LANRoutingTable > 0
	})
	if st := dhtStatus(t, priv); st.Serving {
		t.Fatal("a privately reachable node serves the DHT")
	}
	if slices.Contains(priv.Host().Mux().Protocols(), kad) {
		t.Fatal("a privately reachable node serves /mesh/kad/1.0.0")
	}
}

// TestNewcomerDiscoversTopicPublishers: a new node that knows only one
// bootstrap address finds the publishers of a topic in the DHT, connects to
// them and syncs their lessons.
func TestNewcomerDiscoversTopicPublishers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	// The DHT: a bootstrap node and two more servers, none following rust.
	boot := dhtNode(t, m, "server", nil, node.Config{})
	servers := []*node.Node{boot, dhtNode(t, m, "server", boot, node.Config{}), dhtNode(t, m, "server", boot, node.Config{})}
	// The publishers are clients (home nodes behind NAT, say): no routing
	// table lists them, so only their provider records lead to them.
	var pubs []*node.Node
	var keys []string
	for i := 0; i < 3; i++ {
		p := dhtNode(t, m, "client", boot, node.Config{Topics: []string{"rust"}})
		pubs = append(pubs, p)
		for j := 0; j < 2; j++ {
			sl := nodetest.Publish(t, p, fmt.Sprintf("lesson %d.%d", i, j), "borrow checker notes", "public", "rust")
			keys = append(keys, sl.Key())
		}
	}
	// Every publisher has put its record and provided the topic.
	for _, p := range pubs {
		nodetest.Eventually(t, "publisher provides rust", func() bool {
			st := dhtStatus(t, p)
			return st.Record != nil && slices.Contains(st.Provided, "topic/rust")
		})
	}

	// The newcomer: a client that knows only the bootstrap node, follows
	// rust, and accepts lessons of publishers it has no trust path to.
	nc := dhtNode(t, m, "client", boot, node.Config{Topics: []string{"rust"}, AcceptUntrusted: true})
	for _, k := range keys {
		nodetest.Eventually(t, "newcomer has "+k, func() bool { return nodetest.HasRemote(nc, k) })
	}
	for _, p := range pubs {
		if nc.Host().Network().Connectedness(p.ID()) != network.Connected {
			t.Errorf("newcomer not connected to publisher %s", p.ID())
		}
	}
	// Nothing came through the servers: they follow nothing.
	for _, k := range keys {
		for _, s := range servers {
			if nodetest.HasRemote(s, k) {
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
// prior connection. (Loopback: this is the peer routing of a host the node
// starts itself; TestDHTOnGivenHost covers a given host.)
func TestPeerRoutingFetchesFromUnknownNode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	local := func(mode string, boot *node.Node) *node.Node {
		cfg := node.Config{DHT: discovery.Config{Mode: mode}}
		if boot != nil {
			cfg.Bootstrap = []string{bootAddr(boot)}
		}
		return nodetest.Local(t, cfg)
	}
	boot := local("server", nil)
	pub := local("server", boot)
	sl := nodetest.Publish(t, pub, "unlisted lesson", "fetch me by key", "unlisted")
	q := local("client", boot)
	nodetest.Eventually(t, "the publisher's record", func() bool { return dhtStatus(t, pub).Record != nil })
	nodetest.Eventually(t, "the client's routing table", func() bool { return dhtStatus(t, q).RoutingTable > 0 })
	// Whatever q learned about pub while filling its routing table is
	// forgotten: q knows only pub's ID.
	forget := func() {
		t.Helper()
		_ = q.Host().Network().ClosePeer(pub.ID())
		q.Host().Peerstore().ClearAddrs(pub.ID())
		nodetest.Eventually(t, "disconnection", func() bool {
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

// TestDHTControlAPI: the DHT routes of the control API, through the
// client the CLI uses.
func TestDHTControlAPI(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	repo := t.TempDir() // before the net: it is removed after the nodes close
	m := newNet(t)
	boot := dhtNode(t, m, "server", nil, node.Config{})
	pub := dhtNode(t, m, "server", boot, node.Config{Topics: []string{"go"}, DHT: discovery.Config{Roles: []string{protocol.RoleDirectory}}})
	n := dhtNode(t, m, "client", boot, node.Config{RepoDir: repo, APIAddr: "127.0.0.1:0"})
	nodetest.Eventually(t, "the publisher's providers", func() bool {
		st := dhtStatus(t, pub)
		return slices.Contains(st.Provided, "topic/go") && slices.Contains(st.Provided, "role/directory")
	})
	var c api.DHT = httpapi.NewClient(n.APIURL(), n.Token())
	st, err := c.DHTStatus(ctx)
	if err != nil || !st.Enabled || st.Mode != "client" {
		t.Fatalf("status %+v, %v", st, err)
	}
	// The client's routing table and the provider records settle in the
	// background: ask until the answer is complete, then check it.
	var nodes []api.NodeInfo
	nodetest.Eventually(t, "the topic's providers through the control API", func() bool {
		nodes, err = c.TopicNodes(ctx, "go", 5)
		return err == nil && len(nodes) == 1 && nodes[0].Record != nil
	})
	if nodes[0].NodeID != pub.ID().String() {
		t.Fatalf("TopicNodes = %+v", nodes)
	}
	var dirs []api.NodeInfo
	nodetest.Eventually(t, "the directories through the control API", func() bool {
		dirs, err = c.Directories(ctx, 0)
		return err == nil && len(dirs) == 1
	})
	if dirs[0].NodeID != pub.ID().String() || !slices.Contains(dirs[0].Roles, protocol.RoleDirectory) {
		t.Fatalf("Directories = %+v", dirs)
	}
	rec, err := c.NodeRecord(ctx, pub.ID().String())
	if err != nil || rec.NodeID != pub.ID().String() {
		t.Fatalf("NodeRecord = %+v, %v", rec, err)
	}
	stranger, _, _ := crypto.GenerateEd25519Key(nil)
	strangerID, _ := peer.IDFromPrivateKey(stranger)
	// In process the error is dht.ErrNotFound; over the control API it
	// travels as NOT_FOUND, which both wrap.
	if _, err := n.NodeRecord(ctx, strangerID.String()); !errors.Is(err, dht.ErrNotFound) || !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("record of a node not in the network: %v, want dht.ErrNotFound (protocol.ErrNotFound)", err)
	}
	if _, err := c.NodeRecord(ctx, strangerID.String()); !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("record of a node not in the network, over the control API: %v, want protocol.ErrNotFound", err)
	}
	if _, err := c.FindNode(ctx, pub.ID().String()); err != nil {
		t.Fatal(err)
	}
	if nodes, err := c.TopicNodes(ctx, "nobody-follows-this", 5); err != nil || len(nodes) != 0 {
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
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := newNet(t)
	boot := dhtNode(t, m, "server", nil, node.Config{})
	nodes := []*node.Node{boot, dhtNode(t, m, "server", boot, node.Config{}), dhtNode(t, m, "server", boot, node.Config{})}
	pub, q := nodes[1], nodes[2]
	sl := nodetest.Publish(t, pub, "on mocknet", "routed", "unlisted")
	nodetest.Eventually(t, "routing tables", func() bool {
		for _, n := range nodes {
			if st := dhtStatus(t, n); st.RoutingTable == 0 || st.Record == nil {
				return false
			}
		}
		return true
	})
	// Drop the connection and every address q has of pub. Either side's
	// DHT may dial the other again at any moment (a refresh, a provide),
	// so close again until a check finds them apart.
	nodetest.Eventually(t, "disconnection", func() bool {
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
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	boot := dhtNode(t, m, "server", nil, node.Config{})
	a := dhtNode(t, m, "server", boot, node.Config{})
	nodetest.Eventually(t, "a's first record", func() bool { return dhtStatus(t, a).Record != nil })
	first := dhtStatus(t, a).Record
	if err := a.Follow(ctx, "zig"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "a's record to name zig", func() bool {
		st := dhtStatus(t, a)
		return slices.Contains(st.Record.Topics, "zig") && slices.Contains(st.Provided, "topic/zig")
	})
	var rec *protocol.NodeRecord
	nodetest.Eventually(t, "boot to see the new record", func() bool {
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
	nodetest.Eventually(t, "a's record to drop zig", func() bool {
		r, err := boot.NodeRecord(ctx, a.ID().String())
		return err == nil && !slices.Contains(r.Topics, "zig")
	})
}

// TestDefaultNodesFormALANDHT: three nodes with the default DHT mode
// (auto: never public on loopback, so the WAN DHT stays a client), two of
// them bootstrapped to the first, find each other's node records and a
// directory's provider record through the LAN DHT. It runs on loopback:
// the LAN DHT takes peers by their connection's address.
func TestDefaultNodesFormALANDHT(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := nodetest.Local(t, node.Config{})
	boot := []string{bootAddr(first)}
	second := nodetest.Local(t, node.Config{Bootstrap: boot})
	third := nodetest.Local(t, node.Config{Bootstrap: boot, Directory: directory.Config{Enabled: true}})
	nodes := []*node.Node{first, second, third}
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			nodetest.Eventually(t, fmt.Sprintf("%s to find %s's node record", a.ID(), b.ID()), func() bool {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				rec, err := a.NodeRecord(rctx, b.ID().String())
				return err == nil && rec.NodeID == b.ID().String()
			})
		}
	}
	nodetest.Eventually(t, "second to find the directory", func() bool {
		infos, err := second.Directories(ctx, 10)
		return err == nil && len(infos) == 1 && infos[0].NodeID == third.ID().String()
	})
	st, err := second.DHTStatus(ctx)
	if err != nil || st.Serving || !st.LAN || st.LANRoutingTable == 0 {
		t.Fatalf("status %+v, %v: want a WAN client with a LAN DHT that has peers", st, err)
	}
}
