// Package trust owns a node's web of trust: its direct edges to other nodes,
// the signed vouches its fully trusted peers share, and the referrals it has
// been sent, all persisted in a datastore.
//
// A direct edge has one of three levels. LevelFull nodes are searched, synced
// from and re-announced; LevelLimited nodes are searched only; LevelNone
// blocks a node everywhere, whoever vouches for it.
//
// Trust is transitive through [protocol.Vouch] records: a node signs the list
// of nodes it trusts fully and hands it to the peers that trust it fully. A
// [Graph] follows the cached, unexpired vouches of the nodes it trusts fully,
// directly or transitively, up to Config.MaxDepth hops (default 2), and
// answers [Graph.Path] with the shortest path and a score of 1.0 at one hop,
// halved per further hop, never below 0.125. Every change (an edge set or
// removed, a vouch added or expired) recomputes the paths at once: removing
// an edge removes the paths through it before Remove returns.
//
// [protocol.Referral] records ("you may want to trust X") are kept and listed
// for the operator; they never change the graph.
//
// The package verifies nothing on the wire: callers verify vouches and
// referrals with protocol.VerifyVouch and protocol.VerifyReferral before
// adding them. It starts no goroutines.
package trust
