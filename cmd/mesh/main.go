// Command mesh runs a MESH node (mesh daemon) and talks to it: store and
// search memories, publish them as signed lessons, export and verify them.
//
// Commands that change things go through the running daemon's control API
// (loopback only, bearer token from the repo). When no daemon runs, they open
// the repo directly. Every command takes --json: it then prints exactly one
// JSON value on standard output, an error included
// ({"error":{"code":"…","message":"…"}}); streaming commands print one
// object per line and a summary last. Exit codes: 0 success, 1 failure,
// 2 usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{out: stdout}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	code := 1
	if isUsage(err) {
		code = 2
	}
	// --json may not have been parsed when the flags were wrong.
	if !g.printed && (g.json || slices.Contains(args, "--json") || slices.Contains(args, "--json=true")) {
		_ = g.printJSON(errorJSON(err, code == 2))
	}
	fmt.Fprintln(stderr, "mesh:", err)
	if code == 2 && strings.HasPrefix(err.Error(), "unknown command") && strings.HasSuffix(err.Error(), `for "mesh"`) {
		fmt.Fprintln(stderr, "Run 'mesh --help' for the commands.")
	}
	return code
}

// usageError marks a mistake in how a command was called (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// isUsage reports whether err is a usage error: ours, or cobra's for an
// unknown command (cobra's flag errors pass through SetFlagErrorFunc).
func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ")
}
