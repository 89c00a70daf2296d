// Package pubsub carries MESH publications and revocations over GossipSub
// v1.1 with peer scoring: it owns the topics, the message validator and the
// scoring parameters. It decides nothing about trust on its own: the node
// answers its questions through a [Checker].
//
// # Topics
//
// Every message is a [protocol.Announcement] (a signed lesson, an encrypted
// one, validated alike without its key, or a revocation) on a topic under
// protocol.TopicRoot:
//
//	/mesh/1/topic/<name>    protocol.TopicName: one per MESH topic, lower case
//	/mesh/1/feed/<nodeId>   protocol.FeedName: everything one publisher announces
//
// A node follows the topics it chooses ([Service.Follow]) and the feeds of
// the publishers it trusts ([Service.FollowFeed]). [Service.Announce] puts a
// publication on its publisher's feed and on the lesson's topics; topics it
// publishes on without following are joined, not subscribed to. Message IDs
// are a hash of topic and content, so the same announcement forwarded (or
// re-announced) by several peers is one message.
//
// # Validation
//
// One validator runs on every topic, asynchronously, under
// Params.ValidatorTimeout and Params.ValidatorConcurrency. It checks, in
// order: size cap, decoding, signature, nodeId/publicKey agreement, the
// timestamp window (±Params.Window; signature.timestamp of a lesson,
// revokedAt of a revocation), what the message claims about itself (a
// lesson must be public, a feed carries only its owner's announcements, a
// lesson travels only on the topics it was published on), then the
// Checker: tombstone, held version, trust. A message that fails one of the
// first checks is rejected (ValidationReject: the sender's score pays,
// since no honest node forwards it); a valid message the node does not want
// (a replay of a revoked lesson, a version already held or superseded, a
// revocation already applied, an untrusted publisher) is ignored
// (ValidationIgnore: dropped, not forwarded, nobody penalised, since an
// honest forwarder may not know what this node knows). Every outcome is
// counted by reason in [Service.Stats] and, given a Registerer, in
// Prometheus.
//
// # Parameters
//
// [DefaultParams] documents each value. In short: libp2p's mesh degree
// with a lower Dlo for sparse home networks, longer gossip history for a
// low-traffic network, flood publishing, no peer exchange, the
// mesh-delivery penalties (P3, P3b) off because MESH topics are quiet for
// hours, and a steep invalid-message penalty (P4) that graylists a peer
// after five invalid messages on a topic.
//
// # Limits
//
// A node that already holds a lesson (from sync, say) ignores it on gossip
// and so does not forward it; its neighbours catch up by their own sync.
// A message received before the topic's mesh forms (the first heartbeat
// after subscribing) is delivered but not forwarded. A node restarted within
// the gossip history (10 s) may be offered its own message back, which the
// router counts against the honest peer that offered it. Validation runs
// before the trust check, so a flood of validly signed messages from
// untrusted keys costs the neighbours of the flooders signature checks
// (about 70 µs for a typical lesson, 0.7 ms near the size cap, one core),
// though nothing is forwarded.
package pubsub
