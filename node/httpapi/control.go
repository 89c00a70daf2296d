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
func (h *handler) controlRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("GET /api/v1/info", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Info(r.Context())
		writeResult(w, v, err)
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Status(r.Context())
		writeResult(w, v, err)
	})
	mux.HandleFunc("POST /api/v1/publish", func(w http.ResponseWriter, r *http.Request) {
		var req api.PublishRequest
		if !decode(w, r, &req) {
			return
		}
		v, err := b.Publish(r.Context(), req.ID, req.PublishOptions)
		writeResult(w, v, err)
	})
	mux.HandleFunc("GET /api/v1/export/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Export(r.Context(), r.PathValue("id"))
		writeResult(w, v, err)
	})
	mux.HandleFunc("POST /api/v1/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req api.RevokeRequest
		if !decode(w, r, &req) {
			return
		}
		v, err := b.Revoke(r.Context(), req.ID, req.Reason)
		writeResult(w, v, err)
	})
	mux.HandleFunc("POST /api/v1/follow", func(w http.ResponseWriter, r *http.Request) {
		var req targetRequest
		if decode(w, r, &req) {
			writeResult(w, nil, b.Follow(r.Context(), req.Target))
		}
	})
	mux.HandleFunc("POST /api/v1/unfollow", func(w http.ResponseWriter, r *http.Request) {
		var req targetRequest
		if decode(w, r, &req) {
			writeResult(w, nil, b.Unfollow(r.Context(), req.Target))
		}
	})
	mux.HandleFunc("GET /api/v1/following", func(w http.ResponseWriter, r *http.Request) {
		topics, feeds, err := b.Following(r.Context())
		writeResult(w, api.FollowingResponse{Topics: nonNil(topics), Feeds: nonNil(feeds)}, err)
	})
	mux.HandleFunc("POST /api/v1/connect", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Addr string `json:"addr"`
		}
		if !decode(w, r, &req) {
			return
		}
		p, err := b.Connect(r.Context(), req.Addr)
		writeResult(w, map[string]any{"success": true, "peer": p.String()}, err)
	})
	mux.HandleFunc("GET /api/v1/peers", func(w http.ResponseWriter, r *http.Request) {
		ps, err := b.Peers(r.Context())
		writeResult(w, nonNil(ps), err)
	})
	mux.HandleFunc("POST /api/v1/sync", h.handleSync)
	mux.HandleFunc("POST /api/v1/search", func(w http.ResponseWriter, r *http.Request) {
		var req api.FedSearchRequest
		if !decode(w, r, &req) {
			return
		}
		v, err := b.SearchNetwork(r.Context(), req)
		writeResult(w, v, err)
	})
	h.trustRoutes(mux)
	mux.HandleFunc("GET /api/v1/network", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.Network(r.Context())
		writeResult(w, v, err)
	})
	h.dhtRoutes(mux)
	h.directoryRoutes(mux)
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
	mux.HandleFunc("POST /api/v1/trust/set", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			NodeID string      `json:"nodeId"`
			Level  trust.Level `json:"level"`
			Note   string      `json:"note"`
		}
		if decode(w, r, &req) {
			writeResult(w, nil, b.TrustSet(r.Context(), req.NodeID, req.Level, req.Note))
		}
	})
	mux.HandleFunc("POST /api/v1/trust/remove", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			NodeID string `json:"nodeId"`
		}
		if decode(w, r, &req) {
			writeResult(w, nil, b.TrustRemove(r.Context(), req.NodeID))
		}
	})
	mux.HandleFunc("GET /api/v1/trust/list", func(w http.ResponseWriter, r *http.Request) {
		l, err := b.TrustList(r.Context())
		writeResult(w, nonNil(l), err)
	})
	mux.HandleFunc("GET /api/v1/trust/path/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, err := b.TrustPath(r.Context(), r.PathValue("id"))
		writeResult(w, p, err)
	})
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
	mux.HandleFunc("GET /api/v1/trust/referrals", func(w http.ResponseWriter, r *http.Request) {
		rs, err := b.Referrals(r.Context())
		writeResult(w, nonNil(rs), err)
	})
	mux.HandleFunc("GET /api/v1/verify/{key}", func(w http.ResponseWriter, r *http.Request) {
		rep, err := b.VerifyKey(r.Context(), r.PathValue("key"))
		writeResult(w, rep, err)
	})
}

func (h *handler) dhtRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("GET /api/v1/dht", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.DHTStatus(r.Context())
		writeResult(w, st, err)
	})
	mux.HandleFunc("GET /api/v1/dht/nodes", func(w http.ResponseWriter, r *http.Request) {
		limit, err := intParam(r.URL.Query(), "limit", -1) // the backend caps it
		if err != nil {
			writeError(w, 0, err)
			return
		}
		nodes, err := b.TopicNodes(r.Context(), r.URL.Query().Get("topic"), limit)
		writeResult(w, nonNil(nodes), err)
	})
	mux.HandleFunc("GET /api/v1/dht/nodes/{nodeId}", func(w http.ResponseWriter, r *http.Request) {
		rec, err := b.NodeRecord(r.Context(), r.PathValue("nodeId"))
		writeResult(w, rec, err)
	})
	mux.HandleFunc("GET /api/v1/dht/directories", func(w http.ResponseWriter, r *http.Request) {
		limit, err := intParam(r.URL.Query(), "limit", -1) // the backend caps it
		if err != nil {
			writeError(w, 0, err)
			return
		}
		nodes, err := b.Directories(r.Context(), limit)
		writeResult(w, nonNil(nodes), err)
	})
	mux.HandleFunc("GET /api/v1/dht/find/{nodeId}", func(w http.ResponseWriter, r *http.Request) {
		info, err := b.FindNode(r.Context(), r.PathValue("nodeId"))
		writeResult(w, info, err)
	})
}

func (h *handler) directoryRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/directory/add", func(w http.ResponseWriter, r *http.Request) {
		var req targetRequest
		if !decode(w, r, &req) {
			return
		}
		e, err := b.DirectoryAdd(r.Context(), req.Target)
		writeResult(w, e, err)
	})
	mux.HandleFunc("GET /api/v1/directory/list", func(w http.ResponseWriter, r *http.Request) {
		list, err := b.DirectoryList(r.Context())
		writeResult(w, nonNil(list), err)
	})
	mux.HandleFunc("POST /api/v1/directory/remove", func(w http.ResponseWriter, r *http.Request) {
		var req targetRequest
		if !decode(w, r, &req) {
			return
		}
		ok, err := b.DirectoryRemove(r.Context(), req.Target)
		writeResult(w, map[string]any{"success": true, "removed": ok}, err)
	})
	mux.HandleFunc("POST /api/v1/directory/search", func(w http.ResponseWriter, r *http.Request) {
		var req api.DirectorySearchRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := b.DirectorySearch(r.Context(), req)
		writeResult(w, res, err)
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
