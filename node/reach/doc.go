// Package reach makes a node reachable from behind NAT: AutoNAT v1 and v2,
// circuit relay v2 (client with auto-relay, and an optional relay service
// with resource limits and a trust-aware ACL), DCUtR hole punching with
// upgrade retries, UPnP/NAT-PMP port mapping, and announced addresses (a
// tunnel's wss address, say).
//
// A [Service] is made before the host ([New]), gives the host its libp2p
// [Service.Options], and runs once the host is up ([Service.Start]). It
// reports the node's view of its own reachability ([Service.Status]): public,
// private or unknown, the relays holding a slot for it, hole punches, and
// its peers by kind of connection. It depends on a few functions and a
// small [Trust] interface given in [Deps], never on the node itself.
//
// See docs/nat.md for the operator's view.
package reach
