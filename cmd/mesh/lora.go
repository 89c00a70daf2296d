package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
)

// loraFlags adds the gateway flags of `mesh daemon`.
func loraFlags(c *cobra.Command) func(*cobra.Command, *node.Config) error {
	var (
		radios []string
		udp    string
		port   uint32
		topics []string
	)
	f := c.Flags()
	f.StringArrayVar(&radios, "lora", nil, "be a gateway for the Meshtastic radio at tcp://HOST:4403 or serial:///dev/ttyUSB0 (repeatable)")
	f.StringVar(&udp, "lora-udp", "", "also take compact sensor records as UDP datagrams on this address (Wi-Fi sensors), e.g. 0.0.0.0:4404")
	f.Uint32Var(&port, "lora-port", 0, "Meshtastic port number of MESH payloads (default 256, PRIVATE_APP)")
	f.StringArrayVar(&topics, "lora-topic", nil, "MESH topic carried readings are published on (repeatable; default lora)")
	return func(c *cobra.Command, cfg *node.Config) error {
		for _, r := range radios {
			if !strings.HasPrefix(r, "tcp://") && !strings.HasPrefix(r, "serial://") {
				return fmt.Errorf("--lora %q: want tcp://HOST:4403 or serial:///dev/DEVICE", r)
			}
		}
		if (port != 0 || len(topics) > 0) && len(radios) == 0 && udp == "" {
			return fmt.Errorf("--lora-port and --lora-topic need --lora or --lora-udp")
		}
		cfg.Lora = node.LoraConfig{Radios: radios, UDP: udp, Port: port, Topics: topics}
		return nil
	}
}
