package main

import (
	"errors"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

func uiCmd(g *globals) *cobra.Command {
	var open bool
	c := &cobra.Command{
		Use:   "ui",
		Short: "Print a one-time login link to the daemon's web UI (--open opens it)",
		Long: `Print a one-time login link to the web UI the daemon serves on its API address
(http://127.0.0.1:8765/ by default). The link works once, within 5 minutes, and
sets a session cookie in the browser that opens it; run mesh ui again for
another browser. --open also opens it in the desktop's browser.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := httpapi.DialRepo(c.Context(), g.repo, g.api)
			if errors.Is(err, httpapi.ErrNoDaemon) {
				return coded(protocol.ErrUnavailable, "the web UI is served by the daemon: start mesh daemon on %s (%v)", g.repo, err)
			}
			if err != nil {
				return err
			}
			link, err := cl.UILogin(c.Context())
			if err != nil {
				return err
			}
			opened := false
			if open {
				opened = openBrowser(link) == nil
			}
			if g.json {
				return g.printJSON(map[string]any{"url": link, "opened": opened})
			}
			g.printf("%s\n", link)
			if open && !opened {
				g.printf("(could not open a browser: open the link above)\n")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&open, "open", false, "open the link in the desktop's browser")
	return c
}

// openBrowser asks the desktop to open url.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
