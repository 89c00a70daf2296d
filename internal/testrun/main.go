// Command testrun runs go test and says what it skipped.
//
//	go run ./internal/testrun [go test flags] [packages]   (default ./...)
//
// It prints what go test prints (a line per package, the output of a
// failing test or package), then every test skipped on this machine and
// why: tests that need root (network namespaces, a tmpfs), Node.js and the
// independent verifier's npm packages, or a flag. go test alone shows a
// passing package's skips only with -v. The exit status is go test's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// event is one line of go test -json (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type skipped struct {
	pkg, test, reason string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if !slices.ContainsFunc(args, func(a string) bool { return !strings.HasPrefix(a, "-") }) {
		args = append(args, "./...")
	}
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testrun:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testrun:", err)
		return 1
	}
	skips := report(out, stdout)
	err = cmd.Wait()
	if len(skips) > 0 {
		fmt.Fprintf(stdout, "\nskipped on this machine (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(stdout, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintln(stderr, "testrun:", err)
		return 1
	}
	return 0
}

// report reads go test -json from r, prints go test's usual lines to w,
// and returns the tests skipped, with the reason each gave.
func report(r io.Reader, w io.Writer) []skipped {
	type key struct{ pkg, test string }
	output := map[key][]string{} // by package ("" test) and by test
	var skips []skipped
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: pass it on
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output", "build-output":
			output[k] = append(output[k], e.Output)
			if e.Test != "" {
				pk := key{e.Package, ""}
				output[pk] = append(output[pk], e.Output)
			}
		case "skip":
			if e.Test == "" {
				fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
				break
			}
			skips = append(skips, skipped{e.Package, e.Test, reason(output[k])})
			delete(output, k)
		case "pass":
			if e.Test == "" {
				fmt.Fprintf(w, "ok  \t%s\t%s\n", e.Package, elapsed(e.Elapsed))
			}
			delete(output, k)
		case "fail", "build-fail":
			if e.Test != "" {
				break // its output goes with its package's
			}
			for _, line := range output[k] {
				fmt.Fprint(w, line)
			}
			fmt.Fprintf(w, "FAIL\t%s\t%s\n", e.Package, elapsed(e.Elapsed))
			delete(output, k)
		}
	}
	return skips
}

// reason is what a skipped test said, without go test's own lines.
func reason(lines []string) string {
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return "(no reason given)"
	}
	return strings.Join(out, " / ")
}

func elapsed(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}
