package node

// This file holds the directory role and the registration of a node with
// the directories it is configured with (/mesh/directory/1.0.0). The
// public, signed, read-only HTTP API is in publicapi.go; searching several
// directories from the client side in directorysearch.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// DirectoryConfig configures the directory role and the public, signed,
// read-only HTTP API. Its JSON form is the "directory" object of the repo's
// config.json.
type DirectoryConfig struct {
	// Enabled makes the node a directory: it follows Topics, accepts and
	// indexes every verified public lesson of any publisher that is not
	// blocked (a directory indexes publishers it does not trust itself;
	// its users verify and apply their own trust), takes registrations
	// over /mesh/directory/1.0.0, and answers /mesh/search/1.0.0 and the
	// public API from every public lesson it holds.
	Enabled bool `json:"enabled,omitempty"`
	// Topics are the MESH topics a directory follows and indexes; its
	// policy states them.
	Topics []string `json:"topics,omitempty"`
	// RetentionDays: lessons published longer ago are not served. 0 means
	// until they are revoked or expire.
	RetentionDays int `json:"retentionDays,omitempty"`
	// Contact is free text in the policy: who runs the directory.
	Contact string `json:"contact,omitempty"`

	// PublicAPI is the listen address of the public, read-only HTTP API
	// ("0.0.0.0:8080", "127.0.0.1:0"). Empty means none. It may bind any
	// interface: it serves public lessons only, and signs every answer.
	PublicAPI string `json:"publicApi,omitempty"`
	// PublicURL is the public API's base URL as others reach it
	// ("https://dir.example.org"), stated in the policy. Empty means the
	// listen address.
	PublicURL string `json:"publicUrl,omitempty"`
	// RateLimit is the public API's requests per second per client
	// address; 0 means DefaultPublicRate.
	RateLimit float64 `json:"rateLimit,omitempty"`
	// RateBurst is how many requests a client may send at once; 0 means
	// twice RateLimit, at least 1.
	RateBurst int `json:"rateBurst,omitempty"`

	// Directories are directories to register with (multiaddrs with
	// /p2p/, node IDs, or public API URLs), on top of those added with
	// DirectoryAdd, which persist in the repo.
	Directories []string `json:"directories,omitempty"`
	// RegisterInterval is how often the node registers again with its
	// directories (registration is a heartbeat). 0 means 30 minutes.
	RegisterInterval time.Duration `json:"-"`
}

// Directory tuning.
const (
	// defaultRegisterInterval is DirectoryConfig.RegisterInterval's default.
	defaultRegisterInterval = 30 * time.Minute
	// registerTimeout bounds one registration.
	registerTimeout = 20 * time.Second
	// maxRegistrants bounds the nodes a directory keeps registered.
	maxRegistrants = 10000
	// maxDirectories bounds the directories a node registers with.
	maxDirectories = 64
	// registerRate and registerBurst are each peer's registrations per
	// second and how many may come at once.
	registerRate  = 0.1
	registerBurst = 3

	// registrantTTL is how long a registration lasts: three times the
	// interval at which nodes register again (defaultRegisterInterval).
	// A node that has not registered again by then is forgotten, so the
	// maxRegistrants slots cannot be filled for good with peer IDs that
	// cost nothing to make.
	registrantTTL = 3 * defaultRegisterInterval
	// pruneRegistrantsEvery is how often a directory forgets the
	// registrations that expired (it also does on every new registration
	// that finds the directory full).
	pruneRegistrantsEvery = 5 * time.Minute
	// maxRegistrantSyncs bounds the syncs from registrants running at
	// once; a registration past it is recorded and its feed followed, but
	// its sync is skipped (its next registration syncs).
	maxRegistrantSyncs = 8

	directoriesMeta = "directory/list"
	// registrantsMeta is the former single blob of every registration,
	// read once and migrated to one key per registrant.
	registrantsMeta = "directory/registrants"
	// registrantPrefix + node ID holds one registrant.
	registrantPrefix = "directory/registrant/"
)

// directoryState is the part of Node that this file (and publicapi.go)
// owns.
type directoryState struct {
	dirMu       sync.Mutex
	registrants map[string]registrant // directory: node ID -> its registration
	regLimit    *clientLimiter        // directory: registrations per peer
	regSyncs    chan struct{}         // directory: registrant syncs running
	// policyTopicsCapped is set once the policy's topics were capped.
	policyTopicsCapped atomic.Bool
	dirKick            chan struct{} // wakes the registration loop

	public    *http.Server
	publicURL string
	publicAPI *publicAPI
}

// DirectoryEntry is a directory this node registers with.
type DirectoryEntry struct {
	// Target is what was added: a multiaddr, a node ID or a URL.
	Target string `json:"target"`
	// NodeID is the directory's node ID.
	NodeID string `json:"nodeId"`
	// Addrs are libp2p multiaddrs of the directory, if known.
	Addrs []string `json:"addrs,omitempty"`
	// URL is the base URL of the directory's public HTTP API, if known
	// (given, or learned from its policy).
	URL string `json:"url,omitempty"`
	// Registered is when the last registration succeeded, Unix ms; 0 for
	// never.
	Registered int64 `json:"registered,omitempty"`
	// Error is why the last registration failed, "" if it did not.
	Error string `json:"error,omitempty"`
	// Policy is the directory's policy, as of the last registration.
	Policy *protocol.DirectoryPolicy `json:"policy,omitempty"`
}

// DirectoryAPI is what the CLI asks of a node about directories. *Node
// implements it in-process and *Client over the control API.
type DirectoryAPI interface {
	DirectoryAdd(ctx context.Context, target string) (*DirectoryEntry, error)
	DirectoryList(ctx context.Context) ([]DirectoryEntry, error)
	DirectoryRemove(ctx context.Context, target string) (bool, error)
	DirectorySearch(ctx context.Context, req DirectorySearchRequest) (*DirectorySearchResult, error)
}

var (
	_ DirectoryAPI = (*Node)(nil)
	_ DirectoryAPI = (*Client)(nil)
)

// directoryOptions are libp2p options added when the node starts its own host.
func (n *Node) directoryOptions() []libp2p.Option { return nil }

// startDirectory runs after the host, federation, trust and peers are up:
// the directory role, the public API, and registration with the
// configured directories.
func (n *Node) startDirectory(ctx context.Context) error {
	n.dirKick = make(chan struct{}, 1)
	dc := n.cfg.Directory
	if dc.Enabled {
		for _, t := range dc.Topics {
			if err := n.Follow(ctx, t); err != nil {
				return fmt.Errorf("node: directory topic %q: %w", t, err)
			}
		}
		if err := n.loadRegistrants(ctx); err != nil {
			return err
		}
		n.regLimit = newClientLimiter(registerRate, registerBurst, maxRegistrants)
		n.regSyncs = make(chan struct{}, maxRegistrantSyncs)
		n.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolDirectory), n.handleRegister)
		n.wg.Add(1)
		go n.pruneRegistrantsLoop()
	}
	if err := n.mergeConfigDirectories(ctx); err != nil {
		return err
	}
	if dc.PublicAPI != "" {
		if err := n.startPublicAPI(dc.PublicAPI); err != nil {
			return err
		}
	}
	n.wg.Add(1)
	go n.registerLoop()
	return nil
}

// stopDirectory runs in Close, before the host closes.
func (n *Node) stopDirectory() error {
	if n.public == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.public.Shutdown(ctx)
}

// directoryServesAll reports whether this node answers /mesh/search/1.0.0
// from every verified public lesson it holds (its own and the remote cache),
// as a directory does, rather than from its own public lessons only.
func (n *Node) directoryServesAll() bool { return n.cfg.Directory.Enabled }

// IsDirectory reports whether the node plays the directory role.
func (n *Node) IsDirectory() bool { return n.cfg.Directory.Enabled }

// Policy is what the node states about itself on the public API and to
// the nodes that register with it.
func (n *Node) Policy() *protocol.DirectoryPolicy {
	p := &protocol.DirectoryPolicy{
		NodeID: n.id.String(), Role: protocol.PolicyNode, Topics: []string{}, Addrs: []string{},
		RetentionDays: max(n.cfg.Directory.RetentionDays, 0), Contact: n.cfg.Directory.Contact,
		PublicURL: n.cfg.Directory.PublicURL,
	}
	if p.PublicURL == "" {
		p.PublicURL = n.publicURL
	}
	if n.cfg.Directory.Enabled {
		p.Role = protocol.PolicyDirectory
		p.Registration = protocol.ProtocolDirectory
		for _, t := range n.cfg.Directory.Topics {
			p.Topics = appendUnique(p.Topics, strings.ToLower(t))
		}
		p.Topics = n.capTopics(p.Topics, "a directory policy", &n.policyTopicsCapped)
	}
	for _, a := range n.Addrs() {
		if len(p.Addrs) < 32 {
			p.Addrs = append(p.Addrs, a.String())
		}
	}
	return p
}

// retentionCutoff is the oldest publishedAt served, Unix ms; 0 for any.
func (n *Node) retentionCutoff() int64 {
	d := n.cfg.Directory.RetentionDays
	if d <= 0 {
		return 0
	}
	return n.now().Add(-time.Duration(d) * 24 * time.Hour).UnixMilli()
}

// ---- the directory side ----------------------------------------------------

// registrant is a node registered with this directory.
type registrant struct {
	At     int64    `json:"at"` // last registration, Unix ms
	Topics []string `json:"topics,omitempty"`
}

// loadRegistrants reads the registrations, one key per registrant,
// migrating the former single blob, and forgets the expired ones.
func (n *Node) loadRegistrants(ctx context.Context) error {
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	n.registrants = map[string]registrant{}
	b, err := n.store.GetMeta(ctx, registrantsMeta)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("node: load registrants: %w", err)
	default:
		var old map[string]registrant
		if err := json.Unmarshal(b, &old); err != nil {
			n.log.Warn("directory: the former registrations do not decode; dropped", "err", err)
		}
		for id, r := range old {
			if _, err := protocol.PublicKeyOf(id); err != nil {
				continue
			}
			if err := n.saveRegistrant(ctx, id, r); err != nil {
				return fmt.Errorf("node: migrate registrants: %w", err)
			}
		}
		if err := n.store.DeleteMeta(ctx, registrantsMeta); err != nil {
			return fmt.Errorf("node: migrate registrants: %w", err)
		}
	}
	var bad []string
	err = n.store.ListMeta(ctx, registrantPrefix, func(key string, v []byte) error {
		id := strings.TrimPrefix(key, registrantPrefix)
		var r registrant
		if _, err := protocol.PublicKeyOf(id); err != nil || json.Unmarshal(v, &r) != nil {
			bad = append(bad, key)
			return nil
		}
		n.registrants[id] = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: load registrants: %w", err)
	}
	for _, k := range bad {
		_ = n.store.DeleteMeta(ctx, k)
	}
	n.pruneRegistrantsLocked(ctx)
	for id := range n.registrants {
		if err := n.ps.FollowFeed(id); err != nil {
			return fmt.Errorf("node: follow registrant %s: %w", id, err)
		}
	}
	return nil
}

func (n *Node) saveRegistrant(ctx context.Context, id string, r registrant) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return n.store.SetMeta(ctx, registrantPrefix+id, b)
}

// pruneRegistrantsLocked forgets the registrations older than
// registrantTTL, and stops following their feeds (an unknown peer's feed
// is followed for no other reason). It returns how many it forgot.
// dirMu is held.
func (n *Node) pruneRegistrantsLocked(ctx context.Context) int {
	cutoff := n.now().Add(-registrantTTL).UnixMilli()
	gone := 0
	var followed []string // feeds the node follows of its own accord
	loaded := false
	for id, r := range n.registrants {
		if r.At >= cutoff {
			continue
		}
		if err := n.store.DeleteMeta(ctx, registrantPrefix+id); err != nil {
			n.log.Warn("directory: forget an expired registration", "node", id, "err", err)
			continue
		}
		delete(n.registrants, id)
		if !loaded {
			_, followed, _ = n.Following(ctx)
			loaded = true
		}
		if n.ps != nil && !slices.Contains(followed, id) {
			_ = n.ps.UnfollowFeed(id)
		}
		gone++
	}
	return gone
}

// pruneRegistrantsLoop forgets expired registrations every
// pruneRegistrantsEvery.
func (n *Node) pruneRegistrantsLoop() {
	defer n.wg.Done()
	t := time.NewTicker(pruneRegistrantsEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.dirMu.Lock()
		if gone := n.pruneRegistrantsLocked(n.ctx); gone > 0 {
			n.log.Info("directory: expired registrations forgotten", "count", gone)
		}
		n.dirMu.Unlock()
	}
}

// Registrants lists the nodes registered with this directory.
func (n *Node) Registrants() []string { return n.registrantsOn("") }

// registrantsOn lists the registered nodes that publish on topic, or all
// of them for "".
func (n *Node) registrantsOn(topic string) []string {
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	out := make([]string, 0, len(n.registrants))
	for id, r := range n.registrants {
		if topic == "" || slices.Contains(r.Topics, topic) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// handleRegister answers /mesh/directory/1.0.0: the sender asks to be
// indexed. The directory records it, follows its feed, answers with its
// policy, and syncs the sender's public lessons and revocations.
func (n *Node) handleRegister(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(streamTimeout))
	from := s.Conn().RemotePeer()
	resp := &protocol.DirectoryRegistered{Type: protocol.MsgRegistered}
	data, err := frame.Read(bufio.NewReader(s), protocol.MaxDirectoryRequestSize)
	if err != nil && !errors.Is(err, protocol.ErrTooLarge) {
		s.Reset()
		return
	}
	var reg *protocol.DirectoryRegister
	if err == nil {
		reg, err = protocol.DecodeDirectoryRegister(data)
	}
	if err == nil {
		err = n.register(from, reg.Topics)
	}
	if err != nil {
		e := protocol.NewError(err)
		resp.Error = &e
	} else {
		resp.Policy = n.Policy()
	}
	b, err := resp.Encode()
	if err != nil {
		s.Reset()
		return
	}
	_ = frame.Write(s, b)
	if resp.Error == nil {
		n.startRegistrantSync(from)
	}
}

// startRegistrantSync syncs from registrant p in the background, unless
// maxRegistrantSyncs are running already: then it skips this one (the
// registrant's feed is followed, and its next registration syncs) and
// reports false.
func (n *Node) startRegistrantSync(p peer.ID) bool {
	select {
	case n.regSyncs <- struct{}{}:
	default:
		n.log.Info("directory: too many registrant syncs at once; this one is skipped until the node registers again",
			"peer", p.String(), "running", cap(n.regSyncs))
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.regSyncs }()
		if _, err := n.syncRegistrant(n.ctx, p); err != nil && n.ctx.Err() == nil {
			n.log.Debug("sync registrant", "peer", p.String(), "err", err)
		}
	}()
	return true
}

// register records a registration from p.
func (n *Node) register(p peer.ID, topics []string) error {
	id := p.String()
	if n.trust.Blocked(id) {
		return fmt.Errorf("register: %w", protocol.ErrUntrusted)
	}
	if !n.regLimit.allow(id, n.now()) {
		return fmt.Errorf("register: %w: at most one registration every %s", protocol.ErrRateLimited, time.Duration(float64(time.Second)/registerRate))
	}
	if _, err := protocol.PublicKeyOf(id); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	_, known := n.registrants[id]
	if !known && len(n.registrants) >= maxRegistrants {
		n.pruneRegistrantsLocked(n.ctx)
	}
	if !known && len(n.registrants) >= maxRegistrants {
		return fmt.Errorf("register: %w: this directory holds %d registrations, its limit", protocol.ErrRateLimited, maxRegistrants)
	}
	r := registrant{At: n.now().UnixMilli()}
	for _, t := range topics {
		r.Topics = appendUnique(r.Topics, strings.ToLower(t))
	}
	if err := n.saveRegistrant(n.ctx, id, r); err != nil {
		return err
	}
	n.registrants[id] = r
	if !known {
		if err := n.ps.FollowFeed(id); err != nil {
			return err
		}
	}
	return nil
}

// syncRegistrant pulls every public lesson and revocation of registrant p
// from p, with the sync protocol.
func (n *Node) syncRegistrant(ctx context.Context, p peer.ID) (SyncProgress, error) {
	prog := SyncProgress{Peer: p.String()}
	err := n.syncPass(ctx, p, protocol.SyncRequest{Publishers: []string{p.String()}}, &prog, nil)
	prog.Done = err == nil
	return prog, err
}

// ---- the registering side --------------------------------------------------

// parseDirectoryTarget reads what DirectoryAdd takes: a multiaddr ending in
// /p2p/<node ID>, a node ID, or an http(s) URL of a public API.
func parseDirectoryTarget(target string) (DirectoryEntry, error) {
	e := DirectoryEntry{Target: strings.TrimSpace(target)}
	t := e.Target
	switch {
	case t == "" || len(t) > 1024:
		return e, fmt.Errorf("%w: directory %q: want a multiaddr ending in /p2p/<node ID>, a node ID or an http(s) URL", protocol.ErrInvalid, truncateStr(t))
	case strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://"):
		u, err := checkBaseURL(t)
		if err != nil {
			return e, err
		}
		e.URL = u
	case strings.HasPrefix(t, "/"):
		ai, err := parseAddrInfo(t)
		if err != nil {
			return e, fmt.Errorf("directory %q: %w", truncateStr(t), err)
		}
		e.NodeID = ai.ID.String()
		e.Addrs = []string{t}
	default:
		if _, err := protocol.PublicKeyOf(t); err != nil {
			return e, fmt.Errorf("directory %q: want a multiaddr ending in /p2p/<node ID>, a node ID or an http(s) URL: %w", truncateStr(t), err)
		}
		e.NodeID = t
	}
	return e, nil
}

func truncateStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (n *Node) loadDirectories(ctx context.Context) ([]DirectoryEntry, error) {
	var list []DirectoryEntry
	b, err := n.store.GetMeta(ctx, directoriesMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load directories: %w", err)
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("load directories: %w", err)
	}
	return list, nil
}

func (n *Node) saveDirectories(ctx context.Context, list []DirectoryEntry) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return n.store.SetMeta(ctx, directoriesMeta, b)
}

// sameDirectory reports whether a and b name the same directory.
func sameDirectory(a, b DirectoryEntry) bool {
	return a.NodeID != "" && a.NodeID == b.NodeID || a.URL != "" && a.URL == b.URL || a.Target == b.Target
}

// mergeConfigDirectories adds Config.Directory.Directories to the list.
func (n *Node) mergeConfigDirectories(ctx context.Context) error {
	if len(n.cfg.Directory.Directories) == 0 {
		return nil
	}
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	list, err := n.loadDirectories(ctx)
	if err != nil {
		return err
	}
	changed := false
	for _, t := range n.cfg.Directory.Directories {
		e, err := parseDirectoryTarget(t)
		if err != nil {
			return fmt.Errorf("node: config directory: %w", err)
		}
		if !slices.ContainsFunc(list, func(x DirectoryEntry) bool { return sameDirectory(x, e) }) && len(list) < maxDirectories {
			list = append(list, e)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return n.saveDirectories(ctx, list)
}

// DirectoryAdd adds a directory to register with: a multiaddr ending in
// /p2p/<node ID>, a node ID (found through the peers and the DHT), or the
// URL of its public API (its signed policy names its node ID and
// addresses). It persists, and an online node registers at once; the
// returned entry says how that went. Adding a directory again refreshes it.
func (n *Node) DirectoryAdd(ctx context.Context, target string) (*DirectoryEntry, error) {
	e, err := parseDirectoryTarget(target)
	if err != nil {
		return nil, err
	}
	if e.URL != "" {
		pol, err := FetchPolicy(ctx, nil, e.URL)
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", e.URL, err)
		}
		e.NodeID, e.Addrs, e.Policy = pol.NodeID, pol.Addrs, pol
	}
	if e.NodeID == n.id.String() {
		return nil, fmt.Errorf("%w: that is this node itself", protocol.ErrInvalid)
	}
	n.dirMu.Lock()
	list, err := n.loadDirectories(ctx)
	if err == nil {
		i := slices.IndexFunc(list, func(x DirectoryEntry) bool { return sameDirectory(x, e) })
		switch {
		case i >= 0:
			if e.URL == "" {
				e.URL = list[i].URL
			}
			list[i] = e
		case len(list) >= maxDirectories:
			err = fmt.Errorf("%w: at most %d directories", protocol.ErrInvalid, maxDirectories)
		default:
			list = append(list, e)
		}
	}
	if err == nil {
		err = n.saveDirectories(ctx, list)
	}
	n.dirMu.Unlock()
	if err != nil {
		return nil, err
	}
	if n.host == nil || e.NodeID == "" {
		return &e, nil
	}
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	return n.registerEntry(rctx, e), nil
}

// DirectoryList lists the directories this node registers with.
func (n *Node) DirectoryList(ctx context.Context) ([]DirectoryEntry, error) {
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	list, err := n.loadDirectories(ctx)
	if list == nil {
		list = []DirectoryEntry{}
	}
	return list, err
}

// DirectoryRemove stops registering with a directory, named by its target,
// node ID or URL. It reports whether there was such a directory.
func (n *Node) DirectoryRemove(ctx context.Context, target string) (bool, error) {
	target = strings.TrimSpace(target)
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	list, err := n.loadDirectories(ctx)
	if err != nil {
		return false, err
	}
	out := list[:0]
	for _, e := range list {
		if e.Target != target && e.NodeID != target && (e.URL == "" || e.URL != strings.TrimRight(target, "/")) {
			out = append(out, e)
		}
	}
	if len(out) == len(list) {
		return false, nil
	}
	return true, n.saveDirectories(ctx, out)
}

// registerEntry registers with one directory and records the outcome.
func (n *Node) registerEntry(ctx context.Context, e DirectoryEntry) *DirectoryEntry {
	pol, err := n.RegisterWith(ctx, e.NodeID, e.Addrs)
	e.Error = ""
	if err != nil {
		e.Error = err.Error()
	} else {
		e.Registered, e.Policy = n.now().UnixMilli(), pol
		if e.URL == "" && pol.PublicURL != "" {
			if u, err := checkBaseURL(pol.PublicURL); err == nil {
				e.URL = u
			}
		}
	}
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	if list, lerr := n.loadDirectories(n.ctx); lerr == nil {
		if i := slices.IndexFunc(list, func(x DirectoryEntry) bool { return sameDirectory(x, e) }); i >= 0 {
			list[i] = e
			_ = n.saveDirectories(n.ctx, list)
		}
	}
	return &e
}

// RegisterWith registers this node with the directory nodeID over
// /mesh/directory/1.0.0, dialling addrs (multiaddrs, with or without
// /p2p/) if it is not connected, and returns the directory's policy.
func (n *Node) RegisterWith(ctx context.Context, nodeID string, addrs []string) (*protocol.DirectoryPolicy, error) {
	if n.host == nil {
		return nil, ErrOffline
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w: %v", truncateStr(nodeID), protocol.ErrInvalid, err)
	}
	ai := peer.AddrInfo{ID: p}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if t, id := peer.SplitAddr(m); t != nil && (id == "" || id == p) {
			ai.Addrs = append(ai.Addrs, t)
		}
	}
	if n.host.Network().Connectedness(p) != network.Connected {
		if err := n.host.Connect(ctx, ai); err != nil {
			return nil, fmt.Errorf("register with %s: %w", p, err)
		}
	}
	topics, _, _ := n.Following(ctx)
	if len(topics) > protocol.MaxTags {
		topics = topics[:protocol.MaxTags]
	}
	req, _ := (&protocol.DirectoryRegister{Type: protocol.MsgRegister, Topics: topics}).Encode()
	b, err := n.roundTrip(ctx, p, protocol.ProtocolDirectory, req, protocol.MaxDirectoryMessageSize)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", p, err)
	}
	resp, err := protocol.DecodeDirectoryRegistered(b)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", p, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("register with %s: %w", p, protocol.ErrorFor(resp.Error.Code, resp.Error.Message))
	}
	if resp.Policy.NodeID != p.String() {
		return nil, fmt.Errorf("register with %s: %w: its policy names %s", p, protocol.ErrInvalid, resp.Policy.NodeID)
	}
	return resp.Policy, nil
}

// registerLoop registers with every listed directory at start, then every
// RegisterInterval, and when DirectoryAdd wakes it.
func (n *Node) registerLoop() {
	defer n.wg.Done()
	every := n.cfg.Directory.RegisterInterval
	if every <= 0 {
		every = defaultRegisterInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.dirKick:
		case <-t.C:
			t.Reset(every)
		}
		n.dirMu.Lock()
		list, err := n.loadDirectories(n.ctx)
		n.dirMu.Unlock()
		if err != nil {
			continue
		}
		for _, e := range list {
			if e.NodeID == "" || n.ctx.Err() != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(n.ctx, registerTimeout)
			if r := n.registerEntry(ctx, e); r.Error != "" && n.ctx.Err() == nil {
				n.log.Debug("register with directory", "directory", e.NodeID, "err", r.Error)
			}
			cancel()
		}
	}
}

// ---- control API -----------------------------------------------------------

// Directory routes of the control API (bearer token):
//
//	POST /api/v1/directory/add      {"target"}  -> DirectoryEntry
//	GET  /api/v1/directory/list                 -> [DirectoryEntry]
//	POST /api/v1/directory/remove   {"target"}  -> {"removed"}
//	POST /api/v1/directory/search   DirectorySearchRequest -> DirectorySearchResult
func (n *Node) directoryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/directory/add", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Target string `json:"target"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeError(w, 0, err)
			return
		}
		e, err := n.DirectoryAdd(r.Context(), req.Target)
		n.writeResult(w, e, err)
	})
	mux.HandleFunc("GET /api/v1/directory/list", func(w http.ResponseWriter, r *http.Request) {
		list, err := n.DirectoryList(r.Context())
		n.writeResult(w, list, err)
	})
	mux.HandleFunc("POST /api/v1/directory/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Target string `json:"target"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeError(w, 0, err)
			return
		}
		ok, err := n.DirectoryRemove(r.Context(), req.Target)
		n.writeResult(w, map[string]any{"success": true, "removed": ok}, err)
	})
	mux.HandleFunc("POST /api/v1/directory/search", func(w http.ResponseWriter, r *http.Request) {
		var req DirectorySearchRequest
		if err := decodeBody(r, &req); err != nil {
			writeError(w, 0, err)
			return
		}
		res, err := n.DirectorySearch(r.Context(), req)
		n.writeResult(w, res, err)
	})
}
