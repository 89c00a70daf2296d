// Command embed shows an agent embedding a MESH node: it stores a lesson,
// finds it again by full-text search, publishes it as a signed lesson, and
// prints the SignedLesson that anyone can verify.
//
//	go run ./examples/embed            # ephemeral: in-memory store, fresh key
//	go run ./examples/embed -repo DIR  # persistent repo (key, pebble, index)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

func main() {
	repo := flag.String("repo", "", "repo directory (default: ephemeral, in memory)")
	flag.Parse()
	if err := run(context.Background(), *repo); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, repo string) error {
	n, err := node.New(ctx, node.Config{
		RepoDir:     repo,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		DisableMDNS: true, // this example stays on loopback
	})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintln(os.Stderr, "node", n.ID())

	id, _, err := n.Put(ctx, &protocol.Lesson{
		Type:     protocol.TypeLesson,
		Title:    "Cargo parallel builds crash small servers",
		Content:  "Never run several cargo builds in parallel on a 2 GB VPS: the linker runs out of memory. Use -j1 or a build queue.",
		Tags:     []string{"rust", "cargo", "build"},
		Severity: "warning",
	})
	if err != nil {
		return err
	}

	res, err := n.Search(ctx, store.Query{Text: "cargo parallel build crashes", Limit: 5})
	if err != nil {
		return err
	}
	if len(res.Hits) == 0 || res.Hits[0].ID != id {
		return fmt.Errorf("search did not find %s", id)
	}
	fmt.Fprintf(os.Stderr, "found %s (score %.2f)\n", id, res.Hits[0].Score)

	sl, err := n.Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityPublic, Topics: []string{"rust"}})
	if err != nil {
		return err
	}
	if err := protocol.Verify(sl, protocol.VerifyOptions{}); err != nil {
		return fmt.Errorf("own signature does not verify: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sl)
}
