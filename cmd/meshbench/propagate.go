package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/pubsub"
)

// propagateResult is the JSON line of the propagate scenario.
type propagateResult struct {
	Scenario string `json:"scenario"`
	// Procs: every node was a mesh daemon process of its own (-procs).
	Procs     bool    `json:"procs,omitempty"`
	Nodes     int     `json:"nodes"`
	LatencyMs int     `json:"latency_ms"`
	Degree    float64 `json:"degree"`
	BoundMs   float64 `json:"bound_ms"`
	// MeshReadyMs is how long after the last connection GossipSub's meshes
	// took to join every node (see waitMeshes); publishing starts then.
	MeshReadyMs float64 `json:"mesh_ready_ms"`
	// SettleMs is how long after that the process took to idle (waitIdle).
	SettleMs      float64 `json:"settle_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	Delivered     float64 `json:"delivered"`
	RevokeP50Ms   float64 `json:"revoke_p50_ms"`
	RevokeP99Ms   float64 `json:"revoke_p99_ms"`
	RevokeDeliv   float64 `json:"revoke_delivered"`
	LateJoinerMs  float64 `json:"late_joiner_ms"`
	LateJoinerOK  bool    `json:"late_joiner_consistent"`
	LateSyncPages int     `json:"late_joiner_sync_rounds"`
	RSSMB         float64 `json:"rss_mb"`
	// CPUPerDelivery is the process's CPU time over the publishing and
	// revoking phases and cpuTail after them (less the idle cost of the
	// tail) divided by the deliveries in them (one node storing one lesson
	// or revocation): what one hop of the network costs, summed over every
	// node's validation, forwarding, storing and indexing.
	CPUPerDelivery float64 `json:"cpu_us_per_delivery"`
	// DroppedRPCs (in one process only) is how many GossipSub RPCs the
	// nodes dropped over the publishing and revoking because a peer's
	// outbound queue was full: a lesson that reaches a node late may have
	// been dropped on its way (pubsub.Stats.DroppedRPCs).
	DroppedRPCs *int `json:"dropped_rpcs,omitempty"`
	// ProxyLateP99Ms and ProxyLateMaxMs (-procs only) say how late the
	// delaying proxies' writes began over the publishing and revoking:
	// what the harness itself added to the hops.
	ProxyLateP99Ms float64 `json:"proxy_late_p99_ms,omitempty"`
	ProxyLateMaxMs float64 `json:"proxy_late_max_ms,omitempty"`
}

type propagateConfig struct {
	nodes    int
	latency  time.Duration
	messages int
	degree   int
	seed     uint64
	timeout  time.Duration
	disk     bool
	procs    bool
	mesh     string
	args     []string // the flags given, for -procs to run itself again
}

func propagateFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c propagateConfig
	fs.IntVar(&c.nodes, "nodes", 100, "number of nodes (real libp2p hosts on mocknet)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency of every link")
	fs.IntVar(&c.messages, "messages", 50, "lessons published, each by a random node")
	fs.IntVar(&c.degree, "degree", 8, "mean connections per node (sparse random graph)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed for the graph and the publishers")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Second, "how long to wait for one message to reach every node")
	fs.BoolVar(&c.disk, "disk", false, "give every node a repo on disk (pebble and an on-disk index, as a daemon has) instead of an in-memory store")
	fs.BoolVar(&c.procs, "procs", false, "run every node as a mesh daemon process of its own, each behind a proxy that delays its links, in a network namespace (root; see propagateprocs.go)")
	fs.StringVar(&c.mesh, "mesh", "", "with -procs: the mesh binary (default: go build ./cmd/mesh into a temporary directory)")
	return func(e *env) (any, error) {
		fs.Visit(func(f *flag.Flag) { c.args = append(c.args, "-"+f.Name+"="+f.Value.String()) })
		if c.nodes < 3 || c.messages <= 0 || c.degree < 2 || c.latency < 0 {
			return nil, errors.New("-nodes must be at least 3, -messages positive, -degree at least 2")
		}
		if c.procs {
			return runPropagateProcs(context.Background(), e, c)
		}
		return runPropagate(context.Background(), e, c)
	}
}

// benchNode is one node of the simulated network.
type benchNode struct {
	n   *node.Node
	idx int
}

func runPropagate(ctx context.Context, e *env, c propagateConfig) (*propagateResult, error) {
	rng := mrand.New(mrand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15))
	var repos string
	if c.disk {
		dir, err := os.MkdirTemp("", "meshbench-propagate-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir) // after net.Close, deferred below: the nodes write there until then
		repos = dir
	}
	net := nodetest.NewNet(c.latency)
	net.LinkNone() // links only along the graph's edges, below
	defer net.Close()
	mn := net.Mocknet()

	// The late joiner is node 0: created now, linked and connected only after
	// the publishing and revoking are done.
	total := c.nodes + 1 // the network, plus the late joiner (node 0)
	nodes := make([]*node.Node, total)
	e.logf("starting %d nodes on mocknet, %s links", total, c.latency)
	for i := range nodes {
		cfg := node.Config{Topics: []string{"bench"}}
		if c.disk {
			cfg.RepoDir = filepath.Join(repos, strconv.Itoa(i))
		}
		var err error
		if nodes[i], err = net.Start(ctx, cfg); err != nil {
			return nil, err
		}
	}

	// Every node trusts every publisher directly: trust is not what this
	// scenario measures, and the default refuses untrusted publishers.
	if err := nodetest.TrustEach(nodes...); err != nil {
		return nil, err
	}

	online := total - 1
	adj := withLateJoiner(randomGraph(rng, online, c.degree))
	var edgeCount int
	for a := 1; a < total; a++ {
		for b := range adj[a] {
			if a < b {
				edgeCount++
				if _, err := mn.LinkPeers(nodes[a].ID(), nodes[b].ID()); err != nil {
					return nil, err
				}
			}
		}
	}
	e.logf("connecting %d edges (mean degree %.1f)", edgeCount, 2*float64(edgeCount)/float64(online))
	if err := connectEdges(mn, nodes, adj, 1); err != nil {
		return nil, err
	}
	// GossipSub forms its meshes over a few heartbeats. Publishing starts
	// once they can carry a message everywhere: no node has an empty mesh
	// and the meshes' edges join every node, throughout a heartbeat (the
	// first heartbeats still prune over-full meshes). Not every
	// node reaches Dlo: a node whose peer pruned it from a mesh over Dhi
	// may not graft that peer again for the prune backoff (a minute).
	meshReady, err := waitMeshes(nodeMeshes(nodes[1:], "bench"), adj[1:], 60*time.Second)
	if err != nil {
		return nil, err
	}
	e.logf("meshes joined every node after %.0f ms", float64(meshReady.Microseconds())/1000)
	// Each node's start-up goes on after its meshes form: the DHT's
	// routing-table refresh and the directory record's publication are
	// lookups across the network. In one process, 300 start-ups keep both
	// cores busy for seconds after the meshes formed, and the first
	// messages would time them instead of propagation. A real network
	// spreads them over its nodes' own CPUs: wait for the process to idle.
	settled := waitIdle(e, "start-up work", 0.25, 60*time.Second)

	e.heapProfile("propagate-before") // with -pprof: what the run allocates is the difference
	idle := idleCores(cpuTime, time.Second)
	stop := e.profile("propagate")
	drops0 := droppedRPCs(nodes)
	cpu0 := cpuTime()
	publishers := drawPublishers(rng, c.messages, online)
	ph, err := measurePhases(ctx, e, c, online, publishers,
		func(p int) publisher { return nodes[p] },
		func(p int) float64 { return float64(eccentricity(adj, p, 1)) * ms(c.latency) },
		func(p int, key string, revocation bool) (int, time.Time) {
			return waitAll(ctx, nodes[1:], p-1, c.timeout, func(n *node.Node) bool {
				if revocation {
					return n.Store().Revoked(ctx, key)
				}
				_, ok := n.Store().HeldVersion(ctx, key)
				return ok
			})
		})
	if err != nil {
		return nil, err
	}
	drops := droppedRPCs(nodes) - drops0
	cpu := cpuAfterTail(cpu0, idle, cpuTime)
	stop()

	// The late joiner connects to a few nodes and must become consistent:
	// every surviving lesson and every revocation.
	late := nodes[0]
	for _, b := range rng.Perm(online)[:min(4, online)] {
		addEdge(adj, 0, b+1)
		if _, err := mn.LinkPeers(late.ID(), nodes[b+1].ID()); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := connectEdges(mn, nodes, adj, 0); err != nil {
		return nil, err
	}
	consistent := func() bool {
		for m, key := range ph.keys {
			if m%2 == 0 {
				if !late.Store().Revoked(ctx, key) {
					return false
				}
			} else if _, ok := late.Store().HeldVersion(ctx, key); !ok {
				return false
			}
		}
		return true
	}
	got, lastLate := waitAll(ctx, []*node.Node{late}, -1, 2*c.timeout, func(*node.Node) bool { return consistent() })
	lateMs := float64(lastLate.Sub(start).Microseconds()) / 1000
	// One explicit sync round afterwards must find nothing new if the
	// automatic round on connect already made it consistent.
	rounds := 1
	if got == 0 {
		rounds = 2
		_ = late.Sync(ctx, nil)
	}

	rss := rssMB()
	e.heapProfile("propagate")
	res := &propagateResult{
		Scenario: "propagate", Nodes: c.nodes, LatencyMs: int(c.latency.Milliseconds()),
		Degree:       round(2*float64(edgeCount)/float64(online), 2),
		MeshReadyMs:  round(float64(meshReady.Microseconds())/1000, 1),
		SettleMs:     round(float64(settled.Microseconds())/1000, 1),
		LateJoinerMs: round(lateMs, 1), LateJoinerOK: got == 1 || consistent(), LateSyncPages: rounds,
		RSSMB: rss, DroppedRPCs: &drops,
	}
	ph.fill(res, cpu)
	return res, nil
}

// droppedRPCs sums the GossipSub RPCs the nodes dropped so far.
func droppedRPCs(nodes []*node.Node) int {
	n := 0
	for _, nd := range nodes {
		n += nd.Pubsub().Stats().DroppedRPCs
	}
	return n
}

// drawPublishers draws the publisher of each message among nodes 1..online.
func drawPublishers(rng *mrand.Rand, messages, online int) []int {
	publishers := make([]int, messages)
	for m := range publishers {
		publishers[m] = rng.IntN(online) + 1
	}
	return publishers
}

// publisher is what the measured phases ask of a publishing node: a
// node.Node in process, or a daemon's httpapi.Client.
type publisher interface {
	Put(ctx context.Context, rec *protocol.Lesson) (string, bool, error)
	Publish(ctx context.Context, id string, opts api.PublishOptions) (*protocol.SignedLesson, error)
	Revoke(ctx context.Context, id, reason string) (*protocol.Revocation, error)
}

// phases is what the publishing and revoking phases measured.
type phases struct {
	keys                             []string // of each message's lesson
	lat, revLat, bounds              []float64
	delivered, revDelivered, revoked int
	online, messages                 int
}

// measurePhases publishes one lesson from each of publishers in turn and
// waits until it reaches the other online-1 nodes, then revokes every
// other one the same way. nodeOf gives the publishing node, bound the
// propagation bound from a publisher in ms, and wait how many of the
// others stored a key (its revocation if revocation) and when the last
// did.
func measurePhases(ctx context.Context, e *env, c propagateConfig, online int, publishers []int,
	nodeOf func(p int) publisher, bound func(p int) float64,
	wait func(p int, key string, revocation bool) (int, time.Time)) (*phases, error) {
	ph := &phases{keys: make([]string, len(publishers)), online: online, messages: len(publishers)}
	ids := make([]string, len(publishers))
	for m, p := range publishers {
		ph.bounds = append(ph.bounds, bound(p))
		id, _, err := nodeOf(p).Put(ctx, &protocol.Lesson{Type: "lesson", Title: fmt.Sprintf("bench lesson %d", m), Content: "propagation benchmark lesson"})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		sl, err := nodeOf(p).Publish(ctx, id, api.PublishOptions{Visibility: "public", Topics: []string{"bench"}})
		if err != nil {
			return nil, err
		}
		ids[m], ph.keys[m] = id, sl.Key()
		got, last := wait(p, ph.keys[m], false)
		ph.delivered += got
		if got == online-1 {
			ph.lat = append(ph.lat, ms(last.Sub(start)))
		}
		e.logf("message %d from node %d at %s: %d/%d nodes, last after %.1f ms (bound %.0f ms)", m, p, sinceStart(start), got, online-1, ms(last.Sub(start)), ph.bounds[m])
	}
	for m := 0; m < len(publishers); m += 2 {
		p := publishers[m]
		start := time.Now()
		if _, err := nodeOf(p).Revoke(ctx, ids[m], protocol.ReasonOutdated); err != nil {
			return nil, err
		}
		ph.revoked++
		got, last := wait(p, ph.keys[m], true)
		ph.revDelivered += got
		if got == online-1 {
			ph.revLat = append(ph.revLat, ms(last.Sub(start)))
		}
		e.logf("revocation of message %d at %s: %d/%d nodes, last after %.1f ms (bound %.0f ms)", m, sinceStart(start), got, online-1, ms(last.Sub(start)), ph.bounds[m])
	}
	e.logf("revoked %d lessons", ph.revoked)
	sort.Float64s(ph.lat)
	sort.Float64s(ph.revLat)
	return ph, nil
}

// processStart is about when the process started: GODEBUG=gctrace=1 stamps
// each collection with the seconds since then (@12.345s), and the
// measured messages' log lines carry the same clock, so that the two can
// be read side by side.
var processStart = time.Now()

// sinceStart formats t as seconds since processStart, as gctrace does.
func sinceStart(t time.Time) string {
	return fmt.Sprintf("@%.3fs", t.Sub(processStart).Seconds())
}

// fill sets res's figures of the phases, cpu being the CPU time they took.
func (ph *phases) fill(res *propagateResult, cpu time.Duration) {
	res.BoundMs = round(mean(ph.bounds), 1)
	res.P50Ms, res.P99Ms = round(quantile(ph.lat, 0.5), 1), round(quantile(ph.lat, 0.99), 1)
	res.Delivered = round(float64(ph.delivered)/float64(ph.messages*(ph.online-1)), 4)
	res.RevokeP50Ms, res.RevokeP99Ms = round(quantile(ph.revLat, 0.5), 1), round(quantile(ph.revLat, 0.99), 1)
	res.RevokeDeliv = round(float64(ph.revDelivered)/float64(ph.revoked*(ph.online-1)), 4)
	res.CPUPerDelivery = round(float64(cpu.Microseconds())/float64(max(ph.delivered+ph.revDelivered, 1)), 1)
}

// withLateJoiner renumbers a graph's nodes from 1 and adds node 0, the
// late joiner, without edges.
func withLateJoiner(g []map[int]bool) []map[int]bool {
	adj := make([]map[int]bool, len(g)+1)
	adj[0] = map[int]bool{}
	for a, peers := range g {
		adj[a+1] = make(map[int]bool, len(peers))
		for b := range peers {
			adj[a+1][b+1] = true
		}
	}
	return adj
}

func addEdge(adj []map[int]bool, a, b int) {
	if a != b {
		adj[a][b], adj[b][a] = true, true
	}
}

// cpuTail is how long a run goes on counting CPU time after its last
// message: the nodes apply the index updates of received lessons in
// batches a while later (the store's index queue, then bleve's persister),
// and that work is part of what a delivery costs.
const cpuTail = 3 * time.Second

// idleCores is how many cores cpu's processes use over d when nothing is
// sent: heartbeats, timers.
func idleCores(cpu func() time.Duration, d time.Duration) float64 {
	c0, t0 := cpu(), time.Now()
	time.Sleep(d)
	return float64(cpu()-c0) / float64(time.Since(t0))
}

// cpuAfterTail waits cpuTail and returns the CPU time used since cpu0,
// less what idling at idle cores costs over the tail.
func cpuAfterTail(cpu0 time.Duration, idle float64, cpu func() time.Duration) time.Duration {
	time.Sleep(cpuTail)
	return cpu() - cpu0 - time.Duration(idle*float64(cpuTail))
}

// connectEdges connects every edge of node from (or, with from = 1, every
// edge among nodes 1..N-1), in parallel.
func connectEdges(mn mocknet.Mocknet, nodes []*node.Node, adj []map[int]bool, from int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*8)
	for a := range nodes {
		if from == 0 && a != 0 {
			continue
		}
		if from == 1 && a == 0 {
			continue
		}
		for b := range adj[a] {
			if from == 1 && (b == 0 || b < a) {
				continue
			}
			wg.Add(1)
			go func(a, b int) {
				defer wg.Done()
				if _, err := mn.ConnectPeers(nodes[a].ID(), nodes[b].ID()); err != nil {
					errs <- err
				}
			}(a, b)
		}
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitAll waits until cond holds for every node except skip, or timeout;
// it returns how many made it and when the last one did.
func waitAll(ctx context.Context, nodes []*node.Node, skip int, timeout time.Duration, cond func(*node.Node) bool) (int, time.Time) {
	deadline := time.Now().Add(timeout)
	var mu sync.Mutex
	var last time.Time
	count := 0
	var wg sync.WaitGroup
	for i, n := range nodes {
		if i == skip {
			continue
		}
		wg.Add(1)
		go func(n *node.Node) {
			defer wg.Done()
			for {
				ch := n.Store().Updated()
				if cond(n) {
					now := time.Now()
					mu.Lock()
					count++
					if now.After(last) {
						last = now
					}
					mu.Unlock()
					return
				}
				select {
				case <-ch:
				case <-time.After(time.Until(deadline)):
					return
				case <-ctx.Done():
					return
				}
			}
		}(n)
	}
	wg.Wait()
	return count, last
}

// eccentricity is the BFS distance in hops from src to the farthest node,
// over nodes >= lo.
func eccentricity(adj []map[int]bool, src, lo int) int {
	dist := map[int]int{src: 0}
	queue := []int{src}
	far := 0
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for w := range adj[v] {
			if w < lo {
				continue
			}
			if _, seen := dist[w]; !seen {
				dist[w] = dist[v] + 1
				far = max(far, dist[w])
				queue = append(queue, w)
			}
		}
	}
	return far
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// quantile of sorted xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// rssMB is this process's resident set in MiB (Linux), or 0.
func rssMB() float64 {
	st, err := procStatus(os.Getpid())
	if err != nil {
		return 0
	}
	return round(float64(st["VmRSS"])/1024, 1)
}

// meshReader reads each node's GossipSub mesh for a topic, as indexes
// into the nodes (peers outside them left out).
type meshReader func() ([][]int, error)

// nodeMeshes reads the meshes of in-process nodes.
func nodeMeshes(nodes []*node.Node, topic string) meshReader {
	index := make(map[peer.ID]int, len(nodes))
	for i, n := range nodes {
		index[n.ID()] = i
	}
	return func() ([][]int, error) {
		out := make([][]int, len(nodes))
		for i, n := range nodes {
			for _, p := range n.Pubsub().MeshPeers(topic) {
				if j, ok := index[p]; ok {
					out[i] = append(out[i], j)
				}
			}
		}
		return out, nil
	}
}

// waitMeshes waits until meshState finds no empty mesh and one connected
// part at every check throughout a GossipSub heartbeat, and returns how
// long after the first check that began.
func waitMeshes(read meshReader, adj []map[int]bool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var since time.Time // when the meshes were last found joined, or zero
	for {
		meshes, err := read()
		if err != nil {
			return 0, err
		}
		empty, below, parts := meshState(meshes, adj)
		switch {
		case empty > 0 || parts > 1:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= pubsub.DefaultParams().Gossip.HeartbeatInterval:
			return since.Sub(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("meshes not formed after %s: %d nodes with an empty mesh, %d below min(Dlo, degree), %d parts", timeout, empty, below, parts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// meshState reports how far the meshes (each node's mesh peers, as
// indexes) have formed over a graph: how many nodes have an empty mesh,
// how many hold fewer mesh peers than min(Dlo, their degree), and how many
// connected parts the union of the meshes' edges has (1 once every message
// can reach every node along meshes alone).
func meshState(meshes [][]int, adj []map[int]bool) (empty, below, parts int) {
	dlo := pubsub.DefaultParams().Gossip.Dlo
	links := make([][]int, len(meshes))
	for i, mesh := range meshes {
		if len(mesh) == 0 {
			empty++
		}
		if len(mesh) < min(dlo, len(adj[i])) {
			below++
		}
		for _, j := range mesh {
			links[i] = append(links[i], j)
			links[j] = append(links[j], i)
		}
	}
	seen := make([]bool, len(meshes))
	for i := range meshes {
		if seen[i] {
			continue
		}
		parts++
		stack := []int{i}
		seen[i] = true
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, b := range links[a] {
				if !seen[b] {
					seen[b] = true
					stack = append(stack, b)
				}
			}
		}
	}
	return empty, below, parts
}
