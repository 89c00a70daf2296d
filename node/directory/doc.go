// Package directory is a node's side of MESH's directories.
//
// As a directory (Config.Enabled), a node takes registrations over
// /mesh/directory/1.0.0 (bounded in number, rate-limited per peer,
// expiring unless renewed), follows each registrant's feed and syncs its
// public lessons, and serves every verified public lesson it holds.
//
// Any node may serve the public, read-only HTTP API (Config.PublicAPI):
// search, a lesson by key (410 with the revocation when revoked), nodes
// by topic, health, policy and identity. Every body, errors included, is
// signed by the node; it serves public lessons only, and an unlisted one
// only by its exact key; a private record never leaves the node. Each
// client address (an IPv6 client by its /64) has a token bucket, and
// queries are never logged. See docs/directory.md and docs/openapi.yaml.
//
// Every node keeps a list of directories it registers with, and searches
// several of them from the client side ([Service.Search]): every answer's
// signature and every lesson in it is verified, what fails is dropped
// with a warning, and the rest is merged, de-duplicated, merged with a
// federated search of the trusted peers if asked, and ranked here.
//
// The service depends on small interfaces it declares ([Meta], [Feeds],
// [Local], [Trust], [Lookup]) and functions in [Deps], never on the node.
package directory
