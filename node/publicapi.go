package node

// The public, read-only HTTP API of a directory (or of any node that
// enables it). Every response body, errors included, is signed by the
// node (protocol.SignResponse). It serves public lessons only, and an
// unlisted one only by its exact key, as /mesh/fetch/1.0.0 does; a private
// record never leaves the node. Queries are never logged.

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

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
)

// publicAPI is the state of the public API handler.
type publicAPI struct {
	n        *Node
	lim      *clientLimiter
	inFlight chan struct{}
	// searching admits twice as many index searches at once as there are
	// cores (so a short query can overtake a long one rather than queue
	// behind it); the others wait their turn, at most inFlight of them,
	// rather than all sharing the cores at once.
	searching chan struct{}
}

// startPublicAPI listens on addr and serves PublicHandler there.
func (n *Node) startPublicAPI(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: public api listen %s: %w", addr, err)
	}
	n.publicURL = "http://" + ln.Addr().String()
	n.public = &http.Server{
		Handler:           n.PublicHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		// The server's own log lines could carry request details.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.public.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("public api stopped", "err", err)
		}
	}()
	n.log.Info("public api listening", "addr", ln.Addr().String())
	return nil
}

// PublicAPIURL is the base URL of the node's public API as it listens
// ("http://127.0.0.1:8080"), or "" if it serves none.
func (n *Node) PublicAPIURL() string { return n.publicURL }

// PublicHandler serves the public, read-only HTTP API:
//
//	POST /v1/search                        {query, filters, limit} -> DirectorySearchResponse
//	GET  /v1/lessons/{lessonId}@{nodeId}   -> DirectoryLessonResponse (410 if revoked)
//	GET  /v1/nodes?topic=&limit=           nodes known for a topic
//	GET  /v1/nodes/{nodeId}                one node
//	GET  /v1/health                        liveness and counts
//	GET  /v1/policy                        protocol.DirectoryPolicy
//	GET  /.well-known/mesh/identity        {"identity": the self-signed identity document}
//
// Every body is signed (see protocol.SignResponse). Each client address has
// a token bucket (DirectoryConfig.RateLimit); past it, and past
// publicMaxInFlight requests at once, the answer is 429 RATE_LIMITED.
// Browsers may call it from any origin (CORS, no credentials).
func (n *Node) PublicHandler() http.Handler {
	if n.publicAPI == nil {
		rate := n.cfg.Directory.RateLimit
		if rate <= 0 {
			rate = DefaultPublicRate
		}
		burst := n.cfg.Directory.RateBurst
		if burst <= 0 {
			burst = max(int(2*rate), 1)
		}
		n.publicAPI = &publicAPI{n: n, lim: newClientLimiter(rate, float64(burst), publicMaxClients),
			inFlight: make(chan struct{}, publicMaxInFlight), searching: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	}
	return n.publicAPI
}

func (a *publicAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", publicCORSMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	if !a.lim.allow(clientAddr(r), a.n.now()) {
		h.Set("Retry-After", "1")
		a.n.writeSignedError(w, http.StatusTooManyRequests, fmt.Errorf("%w: too many requests from your address; slow down", protocol.ErrRateLimited))
		return
	}
	select {
	case a.inFlight <- struct{}{}:
		defer func() { <-a.inFlight }()
	default:
		h.Set("Retry-After", "1")
		a.n.writeSignedError(w, http.StatusTooManyRequests, fmt.Errorf("%w: the server is busy", protocol.ErrRateLimited))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publicTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	n := a.n
	path := r.URL.Path
	route := func(method string, fn func(http.ResponseWriter, *http.Request)) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			h.Set("Allow", method+", OPTIONS")
			n.writeSignedError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s %s: use %s", protocol.ErrInvalid, r.Method, path, method))
			return
		}
		fn(w, r)
	}
	switch {
	case path == "/v1/search":
		route(http.MethodPost, a.handleSearch)
	case strings.HasPrefix(path, "/v1/lessons/"):
		route(http.MethodGet, n.handlePublicLesson)
	case path == "/v1/nodes":
		route(http.MethodGet, n.handlePublicNodes)
	case strings.HasPrefix(path, "/v1/nodes/"):
		route(http.MethodGet, n.handlePublicNode)
	case path == "/v1/health":
		route(http.MethodGet, n.handlePublicHealth)
	case path == "/v1/policy":
		route(http.MethodGet, func(w http.ResponseWriter, r *http.Request) { n.writeSigned(w, http.StatusOK, n.Policy()) })
	case path == "/.well-known/mesh/identity":
		route(http.MethodGet, n.handlePublicIdentity)
	default:
		n.writeSignedError(w, http.StatusNotFound, fmt.Errorf("%w: no route %s %s", protocol.ErrInvalid, r.Method, truncateStr(path)))
	}
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
func (n *Node) writeSigned(w http.ResponseWriter, status int, v any) {
	var body, signed []byte
	var err error
	switch v := v.(type) {
	case *protocol.DirectorySearchResponse: // the hot path: written canonical at once
		signed, err = protocol.SignSearchResponse(n.edKey, v, n.now())
	case interface{ Encode() ([]byte, error) }:
		body, err = v.Encode()
	default:
		body, err = encodeJSONNoEscape(v)
	}
	if err == nil && signed == nil {
		signed, err = protocol.SignResponse(n.edKey, body, n.now())
	}
	if err != nil {
		n.log.Warn("public api: sign response", "err", err)
		status = http.StatusInternalServerError
		signed, err = protocol.SignResponse(n.edKey, []byte(`{"error":true,"code":"INTERNAL","message":"the node could not sign its answer"}`), n.now())
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
func (n *Node) writeSignedError(w http.ResponseWriter, status int, err error) {
	if status == 0 {
		status = statusFor(err)
	}
	e := protocol.NewError(err)
	if status == http.StatusRequestEntityTooLarge {
		e.Code = protocol.CodeTooLarge
	}
	n.writeSigned(w, status, e)
}

func (a *publicAPI) handleSearch(w http.ResponseWriter, r *http.Request) {
	n := a.n
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxDirectoryRequestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("search: %w: the body is over %d bytes", protocol.ErrTooLarge, protocol.MaxDirectoryRequestSize)
		} else {
			err = fmt.Errorf("search: %w: reading the body: %v", protocol.ErrInvalid, err)
		}
		n.writeSignedError(w, 0, err)
		return
	}
	req, err := protocol.DecodeDirectorySearchRequest(data)
	if err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	select {
	case a.searching <- struct{}{}:
	case <-r.Context().Done():
		w.Header().Set("Retry-After", "1")
		n.writeSignedError(w, http.StatusTooManyRequests, fmt.Errorf("search: %w: the server is busy", protocol.ErrRateLimited))
		return
	}
	// The slot is held until the answer is signed and written: that is
	// where its memory is.
	defer func() { <-a.searching }()
	resp, err := n.ServeDirectorySearch(r.Context(), req)
	if err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	n.writeSigned(w, http.StatusOK, resp)
}

// ServeDirectorySearch answers a public search: public lessons only, as
// their publishers signed them, best first by the local index. A directory
// answers from every public lesson it holds; another node from its own.
// Lessons published before the retention cutoff are left out.
//
// Every hit is checked here, whatever the index says: a remote lesson must
// be published public, an own record must have a public publication (a
// private record has none). That check, not the index query, is what keeps
// private records out, so the index may be asked without a visibility
// filter first: a filter that matches nearly every document makes the
// index walk all of them, and a directory holds public lessons almost
// only. If that first answer is not enough to tell (hits that are not
// public crowd the top), the index is asked again, filtered. Nothing in the
// answer depends on what was not public: More counts public lessons only.
func (n *Node) ServeDirectorySearch(ctx context.Context, req *protocol.DirectorySearchRequest) (*protocol.DirectorySearchResponse, error) {
	if _, err := store.ParseQuery(req.Query); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = protocol.DefaultSearchLimit
	}
	limit = min(limit, protocol.MaxSearchLimit)
	f := req.Filters
	cutoff := n.retentionCutoff()
	q := store.Query{Text: req.Query, Origin: store.OriginLocal}
	if n.directoryServesAll() {
		q.Origin = store.OriginAll
	}
	if f != nil {
		q.Types, q.Tags = f.Types, f.Tags
		if len(f.Nodes) == 1 {
			q.Publisher = f.Nodes[0]
		}
	}
	resp := &protocol.DirectorySearchResponse{Type: protocol.MsgDirectorySearch, Query: req.Query, Filters: req.Filters, Limit: limit}
	// Filters the index does not know (topics, since, several publishers,
	// retention) are applied to the hits: ask for as many as allowed.
	post := cutoff > 0 || f != nil && (len(f.Topics) > 0 || f.Since != 0 || len(f.Nodes) > 1)
	if !post {
		q.Limit = min(limit+1, store.MaxSearchLimit)
		res, err := n.store.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		results, skipped := n.publicHits(ctx, res.Hits, f, cutoff, limit+1)
		if skipped == 0 || len(results) > limit || len(res.Hits) < q.Limit {
			resp.More = len(results) > limit
			resp.Results = results[:min(len(results), limit)]
			capAnswer(resp)
			return resp, nil
		}
	}
	q.Visibility = []string{protocol.VisibilityPublic}
	q.Limit = limit + 1
	if post {
		q.Limit = store.MaxSearchLimit
	}
	q.Limit = min(q.Limit, store.MaxSearchLimit)
	res, err := n.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	results, _ := n.publicHits(ctx, res.Hits, f, cutoff, limit+1)
	resp.More = len(results) > limit || res.Total > len(res.Hits)
	resp.Results = results[:min(len(results), limit)]
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

// publicHits turns store hits into results: public lessons only, passing
// the filters and the retention cutoff, at most max. skipped counts the
// hits left out.
func (n *Node) publicHits(ctx context.Context, hits []store.Hit, f *protocol.SearchFilters, cutoff int64, max int) (out []protocol.SearchResult, skipped int) {
	for _, h := range hits {
		if len(out) == max {
			break
		}
		sl, enc := h.Signed, h.Encoded
		if h.Key == "" {
			var err error
			// The index holds the record as it is now: it must still be
			// public (the first pass asks without a visibility filter)
			// and exactly what was published, or its words were never
			// shared. A record never published (a private one) is not
			// shared at all.
			if h.Record == nil || h.Record.Visibility != protocol.VisibilityPublic {
				skipped++
				continue
			}
			if sl, enc, err = n.store.SharedPublication(ctx, h.Record); err != nil {
				skipped++
				continue
			}
		}
		if sl == nil || sl.Publication.Visibility != protocol.VisibilityPublic || !matchSearchFilters(sl, f) || sl.Publication.PublishedAt < cutoff {
			skipped++
			continue
		}
		r := protocol.SearchResult{SignedLesson: sl, Score: h.Score}
		if enc != nil {
			r.UseEncoding(enc)
		}
		out = append(out, r)
	}
	return out, skipped
}

func (n *Node) handlePublicLesson(w http.ResponseWriter, r *http.Request) {
	key, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/v1/lessons/"))
	if err == nil {
		_, _, err = protocol.ParseKey(key)
	}
	if err != nil {
		n.writeSignedError(w, 0, fmt.Errorf("%w: want /v1/lessons/{lessonId}@{nodeId}", err))
		return
	}
	sl, rev, err := n.lookupFetchable(r.Context(), key)
	if sl != nil && sl.Publication.PublishedAt < n.retentionCutoff() {
		sl, err = nil, fmt.Errorf("%w: %s: published before this node's retention", protocol.ErrUnknownLesson, key)
	}
	switch {
	case rev != nil:
		e := protocol.NewError(fmt.Errorf("%s: %w", key, protocol.ErrAlreadyRevoked))
		n.writeSigned(w, http.StatusGone, &protocol.DirectoryLessonResponse{Key: key, Revocation: rev, Error: true, Code: e.Code, Message: e.Message})
	case err != nil:
		n.writeSignedError(w, 0, err)
	default:
		n.writeSigned(w, http.StatusOK, &protocol.DirectoryLessonResponse{Key: key, SignedLesson: sl})
	}
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

func (n *Node) handlePublicNodes(w http.ResponseWriter, r *http.Request) {
	topic := strings.ToLower(r.URL.Query().Get("topic"))
	if topic != "" && (len(topic) > protocol.MaxTagLength || protocol.ValidateID(topic) != nil) {
		n.writeSignedError(w, 0, fmt.Errorf("%w: topic %q: use letters, digits, '_', '-' or '.'", protocol.ErrInvalid, truncateStr(topic)))
		return
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > protocol.MaxDirectoryNodes {
			n.writeSignedError(w, 0, fmt.Errorf("%w: limit %q: want 1 to %d", protocol.ErrInvalid, truncateStr(s), protocol.MaxDirectoryNodes))
			return
		}
		limit = v
	}
	nodes, err := n.publicNodes(r.Context(), topic, limit)
	if err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	n.writeSigned(w, http.StatusOK, publicNodesResponse{Topic: topic, Nodes: nodes})
}

func (n *Node) handlePublicNode(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/nodes/")
	if _, err := protocol.PublicKeyOf(id); err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	pn, err := n.publicNode(r.Context(), id)
	if err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	n.writeSigned(w, http.StatusOK, publicNodeResponse{Node: *pn})
}

// publicDHTTimeout bounds the DHT lookups of a nodes request.
const publicDHTTimeout = 3 * time.Second

// publicNodes lists nodes for a topic ("" for any): the nodes registered
// with this directory (for a topic, those that said they publish on it),
// then, for a topic, its providers in the DHT with their signed node
// records (if the node runs the DHT). A peer that is merely connected is
// never listed: who is connected to this node, and at which addresses, is
// nobody's business.
func (n *Node) publicNodes(ctx context.Context, topic string, limit int) ([]PublicNode, error) {
	out := []PublicNode{}
	seen := map[string]bool{n.id.String(): true}
	add := func(pn *PublicNode) {
		if len(out) >= limit || seen[pn.NodeID] || n.trust.Blocked(pn.NodeID) {
			return
		}
		seen[pn.NodeID] = true
		out = append(out, *pn)
	}
	for _, id := range n.registrantsOn(topic) {
		if pn, err := n.registrantNode(id); err == nil {
			add(pn)
		}
	}
	if topic != "" && len(out) < limit {
		dctx, cancel := context.WithTimeout(ctx, publicDHTTimeout)
		infos, err := n.TopicNodes(dctx, topic, limit)
		cancel()
		if err != nil && !errors.Is(err, ErrNoDHT) && ctx.Err() == nil {
			n.log.Debug("public api: topic providers", "err", err)
		}
		for _, in := range infos {
			if in.Record == nil {
				continue // only what the node signed itself
			}
			pn, err := n.registrantNode(in.NodeID)
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
func (n *Node) publicNode(ctx context.Context, id string) (*PublicNode, error) {
	pn, lerr := n.registrantNode(id)
	dctx, cancel := context.WithTimeout(ctx, publicDHTTimeout)
	rec, err := n.NodeRecord(dctx, id)
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
func (n *Node) registrantNode(id string) (*PublicNode, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInvalid, err)
	}
	n.dirMu.Lock()
	r, registered := n.registrants[id]
	n.dirMu.Unlock()
	if !registered {
		return nil, fmt.Errorf("%w: node %s is not known here", protocol.ErrUnknownNode, id)
	}
	pn := &PublicNode{NodeID: id, Addrs: []string{}, Registered: true, Topics: r.Topics}
	pn.Connected = n.host.Network().Connectedness(p) == network.Connected
	for _, a := range n.host.Peerstore().Addrs(p) {
		if len(pn.Addrs) < 16 && manet.IsPublicAddr(a) {
			pn.Addrs = append(pn.Addrs, a.String())
		}
	}
	return pn, nil
}

func (n *Node) handlePublicHealth(w http.ResponseWriter, r *http.Request) {
	role := protocol.PolicyNode
	if n.IsDirectory() {
		role = protocol.PolicyDirectory
	}
	peers := 0
	if n.host != nil {
		peers = len(n.host.Network().Peers())
	}
	n.writeSigned(w, http.StatusOK, map[string]any{
		"healthy": true, "version": Version, "nodeId": n.id.String(), "role": role,
		"peers": peers, "registrants": len(n.Registrants()),
	})
}

func (n *Node) handlePublicIdentity(w http.ResponseWriter, r *http.Request) {
	doc, err := n.Identity()
	if err != nil {
		n.writeSignedError(w, 0, err)
		return
	}
	n.writeSigned(w, http.StatusOK, map[string]any{"identity": doc})
}

// checkBaseURL checks and normalizes a public API base URL.
func checkBaseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(s), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q is not an http(s) base URL", protocol.ErrInvalid, truncateStr(s))
	}
	return u.String(), nil
}

// clientLimiter is a token bucket per client key, bounded in the keys it
// keeps: when full, it forgets the least recently seen client (whose
// bucket has most likely refilled), never everyone at once. It is safe for
// concurrent use.
type clientLimiter struct {
	rate, burst float64
	maxKeys     int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     *list.List               // front: most recently seen
}

// bucket is one client's token bucket.
type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

func newClientLimiter(rate, burst float64, maxKeys int) *clientLimiter {
	return &clientLimiter{rate: rate, burst: math.Max(burst, 1), maxKeys: max(maxKeys, 1),
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// allow takes a token from key's bucket.
func (l *clientLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.buckets[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		for len(l.buckets) >= l.maxKeys {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.buckets, oldest.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
