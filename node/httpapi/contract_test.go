package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// The contract test. api.API has two implementations: *node.Node, in
// process, and *httpapi.Client, over the control API of httpapi.Handler.
// They must give the same results and the same errors. TestContract runs
// one table of operations against both, each time on the same node state:
//
//   - An operation that changes nothing runs against one world (a node
//     under test and the nodes around it, on a mocknet), through the node
//     and then through a Client of a Handler that serves that node on
//     loopback. The cases of one worldSpec share its world.
//   - An operation that changes the node (mutates) runs against two worlds
//     built alike, one per implementation, so that each starts from the
//     same state. The worlds' nodes have fixed keys (see worldKey), so their
//     node IDs, addresses, and every order that follows from them, are the
//     same in both.
//
// Results are compared as JSON, after normalize has replaced what
// legitimately differs between two runs (clock readings, and the
// signatures over them). Errors are compared by wire code and by the
// sentinels they match (sameError).

// contractTopic is the topic the worlds publish on and follow.
const contractTopic = "security"

// contractCase is one operation of api.API.
type contractCase struct {
	name string
	// world is the node state the operation runs against; its node 0 is
	// the node under test.
	world worldSpec
	// mutates says the operation changes the node: each implementation
	// then gets a world of its own.
	mutates bool
	// op runs the operation through a.
	op func(ctx context.Context, a api.API, w *world) (any, error)
	// want is nil if the operation must succeed, else the sentinel its
	// error must match.
	want error
	// check, if set, checks one implementation's result (before
	// normalization): what the comparison cannot see when both are wrong
	// alike.
	check func(t *testing.T, w *world, res any)
	// checkErr, if set, checks one implementation's error.
	checkErr func(t *testing.T, w *world, err error)
	// drift, if set, says how the implementations are known to differ
	// where node/httpapi cannot fix it (the node itself drifts from the
	// api package's rules): the case is skipped while they differ, and
	// fails once they agree, so that the note goes.
	drift string
	// resultOnError compares the results even when the operation failed
	// (Sync reports progress, then fails). Otherwise a failed operation's
	// result is not compared: on error the Client has nothing but the
	// error, which is all the wire carries.
	resultOnError bool
}

func TestContract(t *testing.T) {
	t.Parallel()
	cases := contractCases()
	// The cases that change nothing share one world per spec, built here
	// (with its Client) for all of them.
	shared := map[string]*world{}
	for _, tc := range cases {
		if !tc.mutates && shared[tc.world.name] == nil {
			w := tc.world.build(t)
			w.api(t, "client")
			shared[tc.world.name] = w
		}
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runContract(t, tc, shared[tc.world.name])
		})
	}
}

type outcome struct {
	res any
	err error
}

// runContract runs tc through the node and through the Client, on w if
// tc changes nothing, else each on a world of its own.
func runContract(t *testing.T, tc contractCase, w *world) {
	var outs []outcome
	for _, impl := range []string{"node", "client"} {
		if tc.mutates {
			w = tc.world.build(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := tc.op(ctx, w.api(t, impl), w)
		cancel()
		if err == nil && tc.check != nil {
			t.Run(impl, func(t *testing.T) { tc.check(t, w, res) })
		}
		if err != nil && tc.checkErr != nil {
			t.Run(impl, func(t *testing.T) { tc.checkErr(t, w, err) })
		}
		outs = append(outs, outcome{res, err})
	}
	nodeOut, clientOut := outs[0], outs[1]
	diffs := sameError(tc.want, nodeOut.err, clientOut.err)
	if len(diffs) == 0 && (nodeOut.err == nil || tc.resultOnError) {
		if a, b := normalize(t, nodeOut.res), normalize(t, clientOut.res); a != b {
			diffs = append(diffs, fmt.Sprintf("results differ\nnode:   %s\nclient: %s", a, b))
		}
	}
	switch {
	case tc.drift != "" && len(diffs) == 0:
		t.Errorf("the known drift is gone (%s): remove the case's drift note", tc.drift)
	case tc.drift != "":
		t.Skipf("known drift, outside node/httpapi: %s\n%s", tc.drift, strings.Join(diffs, "\n"))
	case len(diffs) > 0:
		t.Error(strings.Join(diffs, "\n"))
	}
}

// contractSentinels are the errors an API error is matched against: every
// sentinel of protocol's error table, and the more specific errors the API
// documents (reasonSentinels). The wire carries one code per error, so the
// Client's error matches the sentinel of that code, and ErrorBody.Reason
// names the reasonSentinels, which share a code but mean different things
// to a user (offline, or no DHT).
var contractSentinels = append([]error{
	protocol.ErrInvalidSignature, protocol.ErrKeyMismatch, protocol.ErrTimestamp, protocol.ErrTooLarge,
	protocol.ErrInvalid, protocol.ErrUnsupportedVersion, protocol.ErrUnknownLesson, protocol.ErrUnknownNode,
	protocol.ErrNotFound, protocol.ErrAlreadyRevoked, protocol.ErrUntrusted, protocol.ErrRateLimited,
	protocol.ErrUnavailable, protocol.ErrUnreachable, protocol.ErrUnauthorized,
	protocol.ErrAccessDenied, protocol.ErrKeyRevoked,
}, reasonSentinels...)

var reasonSentinels = []error{api.ErrOffline, api.ErrNoDHT, dht.ErrNotFound}

// sameError compares the node's and the Client's errors and says how
// they differ, if they do. They are the same error when, as far as the
// wire tells, they have the same wire code, and the Client's matches every
// sentinel of contractSentinels that the node's does and that the wire
// carries (its code's, and reasonSentinels by ErrorBody.Reason), and no
// other. What the wire does not carry: a node error that matches several
// sentinels (a joined error) crosses as the code of the first; one that
// matches a sentinel more specific than its code's (ErrKeyMismatch is
// INVALID_SIGNATURE) arrives as the code's. The texts may differ where the
// HTTP edge checks a request before the node does (a query that does not
// parse); a case that cares checks them with checkErr.
func sameError(want, nodeErr, clientErr error) []string {
	if want == nil {
		if nodeErr != nil || clientErr != nil {
			return []string{fmt.Sprintf("want success\nnode:   %v\nclient: %v", nodeErr, clientErr)}
		}
		return nil
	}
	code := protocol.CodeOf(want)
	base := protocol.ErrorFor(code, "") // the sentinel of the code, if it has one
	carried := func(s error) bool { return errors.Is(base, s) || slices.Contains(reasonSentinels, s) }
	wantClient := want
	if !carried(want) {
		wantClient = base
	}
	if !errors.Is(nodeErr, want) || !errors.Is(clientErr, wantClient) {
		return []string{fmt.Sprintf("want an error matching %q\nnode:   %v\nclient: %v", want, nodeErr, clientErr)}
	}
	var diffs []string
	if n, c := protocol.CodeOf(nodeErr), protocol.CodeOf(clientErr); n != code || c != code {
		diffs = append(diffs, fmt.Sprintf("wire code: node %s, client %s, want %s\nnode:   %v\nclient: %v", n, c, code, nodeErr, clientErr))
	}
	for _, s := range contractSentinels {
		n, c := errors.Is(nodeErr, s), errors.Is(clientErr, s)
		if c && !n && !errors.Is(base, s) || n && carried(s) && !c {
			diffs = append(diffs, fmt.Sprintf("errors.Is(err, %q): node %v, client %v\nnode:   %v\nclient: %v", s, n, c, nodeErr, clientErr))
		}
	}
	return diffs
}

// clockFields are the JSON fields set from a clock: two runs read it at
// different moments.
var clockFields = map[string]bool{
	"created_at": true, "updated_at": true, "publishedAt": true, "timestamp": true, "revokedAt": true,
	"issuedAt": true, "expiresAt": true, "registered": true, "addedAt": true,
}

// normalize is v as indented JSON, with what legitimately differs between
// two runs replaced:
//   - a non-zero clock field (clockFields) by "<clock>": each run signs,
//     stores or registers at its own moment;
//   - a signature ("sig", or "signature" when a string) by "<signature>":
//     Ed25519 is deterministic, but it signs those clock readings;
//   - an empty list by null: the HTTP API writes empty lists as [] (JSON
//     clients get a list, never null), where the node may return a nil
//     slice; in Go both have length 0.
func normalize(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	out, _ := json.MarshalIndent(scrub("", x), "", "  ")
	return string(out)
}

// dhtNotFound names the DHT's two wordings of "no such peer" alike: which
// one a lookup returns depends on whether the routing table held any peer
// at that moment (kbucket's lookup failure, or routing's not found), and
// the routing table of a world fills while the cases run.
var dhtNotFound = strings.NewReplacer(
	"failed to find any peer in table", "<dht: not found>",
	"routing: not found", "<dht: not found>",
)

func scrub(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = scrub(k, e)
		}
	case []any:
		if len(v) == 0 {
			return nil
		}
		for i, e := range v {
			if randomFields[key] {
				v[i] = scrub(key, e) // a list of random values
			} else {
				v[i] = scrub("", e)
			}
		}
	case float64:
		if clockFields[key] && v != 0 {
			return "<clock>"
		}
	case string:
		if (key == "sig" || key == "signature") && v != "" {
			return "<signature>"
		}
		if randomFields[key] && v != "" {
			return "<random>"
		}
		if key == "error" {
			// A directory entry's last registration error: its first line
			// says what failed; the lines after it are the DHT lookups'
			// diagnostics, worded by the routing table of that moment.
			first, _, _ := strings.Cut(v, "\n")
			return dhtNotFound.Replace(first)
		}
	}
	return v
}

// ---- worlds -----------------------------------------------------------------

// worldSpec is a way to build a world, by name: the cases that change
// nothing share one world per name.
type worldSpec struct {
	name  string
	build func(t *testing.T) *world
}

var (
	offline    = worldSpec{"offline", offlineWorld}
	solo       = worldSpec{"solo", soloWorld}
	revoked    = worldSpec{"revoked", revokedWorld}
	linked     = worldSpec{"linked", linkedWorld}
	pair       = worldSpec{"pair", pairWorld}
	trio       = worldSpec{"trio", trioWorld}
	dhtNet     = worldSpec{"dht", dhtWorld}
	noDHT      = worldSpec{"no dht", noDHTWorld}
	dirLinked  = worldSpec{"directory", directoryWorld}
	registered = worldSpec{"registered", registeredWorld}
	publicDir  = worldSpec{"public directory", publicDirectoryWorld}
)

// world is a node under test (nodes[0]) and the nodes and hosts around it,
// on a mocknet of their own.
type world struct {
	mn    mocknet.Mocknet // nil when the node under test is offline
	nodes []*node.Node
	// vals are what the world's setup made that the operations need:
	// lesson keys, addresses, URLs.
	vals   map[string]string
	client *httpapi.Client
}

func (w *world) self() *node.Node { return w.nodes[0] }

// worldKey is the i-th fixed key: node i of every world has the same
// identity, so two worlds built alike are alike down to their node IDs.
func worldKey(i int) crypto.PrivKey {
	k, err := crypto.UnmarshalEd25519PrivateKey(worldEdKey(i))
	if err != nil {
		panic(err) // a 64-byte Ed25519 key always unmarshals
	}
	return k
}

func worldEdKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "mesh contract test key %d", i))
	return ed25519.NewKeyFromSeed(seed[:])
}

// worldID is the node ID of worldKey(i).
func worldID(i int) string {
	id, err := peer.IDFromPrivateKey(worldKey(i))
	if err != nil {
		panic(err)
	}
	return id.String()
}

// newWorld starts one node per config: node i with worldKey(i), on a
// mocknet host linked to every other (connected to none) at
// /ip4/127.0.0.<i+1>/tcp/4001. If cfgs[0] is offline, it is the only node.
func newWorld(t *testing.T, cfgs ...node.Config) *world {
	t.Helper()
	w := &world{vals: map[string]string{}}
	if cfgs[0].Offline {
		cfg := cfgs[0]
		cfg.PrivateKey = worldKey(0)
		w.nodes = []*node.Node{nodetest.Local(t, cfg)}
		return w
	}
	w.mn = mocknet.New()
	t.Cleanup(func() { w.mn.Close() })
	for i, cfg := range cfgs {
		priv := worldKey(i)
		cfg.PrivateKey, cfg.Host, cfg.DisableMDNS = priv, w.addHost(t, priv, i), true
		n, err := node.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		w.nodes = append(w.nodes, n)
	}
	return w
}

// addHost adds a host with key priv to the world's mocknet, linked to every
// host already there.
func (w *world) addHost(t *testing.T, priv crypto.PrivKey, i int) host.Host {
	t.Helper()
	h, err := w.mn.AddPeer(priv, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.%d/tcp/4001", i+1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.mn.Peers() {
		if p != h.ID() {
			if _, err := w.mn.LinkPeers(h.ID(), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

// api is the implementation impl of the node under test: the node itself,
// or a Client of a Handler serving it on loopback.
func (w *world) api(t *testing.T, impl string) api.API {
	if impl == "node" {
		return w.self()
	}
	if w.client == nil {
		srv := httptest.NewServer(httpapi.Handler(w.self(), testToken))
		t.Cleanup(srv.Close)
		w.client = httpapi.NewClient(srv.URL, testToken)
	}
	return w.client
}

// ampRecords are the records of every world's node under test: one of each
// AMP type and a sensor reading. Their created_at is fixed, so that every
// world lists them in the same order.
var ampRecords = []string{
	`{"id":"lesson-1","type":"lesson","title":"Always validate user input before database queries","content":"SQL injection remains one of the most common vulnerabilities. Always use parameterized queries.","tags":["security","sql"],"severity":"critical","created_at":1767225600000}`,
	`{"id":"cp-1","type":"checkpoint","agent":"dev-agent-01","working_on":"Implementing OAuth2 flow for GitHub integration","state":{"blockers":["Waiting for GitHub OAuth app credentials"],"flags":["BLOCKED"]},"project":"myapp-backend","created_at":1767225601000}`,
	`{"id":"snip-1","type":"snippet","content":"func main() { validate() }","language":"go","project":"myapp-backend","created_at":1767225602000}`,
	`{"id":"reading-1","type":"reading","content":"basement humidity","humidity":64.5,"created_at":1767225603000}`,
}

func putRecords(t *testing.T, n *node.Node, recs ...string) {
	t.Helper()
	for _, s := range recs {
		rec, err := protocol.DecodeLesson([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := n.Put(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

func publish(t *testing.T, n *node.Node, id, visibility string, topics ...string) *protocol.SignedLesson {
	t.Helper()
	sl, err := n.Publish(context.Background(), id, api.PublishOptions{Visibility: visibility, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// offlineWorld is an offline node holding ampRecords.
func offlineWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{Offline: true})
	putRecords(t, w.self(), ampRecords...)
	return w
}

// soloWorld is an online node, alone, following contractTopic, holding
// ampRecords with lesson-1 published public and snip-1 unlisted.
func soloWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{Topics: []string{contractTopic}})
	setupSolo(t, w)
	return w
}

func setupSolo(t *testing.T, w *world) {
	t.Helper()
	putRecords(t, w.self(), ampRecords...)
	w.vals["lesson"] = publish(t, w.self(), "lesson-1", protocol.VisibilityPublic, contractTopic).Key()
	w.vals["snippet"] = publish(t, w.self(), "snip-1", protocol.VisibilityUnlisted).Key()
}

// revokedWorld is soloWorld with lesson-1 revoked.
func revokedWorld(t *testing.T) *world {
	w := soloWorld(t)
	if _, err := w.self().Revoke(context.Background(), "lesson-1", "outdated"); err != nil {
		t.Fatal(err)
	}
	return w
}

// linkedWorld is soloWorld and a second node (nodes[1], its address in
// vals["addr"]) it is linked to but not connected to.
func linkedWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{Topics: []string{contractTopic}}, node.Config{})
	setupSolo(t, w)
	w.vals["addr"] = w.nodes[1].Addrs()[0].String()
	return w
}

// pairWorld is soloWorld and a peer (nodes[1]) that trust each other, are
// connected, and follow contractTopic; the node received the peer's public
// lesson remote-1 (its key in vals["remote"]).
func pairWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{Topics: []string{contractTopic}}, node.Config{Topics: []string{contractTopic}})
	self, p := w.nodes[0], w.nodes[1]
	setupSolo(t, w)
	putRecords(t, p, `{"id":"remote-1","type":"lesson","title":"Rotate leaked credentials first","content":"A remote lesson: revoke and rotate leaked credentials before anything else.","tags":["security"],"created_at":1767225604000}`)
	key := publish(t, p, "remote-1", protocol.VisibilityPublic, contractTopic).Key()
	nodetest.TrustAll(t, self, p)
	nodetest.Connect(t, self, p)
	nodetest.Eventually(t, "the node holds remote-1", func() bool { return nodetest.HasRemote(self, key) })
	w.vals["remote"] = key
	return w
}

// trioWorld: the node trusts A (nodes[1]) fully, A trusts it and B
// (nodes[2]) fully, and the node learned A's vouch for B: it trusts B at
// two hops. A also referred B to the node.
func trioWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{}, node.Config{}, node.Config{})
	self, a, b := w.nodes[0], w.nodes[1], w.nodes[2]
	nodetest.SetTrust(t, self, a, trust.LevelFull)
	nodetest.SetTrust(t, a, self, trust.LevelFull)
	nodetest.SetTrust(t, a, b, trust.LevelFull)
	if err := self.Trust().Set(worldID(60), trust.LevelLimited, "a limited one"); err != nil {
		t.Fatal(err)
	}
	nodetest.Connect(t, self, a)
	nodetest.Eventually(t, "the node trusts B through A", func() bool {
		_, _, ok := self.Trust().Path(b.ID().String())
		return ok
	})
	if err := a.SendReferral(context.Background(), self.ID(), b.ID().String(), "good lessons on security"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the node holds A's referral", func() bool { return len(self.Trust().Referrals()) == 1 })
	return w
}

// dhtWorld: the node and two peers, every one a DHT server following
// contractTopic, the node connected to both; each one's node record and
// topic provider record are in the DHT.
func dhtWorld(t *testing.T) *world {
	cfg := node.Config{Topics: []string{contractTopic}, DHT: discovery.Config{Mode: "server"}}
	w := newWorld(t, cfg, cfg, cfg)
	self := w.self()
	nodetest.Connect(t, self, w.nodes[1])
	nodetest.Connect(t, self, w.nodes[2])
	ctx := context.Background()
	nodetest.Eventually(t, "every node's records in the DHT", func() bool {
		nodes, err := self.TopicNodes(ctx, contractTopic, 0)
		if err != nil || len(nodes) != 3 {
			return false
		}
		for _, n := range nodes {
			if n.Record == nil || len(n.Record.Topics) == 0 {
				return false
			}
		}
		for _, n := range w.nodes {
			st, err := n.DHTStatus(ctx)
			if err != nil || st.Record == nil || len(st.Provided) == 0 || st.RoutingTable == 0 {
				return false
			}
		}
		return true
	})
	return w
}

// noDHTWorld is an online node with its DHT off.
func noDHTWorld(t *testing.T) *world {
	return newWorld(t, node.Config{DHT: discovery.Config{Mode: "off"}})
}

// directoryWorld: the node and a directory (nodes[1], address in
// vals["dir"]) it is linked to but not connected to and has not added.
func directoryWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{Topics: []string{contractTopic}},
		node.Config{Directory: directory.Config{Enabled: true, Topics: []string{contractTopic}, Contact: "ops@example.org"}})
	setupSolo(t, w)
	w.vals["dir"] = w.nodes[1].Addrs()[0].String()
	return w
}

// registeredWorld is directoryWorld with the directory added (and
// registered with) and a second one, unreachable, added by node ID.
func registeredWorld(t *testing.T) *world {
	w := directoryWorld(t)
	ctx := context.Background()
	if e, err := w.self().DirectoryAdd(ctx, w.vals["dir"]); err != nil || e.Error != "" {
		t.Fatalf("add directory: %+v %v", e, err)
	}
	if _, err := w.self().DirectoryAdd(ctx, worldID(61)); err != nil {
		t.Fatal(err)
	}
	return w
}

// publicDirectoryWorld: the node, a directory serving its public HTTP API
// on loopback (vals["url"]), and a publisher (nodes[2]) whose public lesson
// dir-1 the directory indexed.
func publicDirectoryWorld(t *testing.T) *world {
	w := newWorld(t, node.Config{},
		node.Config{Directory: directory.Config{Enabled: true, Topics: []string{contractTopic}, PublicAPI: "127.0.0.1:0"}},
		node.Config{Topics: []string{contractTopic}})
	dir, pub := w.nodes[1], w.nodes[2]
	putRecords(t, pub, `{"id":"dir-1","type":"lesson","title":"Pin your dependencies","content":"Pin dependencies and verify checksums in the build.","tags":["security"],"created_at":1767225605000}`)
	key := publish(t, pub, "dir-1", protocol.VisibilityPublic, contractTopic).Key()
	nodetest.SetTrust(t, w.self(), pub, trust.LevelFull)
	nodetest.Connect(t, pub, dir)
	nodetest.Eventually(t, "the directory indexes dir-1", func() bool { return nodetest.HasRemote(dir, key) })
	w.vals["url"] = dir.Directory().PublicURL()
	w.vals["key"] = key
	return w
}

// syncPublisher is the key of the publisher of the lessons the scripted
// sync peers hand out; it is on no network.
const syncPublisher = 50

// syncWorld: the node follows contractTopic and trusts syncPublisher, and
// is connected to scripted peers that speak /mesh/sync/1.0.0 and nothing
// else of MESH: good ones answer a page of two of syncPublisher's lessons
// and the revocation of one; bad ones answer garbage; mute ones reset the
// stream. The node trusts them limited, so that its own sync on connect
// leaves them alone (limited peers are never synced from by themselves)
// and only the Sync under test asks them. vals["good0"], ["bad0"],
// ["mute0"] ... are their node IDs.
func syncWorld(good, bad, mute int) worldSpec {
	return worldSpec{fmt.Sprintf("sync %d/%d/%d", good, bad, mute), func(t *testing.T) *world {
		w := newWorld(t, node.Config{Topics: []string{contractTopic}})
		self := w.self()
		ctx := context.Background()
		if err := self.TrustSet(ctx, worldID(syncPublisher), trust.LevelFull, ""); err != nil {
			t.Fatal(err)
		}
		page := syncPage(t)
		kinds := []struct {
			name   string
			n      int
			answer []byte
		}{{"good", good, page}, {"bad", bad, []byte("this is not a sync response")}, {"mute", mute, nil}}
		i := 10
		for _, k := range kinds {
			for j := range k.n {
				h := w.addHost(t, worldKey(i), i)
				i++
				answer := k.answer
				h.SetStreamHandler(libp2pproto.ID(protocol.ProtocolSync), streamrpc.Serve(t.Context(), protocol.MaxSyncRequestSize, streamrpc.Timeout,
					func(context.Context, *streamrpc.Request) []byte { return answer }))
				if err := self.TrustSet(ctx, h.ID().String(), trust.LevelLimited, "scripted"); err != nil {
					t.Fatal(err)
				}
				if err := self.Host().Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
					t.Fatal(err)
				}
				nodetest.Eventually(t, "the node knows the peer speaks sync", func() bool {
					ok, _ := self.Host().Peerstore().SupportsProtocols(h.ID(), libp2pproto.ID(protocol.ProtocolSync))
					return len(ok) > 0
				})
				w.vals[fmt.Sprintf("%s%d", k.name, j)] = h.ID().String()
			}
		}
		return w
	}}
}

// syncPage is a sync answer: two public lessons of syncPublisher on
// contractTopic, and the revocation of the second.
func syncPage(t *testing.T) []byte {
	t.Helper()
	key := worldEdKey(syncPublisher)
	now := time.Now().Add(-time.Minute)
	resp := &protocol.SyncResponse{Type: protocol.MsgSyncResponse, Checkpoint: fmt.Sprintf("%016x", 3)}
	for i, title := range []string{"Synced lesson one", "Synced lesson two"} {
		sl, err := protocol.Sign(key, &protocol.Lesson{ID: fmt.Sprintf("synced-%d", i+1), Type: "lesson", Title: title, Content: "caught up by sync", CreatedAt: now.UnixMilli()},
			protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), Topics: []string{contractTopic}}, now)
		if err != nil {
			t.Fatal(err)
		}
		resp.Lessons = append(resp.Lessons, sl)
	}
	rev, err := protocol.SignRevocation(key, "synced-2", "outdated", now)
	if err != nil {
		t.Fatal(err)
	}
	resp.Revocations = append(resp.Revocations, rev)
	b, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- the table --------------------------------------------------------------

func contractCases() []contractCase {
	var cases []contractCase
	for _, group := range [][]contractCase{
		ampCases(), publisherCases(), federationCases(), syncCases(), trustCases(),
		directoryCases(), dhtCases(), networkCases(), keyCases(),
	} {
		cases = append(cases, group...)
	}
	return cases
}

func rec(s string) *protocol.Lesson {
	r, err := protocol.DecodeLesson([]byte(s))
	if err != nil {
		panic(err)
	}
	return r
}

// search is a's Search, without the hits' Signed and Encoded: those are the
// store's, to serve a received lesson on as it was signed. *node.Node
// passes them on, but no wire form of a search answer carries them (AMP's
// has id, score, record, key and publisher), so they are not part of the
// contract.
func search(ctx context.Context, a api.API, q store.Query) (any, error) {
	res, err := a.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	for i := range res.Hits {
		res.Hits[i].Signed, res.Hits[i].Encoded = nil, nil
	}
	return res, nil
}

func ampCases() []contractCase {
	type put struct {
		ID      string `json:"id"`
		Created bool   `json:"created"`
	}
	return []contractCase{
		{name: "info", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Info(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if info := res.(*api.Info); !info.Online || info.NodeID != w.self().ID().String() || len(info.Addrs) == 0 {
					t.Errorf("info %+v", info)
				}
			}},
		{name: "info offline", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Info(ctx) }},

		{name: "put new", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			id, created, err := a.Put(ctx, rec(`{"id":"new-1","type":"lesson","title":"New","content":"a new lesson","created_at":1767225609000}`))
			if err != nil {
				return nil, err
			}
			got, err := a.Get(ctx, id)
			return map[string]any{"put": put{id, created}, "record": got}, err
		}},
		{name: "put without id", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			id, created, err := a.Put(ctx, rec(`{"type":"checkpoint","agent":"dev-agent-02","working_on":"x"}`))
			// The id is random: compare its form only.
			return put{strings.SplitN(id, "_", 2)[0], created}, err
		}},
		{name: "put upsert", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			id, created, err := a.Put(ctx, rec(`{"id":"cp-1","type":"checkpoint","agent":"dev-agent-01","working_on":"Done","created_at":1767225601000}`))
			return put{id, created}, err
		}},
		{name: "put invalid", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			id, created, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Severity: "urgent"})
			return put{id, created}, err
		}},
		{name: "put without type", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			_, _, err := a.Put(ctx, &protocol.Lesson{Content: "x"})
			return nil, err
		}},
		{name: "put bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			_, _, err := a.Put(ctx, &protocol.Lesson{ID: "../etc", Type: "lesson"})
			return nil, err
		}},
		{name: "put too large", world: solo, want: protocol.ErrTooLarge, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			_, _, err := a.Put(ctx, &protocol.Lesson{Type: "lesson", Content: strings.Repeat("x", protocol.MaxRecordSize)})
			return nil, err
		}},

		{name: "get", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Get(ctx, "cp-1") }},
		{name: "get open record", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			r, err := a.Get(ctx, "reading-1")
			if err != nil {
				return nil, err
			}
			v, _ := r.Number("humidity")
			return map[string]any{"record": r, "humidity": v}, nil
		}},
		{name: "get unknown", world: solo, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Get(ctx, "nope") }},
		{name: "get bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Get(ctx, "../etc") }},
		{name: "get empty id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Get(ctx, "") }},

		{name: "delete", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			ok, err := a.Delete(ctx, "lesson-1")
			if err != nil {
				return nil, err
			}
			_, gerr := a.Get(ctx, "lesson-1")
			_, eerr := a.Export(ctx, "lesson-1")
			return map[string]any{"deleted": ok, "get": protocol.CodeOf(gerr), "export": protocol.CodeOf(eerr)}, nil
		}},
		{name: "delete unknown", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Delete(ctx, "nope") }},
		{name: "delete bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Delete(ctx, "../etc") }},
		{name: "delete empty id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Delete(ctx, "") }},

		{name: "list", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.List(ctx, store.ListOptions{}) }},
		{name: "list filtered", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Project: "myapp-backend", Order: "asc", Limit: 1, Offset: 1})
		}},
		{name: "list by tag and type", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Type: "lesson", Tags: []string{"sql"}, Visibility: protocol.VisibilityPublic})
		}},
		{name: "list nothing", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Agent: "nobody"})
		}},
		{name: "list origin remote", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Origin: store.OriginRemote})
		}, check: func(t *testing.T, w *world, res any) {
			if l := res.(*store.ListResult); len(l.Keys) != 1 || l.Keys[0] != w.vals["remote"] {
				t.Errorf("list origin remote: keys %v, want [%s]", l.Keys, w.vals["remote"])
			}
		}},
		{name: "list origin all", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Origin: store.OriginAll, Order: "asc"})
		}},
		{name: "list bad order", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Order: "sideways"})
		}},
		{name: "list bad origin", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Origin: "elsewhere"})
		}},
		{name: "list negative limit", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.List(ctx, store.ListOptions{Limit: -1})
		}},

		{name: "search", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "parameterized queries injection", Type: "lesson", Tags: []string{"sql"}, Limit: 10, MinScore: 0.1})
		}},
		{name: "search comparison", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "humidity > 60"})
		}},
		{name: "search filters", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Types: []string{"snippet", "checkpoint"}, Project: "myapp-backend", Since: 1767225601000, Until: 1767225602000})
		}},
		{name: "search nothing", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "kubernetes"})
		}},
		{name: "search origin remote", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "credentials", Origin: store.OriginRemote})
		}, check: func(t *testing.T, w *world, res any) {
			// Received lessons keep their key and publisher (MCP and the
			// Client dropped them once).
			hits := res.(*store.SearchResult).Hits
			if len(hits) != 1 || hits[0].Key != w.vals["remote"] || hits[0].Publisher != w.nodes[1].ID().String() {
				t.Errorf("remote hits %+v: want %s by %s", hits, w.vals["remote"], w.nodes[1].ID())
			}
		}},
		{name: "search origin all", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "credentials validate", Origin: store.OriginAll})
		}},
		{name: "search bad query", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: `"unclosed`})
		}},
		{name: "search limit too large", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "sql", Limit: 1000})
		}},
		{name: "search bad origin", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return search(ctx, a, store.Query{Text: "sql", Origin: "elsewhere"})
		}},

		{name: "status", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Status(ctx) },
			check: func(t *testing.T, w *world, res any) {
				// The Client's status carries the network (it did not once).
				if st := res.(*api.Status); st.Network == nil || st.Total != 4 || !st.Healthy {
					t.Errorf("status %+v: want 4 records and the network", st)
				}
			}},
		{name: "status offline", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Status(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if st := res.(*api.Status); st.Network != nil {
					t.Errorf("offline status has a network: %+v", st.Network)
				}
			}},
		{name: "agent status", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.AgentStatus(ctx, "dev-agent-01")
		}, check: func(t *testing.T, w *world, res any) {
			if st := res.(*store.AgentStatus); st.Status != store.StatusBlocked || st.CheckpointID != "cp-1" {
				t.Errorf("agent status %+v", st)
			}
		}},
		{name: "agent status idle", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.AgentStatus(ctx, "nobody")
		}},
		{name: "agent status no agent", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.AgentStatus(ctx, "")
		}},
		{name: "agent status long agent", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.AgentStatus(ctx, strings.Repeat("a", protocol.MaxIDLength+1))
		}},
	}
}

func verifySigned(t *testing.T, w *world, res any) {
	sl := res.(*protocol.SignedLesson)
	if err := protocol.Verify(sl, protocol.VerifyOptions{}); err != nil || sl.Signature.NodeID != w.self().ID().String() {
		t.Errorf("signed lesson does not verify as the node's: %v", err)
	}
}

func publisherCases() []contractCase {
	return []contractCase{
		{name: "publish", world: solo, mutates: true, check: verifySigned, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "reading-1", api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: []string{contractTopic, "sensors"}})
		}},
		{name: "publish unlisted", world: solo, mutates: true, check: verifySigned, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "cp-1", api.PublishOptions{Visibility: protocol.VisibilityUnlisted})
		}},
		{name: "publish private", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "cp-1", api.PublishOptions{Visibility: "private"})
		}},
		{name: "publish unknown", world: solo, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "nope", api.PublishOptions{Visibility: protocol.VisibilityPublic})
		}},
		{name: "publish bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "../etc", api.PublishOptions{Visibility: protocol.VisibilityPublic})
		}},
		{name: "publish bad topic", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "cp-1", api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: []string{"no spaces"}})
		}},
		{name: "publish empty id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "", api.PublishOptions{Visibility: protocol.VisibilityPublic})
		}},
		{name: "publish revoked", world: revoked, want: protocol.ErrAlreadyRevoked, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Publish(ctx, "lesson-1", api.PublishOptions{Visibility: protocol.VisibilityPublic})
		}},

		{name: "export", world: solo, check: verifySigned, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "lesson-1")
		}},
		{name: "export unlisted", world: solo, check: verifySigned, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "snip-1")
		}},
		{name: "export unpublished", world: solo, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "cp-1")
		}},
		{name: "export unknown", world: solo, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "nope")
		}},
		{name: "export bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "../etc")
		}},
		{name: "export empty id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "")
		}},
		{name: "export revoked", world: revoked, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Export(ctx, "lesson-1")
		}},

		{name: "revoke", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Revoke(ctx, "lesson-1", "outdated")
		}, check: func(t *testing.T, w *world, res any) {
			rev := res.(*protocol.Revocation)
			if err := protocol.VerifyRevocation(rev, protocol.VerifyOptions{}); err != nil || rev.Key() != w.vals["lesson"] {
				t.Errorf("revocation %+v: %v", rev, err)
			}
		}},
		{name: "revoke twice", world: revoked, want: protocol.ErrAlreadyRevoked, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Revoke(ctx, "lesson-1", "other")
		}},
		{name: "revoke unpublished", world: solo, want: protocol.ErrUnknownLesson, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Revoke(ctx, "cp-1", "")
		}},
		// A malformed id is a bad request, as for publish and export.
		{name: "revoke bad id", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Revoke(ctx, "../etc", "")
		}},
	}
}

// following is a's Following as one value.
func following(ctx context.Context, a api.API) (any, error) {
	topics, feeds, err := a.Following(ctx)
	return map[string][]string{"topics": topics, "feeds": feeds}, err
}

func federationCases() []contractCase {
	return []contractCase{
		{name: "follow topic", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			if err := a.Follow(ctx, "Rust"); err != nil {
				return nil, err
			}
			return following(ctx, a)
		}},
		{name: "follow feed", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			if err := a.Follow(ctx, worldID(60)); err != nil {
				return nil, err
			}
			return following(ctx, a)
		}},
		{name: "follow bad topic", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.Follow(ctx, "no spaces")
		}},
		{name: "follow nothing", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.Follow(ctx, "")
		}},
		{name: "unfollow", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			if err := a.Follow(ctx, "rust"); err != nil {
				return nil, err
			}
			if err := a.Unfollow(ctx, "rust"); err != nil {
				return nil, err
			}
			return following(ctx, a)
		}},
		{name: "following", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return following(ctx, a) }},
		{name: "following offline", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return following(ctx, a) }},

		{name: "connect", world: linked, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			p, err := a.Connect(ctx, w.vals["addr"])
			if err != nil {
				return nil, err
			}
			peers, err := a.Peers(ctx)
			return map[string]any{"peer": p, "peers": peers}, err
		}, check: func(t *testing.T, w *world, res any) {
			if p := res.(map[string]any)["peer"]; p != w.nodes[1].ID() {
				t.Errorf("connected to %v, want %s", p, w.nodes[1].ID())
			}
		}},
		{name: "connect bad address", world: linked, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Connect(ctx, "not-a-multiaddr")
		}},
		{name: "connect address without node ID", world: linked, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Connect(ctx, "/ip4/127.0.0.2/tcp/4001")
		}},
		{name: "connect self", world: linked, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Connect(ctx, w.self().Addrs()[0].String())
		}},
		{name: "connect unknown node ID", world: linked, want: protocol.ErrUnreachable, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Connect(ctx, worldID(62))
		}},
		{name: "connect offline", world: offline, want: api.ErrOffline, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Connect(ctx, "/ip4/127.0.0.2/tcp/4001/p2p/"+worldID(1))
		}},
		{name: "peers", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Peers(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if ps := res.([]api.PeerInfo); len(ps) != 1 || ps[0].ID != w.nodes[1].ID().String() || ps[0].Connection != "direct" {
					t.Errorf("peers %+v", ps)
				}
			}},
		{name: "peers none", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Peers(ctx) }},
		{name: "peers offline", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Peers(ctx) }},

		{name: "search network", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Query: "credentials validate", Deadline: 10 * time.Second})
		}, check: func(t *testing.T, w *world, res any) {
			r := res.(*api.FedSearchResponse)
			var keys []string
			for _, h := range r.Results {
				keys = append(keys, h.Key)
			}
			if len(keys) != 2 || r.Truncated {
				t.Errorf("search network: %v (truncated %v), want the node's and the peer's lessons", keys, r.Truncated)
			}
		}},
		{name: "search network one node", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Query: "credentials", Sources: w.nodes[1].ID().String(), Deadline: 10 * time.Second})
		}},
		{name: "search network topic", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Sources: contractTopic, Limit: 5, Hops: 1, FreshnessHalfLife: 0, Deadline: 10 * time.Second})
		}},
		{name: "search network query too long", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Query: strings.Repeat("x", protocol.MaxSearchQueryLength+1)})
		}},
		{name: "search network offline", world: offline, want: api.ErrOffline, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Query: "sql", Sources: worldID(1)})
		}},
		{name: "search network offline local", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.SearchNetwork(ctx, api.FedSearchRequest{Query: "sql"})
		}},
	}
}

// syncRun is what a Sync reports: its progress, in order.
func syncRun(ctx context.Context, a api.API) (any, error) {
	var progress []api.SyncProgress
	err := a.Sync(ctx, func(p api.SyncProgress) { progress = append(progress, p) })
	return progress, err
}

func syncCases() []contractCase {
	return []contractCase{
		{name: "sync", world: syncWorld(1, 0, 0), mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return syncRun(ctx, a)
		}, check: func(t *testing.T, w *world, res any) {
			ps := res.([]api.SyncProgress)
			if len(ps) == 0 || !ps[len(ps)-1].Done || ps[len(ps)-1].Lessons != 2 || ps[len(ps)-1].Revocations != 1 {
				t.Errorf("progress %+v: want 2 lessons and 1 revocation, done", ps)
			}
		}},
		// Client.Sync returned nil when peers failed: the daemon's error
		// now ends the stream, and the Client returns it.
		{name: "sync one peer fails", world: syncWorld(1, 1, 0), mutates: true, want: protocol.ErrInvalid, resultOnError: true,
			op: func(ctx context.Context, a api.API, w *world) (any, error) { return syncRun(ctx, a) },
			checkErr: func(t *testing.T, w *world, err error) {
				if !strings.Contains(err.Error(), w.vals["bad0"]) || strings.Contains(err.Error(), w.vals["good0"]) {
					t.Errorf("error %q: want the failing peer named, not the good one", err)
				}
			}},
		{name: "sync every peer fails", world: syncWorld(0, 1, 1), want: protocol.ErrInvalid, resultOnError: true,
			op: func(ctx context.Context, a api.API, w *world) (any, error) { return syncRun(ctx, a) },
			checkErr: func(t *testing.T, w *world, err error) {
				if !strings.Contains(err.Error(), w.vals["bad0"]) || !strings.Contains(err.Error(), w.vals["mute0"]) {
					t.Errorf("error %q: want both failing peers named", err)
				}
			}},
		{name: "sync no peers", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return syncRun(ctx, a) }},
		{name: "sync offline", world: offline, want: api.ErrOffline, resultOnError: true,
			op: func(ctx context.Context, a api.API, w *world) (any, error) { return syncRun(ctx, a) }},
	}
}

// trustList is a's TrustList.
func trustList(ctx context.Context, a api.API) (any, error) { return a.TrustList(ctx) }

func trustCases() []contractCase {
	id := worldID
	return []contractCase{
		{name: "trust set", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			for i, l := range []trust.Level{trust.LevelFull, trust.LevelLimited, trust.LevelNone} {
				if err := a.TrustSet(ctx, id(70+i), l, "note "+string(l)); err != nil {
					return nil, err
				}
			}
			return trustList(ctx, a)
		}},
		{name: "trust set bad node", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.TrustSet(ctx, "not-a-node", trust.LevelFull, "")
		}},
		{name: "trust set bad level", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.TrustSet(ctx, id(70), trust.Level("superfull"), "")
		}},
		{name: "trust set self", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.TrustSet(ctx, w.self().ID().String(), trust.LevelFull, "")
		}},
		{name: "trust remove", world: trio, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			if err := a.TrustRemove(ctx, w.nodes[1].ID().String()); err != nil {
				return nil, err
			}
			path, err := a.TrustPath(ctx, w.nodes[2].ID().String())
			if err != nil {
				return nil, err
			}
			list, err := a.TrustList(ctx)
			return map[string]any{"path": path, "list": list}, err
		}},
		{name: "trust remove no edge", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return nil, a.TrustRemove(ctx, id(70))
		}},
		{name: "trust list", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) { return trustList(ctx, a) },
			check: func(t *testing.T, w *world, res any) {
				if l := res.([]api.TrustEntry); len(l) != 3 || l[2].Hops != 2 || l[2].Via != w.nodes[1].ID().String() {
					t.Errorf("trust list %+v: want A, the limited one, and B through A", l)
				}
			}},
		{name: "trust list empty", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return trustList(ctx, a) }},
		{name: "trust path", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustPath(ctx, w.nodes[2].ID().String())
		}},
		{name: "trust path limited", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustPath(ctx, id(60))
		}},
		{name: "trust path unknown", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustPath(ctx, id(61))
		}},
		{name: "trust path no node", world: trio, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustPath(ctx, "")
		}},
		{name: "trust path bad node", world: trio, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustPath(ctx, "not-a-node")
		}},
		{name: "trust export", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			b, err := a.TrustExport(ctx)
			// The bytes themselves: mesh trust export writes them to a
			// file as they come.
			return string(b), err
		}},
		{name: "trust import", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			doc := fmt.Sprintf(`{"version":1,"edges":[{"nodeId":%q,"level":"full","note":"imported","addedAt":1767225600000},{"nodeId":%q,"level":"none","addedAt":1767225600000}]}`, id(70), id(71))
			added, err := a.TrustImport(ctx, []byte(doc))
			if err != nil {
				return nil, err
			}
			again, err := a.TrustImport(ctx, []byte(doc))
			if err != nil {
				return nil, err
			}
			list, err := a.TrustList(ctx)
			return map[string]any{"added": added, "again": again, "list": list}, err
		}},
		{name: "trust import large", world: solo, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			// A valid export of a MiB: larger than a record, as a big
			// web of trust is, and within trust.MaxImportSize.
			doc := fmt.Sprintf(`{"version":1,%s"edges":[{"nodeId":%q,"level":"full"}]}`, strings.Repeat(" ", 1<<20), id(70))
			return a.TrustImport(ctx, []byte(doc))
		}},
		{name: "trust import not JSON", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustImport(ctx, []byte("edges: none"))
		}},
		{name: "trust import not an object", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustImport(ctx, []byte(`[{"nodeId":"x"}]`))
		}},
		{name: "trust import bad version", world: solo, want: protocol.ErrUnsupportedVersion, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustImport(ctx, []byte(`{"version":99,"edges":[]}`))
		}},
		{name: "trust import bad edge", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustImport(ctx, fmt.Appendf(nil, `{"version":1,"edges":[{"nodeId":%q,"level":"superfull"}]}`, id(70)))
		}},
		{name: "trust import too large", world: solo, want: protocol.ErrTooLarge, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TrustImport(ctx, fmt.Appendf(nil, `{"version":1,"edges":[],"pad":%q}`, strings.Repeat("x", trust.MaxImportSize)))
		}},
		{name: "referrals", world: trio, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Referrals(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if rs := res.([]*protocol.Referral); len(rs) != 1 || rs[0].Subject != w.nodes[2].ID().String() {
					t.Errorf("referrals %+v: want A's of B", rs)
				}
			}},
		{name: "referrals none", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Referrals(ctx) }},

		{name: "verify own", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, w.vals["lesson"])
		}, check: func(t *testing.T, w *world, res any) {
			if r := res.(*api.VerifyReport); !r.Valid || r.Revoked {
				t.Errorf("verify own: %+v", r)
			}
		}},
		{name: "verify remote", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, w.vals["remote"])
		}, check: func(t *testing.T, w *world, res any) {
			// The node holds the lesson as its publisher has it, and asked
			// the publisher whether it was revoked.
			if r := res.(*api.VerifyReport); !r.Valid || !r.Trusted || r.Source != "local cache" || r.RevocationSource != "the publisher says it is not revoked" {
				t.Errorf("verify remote: %+v", r)
			}
		}},
		{name: "verify revoked", world: revoked, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, w.vals["lesson"])
		}},
		{name: "verify unknown", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, "nope@"+w.nodes[1].ID().String())
		}},
		{name: "verify no key", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, "")
		}},
		{name: "verify bad key", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.VerifyKey(ctx, "not-a-key")
		}},
	}
}

func directoryCases() []contractCase {
	return []contractCase{
		{name: "directory add", world: dirLinked, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			e, err := a.DirectoryAdd(ctx, w.vals["dir"])
			if err != nil {
				return nil, err
			}
			list, err := a.DirectoryList(ctx)
			return map[string]any{"entry": e, "list": list}, err
		}, check: func(t *testing.T, w *world, res any) {
			if e := res.(map[string]any)["entry"].(*api.DirectoryEntry); e.Registered == 0 || e.Policy == nil || e.Error != "" {
				t.Errorf("directory add: %+v: want registered", e)
			}
		}},
		{name: "directory add unreachable", world: dirLinked, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectoryAdd(ctx, worldID(61))
		}},
		{name: "directory add bad target", world: dirLinked, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectoryAdd(ctx, "ftp://dir.example.org")
		}},
		{name: "directory add self", world: dirLinked, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectoryAdd(ctx, w.self().ID().String())
		}},
		{name: "directory list", world: registered, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.DirectoryList(ctx) }},
		{name: "directory list empty", world: solo, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.DirectoryList(ctx) }},
		{name: "directory remove", world: registered, mutates: true, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			ok, err := a.DirectoryRemove(ctx, w.nodes[1].ID().String())
			if err != nil {
				return nil, err
			}
			list, err := a.DirectoryList(ctx)
			return map[string]any{"removed": ok, "list": list}, err
		}},
		{name: "directory remove unknown", world: registered, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectoryRemove(ctx, "nowhere")
		}},
		{name: "directory search", world: publicDir, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectorySearch(ctx, api.DirectorySearchRequest{Query: "dependencies", Directories: []string{w.vals["url"]}, TrustedOnly: true})
		}, check: func(t *testing.T, w *world, res any) {
			if r := res.(*api.DirectorySearchResult); len(r.Results) != 1 || r.Results[0].Key != w.vals["key"] || !r.Results[0].Trusted {
				t.Errorf("directory search: %+v", r)
			}
		}},
		{name: "directory search nothing", world: publicDir, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectorySearch(ctx, api.DirectorySearchRequest{Query: "kubernetes", Directories: []string{w.vals["url"]}})
		}},
		{name: "directory search no directory", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectorySearch(ctx, api.DirectorySearchRequest{Query: "sql"})
		}},
		{name: "directory search bad URL", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectorySearch(ctx, api.DirectorySearchRequest{Query: "sql", Directories: []string{"ftp://dir.example.org"}})
		}},
		{name: "directory search bad query", world: solo, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.DirectorySearch(ctx, api.DirectorySearchRequest{Query: `"unclosed`, Directories: []string{"http://127.0.0.1:1"}})
		}},
	}
}

func dhtCases() []contractCase {
	id := worldID
	return []contractCase{
		{name: "dht status", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.DHTStatus(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if st := res.(*api.DHTStatus); !st.Enabled || !st.Serving || st.RoutingTable-st.LANRoutingTable != 2 {
					t.Errorf("dht status %+v", st)
				}
			}},
		{name: "dht status off", world: noDHT, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.DHTStatus(ctx) }},
		{name: "dht status offline", world: offline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.DHTStatus(ctx) }},
		{name: "topic nodes", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, contractTopic, 0)
		}, check: func(t *testing.T, w *world, res any) {
			if ns := res.([]api.NodeInfo); len(ns) != 3 {
				t.Errorf("topic nodes %+v: want all three", ns)
			}
		}},
		{name: "topic nodes limit", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			ns, err := a.TopicNodes(ctx, contractTopic, 1)
			return len(ns), err
		}},
		{name: "topic nodes large limit", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, contractTopic, 1000)
		}},
		{name: "topic nodes none", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, "gardening", 0)
		}},
		{name: "topic nodes bad topic", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, "no spaces", 0)
		}},
		{name: "topic nodes no topic", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, "", 0)
		}},
		{name: "topic nodes dht off", world: noDHT, want: api.ErrNoDHT, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, contractTopic, 0)
		}},
		{name: "topic nodes offline", world: offline, want: api.ErrOffline, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.TopicNodes(ctx, contractTopic, 0)
		}},
		{name: "directories", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Directories(ctx, 0) }},
		{name: "directories dht off", world: noDHT, want: api.ErrNoDHT, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.Directories(ctx, 0)
		}},
		{name: "node record", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, w.nodes[1].ID().String())
		}},
		{name: "node record own", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, w.self().ID().String())
		}},
		{name: "node record unknown", world: dhtNet, want: dht.ErrNotFound, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, id(63))
		}},
		{name: "node record bad node", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, "not-a-node")
		}},
		{name: "node record no node", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, "")
		}},
		{name: "node record dht off", world: noDHT, want: api.ErrNoDHT, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.NodeRecord(ctx, id(63))
		}},
		{name: "find node", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.FindNode(ctx, w.nodes[2].ID().String())
		}},
		{name: "find node own", world: dhtNet, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.FindNode(ctx, w.self().ID().String())
		}},
		{name: "find node bad node", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.FindNode(ctx, "not-a-node")
		}},
		{name: "find node no node", world: dhtNet, want: protocol.ErrInvalid, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.FindNode(ctx, "")
		}},
		{name: "find node dht off", world: noDHT, want: api.ErrNoDHT, op: func(ctx context.Context, a api.API, w *world) (any, error) {
			return a.FindNode(ctx, id(63))
		}},
	}
}

func networkCases() []contractCase {
	return []contractCase{
		{name: "network", world: pair, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Network(ctx) },
			check: func(t *testing.T, w *world, res any) {
				if st := res.(*api.NetworkStatus); st.Peers.Direct != 1 || len(st.Addrs) == 0 {
					t.Errorf("network %+v: want one direct peer", st)
				}
			}},
		{name: "network offline", world: offline, want: api.ErrOffline, op: func(ctx context.Context, a api.API, w *world) (any, error) { return a.Network(ctx) }},
	}
}
