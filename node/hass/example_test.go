package hass_test

import (
	"context"
	"log"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/hass"
)

// A bridge on the owner's node: the streams of the source named
// "basement" go to the local broker every 30 s, with Home Assistant's
// MQTT discovery (what `mesh bridge mqtt` runs).
func ExampleNew() {
	var owner *node.Node // the owner's running node; the source is named with owner.NameSet
	ctx := context.Background()
	b, err := hass.New(hass.Config{Broker: "tcp://127.0.0.1:1883", Sources: "basement", Streams: []string{"basement/*"}}, owner)
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	log.Fatal(b.Run(ctx, 30*time.Second))
}
