// Package node is the embeddable MESH node: the composition root that
// wires an identity, a store, the web of trust and GossipSub to a libp2p
// host, and starts the subsystems around them.
//
// # Embedding
//
// An agent embeds a node the way it would a tsnet.Server: a [Config] whose
// zero value is useful, [New], the methods it needs, [Node.Close].
//
//	n, err := node.New(ctx, node.Config{RepoDir: dir, Topics: []string{"rust"}})
//	if err != nil { ... }
//	defer n.Close()
//	id, _, _ := n.Put(ctx, &protocol.Lesson{Type: "lesson", Title: ..., Content: ...})
//	n.Publish(ctx, id, api.PublishOptions{Visibility: "public", Topics: []string{"rust"}})
//	res, _ := n.SearchNetwork(ctx, api.FedSearchRequest{Query: "cargo build"})
//
// With an empty RepoDir the node is ephemeral: a fresh key and an in-memory
// store. With one, it keeps its Ed25519 key there (mode 0600; a key others
// can read is refused), its pebble datastore and its bleve index, and
// locks the repo against a second process. The node ID is the libp2p peer
// ID of the key.
//
// *Node implements [api.API], as does httpapi.Client over a running
// daemon's control API, with the same results and errors: code written
// against api.API drives either.
//
// # A tour
//
// Inside this package:
//
//   - node.go: Config, New, Close; the host (or a given one, such as a
//     mocknet host), and the order things start and stop in.
//   - identity.go: the key in the repo.
//   - api.go: the api.API methods: the AMP operations on the store,
//     publish and export, and the calls that go to a subsystem.
//   - federation.go: GossipSub (package pubsub) with a checker that asks
//     the store and the trust graph; follow, announce, revoke, and the
//     loop that stores what gossip delivers.
//   - sync.go, fetch.go: /mesh/sync/1.0.0 (paged catch-up, on every new
//     connection) and /mesh/fetch/1.0.0 (one lesson by key).
//   - serving.go: the one serving policy: what this node hands out to
//     others and for how long.
//   - trust.go, trustapi.go: the vouch protocol (/mesh/trust/1.0.0), the
//     connection gater that refuses blocked nodes, and verification by key.
//   - peers.go: the peers kept connected (bootstrap, relays, mesh connect)
//     with backoff, mDNS, and the list of peers.
//   - encrypted.go: the api.Keys methods (publish encrypted, read, hard
//     revoke, key policies and rotation) over the keys subsystem, and the
//     re-learning of revocations from peers the key server waits for.
//   - sensorsapi.go, gateway.go, metrics.go, connlimits.go, pending.go:
//     the wiring of the sensors, lora, metrics, connlimit and pending
//     packages, and the node's side of their interfaces.
//
// The subsystems, each in its own package behind small interfaces it
// declares (the node satisfies them; none reaches into another's state):
//
//   - fedsearch: /mesh/search/1.0.0 and the ranked, verified search of the
//     trusted network.
//   - discovery: the DHT (node records, topic and role providers, peer
//     routing).
//   - reach: AutoNAT, relays, hole punching, port mapping.
//   - directory: registrations, the signed public HTTP API, and the search
//     of several directories.
//   - keys: lesson keys and policies of encrypted lessons, the key server,
//     escrow, readers' in-memory keys, hard revoke and rotation.
//   - sensors: streams, readings, grants, names and questions to sources;
//     lora: the Meshtastic gateway that carries sensors' signed compact
//     readings into MESH.
//   - connlimit: per-address connection limits and the allowlist of the
//     peers the node relies on; pending: the record of publishers refused
//     for trust; metrics: the node's Prometheus metrics; watch: standing
//     queries; webui: the browser UI.
//   - httpapi: the loopback AMP REST and control API, and its Client.
//   - mcpserver: the MCP tools over api.API.
//   - api: the API and its wire types; nodetest: real nodes for tests.
//
// See docs/architecture.md for who calls whom and one request traced end
// to end.
package node
