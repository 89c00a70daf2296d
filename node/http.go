package node

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Files in the repo that tell the CLI where the daemon's API is.
const (
	// APIFile holds the base URL of the running daemon's HTTP API.
	APIFile = "api"
	// TokenFile holds the bearer token of the control API, mode 0600.
	TokenFile = "api.token"
)

// maxRequestBody caps every HTTP request body.
const maxRequestBody = protocol.MaxRecordSize + 16<<10

// AMPProtocol is the AMP version the REST binding follows.
const AMPProtocol = "AMP/0.1"

func (n *Node) startHTTP(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("node: api address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("node: api address %q: the API serves loopback only (127.0.0.1, ::1 or localhost)", addr)
	}
	if err := n.loadToken(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: api listen %s: %w", addr, err)
	}
	n.apiURL = "http://" + ln.Addr().String()
	n.http = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
	if n.cfg.RepoDir != "" {
		if err := writeFileAtomic(filepath.Join(n.cfg.RepoDir, APIFile), []byte(n.apiURL+"\n"), 0o600); err != nil {
			return fmt.Errorf("node: write api file: %w", err)
		}
	}
	n.log.Info("api listening", "addr", ln.Addr().String())
	return nil
}

// loadToken reads the control API token from the repo, creating it on first
// use. An ephemeral node gets a fresh token.
func (n *Node) loadToken() error {
	if n.cfg.RepoDir == "" {
		n.token = newToken()
		return nil
	}
	path := filepath.Join(n.cfg.RepoDir, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		n.token = strings.TrimSpace(string(b))
		return os.Chmod(path, 0o600)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("node: api token: %w", err)
	}
	n.token = newToken()
	return writeFileAtomic(path, []byte(n.token+"\n"), 0o600)
}

// Token is the control API's bearer token.
func (n *Node) Token() string { return n.token }

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Handler serves the node's HTTP API:
//
//	POST   /amp/store, /amp/search        AMP REST binding (no auth, loopback only)
//	GET    /amp/records/{id}
//	DELETE /amp/records/{id}
//	GET    /amp/records?type=&agent=&project=&limit=&offset=&order=
//	GET    /amp/status
//	GET    /amp/agents/{agent}/status
//	POST   /amp                           any AMP operation by its "operation" field
//	GET    /.well-known/mesh/identity     the self-signed identity document
//	       /api/v1/...                    the control API (bearer token): the
//	                                      same AMP routes under /api/v1/amp/,
//	                                      plus info, publish and export
//
// Every route refuses a non-loopback Host header (DNS rebinding) and browser
// cross-origin requests.
func (n *Node) Handler() http.Handler {
	amp := http.NewServeMux()
	amp.HandleFunc("POST /amp/store", n.handleStore)
	amp.HandleFunc("POST /amp/search", n.handleSearch)
	amp.HandleFunc("GET /amp/records/{id}", n.handleGet)
	amp.HandleFunc("DELETE /amp/records/{id}", n.handleDelete)
	amp.HandleFunc("GET /amp/records", n.handleList)
	amp.HandleFunc("GET /amp/status", n.handleStatus)
	amp.HandleFunc("GET /amp/agents/{agent}/status", n.handleAgentStatus)
	amp.HandleFunc("POST /amp", n.handleOperation)

	ctl := http.NewServeMux()
	ctl.Handle("/api/v1/amp/", http.StripPrefix("/api/v1", amp))
	ctl.Handle("/api/v1/amp", http.StripPrefix("/api/v1", amp))
	ctl.HandleFunc("GET /api/v1/info", n.handleInfo)
	ctl.HandleFunc("POST /api/v1/publish", n.handlePublish)
	ctl.HandleFunc("GET /api/v1/export/{id}", n.handleExport)
	n.controlRoutes(ctl)

	root := http.NewServeMux()
	root.Handle("/amp/", amp)
	root.Handle("/amp", amp)
	root.HandleFunc("GET /.well-known/mesh/identity", n.handleIdentity)
	root.Handle("/api/v1/", n.requireToken(ctl))
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: no route %s %s", protocol.ErrInvalid, r.Method, r.URL.Path))
	})
	return guard(root)
}

// guard enforces loopback Host headers, same-origin browser requests, and the
// request body cap.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("%w: Host %q is not a loopback name; the API answers only localhost, 127.0.0.1 or [::1]", protocol.ErrInvalid, r.Host))
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			writeError(w, http.StatusForbidden, fmt.Errorf("%w: cross-origin browser requests are refused", protocol.ErrInvalid))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || u.Host != r.Host {
				writeError(w, http.StatusForbidden, fmt.Errorf("%w: cross-origin request from %q refused", protocol.ErrInvalid, origin))
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (n *Node) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(n.token)) != 1 {
			writeError(w, http.StatusUnauthorized, fmt.Errorf("%w: the control API needs the bearer token from the repo's %s file", protocol.ErrInvalid, TokenFile))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody is an error answer: AMP's success:false plus MESH's error block.
type errorBody struct {
	Success bool          `json:"success"`
	Error   bool          `json:"error"`
	Code    protocol.Code `json:"code"`
	Message string        `json:"message"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	code := protocol.CodeOf(err)
	if status == 0 {
		status = statusFor(err)
	}
	if status == http.StatusRequestEntityTooLarge {
		code = protocol.CodeTooLarge
	}
	writeJSON(w, status, errorBody{Success: false, Error: true, Code: code, Message: err.Error()})
}

func statusFor(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, protocol.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, protocol.ErrUnknownLesson), errors.Is(err, protocol.ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, protocol.ErrInvalid), errors.Is(err, protocol.ErrInvalidSignature), errors.Is(err, protocol.ErrTimestamp), errors.Is(err, protocol.ErrUnsupportedVersion):
		return http.StatusBadRequest
	case errors.Is(err, protocol.ErrAlreadyRevoked):
		return http.StatusConflict
	case errors.Is(err, protocol.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrOffline), errors.Is(err, errUnreachable):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readBody reads a capped request body and checks it is a JSON object.
func readBody(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: request body over %d bytes", protocol.ErrTooLarge, maxRequestBody)
		}
		return nil, fmt.Errorf("%w: reading body: %v", protocol.ErrInvalid, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: body must be a JSON object", protocol.ErrInvalid)
	}
	return m, nil
}

func checkOperation(m map[string]json.RawMessage, want string) error {
	raw, ok := m["operation"]
	if !ok {
		return nil
	}
	var op string
	if json.Unmarshal(raw, &op) != nil || op != want {
		return fmt.Errorf("%w: operation %s sent to the %s endpoint", protocol.ErrInvalid, raw, want)
	}
	return nil
}

// StoreResponse is the AMP store answer.
type StoreResponse struct {
	Success bool   `json:"success"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

func (n *Node) handleStore(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	n.doStore(w, r, m)
}

func (n *Node) doStore(w http.ResponseWriter, r *http.Request, m map[string]json.RawMessage) {
	if err := checkOperation(m, "store"); err != nil {
		writeError(w, 0, err)
		return
	}
	raw, ok := m["record"]
	if !ok {
		writeError(w, 0, fmt.Errorf("%w: store needs a \"record\" object", protocol.ErrInvalid))
		return
	}
	rec, err := protocol.DecodeLesson(raw)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	id, created, err := n.store.Put(r.Context(), rec)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, StoreResponse{Success: true, ID: id, Created: created})
}

// SearchRequest is the AMP search request, with MESH's extra filters.
type SearchRequest struct {
	Operation  string   `json:"operation,omitempty"`
	Query      string   `json:"query"`
	Type       string   `json:"type,omitempty"`
	Types      []string `json:"types,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Project    string   `json:"project,omitempty"`
	Agent      string   `json:"agent,omitempty"`
	Visibility []string `json:"visibility,omitempty"`
	Since      int64    `json:"since,omitempty"`
	Until      int64    `json:"until,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	MinScore   float64  `json:"min_score,omitempty"`
	// Origin is MESH's: "local" (default: this node's own records, as AMP
	// clients expect), "remote" (lessons received from other nodes) or "all".
	Origin string `json:"origin,omitempty"`
}

// Query converts the request to a store query.
func (s *SearchRequest) storeQuery() store.Query {
	return store.Query{
		Text: s.Query, Type: s.Type, Types: s.Types, Tags: s.Tags, Project: s.Project,
		Agent: s.Agent, Visibility: s.Visibility, Since: s.Since, Until: s.Until,
		Limit: s.Limit, MinScore: s.MinScore, Origin: s.Origin,
	}
}

// SearchResult is one AMP search hit.
type SearchResult struct {
	ID     string           `json:"id"`
	Score  float64          `json:"score"`
	Record *protocol.Lesson `json:"record"`
	// Key and Publisher are set for lessons received from other nodes.
	Key       string `json:"key,omitempty"`
	Publisher string `json:"publisher,omitempty"`
}

// SearchResponse is the AMP search answer.
type SearchResponse struct {
	Success bool           `json:"success"`
	Results []SearchResult `json:"results"`
	Total   int            `json:"total"`
}

func (n *Node) handleSearch(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	n.doSearch(w, r, m)
}

func (n *Node) doSearch(w http.ResponseWriter, r *http.Request, m map[string]json.RawMessage) {
	if err := checkOperation(m, "search"); err != nil {
		writeError(w, 0, err)
		return
	}
	var req SearchRequest
	if err := remarshal(m, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	res, err := n.store.Search(r.Context(), req.storeQuery())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	out := SearchResponse{Success: true, Results: make([]SearchResult, 0, len(res.Hits)), Total: res.Total}
	for _, h := range res.Hits {
		out.Results = append(out.Results, SearchResult{ID: h.ID, Score: h.Score, Record: h.Record, Key: h.Key, Publisher: remotePublisher(h.Publisher, n.id.String())})
	}
	writeJSON(w, http.StatusOK, out)
}

// remotePublisher hides the publisher of this node's own records.
func remotePublisher(publisher, self string) string {
	if publisher == self {
		return ""
	}
	return publisher
}

// remarshal decodes an already-split JSON object into v, naming the field
// that had the wrong type.
func remarshal(m map[string]json.RawMessage, v any) error {
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: field %s: want %s", protocol.ErrInvalid, te.Field, te.Type)
		}
		return fmt.Errorf("%w: %v", protocol.ErrInvalid, err)
	}
	return nil
}

// RecordResponse is the AMP get answer.
type RecordResponse struct {
	Success bool             `json:"success"`
	Record  *protocol.Lesson `json:"record"`
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	n.doGet(w, r, r.PathValue("id"))
}

func (n *Node) doGet(w http.ResponseWriter, r *http.Request, id string) {
	if err := protocol.ValidateID(id); err != nil {
		writeError(w, 0, err)
		return
	}
	rec, err := n.store.Get(r.Context(), id)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, RecordResponse{Success: true, Record: rec})
}

// DeleteResponse is the AMP delete answer.
type DeleteResponse struct {
	Success bool `json:"success"`
	Deleted bool `json:"deleted"`
}

func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) {
	n.doDelete(w, r, r.PathValue("id"))
}

func (n *Node) doDelete(w http.ResponseWriter, r *http.Request, id string) {
	if err := protocol.ValidateID(id); err != nil {
		writeError(w, 0, err)
		return
	}
	deleted, err := n.store.Delete(r.Context(), id)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	if !deleted {
		writeError(w, 0, fmt.Errorf("delete %s: %w", id, protocol.ErrUnknownLesson))
		return
	}
	writeJSON(w, http.StatusOK, DeleteResponse{Success: true, Deleted: true})
}

// ListResponse is the AMP list answer.
type ListResponse struct {
	Success bool               `json:"success"`
	Records []*protocol.Lesson `json:"records"`
	Total   int                `json:"total"`
	HasMore bool               `json:"has_more"`
}

func (n *Node) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := store.ListOptions{
		Type: q.Get("type"), Agent: q.Get("agent"), Project: q.Get("project"),
		Visibility: q.Get("visibility"), Order: q.Get("order"), Tags: q["tag"],
	}
	var err error
	if o.Limit, err = intParam(q, "limit"); err != nil {
		writeError(w, 0, err)
		return
	}
	if o.Offset, err = intParam(q, "offset"); err != nil {
		writeError(w, 0, err)
		return
	}
	n.doList(w, r, o)
}

func (n *Node) doList(w http.ResponseWriter, r *http.Request, o store.ListOptions) {
	res, err := n.store.List(r.Context(), o)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	recs := res.Records
	if recs == nil {
		recs = []*protocol.Lesson{}
	}
	writeJSON(w, http.StatusOK, ListResponse{Success: true, Records: recs, Total: res.Total, HasMore: res.HasMore})
}

func intParam(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %s=%q: want a non-negative integer", protocol.ErrInvalid, name, s)
	}
	return v, nil
}

// StatusResponse is the AMP status answer.
type StatusResponse struct {
	Success      bool           `json:"success"`
	Healthy      bool           `json:"healthy"`
	Version      string         `json:"version"`
	Protocol     string         `json:"protocol"`
	NodeID       string         `json:"node_id"`
	Stats        map[string]int `json:"stats"`
	Capabilities struct {
		Search           string   `json:"search"`
		MaxContentLength int      `json:"max_content_length"`
		SupportedTypes   []string `json:"supported_types"`
	} `json:"capabilities"`
}

// ampStatsKey maps a record type to AMP's stats key: lessons, checkpoints,
// snippets; other types are pluralised the same way.
func ampStatsKey(typ string) string { return typ + "s" }

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := n.Status(r.Context())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, statusResponse(st))
}

// AgentStatusResponse is the agent-status answer.
type AgentStatusResponse struct {
	Success      bool     `json:"success"`
	Agent        string   `json:"agent"`
	Status       string   `json:"status"`
	WorkingOn    string   `json:"working_on,omitempty"`
	Blockers     []string `json:"blockers,omitempty"`
	CheckpointID string   `json:"checkpoint_id,omitempty"`
	UpdatedAt    int64    `json:"updated_at,omitempty"`
}

func (n *Node) handleAgentStatus(w http.ResponseWriter, r *http.Request) {
	n.doAgentStatus(w, r, r.PathValue("agent"))
}

func (n *Node) doAgentStatus(w http.ResponseWriter, r *http.Request, agent string) {
	if agent == "" || len(agent) > protocol.MaxIDLength {
		writeError(w, 0, fmt.Errorf("%w: agent: want 1 to %d bytes", protocol.ErrInvalid, protocol.MaxIDLength))
		return
	}
	st, err := n.store.AgentStatus(r.Context(), agent)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, AgentStatusResponse{
		Success: true, Agent: st.Agent, Status: st.Status, WorkingOn: st.WorkingOn,
		Blockers: st.Blockers, CheckpointID: st.CheckpointID, UpdatedAt: st.UpdatedAt,
	})
}

// handleOperation serves POST /amp with {"operation": ...}, for clients that
// speak AMP as one endpoint.
func (n *Node) handleOperation(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	var op struct {
		Operation string `json:"operation"`
		ID        string `json:"id"`
		Agent     string `json:"agent"`
		Type      string `json:"type"`
		Project   string `json:"project"`
		Limit     int    `json:"limit"`
		Offset    int    `json:"offset"`
		Order     string `json:"order"`
	}
	if err := remarshal(m, &op); err != nil {
		writeError(w, 0, err)
		return
	}
	switch op.Operation {
	case "store":
		n.doStore(w, r, m)
	case "search":
		n.doSearch(w, r, m)
	case "get":
		n.doGet(w, r, op.ID)
	case "delete":
		n.doDelete(w, r, op.ID)
	case "list":
		if op.Limit < 0 || op.Offset < 0 {
			writeError(w, 0, fmt.Errorf("%w: limit and offset must be non-negative", protocol.ErrInvalid))
			return
		}
		n.doList(w, r, store.ListOptions{Type: op.Type, Agent: op.Agent, Project: op.Project, Limit: op.Limit, Offset: op.Offset, Order: op.Order})
	case "status":
		n.handleStatus(w, r)
	case "agent_status":
		n.doAgentStatus(w, r, op.Agent)
	default:
		writeError(w, 0, fmt.Errorf("%w: operation %q: want store, search, get, delete, list, status or agent_status", protocol.ErrInvalid, op.Operation))
	}
}

func (n *Node) handleIdentity(w http.ResponseWriter, r *http.Request) {
	doc, err := n.Identity()
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

func (n *Node) handleInfo(w http.ResponseWriter, r *http.Request) {
	info, err := n.Info(r.Context())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// PublishRequest is the control API's publish request.
type PublishRequest struct {
	ID string `json:"id"`
	PublishOptions
}

func (n *Node) handlePublish(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	var req PublishRequest
	if err := remarshal(m, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	if err := protocol.ValidateID(req.ID); err != nil {
		writeError(w, 0, err)
		return
	}
	sl, err := n.Publish(r.Context(), req.ID, req.PublishOptions)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, sl)
}

func (n *Node) handleExport(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := protocol.ValidateID(id); err != nil {
		writeError(w, 0, err)
		return
	}
	sl, err := n.Export(r.Context(), id)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, sl)
}
