// Command idlefloor is the memory floor of a MESH sensor node: what its
// dependencies cost before any MESH code runs. It starts what `mesh daemon
// --profile sensor` must start (a libp2p host with the default transports
// on loopback, a Kademlia DHT client, GossipSub with two topics joined, a
// pebble datastore and a scorch bleve index, both on disk) with the sensor
// profile's runtime settings, prints "ready" and waits for SIGTERM.
//
// `meshbench idle -floor` builds and measures it beside the daemon, so the
// daemon's idle RSS can be read against the floor of its own dependencies.
// It is a benchmark baseline, not part of any node.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: idlefloor DIR (a directory for the datastore and the index)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "idlefloor:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	// The sensor profile's runtime settings (cmd/mesh/profile.go).
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(32 << 20)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		return err
	}
	defer h.Close()
	d, err := dht.New(h, dht.Mode(dht.ModeClient))
	if err != nil {
		return err
	}
	defer d.Close()
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		return err
	}
	for _, name := range []string{"/mesh/lessons/1.0.0", "/mesh/revocations/1.0.0"} {
		t, err := ps.Join(name)
		if err != nil {
			return err
		}
		if _, err := t.Subscribe(); err != nil {
			return err
		}
	}
	ds, err := pebbleds.NewDatastore(filepath.Join(dir, "datastore"), nil)
	if err != nil {
		return err
	}
	defer ds.Close()
	idx, err := bleve.NewUsing(filepath.Join(dir, "index"), bleve.NewIndexMapping(), scorch.Name, scorch.Name, nil)
	if err != nil {
		return err
	}
	defer idx.Close()
	if err := idx.Index("one", map[string]string{"title": "a floor record", "content": "indexed once so the index is not empty"}); err != nil {
		return err
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}
