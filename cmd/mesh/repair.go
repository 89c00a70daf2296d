package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/internal/repolock"
	"github.com/meshprotocol/mesh/store"
)

func repairCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Salvage a damaged datastore (the daemon must be stopped)",
		Long: `Salvage the repo's datastore after start-up reported it damaged: keep an untouched
copy of it (REPO/datastore.damaged-TIME), copy every record that can still be read into
a new datastore, skipping damaged blocks, say what could not be read, and remove the
search index (the next start rebuilds it). mesh status then shows the repair as the
last recovery. If what was lost matters, restore the repo from a backup instead.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			lock, err := repolock.Acquire(g.repo)
			if err != nil {
				return err // the daemon runs: stop it first
			}
			defer lock.Release()
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			rep, err := store.Repair(g.repo, log)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			g.printf("copied %s into a new datastore; the damaged one is kept in %s\n", plural(rep.Copied, "key", "keys"), rep.Backup)
			if len(rep.Lost) == 0 {
				g.printf("nothing was lost\n")
			}
			for _, l := range rep.Lost {
				g.printf("lost: %s\n", l)
			}
			g.printf("the search index is rebuilt at the next start\n")
			return nil
		},
	}
}
