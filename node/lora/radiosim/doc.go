// Package radiosim is a simulated LoRa channel of Meshtastic radios for
// tests and benchmarks. Each virtual radio serves Meshtastic's client API
// (the stream protocol of meshtastic.Client) on a loopback TCP port, so the
// code under test talks to it exactly as to a real radio on port 4403.
//
// The channel models what matters to a gateway: airtime from the modem
// preset, half-duplex radios, collisions when transmissions a receiver
// hears overlap (no capture effect), random loss, listen-before-talk, and
// Meshtastic's managed flooding: a radio that hears a packet for the first
// time delivers it to its clients and rebroadcasts it with one hop less
// after a random contention delay, unless it hears another radio
// rebroadcast it first. Time can run faster than the wall clock (Speed).
package radiosim
