package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

func storeCmd(g *globals) *cobra.Command {
	var (
		file                                                         string
		typ, id, title, content, severity, agent, project, workingOn string
		state, visibility                                            string
		tags, fields, textFields                                     []string
		ttl                                                          time.Duration
	)
	c := &cobra.Command{
		Use:   "store",
		Short: "Store (upsert) a memory record",
		Long: `Store (upsert) a memory record, from flags or from a JSON record (--file FILE, or - for stdin).

Examples:
  mesh store --type lesson --title "Cargo parallel builds" --content "Never run cargo in parallel..." --tags rust,cargo
  mesh store --type checkpoint --agent radarr --working-on "Debugging auth" --state '{"blockers":["no API key"]}'
  mesh store --type reading --content "basement humidity" --field humidity=64 --ttl 24h`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var rec *protocol.Lesson
			if file != "" {
				var r io.Reader = os.Stdin
				if file != "-" {
					f, err := os.Open(file)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				b, err := io.ReadAll(io.LimitReader(r, protocol.MaxRecordSize+1))
				if err != nil {
					return err
				}
				if rec, err = protocol.DecodeLesson(b); err != nil {
					return err
				}
			} else {
				rec = &protocol.Lesson{
					ID: id, Type: typ, Title: title, Content: content, Severity: severity,
					Agent: agent, Project: project, WorkingOn: workingOn, Visibility: visibility,
				}
				for _, t := range tags {
					if t = strings.TrimSpace(t); t != "" {
						rec.Tags = append(rec.Tags, t)
					}
				}
				if state != "" {
					if !json.Valid([]byte(state)) {
						return usagef("--state: not valid JSON")
					}
					rec.State = json.RawMessage(state)
				}
				for _, f := range fields {
					k, v, ok := strings.Cut(f, "=")
					if !ok || k == "" {
						return usagef("--field %q: want name=value", f)
					}
					if !json.Valid([]byte(v)) {
						return usagef("--field %s=%s: not a number (nor true, false, null or JSON); for text use --text-field %s=%s", k, v, k, v)
					}
					setExtra(rec, k, json.RawMessage(v))
				}
				for _, f := range textFields {
					k, v, ok := strings.Cut(f, "=")
					if !ok || k == "" {
						return usagef("--text-field %q: want name=value", f)
					}
					b, _ := json.Marshal(v)
					setExtra(rec, k, b)
				}
				if rec.Title == "" && rec.Content == "" && rec.WorkingOn == "" && len(rec.State) == 0 && len(rec.Extra) == 0 {
					return usagef("nothing to store: give --title and --content (a checkpoint: --working-on or --state; a reading: --field), or --file")
				}
				if err := rec.Validate(); err != nil {
					return usageError{err}
				}
			}
			if ttl < 0 {
				return usagef("--ttl must be positive")
			}
			if ttl > 0 {
				rec.ExpiresAt = time.Now().Add(ttl).UnixMilli()
			}
			return g.withBackend(c, func(b api.API) error {
				newID, created, err := b.Put(c.Context(), rec)
				if err != nil {
					return err
				}
				published := rec.Visibility == protocol.VisibilityPublic || rec.Visibility == protocol.VisibilityUnlisted
				if g.json {
					return g.printJSON(map[string]any{"success": true, "id": newID, "created": created, "published": published})
				}
				verb := "updated"
				if created {
					verb = "stored"
				}
				g.printf("%s %s\n", verb, newID)
				if published {
					g.printf("published it (%s, signed by this node); to add topics: mesh publish %s --topics a,b; to take it back: mesh revoke %s\n", rec.Visibility, newID, newID)
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVarP(&file, "file", "f", "", "read a JSON record from FILE (- for stdin)")
	f.StringVar(&typ, "type", protocol.TypeLesson, "record type: lesson, checkpoint, snippet, or any other")
	f.StringVar(&id, "id", "", "record ID (default: generated; an existing ID is updated)")
	f.StringVar(&title, "title", "", "title")
	f.StringVar(&content, "content", "", "content")
	f.StringSliceVar(&tags, "tags", nil, "comma-separated tags")
	f.StringVar(&severity, "severity", "", "info, warning or critical")
	f.StringVar(&agent, "agent", "", "agent identifier")
	f.StringVar(&project, "project", "", "project")
	f.StringVar(&workingOn, "working-on", "", "checkpoint: current task")
	f.StringVar(&state, "state", "", `checkpoint: state JSON ({"decisions","blockers","artifacts","flags"})`)
	f.StringVar(&visibility, "visibility", "", "private (default); public or unlisted publishes it as it is stored")
	f.StringArrayVar(&fields, "field", nil, "extra field name=value: a number, true, false, null or JSON; repeatable")
	f.StringArrayVar(&textFields, "text-field", nil, "extra text field name=value; repeatable")
	f.DurationVar(&ttl, "ttl", 0, "expire the record after this long (e.g. 24h)")
	return c
}

func getCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID | lessonId@nodeId",
		Short: "Show one record, or a lesson of any node by key (decrypted if it is encrypted and you may read it)",
		Long: `mesh get ID shows one of this node's records.

mesh get lessonId@nodeId finds that lesson (here, at its publisher, at a connected peer),
verifies its signature and shows it; an encrypted one is decrypted with its key, fetched
from the author (or k of its escrow nodes) if its policy admits this node. When it cannot
be read, it says why: ACCESS_DENIED, KEY_REVOKED, UNREACHABLE. The plaintext is held in
the daemon's memory only, until the key expires or is revoked.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if strings.Contains(a[0], "@") {
				if _, _, err := protocol.ParseKey(a[0]); err != nil {
					return usageError{err}
				}
				return g.readKey(c, a[0])
			}
			return show(g, c, func(b api.API) (*protocol.Lesson, error) { return b.Get(c.Context(), a[0]) }, func(rec *protocol.Lesson) {
				printRecord(g, rec)
			})
		},
	}
}

func printRecord(g *globals, r *protocol.Lesson) {
	g.printf("%s  [%s]", r.ID, r.Type)
	if r.Visibility != "" {
		g.printf("  %s", r.Visibility)
	}
	g.printf("\n")
	if r.Title != "" {
		g.printf("  title:    %s\n", r.Title)
	}
	if r.WorkingOn != "" {
		g.printf("  working:  %s\n", r.WorkingOn)
	}
	if len(r.Tags) > 0 {
		g.printf("  tags:     %s\n", strings.Join(r.Tags, ", "))
	}
	for _, kv := range []struct{ k, v string }{{"severity", r.Severity}, {"agent", r.Agent}, {"project", r.Project}} {
		if kv.v != "" {
			g.printf("  %-9s %s\n", kv.k+":", kv.v)
		}
	}
	if r.CreatedAt != 0 {
		g.printf("  created:  %s\n", time.UnixMilli(r.CreatedAt).UTC().Format(time.RFC3339))
	}
	if r.ExpiresAt != 0 {
		g.printf("  expires:  %s\n", time.UnixMilli(r.ExpiresAt).UTC().Format(time.RFC3339))
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g.printf("  %s: %s\n", k, r.Extra[k])
	}
	if r.Content != "" {
		g.printf("\n%s\n", indent(r.Content))
	}
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func listCmd(g *globals) *cobra.Command {
	var (
		o      store.ListOptions
		remote bool
		from   string
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List records, newest first",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Order != "" && o.Order != "asc" && o.Order != "desc" {
				return usagef("--order %q: want asc or desc", o.Order)
			}
			switch {
			case from != "":
				if err := checkNodeID(from); err != nil {
					return err
				}
				o.Origin, o.Publisher = store.OriginRemote, from
			case remote:
				o.Origin = store.OriginRemote
			}
			return g.withBackend(c, func(b api.API) error {
				res, err := b.List(c.Context(), o)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(api.NewListResponse(res))
				}
				for i, r := range res.Records {
					id := r.ID
					if i < len(res.Keys) && res.Keys[i] != "" {
						id = res.Keys[i]
					}
					g.printf("%-28s %-10s %s\n", id, r.Type, summary(r))
				}
				more := ""
				if res.HasMore {
					more = " (more: use --offset)"
				}
				what := "records"
				if o.Origin == store.OriginRemote {
					what = "received lessons"
				}
				g.printf("%d of %d %s%s\n", len(res.Records), res.Total, what, more)
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&o.Type, "type", "", "only this type")
	f.StringVar(&o.Agent, "agent", "", "only this agent")
	f.StringVar(&o.Project, "project", "", "only this project")
	f.StringVar(&o.Visibility, "visibility", "", "only this visibility")
	f.StringSliceVar(&o.Tags, "tags", nil, "only records with these tags")
	f.IntVar(&o.Limit, "limit", 20, "at most this many")
	f.IntVar(&o.Offset, "offset", 0, "skip this many")
	f.StringVar(&o.Order, "order", "desc", "by creation time: asc or desc")
	f.BoolVar(&remote, "remote", false, "list the lessons received from other nodes instead")
	f.StringVar(&from, "from", "", "list the lessons received from this node ID")
	return c
}

func summary(r *protocol.Lesson) string {
	s := r.Title
	if s == "" {
		s = r.WorkingOn
	}
	if s == "" {
		s = r.Content
	}
	if s == "" && len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s += k + "=" + string(r.Extra[k]) + " "
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > 60 {
		s = string([]rune(s)[:59]) + "…"
	}
	return s
}

func deleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a record (and its publication)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				deleted, err := b.Delete(c.Context(), a[0])
				if err != nil {
					return err
				}
				if !deleted {
					return fmt.Errorf("delete %s: %w", a[0], protocol.ErrUnknownLesson)
				}
				if g.json {
					return g.printJSON(map[string]any{"success": true, "deleted": true})
				}
				g.printf("deleted %s\n", a[0])
				return nil
			})
		},
	}
}

func statusCmd(g *globals) *cobra.Command {
	var wait time.Duration
	c := &cobra.Command{
		Use:   "status",
		Short: "Node health and record counts per type",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if wait > 0 {
				if err := g.waitDaemon(c.Context(), wait); err != nil {
					return err
				}
			}
			return g.withBackend(c, func(b api.API) error {
				st, err := b.Status(c.Context())
				if err != nil {
					return err
				}
				fillNetwork(c.Context(), b, st)
				if g.json {
					return g.printJSON(st)
				}
				g.printf("node:    %s\nversion: %s\nhealthy: %v\nrecords: %d own, %s from other nodes (mesh list --remote)\n",
					st.NodeID, st.Version, st.Healthy, st.Total, plural(st.Remote, "lesson", "lessons"))
				types := make([]string, 0, len(st.Counts))
				for t := range st.Counts {
					types = append(types, t)
				}
				sort.Strings(types)
				for _, t := range types {
					g.printf("  %-12s %d\n", t, st.Counts[t])
				}
				if st.LastRecovery != "" {
					g.printf("last recovery: %s\n", st.LastRecovery)
				}
				if p := st.Pending; p.Lessons > 0 {
					g.printf("refused: %s from %s not trusted: mesh trust pending\n",
						plural(p.Lessons, "lesson", "lessons"), plural(p.Publishers, "publisher", "publishers"))
				}
				printNetwork(g, st)
				return nil
			})
		},
	}
	c.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for a daemon starting on the repo to answer (for scripts)")
	return c
}

func agentStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "agent-status AGENT",
		Short: "An agent's state (idle, in_progress, blocked) from its latest checkpoint",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return show(g, c, func(b api.API) (*api.AgentStatusResponse, error) {
				st, err := b.AgentStatus(c.Context(), a[0])
				if err != nil {
					return nil, err
				}
				return api.NewAgentStatusResponse(st), nil
			}, func(st *api.AgentStatusResponse) {
				g.printf("%s: %s\n", st.Agent, st.Status)
				if st.WorkingOn != "" {
					g.printf("  working on: %s\n", st.WorkingOn)
				}
				for _, bl := range st.Blockers {
					g.printf("  blocked by: %s\n", bl)
				}
			})
		},
	}
}

func searchCmd(g *globals) *cobra.Command {
	var (
		q                   store.Query
		since, until        string
		sources             string
		hops                int
		deadline, freshness time.Duration
		directories         bool
		directoryURLs       []string
		trustedOnly         bool
		stats               bool
	)
	c := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Full-text search of this node's store: your records and the lessons it received",
		Long: `Full-text search (BM25) of this node's store. The query takes words, "quoted phrases"
and numeric comparisons on record fields, such as: mesh search "humidity > 60".

With --sources, search the network instead: mesh search "cargo parallel build crashes"
--sources trusted asks your trusted peers (and theirs, --hops), verifies every result's
signature, drops revoked and untrusted ones, and ranks by relevance × trust × freshness.

With --directories, search the public APIs of the directories added with mesh directory
add (or those given with --directory-url) and merge their answers here, verifying every
answer's and every lesson's signature (as mesh directory search); add --sources trusted
to merge in your trusted peers' answers too.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			q.Text = strings.Join(a, " ")
			switch q.Origin {
			case "all", "local", "remote":
			default:
				return usagef("--origin %q: want local, remote or all", q.Origin)
			}
			var err error
			if q.Since, err = parseTime(since); err != nil {
				return usagef("--since: %v", err)
			}
			if q.Until, err = parseTime(until); err != nil {
				return usagef("--until: %v", err)
			}
			remote := sources != "" || directories || len(directoryURLs) > 0
			for _, name := range []string{"project", "agent", "until", "min-score", "origin"} {
				if remote && c.Flags().Changed(name) {
					return usagef("--%s applies to the local search only, not with --sources or --directories", name)
				}
			}
			if directories || len(directoryURLs) > 0 {
				if c.Flags().Changed("freshness") {
					return usagef("--freshness applies to --sources only, not with --directories")
				}
				switch sources {
				case "", "trusted":
				default:
					return usagef("--directories merges in --sources trusted only, not %q", sources)
				}
				d := directory.DefaultDirectoryDeadline
				if c.Flags().Changed("deadline") {
					d = deadline
				}
				return g.directorySearch(c, api.DirectorySearchRequest{
					Query: q.Text, Limit: q.Limit, Directories: directoryURLs,
					Peers: sources == "trusted", Hops: hops, DeadlineMs: d.Milliseconds(),
					TrustedOnly: trustedOnly,
					Filters:     protocol.SearchFilters{Tags: q.Tags, Since: q.Since, Types: typesOf(q.Type)},
				})
			}
			return g.withBackend(c, func(b api.API) error {
				if sources != "" && (stats || namedSources(c, b, sources)) {
					return g.sensorSearch(c, b, api.SensorSearchRequest{Query: q.Text, Sources: sources, Stats: stats,
						Limit: sensorLimit(c, q.Limit), DeadlineMs: sensorDeadline(c, deadline)})
				}
				if stats {
					return usagef("--stats aggregates the readings of sensor sources: give --sources NAME (mesh name set) or a node ID")
				}
				if sources != "" {
					return g.searchNetwork(c, b, api.FedSearchRequest{
						Query: q.Text, Limit: q.Limit, Hops: hops, Sources: sources,
						Deadline: deadline, FreshnessHalfLife: freshness,
						Filters: protocol.SearchFilters{Tags: q.Tags, Since: q.Since, Types: typesOf(q.Type)},
					})
				}
				res, err := b.Search(c.Context(), q)
				if err != nil {
					return err
				}
				if g.json {
					out := []map[string]any{}
					for _, h := range res.Hits {
						r := map[string]any{"id": h.ID, "score": h.Score, "record": h.Record}
						if h.Key != "" {
							r["key"], r["publisher"] = h.Key, h.Publisher
						}
						out = append(out, r)
					}
					return g.printJSON(map[string]any{"success": true, "results": out, "total": res.Total})
				}
				for _, h := range res.Hits {
					from := ""
					if h.Key != "" {
						from = "  (from " + shortID(h.Publisher) + ")"
					}
					id := h.ID
					if h.Key != "" {
						id = h.Key
					}
					g.printf("%.3f  %-28s %s%s\n", h.Score, id, summary(h.Record), from)
				}
				g.printf("%d of %s\n", len(res.Hits), plural(res.Total, "match", "matches"))
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringVar(&q.Type, "type", "", "only this type")
	f.StringSliceVar(&q.Tags, "tags", nil, "only records with these tags")
	f.StringVar(&q.Project, "project", "", "only this project")
	f.StringVar(&q.Agent, "agent", "", "only this agent")
	f.StringVar(&since, "since", "", "created at or after: RFC 3339 time, or a duration ago (24h)")
	f.StringVar(&until, "until", "", "created at or before: RFC 3339 time, or a duration ago")
	f.IntVar(&q.Limit, "limit", 10, "at most this many results (max 100)")
	f.Float64Var(&q.MinScore, "min-score", 0, "drop results scoring below this (0..1)")
	f.StringVar(&q.Origin, "origin", "all", "local (your own records), remote (received from other nodes) or all")
	f.StringVar(&sources, "sources", "", "search the network: trusted (your trusted peers and theirs), a node ID, or a topic; names set with mesh name set (comma-separated) ask those sensor sources")
	f.BoolVar(&stats, "stats", false, "with sensor sources: min/max/mean/last per stream over the readings found")
	f.IntVar(&hops, "hops", 2, "with --sources: how far the search travels (max 3)")
	f.DurationVar(&deadline, "deadline", 2*time.Second, "with --sources: answer with what arrived by then")
	f.DurationVar(&freshness, "freshness", 0, "with --sources: halve a result's score per this age (0: off)")
	f.BoolVar(&directories, "directories", false, "search the directories added with mesh directory add, verifying every answer")
	f.StringArrayVar(&directoryURLs, "directory-url", nil, "search this directory's public API URL (repeatable; implies --directories)")
	f.BoolVar(&trustedOnly, "trusted-only", false, "with --directories: drop lessons of publishers you have no trust path to")
	return c
}

// typesOf is the types filter of a --type flag.
func typesOf(t string) []string {
	if t == "" {
		return nil
	}
	return []string{t}
}

// parseTime accepts RFC 3339, a date, or a duration meaning "that long ago".
func parseTime(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d).UnixMilli(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("%q: want an RFC 3339 time, a date (2006-01-02) or a duration (24h)", s)
}

// searchNetwork runs and prints a federated search.
func (g *globals) searchNetwork(c *cobra.Command, b api.API, req api.FedSearchRequest) error {
	res, err := b.SearchNetwork(c.Context(), req)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(res)
	}
	for _, h := range res.Results {
		g.printf("%.3f  %-40s %s\n", h.Score, h.Key, summary(&h.SignedLesson.Lesson))
		g.printf("       relevance %.2f × trust %.2f × freshness %.2f, via %s, %s\n",
			h.Relevance, h.Trust, h.Freshness, shortID(h.Via), formatPath(h.TrustPath))
	}
	g.printf("%s", plural(len(res.Results), "result", "results"))
	if res.Truncated {
		g.printf(" (truncated: some peers did not answer in time)")
	}
	if n := res.Invalid + res.Revoked + res.Untrusted; n > 0 {
		g.printf("; dropped %d invalid, %d revoked, %d untrusted", res.Invalid, res.Revoked, res.Untrusted)
	}
	g.printf("\n")
	return nil
}

func setExtra(rec *protocol.Lesson, k string, v json.RawMessage) {
	if rec.Extra == nil {
		rec.Extra = map[string]json.RawMessage{}
	}
	rec.Extra[k] = v
}
