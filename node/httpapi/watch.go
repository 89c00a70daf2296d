package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/meshprotocol/mesh/internal/sse"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// watchRoutes are the standing queries' routes (api.Watches):
//
//	POST /api/v1/watch/add     WatchSpec   -> WatchAdded
//	GET  /api/v1/watch/list                -> [Watch]
//	POST /api/v1/watch/remove  {"id"}      -> {"removed"}
//	GET  /api/v1/watch/poll?after=&limit=&waitMs= -> WatchPollResult
//	GET  /api/v1/watch/events?after=N      -> server-sent events: one
//	     "match" event per WatchMatch (id: its Seq, data: its JSON); a
//	     reconnecting EventSource resumes after Last-Event-ID
func (h *handler) watchRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/watch/add", post(func(r *http.Request, req *api.WatchSpec) (any, error) {
		return b.WatchAdd(r.Context(), *req)
	}))
	mux.HandleFunc("GET /api/v1/watch/list", get(func(r *http.Request) (any, error) { return nonNilE(b.WatchList(r.Context())) }))
	mux.HandleFunc("POST /api/v1/watch/remove", post(func(r *http.Request, req *struct {
		ID string `json:"id"`
	}) (any, error) {
		ok, err := b.WatchRemove(r.Context(), req.ID)
		return map[string]any{"success": true, "removed": ok}, err
	}))
	mux.HandleFunc("GET /api/v1/watch/poll", get(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		after, err := uintParam(q, "after")
		if err != nil {
			return nil, err
		}
		limit, err := intParam(q, "limit", -1) // the backend caps it
		if err != nil {
			return nil, err
		}
		wait, err := intParam(q, "waitMs", -1)
		if err != nil {
			return nil, err
		}
		return b.WatchPoll(r.Context(), after, limit, time.Duration(wait)*time.Millisecond)
	}))
	mux.HandleFunc("GET /api/v1/watch/events", func(w http.ResponseWriter, r *http.Request) {
		after, err := sse.LastID(r, "after")
		if err != nil {
			writeError(w, 0, fmt.Errorf("%w: after / Last-Event-ID: want a match's seq", protocol.ErrInvalid))
			return
		}
		ServeWatchEvents(w, r, b, after)
	})
}

// ServeWatchEvents streams a's standing-query matches after a Seq to w as
// server-sent events, one "match" event per api.WatchMatch (id: its Seq),
// with a comment line every 15 s while idle, until the client goes away.
func ServeWatchEvents(w http.ResponseWriter, r *http.Request, a api.Watches, after uint64) {
	sse.Serve(w, r, "match", func(m api.WatchMatch) string { return strconv.FormatUint(m.Seq, 10) },
		func(ctx context.Context, fn func(api.WatchMatch) error) error { return a.WatchStream(ctx, after, fn) },
		func(err error) any { return newErrorBody(err) })
}

func uintParam(q url.Values, name string) (uint64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: want a non-negative integer", protocol.ErrInvalid, name, s)
	}
	return v, nil
}

// WatchAdd adds a standing query.
func (c *Client) WatchAdd(ctx context.Context, spec api.WatchSpec) (*api.WatchAdded, error) {
	var out api.WatchAdded
	if err := c.do(ctx, http.MethodPost, "/api/v1/watch/add", spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WatchList lists the standing queries.
func (c *Client) WatchList(ctx context.Context) ([]api.Watch, error) {
	var out []api.Watch
	return out, c.do(ctx, http.MethodGet, "/api/v1/watch/list", nil, &out)
}

// WatchRemove removes a standing query.
func (c *Client) WatchRemove(ctx context.Context, id string) (bool, error) {
	var out struct {
		Removed bool `json:"removed"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/watch/remove", map[string]string{"id": id}, &out)
	return out.Removed, err
}

// WatchPoll returns the matches after a Seq.
func (c *Client) WatchPoll(ctx context.Context, after uint64, limit int, wait time.Duration) (*api.WatchPollResult, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait != 0 {
		q.Set("waitMs", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	var out api.WatchPollResult
	if err := c.do(ctx, http.MethodGet, "/api/v1/watch/poll?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WatchStream reads the daemon's event stream of matches, calling fn with
// each, until ctx ends or fn fails.
func (c *Client) WatchStream(ctx context.Context, after uint64, fn func(api.WatchMatch) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/watch/events?after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", sse.ContentType)
	// A stream outlives the client's timeout for one request.
	resp, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.errorOf(resp, http.MethodGet, "/api/v1/watch/events")
	}
	err = sse.Read(resp.Body, func(e sse.Event) error {
		switch e.Type {
		case "match":
			var m api.WatchMatch
			if err := json.Unmarshal(e.Data, &m); err != nil {
				return fmt.Errorf("api watch events: bad event: %w", err)
			}
			return fn(m)
		case "error":
			var eb ErrorBody
			if json.Unmarshal(e.Data, &eb) == nil && eb.Code != "" {
				return eb.Err()
			}
			return fmt.Errorf("api watch events: %s", e.Data)
		}
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = fmt.Errorf("%w: the daemon ended the stream", protocol.ErrUnavailable)
	}
	return err
}
