package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/protocol"
)

// Federation routes of the control API (bearer token):
//
//	POST /api/v1/revoke     {"id","reason"}          -> Revocation
//	POST /api/v1/follow     {"target"}               topic or node ID
//	POST /api/v1/unfollow   {"target"}
//	GET  /api/v1/following                           -> {"topics","feeds"}
//	POST /api/v1/connect    {"addr"}                 -> {"peer"}
//	GET  /api/v1/peers                               -> [PeerInfo]
//	POST /api/v1/sync                                -> NDJSON SyncProgress lines
func (n *Node) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/revoke", n.handleRevoke)
	mux.HandleFunc("POST /api/v1/follow", func(w http.ResponseWriter, r *http.Request) { n.handleFollow(w, r, true) })
	mux.HandleFunc("POST /api/v1/unfollow", func(w http.ResponseWriter, r *http.Request) { n.handleFollow(w, r, false) })
	mux.HandleFunc("GET /api/v1/following", n.handleFollowing)
	mux.HandleFunc("POST /api/v1/connect", n.handleConnect)
	mux.HandleFunc("GET /api/v1/peers", n.handlePeers)
	mux.HandleFunc("POST /api/v1/sync", n.handleSyncAll)
	n.trustRoutes(mux)
	n.natRoutes(mux)
	n.dhtRoutes(mux)
	n.directoryRoutes(mux)
	mux.HandleFunc("POST /api/v1/search", n.handleFedSearch)
}

// RevokeRequest is the control API's revoke request.
type RevokeRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

func (n *Node) handleRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	if err := protocol.ValidateID(req.ID); err != nil {
		writeError(w, 0, err)
		return
	}
	rev, err := n.Revoke(r.Context(), req.ID, req.Reason)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, rev)
}

type followRequest struct {
	Target string `json:"target"`
}

func (n *Node) handleFollow(w http.ResponseWriter, r *http.Request, add bool) {
	var req followRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	var err error
	if add {
		err = n.Follow(r.Context(), req.Target)
	} else {
		err = n.Unfollow(r.Context(), req.Target)
	}
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// FollowingResponse lists what a node follows.
type FollowingResponse struct {
	Topics []string `json:"topics"`
	Feeds  []string `json:"feeds"`
}

func (n *Node) handleFollowing(w http.ResponseWriter, r *http.Request) {
	topics, feeds, err := n.Following(r.Context())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, FollowingResponse{Topics: nonNilStrings(topics), Feeds: nonNilStrings(feeds)})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type connectRequest struct {
	Addr string `json:"addr"`
}

func (n *Node) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req connectRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	p, err := n.Connect(r.Context(), req.Addr)
	if err != nil {
		if !errors.Is(err, protocol.ErrInvalid) {
			err = fmt.Errorf("%w: %v", errUnreachable, err)
		}
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "peer": p.String()})
}

// errUnreachable marks a peer that could not be dialled (502).
var errUnreachable = errors.New("peer unreachable")

func (n *Node) handlePeers(w http.ResponseWriter, r *http.Request) {
	ps, err := n.Peers(r.Context())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	if ps == nil {
		ps = []PeerInfo{}
	}
	writeJSON(w, http.StatusOK, ps)
}

// handleSyncAll syncs with every connected peer, streaming one SyncProgress
// JSON line per page so the CLI can show progress.
func (n *Node) handleSyncAll(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	_ = n.Sync(r.Context(), func(p SyncProgress) {
		_ = enc.Encode(p)
		if fl != nil {
			fl.Flush()
		}
	})
}

// Sync runs a catch-up sync with every connected peer, one after another.
func (n *Node) Sync(ctx context.Context, progress func(SyncProgress)) error {
	if n.host == nil {
		return ErrOffline
	}
	var errs []error
	for _, p := range n.host.Network().Peers() {
		if ok, _ := n.host.Peerstore().SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolSync)); len(ok) == 0 {
			continue
		}
		if _, err := n.SyncWith(ctx, p, progress); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decodeBody reads a capped JSON object body into v.
func decodeBody(r *http.Request, v any) error {
	m, err := readBody(r)
	if err != nil {
		return err
	}
	return remarshal(m, v)
}
