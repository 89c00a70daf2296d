package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshprotocol/mesh/internal/corpus"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/protocol"
)

// The http scenario: a directory node holding -n lessons serves its public
// HTTP API on loopback, and two loads hit it, each sent by a child process
// (meshbench itself, re-run as a load client) so that this process's CPU
// time is the server's alone:
//
//  1. searches at -rate requests a second, open loop (latency counted from
//     when each request was due), spread over -sources loopback addresses
//     so that none exceeds the directory's default rate limit per address
//     (20 a second), for p50/p99 and the server's CPU time per answered
//     search;
//  2. a flood at -flood times that rate from one address, far past its
//     rate limit, for the server's CPU time per refused (429) request: the
//     CPU time of the flood, less the few admitted searches at the cost
//     phase 1 measured, over the number refused.

func init() {
	scenarios = append(scenarios, scenario{"http", httpFlags})
}

// httpResult is the JSON line of the http scenario.
type httpResult struct {
	Scenario string  `json:"scenario"`
	Records  int     `json:"records"`
	Rate     int     `json:"rate"`
	Requests int     `json:"requests"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
	// CPUPerSearchUs is the server's CPU time per answered search of
	// phase 1, in µs.
	CPUPerSearchUs float64 `json:"cpu_per_search_us"`
	FloodRate      int     `json:"flood_rate"`
	FloodRequests  int     `json:"flood_requests"`
	FloodRefused   int     `json:"flood_refused"`
	FloodAdmitted  int     `json:"flood_admitted"`
	FloodErrors    int     `json:"flood_errors"`
	// FloodCPUMs is the server's CPU time during the flood.
	FloodCPUMs float64 `json:"flood_cpu_ms"`
	// CPUPerRefusedUs is FloodCPUMs, less FloodAdmitted searches at
	// CPUPerSearchUs, over FloodRefused, in µs.
	CPUPerRefusedUs float64 `json:"cpu_per_refused_us"`
	corpusInfo
}

type httpConfig struct {
	n, rate, requests, sources, limit, publishers, workers, flood, floodRequests, floodConns int
	seed                                                                                     int64
	timeout, settle                                                                          time.Duration
}

func httpFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c httpConfig
	fs.IntVar(&c.n, "n", 20000, "lessons the directory holds")
	fs.IntVar(&c.rate, "rate", 500, "searches per second of phase 1")
	fs.IntVar(&c.requests, "requests", 5000, "measured searches of phase 1")
	fs.IntVar(&c.sources, "sources", 40, "loopback addresses phase 1 comes from (127.0.1.1 on), one connection each")
	fs.IntVar(&c.limit, "limit", 10, "results per search")
	fs.IntVar(&c.publishers, "publishers", 50, "publishers the lessons are signed by")
	fs.IntVar(&c.workers, "workers", 4*runtime.GOMAXPROCS(0), "goroutines storing the lessons")
	fs.IntVar(&c.flood, "flood", 10, "the flood's rate, in multiples of -rate")
	fs.IntVar(&c.floodRequests, "flood-requests", 20000, "requests of the flood")
	fs.IntVar(&c.floodConns, "flood-conns", 16, "HTTP connections of the flood")
	fs.Int64Var(&c.seed, "seed", 1, "seed for corpus sampling and queries")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "a request not answered by then is an error")
	fs.DurationVar(&c.settle, "settle", time.Minute, "after filling the directory, wait at most this long for the index to settle")
	return func(e *env) (any, error) { return runHTTP(context.Background(), e, c) }
}

func runHTTP(ctx context.Context, e *env, c httpConfig) (*httpResult, error) {
	if c.n <= 0 || c.rate <= 0 || c.requests <= 0 || c.sources <= 0 || c.sources > 250 || c.limit <= 0 || c.flood <= 0 || c.floodRequests <= 0 || c.floodConns <= 0 {
		return nil, errors.New("-n, -rate, -requests, -limit, -flood, -flood-requests and -flood-conns must be positive, -sources 1 to 250")
	}
	docs, info, err := loadCorpus(e, c.n, c.seed)
	if err != nil {
		return nil, err
	}
	queries := corpus.Queries(docs, c.requests, c.seed)
	if len(queries) == 0 {
		return nil, errors.New("could make no queries from the corpus")
	}
	dir, cleanup, err := workDir("", "meshbench-http-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	d, err := node.New(ctx, node.Config{
		RepoDir: dir, ListenAddrs: []string{}, DisableMDNS: true,
		Directory: directory.Config{Enabled: true, PublicAPI: "127.0.0.1:0"}, // the default rate limit
	})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := fillDirectory(ctx, e, directoryHTTPConfig{n: c.n, publishers: c.publishers, workers: c.workers}, d, docs); err != nil {
		return nil, err
	}
	waitIdle(e, "index", 0.1, c.settle)
	url := d.Directory().PublicURL() + "/v1/search"

	// The bodies, one a line, for the load clients.
	bodies := filepath.Join(dir, "bodies.jsonl")
	var buf bytes.Buffer
	for _, q := range queries {
		b, _ := json.Marshal(protocol.DirectorySearchRequest{Query: q, Limit: c.limit})
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(bodies, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	res := &httpResult{Scenario: "http", Records: c.n, Rate: c.rate, Requests: c.requests,
		FloodRate: c.flood * c.rate, FloodRequests: c.floodRequests, corpusInfo: info}

	c0 := cpuTime()
	var sources []string
	for i := 1; i <= c.sources; i++ {
		sources = append(sources, fmt.Sprintf("127.0.1.%d", i))
	}
	p1, err := loadChild(ctx, e, loadSpec{URL: url, Bodies: bodies, Rate: c.rate, Requests: c.requests, Conns: 1, Sources: sources, Timeout: c.timeout})
	if err != nil {
		return nil, err
	}
	cpu1 := cpuTime() - c0
	res.P50Ms, res.P99Ms, res.Errors = p1.P50Ms, p1.P99Ms, p1.Errors+p1.Refused
	if p1.OK > 0 {
		res.CPUPerSearchUs = round(float64(cpu1)/float64(time.Microsecond)/float64(p1.OK), 1)
	}
	e.logf("phase 1: %d searches at %d/s: p50 %.1f ms, p99 %.1f ms, %d errors, %d refused; server CPU %s (%.0f µs a search)",
		c.requests, c.rate, p1.P50Ms, p1.P99Ms, p1.Errors, p1.Refused, cpu1.Round(time.Millisecond), res.CPUPerSearchUs)

	waitIdle(e, "index", 0.1, 10*time.Second)
	c0 = cpuTime()
	p2, err := loadChild(ctx, e, loadSpec{URL: url, Bodies: bodies, Rate: c.flood * c.rate, Requests: c.floodRequests, Conns: c.floodConns, Sources: []string{"127.0.0.2"}, Timeout: c.timeout})
	if err != nil {
		return nil, err
	}
	cpu2 := cpuTime() - c0
	res.FloodRefused, res.FloodAdmitted, res.FloodErrors = p2.Refused, p2.OK, p2.Errors
	res.FloodCPUMs = round(ms(cpu2), 1)
	if p2.Refused > 0 {
		refusedCPU := float64(cpu2)/float64(time.Microsecond) - float64(p2.OK)*res.CPUPerSearchUs
		res.CPUPerRefusedUs = round(max(refusedCPU, 0)/float64(p2.Refused), 1)
	}
	e.logf("phase 2: %d requests at %d/s from one address: %d refused, %d admitted, %d errors; server CPU %s (%.0f µs a refusal)",
		c.floodRequests, c.flood*c.rate, p2.Refused, p2.OK, p2.Errors, cpu2.Round(time.Millisecond), res.CPUPerRefusedUs)
	return res, nil
}

// loadSpec is what a load client does: Requests POSTs of the bodies (one a
// line of the file Bodies, round robin) to URL at Rate a second, open
// loop, request i from the loopback address Sources[i % len(Sources)], on
// Conns connections from each.
type loadSpec struct {
	URL      string        `json:"url"`
	Bodies   string        `json:"bodies"`
	Rate     int           `json:"rate"`
	Requests int           `json:"requests"`
	Conns    int           `json:"conns"`
	Sources  []string      `json:"sources"`
	Timeout  time.Duration `json:"timeout"`
}

// loadReport is what a load client saw.
type loadReport struct {
	OK      int     `json:"ok"`
	Refused int     `json:"refused"` // 429
	Errors  int     `json:"errors"`
	P50Ms   float64 `json:"p50_ms"` // of the OK answers
	P99Ms   float64 `json:"p99_ms"`
}

// loadEnv names the environment variable that makes meshbench a load
// client (see loadChild).
const loadEnv = "MESHBENCH_LOAD_CLIENT"

// loadChild runs spec in a child process (meshbench itself) and returns
// its report.
func loadChild(ctx context.Context, e *env, spec loadSpec) (*loadReport, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(spec)
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), loadEnv+"="+string(b))
	cmd.Stderr = e.stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("load client: %w", err)
	}
	var rep loadReport
	if err := json.Unmarshal(bytes.TrimSpace(out), &rep); err != nil {
		return nil, fmt.Errorf("load client: %q: %w", out, err)
	}
	return &rep, nil
}

// runLoadClient is main for a load client: it reads its spec from the
// environment, sends the load, and prints its report.
func runLoadClient(specJSON string, stdout io.Writer) int {
	var spec loadSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "load client:", err)
		return 2
	}
	rep, err := sendLoad(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load client:", err)
		return 1
	}
	b, _ := json.Marshal(rep)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func sendLoad(spec loadSpec) (*loadReport, error) {
	f, err := os.Open(spec.Bodies)
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		bodies = append(bodies, append([]byte(nil), sc.Bytes()...))
	}
	f.Close()
	if len(bodies) == 0 || spec.Rate <= 0 || spec.Requests <= 0 || len(spec.Sources) == 0 {
		return nil, errors.New("nothing to send")
	}
	clients := make([]*http.Client, len(spec.Sources))
	for i, src := range spec.Sources {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: spec.Timeout}
		clients[i] = &http.Client{Timeout: spec.Timeout, Transport: &http.Transport{
			DialContext: dialer.DialContext, MaxConnsPerHost: spec.Conns, MaxIdleConnsPerHost: spec.Conns,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		}}
		defer clients[i].CloseIdleConnections()
	}
	var firstErr atomic.Value
	const maxInFlight = 2048
	lat := make([]time.Duration, spec.Requests)
	var ok, refused, errs atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(spec.Rate)
	t0 := time.Now()
	for i := 0; i < spec.Requests; i++ {
		due := t0.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		select {
		case sem <- struct{}{}:
		default:
			errs.Add(1)
			lat[i] = -1
			continue
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			lat[i] = -1
			resp, err := clients[i%len(clients)].Post(spec.URL, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, protocol.MaxSignedResponseSize+1))
			resp.Body.Close()
			switch {
			case err != nil:
				errs.Add(1)
			case resp.StatusCode == http.StatusTooManyRequests:
				refused.Add(1)
			case resp.StatusCode != http.StatusOK:
				errs.Add(1)
				firstErr.CompareAndSwap(nil, resp.Status)
			default:
				ok.Add(1)
				lat[i] = time.Since(due)
			}
		}(i, due)
	}
	wg.Wait()
	if v := firstErr.Load(); v != nil {
		fmt.Fprintf(os.Stderr, "meshbench: load client: first error: %v\n", v)
	}
	var good []time.Duration
	for _, l := range lat {
		if l >= 0 {
			good = append(good, l)
		}
	}
	sort.Slice(good, func(a, b int) bool { return good[a] < good[b] })
	return &loadReport{OK: int(ok.Load()), Refused: int(refused.Load()), Errors: int(errs.Load()),
		P50Ms: round(ms(percentile(good, 50)), 2), P99Ms: round(ms(percentile(good, 99)), 2)}, nil
}
