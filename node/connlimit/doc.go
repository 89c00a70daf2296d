// Package connlimit holds a node's connection limits: libp2p's resource
// manager with a limit per IP address and subnet (loopback included), an
// allowlist reserved for the peers the node relies on, and a connection
// manager that protects those peers and trims the rest. A flood of fresh
// identities from one address can then neither exhaust the node's
// connections nor keep its trusted, bootstrap and relay peers out.
package connlimit
