package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Backend is what the HTTP API serves: the node's API and its signed
// identity document. *node.Node implements it. It must be safe for
// concurrent use.
type Backend interface {
	api.API
	// Identity returns a freshly signed identity document.
	Identity() (*protocol.Identity, error)
}

// Handler serves the node's HTTP API:
//
//	POST   /amp/store, /amp/search        AMP REST binding (bearer token unless open)
//	GET    /amp/records/{id}
//	DELETE /amp/records/{id}
//	GET    /amp/records?type=&agent=&project=&limit=&offset=&order=
//	GET    /amp/status
//	GET    /amp/agents/{agent}/status
//	POST   /amp                           any AMP operation by its "operation" field
//	GET    /.well-known/mesh/identity     the self-signed identity document
//	       /api/v1/...                    the control API (bearer token): the
//	                                      same AMP routes under /api/v1/amp/,
//	                                      plus the rest of api.API (see
//	                                      controlRoutes)
//
// The AMP routes need the bearer token as the control API does (other
// users of the machine can reach loopback too); HandlerOpen serves them
// without it. Every route refuses a non-loopback Host header (DNS
// rebinding) and browser cross-origin requests, and caps request bodies. Errors are JSON bodies
// (ErrorBody: success:false, error:true, code, message, and reason for the
// api errors a code does not tell apart) with the HTTP status of the code
// (protocol.HTTPStatus); an unknown route answers 404 and a known one
// asked with another method 405, as JSON too.
func Handler(b Backend, token string) http.Handler { return newHandler(b, token, options{}) }

// HandlerOpen is Handler with the AMP routes (/amp/...) open to every local
// user without the token, as AMP's binding is specified: for a machine with
// one user. The control API still needs the token.
func HandlerOpen(b Backend, token string) http.Handler {
	return newHandler(b, token, options{ampOpen: true})
}

// options are what a Server adds to a Handler.
type options struct {
	ampOpen bool
	metrics http.Handler // GET /metrics, behind the token
	ui      UI           // every other path; POST /api/v1/ui/login
}

func newHandler(b Backend, token string, o options) http.Handler {
	h := &handler{b: b}
	amp := http.NewServeMux()
	amp.HandleFunc("POST /amp/store", h.handleStore)
	amp.HandleFunc("POST /amp/search", h.handleSearch)
	amp.HandleFunc("GET /amp/records/{id}", h.handleGet)
	amp.HandleFunc("DELETE /amp/records/{id}", h.handleDelete)
	amp.HandleFunc("GET /amp/records", h.handleList)
	amp.HandleFunc("GET /amp/status", h.handleStatus)
	amp.HandleFunc("GET /amp/agents/{agent}/status", h.handleAgentStatus)
	amp.HandleFunc("POST /amp", h.handleOperation)
	amp.HandleFunc("/", noRoute(amp))

	ctl := http.NewServeMux()
	ctl.Handle("/api/v1/amp/", http.StripPrefix("/api/v1", amp))
	ctl.Handle("/api/v1/amp", http.StripPrefix("/api/v1", amp))
	h.controlRoutes(ctl)
	if o.ui != nil {
		ctl.HandleFunc("POST /api/v1/ui/login", func(w http.ResponseWriter, r *http.Request) {
			path, err := o.ui.NewLogin()
			writeResult(w, map[string]any{"success": true, "url": "http://" + r.Host + path}, err)
		})
	} else {
		ctl.HandleFunc("POST /api/v1/ui/login", func(w http.ResponseWriter, r *http.Request) {
			writeResult(w, nil, fmt.Errorf("%w: this daemon serves no web UI (it was started with --no-ui)", protocol.ErrNotFound))
		})
	}
	ctl.HandleFunc("/", noRoute(ctl))

	root := http.NewServeMux()
	var rootAMP http.Handler = amp
	if !o.ampOpen {
		rootAMP = requireToken(token, amp)
	}
	root.Handle("/amp/", rootAMP)
	root.Handle("/amp", rootAMP)
	root.HandleFunc("GET /.well-known/mesh/identity", func(w http.ResponseWriter, r *http.Request) {
		doc, err := b.Identity()
		writeResult(w, doc, err)
	})
	root.Handle("/api/v1/", requireToken(token, ctl))
	if o.metrics != nil {
		root.Handle("GET /metrics", requireToken(token, o.metrics))
	}
	if o.ui != nil {
		// A request with a bearer token is an API client's (the UI's pages
		// never send one): a path no route takes gets the JSON 404, not
		// the UI's page.
		apiMiss := noRoute(root)
		root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				apiMiss(w, r)
				return
			}
			o.ui.ServeHTTP(w, r)
		})
	} else {
		root.HandleFunc("/", noRoute(root))
	}
	return guard(root)
}

// noRoute answers what no route of mux takes, as every other error is
// answered (a JSON error body), instead of ServeMux's plain-text pages: 405
// with an Allow header if the path is served for other methods, else 404.
// It is mux's catch-all "/" route.
func noRoute(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			probe := *r
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s %s: use %s", protocol.ErrInvalid, r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: no route %s %s", protocol.ErrInvalid, r.Method, r.URL.Path))
	}
}

type handler struct {
	b Backend
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
		r.Body = http.MaxBytesReader(w, r.Body, bodyCap(r.URL.Path))
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

func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			writeError(w, 0, fmt.Errorf("%w: this API needs the bearer token from the repo's %s file (Authorization: Bearer <token>); mesh daemon --api-open serves /amp/ without it", protocol.ErrUnauthorized, TokenFile))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ---- the AMP REST binding ---------------------------------------------------

func (h *handler) handleStore(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	h.doStore(w, r, m)
}

func (h *handler) doStore(w http.ResponseWriter, r *http.Request, m map[string]json.RawMessage) {
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
	id, created, err := h.b.Put(r.Context(), rec)
	writeResult(w, &api.StoreResponse{Success: true, ID: id, Created: created}, err)
}

func (h *handler) handleSearch(w http.ResponseWriter, r *http.Request) {
	m, err := readBody(r)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	h.doSearch(w, r, m)
}

func (h *handler) doSearch(w http.ResponseWriter, r *http.Request, m map[string]json.RawMessage) {
	if err := checkOperation(m, "search"); err != nil {
		writeError(w, 0, err)
		return
	}
	var req api.SearchRequest
	if err := remarshal(m, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	q, err := req.StoreQuery()
	if err != nil {
		writeError(w, 0, err)
		return
	}
	res, err := h.b.Search(r.Context(), q)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NewSearchResponse(res))
}

func (h *handler) handleGet(w http.ResponseWriter, r *http.Request) {
	h.doGet(w, r, r.PathValue("id"))
}

func (h *handler) doGet(w http.ResponseWriter, r *http.Request, id string) {
	if err := api.CheckRef(id); err != nil {
		writeError(w, 0, err)
		return
	}
	rec, err := h.b.Get(r.Context(), id)
	writeResult(w, &api.RecordResponse{Success: true, Record: rec}, err)
}

func (h *handler) handleDelete(w http.ResponseWriter, r *http.Request) {
	h.doDelete(w, r, r.PathValue("id"))
}

func (h *handler) doDelete(w http.ResponseWriter, r *http.Request, id string) {
	if err := protocol.ValidateID(id); err != nil {
		writeError(w, 0, err)
		return
	}
	deleted, err := h.b.Delete(r.Context(), id)
	if err == nil && !deleted {
		err = fmt.Errorf("delete %s: %w", id, protocol.ErrUnknownLesson)
	}
	writeResult(w, &api.DeleteResponse{Success: true, Deleted: true}, err)
}

func (h *handler) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := store.ListOptions{
		Type: q.Get("type"), Agent: q.Get("agent"), Project: q.Get("project"),
		Visibility: q.Get("visibility"), Order: q.Get("order"), Tags: q["tag"], Origin: q.Get("origin"),
		Publisher: q.Get("publisher"),
	}
	var err error
	if o.Limit, err = intParam(q, "limit", -1); err != nil {
		writeError(w, 0, err)
		return
	}
	if o.Offset, err = intParam(q, "offset", -1); err != nil {
		writeError(w, 0, err)
		return
	}
	h.doList(w, r, o)
}

func (h *handler) doList(w http.ResponseWriter, r *http.Request, o store.ListOptions) {
	res, err := h.b.List(r.Context(), o)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NewListResponse(res))
}

// intParam reads a non-negative integer query parameter (at most max, if
// max >= 0); 0 if absent.
func intParam(q url.Values, name string, max int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || (max >= 0 && v > max) {
		if max >= 0 {
			return 0, fmt.Errorf("%w: %s=%q: want 0 to %d", protocol.ErrInvalid, name, s, max)
		}
		return 0, fmt.Errorf("%w: %s=%q: want a non-negative integer", protocol.ErrInvalid, name, s)
	}
	return v, nil
}

func (h *handler) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := h.b.Status(r.Context())
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NewStatusResponse(st))
}

func (h *handler) handleAgentStatus(w http.ResponseWriter, r *http.Request) {
	h.doAgentStatus(w, r, r.PathValue("agent"))
}

func (h *handler) doAgentStatus(w http.ResponseWriter, r *http.Request, agent string) {
	if err := api.CheckAgent(agent); err != nil {
		writeError(w, 0, err)
		return
	}
	st, err := h.b.AgentStatus(r.Context(), agent)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	writeJSON(w, http.StatusOK, api.NewAgentStatusResponse(st))
}

// handleOperation serves POST /amp with {"operation": ...}, for clients that
// speak AMP as one endpoint.
func (h *handler) handleOperation(w http.ResponseWriter, r *http.Request) {
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
		h.doStore(w, r, m)
	case "search":
		h.doSearch(w, r, m)
	case "get":
		h.doGet(w, r, op.ID)
	case "delete":
		h.doDelete(w, r, op.ID)
	case "list":
		if op.Limit < 0 || op.Offset < 0 {
			writeError(w, 0, fmt.Errorf("%w: limit and offset must be non-negative", protocol.ErrInvalid))
			return
		}
		h.doList(w, r, store.ListOptions{Type: op.Type, Agent: op.Agent, Project: op.Project, Limit: op.Limit, Offset: op.Offset, Order: op.Order})
	case "status":
		h.handleStatus(w, r)
	case "agent_status":
		h.doAgentStatus(w, r, op.Agent)
	default:
		writeError(w, 0, fmt.Errorf("%w: operation %q: want store, search, get, delete, list, status or agent_status", protocol.ErrInvalid, op.Operation))
	}
}
