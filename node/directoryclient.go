package node

import (
	"context"
	"net/http"
)

// DirectoryAdd asks the daemon to register with a directory (Node.DirectoryAdd).
func (c *Client) DirectoryAdd(ctx context.Context, target string) (*DirectoryEntry, error) {
	var e DirectoryEntry
	if err := c.do(ctx, http.MethodPost, "/api/v1/directory/add", map[string]string{"target": target}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DirectoryList lists the daemon's directories (Node.DirectoryList).
func (c *Client) DirectoryList(ctx context.Context) ([]DirectoryEntry, error) {
	var list []DirectoryEntry
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
func (c *Client) DirectorySearch(ctx context.Context, req DirectorySearchRequest) (*DirectorySearchResult, error) {
	var res DirectorySearchResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/directory/search", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
