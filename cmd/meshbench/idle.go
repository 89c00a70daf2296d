package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// idleResult is the JSON line of the idle scenario.
type idleResult struct {
	Scenario string `json:"scenario"`
	Profile  string `json:"profile,omitempty"` // mesh daemon --profile
	// Floor marks a run of internal/idlefloor: MESH's dependencies alone
	// (libp2p host, DHT client, GossipSub, pebble, bleve), no MESH code.
	Floor    bool    `json:"floor,omitempty"`
	Records  int     `json:"records"`
	WaitS    float64 `json:"wait_s"`
	RSSMB    float64 `json:"rss_mb"`      // VmRSS at the end of the wait
	RSSMaxMB float64 `json:"rss_max_mb"`  // VmHWM: the peak
	AnonMB   float64 `json:"rss_anon_mb"` // private memory: heap, stacks
	FileMB   float64 `json:"rss_file_mb"` // pages of the binary mapped from the page cache
	// TextMB and RodataMB are the resident pages of the binary's code and
	// of its read-only data (rodata, pclntab), out of TextSizeMB and
	// RodataSizeMB mapped; PmdMB is the part of both the kernel maps as
	// 2 MiB pages (a page-cache folio of that size is mapped whole on its
	// first fault).
	TextMB       float64 `json:"rss_text_mb"`
	TextSizeMB   float64 `json:"text_mb"`
	RodataMB     float64 `json:"rss_rodata_mb"`
	RodataSizeMB float64 `json:"rodata_mb"`
	PmdMB        float64 `json:"rss_file_pmd_mb"`
	BinaryMB     float64 `json:"binary_mb"`
}

type idleConfig struct {
	mesh    string
	records int
	wait    time.Duration
	profile string
	floor   bool
}

func idleFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c idleConfig
	fs.StringVar(&c.mesh, "mesh", "", "the mesh binary (default: go build ./cmd/mesh into a temporary directory)")
	fs.IntVar(&c.records, "records", 1000, "records stored through the AMP API before idling")
	fs.DurationVar(&c.wait, "wait", 20*time.Second, "how long the daemon idles before its memory is read")
	fs.StringVar(&c.profile, "profile", "", "run the daemon with --profile `NAME` (sensor: small boards)")
	fs.BoolVar(&c.floor, "floor", false, "measure internal/idlefloor instead: MESH's dependencies alone (libp2p host, DHT client, GossipSub, pebble, bleve) with the sensor profile's runtime settings")
	return func(e *env) (any, error) {
		if c.floor {
			return runIdleFloor(context.Background(), e, c)
		}
		return runIdle(context.Background(), e, c)
	}
}

// runIdle starts a real `mesh daemon` on a fresh repo (loopback only), stores
// some records through the AMP API, lets it idle and reads its memory from
// /proc.
func runIdle(ctx context.Context, e *env, c idleConfig) (*idleResult, error) {
	if c.records < 0 || c.wait <= 0 {
		return nil, errors.New("-records must not be negative, -wait must be positive")
	}
	tmp, err := os.MkdirTemp("", "meshbench-idle-")
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
	repo := filepath.Join(tmp, "repo")
	args := []string{"--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"}
	if c.profile != "" {
		args = append(args, "--profile", c.profile)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer stopProcess(cmd)
	api, err := waitAPI(repo, 60*time.Second)
	if err != nil {
		return nil, err
	}
	e.logf("daemon pid %d at %s; storing %d records", cmd.Process.Pid, api, c.records)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: bearer{repo}}
	for i := 0; i < c.records; i++ {
		body := fmt.Sprintf(`{"operation":"store","record":{"type":"lesson","title":"idle record %d","content":"a lesson stored before the daemon idles, number %d"}}`, i, i)
		resp, err := hc.Post(api+"/amp/store", "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("store: %s", resp.Status)
		}
	}
	e.logf("idling %s", c.wait)
	r, err := idleThenMeasure(ctx, cmd.Process.Pid, bin, c.wait)
	if err != nil {
		return nil, err
	}
	r.Profile, r.Records, r.WaitS = c.profile, c.records, c.wait.Seconds()
	return r, nil
}

// runIdleFloor builds internal/idlefloor, runs it on a fresh directory until
// it says ready, lets it idle and reads its memory as runIdle does.
func runIdleFloor(ctx context.Context, e *env, c idleConfig) (*idleResult, error) {
	if c.wait <= 0 {
		return nil, errors.New("-wait must be positive")
	}
	tmp, err := os.MkdirTemp("", "meshbench-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin, err := goBuild(ctx, e, tmp, "internal/idlefloor")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, filepath.Join(tmp, "repo"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer stopProcess(cmd)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("idlefloor exited before it was ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
	case <-time.After(60 * time.Second):
		return nil, errors.New("idlefloor was not ready within 60s")
	}
	e.logf("idlefloor pid %d ready; idling %s", cmd.Process.Pid, c.wait)
	r, err := idleThenMeasure(ctx, cmd.Process.Pid, bin, c.wait)
	if err != nil {
		return nil, err
	}
	r.Floor, r.Profile, r.WaitS = true, "sensor", c.wait.Seconds()
	return r, nil
}

// idleThenMeasure lets process pid idle for wait, then reads its memory.
func idleThenMeasure(ctx context.Context, pid int, bin string, wait time.Duration) (*idleResult, error) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return idleMemory(pid, bin)
}

// idleMemory reads process pid's memory from /proc: the totals from status,
// the binary's resident code and read-only data from smaps.
func idleMemory(pid int, bin string) (*idleResult, error) {
	st, err := procStatus(pid)
	if err != nil {
		return nil, err
	}
	maps, err := binaryMappings(pid, bin)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	mb := func(kb int64) float64 { return round(float64(kb)/1024, 1) }
	return &idleResult{
		Scenario: "idle",
		RSSMB:    mb(st["VmRSS"]), RSSMaxMB: mb(st["VmHWM"]), AnonMB: mb(st["RssAnon"]), FileMB: mb(st["RssFile"] + st["RssShmem"]),
		TextMB: mb(maps.text.rss), TextSizeMB: mb(maps.text.size),
		RodataMB: mb(maps.rodata.rss), RodataSizeMB: mb(maps.rodata.size),
		PmdMB:    mb(maps.text.pmd + maps.rodata.pmd),
		BinaryMB: round(float64(info.Size())/(1<<20), 1),
	}, nil
}

// mapping is one mapping's kB figures from /proc/PID/smaps.
type mapping struct{ size, rss, pmd int64 }

// binaryMappings sums the smaps entries of bin's executable (r-xp) and
// read-only (r--p) mappings.
func binaryMappings(pid int, bin string) (m struct{ text, rodata mapping }, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return m, err
	}
	var cur *mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line: range perms offset dev inode [path]
			cur = nil
			if len(fields) >= 6 && fields[5] == abs {
				switch fields[1] {
				case "r-xp":
					cur = &m.text
				case "r--p":
					cur = &m.rodata
				}
			}
			continue
		}
		if cur == nil || len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Size:":
			cur.size += n
		case "Rss:":
			cur.rss += n
		case "FilePmdMapped:":
			cur.pmd += n
		}
	}
	return m, sc.Err()
}

// stopProcess ends a started command: SIGTERM, then SIGKILL after 10 s.
func stopProcess(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
}

func waitAPI(repo string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(repo, "api")); err == nil {
			api := strings.TrimSpace(string(b))
			if resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: bearer{repo}}).Get(api + "/amp/status"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return api, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", errors.New("the daemon's API did not come up")
}

// goBuild builds the package pkg of this module ("cmd/mesh") into dir and
// returns the binary's path.
func goBuild(ctx context.Context, e *env, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, path.Base(pkg))
	e.logf("building %s", path.Base(pkg))
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/meshprotocol/mesh/"+pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// procStatus reads the kB fields of /proc/PID/status.
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	return out, sc.Err()
}

// bearer adds the repo's API token (api.token) to every request: the
// daemon's AMP routes need it.
type bearer struct{ repo string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(filepath.Join(b.repo, "api.token"))
	if err == nil {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	return http.DefaultTransport.RoundTrip(r)
}
