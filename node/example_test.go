package node_test

import (
	"context"
	"fmt"
	"log"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// An agent embeds a node, stores a lesson, finds it again, and publishes
// it as a signed lesson that anyone can verify. The node here is ephemeral
// (a fresh key, an in-memory store) and listens nowhere.
func Example() {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{ListenAddrs: []string{}, DisableMDNS: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	id, _, err := n.Put(ctx, &protocol.Lesson{
		Type:    protocol.TypeLesson,
		Title:   "Cargo parallel builds crash small servers",
		Content: "Never run several cargo builds in parallel on a 2 GB VPS: the linker runs out of memory.",
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := n.Search(ctx, store.Query{Text: "cargo build memory"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found:", len(res.Hits) == 1 && res.Hits[0].ID == id)

	sl, err := n.Publish(ctx, id, api.PublishOptions{Visibility: protocol.VisibilityUnlisted})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed by this node:", sl.Signature.NodeID == n.ID().String())
	fmt.Println("verifies:", protocol.Verify(sl, protocol.VerifyOptions{}) == nil)
	// Output:
	// found: true
	// signed by this node: true
	// verifies: true
}
