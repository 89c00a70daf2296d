package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// registrant is a node registered with this directory.
type registrant struct {
	At     int64    `json:"at"` // last registration, Unix ms
	Topics []string `json:"topics,omitempty"`
}

// loadRegistrants reads the registrations, one key per registrant,
// migrating the former single blob, and forgets the expired ones.
func (s *Service) loadRegistrants(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registrants = map[string]registrant{}
	b, err := s.deps.Meta.GetMeta(ctx, registrantsMeta)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("node: load registrants: %w", err)
	default:
		var old map[string]registrant
		if err := json.Unmarshal(b, &old); err != nil {
			s.log.Warn("directory: the former registrations do not decode; dropped", "err", err)
		}
		for id, r := range old {
			if _, err := protocol.PublicKeyOf(id); err != nil {
				continue
			}
			if err := s.saveRegistrant(ctx, id, r); err != nil {
				return fmt.Errorf("node: migrate registrants: %w", err)
			}
		}
		if err := s.deps.Meta.DeleteMeta(ctx, registrantsMeta); err != nil {
			return fmt.Errorf("node: migrate registrants: %w", err)
		}
	}
	var bad []string
	err = s.deps.Meta.ListMeta(ctx, registrantPrefix, func(key string, v []byte) error {
		id := strings.TrimPrefix(key, registrantPrefix)
		var r registrant
		if _, err := protocol.PublicKeyOf(id); err != nil || json.Unmarshal(v, &r) != nil {
			bad = append(bad, key)
			return nil
		}
		s.registrants[id] = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: load registrants: %w", err)
	}
	for _, k := range bad {
		_ = s.deps.Meta.DeleteMeta(ctx, k)
	}
	s.pruneRegistrantsLocked(ctx)
	for id := range s.registrants {
		if err := s.deps.Feeds.FollowFeed(id); err != nil {
			return fmt.Errorf("node: follow registrant %s: %w", id, err)
		}
	}
	return nil
}

func (s *Service) saveRegistrant(ctx context.Context, id string, r registrant) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.deps.Meta.SetMeta(ctx, registrantPrefix+id, b)
}

// pruneRegistrantsLocked forgets the registrations older than
// registrantTTL, and stops following their feeds (an unknown peer's feed
// is followed for no other reason). It returns how many it forgot.
// dirMu is held.
func (s *Service) pruneRegistrantsLocked(ctx context.Context) int {
	cutoff := s.now().Add(-registrantTTL).UnixMilli()
	gone := 0
	var followed []string // feeds the node follows of its own accord
	loaded := false
	for id, r := range s.registrants {
		if r.At >= cutoff {
			continue
		}
		if err := s.deps.Meta.DeleteMeta(ctx, registrantPrefix+id); err != nil {
			s.log.Warn("directory: forget an expired registration", "node", id, "err", err)
			continue
		}
		delete(s.registrants, id)
		if !loaded {
			_, followed, _ = s.deps.Following(ctx)
			loaded = true
		}
		if !slices.Contains(followed, id) {
			_ = s.deps.Feeds.UnfollowFeed(id)
		}
		gone++
	}
	return gone
}

// pruneRegistrantsLoop forgets expired registrations every
// pruneRegistrantsEvery.
func (s *Service) pruneRegistrantsLoop() {
	defer s.wg.Done()
	t := time.NewTicker(pruneRegistrantsEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		if gone := s.pruneRegistrantsLocked(s.ctx); gone > 0 {
			s.log.Info("directory: expired registrations forgotten", "count", gone)
		}
		s.mu.Unlock()
	}
}

// Registrants lists the nodes registered with this directory.
func (s *Service) Registrants() []string { return s.registrantsOn("") }

// registrantsOn lists the registered nodes that publish on topic, or all
// of them for "".
func (s *Service) registrantsOn(topic string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.registrants))
	for id, r := range s.registrants {
		if topic == "" || slices.Contains(r.Topics, topic) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// handleRegister answers /mesh/directory/1.0.0: the sender asks to be
// indexed. The directory records it, follows its feed, answers with its
// policy, and syncs the sender's public lessons and revocations.
func (s *Service) handleRegister(_ context.Context, r *streamrpc.Request) []byte {
	resp := &protocol.DirectoryRegistered{Type: protocol.MsgRegistered}
	err := r.Err
	var reg *protocol.DirectoryRegister
	if err == nil {
		reg, err = protocol.DecodeDirectoryRegister(r.Body)
	}
	if err == nil {
		err = s.register(r.From, reg.Topics)
	}
	resp.Error = protocol.ErrorOf(err)
	if err == nil {
		resp.Policy = s.Policy()
		s.startRegistrantSync(r.From)
	}
	return streamrpc.Encode(resp)
}

// startRegistrantSync syncs from registrant p in the background, unless
// maxRegistrantSyncs are running already: then it skips this one (the
// registrant's feed is followed, and its next registration syncs) and
// reports false.
func (s *Service) startRegistrantSync(p peer.ID) bool {
	select {
	case s.regSyncs <- struct{}{}:
	default:
		s.log.Info("directory: too many registrant syncs at once; this one is skipped until the node registers again",
			"peer", p.String(), "running", cap(s.regSyncs))
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.regSyncs }()
		if err := s.deps.SyncPublisher(s.ctx, p); err != nil && s.ctx.Err() == nil {
			s.log.Debug("sync registrant", "peer", p.String(), "err", err)
		}
	}()
	return true
}

// register records a registration from p.
func (s *Service) register(p peer.ID, topics []string) error {
	id := p.String()
	if s.deps.Trust.Blocked(id) {
		return fmt.Errorf("register: %w", protocol.ErrUntrusted)
	}
	if !s.regLimit.Allow(id, s.now()) {
		return fmt.Errorf("register: %w: at most one registration every %s", protocol.ErrRateLimited, time.Duration(float64(time.Second)/registerRate))
	}
	if _, err := protocol.PublicKeyOf(id); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, known := s.registrants[id]
	if !known && len(s.registrants) >= maxRegistrants {
		s.pruneRegistrantsLocked(s.ctx)
	}
	if !known && len(s.registrants) >= maxRegistrants {
		return fmt.Errorf("register: %w: this directory holds %d registrations, its limit", protocol.ErrRateLimited, maxRegistrants)
	}
	r := registrant{At: s.now().UnixMilli(), Topics: lowerUnique(topics)}
	if len(r.Topics) == 0 {
		r.Topics = nil
	}
	if err := s.saveRegistrant(s.ctx, id, r); err != nil {
		return err
	}
	s.registrants[id] = r
	if !known {
		if err := s.deps.Feeds.FollowFeed(id); err != nil {
			return err
		}
	}
	return nil
}
