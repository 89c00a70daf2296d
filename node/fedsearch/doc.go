// Package fedsearch is MESH's federated search: the server of
// /mesh/search/1.1.0 and /mesh/search/1.0.0, and the requester that asks
// the trusted network.
//
// A node serving a search answers from its store with public lessons only
// ([Local]), and while the request's ttl is above 1 forwards it, with
// ttl-1 and a smaller budget, to its trusted peers other than the sender
// and the origin. It waits for them no longer than its own budget: what
// arrived in time is merged into the answer. Over 1.1.0, when the asker
// reads late answers (lateMs), the answer then says more follows, and
// what the late peers answer is passed on in further frames as it comes,
// until lateMs; over 1.0.0 the answer is marked truncated if anything was
// missing. A request ID seen recently is answered empty and
// not forwarded, so diamonds and loops in the peer graph cost one answer
// each. Each peer may send 10 searches a second (20 at once), and at most
// 64 are served at once. Queries are never logged.
//
// The requester ([Service.Search]) drops revoked and untrusted results,
// and ranks the union by relevance × trust × freshness, with BM25 computed
// here under the corpus statistics every answer carries, added up: scores
// from different indexes do not compare. It scores each result from its
// text, read in place, and decodes and verifies in full only the lessons
// it returns and the copies ranked ahead of them: a forged or malformed
// copy is dropped and the next one taken. It reads late answers until its
// own deadline, less the time to rank. A peer that does not answer costs
// at most the search's deadline.
//
// The service depends on two small interfaces it declares, [Local] (the
// node's store as served) and [TrustView] (the web of trust), and on the
// libp2p host.
package fedsearch
