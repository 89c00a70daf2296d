package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
)

// Sensor profile settings: a Pi Zero class board has 512 MB of memory
// and one core.
const (
	// sensorMemoryLimit is the Go runtime's soft memory limit under
	// --profile sensor (GOMEMLIMIT, when set, wins).
	sensorMemoryLimit = 32 << 20
	// sensorGCPercent is GOGC under --profile sensor (GOGC, when set,
	// wins).
	sensorGCPercent = 50
	// sensorMaxIndexed bounds the readings of one stream indexed in
	// memory for questions (the default is 20000).
	sensorMaxIndexed = 2000
)

// profileFlags adds `mesh daemon --profile`; without it, the profile is
// *fromConfig (config.json's "profile", set before the returned function
// runs). Its function runs after the other subsystems' (it checks their
// flags).
func profileFlags(c *cobra.Command, fromConfig *string) func(*cobra.Command, *node.Config) error {
	var profile string
	c.Flags().StringVar(&profile, "profile", "", "sensor: for small boards (Pi Zero): a DHT client, never a directory, a smaller in-memory index of readings, the Go runtime held to a 32 MiB soft memory limit (also config.json's \"profile\")")
	return func(c *cobra.Command, cfg *node.Config) error {
		name, source := profile, "--profile"
		if !c.Flags().Changed("profile") && *fromConfig != "" {
			name, source = *fromConfig, ConfigFile+"'s profile"
		}
		switch name {
		case "", "default":
			return nil
		case "sensor":
		default:
			return fmt.Errorf("%s %q: want sensor (or leave it out)", source, name)
		}
		fl := c.Flags()
		if fl.Changed("directory") || fl.Changed("public-api") {
			return fmt.Errorf("%s sensor runs no directory: leave out --directory and --public-api", source)
		}
		if !fl.Changed("dht-mode") {
			cfg.DHT.Mode = "client"
		}
		cfg.Directory.Enabled = false
		cfg.Directory.PublicAPI = ""
		if cfg.Sensors.MaxIndexed == 0 || cfg.Sensors.MaxIndexed > sensorMaxIndexed {
			cfg.Sensors.MaxIndexed = sensorMaxIndexed
		}
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(sensorGCPercent)
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(sensorMemoryLimit)
		}
		return nil
	}
}
