package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/hass"
	"github.com/meshprotocol/mesh/protocol"
)

// parseSpan reads a duration that may use days and weeks: 7d, 2w, 36h,
// 90m.
func parseSpan(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("%q: want a positive duration such as 7d, 36h or 90m", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 7d, 36h or 90m", s)
	}
	return d, nil
}

// parseUntil reads an end: a date (2027-06-01, the end of that day's
// start in local time), an RFC 3339 time, or a duration from now (30d).
func parseUntil(s string) (int64, error) {
	if d, err := parseSpan(s); err == nil {
		return time.Now().Add(d).UnixMilli(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UnixMilli(), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%q: want a date (2027-06-01), an RFC 3339 time or a duration from now (30d)", s)
}

func fmtTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func sensorCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "sensor",
		Short: "Sensor streams on this node: readings encrypted under epoch keys you grant and revoke",
	}
	var (
		opts   api.StreamOptions
		ttl    string
		pushAt string
	)
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a stream (or change its unit, TTL and anomaly settings): mesh sensor add basement/humidity --unit % --ttl 7d",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			opts.Name = a[0]
			if err := protocol.ValidateStreamName(opts.Name); err != nil {
				return usageError{err}
			}
			if ttl != "" {
				d, err := parseSpan(ttl)
				if err != nil {
					return usagef("--ttl: %v", err)
				}
				opts.TTLMs = d.Milliseconds()
			}
			return show(g, c, func(b api.API) (*api.Stream, error) { return b.SensorAdd(c.Context(), opts) }, func(s *api.Stream) {
				g.printf("stream %s (%s), readings live %s, epoch key %s\n", s.Name, orDash(s.Unit), time.Duration(s.TTLMs)*time.Millisecond, s.Epoch)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&opts.Unit, "unit", "", "the unit of the readings (%, °C, W, ...)")
	f.StringVar(&ttl, "ttl", "", "how long a reading lives everywhere (default 7d)")
	f.BoolVar(&opts.Local, "local", false, "keep the readings on this node (served to granted readers who ask, never announced)")
	f.IntVar(&opts.Anomaly.Window, "anomaly-window", 0, "readings the rolling statistic spans (default 60)")
	f.Float64Var(&opts.Anomaly.Threshold, "anomaly-threshold", 0, "standard deviations from the rolling mean that make an anomaly (default 4)")
	f.IntVar(&opts.Anomaly.MinSamples, "anomaly-min", 0, "readings seen before any is marked (default 10)")

	pushC := &cobra.Command{
		Use:   "push NAME VALUE",
		Short: "Record a reading: signed, encrypted under the stream's epoch key, kept and announced",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(c *cobra.Command, a []string) error {
			v, err := strconv.ParseFloat(a[1], 64)
			if err != nil {
				return usagef("VALUE %q: want a number", a[1])
			}
			req := api.PushRequest{Stream: a[0], Value: v}
			if pushAt != "" {
				t, err := time.Parse(time.RFC3339, pushAt)
				if err != nil {
					return usagef("--at %q: want an RFC 3339 time", pushAt)
				}
				req.At = t.UnixMilli()
			}
			return show(g, c, func(b api.API) (*api.Reading, error) { return b.SensorPush(c.Context(), req) }, func(r *api.Reading) {
				mark := ""
				if r.Anomaly {
					mark = fmt.Sprintf("  ANOMALY (%.1f sd from the rolling mean)", r.Score)
				}
				g.printf("%s %s %s at %s, expires %s%s\n", r.Stream, fmtValue(r.Value), r.Unit, fmtTime(r.At), fmtTime(r.Expires), mark)
			})
		},
	}
	pushC.Flags().StringVar(&pushAt, "at", "", "when it was taken (RFC 3339; default now)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List this node's streams",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.Stream, error) { return b.SensorList(c.Context()) }, func(list []api.Stream) {
				if len(list) == 0 {
					g.printf("no streams: mesh sensor add NAME --unit UNIT\n")
					return
				}
				g.printf("%-28s %-6s %-8s %8s %-12s %s\n", "STREAM", "UNIT", "TTL", "READINGS", "LAST", "READERS")
				for _, s := range list {
					last := "-"
					if s.Last != nil {
						last = fmtValue(*s.Last)
					}
					g.printf("%-28s %-6s %-8s %8d %-12s %d\n", s.Name, orDash(s.Unit), time.Duration(s.TTLMs)*time.Millisecond, s.Readings, last, len(s.Readers))
				}
			})
		},
	}
	c.AddCommand(add, pushC, list)
	return c
}

func accessCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "access",
		Short: "Who may read this node's sensor streams: grant, revoke, list",
	}
	var (
		streams []string
		until   string
	)
	grant := &cobra.Command{
		Use:   "grant NODEID",
		Short: "Let a node fetch the epoch keys of streams: mesh access grant 12D3KooW... --stream 'basement/*' [--until 2027-06-01]",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if _, err := protocol.PublicKeyOf(a[0]); err != nil {
				return usagef("NODEID %q: %v", a[0], err)
			}
			opts := api.GrantOptions{Reader: a[0], Streams: streams}
			if until != "" {
				u, err := parseUntil(until)
				if err != nil {
					return usagef("--until: %v", err)
				}
				opts.Until = u
			}
			return show(g, c, func(b api.API) (*api.Grant, error) { return b.AccessGrant(c.Context(), opts) }, func(gr *api.Grant) {
				end := "no end"
				if gr.Until != 0 {
					end = "until " + fmtTime(gr.Until)
				}
				g.printf("granted %s: %s (%s); streams now: %s\n", shortID(gr.Reader), strings.Join(gr.Streams, ", "), end, strings.Join(orNone(gr.Matches), ", "))
			})
		},
	}
	grant.Flags().StringSliceVar(&streams, "stream", nil, "a stream or pattern (basement/*, *); repeatable; default every stream")
	grant.Flags().StringVar(&until, "until", "", "end the grant: a date (2027-06-01), an RFC 3339 time or a duration (30d)")
	var revokeStreams []string
	revoke := &cobra.Command{
		Use:   "revoke NODEID",
		Short: "Take streams away from a node: new epochs at once; it is refused every key it has not fetched",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if _, err := protocol.PublicKeyOf(a[0]); err != nil {
				return usagef("NODEID %q: %v", a[0], err)
			}
			return show(g, c, func(b api.API) (*api.RevokeResult, error) { return b.AccessRevoke(c.Context(), a[0], revokeStreams) }, func(r *api.RevokeResult) {
				g.printf("revoked %s: %s now under new epoch keys\n", shortID(r.Reader), strings.Join(orNone(r.Streams), ", "))
				if r.Remaining != nil {
					g.printf("it keeps: %s\n", strings.Join(r.Remaining.Streams, ", "))
				}
			})
		},
	}
	revoke.Flags().StringSliceVar(&revokeStreams, "stream", nil, "only these patterns of its grant (default: the whole grant)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the grants",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.Grant, error) { return b.AccessList(c.Context()) }, func(list []api.Grant) {
				if len(list) == 0 {
					g.printf("no grants: mesh access grant NODEID --stream PATTERN\n")
					return
				}
				g.printf("%-54s %-24s %-20s %s\n", "READER", "STREAMS", "UNTIL", "COVERS")
				for _, gr := range list {
					end := "-"
					if gr.Until != 0 {
						end = fmtTime(gr.Until)
						if gr.Expired {
							end += " (ended)"
						}
					}
					g.printf("%-54s %-24s %-20s %s\n", gr.Reader, strings.Join(gr.Streams, ","), end, strings.Join(orNone(gr.Matches), ","))
				}
			})
		},
	}
	c.AddCommand(grant, revoke, list)
	return c
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"(none)"}
	}
	return s
}

func nameCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "name",
		Short: "Local names for nodes and groups of nodes (mesh search ... --sources NAME)",
	}
	set := &cobra.Command{
		Use:   "set NAME NODEID|NAME...",
		Short: "Name a node (mesh name set basement 12D3KooW...) or a group (mesh name set home garage basement 12D3KooW...)",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(c *cobra.Command, a []string) error {
			var targets []string
			for _, t := range a[1:] {
				targets = append(targets, strings.Split(t, ",")...)
			}
			return show(g, c, func(b api.API) (*api.Name, error) { return b.NameSet(c.Context(), a[0], targets) }, func(n *api.Name) {
				g.printf("%s = %s\n", n.Name, strings.Join(n.Nodes, ", "))
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the local names",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) ([]api.Name, error) { return b.NameList(c.Context()) }, func(list []api.Name) {
				if len(list) == 0 {
					g.printf("no names: mesh name set NAME NODEID\n")
				}
				for _, n := range list {
					g.printf("%-16s %s\n", n.Name, strings.Join(n.Nodes, ", "))
				}
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Forget a local name",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				ok, err := b.NameRemove(c.Context(), a[0])
				if err != nil {
					return err
				}
				if !ok {
					return coded(protocol.ErrNotFound, "no name %q here (mesh name list)", a[0])
				}
				if g.json {
					return g.printJSON(map[string]any{"removed": true, "name": a[0]})
				}
				g.printf("removed %s\n", a[0])
				return nil
			})
		},
	}
	c.AddCommand(set, list, remove)
	return c
}

// sensorSearch is mesh search with named sources (or --stats): a question
// to sensor sources.
func (g *globals) sensorSearch(c *cobra.Command, b api.API, req api.SensorSearchRequest) error {
	res, err := b.SensorSearch(c.Context(), req)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(res)
	}
	label := func(src, name string) string {
		if name != "" {
			return name
		}
		return shortID(src)
	}
	if req.Stats {
		g.printf("%-14s %-26s %6s %10s %10s %10s %10s  %s\n", "SOURCE", "STREAM", "N", "MIN", "MAX", "MEAN", "LAST", "LAST AT")
		names := map[string]string{}
		for _, s := range res.Sources {
			names[s.Source] = s.Name
		}
		for _, s := range res.Stats {
			g.printf("%-14s %-26s %6d %10s %10s %10s %10s  %s %s\n", label(s.Source, names[s.Source]), s.Stream, s.Count,
				fmtValue(s.Min), fmtValue(s.Max), fmtValue(s.Mean), fmtValue(s.Last), fmtTime(s.LastAt), s.Unit)
		}
	} else {
		for _, r := range res.Readings {
			mark := ""
			if r.Anomaly {
				mark = "  anomaly"
			}
			g.printf("%-14s %-26s %10s %-4s %s%s\n", label(r.Source, r.Name), r.Stream, fmtValue(r.Value), r.Unit, fmtTime(r.At), mark)
		}
	}
	for _, s := range res.Sources {
		switch {
		case s.Error != "":
			g.printf("%s: %s\n", label(s.Source, s.Name), s.Error)
		case s.Unreadable > 0:
			g.printf("%s: %d readings could not be decrypted here\n", label(s.Source, s.Name), s.Unreadable)
		}
	}
	g.printf("%s from %s, decrypted and verified here\n", plural(len(res.Readings), "reading", "readings"), plural(len(res.Sources), "source", "sources"))
	return nil
}

// namedSources reports whether --sources names sensor sources: every
// comma-separated part a name set here (mesh name set) or a node ID, and
// at least one a name. A name wins over a topic of the same name.
func namedSources(c *cobra.Command, b api.API, sources string) bool {
	names, err := b.NameList(c.Context())
	if err != nil || len(names) == 0 {
		return false
	}
	named := false
	for _, part := range strings.Split(sources, ",") {
		part = strings.TrimSpace(part)
		if _, err := protocol.PublicKeyOf(part); err == nil {
			continue
		}
		found := false
		for _, n := range names {
			if n.Name == part {
				found = true
				break
			}
		}
		if !found {
			return false
		}
		named = true
	}
	return named
}

// sensorLimit is --limit for a sensor question: the flag if given, else
// the sources' default.
func sensorLimit(c *cobra.Command, limit int) int {
	if c.Flags().Changed("limit") {
		return limit
	}
	return 0
}

// sensorDeadline is --deadline for a sensor question: the flag if given,
// else the default (5 s).
func sensorDeadline(c *cobra.Command, d time.Duration) int64 {
	if c.Flags().Changed("deadline") {
		return d.Milliseconds()
	}
	return 0
}

func bridgeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "bridge",
		Short: "Bridges to other systems: mqtt (Home Assistant)",
	}
	var (
		cfg      hass.Config
		interval time.Duration
		once     bool
		passFile string
	)
	mq := &cobra.Command{
		Use:   "mqtt",
		Short: "Publish decrypted readings to an MQTT broker with Home Assistant discovery (no YAML)",
		Long: `Asks the named sources for their readings (decrypted and verified by the daemon) every
--interval and publishes the newest reading of each stream to the broker, with Home
Assistant's MQTT discovery: homeassistant/sensor/mesh_<nodeId>/<stream>/config (retained,
once) and mesh/<nodeId>/<stream>/state (retained). Runs until interrupted; --once polls once,
prints what it published, and exits.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if passFile != "" {
				b, err := readInput(passFile, 4096)
				if err != nil {
					return err
				}
				cfg.Password = strings.TrimSpace(string(b))
			}
			return g.withBackend(c, func(b api.API) error {
				br, err := hass.New(cfg, b)
				if err != nil {
					return usageError{err}
				}
				if err := br.Connect(c.Context()); err != nil {
					return err
				}
				defer br.Close()
				if once {
					res, err := br.Poll(c.Context())
					if err != nil {
						return err
					}
					if g.json {
						return g.printJSON(res)
					}
					g.printf("published %d states and %d discovery documents to %s\n", res.States, res.Configs, cfg.Broker)
					for _, e := range res.Errors {
						g.printf("%s\n", e)
					}
					return nil
				}
				ctx, stop := signalContext(c.Context())
				defer stop()
				return br.Run(ctx, interval)
			})
		},
	}
	f := mq.Flags()
	f.StringVar(&cfg.Broker, "broker", "tcp://127.0.0.1:1883", "the MQTT broker")
	f.StringVar(&cfg.Sources, "sources", "", "names or node IDs to bridge (comma-separated)")
	f.StringSliceVar(&cfg.Streams, "stream", nil, "only these streams or patterns (repeatable)")
	f.StringVar(&cfg.Username, "username", "", "the broker's user name")
	f.StringVar(&passFile, "password-file", "", "a file holding the broker's password")
	f.StringVar(&cfg.DiscoveryPrefix, "discovery-prefix", "homeassistant", "Home Assistant's discovery prefix")
	f.StringVar(&cfg.StatePrefix, "state-prefix", "mesh", "the root of the state topics")
	f.DurationVar(&interval, "interval", 30*time.Second, "how often to ask the sources")
	f.BoolVar(&once, "once", false, "poll once, print what was published, and exit")
	c.AddCommand(mq)
	return c
}

// signalContext ends at SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
