package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// keyRoutes are the control API's routes of encrypted lessons and keys
// (api.Keys), each one method:
//
//	POST /api/v1/publish/encrypted   PublishEncryptedRequest -> EncryptedPublication
//	GET  /api/v1/export/encrypted/{id}                       -> EncryptedLesson
//	GET  /api/v1/read/{key}                                   -> ReadResult (the plaintext, over loopback)
//	POST /api/v1/revoke/hard         RevokeRequest            -> HardRevokeResult
//	GET  /api/v1/keys                                         -> [KeyInfo]
//	POST /api/v1/keys/policy         KeyPolicyRequest         -> KeyInfo
//	POST /api/v1/keys/rotate         {"id"}                   -> EncryptedPublication
//	POST /api/v1/keys/status         EncryptedLesson          -> KeyStatus
func (h *handler) keyRoutes(mux *http.ServeMux) {
	b := h.b
	mux.HandleFunc("POST /api/v1/publish/encrypted", post(func(r *http.Request, req *api.PublishEncryptedRequest) (any, error) {
		return b.PublishEncrypted(r.Context(), req.ID, req.EncryptOptions)
	}))
	mux.HandleFunc("GET /api/v1/export/encrypted/{id}", get(func(r *http.Request) (any, error) {
		return b.ExportEncrypted(r.Context(), r.PathValue("id"))
	}))
	mux.HandleFunc("GET /api/v1/read/{key}", get(func(r *http.Request) (any, error) { return b.ReadLesson(r.Context(), r.PathValue("key")) }))
	mux.HandleFunc("POST /api/v1/revoke/hard", post(func(r *http.Request, req *api.RevokeRequest) (any, error) {
		return b.RevokeHard(r.Context(), req.ID, req.Reason)
	}))
	mux.HandleFunc("GET /api/v1/keys", get(func(r *http.Request) (any, error) { return nonNilE(b.KeyList(r.Context())) }))
	mux.HandleFunc("POST /api/v1/keys/policy", post(func(r *http.Request, req *api.KeyPolicyRequest) (any, error) {
		return b.KeyPolicySet(r.Context(), req.ID, req.PolicyOptions)
	}))
	mux.HandleFunc("POST /api/v1/keys/rotate", post(func(r *http.Request, req *struct {
		ID string `json:"id"`
	}) (any, error) {
		return b.KeyRotate(r.Context(), req.ID)
	}))
	mux.HandleFunc("POST /api/v1/keys/status", func(w http.ResponseWriter, r *http.Request) {
		data, err := readAll(r)
		if err != nil {
			writeError(w, 0, err)
			return
		}
		el, err := protocol.DecodeEncryptedLesson(data)
		if err != nil {
			writeError(w, 0, err)
			return
		}
		st, err := b.KeyStatus(r.Context(), el)
		writeResult(w, st, err)
	})
}

// The Client's side of the key routes.

// PublishEncrypted publishes a record encrypted on the daemon.
func (c *Client) PublishEncrypted(ctx context.Context, id string, opts api.EncryptOptions) (*api.EncryptedPublication, error) {
	var out api.EncryptedPublication
	if err := c.do(ctx, http.MethodPost, "/api/v1/publish/encrypted", api.PublishEncryptedRequest{ID: id, EncryptOptions: opts}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportEncrypted returns the EncryptedLesson of a record the daemon
// published encrypted, decoded strictly.
func (c *Client) ExportEncrypted(ctx context.Context, id string) (*protocol.EncryptedLesson, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/export/encrypted/"+url.PathEscape(id), nil, &raw); err != nil {
		return nil, err
	}
	return protocol.DecodeEncryptedLesson(raw)
}

// ReadLesson reads (and decrypts, if allowed) a lesson on the daemon.
func (c *Client) ReadLesson(ctx context.Context, key string) (*api.ReadResult, error) {
	if _, _, err := protocol.ParseKey(key); err != nil {
		return nil, err // a key that is no key has no path to send it on
	}
	var out api.ReadResult
	if err := c.do(ctx, http.MethodGet, "/api/v1/read/"+url.PathEscape(key), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeHard revokes an encrypted publication on the daemon and deletes
// its keys.
func (c *Client) RevokeHard(ctx context.Context, id, reason string) (*api.HardRevokeResult, error) {
	var out api.HardRevokeResult
	if err := c.do(ctx, http.MethodPost, "/api/v1/revoke/hard", api.RevokeRequest{ID: id, Reason: reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyList lists the daemon's keys.
func (c *Client) KeyList(ctx context.Context) ([]api.KeyInfo, error) {
	var out []api.KeyInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/keys", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// KeyPolicySet replaces the policy of an encrypted publication's key.
func (c *Client) KeyPolicySet(ctx context.Context, id string, opts api.PolicyOptions) (*api.KeyInfo, error) {
	var out api.KeyInfo
	if err := c.do(ctx, http.MethodPost, "/api/v1/keys/policy", api.KeyPolicyRequest{ID: id, PolicyOptions: opts}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyRotate re-encrypts a publication under a new key on the daemon.
func (c *Client) KeyRotate(ctx context.Context, id string) (*api.EncryptedPublication, error) {
	var out api.EncryptedPublication
	if err := c.do(ctx, http.MethodPost, "/api/v1/keys/rotate", map[string]string{"id": id}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyStatus asks the daemon whether an encrypted lesson's key is still
// available to it.
func (c *Client) KeyStatus(ctx context.Context, el *protocol.EncryptedLesson) (*api.KeyStatus, error) {
	if el == nil {
		return nil, protocol.ErrInvalid
	}
	body, err := el.Encode()
	if err != nil {
		return nil, err
	}
	var out api.KeyStatus
	if err := c.do(ctx, http.MethodPost, "/api/v1/keys/status", rawBody(body), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
