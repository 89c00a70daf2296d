// Package nodetest builds real MESH nodes for tests and benchmarks: on a
// mocknet (real libp2p stacks, links with a latency of one's choosing, no
// sockets), or on loopback (real TCP and QUIC), with the helpers every
// multi-node test needs: connect, trust, wait for GossipSub's mesh, publish,
// and wait for a condition.
//
// The functions that take a testing.TB fail the test on error and close
// what they made in t.Cleanup. [Net] is the same without a testing.TB, for
// meshbench.
package nodetest
