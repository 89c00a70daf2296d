package directory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// offsetClock is the real time plus an offset a test moves forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// TestPublicNodesListsNoMereConnections: /v1/nodes and /v1/nodes/{id}
// never show a peer only because it is connected, nor a registrant's
// private or loopback addresses.
func TestPublicNodesListsNoMereConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newNet(t)
	d := newDirectory(t, m)
	p := nodetest.MockNode(t, m, node.Config{})
	nodetest.Connect(t, p, d)
	nodes := func() []directory.PublicNode {
		var r struct {
			Nodes []directory.PublicNode `json:"nodes"`
		}
		status, v, raw := call(t, "GET", publicURL(d)+"/v1/nodes", nil)
		if status != 200 || json.Unmarshal(v.Body, &r) != nil {
			t.Fatalf("nodes: %d %s", status, raw)
		}
		return r.Nodes
	}
	if got := nodes(); len(got) != 0 {
		t.Fatalf("a merely connected peer is listed: %+v", got)
	}
	// It may be described from its own signed node record, once it has
	// put one in the DHT (it does so soon after connecting), but never
	// from the connection: not as connected, not with addresses of its
	// own that no record states.
	switch status, v, raw := call(t, "GET", publicURL(d)+"/v1/nodes/"+p.ID().String(), nil); status {
	case 404:
	case 200:
		var r struct {
			Node directory.PublicNode `json:"node"`
		}
		if err := json.Unmarshal(v.Body, &r); err != nil || r.Node.Record == nil || r.Node.Connected || r.Node.Registered ||
			!slices.Equal(r.Node.Addrs, r.Node.Record.Addrs) {
			t.Fatalf("a merely connected peer is described, not from its record: %s", raw)
		}
	default:
		t.Fatalf("a merely connected peer: %d %s", status, raw)
	}
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	got := nodes()
	if len(got) != 1 || got[0].NodeID != p.ID().String() || !got[0].Registered {
		t.Fatalf("the registrant: %+v", got)
	}
	if len(p.Host().Addrs()) == 0 {
		t.Fatal("the registrant has no address: the test proves nothing")
	}
	for _, a := range got[0].Addrs {
		t.Fatalf("a loopback address of a registrant is served: %s", a)
	}
	if status, _, raw := call(t, "GET", publicURL(d)+"/v1/nodes/"+p.ID().String(), nil); status != 200 {
		t.Fatalf("the registrant: %d %s", status, raw)
	}
}

// TestNodeRecordAndPolicyCapTopics: a node following 65 topics still
// publishes its node record (with the first 64 in sorted order), and a
// directory of 65 topics still states a policy that encodes.
func TestNodeRecordAndPolicyCapTopics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	topics := make([]string, protocol.MaxTags+1)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic%03d", len(topics)-i) // not in sorted order
	}
	m := newNet(t)
	boot := dhtNode(t, m, "server", nil, node.Config{})
	n := dhtNode(t, m, "server", boot, node.Config{Topics: topics, Directory: directory.Config{Enabled: true, Topics: topics}})
	want := slices.Sorted(slices.Values(topics))[:protocol.MaxTags]
	var rec *protocol.NodeRecord
	nodetest.Eventually(t, "the node record on the DHT", func() bool {
		r, err := boot.NodeRecord(ctx, n.ID().String())
		rec = r
		return err == nil && r != nil
	})
	if !slices.Equal(rec.Topics, want) {
		t.Fatalf("record topics %v, want the first %d in sorted order", rec.Topics, protocol.MaxTags)
	}
	pol := n.Directory().Policy()
	if err := pol.Validate(); err != nil || !slices.Equal(pol.Topics, want) {
		t.Fatalf("policy: %v, topics %v", err, pol.Topics)
	}
}

// TestPublicSearchAnswerBudget: a search answer stops adding lessons past
// its budget of bytes, and says there are more.
func TestPublicSearchAnswerBudget(t *testing.T) {
	t.Parallel()
	_, nodes := nodetest.Mock(t, 1, 0, node.Config{Directory: directory.Config{PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	n := nodes[0]
	big := strings.Repeat("zebra stripes wide ", 110<<10/19)
	const count = 12 // 12 × ~110 KB > 1 MiB
	if count*len(big) <= directory.PublicAnswerBudget {
		t.Fatal("the lessons fit the budget: the test proves nothing")
	}
	for i := range count {
		nodetest.Publish(t, n, fmt.Sprintf("zebra %d", i), big, protocol.VisibilityPublic)
	}
	body, _ := json.Marshal(protocol.DirectorySearchRequest{Query: "zebra", Limit: 100})
	status, v, raw := call(t, "POST", publicURL(n)+"/v1/search", body)
	if status != 200 {
		t.Fatalf("%d %.400s", status, raw)
	}
	r, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Results) == 0 || len(r.Results) >= count || !r.More {
		t.Fatalf("%d results, more=%v: want fewer than %d and more", len(r.Results), r.More, count)
	}
	if len(raw) > directory.PublicAnswerBudget+protocol.MaxSignedLessonSize {
		t.Fatalf("answer of %d bytes, over the budget by more than a lesson", len(raw))
	}
}

// TestDirectoryRetentionEverywhere: a lesson published before the
// directory's retention is served by no route: not by /v1/search, not by
// /v1/lessons/{key}, not by /mesh/search/1.0.0.
func TestDirectoryRetentionEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &offsetClock{}
	clk.Advance(-3 * 24 * time.Hour)
	m := newNet(t)
	p := nodetest.MockNode(t, m, node.Config{Now: clk.Now})
	d := nodetest.MockNode(t, m, node.Config{Directory: directory.Config{Enabled: true, RetentionDays: 1, PublicAPI: "127.0.0.1:0", RateLimit: 1000}})
	user := nodetest.MockNode(t, m, node.Config{})
	old := nodetest.Publish(t, p, "Quokka husbandry", "quokka feeding schedule", protocol.VisibilityPublic)
	clk.Advance(3 * 24 * time.Hour)
	fresh := nodetest.Publish(t, p, "Quokka habitat", "quokka burrows", protocol.VisibilityPublic)
	if _, err := p.Directory().RegisterWith(ctx, d.ID().String(), []string{d.Addrs()[0].String()}); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the directory holds both lessons", func() bool { return nodetest.HasRemote(d, old.Key()) && nodetest.HasRemote(d, fresh.Key()) })
	if keys := resultKeys(publicSearch(t, d, "quokka")); len(keys) != 1 || keys[0] != fresh.Key() {
		t.Fatalf("/v1/search: %v, want only %s", keys, fresh.Key())
	}
	if status, _, raw := call(t, "GET", publicURL(d)+"/v1/lessons/"+old.Key(), nil); status != 404 {
		t.Fatalf("/v1/lessons of a lesson past retention: %d %s", status, raw)
	}
	if status, _, raw := call(t, "GET", publicURL(d)+"/v1/lessons/"+fresh.Key(), nil); status != 200 {
		t.Fatalf("/v1/lessons of a fresh lesson: %d %.300s", status, raw)
	}
	// /mesh/search/1.0.0, asked by a user who trusts the publisher and
	// takes old lessons: only the directory's retention can leave one out.
	nodetest.SetTrust(t, user, p, trust.LevelFull)
	nodetest.Connect(t, user, d)
	res, err := user.SearchNetwork(ctx, api.FedSearchRequest{Query: "quokka", Sources: d.ID().String(), Limit: 10, Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 1 || res.Results[0].Key != fresh.Key() || res.Truncated {
		var keys []string
		for _, r := range res.Results {
			keys = append(keys, r.Key)
		}
		t.Fatalf("/mesh/search results: %v (truncated %v), want only %s", keys, res.Truncated, fresh.Key())
	}
}
