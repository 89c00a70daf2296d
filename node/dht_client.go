package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/protocol"
)

// The Client's side of the DHT routes (see dhtRoutes).

// DHTStatus reports the daemon's DHT.
func (c *Client) DHTStatus(ctx context.Context) (*DHTStatus, error) {
	var out DHTStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht", nil, &out); err != nil {
		return nil, dhtClientErr(err)
	}
	return &out, nil
}

// TopicNodes asks the daemon for the nodes that follow topic.
func (c *Client) TopicNodes(ctx context.Context, topic string, limit int) ([]NodeInfo, error) {
	q := url.Values{"topic": {topic}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []NodeInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht/nodes?"+q.Encode(), nil, &out); err != nil {
		return nil, dhtClientErr(err)
	}
	return out, nil
}

// Directories asks the daemon for directory nodes.
func (c *Client) Directories(ctx context.Context, limit int) ([]NodeInfo, error) {
	path := "/api/v1/dht/directories"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out []NodeInfo
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, dhtClientErr(err)
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
		return nil, dhtClientErr(err)
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
func (c *Client) FindNode(ctx context.Context, nodeID string) (*NodeInfo, error) {
	var out NodeInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/dht/find/"+url.PathEscape(nodeID), nil, &out); err != nil {
		return nil, dhtClientErr(err)
	}
	return &out, nil
}

// dhtClientErr restores the sentinels the wire codes cannot carry.
func dhtClientErr(err error) error {
	var re *protocol.RemoteError
	if errors.As(err, &re) {
		switch {
		case strings.Contains(re.Message, dht.ErrNotFound.Error()):
			return fmt.Errorf("%w: %w", dht.ErrNotFound, err)
		case strings.Contains(re.Message, ErrNoDHT.Error()):
			return fmt.Errorf("%w: %w", ErrNoDHT, err)
		case strings.Contains(re.Message, dht.ErrNoPeers.Error()):
			return fmt.Errorf("%w: %w", dht.ErrNoPeers, err)
		}
	}
	return err
}
