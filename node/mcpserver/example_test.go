package mcpserver_test

import (
	"context"
	"fmt"
	"log"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/mcpserver"
)

// An agent's MCP client on a node (here in-process, over the SDK's
// in-memory transport; mesh mcp serves the same tools on stdio): it adds a
// standing query, stores a lesson, and polls the match.
func Example() {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{ListenAddrs: []string{}, DisableMDNS: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := mcpserver.New(n, node.Version, nil).Connect(ctx, st, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ss.Wait()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()

	call := func(tool string, args map[string]any) map[string]any {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			log.Fatal(tool, err, res)
		}
		return res.StructuredContent.(map[string]any)
	}
	call(mcpserver.ToolWatchAdd, map[string]any{"query": "linker memory"})
	call(mcpserver.ToolStore, map[string]any{"record": map[string]any{
		"type": "lesson", "title": "Cargo builds exhaust memory", "content": "The linker runs out of memory on a 2 GB VPS."}})
	poll := call(mcpserver.ToolWatchPoll, map[string]any{"wait_ms": 10000})
	for _, m := range poll["matches"].([]any) {
		m := m.(map[string]any)
		fmt.Println(m["origin"], m["lesson"].(map[string]any)["title"])
	}
	// Output:
	// local Cargo builds exhaust memory
}
