package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/meshprotocol/mesh/internal/ratelimit"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Public API tuning.
const (
	// DefaultPublicRate is the public API's default requests per second
	// per client address.
	DefaultPublicRate = 20
	// publicMaxInFlight bounds the requests served at once; more are
	// answered 429 RATE_LIMITED.
	publicMaxInFlight = 256
	// publicMaxClients bounds the per-client buckets kept.
	publicMaxClients = 16384
	// publicTimeout bounds the work of one request.
	publicTimeout = 10 * time.Second
	// publicAnswerBudget bounds the encoded lessons of one search answer:
	// past it the results stop and the answer says more:true.
	publicAnswerBudget = 1 << 20
	// publicCORSMaxAge is how long a browser may cache a preflight, in s.
	publicCORSMaxAge = "600"
	// publicMaxConns bounds the connections the public API holds at once,
	// and publicMaxConnsPerClient those of one client (an IPv4 address or
	// an IPv6 /64, see clientKey): a connection over either is closed as
	// soon as it is accepted, so one address cannot hold them all.
	publicMaxConns          = 4096
	publicMaxConnsPerClient = 32
	// publicMaxBodiesPerClient bounds the request bodies of one client
	// being read at once: a client that starts bodies it never finishes
	// is refused (429) past it. A request takes one of publicMaxInFlight
	// slots only once its body is read.
	publicMaxBodiesPerClient = 4
	// publicHeaderTimeout bounds reading a request's headers, and
	// publicBodyTimeout its body (at most MaxDirectoryRequestSize bytes:
	// an honest client sends it at once).
	publicHeaderTimeout = 3 * time.Second
	// publicMaxHeaderBytes caps a request's line and headers: over it the
	// answer is a signed 431. net/http refuses headers over
	// publicServerHeaderBytes before any handler sees them, with a plain
	// 431 that nobody can sign.
	publicMaxHeaderBytes    = 8 << 10
	publicServerHeaderBytes = 64 << 10
	publicBodyTimeout       = 5 * time.Second
)

// publicAPI is the state of the public API handler.
type publicAPI struct {
	s        *Service
	mux      *http.ServeMux
	lim      *ratelimit.Keyed
	inFlight chan struct{}
	// searching admits twice as many index searches at once as there are
	// cores (so a short query can overtake a long one rather than queue
	// behind it); the others wait their turn, at most inFlight of them,
	// rather than all sharing the cores at once.
	searching chan struct{}

	// bodies counts the request bodies being read per client key.
	bodiesMu sync.Mutex
	bodies   map[string]int

	// refusals are signed refusal bodies, kept for the second they were
	// signed in: a flood is refused without an Ed25519 signature per
	// request, and every answer is still signed.
	refusalsMu sync.Mutex
	refusals   map[string]signedRefusal
}

// signedRefusal is a signed error body and the Unix second it was signed
// in.
type signedRefusal struct {
	sec  int64
	body []byte
}

func newPublicAPI(s *Service) *publicAPI {
	rate := s.cfg.RateLimit
	if rate <= 0 {
		rate = DefaultPublicRate
	}
	burst := s.cfg.RateBurst
	if burst <= 0 {
		burst = max(int(2*rate), 1)
	}
	a := &publicAPI{s: s, lim: ratelimit.New(rate, burst, publicMaxClients),
		inFlight: make(chan struct{}, publicMaxInFlight), searching: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		bodies: make(map[string]int), refusals: make(map[string]signedRefusal)}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("POST /v1/search", a.handleSearch)
	a.mux.HandleFunc("GET /v1/lessons/{key}", s.handlePublicLesson)
	a.mux.HandleFunc("GET /v1/nodes", s.handlePublicNodes)
	a.mux.HandleFunc("GET /v1/nodes/{id}", s.handlePublicNode)
	a.mux.HandleFunc("GET /v1/health", s.handlePublicHealth)
	a.mux.HandleFunc("GET /v1/policy", func(w http.ResponseWriter, r *http.Request) { s.writeSigned(w, http.StatusOK, s.Policy()) })
	a.mux.HandleFunc("GET /.well-known/mesh/identity", s.handlePublicIdentity)
	a.mux.HandleFunc("GET "+protocol.KeyHTTPPrefix+"{keyId}", s.handlePublicKey)
	a.mux.HandleFunc("GET /{$}", s.handleSearchPage)
	a.mux.HandleFunc("GET /search.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(searchPageCSS)
	})
	// Any other method on a known path: a signed 405.
	for path, method := range map[string]string{
		"/v1/search": "POST", "/v1/lessons/{key}": "GET", "/v1/nodes": "GET", "/v1/nodes/{id}": "GET",
		"/v1/health": "GET", "/v1/policy": "GET", "/.well-known/mesh/identity": "GET",
		protocol.KeyHTTPPrefix + "{keyId}": "GET",
	} {
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", method+", OPTIONS")
			s.writeSignedError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s %s: use %s", protocol.ErrInvalid, r.Method, truncateStr(r.URL.Path), method))
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeSignedError(w, http.StatusNotFound, fmt.Errorf("%w: no route %s %s", protocol.ErrInvalid, r.Method, truncateStr(r.URL.Path)))
	})
	return a
}

// startPublicAPI listens on addr and serves PublicHandler there.
func (s *Service) startPublicAPI(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("directory: public api listen %s: %w", addr, err)
	}
	s.publicURL = "http://" + ln.Addr().String()
	ln = newClientLimitListener(ln, publicMaxConns, publicMaxConnsPerClient)
	s.public = &http.Server{
		Handler:           s.PublicHandler(),
		ReadHeaderTimeout: publicHeaderTimeout,
		ReadTimeout:       publicHeaderTimeout + publicBodyTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    publicServerHeaderBytes,
		// The server's own log lines could carry request details.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.public.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("public api stopped", "err", err)
		}
	}()
	s.log.Info("public api listening", "addr", ln.Addr().String())
	return nil
}

// PublicHandler serves the public, read-only HTTP API:
//
//	POST /v1/search                        {query, filters, limit} -> DirectorySearchResponse
//	GET  /v1/lessons/{lessonId}@{nodeId}   -> DirectoryLessonResponse (410 if revoked)
//	GET  /v1/nodes?topic=&limit=           nodes known for a topic
//	GET  /v1/nodes/{nodeId}                one node
//	GET  /v1/health                        liveness and counts
//	GET  /v1/policy                        protocol.DirectoryPolicy
//	GET  /.well-known/mesh/identity        {"identity": the self-signed identity document}
//	GET  /mesh/v1/keys/{keyId}             a lesson key (or escrow share) sealed to the signed requester (Deps.Keys)
//	GET  /?q=                              the search page: HTML, read-only, for people without a node
//
// Every body is signed (see protocol.SignResponse). Each client address has
// a token bucket (Config.RateLimit); past it, and past
// publicMaxInFlight requests at once, the answer is 429 RATE_LIMITED.
// Browsers may call it from any origin (CORS, no credentials).
func (s *Service) PublicHandler() http.Handler { return s.publicAPI }

func (a *publicAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := a.s
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, "+protocol.HeaderNodeID+", "+protocol.HeaderPublicKey+", "+protocol.HeaderTimestamp+", "+protocol.HeaderSignature)
		h.Set("Access-Control-Max-Age", publicCORSMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	client := clientAddr(r)
	if headerSize(r) > publicMaxHeaderBytes {
		// net/http answers headers far over the cap (publicServerHeaderBytes)
		// itself, unsigned; these are answered here, signed.
		a.refuse(w, http.StatusRequestHeaderFieldsTooLarge, "headers", fmt.Errorf("%w: request headers over %d bytes", protocol.ErrTooLarge, publicMaxHeaderBytes))
		return
	}
	if !a.lim.Allow(client, s.now()) {
		a.refuse(w, http.StatusTooManyRequests, "rate", fmt.Errorf("%w: too many requests from your address; slow down", protocol.ErrRateLimited))
		return
	}
	// The body is read before the request takes a slot, under a deadline
	// and a bound per client: a slow body holds its connection, nothing
	// that others need.
	if r.Body != nil && r.Body != http.NoBody {
		if !a.readBody(w, r, client) {
			return
		}
	}
	select {
	case a.inFlight <- struct{}{}:
		defer func() { <-a.inFlight }()
	default:
		a.refuse(w, http.StatusTooManyRequests, "busy", fmt.Errorf("%w: the server is busy", protocol.ErrRateLimited))
		return
	}
	if r.Method != http.MethodConnect && !canonicalPath(r.URL.EscapedPath()) {
		// The mux would redirect to the clean path with a body of its own,
		// unsigned: no such route, signed.
		s.writeSignedError(w, http.StatusNotFound, fmt.Errorf("%w: no route %s %s", protocol.ErrInvalid, r.Method, truncateStr(r.URL.Path)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publicTimeout)
	defer cancel()
	a.mux.ServeHTTP(w, r.WithContext(ctx))
}

// readBody reads r's body, at most MaxDirectoryRequestSize bytes within
// publicBodyTimeout, as one of at most publicMaxBodiesPerClient bodies the
// client has open, and puts it back in r as a buffer. On failure it
// answers and returns false.
func (a *publicAPI) readBody(w http.ResponseWriter, r *http.Request, client string) bool {
	a.bodiesMu.Lock()
	if a.bodies[client] >= publicMaxBodiesPerClient {
		a.bodiesMu.Unlock()
		a.refuse(w, http.StatusTooManyRequests, "bodies", fmt.Errorf("%w: more than %d unfinished request bodies from your address", protocol.ErrRateLimited, publicMaxBodiesPerClient))
		return false
	}
	a.bodies[client]++
	a.bodiesMu.Unlock()
	defer func() {
		a.bodiesMu.Lock()
		if a.bodies[client]--; a.bodies[client] <= 0 {
			delete(a.bodies, client)
		}
		a.bodiesMu.Unlock()
	}()
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(publicBodyTimeout))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxDirectoryRequestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.s.writeSignedError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: the body is over %d bytes", protocol.ErrTooLarge, protocol.MaxDirectoryRequestSize))
		} else {
			a.s.writeSignedError(w, http.StatusBadRequest, fmt.Errorf("%w: reading the body: %v", protocol.ErrInvalid, err))
		}
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return true
}

// refuse answers status with the signed error body of err, signed at most
// once a second per kind of refusal: refusing a flood costs no signature
// per request, and the answer is still signed.
func (a *publicAPI) refuse(w http.ResponseWriter, status int, kind string, err error) {
	now := a.s.now()
	a.refusalsMu.Lock()
	c, ok := a.refusals[kind]
	if !ok || c.sec != now.Unix() {
		body, serr := encodeJSONNoEscape(protocol.NewError(err))
		if serr == nil {
			body, serr = protocol.SignResponse(a.s.deps.Key, body, now)
		}
		if serr != nil {
			a.refusalsMu.Unlock()
			a.s.writeSignedError(w, status, err)
			return
		}
		c = signedRefusal{sec: now.Unix(), body: append(body, '\n')}
		a.refusals[kind] = c
	}
	a.refusalsMu.Unlock()
	h := w.Header()
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(status)
	_, _ = w.Write(c.body)
}

// headerSize is about what r's request line and headers took on the wire.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 12
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// canonicalPath reports whether p is a path the mux routes as it is:
// rooted, with no empty, "." or ".." element (a trailing slash is kept).
// The mux redirects any other path to its clean form.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// clientAddr is the bucket key of a request: the peer's IPv4 address, or
// the /64 of its IPv6 address (a host is given a whole /64 and may rotate
// its addresses within it at will). A proxy's X-Forwarded-For is not
// trusted: anyone can send one.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return clientKey(host)
}

// clientKey is the rate-limit key of an address: IPv4 as it is, IPv6 as
// its /64.
func clientKey(host string) string {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}

// writeSigned writes v, a JSON object, signed by the node.
func (s *Service) writeSigned(w http.ResponseWriter, status int, v any) {
	var body, signed []byte
	var err error
	switch v := v.(type) {
	case *protocol.DirectorySearchResponse: // the hot path: written canonical at once
		signed, err = protocol.SignSearchResponse(s.deps.Key, v, s.now())
	case interface{ Encode() ([]byte, error) }:
		body, err = v.Encode()
	default:
		body, err = encodeJSONNoEscape(v)
	}
	if err == nil && signed == nil {
		signed, err = protocol.SignResponse(s.deps.Key, body, s.now())
	}
	if err != nil {
		s.log.Warn("public api: sign response", "err", err)
		status = http.StatusInternalServerError
		signed, err = protocol.SignResponse(s.deps.Key, []byte(`{"error":true,"code":"INTERNAL","message":"the node could not sign its answer"}`), s.now())
		if err != nil {
			w.WriteHeader(status)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(signed)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(signed, '\n'))
}

func encodeJSONNoEscape(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// writeSignedError writes a signed error body: {error, code, message}.
func (s *Service) writeSignedError(w http.ResponseWriter, status int, err error) {
	if status == 0 {
		status = protocol.HTTPStatus(err)
	}
	e := protocol.NewError(err)
	if status == http.StatusRequestEntityTooLarge {
		e.Code = protocol.CodeTooLarge
	}
	s.writeSigned(w, status, e)
}

func (a *publicAPI) handleSearch(w http.ResponseWriter, r *http.Request) {
	s := a.s
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxDirectoryRequestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("search: %w: the body is over %d bytes", protocol.ErrTooLarge, protocol.MaxDirectoryRequestSize)
		} else {
			err = fmt.Errorf("search: %w: reading the body: %v", protocol.ErrInvalid, err)
		}
		s.writeSignedError(w, 0, err)
		return
	}
	req, err := protocol.DecodeDirectorySearchRequest(data)
	if err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	select {
	case a.searching <- struct{}{}:
	case <-r.Context().Done():
		w.Header().Set("Retry-After", "1")
		s.writeSignedError(w, http.StatusTooManyRequests, fmt.Errorf("search: %w: the server is busy", protocol.ErrRateLimited))
		return
	}
	// The slot is held until the answer is signed and written: that is
	// where its memory is.
	defer func() { <-a.searching }()
	resp, err := s.ServeSearch(r.Context(), req)
	if err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	s.writeSigned(w, http.StatusOK, resp)
}

// ServeSearch answers a public search: public lessons only, as their
// publishers signed them, best first by the local index (see Local), at
// most publicAnswerBudget bytes of lessons.
func (s *Service) ServeSearch(ctx context.Context, req *protocol.DirectorySearchRequest) (*protocol.DirectorySearchResponse, error) {
	pq, err := store.ParseQuery(req.Query)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = protocol.DefaultSearchLimit
	}
	limit = min(limit, protocol.MaxSearchLimit)
	resp := &protocol.DirectorySearchResponse{Type: protocol.MsgDirectorySearch, Query: req.Query, Filters: req.Filters, Limit: limit}
	resp.Results, resp.More, err = s.deps.Local.PublicSearch(ctx, pq, req.Filters, limit)
	if err != nil {
		return nil, err
	}
	capAnswer(resp)
	return resp, nil
}

// capAnswer keeps the results of resp within publicAnswerBudget encoded
// bytes (the first result always), and says more:true if it drops any.
func capAnswer(resp *protocol.DirectorySearchResponse) {
	total := 0
	for i := range resp.Results {
		total += resp.Results[i].EncodedSize()
		if total > publicAnswerBudget && i > 0 {
			resp.Results, resp.More = resp.Results[:i], true
			return
		}
	}
}

func (s *Service) handlePublicLesson(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if _, _, err := protocol.ParseKey(key); err != nil {
		s.writeSignedError(w, 0, fmt.Errorf("%w: want /v1/lessons/{lessonId}@{nodeId}", err))
		return
	}
	sl, rev, err := s.deps.Local.Fetchable(r.Context(), key)
	var el *protocol.EncryptedLesson
	if sl == nil && rev == nil {
		if e, eerr := s.deps.Local.FetchableEncrypted(r.Context(), key); eerr == nil {
			el, err = e, nil
		}
	}
	cutoff := s.deps.Local.RetentionCutoff()
	if sl != nil && sl.Publication.PublishedAt < cutoff || el != nil && el.Publication.PublishedAt < cutoff {
		sl, el, err = nil, nil, fmt.Errorf("%w: %s: published before this node's retention", protocol.ErrUnknownLesson, key)
	}
	switch {
	case rev != nil:
		e := protocol.NewError(fmt.Errorf("%s: %w", key, protocol.ErrAlreadyRevoked))
		s.writeSigned(w, http.StatusGone, &protocol.DirectoryLessonResponse{Key: key, Revocation: rev, Error: true, Code: e.Code, Message: e.Message})
	case err != nil:
		s.writeSignedError(w, 0, err)
	case el != nil:
		s.writeSigned(w, http.StatusOK, &protocol.DirectoryLessonResponse{Key: key, EncryptedLesson: el})
	default:
		s.writeSigned(w, http.StatusOK, &protocol.DirectoryLessonResponse{Key: key, SignedLesson: sl})
	}
}

// handlePublicKey answers the seed's GET /mesh/v1/keys/{keyId}: a request
// signed by the requester's node key (headers Mesh-Node-Id,
// Mesh-Public-Key, Mesh-Timestamp, Mesh-Signature) gets the key, or this
// node's escrow share of it, sealed to the requester, if the key's policy
// admits it; else KEY_REVOKED (410), ACCESS_DENIED (403), NOT_FOUND (404)
// or UNAUTHORIZED (401, unsigned). The answer is signed like every other.
func (s *Service) handlePublicKey(w http.ResponseWriter, r *http.Request) {
	keyID := r.PathValue("keyId")
	if s.deps.Keys == nil {
		s.writeSignedError(w, 0, fmt.Errorf("%w: this node serves no keys", protocol.ErrNotFound))
		return
	}
	resp := s.deps.Keys.ServeKeyHTTP(r.Context(), keyID, r.Header.Get)
	status := http.StatusOK
	if err := resp.Err(); err != nil {
		status = protocol.HTTPStatus(err)
	}
	s.writeSigned(w, status, resp)
}

// PublicNode is one node in a nodes answer of the public API.
type PublicNode struct {
	NodeID string   `json:"nodeId"`
	Addrs  []string `json:"addrs"`
	// Topics and Roles are what the node's record says (DHT), or, for a
	// node registered here, the topics it registered with.
	Topics []string `json:"topics,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	// Record is the node's self-signed node record, verified, when the DHT
	// holds one: a client can check it itself.
	Record *protocol.NodeRecord `json:"record,omitempty"`
	// Registered is true for a node registered with this directory.
	Registered bool `json:"registered,omitempty"`
	// Connected is true for a registered node connected to this node now.
	Connected bool `json:"connected,omitempty"`
}

// publicNodesResponse answers GET /v1/nodes.
type publicNodesResponse struct {
	Topic string       `json:"topic,omitempty"`
	Nodes []PublicNode `json:"nodes"`
}

// publicNodeResponse answers GET /v1/nodes/{nodeId}.
type publicNodeResponse struct {
	Node PublicNode `json:"node"`
}

func (s *Service) handlePublicNodes(w http.ResponseWriter, r *http.Request) {
	topic := strings.ToLower(r.URL.Query().Get("topic"))
	if topic != "" && (len(topic) > protocol.MaxTagLength || protocol.ValidateID(topic) != nil) {
		s.writeSignedError(w, 0, fmt.Errorf("%w: topic %q: use letters, digits, '_', '-' or '.'", protocol.ErrInvalid, truncateStr(topic)))
		return
	}
	limit := 50
	if ls := r.URL.Query().Get("limit"); ls != "" {
		v, err := strconv.Atoi(ls)
		if err != nil || v < 1 || v > protocol.MaxDirectoryNodes {
			s.writeSignedError(w, 0, fmt.Errorf("%w: limit %q: want 1 to %d", protocol.ErrInvalid, truncateStr(ls), protocol.MaxDirectoryNodes))
			return
		}
		limit = v
	}
	nodes, err := s.publicNodes(r.Context(), topic, limit)
	if err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	s.writeSigned(w, http.StatusOK, publicNodesResponse{Topic: topic, Nodes: nodes})
}

func (s *Service) handlePublicNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := protocol.PublicKeyOf(id); err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	pn, err := s.publicNode(r.Context(), id)
	if err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	s.writeSigned(w, http.StatusOK, publicNodeResponse{Node: *pn})
}

// publicDHTTimeout bounds the DHT lookups of a nodes request.
const publicDHTTimeout = 3 * time.Second

// publicNodes lists nodes for a topic ("" for any): the nodes registered
// with this directory (for a topic, those that said they publish on it),
// then, for a topic, its providers in the DHT with their signed node
// records (if the node runs the DHT). A peer that is merely connected is
// never listed: who is connected to this node, and at which addresses, is
// nobody's business.
func (s *Service) publicNodes(ctx context.Context, topic string, limit int) ([]PublicNode, error) {
	out := []PublicNode{}
	seen := map[string]bool{s.self.String(): true}
	add := func(pn *PublicNode) {
		if len(out) >= limit || seen[pn.NodeID] || s.deps.Trust.Blocked(pn.NodeID) {
			return
		}
		seen[pn.NodeID] = true
		out = append(out, *pn)
	}
	for _, id := range s.registrantsOn(topic) {
		if pn, err := s.registrantNode(id); err == nil {
			add(pn)
		}
	}
	if topic != "" && len(out) < limit && s.deps.Lookup != nil {
		dctx, cancel := context.WithTimeout(ctx, publicDHTTimeout)
		infos, err := s.deps.Lookup.TopicNodes(dctx, topic, limit)
		cancel()
		if err != nil && !errors.Is(err, protocol.ErrUnavailable) && ctx.Err() == nil {
			s.log.Debug("public api: topic providers", "err", err)
		}
		for _, in := range infos {
			if in.Record == nil {
				continue // only what the node signed itself
			}
			pn, err := s.registrantNode(in.NodeID)
			if err != nil {
				pn = &PublicNode{NodeID: in.NodeID}
			}
			pn.Addrs, pn.Topics, pn.Roles, pn.Record = append([]string{}, in.Record.Addrs...), in.Record.Topics, in.Record.Roles, in.Record
			add(pn)
		}
	}
	return out, nil
}

// publicNode describes one node: registered with this directory, or with
// a signed record in the DHT (if the node runs one). Other nodes, connected
// or not, are unknown.
func (s *Service) publicNode(ctx context.Context, id string) (*PublicNode, error) {
	pn, lerr := s.registrantNode(id)
	if s.deps.Lookup == nil {
		return pn, lerr
	}
	dctx, cancel := context.WithTimeout(ctx, publicDHTTimeout)
	rec, err := s.deps.Lookup.NodeRecord(dctx, id)
	cancel()
	if err == nil && rec != nil {
		if pn == nil {
			pn = &PublicNode{NodeID: id}
		}
		pn.Addrs, pn.Topics, pn.Roles, pn.Record = append([]string{}, rec.Addrs...), rec.Topics, rec.Roles, rec
	}
	if pn == nil {
		return nil, lerr
	}
	return pn, nil
}

// registrantNode describes a node registered with this directory from what
// this node knows of it without asking anyone: its registration, whether
// it is connected, and its publicly routable addresses (never its private
// or loopback ones). A node not registered here is unknown.
func (s *Service) registrantNode(id string) (*PublicNode, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInvalid, err)
	}
	s.mu.Lock()
	r, registered := s.registrants[id]
	s.mu.Unlock()
	if !registered {
		return nil, fmt.Errorf("%w: node %s is not known here", protocol.ErrUnknownNode, id)
	}
	pn := &PublicNode{NodeID: id, Addrs: []string{}, Registered: true, Topics: r.Topics}
	pn.Connected = s.host.Network().Connectedness(p) == network.Connected
	for _, a := range s.host.Peerstore().Addrs(p) {
		if len(pn.Addrs) < 16 && manet.IsPublicAddr(a) {
			pn.Addrs = append(pn.Addrs, a.String())
		}
	}
	return pn, nil
}

func (s *Service) handlePublicHealth(w http.ResponseWriter, r *http.Request) {
	role := protocol.PolicyNode
	if s.cfg.Enabled {
		role = protocol.PolicyDirectory
	}
	peers := 0
	if s.host != nil {
		peers = len(s.host.Network().Peers())
	}
	s.writeSigned(w, http.StatusOK, map[string]any{
		"healthy": true, "version": s.deps.Version, "nodeId": s.self.String(), "role": role,
		"peers": peers, "registrants": len(s.Registrants()),
	})
}

func (s *Service) handlePublicIdentity(w http.ResponseWriter, r *http.Request) {
	doc, err := s.deps.Identity()
	if err != nil {
		s.writeSignedError(w, 0, err)
		return
	}
	s.writeSigned(w, http.StatusOK, map[string]any{"identity": doc})
}

// checkBaseURL checks and normalizes a public API base URL.
func checkBaseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(s), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q is not an http(s) base URL", protocol.ErrInvalid, truncateStr(s))
	}
	return u.String(), nil
}
