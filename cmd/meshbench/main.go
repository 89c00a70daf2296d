// Command meshbench measures a MESH store on real text.
//
// Usage:
//
//	meshbench ingest [-n 20000] [-batch 256] [-dir DIR] ...
//	meshbench search [-n 100000] [-queries 1000] [-seed 1] [-dir DIR] [-export DIR] ...
//	meshbench idle [-records 1000] [-wait 20s] [-mesh BIN]
//
// Every scenario prints progress to stderr and exactly one JSON object, its
// result, as the last line of stdout. The text comes from internal/corpus:
// the doc comments of the Go source tree and of exactly the modules go.mod
// requires (run `go mod download` first on a fresh machine), topped up to
// 1,200,000 docs with docs generated from their sentences. Every scenario that
// uses it puts corpus_hash and corpus_docs in its JSON line: the same hash
// on two machines is the same docs. Stores live in a temporary directory that
// is removed at the end, unless -dir is given. -pprof DIR writes a CPU profile
// of each measured phase to DIR.
//
// Parallelism: the ingest scenario runs both of its phases, the raw Ed25519
// verification and the durable ingest, on -workers goroutines (default
// GOMAXPROCS, every core), so that its ratio compares like with like; the
// verify rate is the median of three passes over the set, the ingest rate one
// pass into a fresh store. On a machine shared with other work the wall-clock
// ratio moves with the load: stderr also shows the CPU time per record of
// each phase and their ratio, which moves much less. The search scenario runs
// its queries one after another, as latency is what it measures.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

func main() {
	if spec := os.Getenv(loadEnv); spec != "" {
		os.Exit(runLoadClient(spec, os.Stdout)) // a child of the http scenario
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `meshbench measures a MESH store on real text (Go doc comments).

Usage:
  meshbench ingest [flags]   signed-lesson ingest rate against raw Ed25519 verify rate
  meshbench search [flags]   search latency, index size and rebuild time
  meshbench idle [flags]     memory of an idle mesh daemon (Linux /proc)
  meshbench propagate [flags] GossipSub propagation, revocation and late-joiner sync on mocknet, or with -procs one mesh daemon process per node
  meshbench fedsearch [flags] federated search latency, recall and dead peers over a trust graph on mocknet
  meshbench dht [flags]       node-record and topic-provider lookups in a private MESH DHT on mocknet
  meshbench directory-http [flags] signed HTTP search on a 100k-lesson directory at a fixed rate
  meshbench http [flags]      public API: search p50/p99 at 500/s, and the CPU cost of a refusal in a 10x flood
  meshbench nat [flags]       relayed and hole-punched federation behind real NATs (network namespaces; root)
  meshbench keys [flags]      key fetch, escrow reconstruction, revoke-to-denied and AES-GCM throughput on mocknet
  meshbench lora [flags]      compact readings from sensors over a simulated LoRa channel to gateways: sizes, airtime, delivery, latency
  meshbench sensors [flags]   questions to named sensor sources under load, revoke, reading ingest on mocknet
  meshbench help [scenario]  show the flags of a scenario

Each scenario prints progress to stderr and one JSON object as the last line of
stdout. ingest, search, fedsearch and directory-http draw their text from the
corpus of internal/corpus (the doc comments of the Go source tree and of the
modules in go.mod, which ` + "`go mod download`" + ` fetches, plus docs generated
from their sentences: 1,200,000 in all) and put its corpus_hash and
corpus_docs in the JSON line.
`

// scenario is one subcommand.
type scenario struct {
	name  string
	flags func(fs *flag.FlagSet) func(env *env) (any, error)
}

var scenarios = []scenario{
	{"ingest", ingestFlags},
	{"search", searchFlags},
	{"idle", idleFlags},
	{"propagate", propagateFlags},
	{"fedsearch", fedsearchFlags},
}

// env is what a scenario writes to.
type env struct {
	stderr io.Writer
	pprof  string // directory for CPU profiles, "" for none
}

// logf prints a progress line to stderr.
func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "meshbench: "+format+"\n", args...)
}

// profile starts a CPU profile of one phase if -pprof was given; the returned
// function stops it.
func (e *env) profile(phase string) (stop func()) {
	if e.pprof == "" {
		return func() {}
	}
	if err := os.MkdirAll(e.pprof, 0o755); err != nil {
		e.logf("pprof: %v", err)
		return func() {}
	}
	name := filepath.Join(e.pprof, phase+".pprof")
	f, err := os.Create(name)
	if err != nil {
		e.logf("pprof: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		e.logf("pprof: %v", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		e.logf("cpu profile of %s written to %s", phase, name)
	}
}

// heapProfile writes a heap profile named after phase if -pprof was given.
func (e *env) heapProfile(phase string) {
	if e.pprof == "" {
		return
	}
	if err := os.MkdirAll(e.pprof, 0o755); err != nil {
		e.logf("pprof: %v", err)
		return
	}
	name := filepath.Join(e.pprof, phase+".heap.pprof")
	f, err := os.Create(name)
	if err != nil {
		e.logf("pprof: %v", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		e.logf("pprof: %v", err)
		return
	}
	e.logf("heap profile of %s written to %s", phase, name)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) > 1 {
			args = []string{args[1], "-h"}
			name = args[0]
		} else {
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	for _, sc := range scenarios {
		if sc.name != name {
			continue
		}
		fset := flag.NewFlagSet("meshbench "+name, flag.ContinueOnError)
		fset.SetOutput(stderr)
		pprofDir := fset.String("pprof", "", "write a CPU profile of each measured phase to `DIR`")
		body := sc.flags(fset)
		if err := fset.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fset.NArg() > 0 {
			fmt.Fprintf(stderr, "meshbench %s: unexpected arguments %q\n", name, fset.Args())
			return 2
		}
		res, err := body(&env{stderr: stderr, pprof: *pprofDir})
		if err != nil {
			fmt.Fprintf(stderr, "meshbench %s: %v\n", name, err)
			return 1
		}
		b, err := json.Marshal(res)
		if err != nil {
			fmt.Fprintf(stderr, "meshbench %s: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprintf(stderr, "meshbench: unknown scenario %q\n\n%s", name, usage)
	return 2
}

// workDir returns the directory for a store: dir itself (which must be
// empty or absent) or a new temporary directory. cleanup removes a
// temporary directory and does nothing for a given one.
func workDir(dir, pattern string) (path string, cleanup func(), err error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", pattern)
		if err != nil {
			return "", nil, err
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
	case err != nil:
		return "", nil, err
	case len(ents) > 0:
		return "", nil, fmt.Errorf("-dir %s is not empty: give an empty or new directory", dir)
	}
	return dir, func() {}, nil
}

// dirSize returns the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// round rounds x to the given number of decimals.
func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}

// rate returns n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
