package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/mcpserver"
)

func mcpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mcp",
		Short: "Serve the AMP tools to an MCP client over stdio",
		Long: `Serve AMP's MCP binding on stdin/stdout, for an MCP client (an agent, an IDE) that
starts mesh as a subprocess. Tools: amp_store, amp_search, amp_get, amp_delete,
amp_list, amp_status, amp_agent_status, mesh_publish and mesh_export.

The tools go through the running daemon's control API; when no daemon runs, mesh mcp
opens the repo itself and holds it until the client disconnects (start mesh daemon to
share the repo between several clients and the CLI). Warnings go to stderr; record
contents and queries are never logged.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			b, closeFn, err := g.backend(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			srv := mcpserver.New(b, node.Version, &mcpserver.Options{Logger: log})
			// Not the SDK's StdioTransport: one malformed line would end the
			// session; this one answers it -32700 and goes on.
			err = srv.Run(ctx, &mcpserver.LineTransport{Reader: os.Stdin, Writer: os.Stdout})
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil // the client hung up, or we were told to stop
			}
			return err
		},
	}
}
