package node

import (
	"context"
	"net/http"
)

// Network reports the daemon's reachability, relay reservations and relay
// service.
func (c *Client) Network(ctx context.Context) (*NetworkStatus, error) {
	var out NetworkStatus
	if err := c.do(ctx, http.MethodGet, "/api/v1/network", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
