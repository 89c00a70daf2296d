// Package api holds what a controller can ask of a MESH node and the wire
// types of the answers: the [API] interface, which *node.Node implements
// in-process and *httpapi.Client over the loopback control API, and the
// JSON shapes of the AMP REST binding and of the control API.
//
// It is a leaf: it imports the record packages (protocol, store, trust)
// and nothing of the node, so the node, its HTTP API, its MCP server and
// the CLI can all share it without import cycles.
//
// Errors cross the API as wire codes (see protocol's error table): an
// implementation returns errors that wrap protocol's sentinels, and the
// client turns codes back into errors that match them with errors.Is.
// The errors of this package wrap protocol sentinels too.
package api
