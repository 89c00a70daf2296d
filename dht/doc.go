// Package dht is MESH's federated directory: a Kademlia DHT
// (go-libp2p-kad-dht) under MESH's own protocol prefix, so MESH nodes form
// their own network (/mesh/kad/1.0.0) and never join the IPFS one.
//
// It holds three things:
//
//   - signed node records (protocol.NodeRecord) under the /mesh-node
//     namespace, checked by NodeRecordValidator: a record must be signed by
//     the node its key names, must not have expired, and the newest issuedAt
//     wins, so a forged or replayed record never replaces a valid one;
//   - provider records for MESH topics (TopicKey) and roles such as
//     "directory" (RoleKey);
//   - peer routing: FindPeer resolves a node ID to addresses, through the
//     Kademlia lookup and then the node's signed record.
//
// The IPFS /pk and /ipns validators are off, and there are no default
// bootstrap peers: the network is the one the configured bootstrap peers
// form. A node serves the DHT when publicly reachable (ModeAuto) or always
// (ModeServer, for bootstrap nodes and for LAN, loopback and mocknet
// networks where AutoNAT never reports public reachability).
//
// docs/dht.md describes the record format and wire protocol.
package dht
