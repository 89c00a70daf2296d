package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

func trustCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "trust",
		Short: "The web of trust: whose lessons this node accepts and how it ranks them",
	}
	var level, note string
	add := &cobra.Command{
		Use:   "add NODEID",
		Short: "Trust a node: full (search, sync, re-announce), limited (search only) or none (block)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			lvl, err := trust.ParseLevel(level)
			if err != nil {
				return usageError{err}
			}
			if err := checkNodeID(a[0]); err != nil {
				return err
			}
			return g.withBackend(c, func(b api.API) error {
				if err := b.TrustSet(c.Context(), a[0], lvl, note); err != nil {
					return err
				}
				if lvl == trust.LevelNone {
					return g.done(map[string]any{"success": true}, "blocked %s: its lessons are gone from this node and it cannot connect\n", a[0])
				}
				return g.done(map[string]any{"success": true}, "trusting %s: %s\n", a[0], lvl)
			})
		},
	}
	add.Flags().StringVar(&level, "level", string(trust.LevelFull), "full, limited or none")
	add.Flags().StringVar(&note, "note", "", "a note for yourself (who this is)")
	remove := &cobra.Command{
		Use:   "remove NODEID",
		Short: "Remove a trust edge, and every path through it, at once",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if err := checkNodeID(a[0]); err != nil {
				return err
			}
			return g.withBackend(c, func(b api.API) error {
				if err := b.TrustRemove(c.Context(), a[0]); err != nil {
					return err
				}
				return g.done(map[string]any{"success": true}, "removed %s\n", a[0])
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Trusted nodes, direct and through vouches, with hops",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(b api.API) error {
				rows, err := b.TrustList(c.Context())
				if err != nil {
					return err
				}
				if g.json {
					if rows == nil {
						rows = []api.TrustEntry{}
					}
					return g.printJSON(rows)
				}
				g.printf("%-54s %-8s %4s  %s\n", "NODE ID", "LEVEL", "HOPS", "NOTE")
				for _, r := range rows {
					note := r.Note
					if r.Via != "" {
						note = strings.TrimSpace(note + " (via " + shortID(r.Via) + ")")
					}
					g.printf("%-54s %-8s %4d  %s\n", r.NodeID, r.Level, r.Hops, note)
				}
				return nil
			})
		},
	}
	path := &cobra.Command{
		Use:   "path NODEID",
		Short: "Show the trust path to a node",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if err := checkNodeID(a[0]); err != nil {
				return err
			}
			return show(g, c, func(b api.API) (*api.TrustPathInfo, error) { return b.TrustPath(c.Context(), a[0]) }, func(p *api.TrustPathInfo) {
				switch {
				case p.Blocked:
					g.printf("%s is blocked (level none)\n", a[0])
				case !p.Trusted:
					g.printf("no trust path to %s\n", a[0])
				default:
					g.printf("%s (score %.3f)\n", formatPath(p.Hops), p.Score)
					if p.Limited {
						g.printf("limited: searched, never synced from\n")
					}
				}
			})
		},
	}
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the direct trust edges as JSON",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(b api.API) error {
				data, err := b.TrustExport(c.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(g.out, string(data))
				return err
			})
		},
	}
	imp := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Add the edges of an export (never changes or removes an edge you have)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			data, err := readInput(a[0], trust.MaxImportSize)
			if err != nil {
				return err
			}
			if err := notJSON(a[0], data); err != nil {
				return err
			}
			return g.withBackend(c, func(b api.API) error {
				added, err := b.TrustImport(c.Context(), data)
				if err != nil {
					return err
				}
				return g.done(map[string]any{"success": true, "added": added}, "added %s\n", plural(added, "edge", "edges"))
			})
		},
	}
	referrals := &cobra.Command{
		Use:   "referrals",
		Short: "Signed referrals received from peers (never acted on by themselves)",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]*protocol.Referral, error) { return b.Referrals(c.Context()) }, func(rs []*protocol.Referral) {
				for _, r := range rs {
					g.printf("%s recommends %s: %s\n", shortID(r.NodeID), r.Subject, r.Note)
				}
				g.printf("%s; to act on one: mesh trust add NODEID\n", plural(len(rs), "referral", "referrals"))
			})
		},
	}
	pending := &cobra.Command{
		Use:   "pending",
		Short: "Publishers whose lessons this node refused because it does not trust them",
		Long: `Publishers whose lessons reached this node (by gossip or sync) and were
refused because no trust path leads to them: who, on which topics, how many
lessons, first and last seen. The lessons themselves are not kept. Trusting
one (mesh trust add NODEID) fetches its lessons at once from the peers that
had them.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.PendingPublisher, error) {
				ps, err := b.TrustPending(c.Context())
				if ps == nil && err == nil {
					ps = []api.PendingPublisher{}
				}
				return ps, err
			}, func(ps []api.PendingPublisher) {
				if len(ps) == 0 {
					g.printf("no lessons refused for trust\n")
					return
				}
				g.printf("%-54s %7s  %-20s %s\n", "NODE ID", "LESSONS", "LAST SEEN", "TOPICS")
				for _, p := range ps {
					g.printf("%-54s %7d  %-20s %s\n", p.NodeID, p.Lessons, time.UnixMilli(p.LastSeen).Format("2006-01-02 15:04:05"), strings.Join(p.Topics, ","))
				}
				g.printf("to accept one's lessons: mesh trust add NODEID\n")
			})
		},
	}
	c.AddCommand(add, remove, list, path, export, imp, referrals, pending)
	return c
}

// formatPath renders a trust path as "you → A → B (2 hops)".
func formatPath(hops []string) string {
	if len(hops) == 0 {
		return "no trust path"
	}
	parts := []string{"you"}
	for _, h := range hops[1:] {
		parts = append(parts, shortID(h))
	}
	n := len(hops) - 1
	unit := "hops"
	if n == 1 {
		unit = "hop"
	}
	return fmt.Sprintf("%s (%d %s)", strings.Join(parts, " → "), n, unit)
}

// done prints v as JSON with --json, else the formatted text.
func (g *globals) done(v any, format string, a ...any) error {
	if g.json {
		return g.printJSON(v)
	}
	g.printf(format, a...)
	return nil
}

// checkNodeID is a usage error for an argument that is no node ID.
func checkNodeID(s string) error {
	if _, err := protocol.PublicKeyOf(s); err != nil {
		return usagef("not a node ID: %s (node IDs look like 12D3KooW…; mesh id prints this node's)", s)
	}
	return nil
}
