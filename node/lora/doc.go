// Package lora is MESH's off-grid gateway: it listens to Meshtastic radios
// (package meshtastic) and to Wi-Fi sensors over UDP for compact records
// (protocol.DecodeCompact), verifies each with its sensor's key (learned
// from signed announcements, or named by Keys), refuses forgeries, replays
// and unknown senders with counts, drops copies heard again over another
// hop or radio, and carries what it accepted into MESH through a Sink,
// keeping it queued (persisted) while MESH cannot take it.
//
// Package radiosim simulates the radios for tests and benchmarks behind
// the same client API.
package lora
