package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/trust"
)

// The -procs mode of the propagate scenario runs every node as its own
// `mesh daemon` process, so that each has its own heap and garbage
// collector as on a real network: in one process, a GC cycle marks the
// heaps of all the nodes at once and slows every message it meets.
//
// meshbench re-executes itself in a new network namespace (procsChildEnv
// set), which dies with it. There, node i listens on TCP at 127.1.x.y and
// announces 127.2.x.y (procsAddr), where this process runs a proxy that
// forwards to it with -latency of delay each way: a one-way link delay, as
// mocknet's. (This kernel has no netem to delay packets.) iptables refuses
// connections between the daemons that bypass the proxies. The daemons' APIs
// stay on 127.0.0.1, undelayed. DHT, mDNS and relays are off: the
// connections are the graph's edges, as on mocknet (the run checks that
// from each daemon's peer list, and computes the bound on the connections
// found). A daemon run with -v logs each record it stores from gossip or
// sync, to the millisecond: those lines time the deliveries.
const procsChildEnv = "MESHBENCH_PROPAGATE_NETNS"

// runPropagateProcs is the -procs mode.
func runPropagateProcs(ctx context.Context, e *env, c propagateConfig) (*propagateResult, error) {
	if os.Getenv(procsChildEnv) != "" {
		return propagateDaemons(ctx, e, c)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("-procs builds a network namespace: run as root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("-procs needs %s (apt-get install -y iproute2 iptables)", tool)
		}
	}
	if c.nodes > 2000 { // each daemon holds about 65 MB
		return nil, errors.New("-procs: at most 2000 nodes")
	}
	args := append([]string{"propagate"}, c.args...)
	if c.mesh == "" {
		tmp, err := os.MkdirTemp("", "meshbench-propagate-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		bin, err := goBuild(ctx, e, tmp, "cmd/mesh")
		if err != nil {
			return nil, err
		}
		args = append(args, "-mesh", bin)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), procsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, e.stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("meshbench in its network namespace: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res propagateResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return nil, fmt.Errorf("meshbench in its network namespace printed %q: %w", out.String(), err)
	}
	return &res, nil
}

// procsAddr is node i's listen address (net 1) or its proxy's (net 2).
func procsAddr(net, i int) string {
	return fmt.Sprintf("127.%d.%d.%d:4001", net, i/250, i%250+1)
}

// procsMultiaddr is the TCP multiaddr of procsAddr.
func procsMultiaddr(net, i int) string {
	host, port, _ := strings.Cut(procsAddr(net, i), ":")
	return "/ip4/" + host + "/tcp/" + port
}

// isolateDaemons brings lo up and makes iptables refuse TCP connections
// from one daemon's address to another's: they must go through the
// proxies, which dial from 127.3.0.0/16.
func isolateDaemons(ctx context.Context) error {
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"iptables", "-A", "OUTPUT", "-p", "tcp", "--syn", "-s", "127.1.0.0/16", "-d", "127.1.0.0/16", "-j", "REJECT"},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// delayProxy accepts on l and forwards each connection to target, delaying
// what flows either way by d. It dials from 127.3.x.y for a connection from
// 127.1.x.y (libp2p dials from its listen address): the daemons limit
// connections per IP address, as they would per peer.
func delayProxy(l net.Listener, target string, d time.Duration, late *lateness) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			from := net.IPv4(127, 3, 255, 254)
			if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
				if ip := a.IP.To4(); ip != nil && ip[1] == 1 {
					from = net.IPv4(127, 3, ip[2], ip[3])
				}
			}
			dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 10 * time.Second}
			t, err := dialer.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			go delayCopy(t, c, d, late)
			delayCopy(c, t, d, late)
		}()
	}
}

// delayCopy copies src to dst, each read d later than it was read, then
// closes both when src ends. late records how far past its due time each
// write began.
func delayCopy(dst, src net.Conn, d time.Duration, late *lateness) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(d)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.due))
		late.add(time.Since(c.due))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch { // let the reader end
	}
}

// lateness keeps how late the proxies' writes began, in ms, from the
// last reset on (at most a million samples): the harness's own share of
// a hop, on the cores the daemons use too.
type lateness struct {
	mu sync.Mutex
	ms []float64
}

func (l *lateness) add(d time.Duration) {
	l.mu.Lock()
	if len(l.ms) < 1<<20 {
		l.ms = append(l.ms, ms(d))
	}
	l.mu.Unlock()
}

func (l *lateness) reset() {
	l.mu.Lock()
	l.ms = l.ms[:0]
	l.mu.Unlock()
}

// quantiles returns the p50, p99 and maximum in ms.
func (l *lateness) quantiles() (p50, p99, mx float64) {
	l.mu.Lock()
	xs := slices.Clone(l.ms)
	l.mu.Unlock()
	if len(xs) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(xs)
	return quantile(xs, 0.5), quantile(xs, 0.99), xs[len(xs)-1]
}

// stored is one "stored received record" line of a daemon's log.
type stored struct {
	node       int
	key        string
	revocation bool
	at         time.Time
}

// procDaemon is one `mesh daemon` process.
type procDaemon struct {
	idx  int
	cmd  *exec.Cmd
	done chan struct{}
	c    *httpapi.Client
	id   string
	addr string // its multiaddr, with /p2p/
	// tail keeps the daemon's last lines of output, for errors.
	mu   sync.Mutex
	tail []string
}

func (d *procDaemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tail, "\n")
}

// startProcDaemon starts node i on repo and waits until its API answers.
// Its stored-record lines go to events.
func startProcDaemon(ctx context.Context, bin, repo string, i int, events chan<- stored) (*procDaemon, error) {
	if err := os.MkdirAll(repo, 0o700); err != nil {
		return nil, err
	}
	conf := `{"bootstrap":[],"topics":["bench"],"mdns":false,"dht":{"mode":"off","noLAN":true},` +
		`"nat":{"noRelayDiscovery":true,"noAutoRelay":true,"noHolePunch":true,"announce":["` + procsMultiaddr(2, i) + `"]}}`
	if err := os.WriteFile(filepath.Join(repo, "config.json"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	d := &procDaemon{idx: i, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "--repo", repo, "--api", "127.0.0.1:0", "daemon", "-v", "--no-mdns", "--no-portmap", "--no-ui", "--listen", procsMultiaddr(1, i))
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	d.cmd.Stdout = d.cmd.Stderr
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		defer close(d.done)
		d.readLog(pipe, ready, events)
		_ = d.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-d.done:
		return nil, fmt.Errorf("mesh daemon %d exited: %s", i, d.logs())
	case <-time.After(60 * time.Second):
		d.kill()
		return nil, fmt.Errorf("mesh daemon %d did not come up: %s", i, d.logs())
	}
	if d.c, err = httpapi.DialRepo(ctx, repo, ""); err != nil {
		d.kill()
		return nil, err
	}
	info, err := d.c.Info(ctx)
	if err != nil {
		d.kill()
		return nil, err
	}
	d.id = info.NodeID
	d.addr = procsMultiaddr(2, i) + "/p2p/" + info.NodeID
	return d, nil
}

// readLog reads the daemon's output until it ends: it closes ready at
// "daemon ready", sends each stored-record line to events and keeps the
// last lines.
func (d *procDaemon) readLog(r io.Reader, ready chan struct{}, events chan<- stored) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	isReady := false
	for sc.Scan() {
		line := sc.Text()
		if s, ok := parseStored(line); ok {
			s.node = d.idx
			events <- s
			continue
		}
		d.mu.Lock()
		if d.tail = append(d.tail, line); len(d.tail) > 40 {
			d.tail = d.tail[1:]
		}
		d.mu.Unlock()
		if !isReady && strings.Contains(line, "daemon ready") {
			isReady = true
			close(ready)
		}
	}
}

// parseStored parses slog's text line `time=... level=DEBUG msg="stored
// received record" key=... revocation=...`.
func parseStored(line string) (stored, bool) {
	if !strings.Contains(line, `msg="stored received record"`) {
		return stored{}, false
	}
	var s stored
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return stored{}, false
			}
			s.at = t
		case "key":
			s.key = v
		case "revocation":
			s.revocation = v == "true"
		}
	}
	return s, !s.at.IsZero() && s.key != ""
}

func (d *procDaemon) kill() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
}

// cpu is the daemon's user and system CPU time so far (Linux), or 0.
func (d *procDaemon) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func daemonsCPU(ds []*procDaemon) time.Duration {
	var t time.Duration
	for _, d := range ds {
		if d != nil {
			t += d.cpu()
		}
	}
	return t
}

// propagateDaemons is -procs inside the network namespace.
func propagateDaemons(ctx context.Context, e *env, c propagateConfig) (*propagateResult, error) {
	if c.mesh == "" {
		return nil, errors.New("-procs: no mesh binary")
	}
	if err := isolateDaemons(ctx); err != nil {
		return nil, err
	}
	rng := mrand.New(mrand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15))
	total, online := c.nodes+1, c.nodes
	adj := withLateJoiner(randomGraph(rng, online, c.degree))
	publishers := drawPublishers(rng, c.messages, online)
	dir, err := os.MkdirTemp("", "meshbench-propagate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	e.logf("starting %d mesh daemons, %s links", total, c.latency)
	events := make(chan stored, 1<<16)
	ds := make([]*procDaemon, total)
	defer func() {
		for _, d := range ds {
			if d != nil {
				d.kill()
			}
		}
	}()
	proxyLate := &lateness{}
	for i := 0; i < total; i++ {
		l, err := net.Listen("tcp", procsAddr(2, i))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		go delayProxy(l, procsAddr(1, i), c.latency, proxyLate)
	}
	if err := parallel(8, total, func(i int) error {
		d, err := startProcDaemon(ctx, c.mesh, filepath.Join(dir, strconv.Itoa(i)), i, events)
		ds[i] = d
		return err
	}); err != nil {
		return nil, err
	}

	// Every node trusts every publisher of the run directly.
	pubs := map[int]bool{}
	for _, p := range publishers {
		pubs[p] = true
	}
	if err := parallel(8, total, func(i int) error {
		for p := range pubs {
			if p != i {
				if err := ds[i].c.TrustSet(ctx, ds[p].id, trust.LevelFull, "bench"); err != nil {
					return fmt.Errorf("node %d trusts node %d: %w", i, p, err)
				}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}

	var edges [][2]int
	for a := 1; a < total; a++ {
		for b := range adj[a] {
			if a < b {
				edges = append(edges, [2]int{a, b})
			}
		}
	}
	e.logf("connecting %d edges (mean degree %.1f)", len(edges), 2*float64(len(edges))/float64(online))
	if err := parallel(8, len(edges), func(k int) error {
		a, b := edges[k][0], edges[k][1]
		_, err := ds[a].c.Connect(ctx, ds[b].addr)
		return err
	}); err != nil {
		return nil, err
	}
	// Publishing starts once GossipSub's meshes carry a message everywhere
	// (as in the in-process run, read from each daemon's peer list) and
	// the daemons' start-up work has ended.
	meshReady, err := waitMeshes(daemonMeshes(ctx, ds[1:], "bench"), adj[1:], 60*time.Second)
	if err != nil {
		return nil, err
	}
	e.logf("meshes joined every node after %.0f ms", float64(meshReady.Microseconds())/1000)
	conns, err := peerGraph(ctx, ds[1:])
	if err != nil {
		return nil, err
	}
	extra, missing := graphDiff(adj, conns)
	e.logf("connections found: %d edges not in the graph, %d of the graph's missing", extra, missing)
	cpuOf := func() time.Duration { return daemonsCPU(ds) }
	settled := waitIdleOf(e, "the daemons' start-up work", 0.25, 60*time.Second, cpuOf)

	idle := idleCores(cpuOf, time.Second)
	cpu0 := cpuOf()
	proxyLate.reset()
	ph, err := measurePhases(ctx, e, c, online, publishers,
		func(p int) publisher { return ds[p].c },
		func(p int) float64 { return float64(eccentricity(conns, p, 1)) * ms(c.latency) },
		func(_ int, key string, revocation bool) (int, time.Time) {
			return waitStored(events, key, revocation, online-1, c.timeout)
		})
	if err != nil {
		return nil, err
	}
	lateP50, lateP99, lateMax := proxyLate.quantiles()
	e.logf("proxy writes late by p50 %.2f ms, p99 %.2f ms, max %.2f ms", lateP50, lateP99, lateMax)
	cpu := cpuAfterTail(cpu0, idle, cpuOf)

	// The late joiner connects to a few nodes and must become consistent:
	// every surviving lesson and every revocation.
	late := ds[0]
	start := time.Now()
	for _, b := range rng.Perm(online)[:min(4, online)] {
		if _, err := late.c.Connect(ctx, ds[b+1].addr); err != nil {
			return nil, err
		}
	}
	lateOK, lateAt := waitLate(events, ph.keys, 2*c.timeout)
	rounds := 1
	if !lateOK {
		rounds = 2
		_ = late.c.Sync(ctx, nil)
		lateOK, _ = waitLate(events, ph.keys, c.timeout)
	}
	var rss float64
	for _, d := range ds {
		if st, err := procStatus(d.cmd.Process.Pid); err == nil {
			rss += float64(st["VmRSS"]) / 1024
		}
	}
	res := &propagateResult{
		Scenario: "propagate", Procs: true, Nodes: c.nodes, LatencyMs: int(c.latency.Milliseconds()),
		Degree:       round(2*float64(len(edges)+extra-missing)/float64(online), 2),
		MeshReadyMs:  round(float64(meshReady.Microseconds())/1000, 1),
		SettleMs:     round(float64(settled.Microseconds())/1000, 1),
		LateJoinerMs: round(float64(lateAt.Sub(start).Microseconds())/1000, 1), LateJoinerOK: lateOK, LateSyncPages: rounds,
		RSSMB:          round(rss, 1),
		ProxyLateP99Ms: round(lateP99, 2), ProxyLateMaxMs: round(lateMax, 2),
	}
	ph.fill(res, cpu)
	return res, nil
}

// waitStored reads events until want nodes stored key (its revocation if
// revocation), or timeout; it returns how many did and the last one's time.
// Events of other keys are dropped: messages go one at a time.
func waitStored(events <-chan stored, key string, revocation bool, want int, timeout time.Duration) (int, time.Time) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := map[int]bool{}
	var last time.Time
	for len(seen) < want {
		select {
		case s := <-events:
			if s.key == key && s.revocation == revocation && !seen[s.node] {
				seen[s.node] = true
				if s.at.After(last) {
					last = s.at
				}
			}
		case <-deadline.C:
			return len(seen), last
		}
	}
	return len(seen), last
}

// waitLate reads events until node 0 stored every odd-numbered lesson of
// keys and the revocation of every even-numbered one (the lessons revoked),
// or timeout.
func waitLate(events <-chan stored, keys []string, timeout time.Duration) (bool, time.Time) {
	want := map[string]bool{} // key -> revocation
	for m, k := range keys {
		want[k] = m%2 == 0
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last time.Time
	for len(want) > 0 {
		select {
		case s := <-events:
			if rev, ok := want[s.key]; ok && s.node == 0 && s.revocation == rev {
				delete(want, s.key)
				last = s.at
			}
		case <-deadline.C:
			return false, last
		}
	}
	return true, last
}

// daemonMeshes reads the daemons' meshes for topic from their peer lists.
func daemonMeshes(ctx context.Context, ds []*procDaemon, topic string) meshReader {
	index := make(map[string]int, len(ds))
	for i, d := range ds {
		index[d.id] = i
	}
	return func() ([][]int, error) {
		out := make([][]int, len(ds))
		err := parallel(8, len(ds), func(i int) error {
			peers, err := ds[i].c.Peers(ctx)
			for _, p := range peers {
				if j, ok := index[p.ID]; ok && slices.Contains(p.Mesh, topic) {
					out[i] = append(out[i], j)
				}
			}
			return err
		})
		return out, err
	}
}

// peerGraph is the connection graph the daemons report, indexed as ds
// from 1 (node 0, the late joiner, has no edges yet).
func peerGraph(ctx context.Context, ds []*procDaemon) ([]map[int]bool, error) {
	index := map[string]int{}
	for i, d := range ds {
		index[d.id] = i + 1
	}
	g := make([]map[int]bool, len(ds)+1)
	for i := range g {
		g[i] = map[int]bool{}
	}
	for i, d := range ds {
		peers, err := d.c.Peers(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range peers {
			if j, ok := index[p.ID]; ok {
				addEdge(g, i+1, j)
			}
		}
	}
	return g, nil
}

// graphDiff counts the edges of got not in want, and of want not in got.
func graphDiff(want, got []map[int]bool) (extra, missing int) {
	for a := range want {
		for b := range got[a] {
			if a < b && !want[a][b] {
				extra++
			}
		}
		for b := range want[a] {
			if a < b && !got[a][b] {
				missing++
			}
		}
	}
	return extra, missing
}
