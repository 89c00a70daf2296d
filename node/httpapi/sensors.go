package httpapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/meshprotocol/mesh/node/api"
)

// sensorRoutes are the control API's routes of streams, access, names and
// questions to sources (api.Sensors):
//
//	POST   /api/v1/sensors           StreamOptions       -> Stream
//	GET    /api/v1/sensors                               -> [Stream]
//	POST   /api/v1/sensors/push      PushRequest         -> Reading
//	POST   /api/v1/sensors/search    SensorSearchRequest -> SensorSearchResult
//	POST   /api/v1/access/grant      GrantOptions        -> Grant
//	POST   /api/v1/access/revoke     {reader, streams}   -> RevokeResult
//	GET    /api/v1/access                                -> [Grant]
//	POST   /api/v1/names             {name, targets}     -> Name
//	GET    /api/v1/names                                 -> [Name]
//	DELETE /api/v1/names/{name}                          -> {removed}
func (h *handler) sensorRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/sensors", post(func(r *http.Request, req *api.StreamOptions) (any, error) { return b.SensorAdd(r.Context(), *req) }))
	mux.HandleFunc("GET /api/v1/sensors", get(func(r *http.Request) (any, error) { return nonNilE(b.SensorList(r.Context())) }))
	mux.HandleFunc("POST /api/v1/sensors/push", post(func(r *http.Request, req *api.PushRequest) (any, error) { return b.SensorPush(r.Context(), *req) }))
	mux.HandleFunc("POST /api/v1/sensors/search", post(func(r *http.Request, req *api.SensorSearchRequest) (any, error) {
		return b.SensorSearch(r.Context(), *req)
	}))
	mux.HandleFunc("POST /api/v1/access/grant", post(func(r *http.Request, req *api.GrantOptions) (any, error) { return b.AccessGrant(r.Context(), *req) }))
	mux.HandleFunc("POST /api/v1/access/revoke", post(func(r *http.Request, req *revokeAccessRequest) (any, error) {
		return b.AccessRevoke(r.Context(), req.Reader, req.Streams)
	}))
	mux.HandleFunc("GET /api/v1/access", get(func(r *http.Request) (any, error) { return nonNilE(b.AccessList(r.Context())) }))
	mux.HandleFunc("POST /api/v1/names", post(func(r *http.Request, req *nameRequest) (any, error) {
		return b.NameSet(r.Context(), req.Name, req.Targets)
	}))
	mux.HandleFunc("GET /api/v1/names", get(func(r *http.Request) (any, error) { return nonNilE(b.NameList(r.Context())) }))
	mux.HandleFunc("DELETE /api/v1/names/{name}", get(func(r *http.Request) (any, error) {
		ok, err := b.NameRemove(r.Context(), r.PathValue("name"))
		return map[string]bool{"removed": ok}, err
	}))
}

type revokeAccessRequest struct {
	Reader  string   `json:"reader"`
	Streams []string `json:"streams,omitempty"`
}

type nameRequest struct {
	Name    string   `json:"name"`
	Targets []string `json:"targets"`
}

// The Client's side of the sensor routes.

// SensorAdd creates or changes a stream on the daemon.
func (c *Client) SensorAdd(ctx context.Context, o api.StreamOptions) (*api.Stream, error) {
	var out api.Stream
	if err := c.do(ctx, http.MethodPost, "/api/v1/sensors", o, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SensorList lists the daemon's streams.
func (c *Client) SensorList(ctx context.Context) ([]api.Stream, error) {
	var out []api.Stream
	if err := c.do(ctx, http.MethodGet, "/api/v1/sensors", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SensorPush records a reading on the daemon.
func (c *Client) SensorPush(ctx context.Context, req api.PushRequest) (*api.Reading, error) {
	var out api.Reading
	if err := c.do(ctx, http.MethodPost, "/api/v1/sensors/push", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SensorSearch asks sources a question through the daemon.
func (c *Client) SensorSearch(ctx context.Context, req api.SensorSearchRequest) (*api.SensorSearchResult, error) {
	var out api.SensorSearchResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/sensors/search", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AccessGrant grants a reader streams on the daemon.
func (c *Client) AccessGrant(ctx context.Context, g api.GrantOptions) (*api.Grant, error) {
	var out api.Grant
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/grant", g, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AccessRevoke takes streams away from a reader on the daemon.
func (c *Client) AccessRevoke(ctx context.Context, reader string, streams []string) (*api.RevokeResult, error) {
	var out api.RevokeResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/revoke", revokeAccessRequest{reader, streams}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AccessList lists the daemon's grants.
func (c *Client) AccessList(ctx context.Context) ([]api.Grant, error) {
	var out []api.Grant
	if err := c.do(ctx, http.MethodGet, "/api/v1/access", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// NameSet sets a local name on the daemon.
func (c *Client) NameSet(ctx context.Context, name string, targets []string) (*api.Name, error) {
	var out api.Name
	if err := c.do(ctx, http.MethodPost, "/api/v1/names", nameRequest{name, targets}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// NameList lists the daemon's local names.
func (c *Client) NameList(ctx context.Context) ([]api.Name, error) {
	var out []api.Name
	if err := c.do(ctx, http.MethodGet, "/api/v1/names", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// NameRemove forgets a local name on the daemon.
func (c *Client) NameRemove(ctx context.Context, name string) (bool, error) {
	var out struct {
		Removed bool `json:"removed"`
	}
	if err := c.do(ctx, http.MethodDelete, "/api/v1/names/"+url.PathEscape(name), nil, &out); err != nil {
		return false, err
	}
	return out.Removed, nil
}
