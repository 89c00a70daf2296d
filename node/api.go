package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Node implements api.API: the AMP operations over its own store, the
// federation, trust, directory, DHT and network operations through its
// subsystems. An offline node answers the network operations with an error
// wrapping api.ErrOffline.
var _ api.API = (*Node)(nil)

// Info describes the node.
func (n *Node) Info(ctx context.Context) (*api.Info, error) {
	info := &api.Info{
		NodeID:      n.id.String(),
		Fingerprint: protocol.Fingerprint(n.PublicKey()),
		PublicKey:   n.PublicKey(),
		API:         n.APIURL(),
		Online:      n.host != nil,
	}
	for _, a := range n.Addrs() {
		info.Addrs = append(info.Addrs, a.String())
	}
	if n.host != nil {
		for _, a := range n.host.Network().ListenAddresses() {
			info.Listen = append(info.Listen, a.String())
		}
	}
	if n.dir != nil {
		info.PublicAPI = n.dir.PublicURL()
	}
	return info, nil
}

// Identity returns a freshly signed identity document.
func (n *Node) Identity() (*protocol.Identity, error) {
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	caps := []string{protocol.CapabilityStore, protocol.CapabilitySearch}
	return protocol.SignIdentity(n.edKey, addrs, caps, n.now())
}

// Put stores (upserts) a record.
//
// Visibility means one thing: a record stored public or unlisted is
// published (signed, kept, and announced if public) as it is stored, on
// the topics of its current publication if it has one; stored unchanged
// while its publication is current, it is not signed again. A record
// published encrypted is not published in the clear this way: storing it
// public is refused (mesh publish --encrypt publishes the change). Stored
// private, a record stops being shared here (its publication is dropped;
// mesh revoke takes it back from the network).
func (n *Node) Put(ctx context.Context, rec *protocol.Lesson) (string, bool, error) {
	defer n.metrics.Op("put")()
	vis := ""
	if rec != nil {
		vis = rec.Visibility
	}
	shared := vis == protocol.VisibilityPublic || vis == protocol.VisibilityUnlisted
	if shared && rec.ID != "" {
		if _, err := n.store.EncryptedPublication(ctx, rec.ID); err == nil {
			return "", false, fmt.Errorf("store %s: %w: it is published encrypted; storing it %s would publish it in the clear: publish the change with mesh publish --encrypt %s, or store it private", rec.ID, protocol.ErrInvalid, vis, rec.ID)
		}
		if n.store.Revoked(ctx, rec.ID+"@"+n.id.String()) {
			return "", false, fmt.Errorf("store %s: %w: a revoked lesson stays revoked; store it under a new id (or private)", rec.ID, protocol.ErrAlreadyRevoked)
		}
	}
	id, created, err := n.store.Put(ctx, rec)
	if err == nil && vis != protocol.VisibilityPublic {
		// A public record reaches the standing queries as a publication.
		if cur, gerr := n.store.Get(ctx, id); gerr == nil {
			n.watch.Stored(cur)
		}
	}
	if err != nil || !shared {
		return id, created, err
	}
	cur, err := n.store.Get(ctx, id)
	if err != nil {
		return id, created, err
	}
	var topics []string
	if sl, err := n.store.Publication(ctx, id); err == nil {
		if _, _, err := n.store.SharedPublication(ctx, cur); err == nil && sl.Publication.Visibility == vis {
			return id, created, nil // published as it is
		}
		topics = sl.Publication.Topics
	}
	if _, err := n.Publish(ctx, id, api.PublishOptions{Visibility: vis, Topics: topics}); err != nil {
		return id, created, fmt.Errorf("stored %s, but publishing it failed (it is kept; mesh publish %s retries): %w", id, id, err)
	}
	return id, created, nil
}

// Get returns a record by id, or a lesson by its key lessonId@nodeId: one
// of this node's, one it received, or, if it holds neither, one its
// publisher or a connected peer hands out (verified). A bare id that is
// not one of this node's records names the lesson received under that id,
// if there is exactly one.
func (n *Node) Get(ctx context.Context, id string) (*protocol.Lesson, error) {
	defer n.metrics.Op("get")()
	key, err := n.resolveKey(ctx, id)
	if key == "" || err != nil {
		return n.store.Get(ctx, id)
	}
	lessonID, nodeID, err := protocol.ParseKey(key)
	if err != nil {
		return nil, err
	}
	if nodeID == n.id.String() {
		return n.store.Get(ctx, lessonID)
	}
	sl, err := n.findLesson(ctx, key)
	if err != nil {
		return nil, err
	}
	rec := sl.Lesson
	rec.Visibility = sl.Publication.Visibility
	return &rec, nil
}

// resolveKey says which lesson key id names: id itself if it is a key; for
// a bare id that is not one of this node's records, the key of the one
// lesson received under it; "" for one of this node's own records (or an
// id nothing is known under).
func (n *Node) resolveKey(ctx context.Context, id string) (string, error) {
	if strings.Contains(id, "@") {
		if _, _, err := protocol.ParseKey(id); err != nil {
			return "", err
		}
		return id, nil
	}
	if _, err := n.store.Get(ctx, id); err == nil || !errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	switch keys := n.store.RemoteKeys(id); len(keys) {
	case 0:
		return "", nil
	case 1:
		return keys[0], nil
	default:
		return "", fmt.Errorf("%w: %d received lessons have the id %s; name one: %s", protocol.ErrInvalid, len(keys), id, strings.Join(keys, ", "))
	}
}

// findLesson returns the signed lesson key: from this node's publications
// or its cache of received lessons, else from its publisher, else from a
// connected peer that hands it out. A revoked lesson is an error wrapping
// protocol.ErrAlreadyRevoked.
func (n *Node) findLesson(ctx context.Context, key string) (*protocol.SignedLesson, error) {
	f, err := n.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	switch {
	case f.rev != nil:
		return nil, fmt.Errorf("%s: %w", key, protocol.ErrAlreadyRevoked)
	case f.el != nil:
		return nil, fmt.Errorf("%w: %s is published encrypted: mesh get %s decrypts it if its key policy admits this node", protocol.ErrUnknownLesson, key, key)
	case f.sl == nil:
		return nil, f.notFound()
	}
	if err := protocol.Verify(f.sl, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return f.sl, nil
}

// Delete removes a record and its publication.
func (n *Node) Delete(ctx context.Context, id string) (bool, error) {
	defer n.metrics.Op("delete")()
	return n.store.Delete(ctx, id)
}

// List lists records.
func (n *Node) List(ctx context.Context, o store.ListOptions) (*store.ListResult, error) {
	defer n.metrics.Op("list")()
	return n.store.List(ctx, o)
}

// Search searches the local store. A hit of the node's own records has no
// Publisher; one of a lesson received from another node has its key and
// publisher (its signed form is Export's, or VerifyKey's, to ask for).
func (n *Node) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	defer n.metrics.Op("search")()
	defer n.metrics.Searched("local")()
	res, err := n.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	self := n.id.String()
	for i := range res.Hits {
		h := &res.Hits[i]
		if h.Publisher == self {
			h.Publisher = ""
		}
		h.Signed, h.Encoded = nil, nil // the store's serving data, not the AMP answer
	}
	return res, nil
}

// AgentStatus reports an agent's state from its latest checkpoint.
func (n *Node) AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error) {
	if err := api.CheckAgent(agent); err != nil {
		return nil, err
	}
	return n.store.AgentStatus(ctx, agent)
}

// Status reports the node's health, record counts and network.
func (n *Node) Status(ctx context.Context) (*api.Status, error) {
	st, err := n.store.Status(ctx)
	if err != nil {
		return nil, err
	}
	_, pend := n.pending.List()
	return &api.Status{Healthy: true, Version: Version, NodeID: n.id.String(), Counts: st.Counts, Total: st.Total,
		Remote: st.Remote, Pending: pend, Network: n.reach.Status(), LastRecovery: st.LastRecovery}, nil
}

// Publish signs the record id for publication with the node's key, keeps
// the signed form, and announces a public one to the network. Visibility
// must be public or unlisted: private records are never signed.
func (n *Node) Publish(ctx context.Context, id string, opts api.PublishOptions) (*protocol.SignedLesson, error) {
	if opts.Visibility != protocol.VisibilityPublic && opts.Visibility != protocol.VisibilityUnlisted {
		return nil, fmt.Errorf("publish %s: %w: visibility %q: want public or unlisted", id, protocol.ErrInvalid, opts.Visibility)
	}
	rec, err := n.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	now := n.now()
	sl, err := protocol.Sign(n.edKey, rec, protocol.Publication{
		Visibility:  opts.Visibility,
		PublishedAt: now.UnixMilli(),
		Topics:      opts.Topics,
	}, now)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	if n.store.Revoked(ctx, id+"@"+n.id.String()) {
		return nil, fmt.Errorf("publish %s: %w: a revoked lesson stays revoked; store it under a new id", id, protocol.ErrAlreadyRevoked)
	}
	if err := n.store.PutPublication(ctx, sl); err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	if sl.Publication.Visibility == protocol.VisibilityPublic {
		n.announce(ctx, &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: sl}, sl.Publication.Topics)
		n.watch.Kick()
	}
	return sl, nil
}

// Export returns the signed form of a published record, or of a lesson by
// its key (as Get finds it).
func (n *Node) Export(ctx context.Context, id string) (*protocol.SignedLesson, error) {
	key, err := n.resolveKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	if key != "" {
		if lessonID, nodeID, _ := protocol.ParseKey(key); nodeID == n.id.String() {
			id = lessonID
		} else {
			return n.findLesson(ctx, key)
		}
	}
	sl, err := n.store.Publication(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if _, eerr := n.store.EncryptedPublication(ctx, id); eerr == nil {
				return nil, fmt.Errorf("export %s: %w: it is published encrypted: its EncryptedLesson is ExportEncrypted's (mesh export prints it)", id, protocol.ErrUnknownLesson)
			}
			if _, gerr := n.store.Get(ctx, id); gerr == nil {
				return nil, fmt.Errorf("export %s: %w: the record is not published; run: mesh publish %s --visibility public|unlisted", id, protocol.ErrUnknownLesson, id)
			}
		}
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	return sl, nil
}

// SearchNetwork runs a federated search of this node's public lessons and
// those of its trusted network (see fedsearch.Service.Search).
func (n *Node) SearchNetwork(ctx context.Context, req api.FedSearchRequest) (*api.FedSearchResponse, error) {
	defer n.metrics.Searched("network")()
	return n.search.Search(ctx, req)
}

// Network reports the node's reachability, relay reservations and relay
// service.
func (n *Node) Network(ctx context.Context) (*api.NetworkStatus, error) {
	st := n.reach.Status()
	if st == nil {
		return nil, api.ErrOffline
	}
	return st, nil
}

// DHTStatus reports the node's DHT: mode, routing table, the record last
// published and what is provided.
func (n *Node) DHTStatus(ctx context.Context) (*api.DHTStatus, error) {
	return n.disc.DHTStatus(ctx)
}

// TopicNodes looks up, in the DHT, the nodes that follow topic.
func (n *Node) TopicNodes(ctx context.Context, topic string, limit int) ([]api.NodeInfo, error) {
	return n.disc.TopicNodes(ctx, topic, limit)
}

// Directories looks up, in the DHT, nodes playing the directory role.
func (n *Node) Directories(ctx context.Context, limit int) ([]api.NodeInfo, error) {
	return n.disc.Directories(ctx, limit)
}

// NodeRecord looks up the newest valid signed record of a node in the DHT.
func (n *Node) NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error) {
	return n.disc.NodeRecord(ctx, nodeID)
}

// FindNode resolves a node's addresses through the DHT.
func (n *Node) FindNode(ctx context.Context, nodeID string) (*api.NodeInfo, error) {
	return n.disc.FindNode(ctx, nodeID)
}

// DirectoryAdd adds a directory to register with (see directory.Service.Add).
func (n *Node) DirectoryAdd(ctx context.Context, target string) (*api.DirectoryEntry, error) {
	return n.dir.Add(ctx, target)
}

// DirectoryList lists the directories this node registers with.
func (n *Node) DirectoryList(ctx context.Context) ([]api.DirectoryEntry, error) {
	return n.dir.List(ctx)
}

// DirectoryRemove stops registering with a directory.
func (n *Node) DirectoryRemove(ctx context.Context, target string) (bool, error) {
	return n.dir.Remove(ctx, target)
}

// DirectorySearch searches several directories' public APIs (see
// directory.Service.Search).
func (n *Node) DirectorySearch(ctx context.Context, req api.DirectorySearchRequest) (*api.DirectorySearchResult, error) {
	defer n.metrics.Searched("directory")()
	return n.dir.Search(ctx, req)
}
