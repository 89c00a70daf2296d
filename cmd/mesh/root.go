package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

// globals are the flags every command shares.
type globals struct {
	repo string
	api  string
	json bool
	out  io.Writer
	// printed is set once a JSON value went out: an error after it is
	// then not printed as a second value.
	printed bool
}

func defaultRepo() string {
	if r := os.Getenv("MESH_REPO"); r != "" {
		return r
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mesh"
	}
	return filepath.Join(home, ".mesh")
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "mesh",
		Short:         "MESH: a federated, signed knowledge network for agent memories",
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("mesh {{.Version}}\n")
	root.PersistentFlags().StringVar(&g.repo, "repo", defaultRepo(), "repo directory (env MESH_REPO)")
	root.PersistentFlags().StringVar(&g.api, "api", "", "daemon API address (default: read from the repo)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON: exactly one value (one per line while streaming), errors included")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		initCmd(g), daemonCmd(g), idCmd(g), versionCmd(g),
		storeCmd(g), getCmd(g), listCmd(g), deleteCmd(g), statusCmd(g), agentStatusCmd(g), searchCmd(g),
		publishCmd(g), exportCmd(g), verifyCmd(g),
		revokeCmd(g), keysCmd(g), followCmd(g, true), followCmd(g, false), followingCmd(g), connectCmd(g), peersCmd(g), syncCmd(g), trustCmd(g), mcpCmd(g), directoryCmd(g),
		watchCmd(g), uiCmd(g),
		repairCmd(g),
		sensorCmd(g), accessCmd(g), nameCmd(g), bridgeCmd(g), loraCmd(g),
	)
	strictGroups(root)
	return root
}

// strictGroups makes a command that only groups others ("mesh trust")
// refuse an unknown subcommand as a usage error (cobra accepts any
// arguments there and prints the help); called bare, it prints its help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil || !c.HasParent() {
		return
	}
	c.Args = func(c *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usagef("unknown command %q for %q (see %s --help)", a[0], c.CommandPath(), c.CommandPath())
		}
		return nil
	}
	c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if err := check(c, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// backend returns the daemon's control API, or, when no daemon runs, the repo
// opened in-process (offline). close must be called when done.
func (g *globals) backend(ctx context.Context) (api api.API, close func(), err error) {
	c, err := httpapi.DialRepo(ctx, g.repo, g.api)
	if err == nil {
		return c, func() {}, nil
	}
	if !errors.Is(err, httpapi.ErrNoDaemon) || g.api != "" {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(g.repo, node.KeyFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, coded(protocol.ErrNotFound, "no MESH repo at %s: run `mesh init` (or `mesh daemon`) first, or pass --repo", g.repo)
	}
	n, err := node.New(ctx, node.Config{RepoDir: g.repo, Offline: true})
	if err != nil {
		return nil, nil, err
	}
	return n, func() { n.Close() }, nil
}

// waitDaemon waits until the repo's daemon answers, at most d.
func (g *globals) waitDaemon(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		_, err := httpapi.DialRepo(ctx, g.repo, g.api)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return coded(protocol.ErrUnavailable, "no daemon answered on %s within %v: %v", g.repo, d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// withBackend runs fn against the daemon or the repo.
func (g *globals) withBackend(c *cobra.Command, fn func(api.API) error) error {
	b, closeFn, err := g.backend(c.Context())
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(b)
}

// readInput reads a file, or standard input for "-", refusing more than max
// bytes with an error that names the file and the limit.
func readInput(name string, max int64) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	} else {
		name = "standard input"
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: over the limit of %d bytes", name, protocol.ErrTooLarge, max)
	}
	return data, nil
}

// notJSON is nil if data is one JSON value, else an error naming the input
// ("bad.json: not JSON: …", standard input for "-").
func notJSON(name string, data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	if name == "-" {
		name = "standard input"
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return coded(protocol.ErrInvalid, "%s: not JSON: it is empty", name)
	}
	return coded(protocol.ErrInvalid, "%s: not JSON: %v", name, err)
}

// show runs get against the daemon or the repo and prints what it
// returns: as JSON with --json, else with text.
func show[T any](g *globals, c *cobra.Command, get func(api.API) (T, error), text func(T)) error {
	return g.withBackend(c, func(b api.API) error {
		v, err := get(b)
		if err != nil {
			return err
		}
		if g.json {
			return g.printJSON(v)
		}
		text(v)
		return nil
	})
}

// printJSON prints v, indented: the one JSON value of a command.
func (g *globals) printJSON(v any) error {
	g.printed = true
	enc := json.NewEncoder(g.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLine prints v on one line: one value of a stream.
func (g *globals) printLine(v any) error {
	g.printed = true
	enc := json.NewEncoder(g.out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (g *globals) printf(format string, a ...any) {
	fmt.Fprintf(g.out, format, a...)
}
