package dht

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
)

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) || i > int(d/(50*time.Millisecond))+1 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testNet is a mocknet of hosts with Ed25519 identities on loopback
// addresses, each running a MESH DHT.
type testNet struct {
	mn    mocknet.Mocknet
	hosts []host.Host
	keys  []ed25519.PrivateKey
	dhts  []*DHT
	ds    []ds.Batching // what each DHT node stores for others
}

func (tn *testNet) addHost(t *testing.T) (host.Host, ed25519.PrivateKey) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := priv.Raw()
	i := len(tn.hosts)
	h, err := tn.mn.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.%d/tcp/4001", i+1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	tn.hosts = append(tn.hosts, h)
	tn.keys = append(tn.keys, ed25519.PrivateKey(raw))
	return h, ed25519.PrivateKey(raw)
}

// newTestNet starts n DHT nodes; node 0 is the bootstrap node every other
// node knows, and all serve (as on loopback they must be told to).
func newTestNet(t *testing.T, n int, mode func(i int) Mode) *testNet {
	t.Helper()
	tn := &testNet{mn: mocknet.New()}
	t.Cleanup(func() {
		for _, d := range tn.dhts {
			d.Close()
		}
		tn.mn.Close()
	})
	for i := 0; i < n; i++ {
		h, _ := tn.addHost(t)
		store := dssync.MutexWrap(ds.NewMapDatastore())
		tn.ds = append(tn.ds, store)
		cfg := Config{Mode: ModeServer, Datastore: store}
		if mode != nil {
			cfg.Mode = mode(i)
		}
		if i > 0 {
			cfg.Bootstrap = []peer.AddrInfo{tn.info(0)}
		}
		d, err := New(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tn.dhts = append(tn.dhts, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i < n; i++ {
		if err := tn.dhts[i].Bootstrap(ctx, []peer.AddrInfo{tn.info(0)}); err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
	}
	eventually(t, 20*time.Second, "every routing table to hold a server", func() bool {
		for _, d := range tn.dhts {
			if d.RoutingTableSize() == 0 {
				return false
			}
		}
		return true
	})
	for _, d := range tn.dhts {
		if err := d.Refresh(ctx); err != nil {
			t.Logf("refresh: %v", err)
		}
	}
	return tn
}

func (tn *testNet) info(i int) peer.AddrInfo {
	return peer.AddrInfo{ID: tn.hosts[i].ID(), Addrs: tn.hosts[i].Addrs()}
}

func record1(t *testing.T, sk ed25519.PrivateKey, topics []string, issued time.Time) *protocol.NodeRecord {
	t.Helper()
	r, err := protocol.SignNodeRecord(sk, []string{"/ip4/127.0.0.1/tcp/4001"}, topics, nil, issued, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSpeaksMESHProtocolOnly(t *testing.T) {
	tn := newTestNet(t, 2, nil)
	protos := tn.hosts[0].Mux().Protocols()
	if !slices.Contains(protos, libp2pproto.ID(ProtocolID)) {
		t.Fatalf("host does not serve %s: %v", ProtocolID, protos)
	}
	for _, p := range protos {
		if p == kaddht.ProtocolDHT || p == "/ipfs/lan/kad/1.0.0" {
			t.Fatalf("host serves the IPFS DHT protocol %s", p)
		}
	}
	// No IPFS namespaces: /pk and /ipns values are refused, even locally.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, key := range []string{"/pk/" + string(tn.hosts[0].ID()), "/ipns/" + string(tn.hosts[0].ID())} {
		if err := tn.dhts[0].Kad().PutValue(ctx, key, []byte("x")); err == nil {
			t.Errorf("PutValue %s accepted", key[:5])
		}
	}
	// An IPFS-prefixed DHT node connected to a MESH node never enters its
	// routing table: the two do not form one network.
	ih, _ := tn.addHost(t)
	ipfs, err := kaddht.New(ih, kaddht.Mode(kaddht.ModeServer))
	if err != nil {
		t.Fatal(err)
	}
	defer ipfs.Close()
	if err := ih.Connect(ctx, tn.info(0)); err != nil {
		t.Fatal(err)
	}
	if err := tn.dhts[0].Refresh(ctx); err != nil {
		t.Logf("refresh: %v", err)
	}
	eventually(t, 5*time.Second, "identify with the IPFS node", func() bool {
		ps, _ := tn.hosts[0].Peerstore().GetProtocols(ih.ID())
		return len(ps) > 0
	})
	if tn.dhts[0].Kad().RoutingTable().Find(ih.ID()) != "" {
		t.Fatal("the IPFS DHT node entered the MESH routing table")
	}
	if ipfs.RoutingTable().Find(tn.hosts[0].ID()) != "" {
		t.Fatal("the MESH node entered the IPFS routing table")
	}
}

func TestNodeRecordRoundTrip(t *testing.T) {
	tn := newTestNet(t, 5, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := record1(t, tn.keys[3], []string{"rust"}, time.Now())
	if err := tn.dhts[3].PutNodeRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for i := range tn.dhts {
		got, err := tn.dhts[i].NodeRecord(ctx, tn.hosts[3].ID())
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if got.Signature != rec.Signature {
			t.Fatalf("node %d got another record", i)
		}
	}
	if _, err := tn.dhts[1].NodeRecord(ctx, tn.hosts[4].ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record of a node that published none: %v, want ErrNotFound", err)
	}
	// A node cannot publish an invalid record, not even its own expired one.
	stale := record1(t, tn.keys[2], nil, time.Now().Add(-2*time.Hour))
	if err := tn.dhts[2].PutNodeRecord(ctx, stale); !errors.Is(err, protocol.ErrTimestamp) {
		t.Fatalf("expired record put: %v", err)
	}
}

// permissive accepts anything: the validator of an attacker who runs
// modified software, so its own node does not stop its forgeries.
type permissive struct{}

func (permissive) Validate(string, []byte) error        { return nil }
func (permissive) Select(string, [][]byte) (int, error) { return 0, nil }

func TestForgedNodeRecordNeverReplacesValid(t *testing.T) {
	tn := newTestNet(t, 8, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	victim, victimKey := tn.hosts[1].ID(), tn.keys[1]
	now := time.Now()
	older := record1(t, victimKey, []string{"old"}, now.Add(-20*time.Minute))
	expired := record1(t, victimKey, []string{"expired"}, now.Add(-90*time.Minute))
	valid := record1(t, victimKey, []string{"rust"}, now.Add(-time.Minute))
	if err := tn.dhts[1].PutNodeRecord(ctx, valid); err != nil {
		t.Fatal(err)
	}

	// The attacker joins the network with a DHT that validates nothing.
	ah, attackerKey := tn.addHost(t)
	attacker, err := kaddht.New(ah, kaddht.ProtocolPrefix(ProtocolPrefix), kaddht.Mode(kaddht.ModeServer),
		kaddht.Validator(record.NamespacedValidator{NodeNamespace: permissive{}}))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	if err := ah.Connect(ctx, tn.info(0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the attacker's routing table", func() bool { return attacker.RoutingTable().Size() > 0 })
	<-attacker.RefreshRoutingTable()

	encode := func(r *protocol.NodeRecord) []byte {
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Newest of all, but signed by the attacker's key.
	forged := record1(t, attackerKey, []string{"evil"}, now)
	forged.NodeID = victim.String()
	// The victim's key and ID, the attacker's signature: a lie about the key.
	lying := *forged
	lying.PublicKey = valid.PublicKey
	// A genuine record tampered with: the issuedAt pushed forward.
	tampered := *valid
	tampered.IssuedAt = now.UnixMilli()
	tampered.Topics = []string{"evil"}

	attacks := []struct {
		name  string
		value []byte
	}{
		{"signed by another key", encode(forged)},
		{"victim's key, another signature", encode(&lying)},
		{"tampered issuedAt", []byte(mustJSON(t, &tampered))},
		{"stale issuedAt (a replayed older record)", encode(older)},
		{"expired", encode(expired)},
		{"garbage", []byte(`{"version":"mesh/1.0"}`)},
	}
	for _, a := range attacks {
		// The attacker stores the value on the servers closest to the key.
		if err := attacker.PutValue(ctx, NodeKey(victim), a.value); err != nil {
			t.Logf("%s: attacker PutValue: %v", a.name, err)
		}
		// No honest server stored it...
		for i, store := range tn.ds {
			if holds(t, store, a.value) {
				t.Fatalf("%s: server %d stored the attacker's value", a.name, i)
			}
		}
		// ... and every honest node that looks it up gets the valid record.
		for i, d := range tn.dhts {
			got, err := d.NodeRecord(ctx, victim)
			if err != nil {
				t.Fatalf("%s: node %d: %v", a.name, i, err)
			}
			if got.Signature != valid.Signature {
				t.Fatalf("%s: node %d got topics %v, not the valid record", a.name, i, got.Topics)
			}
		}
	}

	// A newer genuine record does replace it, even put by the attacker: its
	// puts reach the servers, and the heartbeat works.
	newer := record1(t, victimKey, []string{"rust", "go"}, now.Add(time.Second))
	if err := attacker.PutValue(ctx, NodeKey(victim), encode(newer)); err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, store := range tn.ds {
		if holds(t, store, encode(newer)) {
			stored++
		}
	}
	if stored == 0 {
		t.Fatal("no server stored the attacker's genuine newer record: the attack never reached them")
	}
	for i, d := range tn.dhts {
		got, err := d.NodeRecord(ctx, victim)
		if err != nil || got.Signature != newer.Signature {
			t.Fatalf("node %d after re-publishing: %v, %v", i, got, err)
		}
	}
}

// holds reports whether any entry of store contains value.
func holds(t *testing.T, store ds.Batching, value []byte) bool {
	t.Helper()
	res, err := store.Query(context.Background(), dsq.Query{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			t.Fatal(e.Error)
		}
		if bytes.Contains(e.Value, value) {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, r *protocol.NodeRecord) string {
	t.Helper()
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTopicAndRoleProviders(t *testing.T) {
	tn := newTestNet(t, 8, func(i int) Mode {
		if i == 7 {
			return ModeClient // a client provides and looks up too
		}
		return ModeServer
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, i := range []int{2, 5, 7} {
		if err := tn.dhts[i].ProvideTopic(ctx, "Rust"); err != nil {
			t.Fatalf("provide %d: %v", i, err)
		}
	}
	if err := tn.dhts[4].ProvideRole(ctx, protocol.RoleDirectory); err != nil {
		t.Fatal(err)
	}
	want := []peer.ID{tn.hosts[2].ID(), tn.hosts[5].ID(), tn.hosts[7].ID()}
	for _, from := range []int{0, 3, 6, 7} {
		provs, err := tn.dhts[from].TopicProviders(ctx, "rust", 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []peer.ID
		for _, ai := range provs {
			got = append(got, ai.ID)
			if ai.ID != tn.hosts[from].ID() && len(ai.Addrs) == 0 {
				t.Errorf("provider %s came without addresses", ai.ID)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Fatalf("node %d: providers of rust %v, missing %s", from, got, w)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("node %d: providers of rust %v, want %v", from, got, want)
		}
	}
	if provs, err := tn.dhts[1].TopicProviders(ctx, "go", 10); err != nil || len(provs) != 0 {
		t.Fatalf("providers of an unprovided topic: %v, %v", provs, err)
	}
	dirs, err := tn.dhts[6].RoleProviders(ctx, protocol.RoleDirectory, 0)
	if err != nil || len(dirs) != 1 || dirs[0].ID != tn.hosts[4].ID() {
		t.Fatalf("directories: %v, %v", dirs, err)
	}
	for _, bad := range []string{"", "a/b", string(make([]byte, 200))} {
		if _, err := tn.dhts[1].TopicProviders(ctx, bad, 1); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("TopicProviders(%q) = %v, want ErrInvalid", bad, err)
		}
		if err := tn.dhts[1].ProvideTopic(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("ProvideTopic(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestFindPeer(t *testing.T) {
	tn := newTestNet(t, 6, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A newcomer that knows only the bootstrap node finds node 5.
	h, _ := tn.addHost(t)
	d, err := New(h, Config{Mode: ModeClient})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Bootstrap(ctx, []peer.AddrInfo{tn.info(0)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the newcomer's routing table", func() bool { return d.RoutingTableSize() > 0 })
	// Whatever the bootstrap taught it about node 5 is forgotten.
	target := tn.hosts[5].ID()
	_ = h.Network().ClosePeer(target)
	h.Peerstore().ClearAddrs(target)
	if len(h.Peerstore().Addrs(target)) > 0 || h.Network().Connectedness(target) == network.Connected {
		t.Fatal("the newcomer still knows node 5")
	}
	ai, err := d.FindPeer(ctx, tn.hosts[5].ID())
	if err != nil {
		t.Fatal(err)
	}
	if ai.ID != tn.hosts[5].ID() || len(ai.Addrs) == 0 {
		t.Fatalf("FindPeer = %v", ai)
	}
	if !slices.ContainsFunc(ai.Addrs, func(a ma.Multiaddr) bool { return a.Equal(tn.hosts[5].Addrs()[0]) }) {
		t.Fatalf("FindPeer addrs %v, want %v", ai.Addrs, tn.hosts[5].Addrs())
	}
}

func TestRecordAddrInfo(t *testing.T) {
	sk, id := edKey(t)
	_, other := edKey(t)
	r, err := protocol.SignNodeRecord(sk, []string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + id.String(),
		"/ip4/10.0.0.1/udp/4001/quic-v1",
		"/ip4/1.2.3.4/tcp/1/p2p/" + other.String(),
		"/ip4/1.2.3.4/tcp/1/p2p/" + other.String() + "/p2p-circuit/p2p/" + id.String(),
	}, nil, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ai := RecordAddrInfo(r)
	if ai.ID != id || len(ai.Addrs) != 3 {
		t.Fatalf("RecordAddrInfo = %v", ai)
	}
	if got := ai.Addrs[0].String(); got != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("first addr %s", got)
	}
}

func TestFindPeerFallsBackToNodeRecord(t *testing.T) {
	tn := newTestNet(t, 5, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A client-mode node publishes its record, then leaves every
	// connection; the servers forget its addresses. Only its record knows
	// where it is.
	h, sk := tn.addHost(t)
	d, err := New(h, Config{Mode: ModeClient})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Bootstrap(ctx, []peer.AddrInfo{tn.info(0)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the client's routing table", func() bool { return d.RoutingTableSize() > 0 })
	rec, err := protocol.SignNodeRecord(sk, []string{h.Addrs()[0].String() + "/p2p/" + h.ID().String()}, nil, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutNodeRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range h.Network().Peers() {
		_ = h.Network().ClosePeer(p)
	}
	for _, o := range tn.hosts[:5] {
		eventually(t, 5*time.Second, "disconnection", func() bool { return o.Network().Connectedness(h.ID()) != network.Connected })
		o.Peerstore().ClearAddrs(h.ID())
	}
	ai, err := tn.dhts[3].FindPeer(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(h.Addrs()[0]) {
		t.Fatalf("FindPeer = %v, want the record's address %s", ai, h.Addrs()[0])
	}
	if err := tn.hosts[3].Connect(ctx, ai); err != nil {
		t.Fatalf("connect to the resolved address: %v", err)
	}
}

func TestServingFollowsMode(t *testing.T) {
	tn := newTestNet(t, 2, nil)
	if !tn.dhts[0].Serving() {
		t.Error("a server does not serve")
	}
	// On mocknet no AutoNAT reports public reachability: auto stays a client.
	for _, m := range []Mode{ModeClient, ModeAuto} {
		h, _ := tn.addHost(t)
		d, err := New(h, Config{Mode: m})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.Serving() || d.ConfiguredMode() != m {
			t.Errorf("%s: Serving = %v", m, d.Serving())
		}
	}
}

func TestLookupWithoutPeers(t *testing.T) {
	tn := &testNet{mn: mocknet.New()}
	defer tn.mn.Close()
	h, _ := tn.addHost(t)
	d, err := New(h, Config{Mode: ModeServer})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, other := edKey(t)
	if _, err := d.TopicProviders(ctx, "rust", 5); !errors.Is(err, ErrNoPeers) {
		t.Errorf("TopicProviders with no peers = %v, want ErrNoPeers", err)
	}
	if _, err := d.NodeRecord(ctx, other); !errors.Is(err, ErrNoPeers) {
		t.Errorf("NodeRecord with no peers = %v, want ErrNoPeers", err)
	}
	// What the node provides itself it finds without peers.
	_ = d.ProvideTopic(ctx, "rust")
	if ps, err := d.TopicProviders(ctx, "rust", 5); err != nil || len(ps) != 1 || ps[0].ID != h.ID() {
		t.Errorf("own provider record: %v, %v", ps, err)
	}
}
