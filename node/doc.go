// Package node is the embeddable MESH node: an Ed25519 identity kept in a
// repo directory, a libp2p host whose peer ID is that identity (TCP and
// QUIC), the AMP store, and the HTTP APIs around them.
//
// A Node is configured with a [Config] whose zero value is useful: it runs an
// ephemeral node with a fresh key and an in-memory store. With RepoDir set,
// the node keeps its key (mode 0600; it refuses a key others can read), its
// datastore and its index there, and locks the repo so that a second process
// gets "repo locked by pid N".
//
// With APIAddr set, the node serves over HTTP on loopback:
//
//   - the AMP REST binding (POST /amp/store, POST /amp/search,
//     GET/DELETE /amp/records/{id}, GET /amp/records, GET /amp/status,
//     GET /amp/agents/{agent}/status), unauthenticated so existing AMP clients
//     work unchanged;
//   - GET /.well-known/mesh/identity, the self-signed identity document;
//   - the control API under /api/v1/, protected by the bearer token in the
//     repo's api.token file (mode 0600), used by the mesh CLI through [Client].
//
// Every route refuses non-loopback Host headers (DNS rebinding) and browser
// cross-origin requests, and caps request bodies.
package node
