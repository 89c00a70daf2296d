package fedsearch

// The search server's per-peer rate, for the external tests.
const (
	PeerRate  = peerRate
	PeerBurst = peerBurst
)
