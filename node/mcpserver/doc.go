// Package mcpserver serves a MESH node to agents over the Model Context
// Protocol, so that an agent needs nothing else: AMP's MCP binding
// (amp_store, amp_search, amp_get, amp_delete, amp_list, amp_status,
// amp_agent_status) with the same JSON shapes as the REST binding;
// publication and encrypted lessons (mesh_publish, mesh_export,
// mesh_publish_encrypted, mesh_read, mesh_revoke_hard, mesh_keys_*); and
// the network (mesh_network_search of the trusted peers, named sources
// and topics, mesh_directory_search and the directory list, mesh_verify of
// a key or a document, mesh_revoke, mesh_follow/unfollow/following,
// mesh_trust_list/add/remove/path, mesh_node, mesh_peers, mesh_connect,
// mesh_sync, and standing queries with mesh_watch_add/list/remove and the
// long-polling mesh_watch_poll). docs/mcp.md lists them all with their
// schemas and examples.
//
// Each tool is a call of [api.API], so the server drives a node
// in-process (*node.Node) or a running daemon (*httpapi.Client) alike;
// `mesh mcp` serves it on stdio.
package mcpserver
