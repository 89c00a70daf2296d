// Package sensors is MESH's Sovereign IoT subsystem: a node's streams of
// sensor readings, the readers it grants them to, the local names it gives
// other nodes, and the structured questions it asks them.
//
// # Streams and readings
//
// A stream is (this node, a name such as "basement/humidity") with a unit,
// a TTL and the readers granted it. [Service.Push] keeps a reading as an
// AMP record of type "reading" (the value in "value" and in a field named
// after the stream's last segment, so the local search's "humidity > 60"
// finds it), encrypts it under the stream's current epoch key, signs the
// encrypted form, keeps that durably and, unless the stream is local,
// announces it on the node's feed: relays, directories and followers hold
// only ciphertext. The publication's signed expiresAt makes every holder
// drop the reading at its expiry, ciphertext included (package store).
//
// # Epoch keys and access
//
// Epoch keys are ordinary lesson keys of the key subsystem (package
// node/keys): the same random 256-bit AES-GCM keys, signed policies
// (explicit access: the stream's readers), key server (/mesh/keys/1.0.0,
// and GET /mesh/v1/keys/{keyId} sealed with HPKE) and readers' memory, made
// for a stream instead of a lesson. [Service.Grant] adds a reader to the
// policies of every live epoch of the streams its patterns cover;
// [Service.Revoke] takes it out of them and starts a new epoch of each
// stream at once, so the next reading, and every older epoch whose key it
// never fetched, are unreadable to it. A grant with an end is revoked so
// when it ends, and [Service.Admit] (the key server's last word) refuses
// keys past the end even before that.
//
// # Questions
//
// [ParseQuery] reads "humidity > 60%", "temp <= 4", "temperature last
// 24h", "since 2026-12-01", "today", "power anomaly". [Service.Search]
// resolves --sources (local names, groups, node IDs) and sends the parsed
// query straight to each source over /mesh/sensors/1.0.0. The source
// evaluates it on its plaintext, answers only readers it granted, and
// answers with the readings still encrypted; the asker decrypts and
// verifies each, checks it against the question, and aggregates (--stats).
// A source that cannot be reached is answered from the ciphertext this
// node holds of it.
//
// # Anomalies
//
// Each stream keeps a rolling statistic (an exponentially weighted mean
// and variance over about Window readings): a reading more than Threshold
// standard deviations from the mean, once MinSamples came before it, is
// tagged "anomaly" (see [api.AnomalyOptions]); "power anomaly" finds it.
//
// The service depends on small interfaces it declares ([Store], [Keys])
// and functions in [Deps]; readings, keys and questions are never logged.
package sensors
