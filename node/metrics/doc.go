// Package metrics holds a node's own Prometheus metrics (docs/metrics.md):
// histograms of store operations and searches, sync counters, and gauges
// read from the node at scrape time through the State interface (store
// size, peers, the DHT, relays, subscriptions, refused publishers).
package metrics
