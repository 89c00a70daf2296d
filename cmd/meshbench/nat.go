package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/internal/netns"
	"github.com/meshprotocol/mesh/node/api"
)

// The nat scenario: home nodes behind NAT, in network namespaces
// (internal/netns), with real `mesh daemon` processes.
//
// Each run builds a fresh topology: a relay on a public segment, homes a and
// b behind cone NATs (Linux MASQUERADE keeping ports, a stateful firewall, no
// port forwards) and home c behind a symmetric NAT (random ports, the same
// firewall), all three knowing only the relay's address. Identities, trust
// (a and b, a and c trust each other) and the followed topic are set up
// offline; then the three home daemons start at once, a publishes a lesson
// as soon as it is up, and a connects to b and to c by node ID, through the
// relay.
//
//   - first federation: from the start of the home daemons to the lesson
//     being found in b's store;
//   - relayed_ok: the lesson also reached c, whose connection to a is
//     relayed (hole punching cannot work through its NAT), within -wait;
//   - direct_ok: a and b got a direct connection by hole punching within
//     -wait.
func init() {
	scenarios = append(scenarios, scenario{"nat", natFlags})
}

type natResult struct {
	Scenario          string  `json:"scenario"`
	Runs              int     `json:"runs"`
	RelayedOK         int     `json:"relayed_ok"`
	DirectOK          int     `json:"direct_ok"`
	FirstFederationMs float64 `json:"first_federation_ms_p50"`
	FirstFedMaxMs     float64 `json:"first_federation_ms_max"`
	RelayedMs         float64 `json:"relayed_federation_ms_p50"`
	DirectMs          float64 `json:"direct_ms_p50"`
	DirectMaxMs       float64 `json:"direct_ms_max"`
}

type natConfig struct {
	runs int
	mesh string
	wait time.Duration
}

func natFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c natConfig
	fs.IntVar(&c.runs, "runs", 10, "how many times the topology is built and measured")
	fs.StringVar(&c.mesh, "mesh", "", "the mesh binary (default: go build ./cmd/mesh into a temporary directory)")
	fs.DurationVar(&c.wait, "wait", 45*time.Second, "how long each run waits for federation and for the direct connection")
	return func(e *env) (any, error) { return runNAT(context.Background(), e, c) }
}

func runNAT(ctx context.Context, e *env, c natConfig) (*natResult, error) {
	if c.runs <= 0 || c.runs > 1000 || c.wait <= 0 {
		return nil, errors.New("-runs must be 1 to 1000 and -wait positive")
	}
	if err := netns.Check(); err != nil {
		return nil, fmt.Errorf("the nat scenario builds network namespaces: %w", err)
	}
	netns.CleanStale()
	tmp, err := os.MkdirTemp("", "meshbench-nat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := c.mesh
	if bin == "" {
		if bin, err = goBuild(ctx, e, tmp, "cmd/mesh"); err != nil {
			return nil, err
		}
	}
	res := &natResult{Scenario: "nat", Runs: c.runs}
	var first, relayed, direct []time.Duration
	for i := 0; i < c.runs; i++ {
		r, err := natRun(ctx, e, bin, filepath.Join(tmp, fmt.Sprint(i)), c.wait)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		e.logf("run %d: first federation %s, relayed %v (%s), direct %v (%s)", i+1,
			r.first.Round(time.Millisecond), r.relayedOK, r.relayed.Round(time.Millisecond), r.directOK, r.direct.Round(time.Millisecond))
		if r.firstOK {
			first = append(first, r.first)
		}
		if r.relayedOK {
			res.RelayedOK++
			relayed = append(relayed, r.relayed)
		}
		if r.directOK {
			res.DirectOK++
			direct = append(direct, r.direct)
		}
	}
	res.FirstFederationMs, res.FirstFedMaxMs = round(ms(median(first)), 1), round(ms(maxDur(first)), 1)
	res.RelayedMs = round(ms(median(relayed)), 1)
	res.DirectMs, res.DirectMaxMs = round(ms(median(direct)), 1), round(ms(maxDur(direct)), 1)
	return res, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

type natRunResult struct {
	first, relayed, direct       time.Duration
	firstOK, relayedOK, directOK bool
}

// natRun builds one topology, runs the daemons, measures and tears all down.
func natRun(ctx context.Context, e *env, bin, dir string, wait time.Duration) (r natRunResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*wait+time.Minute)
	defer cancel()
	topo, err := netns.Build(ctx, netns.Cone, netns.Cone, netns.Symmetric)
	if err != nil {
		return r, err
	}
	defer topo.Close()
	var daemons []*netns.Daemon
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range daemons {
			if err != nil {
				e.logf("logs of %s:\n%s", d.NS, d.Logs())
			}
			d.Kill()
		}
	}()
	run := func(ns, repo string, args ...string) (string, error) { return netns.Mesh(ctx, bin, ns, repo, args...) }
	id := func(ns, repo string) (string, error) {
		out, err := run(ns, repo, "--json", "init")
		if err != nil {
			return "", err
		}
		var v struct {
			NodeID string `json:"nodeId"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.NodeID == "" {
			return "", fmt.Errorf("init: %q", out)
		}
		return v.NodeID, nil
	}
	relayRepo := filepath.Join(dir, "relay")
	relayID, err := id(topo.Server, relayRepo)
	if err != nil {
		return r, err
	}
	rd, err := netns.StartDaemon(ctx, bin, topo.Server, relayRepo, "--relay", "--reachability", "public")
	if err != nil {
		return r, err
	}
	daemons = append(daemons, rd)
	type home struct {
		ns, repo, id string
	}
	homes := make([]home, 3)
	for i := range homes {
		homes[i] = home{ns: topo.Homes[i].NS, repo: filepath.Join(dir, fmt.Sprintf("home%d", i))}
		if homes[i].id, err = id(homes[i].ns, homes[i].repo); err != nil {
			return r, err
		}
		if _, err = run(homes[i].ns, homes[i].repo, "follow", "bench"); err != nil {
			return r, err
		}
	}
	a, b, c := homes[0], homes[1], homes[2]
	for _, p := range [][2]home{{a, b}, {b, a}, {a, c}, {c, a}} {
		if _, err = run(p[0].ns, p[0].repo, "trust", "add", p[1].id, "--level", "full"); err != nil {
			return r, err
		}
	}
	via := []string{
		"--relay-via", fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", netns.ServerIP, relayID),
		"--relay-via", fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s", netns.ServerIP, relayID),
	}

	// The three homes start at once.
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(homes))
	for i, h := range homes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := netns.StartDaemon(ctx, bin, h.ns, h.repo, via...)
			errs[i] = err
			if err == nil {
				mu.Lock()
				daemons = append(daemons, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err = errors.Join(errs...); err != nil {
		return r, err
	}
	out, err := run(a.ns, a.repo, "--json", "store", "--title", "Bench lesson from home a", "--content", "Crossing home routers with a relay and hole punching.")
	if err != nil {
		return r, err
	}
	var st struct {
		ID string `json:"id"`
	}
	if err = json.Unmarshal([]byte(out), &st); err != nil {
		return r, err
	}
	if _, err = run(a.ns, a.repo, "publish", st.ID, "--visibility", "public", "--topic", "bench"); err != nil {
		return r, err
	}

	deadline := t0.Add(wait)
	poll := func(cond func() bool) (time.Duration, bool) {
		for i := 0; i < int(wait/(50*time.Millisecond))+100; i++ {
			if cond() {
				return time.Since(t0), true
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return 0, false
	}
	reserved := func(h home) func() bool {
		return func() bool {
			out, err := run(h.ns, h.repo, "--json", "status")
			var s api.Status
			return err == nil && json.Unmarshal([]byte(out), &s) == nil && s.Network != nil && len(s.Network.Reservations) > 0
		}
	}
	has := func(h home) func() bool {
		return func() bool {
			out, err := run(h.ns, h.repo, "--json", "search", "bench lesson relay hole punching")
			return err == nil && strings.Contains(out, a.id)
		}
	}
	peer := func(h home, id string) (api.PeerInfo, bool) {
		out, err := run(h.ns, h.repo, "--json", "peers")
		var ps []api.PeerInfo
		if err != nil || json.Unmarshal([]byte(out), &ps) != nil {
			return api.PeerInfo{}, false
		}
		for _, p := range ps {
			if p.ID == id {
				return p, true
			}
		}
		return api.PeerInfo{}, false
	}
	// a reaches b, then c, by node ID through the relay, once each holds a
	// slot there.
	for _, h := range []home{b, c} {
		if _, ok := poll(reserved(h)); !ok {
			return r, fmt.Errorf("%s got no relay reservation within %s", h.ns, wait)
		}
		if _, ok := poll(func() bool { _, err := run(a.ns, a.repo, "connect", h.id); return err == nil }); !ok {
			return r, fmt.Errorf("a could not connect to %s through the relay within %s", h.ns, wait)
		}
	}
	r.first, r.firstOK = poll(has(b))
	r.relayed, r.relayedOK = poll(has(c))
	if r.relayedOK {
		if p, ok := peer(a, c.id); !ok || p.Connection != "relayed" {
			r.relayedOK = false
			e.logf("c is connected to a but not through the relay: %+v", p)
		}
	}
	r.direct, r.directOK = poll(func() bool {
		p, ok := peer(a, b.id)
		return ok && p.Connection == "direct" && p.HolePunched
	})
	return r, nil
}
