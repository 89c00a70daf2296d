package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/node/watch"
	"github.com/meshprotocol/mesh/protocol"
)

// watchSummary is the last line of mesh --json watch when the stream ends.
type watchSummary struct {
	Summary bool       `json:"summary"`
	Matches int        `json:"matches"`
	Last    uint64     `json:"last"` // the last match's seq: pass it as --after to resume
	Reason  string     `json:"reason"`
	Error   *errorBody `json:"error,omitempty"`
}

func watchCmd(g *globals) *cobra.Command {
	var (
		after uint64
		count int
		dur   time.Duration
	)
	c := &cobra.Command{
		Use:   "watch",
		Short: "Stream the matches of the standing queries as lessons arrive (add them with mesh watch add)",
		Long: `Stream the matches of the node's standing queries as lessons arrive: every
lesson the node stores or receives (gossip, sync, fetch, a directory's ingest)
is matched against each standing query (mesh watch add).

It needs a running daemon, and runs until interrupted, until --count matches
came, or for --for. With --json, one object per line: one per match, then,
when the stream ends, a summary ({"summary":true,"matches":N,"last":SEQ}); a
later mesh watch --after SEQ resumes where it stopped.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if count < 0 || dur < 0 {
				return usagef("--count and --for must not be negative")
			}
			if !c.Flags().Changed("after") {
				after = api.WatchFromNow
			}
			cl, err := httpapi.DialRepo(c.Context(), g.repo, g.api)
			if errors.Is(err, httpapi.ErrNoDaemon) {
				return coded(protocol.ErrUnavailable, "mesh watch streams from a running daemon: start mesh daemon on %s (%v)", g.repo, err)
			}
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			reason := "interrupted"
			if dur > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, dur)
				defer cancel()
			}
			sum := watchSummary{Summary: true}
			errCount := errors.New("count reached")
			err = cl.WatchStream(ctx, after, func(m api.WatchMatch) error {
				sum.Matches++
				sum.Last = m.Seq
				if g.json {
					if err := g.printLine(m); err != nil {
						return err
					}
				} else {
					title := ""
					if m.Lesson != nil {
						title = m.Lesson.Title
						if title == "" {
							title = m.Lesson.Content
						}
						title = strings.Join(strings.Fields(title), " ")
						if r := []rune(title); len(r) > 60 {
							title = string(r[:59]) + "…"
						}
					}
					g.printf("%s  %s  %s  %s  (%s)\n", time.UnixMilli(m.At).Format("15:04:05"), m.Watch, m.Key, title, m.Origin)
				}
				if count > 0 && sum.Matches >= count {
					return errCount
				}
				return nil
			})
			switch {
			case errors.Is(err, errCount):
				err, reason = nil, "count"
			case errors.Is(err, context.DeadlineExceeded) && dur > 0:
				err, reason = nil, "for"
			case errors.Is(err, context.Canceled):
				err = nil
			default:
				reason = "error"
			}
			sum.Reason = reason
			if g.json {
				if err != nil {
					e := errorJSON(err, false).Error
					sum.Error = &e
				}
				if perr := g.printLine(sum); perr != nil {
					return perr
				}
				return err
			}
			if err != nil {
				return err
			}
			g.printf("%s (%s); resume with --after %d\n", plural(sum.Matches, "match", "matches"), reason, sum.Last)
			return nil
		},
	}
	c.Flags().Uint64Var(&after, "after", 0, "first replay the matches the daemon kept after this seq (0: all it kept; default: only new matches)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many matches (0: no limit)")
	c.Flags().DurationVar(&dur, "for", 0, "stop after this long (0: run until interrupted)")
	c.AddCommand(watchAddCmd(g), watchListCmd(g), watchRemoveCmd(g))
	return c
}

func watchAddCmd(g *globals) *cobra.Command {
	var (
		sources []string
		topic   string
	)
	c := &cobra.Command{
		Use:   "add QUERY...",
		Short: "Add a standing query: words, \"phrases\", comparisons, as in mesh search",
		Long: `Add a standing query, kept in the repo: every lesson the node stores or receives
from now on is matched against it (mesh watch streams the matches).

QUERY is as in mesh search: words (any may match), "quoted phrases" and numeric
comparisons (humidity > 60), which must match. --sources keeps the lessons of
these publishers only (node IDs, or self); --topic keeps those published on a
topic, and makes the node follow it if it does not yet (it says so).`,
		Args: args(cobra.ArbitraryArgs),
		RunE: func(c *cobra.Command, a []string) error {
			spec := api.WatchSpec{Query: strings.Join(a, " "), Topic: topic}
			for _, s := range sources {
				for _, p := range strings.Split(s, ",") {
					if p = strings.TrimSpace(p); p != "" {
						spec.Sources = append(spec.Sources, p)
					}
				}
			}
			if spec.Query == "" && spec.Topic == "" && len(spec.Sources) == 0 {
				return usagef("give a query, --topic or --sources (a watch of everything would match every lesson)")
			}
			if _, err := watch.Check(spec); err != nil {
				return usageError{err}
			}
			return g.withBackend(c, func(b api.API) error {
				res, err := b.WatchAdd(c.Context(), spec)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(res)
				}
				g.printf("added %s: %s\n", res.Watch.ID, describeWatch(res.Watch))
				if res.Followed != "" {
					g.printf("now following topic %s (the watch needs its lessons; mesh unfollow %s undoes it)\n", res.Followed, res.Followed)
				}
				return nil
			})
		},
	}
	c.Flags().StringArrayVar(&sources, "sources", nil, "only lessons of these publishers: node IDs or self (comma-separated or repeated)")
	c.Flags().StringVar(&topic, "topic", "", "only lessons published on this topic (followed if it is not)")
	return c
}

func describeWatch(w api.Watch) string {
	var parts []string
	if w.Query != "" {
		parts = append(parts, "query "+quoteQuery(w.Query))
	}
	if w.Topic != "" {
		parts = append(parts, "topic "+w.Topic)
	}
	if len(w.Sources) > 0 {
		var s []string
		for _, src := range w.Sources {
			s = append(s, shortID(src))
		}
		parts = append(parts, "from "+strings.Join(s, ", "))
	}
	return strings.Join(parts, ", ")
}

func quoteQuery(q string) string { return "«" + q + "»" }

func watchListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the standing queries",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.Watch, error) {
				ws, err := b.WatchList(c.Context())
				if ws == nil {
					ws = []api.Watch{}
				}
				return ws, err
			}, func(ws []api.Watch) {
				if len(ws) == 0 {
					g.printf("no standing queries: mesh watch add QUERY adds one\n")
					return
				}
				for _, w := range ws {
					g.printf("%s  %s  (%s since the daemon started)\n", w.ID, describeWatch(w), plural(w.Matches, "match", "matches"))
				}
			})
		},
	}
}

func watchRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a standing query",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				ok, err := b.WatchRemove(c.Context(), a[0])
				if err != nil {
					return err
				}
				if !ok {
					return coded(protocol.ErrNotFound, "no standing query %s (mesh watch list shows them)", a[0])
				}
				if g.json {
					return g.printJSON(map[string]any{"success": true, "removed": a[0]})
				}
				g.printf("removed %s\n", a[0])
				return nil
			})
		},
	}
}
