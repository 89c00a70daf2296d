// Package httpapi is a MESH node's HTTP API on loopback and its client.
//
// [Handler] serves, over a [Backend] (the node's api.API and its identity
// document):
//
//   - the AMP REST binding (POST /amp/store, POST /amp/search,
//     GET/DELETE /amp/records/{id}, GET /amp/records, GET /amp/status,
//     GET /amp/agents/{agent}/status, POST /amp), unauthenticated so that
//     existing AMP clients work unchanged;
//   - GET /.well-known/mesh/identity, the self-signed identity document;
//   - the control API under /api/v1/, protected by the bearer token in
//     the repo's api.token file (mode 0600): one route per method of
//     api.API.
//
// Every route refuses non-loopback Host headers (DNS rebinding) and
// browser cross-origin requests, and caps request bodies. Errors carry the
// wire code of protocol's error table and its HTTP status, and a reason
// for the errors the API documents beyond a code ([ErrorBody]).
//
// [Client] implements api.API over the control API with the same results
// and errors as the node itself (contract_test.go runs one table of
// operations against both); [DialRepo] finds the daemon of a repo.
// [Start] runs the server a daemon uses.
package httpapi
