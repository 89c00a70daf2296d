package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

func revokeCmd(g *globals) *cobra.Command {
	var reason string
	var hard bool
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Take a publication back, everywhere (--hard: delete the key of an encrypted one)",
		Long: `Sign a revocation of a published record and announce it: every node that holds the
lesson deletes it and refuses it from then on, including nodes that were offline (they
get the revocation when they sync). The record stays on this node, private.

That is best effort: a node that does not comply keeps its copy. With --hard, for a
lesson published with --encrypt, the key is deleted first and marked revoked for good
(KEY_REVOKED, across restarts), the revocation is announced and pushed to every reader
given the key and every escrow node: every copy of the ciphertext, compliant or not,
becomes unreadable. What a reader already decrypted and saved is out of reach.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			switch reason {
			case "", protocol.ReasonOutdated, protocol.ReasonIncorrect, protocol.ReasonPrivate, protocol.ReasonOther:
			default:
				return usagef("--reason %q: want outdated, incorrect, private or other", reason)
			}
			if hard {
				return show(g, c, func(b api.API) (*api.HardRevokeResult, error) { return b.RevokeHard(c.Context(), a[0], reason) }, func(r *api.HardRevokeResult) {
					g.printf("revoked %s for good: key %s deleted (KEY_REVOKED from now on)\n", r.Revocation.Key(), strings.Join(r.KeyIDs, ", "))
					printNotices(g, r.Notices)
				})
			}
			return show(g, c, func(b api.API) (*protocol.Revocation, error) { return b.Revoke(c.Context(), a[0], reason) }, func(rev *protocol.Revocation) {
				g.printf("revoked %s\n", rev.Key())
			})
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "outdated, incorrect, private or other")
	c.Flags().BoolVar(&hard, "hard", false, "for a lesson published encrypted: delete its key, so that every copy becomes unreadable")
	return c
}

func followCmd(g *globals, add bool) *cobra.Command {
	use, short := "follow TOPIC|NODEID", "Follow a topic or a publisher's feed (persists)"
	if !add {
		use, short = "unfollow TOPIC|NODEID", "Stop following a topic or feed"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				var err error
				if add {
					err = b.Follow(c.Context(), a[0])
				} else {
					err = b.Unfollow(c.Context(), a[0])
				}
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(map[string]any{"success": true})
				}
				if add {
					g.printf("following %s\n", a[0])
				} else {
					g.printf("no longer following %s\n", a[0])
				}
				return nil
			})
		},
	}
}

func followingCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "following",
		Short: "List followed topics and feeds",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(b api.API) error {
				topics, feeds, err := b.Following(c.Context())
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(api.FollowingResponse{Topics: orEmpty(topics), Feeds: orEmpty(feeds)})
				}
				for _, t := range topics {
					g.printf("topic %s\n", t)
				}
				for _, f := range feeds {
					g.printf("feed  %s\n", f)
				}
				if len(topics)+len(feeds) == 0 {
					g.printf("following nothing: mesh follow TOPIC|NODEID\n")
				}
				return nil
			})
		},
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func connectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "connect MULTIADDR",
		Short: "Connect to a peer (/ip4/.../tcp/4001/p2p/12D3KooW...) and stay connected",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			return g.withBackend(c, func(b api.API) error {
				p, err := b.Connect(c.Context(), a[0])
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(map[string]any{"success": true, "peer": p.String()})
				}
				g.printf("connected to %s\n", p)
				return nil
			})
		},
	}
}

func peersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List connected peers",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(b api.API) error {
				ps, err := b.Peers(c.Context())
				if err != nil {
					return err
				}
				if g.json {
					if ps == nil {
						ps = []api.PeerInfo{}
					}
					return g.printJSON(ps)
				}
				for _, p := range ps {
					mesh := ""
					if len(p.Mesh) > 0 {
						mesh = "  mesh: " + strings.Join(p.Mesh, ",")
					}
					g.printf("%s  %-8s %-7s %s%s\n", p.ID, p.Direction, peerHow(p), strings.Join(p.Addrs, " "), mesh)
				}
				g.printf("%s\n", plural(len(ps), "peer", "peers"))
				return nil
			})
		},
	}
}

// syncSummary is the last line of mesh sync --json.
type syncSummary struct {
	Summary     bool       `json:"summary"` // true: this is the last line
	Peers       int        `json:"peers"`
	Lessons     int        `json:"lessons"`
	Revocations int        `json:"revocations"`
	Invalid     int        `json:"invalid"`
	Untrusted   int        `json:"untrusted"`
	Error       *errorBody `json:"error,omitempty"`
}

func syncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "Catch up now with every connected peer, showing progress",
		Long: `Catch up now with every connected peer, showing progress.

With --json, one object per line: a progress object per page and per peer
done, then a summary ({"summary":true,...}), which carries the error if the
sync failed.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return g.withBackend(c, func(b api.API) error {
				total := syncSummary{Summary: true}
				err := b.Sync(c.Context(), func(p api.SyncProgress) {
					if p.Done {
						total.Peers++
						total.Lessons += p.Lessons
						total.Revocations += p.Revocations
						total.Invalid += p.Invalid
						total.Untrusted += p.Untrusted
					}
					if g.json {
						_ = g.printLine(p)
						return
					}
					state := "syncing"
					if p.Done {
						state = "done"
					}
					g.printf("%s %s: page %d, %d received, %s and %s stored, %d invalid",
						state, shortID(p.Peer), p.Pages, p.Received, plural(p.Lessons, "lesson", "lessons"), plural(p.Revocations, "revocation", "revocations"), p.Invalid)
					if p.Untrusted > 0 {
						g.printf(", %d from untrusted publishers (mesh trust pending)", p.Untrusted)
					}
					g.printf("\n")
				})
				if err == nil && total.Invalid > 0 {
					err = fmt.Errorf("%d records received were invalid and skipped (bad signature, or a record that does not decode, such as one nested over %d levels); the rest was stored", total.Invalid, protocol.MaxRecordDepth)
				}
				if g.json {
					if err != nil {
						e := errorJSON(err, false).Error
						total.Error = &e
					}
					if perr := g.printLine(total); perr != nil {
						return perr
					}
					return err
				}
				if err != nil {
					return err
				}
				g.printf("sync finished: %s, %s, %s, %d invalid\n", plural(total.Peers, "peer", "peers"),
					plural(total.Lessons, "lesson", "lessons"), plural(total.Revocations, "revocation", "revocations"), total.Invalid)
				return nil
			})
		},
	}
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return fmt.Sprint(id)
}
