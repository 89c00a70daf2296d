package main

import "github.com/spf13/cobra"

// directorySubcommands are the subcommands of `mesh directory`, added by the
// files that implement them (DHT lookups, directory registration).
var directorySubcommands []func(g *globals) *cobra.Command

func directoryCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "directory",
		Short: "Find nodes by topic and manage the directories this node registers with",
	}
	for _, sub := range directorySubcommands {
		c.AddCommand(sub(g))
	}
	return c
}
