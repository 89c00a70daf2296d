package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/protocol"
)

// This file adds the directory role's daemon flags and `mesh directory
// add|list|remove|search`.

func directoryDaemonFlags(c *cobra.Command) func(*cobra.Command, *node.Config) error {
	var (
		enabled   bool
		topics    []string
		publicAPI string
		publicURL string
		contact   string
		retention int
		rate      float64
	)
	f := c.Flags()
	f.BoolVar(&enabled, "directory", false, "run as a directory: index every verified public lesson of the policy's topics and of the nodes that register (also config.json directory.enabled)")
	f.StringArrayVar(&topics, "directory-topic", nil, "a topic in the directory's policy: followed and indexed (repeatable)")
	f.StringVar(&publicAPI, "public-api", "", "serve the public, signed, read-only HTTP API on `ADDR` (host:port; may be non-loopback)")
	f.StringVar(&publicURL, "public-url", "", "the public API's URL as others reach it, stated in the policy")
	f.StringVar(&contact, "contact", "", "who runs this directory, stated in the policy")
	f.IntVar(&retention, "retention-days", 0, "serve lessons published at most this many days ago (0: until revoked or expired)")
	f.Float64Var(&rate, "public-rate", 0, fmt.Sprintf("public API requests per second per client address (0: %d)", directory.DefaultPublicRate))
	return func(c *cobra.Command, cfg *node.Config) error {
		d := &cfg.Directory
		fl := c.Flags()
		if fl.Changed("directory") {
			d.Enabled = enabled
		}
		if fl.Changed("directory-topic") {
			d.Topics = append(d.Topics, topics...)
		}
		if fl.Changed("public-api") {
			d.PublicAPI = publicAPI
		}
		if fl.Changed("public-url") {
			d.PublicURL = publicURL
		}
		if fl.Changed("contact") {
			d.Contact = contact
		}
		if fl.Changed("retention-days") {
			if retention < 0 {
				return fmt.Errorf("--retention-days %d: must not be negative", retention)
			}
			d.RetentionDays = retention
		}
		if fl.Changed("public-rate") {
			if rate <= 0 {
				return fmt.Errorf("--public-rate %v: must be positive", rate)
			}
			d.RateLimit = rate
		}
		return nil
	}
}

func directoryAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add <multiaddr|nodeId|URL>",
		Short: "Register with a directory, now and periodically (persists)",
		Long: `Register with a directory: a multiaddr ending in /p2p/<node ID>, a node ID, or the URL
of its public API (its signed policy names its node ID and addresses). The running daemon
registers at once and then every 30 minutes; the directory then syncs your public lessons.
The directory's public API URL, if known, is used by mesh directory search.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return show(g, c, func(b api.API) (*api.DirectoryEntry, error) { return b.DirectoryAdd(c.Context(), a[0]) }, func(e *api.DirectoryEntry) {
				g.printf("added directory %s\n", orDash(e.NodeID))
				switch {
				case e.Registered != 0:
					g.printf("registered; policy: %s\n", formatPolicy(e.Policy))
				case e.Error != "":
					g.printf("not registered yet: %s\n", e.Error)
				default:
					g.printf("the daemon registers when it runs\n")
				}
				if e.URL != "" {
					g.printf("public API: %s\n", e.URL)
				}
			})
		},
	}
}

func directoryListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "The directories this node registers with",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.DirectoryEntry, error) { return b.DirectoryList(c.Context()) }, func(list []api.DirectoryEntry) {
				for _, e := range list {
					state := "never registered"
					if e.Registered != 0 {
						state = "registered " + time.UnixMilli(e.Registered).UTC().Format(time.RFC3339)
					}
					if e.Error != "" {
						state += "; last attempt failed: " + e.Error
					}
					g.printf("%s  %s\n  target: %s\n  %s\n", orDash(e.NodeID), orDash(e.URL), e.Target, state)
					if e.Policy != nil {
						g.printf("  policy: %s\n", formatPolicy(e.Policy))
					}
				}
				g.printf("%s\n", plural(len(list), "directory", "directories"))
			})
		},
	}
}

func directoryRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove <target|nodeId|URL>",
		Short: "Stop registering with a directory",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				ok, err := b.DirectoryRemove(c.Context(), a[0])
				if err != nil {
					return err
				}
				if !ok {
					return coded(protocol.ErrNotFound, "no directory %q: see mesh directory list", a[0])
				}
				return g.done(map[string]any{"success": true, "removed": true}, "removed %s\n", a[0])
			})
		},
	}
}

func directorySearchCmd(g *globals) *cobra.Command {
	var (
		req      api.DirectorySearchRequest
		deadline time.Duration
	)
	c := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Search several directories (and your peers), verifying every answer and every lesson",
		Long: `Search the public APIs of several directories: the ones added with mesh directory add
(that have a URL), or those given with --url. Every answer must be signed by its directory,
and every lesson by its publisher: a lesson that fails is dropped with a warning naming the
directory that sent it. Results are merged, de-duplicated and ranked here by relevance ×
your trust in the publisher (0.1 for publishers you have no trust path to; --trusted-only
drops them). With --peers, your trusted peers are searched too (as mesh search --sources).`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			req.Query = strings.Join(a, " ")
			req.DeadlineMs = deadline.Milliseconds()
			return g.directorySearch(c, req)
		},
	}
	f := c.Flags()
	f.StringArrayVar(&req.Directories, "url", nil, "a directory's public API URL (repeatable; default: the added directories)")
	f.BoolVar(&req.Peers, "peers", false, "also search your trusted peers (federated search)")
	f.IntVar(&req.Hops, "hops", 2, "with --peers: how far the search travels (max 3)")
	f.IntVar(&req.Limit, "limit", 10, "at most this many results (max 100)")
	f.BoolVar(&req.TrustedOnly, "trusted-only", false, "drop lessons of publishers you have no trust path to")
	f.StringSliceVar(&req.Filters.Tags, "tags", nil, "only lessons with these tags")
	f.StringSliceVar(&req.Filters.Topics, "topic", nil, "only lessons published on one of these topics")
	f.StringSliceVar(&req.Filters.Types, "type", nil, "only lessons of these types")
	f.DurationVar(&deadline, "deadline", directory.DefaultDirectoryDeadline, "answer with what arrived by then")
	return c
}

// directorySearch runs and prints a search of several directories (and,
// with req.Peers, of the trusted peers): mesh directory search, and mesh
// search --directories.
func (g *globals) directorySearch(c *cobra.Command, req api.DirectorySearchRequest) error {
	return g.withBackend(c, func(b api.API) error {
		res, err := b.DirectorySearch(c.Context(), req)
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", w)
		}
		if g.json {
			return g.printJSON(res)
		}
		for _, h := range res.Results {
			g.printf("%.3f  %-40s %s\n", h.Score, h.Key, summary(&h.SignedLesson.Lesson))
			trust := fmt.Sprintf("%.2f", h.Trust)
			if !h.Trusted {
				trust += " (no trust path)"
			}
			var from []string
			for _, s := range h.Sources {
				from = append(from, shortID(s))
			}
			g.printf("       relevance %.2f × trust %s, from %s\n", h.Relevance, trust, strings.Join(from, ", "))
		}
		answered := 0
		for _, d := range res.Directories {
			if d.Error == "" {
				answered++
			}
		}
		g.printf("%s; %d of %s answered", plural(len(res.Results), "result", "results"), answered, plural(len(res.Directories), "directory", "directories"))
		if n := res.Invalid + res.Revoked + res.Blocked + res.Untrusted; n > 0 {
			g.printf("; dropped %d invalid, %d revoked, %d blocked, %d untrusted", res.Invalid, res.Revoked, res.Blocked, res.Untrusted)
		}
		g.printf("\n")
		return nil
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatPolicy(p *protocol.DirectoryPolicy) string {
	if p == nil {
		return "unknown"
	}
	topics := "any registered node's"
	if len(p.Topics) > 0 {
		topics = strings.Join(p.Topics, ", ")
	}
	s := fmt.Sprintf("%s; topics %s", p.Role, topics)
	if p.RetentionDays > 0 {
		s += fmt.Sprintf("; retention %d days", p.RetentionDays)
	}
	if p.Contact != "" {
		s += "; contact " + p.Contact
	}
	return s
}
