// Command mesh runs a MESH node (mesh daemon) and talks to it: store and
// search memories, publish them as signed lessons, export and verify them.
//
// Commands that change things go through the running daemon's control API
// (loopback only, bearer token from the repo). When no daemon runs, they open
// the repo directly. Every command takes --json. Exit codes: 0 success,
// 1 failure, 2 usage error.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "mesh:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError marks a mistake in how a command was called (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}
