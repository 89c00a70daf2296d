package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshprotocol/mesh/internal/atomicfile"
	"github.com/meshprotocol/mesh/internal/p2paddr"
	"github.com/meshprotocol/mesh/node/directory"
	"github.com/meshprotocol/mesh/node/discovery"
	"github.com/meshprotocol/mesh/node/reach"
)

// ConfigFile is the daemon's settings file inside the repo.
const ConfigFile = "config.json"

// RepoConfig is the daemon's persistent settings, kept in REPO/config.json
// and created with defaults by `mesh init`. Command-line flags override it.
type RepoConfig struct {
	// API is the loopback address of the HTTP API. "" means 127.0.0.1:8765.
	API string `json:"api,omitempty"`
	// Listen are the libp2p listen multiaddrs. Empty means TCP and QUIC on
	// port 4001 of every interface.
	Listen []string `json:"listen,omitempty"`
	// Bootstrap peers (multiaddrs ending in /p2p/<node ID>), dialled at start
	// and redialled with backoff.
	Bootstrap []string `json:"bootstrap"`
	// Topics followed at start, on top of `mesh follow`.
	Topics []string `json:"topics"`
	// MDNS finds MESH nodes on the LAN. Nil means on.
	MDNS *bool `json:"mdns,omitempty"`
	// NAT: AutoNAT, relays, hole punching, port mapping, announce.
	NAT reach.Config `json:"nat,omitzero"`
	// DHT: the Kademlia directory.
	DHT discovery.Config `json:"dht,omitzero"`
	// Directory: the directory role and the public HTTP API.
	Directory directory.Config `json:"directory,omitzero"`
	// Profile is the daemon's profile when --profile is not given: ""
	// (or "default") or "sensor" (see mesh daemon --help).
	Profile string `json:"profile,omitempty"`
}

// LoadRepoConfig reads REPO/config.json; a missing file gives the zero value.
func LoadRepoConfig(dir string) (RepoConfig, error) {
	var c RepoConfig
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if len(b) > 1<<20 {
		return c, fmt.Errorf("%s: over 1 MiB", filepath.Join(dir, ConfigFile))
	}
	// A misspelt key ("bootstraps") would be ignored in silence: refused,
	// naming it.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return c, fmt.Errorf("%s: unknown key %s: check its spelling (the keys are api, listen, bootstrap, topics, mdns, nat, dht, directory and profile; see docs/nat.md, docs/dht.md, docs/directory.md for theirs)", filepath.Join(dir, ConfigFile), name)
		}
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if dec.More() {
		return c, fmt.Errorf("%s: more than one JSON value", filepath.Join(dir, ConfigFile))
	}
	for _, a := range c.Bootstrap {
		if _, err := p2paddr.ParseAddrInfo(a); err != nil {
			return c, fmt.Errorf("%s: bootstrap %q: %w", filepath.Join(dir, ConfigFile), a, err)
		}
	}
	return c, nil
}

// WriteRepoConfig writes REPO/config.json if it does not exist yet.
func WriteRepoConfig(dir string, c RepoConfig) error {
	path := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if c.Bootstrap == nil {
		c.Bootstrap = []string{}
	}
	if c.Topics == nil {
		c.Topics = []string{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}
