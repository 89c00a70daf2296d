// Package discovery is a node's part of MESH's federated directory: the
// Kademlia DHT under MESH's own protocol prefix (/mesh/kad/1.0.0, never the
// IPFS network), signed node records, provider records for the followed
// topics and for roles (directory, relay), and peer routing, so that a
// bare node ID can be dialled.
//
// A [Service] publishes the node's record and provides its topics and roles
// on a heartbeat (every 20 minutes, and within seconds of a change to its
// topics, roles or addresses), looks up the providers of each followed
// topic and connects to them (a new connection syncs), and answers the
// lookups a controller asks for: topic providers, directories, node
// records, addresses. It depends on functions given in [Deps] and never on
// the node itself. The record format is in docs/dht.md.
package discovery
