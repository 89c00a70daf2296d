package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/trust"
)

// controlRoutes are the control API's routes beside the AMP ones (bearer
// token). Each is one method of api.API, and adds nothing to it: what a
// request carries goes to the backend as it is, to be checked there, so
// that a Client gets the answer, and the error, the node itself gives.
//
//	GET  /api/v1/info                          -> Info
//	GET  /api/v1/status                        -> Status (with Network)
//	POST /api/v1/publish     PublishRequest    -> SignedLesson
//	GET  /api/v1/export/{id}                   -> SignedLesson
//	POST /api/v1/revoke      RevokeRequest     -> Revocation
//	POST /api/v1/follow      {"target"}        topic or node ID
//	POST /api/v1/unfollow    {"target"}
//	GET  /api/v1/following                     -> FollowingResponse
//	POST /api/v1/connect     {"addr"}          -> {"peer"}
//	GET  /api/v1/peers                         -> [PeerInfo]
//	POST /api/v1/sync                          -> NDJSON SyncProgress lines, an ErrorBody line last if a peer failed
//	POST /api/v1/search      FedSearchRequest  -> FedSearchResponse
//	POST /api/v1/trust/set   {"nodeId","level","note"}
//	POST /api/v1/trust/remove {"nodeId"}
//	GET  /api/v1/trust/list                    -> [TrustEntry]
//	GET  /api/v1/trust/path/{id}               -> TrustPathInfo
//	GET  /api/v1/trust/export                  -> the export
//	POST /api/v1/trust/import the export       -> {"added"}
//	GET  /api/v1/trust/referrals               -> [Referral]
//	GET  /api/v1/trust/pending                 -> [PendingPublisher]
//	GET  /api/v1/verify/{key}                  -> VerifyReport
//	GET  /api/v1/network                       -> NetworkStatus
//	GET  /api/v1/dht                           -> DHTStatus
//	GET  /api/v1/dht/nodes?topic=T&limit=N     -> [NodeInfo]
//	GET  /api/v1/dht/nodes/{nodeId}            -> NodeRecord
//	GET  /api/v1/dht/directories?limit=N       -> [NodeInfo]
//	GET  /api/v1/dht/find/{nodeId}             -> NodeInfo
//	POST /api/v1/directory/add    {"target"}   -> DirectoryEntry
//	GET  /api/v1/directory/list                -> [DirectoryEntry]
//	POST /api/v1/directory/remove {"target"}   -> {"removed"}
//	POST /api/v1/directory/search DirectorySearchRequest -> DirectorySearchResult
//	     /api/v1/publish/encrypted, /export/encrypted/{id}, /read/{key},
//	     /revoke/hard, /keys...    encrypted lessons and keys (keyRoutes)
func (h *handler) controlRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("GET /api/v1/info", get(func(r *http.Request) (any, error) { return b.Info(r.Context()) }))
	mux.HandleFunc("GET /api/v1/status", get(func(r *http.Request) (any, error) { return b.Status(r.Context()) }))
	mux.HandleFunc("POST /api/v1/publish", post(func(r *http.Request, req *api.PublishRequest) (any, error) {
		return b.Publish(r.Context(), req.ID, req.PublishOptions)
	}))
	mux.HandleFunc("GET /api/v1/export/{id}", get(func(r *http.Request) (any, error) { return b.Export(r.Context(), r.PathValue("id")) }))
	mux.HandleFunc("POST /api/v1/revoke", post(func(r *http.Request, req *api.RevokeRequest) (any, error) {
		return b.Revoke(r.Context(), req.ID, req.Reason)
	}))
	mux.HandleFunc("POST /api/v1/follow", post(func(r *http.Request, req *targetRequest) (any, error) {
		return nil, b.Follow(r.Context(), req.Target)
	}))
	mux.HandleFunc("POST /api/v1/unfollow", post(func(r *http.Request, req *targetRequest) (any, error) {
		return nil, b.Unfollow(r.Context(), req.Target)
	}))
	mux.HandleFunc("GET /api/v1/following", get(func(r *http.Request) (any, error) {
		topics, feeds, err := b.Following(r.Context())
		return api.FollowingResponse{Topics: nonNil(topics), Feeds: nonNil(feeds)}, err
	}))
	mux.HandleFunc("POST /api/v1/connect", post(func(r *http.Request, req *struct {
		Addr string `json:"addr"`
	}) (any, error) {
		p, err := b.Connect(r.Context(), req.Addr)
		return map[string]any{"success": true, "peer": p.String()}, err
	}))
	mux.HandleFunc("GET /api/v1/peers", get(func(r *http.Request) (any, error) { return nonNilE(b.Peers(r.Context())) }))
	mux.HandleFunc("POST /api/v1/sync", h.handleSync)
	mux.HandleFunc("POST /api/v1/search", post(func(r *http.Request, req *api.FedSearchRequest) (any, error) {
		return b.SearchNetwork(r.Context(), *req)
	}))
	h.trustRoutes(mux)
	mux.HandleFunc("GET /api/v1/network", get(func(r *http.Request) (any, error) { return b.Network(r.Context()) }))
	h.dhtRoutes(mux)
	h.directoryRoutes(mux)
	h.keyRoutes(mux)
	h.watchRoutes(mux)
	h.sensorRoutes(mux)
}

// get is a route that answers what fn returns.
func get(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		writeResult(w, v, err)
	}
}

// post is a route that decodes its JSON body into a Req and answers what
// fn returns for it.
func post[Req any](fn func(r *http.Request, req *Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		v, err := fn(r, &req)
		writeResult(w, v, err)
	}
}

type targetRequest struct {
	Target string `json:"target"`
}

// handleSync syncs with every connected peer, streaming one SyncProgress
// JSON line per page so the CLI can show progress. If any peer failed, the
// last line is an ErrorBody (error true), with the error that joins every
// peer's failure, as Sync returns it.
func (h *handler) handleSync(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	err := h.b.Sync(r.Context(), func(p api.SyncProgress) {
		_ = enc.Encode(p)
		if fl != nil {
			fl.Flush()
		}
	})
	if err != nil {
		_ = enc.Encode(newErrorBody(err))
	}
}

func (h *handler) trustRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/trust/set", post(func(r *http.Request, req *struct {
		NodeID string      `json:"nodeId"`
		Level  trust.Level `json:"level"`
		Note   string      `json:"note"`
	}) (any, error) {
		return nil, b.TrustSet(r.Context(), req.NodeID, req.Level, req.Note)
	}))
	mux.HandleFunc("POST /api/v1/trust/remove", post(func(r *http.Request, req *struct {
		NodeID string `json:"nodeId"`
	}) (any, error) {
		return nil, b.TrustRemove(r.Context(), req.NodeID)
	}))
	mux.HandleFunc("GET /api/v1/trust/list", get(func(r *http.Request) (any, error) { return nonNilE(b.TrustList(r.Context())) }))
	mux.HandleFunc("GET /api/v1/trust/path/{id}", get(func(r *http.Request) (any, error) { return b.TrustPath(r.Context(), r.PathValue("id")) }))
	mux.HandleFunc("GET /api/v1/trust/export", func(w http.ResponseWriter, r *http.Request) {
		data, err := b.TrustExport(r.Context())
		if err != nil {
			writeError(w, 0, err)
			return
		}
		writeRaw(w, data) // the node's bytes: mesh trust export saves them as they are
	})
	mux.HandleFunc("POST /api/v1/trust/import", func(w http.ResponseWriter, r *http.Request) {
		data, err := readAll(r) // the backend reads the export itself
		if err != nil {
			writeError(w, 0, err)
			return
		}
		added, err := b.TrustImport(r.Context(), data)
		writeResult(w, map[string]int{"added": added}, err)
	})
	mux.HandleFunc("GET /api/v1/trust/referrals", get(func(r *http.Request) (any, error) { return nonNilE(b.Referrals(r.Context())) }))
	mux.HandleFunc("GET /api/v1/trust/pending", get(func(r *http.Request) (any, error) { return nonNilE(b.TrustPending(r.Context())) }))
	mux.HandleFunc("GET /api/v1/verify/{key}", get(func(r *http.Request) (any, error) { return b.VerifyKey(r.Context(), r.PathValue("key")) }))
}

func (h *handler) dhtRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("GET /api/v1/dht", get(func(r *http.Request) (any, error) { return b.DHTStatus(r.Context()) }))
	mux.HandleFunc("GET /api/v1/dht/nodes", get(func(r *http.Request) (any, error) {
		limit, err := intParam(r.URL.Query(), "limit", -1) // the backend caps it
		if err != nil {
			return nil, err
		}
		return nonNilE(b.TopicNodes(r.Context(), r.URL.Query().Get("topic"), limit))
	}))
	mux.HandleFunc("GET /api/v1/dht/nodes/{nodeId}", get(func(r *http.Request) (any, error) { return b.NodeRecord(r.Context(), r.PathValue("nodeId")) }))
	mux.HandleFunc("GET /api/v1/dht/directories", get(func(r *http.Request) (any, error) {
		limit, err := intParam(r.URL.Query(), "limit", -1) // the backend caps it
		if err != nil {
			return nil, err
		}
		return nonNilE(b.Directories(r.Context(), limit))
	}))
	mux.HandleFunc("GET /api/v1/dht/find/{nodeId}", get(func(r *http.Request) (any, error) { return b.FindNode(r.Context(), r.PathValue("nodeId")) }))
}

func (h *handler) directoryRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/directory/add", post(func(r *http.Request, req *targetRequest) (any, error) {
		return b.DirectoryAdd(r.Context(), req.Target)
	}))
	mux.HandleFunc("GET /api/v1/directory/list", get(func(r *http.Request) (any, error) { return nonNilE(b.DirectoryList(r.Context())) }))
	mux.HandleFunc("POST /api/v1/directory/remove", post(func(r *http.Request, req *targetRequest) (any, error) {
		ok, err := b.DirectoryRemove(r.Context(), req.Target)
		return map[string]any{"success": true, "removed": ok}, err
	}))
	mux.HandleFunc("POST /api/v1/directory/search", post(func(r *http.Request, req *api.DirectorySearchRequest) (any, error) {
		return b.DirectorySearch(r.Context(), *req)
	}))
}

// nonNilE is nonNil for a result with its error.
func nonNilE[T any](s []T, err error) ([]T, error) { return nonNil(s), err }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
