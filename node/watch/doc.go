// Package watch runs a node's standing queries (mesh watch): searches kept
// in the repo that every lesson the node stores or receives is matched
// against as it arrives.
//
// A [Service] follows the store's sync log, which holds every public lesson
// the node took in (by gossip, sync, fetch or a directory's ingest) and its
// own publications, in the order it got them; it wakes when the store says
// it took in something ([Store.Updated]) or when the node tells it of a
// write of its own ([Service.Kick], [Service.Stored]). Each new lesson is
// matched against every standing query added before it was logged, with
// the same analysis the index uses ([store.Scorer]), so a watch matches
// exactly what a search of its text would find. With no standing query
// the service skips the log unread. Matches are numbered and kept in
// memory, the last api.MaxWatchBacklog of them, for pollers and streams
// (server-sent events on the loopback API, mesh watch, the web UI, MCP's
// polling tool).
//
// The service depends on the small [Store] interface and the functions in
// [Deps], never on the node.
package watch
