// Package keys is MESH's key subsystem: lesson keys of encrypted
// publications, their policies, the key server, escrow, readers, hard
// revocation and rotation (the seed's "Cryptographic Revocation").
//
// # Author
//
// [Service.Encrypt] makes a random 256-bit key per publication, signs its
// [protocol.KeyPolicy] (public, trusted with an optional minimum trust
// score, or explicit), keeps both in the node's store before anything is
// published, and returns the lesson encrypted (AES-256-GCM) and signed.
// With escrow, the key is split k-of-n (Shamir, CIRCL) and each share is
// sealed to one escrow node, which must be trusted fully; the signed policy
// carries the sealed shares to them over /mesh/keynotice/1.0.0
// ([Service.Deposit]). [Service.RevokeLesson] deletes every key of a
// lesson and marks it revoked in one durable commit (KEY_REVOKED forever,
// across restarts and kill -9), then pushes the revocation to every reader
// the author gave the key to and every escrow node. [Service.Rotate] makes
// a new key for a new publication and retires the old one the same way.
// Notices that are not acknowledged are kept and sent again when the node
// is next seen ([Service.PeerSeen]).
//
// # Key server
//
// /mesh/keys/1.0.0 answers a KeyRequest from the peer of the secure
// channel: the key (or, on an escrow node, its share) with the policy and
// an expiresAt, KEY_REVOKED (with the author's revocation), ACCESS_DENIED
// saying why, or NOT_FOUND. [Service.ServeKeyHTTP] answers the seed's
// GET /mesh/v1/keys/{keyId} the same way for a signed request, with the
// key sealed (HPKE) to the requester; the public HTTP API (package
// directory) mounts it and signs the answer. After a start, the author and
// escrow nodes re-learn the revocations peers hold of their lessons
// before they serve anything ([Service.Relearned]): a node restored from an
// old backup does not hand out a key it revoked since.
//
// # Escrow node
//
// An escrow node takes a share only from its author, and only from an
// author it has a trust path to; it follows the author's feed, so that it
// hears the author's revocations even while the author is offline. It
// serves its share to the requesters the policy admits (trusted access is
// judged by the author's vouches it holds), never for a revoked key, and
// deletes the share when a revocation or a rotation reaches it, by notice,
// gossip or sync ([Service.OnRevocation], [Service.OnPolicy]).
//
// # Reader
//
// [Service.Read] verifies an EncryptedLesson and decrypts it with its key:
// from memory if it is still valid, else from the author, else from k of
// the escrow nodes (learned from a policy the author sent earlier, or by
// asking the connected peers). The key and the plaintext are kept in
// memory only, until the answer's expiresAt, and dropped at once when a
// revocation or a rotation of the lesson reaches the node. What a reader
// already decrypted and saved elsewhere is out of reach: no protocol can
// take that back.
//
// The service depends on small interfaces it declares ([Store], [Trust])
// and functions in [Deps]; keys and plaintext are never logged.
package keys
