package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// ErrNoDaemon is returned (wrapped) by DialRepo when no daemon serves the repo.
var ErrNoDaemon = errors.New("no daemon is running on this repo")

// Client talks to a running node's control API. It implements api.API
// with the same results and errors as the node itself. It is safe for
// concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the API at base ("http://127.0.0.1:8765")
// with the control API token.
func NewClient(base, token string) *Client {
	return &Client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		hc:    &http.Client{Timeout: 5 * time.Minute},
	}
}

// DialRepo finds the daemon that serves repoDir (from the repo's api and
// api.token files; api overrides the address) and checks that it answers.
// If none answers, the error wraps ErrNoDaemon.
func DialRepo(ctx context.Context, repoDir, addr string) (*Client, error) {
	tok, err := os.ReadFile(filepath.Join(repoDir, TokenFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoDaemon, repoDir, TokenFile)
		}
		return nil, err
	}
	if addr == "" {
		b, err := os.ReadFile(filepath.Join(repoDir, APIFile))
		if err != nil {
			return nil, fmt.Errorf("%w: %s has no %s file", ErrNoDaemon, repoDir, APIFile)
		}
		addr = strings.TrimSpace(string(b))
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	c := NewClient(addr, strings.TrimSpace(string(tok)))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Info(pctx); err != nil {
		if errors.Is(err, protocol.ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s does not answer: %v", ErrNoDaemon, addr, err)
	}
	return c, nil
}

// do sends a request and decodes a JSON answer into out; an error answer
// becomes an error matching the protocol sentinels.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	switch in := in.(type) {
	case nil:
	case rawBody:
		body = bytes.NewReader(in)
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.errorOf(resp, method, path)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	switch out := out.(type) {
	case nil:
		return nil
	case *rawBody:
		*out = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("api %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// maxAnswer caps what the client reads of an answer.
const maxAnswer = 64 << 20

// rawBody is a request or answer body sent or kept byte for byte: JSON
// the backend reads or made itself (a trust export).
type rawBody []byte

// errorOf turns an error answer into an error matching the protocol
// sentinel of its code.
func (c *Client) errorOf(resp *http.Response, method, path string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e ErrorBody
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return e.Err()
	}
	return fmt.Errorf("api %s %s: %s", method, path, resp.Status)
}

// Info describes the daemon's node.
func (c *Client) Info(ctx context.Context) (*api.Info, error) {
	var out api.Info
	return &out, c.do(ctx, http.MethodGet, "/api/v1/info", nil, &out)
}

// Put stores a record.
func (c *Client) Put(ctx context.Context, rec *protocol.Lesson) (string, bool, error) {
	var out api.StoreResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/amp/store", map[string]any{"operation": "store", "record": rec}, &out)
	return out.ID, out.Created, err
}

// Get returns a record.
func (c *Client) Get(ctx context.Context, id string) (*protocol.Lesson, error) {
	var out api.RecordResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/records/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Record, nil
}

// Delete removes a record.
func (c *Client) Delete(ctx context.Context, id string) (bool, error) {
	var out api.DeleteResponse
	err := c.do(ctx, http.MethodDelete, "/api/v1/amp/records/"+url.PathEscape(id), nil, &out)
	if errors.Is(err, protocol.ErrUnknownLesson) {
		return false, nil
	}
	return out.Deleted, err
}

// List lists records.
func (c *Client) List(ctx context.Context, o store.ListOptions) (*store.ListResult, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("type", o.Type)
	set("agent", o.Agent)
	set("project", o.Project)
	set("visibility", o.Visibility)
	set("order", o.Order)
	set("origin", o.Origin)
	set("publisher", o.Publisher)
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset != 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	for _, t := range o.Tags {
		q.Add("tag", t)
	}
	var out api.ListResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/records?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out.StoreResult(), nil
}

// Search searches the daemon's store.
func (c *Client) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	var out api.SearchResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/amp/search", api.NewSearchRequest(q), &out); err != nil {
		return nil, err
	}
	return out.StoreResult(), nil
}

// Status reports the daemon's health, counts and network.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var out api.Status
	if err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AgentStatus reports an agent's state.
func (c *Client) AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error) {
	if err := api.CheckAgent(agent); err != nil {
		return nil, err // an empty agent has no path to send it on
	}
	var out api.AgentStatusResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/agents/"+url.PathEscape(agent)+"/status", nil, &out); err != nil {
		return nil, err
	}
	return out.StoreStatus(), nil
}

// Publish signs a record for publication on the daemon.
func (c *Client) Publish(ctx context.Context, id string, opts api.PublishOptions) (*protocol.SignedLesson, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/publish", api.PublishRequest{ID: id, PublishOptions: opts}, &raw); err != nil {
		return nil, err
	}
	return protocol.DecodeSignedLesson(raw)
}

// Export returns the signed form of a published record.
func (c *Client) Export(ctx context.Context, id string) (*protocol.SignedLesson, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/export/"+url.PathEscape(id), nil, &raw); err != nil {
		return nil, err
	}
	return protocol.DecodeSignedLesson(raw)
}

// Revoke takes a publication back.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*protocol.Revocation, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/revoke", api.RevokeRequest{ID: id, Reason: reason}, &raw); err != nil {
		return nil, err
	}
	return protocol.DecodeRevocation(raw)
}

// Follow follows a topic or a publisher's feed.
func (c *Client) Follow(ctx context.Context, target string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/follow", targetRequest{Target: target}, nil)
}

// Unfollow undoes Follow.
func (c *Client) Unfollow(ctx context.Context, target string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/unfollow", targetRequest{Target: target}, nil)
}

// Following lists the followed topics and feeds.
func (c *Client) Following(ctx context.Context) ([]string, []string, error) {
	var out api.FollowingResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/following", nil, &out)
	return out.Topics, out.Feeds, err
}

// Connect dials a peer and keeps it connected.
func (c *Client) Connect(ctx context.Context, addr string) (peer.ID, error) {
	var out struct {
		Peer string `json:"peer"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/connect", map[string]string{"addr": addr}, &out); err != nil {
		return "", err
	}
	return peer.Decode(out.Peer)
}

// Peers lists the daemon's connected peers.
func (c *Client) Peers(ctx context.Context) ([]api.PeerInfo, error) {
	var out []api.PeerInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/peers", nil, &out)
	return out, err
}

// Sync runs a catch-up sync on the daemon, calling progress for each page.
// The error is the daemon's: it joins every peer's failure.
func (c *Client) Sync(ctx context.Context, progress func(api.SyncProgress)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/sync", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.errorOf(resp, http.MethodPost, "/api/v1/sync")
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer))
	for {
		var line struct {
			api.SyncProgress
			ErrorBody
		}
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("api sync: bad answer: %w", err)
		}
		if line.Error {
			return line.Err()
		}
		if progress != nil {
			progress(line.SyncProgress)
		}
	}
}

// TrustSet adds or changes a direct trust edge.
func (c *Client) TrustSet(ctx context.Context, nodeID string, level trust.Level, note string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/trust/set", map[string]any{"nodeId": nodeID, "level": level, "note": note}, nil)
}

// TrustRemove removes a direct trust edge.
func (c *Client) TrustRemove(ctx context.Context, nodeID string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/trust/remove", map[string]any{"nodeId": nodeID}, nil)
}

// TrustList lists direct and transitive trust.
func (c *Client) TrustList(ctx context.Context) ([]api.TrustEntry, error) {
	var out []api.TrustEntry
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/list", nil, &out)
}

// TrustPath reports the trust path to a node.
func (c *Client) TrustPath(ctx context.Context, nodeID string) (*api.TrustPathInfo, error) {
	var out api.TrustPathInfo
	return &out, c.do(ctx, http.MethodGet, "/api/v1/trust/path/"+url.PathEscape(nodeID), nil, &out)
}

// TrustExport returns the direct edges as JSON, byte for byte as the
// daemon's node made them.
func (c *Client) TrustExport(ctx context.Context) ([]byte, error) {
	var out rawBody
	if err := c.do(ctx, http.MethodGet, "/api/v1/trust/export", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TrustImport adds the edges of an export. data goes to the daemon's node
// as it is, to be checked there.
func (c *Client) TrustImport(ctx context.Context, data []byte) (int, error) {
	var out struct {
		Added int `json:"added"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/trust/import", rawBody(data), &out)
	return out.Added, err
}

// Referrals lists received referrals.
func (c *Client) Referrals(ctx context.Context) ([]*protocol.Referral, error) {
	var out []*protocol.Referral
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/referrals", nil, &out)
}

// TrustPending lists the publishers whose lessons the daemon refused
// because it does not trust them.
func (c *Client) TrustPending(ctx context.Context) ([]api.PendingPublisher, error) {
	var out []api.PendingPublisher
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/pending", nil, &out)
}

// VerifyKey verifies a lesson by key on the daemon.
func (c *Client) VerifyKey(ctx context.Context, key string) (*api.VerifyReport, error) {
	var out api.VerifyReport
	return &out, c.do(ctx, http.MethodGet, "/api/v1/verify/"+url.PathEscape(key), nil, &out)
}

// SearchNetwork runs a federated search on the daemon.
func (c *Client) SearchNetwork(ctx context.Context, req api.FedSearchRequest) (*api.FedSearchResponse, error) {
	var out api.FedSearchResponse
	return &out, c.do(ctx, http.MethodPost, "/api/v1/search", req, &out)
}

// The Client's side of the DHT routes (see dhtRoutes).

// DHTStatus reports the daemon's DHT.
func (c *Client) DHTStatus(ctx context.Context) (*api.DHTStatus, error) {
	var out api.DHTStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TopicNodes asks the daemon for the nodes that follow topic.
func (c *Client) TopicNodes(ctx context.Context, topic string, limit int) ([]api.NodeInfo, error) {
	q := url.Values{"topic": {topic}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []api.NodeInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht/nodes?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Directories asks the daemon for directory nodes.
func (c *Client) Directories(ctx context.Context, limit int) ([]api.NodeInfo, error) {
	path := "/api/v1/dht/directories"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out []api.NodeInfo
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// NodeRecord asks the daemon for a node's signed record and verifies it: the
// daemon is trusted to look, not to tell the truth.
func (c *Client) NodeRecord(ctx context.Context, nodeID string) (*protocol.NodeRecord, error) {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return nil, err
	}
	var out protocol.NodeRecord
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht/nodes/"+url.PathEscape(nodeID), nil, &out); err != nil {
		return nil, err
	}
	if out.NodeID != nodeID {
		return nil, fmt.Errorf("node record of %s: %w: the daemon answered with the record of %s", nodeID, protocol.ErrKeyMismatch, out.NodeID)
	}
	if err := protocol.VerifyNodeRecord(&out, protocol.VerifyOptions{}); err != nil {
		return nil, fmt.Errorf("node record of %s: %w", nodeID, err)
	}
	return &out, nil
}

// FindNode asks the daemon to resolve a node's addresses.
func (c *Client) FindNode(ctx context.Context, nodeID string) (*api.NodeInfo, error) {
	var out api.NodeInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht/find/"+url.PathEscape(nodeID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DirectoryAdd asks the daemon to register with a directory (Node.DirectoryAdd).
func (c *Client) DirectoryAdd(ctx context.Context, target string) (*api.DirectoryEntry, error) {
	var e api.DirectoryEntry
	if err := c.do(ctx, http.MethodPost, "/api/v1/directory/add", map[string]string{"target": target}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DirectoryList lists the daemon's directories (Node.DirectoryList).
func (c *Client) DirectoryList(ctx context.Context) ([]api.DirectoryEntry, error) {
	var list []api.DirectoryEntry
	if err := c.do(ctx, http.MethodGet, "/api/v1/directory/list", nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// DirectoryRemove removes one of the daemon's directories (Node.DirectoryRemove).
func (c *Client) DirectoryRemove(ctx context.Context, target string) (bool, error) {
	var out struct {
		Removed bool `json:"removed"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/directory/remove", map[string]string{"target": target}, &out); err != nil {
		return false, err
	}
	return out.Removed, nil
}

// DirectorySearch runs a multi-directory search on the daemon (Node.DirectorySearch).
func (c *Client) DirectorySearch(ctx context.Context, req api.DirectorySearchRequest) (*api.DirectorySearchResult, error) {
	var res api.DirectorySearchResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/directory/search", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Network reports the daemon's reachability, relay reservations and relay
// service.
func (c *Client) Network(ctx context.Context) (*api.NetworkStatus, error) {
	var out api.NetworkStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/network", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

var _ api.API = (*Client)(nil)

// UILogin asks the daemon's web UI for a one-time login link (the URL to
// open). It fails with NOT_FOUND if the daemon serves no UI.
func (c *Client) UILogin(ctx context.Context) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/ui/login", struct{}{}, &out); err != nil {
		return "", err
	}
	return out.URL, nil
}
