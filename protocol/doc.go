// Package protocol holds MESH's wire types and the pure functions around them:
// the AMP memory record ([Lesson]), the signed publication ([SignedLesson]),
// revocations, the node identity document, error codes, size limits, protocol
// IDs and topic names, RFC 8785 canonical JSON, and Ed25519 signing and
// verification.
//
// It does no I/O and knows nothing about hosts or stores; every other package
// builds on it.
//
// # Signatures
//
// A SignedLesson's signature covers the RFC 8785 canonical JSON of
//
//	{"lesson": <lesson>, "publication": <publication>, "timestamp": <signature.timestamp>}
//
// signed with Ed25519. Keys and signatures are standard, padded base64; the
// public key is the raw 32-byte Ed25519 key; times are Unix milliseconds. The
// signer's nodeId is the libp2p peer ID of that key (12D3KooW...), so a
// verifier checks that the two agree. Anyone with a JCS library and Ed25519
// can check a signature without this package: testdata/golden holds golden
// vectors and testdata/interop an independent Node.js verifier that CI runs.
//
// Revocations and identity documents are signed over the canonical JSON of the
// record without its signature field.
//
// # Encrypted lessons and keys
//
// An [EncryptedLesson] carries a lesson encrypted with AES-256-GCM under a key
// its author keeps; its signature covers the encrypted form, so provenance is
// checked without the key ([VerifyEncrypted]) and [DecryptLesson] needs it.
// Keys cross the network only inside a secure channel ([KeyResponse] on
// [ProtocolKeys]) or sealed to one node with HPKE ([SealKey], [OpenKey]), under
// the author's signed [KeyPolicy], optionally split k-of-n for escrow nodes
// ([SplitKey], [CombineShares], [NewEscrow]). A hard revoke is the lesson's
// ordinary [Revocation]: it revokes its keys too ([Revocation.RevokesKeyOf]).
//
// # Decoding
//
// Every decoder ([DecodeLesson], [DecodeSignedLesson], [DecodeRevocation],
// [DecodeIdentity], [DecodeEncryptedLesson], [DecodeKeyPolicy], …) first checks a size cap, then requires I-JSON (valid
// UTF-8, no duplicate object keys, no lone surrogates) and only then parses.
// Field names are matched exactly (encoding/json would accept "NodeId" for
// "nodeId"), null and ill-typed values are refused, so what a decoder accepts
// canonicalizes to the same bytes as what was received: a record verifies
// here exactly when it verifies for an independent implementation. Unknown
// fields of a lesson are kept and re-encoded, so a lesson written by another
// implementation round-trips with its signature intact; the other records
// refuse unknown fields. The UnmarshalJSON methods apply the same rules when
// a record is part of a larger message. README.md describes the formats.
package protocol
