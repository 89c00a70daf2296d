package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// dhtFlags adds the DHT flags of `mesh daemon`.
func dhtFlags(c *cobra.Command) func(*cobra.Command, *node.Config) error {
	var (
		mode  string
		roles []string
	)
	f := c.Flags()
	f.StringVar(&mode, "dht-mode", "", "auto (serve the DHT when publicly reachable), server (bootstrap and relay nodes, LANs), client or off (also config.json dht.mode; default auto)")
	f.StringArrayVar(&roles, "dht-role", nil, "role to name in the node record and provide in the DHT, e.g. relay (repeatable; a directory names itself)")
	return func(c *cobra.Command, cfg *node.Config) error {
		if c.Flags().Changed("dht-mode") {
			m := strings.ToLower(mode)
			if m != "off" {
				if _, err := dht.ParseMode(m); err != nil {
					return fmt.Errorf("--dht-mode %q: want auto, server, client or off", mode)
				}
			}
			cfg.DHT.Mode = m
		}
		for _, r := range roles {
			if err := protocol.ValidateID(r); err != nil {
				return fmt.Errorf("--dht-role %q: use letters, digits, '_', '-' or '.'", r)
			}
		}
		cfg.DHT.Roles = append(cfg.DHT.Roles, roles...)
		return nil
	}
}

// lookupNode checks nodeID, then runs fn against the daemon with a context
// bounded by timeout.
func (g *globals) lookupNode(c *cobra.Command, nodeID string, timeout time.Duration, fn func(context.Context, api.API) error) error {
	if _, err := protocol.PublicKeyOf(nodeID); err != nil {
		return usageError{err}
	}
	return g.withBackend(c, func(d api.API) error {
		ctx, cancel := context.WithTimeout(c.Context(), timeout)
		defer cancel()
		return fn(ctx, d)
	})
}

// dhtErr says what to do about an offline node's DHT error (the error of a
// daemon whose DHT is off says so itself).
func dhtErr(err error) error {
	if errors.Is(err, api.ErrOffline) {
		return errors.New("the DHT needs a running node: start `mesh daemon` first")
	}
	return err
}

func directoryNodesCmd(g *globals) *cobra.Command {
	var (
		topic, role string
		limit       int
		timeout     time.Duration
	)
	c := &cobra.Command{
		Use:   "nodes --topic TOPIC | --role ROLE",
		Short: "Find nodes that follow a topic (or play a role) in the DHT",
		Long: `Look up, in MESH's DHT, the nodes that follow a topic (they provide it) or play a
role such as directory, each with its signed node record (addresses, topics, roles)
when the DHT holds one. Needs a running daemon.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if (topic == "") == (role == "") {
				return usagef("give exactly one of --topic and --role")
			}
			if role != "" && role != protocol.RoleDirectory {
				return usagef("--role %q: only %q is looked up", role, protocol.RoleDirectory)
			}
			if limit < 0 || limit > dht.MaxProviders {
				return usagef("--limit %d: want 0 to %d", limit, dht.MaxProviders)
			}
			return g.withBackend(c, func(d api.API) error {
				ctx, cancel := context.WithTimeout(c.Context(), timeout)
				defer cancel()
				var nodes []api.NodeInfo
				var err error
				if topic != "" {
					nodes, err = d.TopicNodes(ctx, topic, limit)
				} else {
					nodes, err = d.Directories(ctx, limit)
				}
				if err != nil {
					return dhtErr(err)
				}
				if nodes == nil {
					nodes = []api.NodeInfo{}
				}
				if g.json {
					return g.printJSON(nodes)
				}
				what := "topic " + topic
				if role != "" {
					what = "role " + role
				}
				if len(nodes) == 0 {
					g.printf("no nodes found for %s\n", what)
					return nil
				}
				g.printf("%s for %s:\n", plural(len(nodes), "node", "nodes"), what)
				for _, n := range nodes {
					printNodeInfo(g, n)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&topic, "topic", "", "MESH topic, e.g. rust")
	c.Flags().StringVar(&role, "role", "", "node role: directory")
	c.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many nodes (default %d)", dht.DefaultMaxProviders))
	c.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	return c
}

func printNodeInfo(g *globals, n api.NodeInfo) {
	g.printf("%s\n", n.NodeID)
	if n.Record == nil {
		g.printf("  (no node record in the DHT)\n")
	} else {
		g.printf("  record: signed, issued %s, expires %s\n",
			time.UnixMilli(n.Record.IssuedAt).UTC().Format(time.RFC3339), time.UnixMilli(n.Record.ExpiresAt).UTC().Format(time.RFC3339))
	}
	if len(n.Topics) > 0 {
		g.printf("  topics: %s\n", strings.Join(n.Topics, ", "))
	}
	if len(n.Roles) > 0 {
		g.printf("  roles:  %s\n", strings.Join(n.Roles, ", "))
	}
	for _, a := range n.Addrs {
		g.printf("  addr:   %s\n", a)
	}
}

func directoryNodeCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "node NODEID",
		Short: "Show a node's signed record from the DHT, verified",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.lookupNode(c, a[0], timeout, func(ctx context.Context, d api.API) error {
				rec, err := d.NodeRecord(ctx, a[0])
				if err != nil {
					return dhtErr(err)
				}
				// Verified here too: the daemon is asked to look, not trusted.
				if err := protocol.VerifyNodeRecord(rec, protocol.VerifyOptions{}); err != nil {
					return fmt.Errorf("the record of %s does not verify: %w", a[0], err)
				}
				if g.json {
					return g.printJSON(rec)
				}
				printNodeInfo(g, api.NodeInfo{NodeID: rec.NodeID, Addrs: rec.Addrs, Topics: rec.Topics, Roles: rec.Roles, Record: rec})
				return nil
			})
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	return c
}

func directoryDHTCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "dht",
		Short: "Show the DHT: mode, routing table, the node record published",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(d api.API) error {
				st, err := d.DHTStatus(c.Context())
				if err != nil {
					return dhtErr(err)
				}
				if g.json {
					return g.printJSON(st)
				}
				if !st.Enabled {
					if st.Mode == "offline" {
						g.printf("DHT: no daemon runs (start `mesh daemon`)\n")
					} else {
						g.printf("DHT: off\n")
					}
					return nil
				}
				serving := "client"
				if st.Serving {
					serving = "server"
				}
				g.printf("DHT %s: mode %s, now a %s\nrouting table: %s\n", st.Protocol, st.Mode, serving, plural(st.RoutingTable, "peer", "peers"))
				if st.Record != nil {
					g.printf("node record: published %s, expires %s\n",
						time.UnixMilli(st.PublishedAt).UTC().Format(time.RFC3339), time.UnixMilli(st.Record.ExpiresAt).UTC().Format(time.RFC3339))
				} else {
					g.printf("node record: not published yet (no DHT peers?)\n")
				}
				if len(st.Provided) > 0 {
					g.printf("provides: %s\n", strings.Join(st.Provided, ", "))
				}
				if st.LastError != "" {
					g.printf("last error: %s\n", st.LastError)
				}
				return nil
			})
		},
	}
}

func directoryFindCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "find NODEID",
		Short: "Resolve a node's addresses through the DHT",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.lookupNode(c, a[0], timeout, func(ctx context.Context, d api.API) error {
				info, err := d.FindNode(ctx, a[0])
				if err != nil {
					return dhtErr(err)
				}
				if g.json {
					return g.printJSON(info)
				}
				for _, addr := range info.Addrs {
					g.printf("%s\n", addr)
				}
				return nil
			})
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	return c
}
