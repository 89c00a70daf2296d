// Package mcpserver serves a MESH node to agents over the Model Context
// Protocol: AMP's MCP binding (amp_store, amp_search, amp_get, amp_delete,
// amp_list, amp_status, amp_agent_status) and MESH's own tools
// (mesh_publish, mesh_export), each a call of [api.API] with the same JSON
// shapes as the REST binding. The server depends on api.API only, so it
// drives a node in-process (*node.Node) or a running daemon
// (*httpapi.Client) alike; `mesh mcp` serves it on stdio.
package mcpserver
