package main

import "github.com/spf13/cobra"

func directoryCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "directory",
		Short: "Find nodes by topic and manage the directories this node registers with",
	}
	c.AddCommand(
		// DHT lookups (dht.go).
		directoryNodesCmd(g), directoryNodeCmd(g), directoryFindCmd(g), directoryDHTCmd(g),
		// The directories this node registers with (directoryrole.go).
		directoryAddCmd(g), directoryListCmd(g), directoryRemoveCmd(g), directorySearchCmd(g),
	)
	return c
}
