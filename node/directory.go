package node

// This file holds the directory role and the public, signed, read-only HTTP API.

import (
	"context"
	"net/http"

	"github.com/libp2p/go-libp2p"
)

// DirectoryConfig configures the directory role and the public, signed, read-only HTTP API.
type DirectoryConfig struct{}

// directoryState is the part of Node that this file owns.
type directoryState struct{}

// directoryOptions are libp2p options added when the node starts its own host.
func (n *Node) directoryOptions() []libp2p.Option { return nil }

// startDirectory runs after the host, federation, trust and peers are up.
func (n *Node) startDirectory(ctx context.Context) error { return nil }

// stopDirectory runs in Close, before the host closes.
func (n *Node) stopDirectory() error { return nil }

// directoryRoutes adds this file's control API routes (bearer token).
func (n *Node) directoryRoutes(mux *http.ServeMux) {}

// directoryServesAll reports whether this node answers /mesh/search/1.0.0
// from every verified public lesson it holds (its own and the remote cache),
// as a directory does, rather than from its own public lessons only.
func (n *Node) directoryServesAll() bool { return false }
