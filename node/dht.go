package node

// This file holds the Kademlia DHT under MESH's own protocol prefix: signed node records, topic providers, peer routing.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/protocol"
)

// DHT defaults. The node record is re-published (the heartbeat) and the
// followed topics re-provided every DefaultDHTHeartbeat, and at once when the
// followed topics, the roles or the addresses change; each followed topic's
// providers are looked up every DefaultDHTDiscovery.
const (
	DefaultDHTHeartbeat = 20 * time.Minute
	DefaultDHTDiscovery = 10 * time.Minute
	DefaultDHTRecordTTL = time.Hour
)

// dhtCheck is how often the node compares what its record says with what is
// true (followed topics, roles, addresses) and how soon it retries while the
// routing table is empty.
const dhtCheck = 2 * time.Second

// DHTConfig configures the Kademlia DHT under MESH's own protocol prefix:
// signed node records, topic providers, peer routing.
type DHTConfig struct {
	// Mode is "auto" (or ""): serve the DHT when publicly reachable, as
	// AutoNAT reports, and be a client otherwise; "server": always serve
	// (bootstrap and relay nodes; LAN, loopback and mocknet networks);
	// "client": never serve; "off": no DHT at all.
	Mode string `json:"mode,omitempty"`
	// Roles are named in the node record and provided in the DHT, on top of
	// "directory", which a directory node names by itself.
	Roles []string `json:"roles,omitempty"`
	// Heartbeat is how often the node record is re-published and topics
	// re-provided ("20m"). 0 means DefaultDHTHeartbeat.
	Heartbeat Duration `json:"heartbeat,omitzero"`
	// Discovery is how often followed topics' providers are looked up and
	// connected to ("10m"). 0 means DefaultDHTDiscovery.
	Discovery Duration `json:"discovery,omitzero"`
	// RecordTTL is how long a published node record is valid ("1h"). 0
	// means DefaultDHTRecordTTL; at most protocol.MaxNodeRecordTTL.
	RecordTTL Duration `json:"recordTTL,omitzero"`
}

// dhtState is the part of Node that this file owns.
type dhtState struct {
	dhtp    atomic.Pointer[dht.DHT]
	dhtMu   sync.Mutex // guards the fields below
	dhtRec  *protocol.NodeRecord
	dhtPub  time.Time // when dhtRec was last put
	dhtErr  string    // last heartbeat error, "" if it worked
	dhtProv map[string]time.Time
	dhtDisc map[string]discoveryState
	// dhtTopicsCapped is set once the record's topics were capped (and
	// that was logged).
	dhtTopicsCapped atomic.Bool
}

// capTopics returns at most protocol.MaxTags topics, the limit of a node
// record and of a policy: topics as they are if there are no more, else
// the first MaxTags in sorted order. The first time it drops any, it logs
// so (flag records that).
func (n *Node) capTopics(topics []string, what string, flag *atomic.Bool) []string {
	if len(topics) <= protocol.MaxTags {
		return topics
	}
	sorted := slices.Clone(topics)
	slices.Sort(sorted)
	if flag.CompareAndSwap(false, true) {
		n.log.Warn("more topics than "+what+" can hold; it lists the first ones in sorted order",
			"topics", len(sorted), "listed", protocol.MaxTags, "first_left_out", sorted[protocol.MaxTags])
	}
	return sorted[:protocol.MaxTags]
}

// discoveryState is when a followed topic's providers are looked up next.
type discoveryState struct {
	next time.Time
	wait time.Duration // the last wait, doubled while nobody is found
}

// NodeInfo describes a node found in the DHT.
type NodeInfo struct {
	NodeID string   `json:"nodeId"`
	Addrs  []string `json:"addrs"`
	Topics []string `json:"topics"`
	Roles  []string `json:"roles"`
	// Record is the node's signed record, verified; nil when the DHT holds
	// none (Addrs then come from the provider record).
	Record *protocol.NodeRecord `json:"record,omitempty"`
}

// DHTStatus reports the node's DHT.
type DHTStatus struct {
	Enabled      bool   `json:"enabled"`
	Protocol     string `json:"protocol"`
	Mode         string `json:"mode"`    // as configured: auto, server, client, off
	Serving      bool   `json:"serving"` // in server mode now
	RoutingTable int    `json:"routingTable"`
	// Record is the node record last published, PublishedAt when (Unix ms).
	Record      *protocol.NodeRecord `json:"record,omitempty"`
	PublishedAt int64                `json:"publishedAt,omitempty"`
	Provided    []string             `json:"provided"` // topics and roles provided
	LastError   string               `json:"lastError,omitempty"`
}

// DHTAPI is what a controller can ask of a node's DHT; *Node implements it
// in-process and *Client over the control API.
type DHTAPI interface {
	DHTStatus(ctx context.Context) (*DHTStatus, error)
	TopicNodes(ctx context.Context, topic string, limit int) ([]NodeInfo, error)
	Directories(ctx context.Context, limit int) ([]NodeInfo, error)
	NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error)
	FindNode(ctx context.Context, nodeID string) (*NodeInfo, error)
}

var (
	_ DHTAPI = (*Node)(nil)
	_ DHTAPI = (*Client)(nil)
)

// ErrNoDHT is returned by DHT operations of a node that runs none.
var ErrNoDHT = errors.New("the DHT is off on this node")

func (n *Node) dhtMode() (dht.Mode, bool, error) {
	if n.cfg.DHT.Mode == "off" {
		return 0, false, nil
	}
	m, err := dht.ParseMode(n.cfg.DHT.Mode)
	if err != nil {
		return 0, false, fmt.Errorf("node: %w (or off)", err)
	}
	return m, true, nil
}

// checkDHTConfig checks the DHT settings and the bootstrap addresses.
func (n *Node) checkDHTConfig() error {
	if _, _, err := n.dhtMode(); err != nil {
		return err
	}
	for _, a := range n.cfg.Bootstrap {
		if _, err := parseAddrInfo(a); err != nil {
			return fmt.Errorf("node: bootstrap %q: %w", a, err)
		}
	}
	for _, r := range n.cfg.DHT.Roles {
		if err := protocol.ValidateID(r); err != nil {
			return fmt.Errorf("node: dht role %q: %w", r, err)
		}
	}
	if ttl := time.Duration(n.cfg.DHT.RecordTTL); ttl < 0 || ttl > protocol.MaxNodeRecordTTL {
		return fmt.Errorf("node: %w: dht record ttl %s: at most %s", protocol.ErrInvalid, ttl, protocol.MaxNodeRecordTTL)
	}
	if n.cfg.DHT.Heartbeat < 0 || n.cfg.DHT.Discovery < 0 {
		return fmt.Errorf("node: %w: dht heartbeat and discovery intervals must not be negative", protocol.ErrInvalid)
	}
	return nil
}

func (n *Node) newDHT(h host.Host) (*dht.DHT, error) {
	mode, on, err := n.dhtMode()
	if err != nil || !on {
		return nil, err
	}
	if err := n.checkDHTConfig(); err != nil {
		return nil, err
	}
	var boot []peer.AddrInfo
	for _, a := range n.cfg.Bootstrap {
		ai, _ := parseAddrInfo(a)
		boot = append(boot, *ai)
	}
	d, err := dht.New(h, dht.Config{Mode: mode, Bootstrap: boot, Now: n.now})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return d, nil
}

// dhtOptions are libp2p options added when the node starts its own host:
// the DHT becomes the host's peer routing, so dialling a bare node ID looks
// its addresses up.
func (n *Node) dhtOptions() []libp2p.Option {
	if _, on, _ := n.dhtMode(); !on {
		return nil
	}
	if err := n.checkDHTConfig(); err != nil {
		// Fail in option processing, before libp2p starts anything.
		return []libp2p.Option{func(*config.Config) error { return err }}
	}
	return []libp2p.Option{libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
		d, err := n.newDHT(h)
		if err != nil {
			return nil, err
		}
		n.dhtp.Store(d)
		return d, nil
	})}
}

// routedHost wraps a host given in Config.Host (mocknet) so that, like a
// host the node starts itself, it resolves bare node IDs through the DHT.
func (n *Node) routedHost(h host.Host) host.Host {
	if _, on, _ := n.dhtMode(); !on {
		return h
	}
	return routedhost.Wrap(h, dhtRouter{n})
}

// dhtRouter is the peer routing of a wrapped Config.Host: the DHT once it
// runs.
type dhtRouter struct{ n *Node }

func (r dhtRouter) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	d := r.n.dhtp.Load()
	if d == nil {
		return peer.AddrInfo{}, ErrNoDHT
	}
	return d.FindPeer(ctx, p)
}

// startDHT runs after the host, federation, trust and peers are up.
func (n *Node) startDHT(ctx context.Context) error {
	if _, on, err := n.dhtMode(); err != nil || !on {
		return err
	}
	if n.dhtp.Load() == nil {
		// Config.Host: the DHT runs on the host given, not on the routed
		// wrapper around it (routedHost), which would route through itself.
		d, err := n.newDHT(n.cfg.Host)
		if err != nil {
			return err
		}
		n.dhtp.Store(d)
	}
	n.dhtMu.Lock()
	n.dhtProv = map[string]time.Time{}
	n.dhtDisc = map[string]discoveryState{}
	n.dhtMu.Unlock()
	n.wg.Add(1)
	go n.dhtLoop()
	return ctx.Err()
}

// stopDHT runs in Close, before the host closes.
func (n *Node) stopDHT() error {
	if d := n.dhtp.Load(); d != nil {
		return d.Close()
	}
	return nil
}

func (n *Node) getDHT() (*dht.DHT, error) {
	if n.host == nil {
		return nil, ErrOffline
	}
	d := n.dhtp.Load()
	if d == nil {
		return nil, ErrNoDHT
	}
	return d, nil
}

// dhtLoop is the heartbeat: it publishes the node record and provides the
// followed topics and roles when they change and every Heartbeat, and looks
// up the followed topics' providers (connecting to them, which syncs) when a
// topic is newly followed and every Discovery. While the routing table is
// empty it waits, checking every dhtCheck.
func (n *Node) dhtLoop() {
	defer n.wg.Done()
	d := n.dhtp.Load()
	tick := time.NewTicker(dhtCheck)
	defer tick.Stop()
	hasPeers := false
	for {
		if d.RoutingTableSize() > 0 {
			if !hasPeers {
				// First peers: fill the routing table before publishing.
				ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
				_ = d.Refresh(ctx)
				cancel()
				hasPeers = true
			}
			n.dhtHeartbeat(d)
			n.dhtDiscover(d)
		} else {
			hasPeers = false
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) heartbeatEvery() time.Duration {
	if n.cfg.DHT.Heartbeat > 0 {
		return time.Duration(n.cfg.DHT.Heartbeat)
	}
	return DefaultDHTHeartbeat
}

func (n *Node) discoveryEvery() time.Duration {
	if n.cfg.DHT.Discovery > 0 {
		return time.Duration(n.cfg.DHT.Discovery)
	}
	return DefaultDHTDiscovery
}

// dhtRoles are the roles this node's record names.
func (n *Node) dhtRoles() []string {
	roles := slices.Clone(n.cfg.DHT.Roles)
	if n.directoryServesAll() && !slices.Contains(roles, protocol.RoleDirectory) {
		roles = append(roles, protocol.RoleDirectory)
	}
	sort.Strings(roles)
	return roles
}

// recordAddrs are the addresses the node record lists (at most 32): see
// publishableAddrs.
func (n *Node) recordAddrs() []string {
	var out []string
	for _, a := range publishableAddrs(n.Addrs()) {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out[:min(len(out), 32)]
}

// publishableAddrs are the addresses worth telling the whole DHT: the
// publicly routable ones (a relay circuit counts by its relay's address)
// if there are any, for a node's LAN and loopback addresses help nobody
// outside and map its home network for everyone; else, as on a LAN or a
// test network where nothing is public, all of them. Neighbours on the
// same LAN still find each other by mDNS.
func publishableAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var public []ma.Multiaddr
	for _, a := range addrs {
		if manet.IsPublicAddr(a) {
			public = append(public, a)
		}
	}
	if len(public) == 0 {
		return addrs
	}
	return public
}

// dhtHeartbeat re-publishes the node record if it changed or is due, and
// provides every followed topic and role not provided within a heartbeat.
func (n *Node) dhtHeartbeat(d *dht.DHT) {
	topics, _, err := n.Following(n.ctx)
	if err != nil {
		return
	}
	recTopics := n.capTopics(topics, "a node record", &n.dhtTopicsCapped)
	roles := n.dhtRoles()
	addrs := n.recordAddrs()
	now := n.now()
	every := n.heartbeatEvery()

	n.dhtMu.Lock()
	cur := n.dhtRec
	due := cur == nil || now.Sub(n.dhtPub) >= every ||
		!slices.Equal(cur.Topics, recTopics) || !slices.Equal(cur.Roles, roles) || !slices.Equal(cur.Addrs, addrs)
	n.dhtMu.Unlock()

	var errs []error
	if due {
		if err := n.publishRecord(d, addrs, recTopics, roles); err != nil {
			errs = append(errs, err)
		}
	}
	keys := make([]string, 0, len(topics)+len(roles))
	for _, t := range topics {
		keys = append(keys, "topic/"+t)
	}
	for _, r := range roles {
		keys = append(keys, "role/"+r)
	}
	for _, k := range keys {
		n.dhtMu.Lock()
		last, ok := n.dhtProv[k]
		n.dhtMu.Unlock()
		if ok && now.Sub(last) < every {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
		var err error
		if t, isTopic := strings.CutPrefix(k, "topic/"); isTopic {
			err = d.ProvideTopic(ctx, t)
		} else {
			r, _ := strings.CutPrefix(k, "role/")
			err = d.ProvideRole(ctx, r)
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.dhtMu.Lock()
		n.dhtProv[k] = now
		n.dhtMu.Unlock()
	}
	// Forget what is no longer followed, so following it again provides it.
	n.dhtMu.Lock()
	for k := range n.dhtProv {
		if !slices.Contains(keys, k) {
			delete(n.dhtProv, k)
		}
	}
	if err := errors.Join(errs...); err != nil {
		n.dhtErr = err.Error()
	} else {
		n.dhtErr = ""
	}
	n.dhtMu.Unlock()
	if len(errs) > 0 && n.ctx.Err() == nil {
		n.log.Debug("dht heartbeat", "err", errors.Join(errs...))
	}
}

func (n *Node) recordTTL() time.Duration {
	if n.cfg.DHT.RecordTTL > 0 {
		return time.Duration(n.cfg.DHT.RecordTTL)
	}
	return DefaultDHTRecordTTL
}

// publishRecord signs a fresh node record and puts it in the DHT.
func (n *Node) publishRecord(d *dht.DHT, addrs, topics, roles []string) error {
	now := n.now()
	n.dhtMu.Lock()
	// issuedAt must grow: a record with the issuedAt of the last one would
	// lose to it on the DHT servers.
	if n.dhtRec != nil && now.UnixMilli() <= n.dhtRec.IssuedAt {
		now = time.UnixMilli(n.dhtRec.IssuedAt + 1)
	}
	n.dhtMu.Unlock()
	rec, err := protocol.SignNodeRecord(n.edKey, addrs, topics, roles, now, n.recordTTL())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	if err := d.PutNodeRecord(ctx, rec); err != nil {
		return err
	}
	n.dhtMu.Lock()
	n.dhtRec, n.dhtPub = rec, n.now()
	n.dhtMu.Unlock()
	return nil
}

// dhtDiscover looks up the providers of each followed topic that is due and
// connects to those it is not connected to; connecting syncs (see
// syncOnConnect). A topic whose lookup found nobody is retried on the next
// check, doubling the wait up to Discovery.
func (n *Node) dhtDiscover(d *dht.DHT) {
	topics, _, err := n.Following(n.ctx)
	if err != nil {
		return
	}
	now := n.now()
	for _, t := range topics {
		n.dhtMu.Lock()
		st, ok := n.dhtDisc[t]
		n.dhtMu.Unlock()
		if ok && now.Before(st.next) {
			continue
		}
		wait := n.discoveryEvery()
		if n.discoverTopic(d, t) == 0 {
			// Nobody yet: look again soon (the publishers may be providing
			// right now), doubling the wait: 2 s, 4 s, 8 s ...
			wait = min(wait, max(dhtCheck, 2*st.wait))
			if !ok {
				wait = min(n.discoveryEvery(), dhtCheck)
			}
		}
		n.dhtMu.Lock()
		n.dhtDisc[t] = discoveryState{next: now.Add(wait), wait: wait}
		n.dhtMu.Unlock()
	}
	n.dhtMu.Lock()
	for t := range n.dhtDisc {
		if !slices.Contains(topics, t) {
			delete(n.dhtDisc, t)
		}
	}
	n.dhtMu.Unlock()
}

// discoverTopic connects to the providers of topic and returns how many
// other nodes provide it.
func (n *Node) discoverTopic(d *dht.DHT, topic string) int {
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	provs, err := d.TopicProviders(ctx, topic, dht.DefaultMaxProviders)
	if err != nil {
		n.log.Debug("dht discover", "topic", topic, "err", err)
		return 0
	}
	found := 0
	var wg sync.WaitGroup
	for _, ai := range provs {
		if ai.ID == n.id {
			continue
		}
		found++
		if n.host.Network().Connectedness(ai.ID) == network.Connected || n.trust.Blocked(ai.ID.String()) {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := n.host.Connect(cctx, ai); err != nil {
				n.log.Debug("dht discover: connect", "peer", ai.ID.String(), "err", err)
			}
		}(ai)
	}
	wg.Wait()
	return found
}

// DHTStatus reports the node's DHT: mode, routing table, the record last
// published and what is provided.
func (n *Node) DHTStatus(ctx context.Context) (*DHTStatus, error) {
	st := &DHTStatus{Protocol: dht.ProtocolID, Mode: n.cfg.DHT.Mode, Provided: []string{}}
	if st.Mode == "" {
		st.Mode = "auto"
	}
	d := n.dhtp.Load()
	if n.host == nil || d == nil {
		if n.host == nil {
			st.Mode = "offline"
		}
		return st, nil
	}
	st.Enabled = true
	st.Serving = d.Serving()
	st.RoutingTable = d.RoutingTableSize()
	n.dhtMu.Lock()
	defer n.dhtMu.Unlock()
	st.Record = n.dhtRec
	if !n.dhtPub.IsZero() {
		st.PublishedAt = n.dhtPub.UnixMilli()
	}
	for k := range n.dhtProv {
		st.Provided = append(st.Provided, k)
	}
	sort.Strings(st.Provided)
	st.LastError = n.dhtErr
	return st, nil
}

// TopicNodes looks up, in the DHT, the nodes that follow topic (its
// providers), up to limit (20 if limit <= 0, at most 200), each with its
// verified node record when the DHT holds one. This node is included if it
// follows the topic.
func (n *Node) TopicNodes(ctx context.Context, topic string, limit int) ([]NodeInfo, error) {
	d, err := n.getDHT()
	if err != nil {
		return nil, err
	}
	provs, err := d.TopicProviders(ctx, topic, limit)
	if err != nil {
		return nil, err
	}
	return n.nodeInfos(ctx, d, provs), nil
}

// Directories looks up, in the DHT, nodes playing the directory role, up to
// limit, each with its verified node record when the DHT holds one.
func (n *Node) Directories(ctx context.Context, limit int) ([]NodeInfo, error) {
	d, err := n.getDHT()
	if err != nil {
		return nil, err
	}
	provs, err := d.RoleProviders(ctx, protocol.RoleDirectory, limit)
	if err != nil {
		return nil, err
	}
	return n.nodeInfos(ctx, d, provs), nil
}

// nodeInfos looks up the node records of providers, a few at a time.
func (n *Node) nodeInfos(ctx context.Context, d *dht.DHT, provs []peer.AddrInfo) []NodeInfo {
	out := make([]NodeInfo, len(provs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, ai := range provs {
		out[i] = NodeInfo{NodeID: ai.ID.String(), Addrs: []string{}, Topics: []string{}, Roles: []string{}}
		for _, a := range ai.Addrs {
			out[i].Addrs = append(out[i].Addrs, a.String())
		}
		wg.Add(1)
		go func(i int, id peer.ID) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			rec, err := n.NodeRecord(rctx, id.String())
			if err != nil {
				return
			}
			out[i].Record = rec
			out[i].Addrs = rec.Addrs
			out[i].Topics = rec.Topics
			out[i].Roles = rec.Roles
		}(i, ai.ID)
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// NodeRecord looks up the newest valid signed record of a node in the DHT
// (this node's own: the one last published). The error wraps
// dht.ErrNotFound when there is none.
func (n *Node) NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error) {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return nil, err
	}
	d, err := n.getDHT()
	if err != nil {
		return nil, err
	}
	if nodeID == n.id.String() {
		// This node's own: the record last published, or, before the
		// first heartbeat, a fresh one saying the same.
		n.dhtMu.Lock()
		rec := n.dhtRec
		n.dhtMu.Unlock()
		if rec != nil && !rec.Expired(n.now()) {
			return rec, nil
		}
		topics, _, err := n.Following(ctx)
		if err != nil {
			return nil, err
		}
		return protocol.SignNodeRecord(n.edKey, n.recordAddrs(), topics, n.dhtRoles(), n.now(), n.recordTTL())
	}
	id, _ := peer.Decode(nodeID)
	return d.NodeRecord(ctx, id)
}

// FindNode resolves a node's addresses through the DHT (a peer lookup, then
// its signed record), with no prior connection needed. It is what dialling
// a bare node ID does.
func (n *Node) FindNode(ctx context.Context, nodeID string) (*NodeInfo, error) {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return nil, err
	}
	d, err := n.getDHT()
	if err != nil {
		return nil, err
	}
	id, _ := peer.Decode(nodeID)
	if id == n.id {
		return &NodeInfo{NodeID: nodeID, Addrs: n.recordAddrs(), Topics: []string{}, Roles: n.dhtRoles()}, nil
	}
	ai, err := d.FindPeer(ctx, id)
	if err != nil {
		return nil, err
	}
	info := &NodeInfo{NodeID: nodeID, Addrs: []string{}, Topics: []string{}, Roles: []string{}}
	for _, a := range ai.Addrs {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info, nil
}

// DHT routes of the control API (bearer token):
//
//	GET /api/v1/dht                          -> DHTStatus
//	GET /api/v1/dht/nodes?topic=T&limit=N    -> [NodeInfo]
//	GET /api/v1/dht/nodes/{nodeId}           -> NodeRecord
//	GET /api/v1/dht/directories?limit=N      -> [NodeInfo]
//	GET /api/v1/dht/find/{nodeId}            -> NodeInfo
func (n *Node) dhtRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/dht", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.DHTStatus(r.Context())
		n.writeDHT(w, st, err)
	})
	mux.HandleFunc("GET /api/v1/dht/nodes", func(w http.ResponseWriter, r *http.Request) {
		limit, err := limitParam(r)
		if err != nil {
			writeError(w, 0, err)
			return
		}
		topic := r.URL.Query().Get("topic")
		if topic == "" {
			writeError(w, 0, fmt.Errorf("%w: the topic parameter is missing", protocol.ErrInvalid))
			return
		}
		nodes, err := n.TopicNodes(r.Context(), topic, limit)
		n.writeDHT(w, nonNilNodes(nodes), err)
	})
	mux.HandleFunc("GET /api/v1/dht/nodes/{nodeId}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := n.NodeRecord(r.Context(), r.PathValue("nodeId"))
		n.writeDHT(w, rec, err)
	})
	mux.HandleFunc("GET /api/v1/dht/directories", func(w http.ResponseWriter, r *http.Request) {
		limit, err := limitParam(r)
		if err != nil {
			writeError(w, 0, err)
			return
		}
		nodes, err := n.Directories(r.Context(), limit)
		n.writeDHT(w, nonNilNodes(nodes), err)
	})
	mux.HandleFunc("GET /api/v1/dht/find/{nodeId}", func(w http.ResponseWriter, r *http.Request) {
		info, err := n.FindNode(r.Context(), r.PathValue("nodeId"))
		n.writeDHT(w, info, err)
	})
}

func nonNilNodes(s []NodeInfo) []NodeInfo {
	if s == nil {
		return []NodeInfo{}
	}
	return s
}

// limitParam reads ?limit=, 0 if absent.
func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > dht.MaxProviders {
		return 0, fmt.Errorf("%w: limit %q: want 0 to %d", protocol.ErrInvalid, s, dht.MaxProviders)
	}
	return v, nil
}

// writeDHT writes a DHT answer; "not found" is 404, "no DHT" and "no DHT
// peers yet" 503.
func (n *Node) writeDHT(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, dht.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrNoDHT), errors.Is(err, dht.ErrNoPeers):
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeError(w, 0, err)
	}
}
