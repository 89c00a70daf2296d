// Package store is the AMP memory store of one MESH node: it keeps the
// node's records (lessons, checkpoints, snippets, sensor readings, ...) in a
// go-datastore, indexes them for full-text search, keeps the signed
// publications of the ones the node published, caches the lessons of other
// publishers, keeps tombstones of revoked lessons and the sync log, and
// makes records with an expiry vanish when it passes. It knows nothing about
// the network and verifies no signature: the caller does, before PutRemote
// and Revoke.
//
// # Durability
//
// The datastore is the truth. By default it is pebble in Options.Dir, with
// every write synced: when Put returns, the record survives kill -9. The
// search index (bleve, BM25 scoring) is derived data in Dir/index. Every
// write puts a dirty marker for the record in the same datastore commit and
// removes it once the index has the change on disk; Open replays the
// markers, so a crash between the datastore write and the index write loses
// nothing. Open rebuilds the index from the datastore when it is missing,
// unreadable, of another format or datastore generation, or holds a
// different number of records than the datastore.
//
// # Search
//
// Query text holds words (OR'ed, ranked by BM25 over title, content and
// tags), "quoted phrases" (each required) and numeric comparisons on record
// fields such as `humidity > 60`; see ParseQuery. Filters narrow by type,
// tags, project, agent, visibility and created_at. Scores are in (0, 1].
// A search of words alone, the usual one, is ranked straight from the
// index's postings (rankTerms): bleve's BM25 scores, order and total,
// with MaxScore skipping the documents that cannot make the top, and the
// total counted on the postings bitmaps; it applies the filters on
// keyword fields (type, tags, visibility, project, agent, origin,
// publisher) and leaves out remote lessons and records expired but not
// yet swept, as bleve's clauses do. Phrases, comparisons, dates, IDs and
// more than ten words go through bleve.
//
// # Federation
//
// PutRemote caches a lesson of another publisher under its key
// lessonId@nodeId; the newest publication.publishedAt wins. Revoke keeps a
// revocation as a tombstone, which refuses the lesson from then on. Remote
// lessons are indexed, but Search and List return them only when
// Query.Origin asks (the default is this node's own records). Log pages
// through the public lessons held, own and remote, and the tombstones, in
// the order this node got them: the sync protocol serves it. Versions held,
// tombstones and the log's entries are kept in memory too (loaded at Open),
// so HeldVersion, Revoked and Log's filtering never read the disk.
//
// # Encrypted lessons and key material
//
// An EncryptedLesson (protocol) is kept like a signed lesson, under the
// same key and rules: PutRemoteEncrypted caches another publisher's,
// PutEncryptedPublication keeps this node's (and removes a signed
// publication of the record, so its words are no longer served in the
// clear); the newest publishedAt of either form wins, Revoke takes either
// back, Log serves both. Their words are in the ciphertext: they are not
// indexed, so Search and List never return them. The key material of the
// keys subsystem lives here too (keys.go): this node's lesson keys and
// policies, the escrow shares it holds for others, and the key IDs it
// revoked, which RevokeKeys writes in the same commit that deletes the
// keys, so that a revoked key stays revoked across restarts and kill -9.
//
// # Expiry
//
// A record or remote lesson whose expires_at (Unix ms) has passed is gone
// from Get, Remote, List, Search, Log, Status and AgentStatus at once; a
// background sweeper deletes it from disk (see Options.SweepInterval and
// Store.Sweep).
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes of different records run in
// parallel (the datastore group-commits them); writes of one record are
// ordered the same way in the datastore and the index.
package store
