package main

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/internal/repolock"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

// plural is n and the noun that agrees with it: "1 peer", "2 peers".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// codeUsage is the error code of a usage error in --json output.
const codeUsage = "USAGE"

// jsonError is how --json prints an error: {"error":{"code","message"}}.
type jsonError struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorJSON(err error, usage bool) jsonError {
	var e jsonError
	e.Error.Code, e.Error.Message = errorCode(err), err.Error()
	if usage {
		e.Error.Code = codeUsage
	}
	return e
}

// errorCode is the MESH error code of err, with the CLI's own cases: a
// missing file is NOT_FOUND, no daemon (where one is needed) UNAVAILABLE.
func errorCode(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return string(protocol.CodeNotFound)
	case errors.Is(err, httpapi.ErrNoDaemon), errors.Is(err, repolock.ErrLocked):
		return string(protocol.CodeUnavailable)
	}
	return string(protocol.CodeOf(err))
}

// codedError is an error whose message is its own and whose code (for
// --json and errors.Is) is its sentinel's.
type codedError struct {
	msg      string
	sentinel error
}

func (e codedError) Error() string { return e.msg }
func (e codedError) Unwrap() error { return e.sentinel }

// coded formats an error that matches sentinel without repeating its text.
func coded(sentinel error, format string, a ...any) error {
	return codedError{msg: fmt.Sprintf(format, a...), sentinel: sentinel}
}

// versionInfo is what mesh version prints.
type versionInfo struct {
	Version   string   `json:"version"`
	Commit    string   `json:"commit,omitempty"`
	Modified  bool     `json:"modified,omitempty"`
	Go        string   `json:"go"`
	Platform  string   `json:"platform"`
	Protocol  string   `json:"protocol"`
	Protocols []string `json:"protocols"`
	// Topics is the GossipSub topic prefix: /mesh/1/topic/<name> and
	// /mesh/1/feed/<nodeId>.
	Topics string `json:"topics"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: node.Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Protocol: protocol.Version,
		Protocols: []string{protocol.ProtocolFetch, protocol.ProtocolSync, protocol.ProtocolSearchLate, protocol.ProtocolSearch, protocol.ProtocolIdentity,
			protocol.ProtocolTrust, protocol.ProtocolKeys, protocol.ProtocolKeyNotice, protocol.ProtocolDirectory,
			dht.ProtocolID, dht.LANProtocolID}, Topics: protocol.TopicRoot}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

// versionLine is the one line of mesh --version.
func versionLine() string {
	v := buildVersion()
	commit := v.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown commit"
	} else if v.Modified {
		commit += "+modified"
	}
	return v.Version + " (" + commit + ", " + v.Go + ", " + v.Platform + ", protocol " + v.Protocol + ")"
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the version, commit, Go version and protocol versions",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			v := buildVersion()
			if g.json {
				return g.printJSON(v)
			}
			g.printf("mesh %s\n", versionLine())
			g.printf("protocols: %s\n", strings.Join(v.Protocols, " "))
			g.printf("topics:    %stopic/<name>, %sfeed/<nodeId>\n", v.Topics, v.Topics)
			return nil
		},
	}
}
