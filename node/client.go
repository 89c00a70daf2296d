package node

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

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// ErrNoDaemon is returned (wrapped) by DialRepo when no daemon serves the repo.
var ErrNoDaemon = errors.New("no daemon is running on this repo")

// Client talks to a running node's control API. It is safe for concurrent use.
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
func DialRepo(ctx context.Context, repoDir, api string) (*Client, error) {
	tok, err := os.ReadFile(filepath.Join(repoDir, TokenFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoDaemon, repoDir, TokenFile)
		}
		return nil, err
	}
	if api == "" {
		b, err := os.ReadFile(filepath.Join(repoDir, APIFile))
		if err != nil {
			return nil, fmt.Errorf("%w: %s has no %s file", ErrNoDaemon, repoDir, APIFile)
		}
		api = strings.TrimSpace(string(b))
	}
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	c := NewClient(api, strings.TrimSpace(string(tok)))
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Info(pctx); err != nil {
		if errors.Is(err, protocol.ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s does not answer: %v", ErrNoDaemon, api, err)
	}
	return c, nil
}

// do sends a request and decodes a JSON answer into out; an error answer
// becomes an error matching the protocol sentinels.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return protocol.ErrorFor(e.Code, e.Message)
		}
		return fmt.Errorf("api %s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("api %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// Info describes the daemon's node.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	return &out, c.do(ctx, http.MethodGet, "/api/v1/info", nil, &out)
}

// Put stores a record.
func (c *Client) Put(ctx context.Context, rec *protocol.Lesson) (string, bool, error) {
	var out StoreResponse
	err := c.do(ctx, http.MethodPost, "/api/v1/amp/store", map[string]any{"operation": "store", "record": rec}, &out)
	return out.ID, out.Created, err
}

// Get returns a record.
func (c *Client) Get(ctx context.Context, id string) (*protocol.Lesson, error) {
	var out RecordResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/records/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Record, nil
}

// Delete removes a record.
func (c *Client) Delete(ctx context.Context, id string) (bool, error) {
	var out DeleteResponse
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
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset != 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	for _, t := range o.Tags {
		q.Add("tag", t)
	}
	var out ListResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/records?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &store.ListResult{Records: out.Records, Total: out.Total, HasMore: out.HasMore}, nil
}

// Search searches the daemon's store.
func (c *Client) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	req := SearchRequest{
		Operation: "search", Query: q.Text, Type: q.Type, Types: q.Types, Tags: q.Tags,
		Project: q.Project, Agent: q.Agent, Visibility: q.Visibility, Since: q.Since,
		Until: q.Until, Limit: q.Limit, MinScore: q.MinScore, Origin: q.Origin,
	}
	var out SearchResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/amp/search", req, &out); err != nil {
		return nil, err
	}
	res := &store.SearchResult{Total: out.Total}
	for _, r := range out.Results {
		res.Hits = append(res.Hits, store.Hit{ID: r.ID, Score: r.Score, Record: r.Record, Key: r.Key, Publisher: r.Publisher})
	}
	return res, nil
}

// Status reports the daemon's health and counts.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out StatusResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/status", nil, &out); err != nil {
		return nil, err
	}
	st := &Status{Healthy: out.Healthy, Version: out.Version, NodeID: out.NodeID, Counts: map[string]int{}}
	for k, v := range out.Stats {
		if k == "total_records" {
			st.Total = v
			continue
		}
		if v > 0 {
			st.Counts[strings.TrimSuffix(k, "s")] = v
		}
	}
	return st, nil
}

// AgentStatus reports an agent's state.
func (c *Client) AgentStatus(ctx context.Context, agent string) (*store.AgentStatus, error) {
	var out AgentStatusResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/amp/agents/"+url.PathEscape(agent)+"/status", nil, &out); err != nil {
		return nil, err
	}
	return &store.AgentStatus{Agent: out.Agent, Status: out.Status, WorkingOn: out.WorkingOn, Blockers: out.Blockers, CheckpointID: out.CheckpointID, UpdatedAt: out.UpdatedAt}, nil
}

// Publish signs a record for publication on the daemon.
func (c *Client) Publish(ctx context.Context, id string, opts PublishOptions) (*protocol.SignedLesson, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/api/v1/publish", PublishRequest{ID: id, PublishOptions: opts}, &raw); err != nil {
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
	if err := c.do(ctx, http.MethodPost, "/api/v1/revoke", RevokeRequest{ID: id, Reason: reason}, &raw); err != nil {
		return nil, err
	}
	return protocol.DecodeRevocation(raw)
}

// Follow follows a topic or a publisher's feed.
func (c *Client) Follow(ctx context.Context, target string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/follow", followRequest{Target: target}, nil)
}

// Unfollow undoes Follow.
func (c *Client) Unfollow(ctx context.Context, target string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/unfollow", followRequest{Target: target}, nil)
}

// Following lists the followed topics and feeds.
func (c *Client) Following(ctx context.Context) ([]string, []string, error) {
	var out FollowingResponse
	err := c.do(ctx, http.MethodGet, "/api/v1/following", nil, &out)
	return out.Topics, out.Feeds, err
}

// Connect dials a peer and keeps it connected.
func (c *Client) Connect(ctx context.Context, addr string) (peer.ID, error) {
	var out struct {
		Peer string `json:"peer"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/connect", connectRequest{Addr: addr}, &out); err != nil {
		return "", err
	}
	return peer.Decode(out.Peer)
}

// Peers lists the daemon's connected peers.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var out []PeerInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/peers", nil, &out)
	return out, err
}

// Sync runs a catch-up sync on the daemon, calling progress for each page.
func (c *Client) Sync(ctx context.Context, progress func(SyncProgress)) error {
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
		return fmt.Errorf("api sync: %s", resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var p SyncProgress
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if progress != nil {
			progress(p)
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
func (c *Client) TrustList(ctx context.Context) ([]TrustEntry, error) {
	var out []TrustEntry
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/list", nil, &out)
}

// TrustPath reports the trust path to a node.
func (c *Client) TrustPath(ctx context.Context, nodeID string) (*TrustPathInfo, error) {
	var out TrustPathInfo
	return &out, c.do(ctx, http.MethodGet, "/api/v1/trust/path/"+url.PathEscape(nodeID), nil, &out)
}

// TrustExport returns the direct edges as JSON.
func (c *Client) TrustExport(ctx context.Context) ([]byte, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/export", nil, &out)
}

// TrustImport adds the edges of an export.
func (c *Client) TrustImport(ctx context.Context, data []byte) (int, error) {
	var out struct {
		Added int `json:"added"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/trust/import", json.RawMessage(data), &out)
	return out.Added, err
}

// Referrals lists received referrals.
func (c *Client) Referrals(ctx context.Context) ([]*protocol.Referral, error) {
	var out []*protocol.Referral
	return out, c.do(ctx, http.MethodGet, "/api/v1/trust/referrals", nil, &out)
}

// VerifyKey verifies a lesson by key on the daemon.
func (c *Client) VerifyKey(ctx context.Context, key string) (*VerifyReport, error) {
	var out VerifyReport
	return &out, c.do(ctx, http.MethodGet, "/api/v1/verify/"+url.PathEscape(key), nil, &out)
}

// SearchNetwork runs a federated search on the daemon.
func (c *Client) SearchNetwork(ctx context.Context, req FedSearchRequest) (*FedSearchResponse, error) {
	var out FedSearchResponse
	return &out, c.do(ctx, http.MethodPost, "/api/v1/search", req, &out)
}
