package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/internal/p2paddr"
	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// parseDirectoryTarget reads what DirectoryAdd takes: a multiaddr ending in
// /p2p/<node ID>, a node ID, or an http(s) URL of a public API.
func parseDirectoryTarget(target string) (api.DirectoryEntry, error) {
	e := api.DirectoryEntry{Target: strings.TrimSpace(target)}
	t := e.Target
	switch {
	case t == "" || len(t) > 1024:
		return e, fmt.Errorf("%w: directory %q: want a multiaddr ending in /p2p/<node ID>, a node ID or an http(s) URL", protocol.ErrInvalid, truncateStr(t))
	case strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://"):
		u, err := checkBaseURL(t)
		if err != nil {
			return e, err
		}
		e.URL = u
	case strings.HasPrefix(t, "/"):
		ai, err := p2paddr.ParseAddrInfo(t)
		if err != nil {
			return e, fmt.Errorf("directory %q: %w", truncateStr(t), err)
		}
		e.NodeID = ai.ID.String()
		e.Addrs = []string{t}
	default:
		if _, err := protocol.PublicKeyOf(t); err != nil {
			return e, fmt.Errorf("directory %q: want a multiaddr ending in /p2p/<node ID>, a node ID or an http(s) URL: %w", truncateStr(t), err)
		}
		e.NodeID = t
	}
	return e, nil
}

func (s *Service) loadDirectories(ctx context.Context) ([]api.DirectoryEntry, error) {
	var list []api.DirectoryEntry
	b, err := s.deps.Meta.GetMeta(ctx, directoriesMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load directories: %w", err)
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("load directories: %w", err)
	}
	return list, nil
}

func (s *Service) saveDirectories(ctx context.Context, list []api.DirectoryEntry) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return s.deps.Meta.SetMeta(ctx, directoriesMeta, b)
}

// sameDirectory reports whether a and b name the same directory.
func sameDirectory(a, b api.DirectoryEntry) bool {
	return a.NodeID != "" && a.NodeID == b.NodeID || a.URL != "" && a.URL == b.URL || a.Target == b.Target
}

// mergeConfigDirectories adds Config.Directory.Directories to the list.
func (s *Service) mergeConfigDirectories(ctx context.Context) error {
	if len(s.cfg.Directories) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.loadDirectories(ctx)
	if err != nil {
		return err
	}
	changed := false
	for _, t := range s.cfg.Directories {
		e, err := parseDirectoryTarget(t)
		if err != nil {
			return fmt.Errorf("config directory: %w", err)
		}
		if !slices.ContainsFunc(list, func(x api.DirectoryEntry) bool { return sameDirectory(x, e) }) && len(list) < maxDirectories {
			list = append(list, e)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.saveDirectories(ctx, list)
}

// Add adds a directory to register with: a multiaddr ending in
// /p2p/<node ID>, a node ID (found through the peers and the DHT), or the
// URL of its public API (its signed policy names its node ID and
// addresses). It persists, and an online node registers at once; the
// returned entry says how that went. Adding a directory again refreshes it.
func (s *Service) Add(ctx context.Context, target string) (*api.DirectoryEntry, error) {
	e, err := parseDirectoryTarget(target)
	if err != nil {
		return nil, err
	}
	if e.URL != "" {
		pol, err := FetchPolicy(ctx, nil, e.URL)
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", e.URL, err)
		}
		e.NodeID, e.Addrs, e.Policy = pol.NodeID, pol.Addrs, pol
	}
	if e.NodeID == s.self.String() {
		return nil, fmt.Errorf("%w: that is this node itself", protocol.ErrInvalid)
	}
	s.mu.Lock()
	list, err := s.loadDirectories(ctx)
	if err == nil {
		i := slices.IndexFunc(list, func(x api.DirectoryEntry) bool { return sameDirectory(x, e) })
		switch {
		case i >= 0:
			if e.URL == "" {
				e.URL = list[i].URL
			}
			list[i] = e
		case len(list) >= maxDirectories:
			err = fmt.Errorf("%w: at most %d directories", protocol.ErrInvalid, maxDirectories)
		default:
			list = append(list, e)
		}
	}
	if err == nil {
		err = s.saveDirectories(ctx, list)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.host == nil || e.NodeID == "" {
		return &e, nil
	}
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	return s.registerEntry(rctx, e), nil
}

// List lists the directories this node registers with.
func (s *Service) List(ctx context.Context) ([]api.DirectoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.loadDirectories(ctx)
	if list == nil {
		list = []api.DirectoryEntry{}
	}
	return list, err
}

// Remove stops registering with a directory, named by its target,
// node ID or URL. It reports whether there was such a directory.
func (s *Service) Remove(ctx context.Context, target string) (bool, error) {
	target = strings.TrimSpace(target)
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.loadDirectories(ctx)
	if err != nil {
		return false, err
	}
	out := list[:0]
	for _, e := range list {
		if e.Target != target && e.NodeID != target && (e.URL == "" || e.URL != strings.TrimRight(target, "/")) {
			out = append(out, e)
		}
	}
	if len(out) == len(list) {
		return false, nil
	}
	return true, s.saveDirectories(ctx, out)
}

// registerEntry registers with one directory and records the outcome.
func (s *Service) registerEntry(ctx context.Context, e api.DirectoryEntry) *api.DirectoryEntry {
	pol, err := s.RegisterWith(ctx, e.NodeID, e.Addrs)
	e.Error = ""
	if err != nil {
		e.Error = err.Error()
	} else {
		e.Registered, e.Policy = s.now().UnixMilli(), pol
		if e.URL == "" && pol.PublicURL != "" {
			if u, err := checkBaseURL(pol.PublicURL); err == nil {
				e.URL = u
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if list, lerr := s.loadDirectories(s.ctx); lerr == nil {
		if i := slices.IndexFunc(list, func(x api.DirectoryEntry) bool { return sameDirectory(x, e) }); i >= 0 {
			list[i] = e
			_ = s.saveDirectories(s.ctx, list)
		}
	}
	return &e
}

// RegisterWith registers this node with the directory nodeID over
// /mesh/directory/1.0.0, dialling addrs (multiaddrs, with or without
// /p2p/) if it is not connected, and returns the directory's policy.
func (s *Service) RegisterWith(ctx context.Context, nodeID string, addrs []string) (*protocol.DirectoryPolicy, error) {
	if s.host == nil {
		return nil, errOffline
	}
	p, err := peer.Decode(nodeID)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w: %v", truncateStr(nodeID), protocol.ErrInvalid, err)
	}
	ai := peer.AddrInfo{ID: p}
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if t, id := peer.SplitAddr(m); t != nil && (id == "" || id == p) {
			ai.Addrs = append(ai.Addrs, t)
		}
	}
	if s.host.Network().Connectedness(p) != network.Connected {
		if err := s.host.Connect(ctx, ai); err != nil {
			return nil, fmt.Errorf("register with %s: %w: %v", p, protocol.ErrUnreachable, err)
		}
	}
	topics, _, _ := s.deps.Following(ctx)
	if len(topics) > protocol.MaxTags {
		topics = topics[:protocol.MaxTags]
	}
	req, _ := (&protocol.DirectoryRegister{Type: protocol.MsgRegister, Topics: topics}).Encode()
	b, err := streamrpc.Call(ctx, s.host, p, protocol.ProtocolDirectory, req, protocol.MaxDirectoryMessageSize)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", p, err)
	}
	resp, err := protocol.DecodeDirectoryRegistered(b)
	if err != nil {
		return nil, fmt.Errorf("register with %s: %w", p, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("register with %s: %w", p, protocol.ErrorFor(resp.Error.Code, resp.Error.Message))
	}
	if resp.Policy.NodeID != p.String() {
		return nil, fmt.Errorf("register with %s: %w: its policy names %s", p, protocol.ErrInvalid, resp.Policy.NodeID)
	}
	return resp.Policy, nil
}

// registerLoop registers with every listed directory at start, then every
// RegisterInterval (Add registers with a new directory at once).
func (s *Service) registerLoop() {
	defer s.wg.Done()
	every := s.cfg.RegisterInterval
	if every <= 0 {
		every = defaultRegisterInterval
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			t.Reset(every)
		}
		s.mu.Lock()
		list, err := s.loadDirectories(s.ctx)
		s.mu.Unlock()
		if err != nil {
			continue
		}
		for _, e := range list {
			if e.NodeID == "" || s.ctx.Err() != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(s.ctx, registerTimeout)
			if r := s.registerEntry(ctx, e); r.Error != "" && s.ctx.Err() == nil {
				s.log.Debug("register with directory", "directory", e.NodeID, "err", r.Error)
			}
			cancel()
		}
	}
}
