// Package meshtastic is a client of a Meshtastic radio's client API: the
// stream protocol the firmware serves over USB serial and TCP port 4403
// (frames of 0x94 0xC3, a 16-bit big-endian length and a protobuf ToRadio
// or FromRadio), with the config handshake (want_config_id) and MESH
// payloads carried in a MeshPacket's Data on a private-app port.
//
// Only the few messages MESH needs are encoded, with protowire; the field
// numbers are those of the public meshtastic/protobufs repository,
// meshtastic/mesh.proto and meshtastic/portnums.proto. Unknown fields are
// skipped, so newer firmware stays readable.
package meshtastic
