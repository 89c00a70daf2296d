package sensors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// Access. A grant names a reader and stream patterns; the epoch keys of
// the streams it covers name the reader in their (explicit) policy, so the
// key server gives it those keys. A revocation takes the reader out of the
// policies of every live epoch of the streams and starts a new epoch of
// each at once: the next reading is encrypted under a key the reader is
// refused, and so is every older epoch key it has not fetched yet. A grant
// with an end is revoked so when it ends; until then the key server caps
// the keys' expiresAt at the end (Admit), and after it refuses them even
// before the revocation has run.

// Grant lets a reader fetch the epoch keys of the streams matching its
// patterns ("*" if none), every live epoch included, until g.Until (0: no
// end). A second grant to the same reader adds its patterns and sets the
// end anew.
func (s *Service) Grant(ctx context.Context, g api.GrantOptions) (*api.Grant, error) {
	if _, err := protocol.PublicKeyOf(g.Reader); err != nil {
		return nil, fmt.Errorf("grant: reader: %w", err)
	}
	if g.Reader == s.self {
		return nil, fmt.Errorf("%w: grant: this node reads its own streams already", protocol.ErrInvalid)
	}
	patterns := g.Streams
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	if len(patterns) > protocol.MaxSensorQueryClauses {
		return nil, fmt.Errorf("%w: grant: %d stream patterns, the limit is %d", protocol.ErrInvalid, len(patterns), protocol.MaxSensorQueryClauses)
	}
	for _, p := range patterns {
		if err := protocol.ValidateStreamPattern(p); err != nil {
			return nil, fmt.Errorf("grant: %w", err)
		}
	}
	now := s.now().UnixMilli()
	if g.Until != 0 && g.Until <= now {
		return nil, fmt.Errorf("%w: grant: --until %s is not in the future", protocol.ErrInvalid, time.UnixMilli(g.Until).UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	rec := grantRecord{Reader: g.Reader, Until: g.Until, GrantedAt: now}
	if old := s.grants[g.Reader]; old != nil && old.active(now) {
		rec.Streams = slices.Clone(old.Streams)
	}
	for _, p := range patterns {
		if !slices.Contains(rec.Streams, p) {
			rec.Streams = append(rec.Streams, p)
		}
	}
	sort.Strings(rec.Streams)
	if err := s.saveGrantLocked(ctx, &rec); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.grants[g.Reader] = &rec
	touched := s.streamsCoveredLocked(&rec)
	s.mu.Unlock()
	for _, st := range touched {
		if err := s.republishPolicies(ctx, st); err != nil {
			return nil, err
		}
	}
	if g.Until != 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.log.Info("sensor access granted", "reader", g.Reader, "streams", len(touched))
	return s.grantInfo(&rec, now), nil
}

func (s *Service) saveGrantLocked(ctx context.Context, g *grantRecord) error {
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := s.deps.Store.SetMeta(ctx, metaGrant+g.Reader, b); err != nil {
		return fmt.Errorf("sensors: keep the grant: %w", err)
	}
	return nil
}

// streamsCoveredLocked are the streams g covers.
func (s *Service) streamsCoveredLocked(g *grantRecord) []*stream {
	var out []*stream
	for name, st := range s.streams {
		if g.covers(name) {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// republishPolicies signs anew the policy of every live epoch of st for
// its readers now.
func (s *Service) republishPolicies(ctx context.Context, st *stream) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.republishPoliciesLocked(ctx, st)
}

func (s *Service) republishPoliciesLocked(ctx context.Context, st *stream) error {
	s.mu.Lock()
	opts := s.policyFor(s.readersOfLocked(st.name, s.now().UnixMilli()))
	s.mu.Unlock()
	for _, e := range st.rec.Epochs {
		if _, _, err := s.deps.Keys.SetPolicy(ctx, e.KeyID, opts); err != nil && !errors.Is(err, protocol.ErrKeyRevoked) && !isNotFound(err) {
			return fmt.Errorf("sensors: policy of %s: %w", st.name, err)
		}
	}
	return nil
}

// Revoke takes the streams matching patterns (all of them if none) away
// from reader: the grant loses those patterns (or goes), every live epoch
// of the streams it covered drops the reader from its policy, and each of
// those streams starts a new epoch at once.
func (s *Service) Revoke(ctx context.Context, reader string, patterns []string) (*api.RevokeResult, error) {
	if _, err := protocol.PublicKeyOf(reader); err != nil {
		return nil, fmt.Errorf("revoke: reader: %w", err)
	}
	for _, p := range patterns {
		if err := protocol.ValidateStreamPattern(p); err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
	}
	now := s.now().UnixMilli()
	s.mu.Lock()
	old := s.grants[reader]
	if old == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s holds no grant on this node (mesh access list)", protocol.ErrNotFound, reader)
	}
	before := s.streamsCoveredLocked(old)
	var rest *grantRecord
	if len(patterns) > 0 && old.active(now) {
		r := *old
		r.Streams = slices.DeleteFunc(slices.Clone(old.Streams), func(p string) bool { return slices.Contains(patterns, p) })
		if len(r.Streams) == len(old.Streams) {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: the grant of %s has none of the patterns %v (it has %v)", protocol.ErrNotFound, reader, patterns, old.Streams)
		}
		if len(r.Streams) > 0 {
			rest = &r
		}
	}
	var err error
	if rest != nil {
		err = s.saveGrantLocked(ctx, rest)
		if err == nil {
			s.grants[reader] = rest
		}
	} else {
		err = s.deps.Store.DeleteMeta(ctx, metaGrant+reader)
		if err == nil {
			delete(s.grants, reader)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sensors: revoke %s: %w", reader, err)
	}
	res := &api.RevokeResult{Reader: reader, Streams: []string{}, Epochs: map[string]string{}}
	for _, st := range before {
		if rest != nil && rest.covers(st.name) {
			continue
		}
		st.mu.Lock()
		err := s.newEpochLocked(ctx, st)
		if err == nil {
			err = s.republishPoliciesLocked(ctx, st)
		}
		if err == nil {
			res.Streams = append(res.Streams, st.name)
			res.Epochs[st.name] = st.rec.Epochs[len(st.rec.Epochs)-1].KeyID
		}
		st.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	if rest != nil {
		res.Remaining = s.grantInfo(rest, now)
	}
	s.log.Info("sensor access revoked", "reader", reader, "streams", len(res.Streams))
	return res, nil
}

// Grants lists the grants, by reader.
func (s *Service) Grants(ctx context.Context) ([]api.Grant, error) {
	now := s.now().UnixMilli()
	s.mu.Lock()
	all := make([]*grantRecord, 0, len(s.grants))
	for _, g := range s.grants {
		all = append(all, g)
	}
	s.mu.Unlock()
	out := make([]api.Grant, 0, len(all))
	for _, g := range all {
		out = append(out, *s.grantInfo(g, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reader < out[j].Reader })
	return out, nil
}

func (s *Service) grantInfo(g *grantRecord, now int64) *api.Grant {
	s.mu.Lock()
	var matches []string
	for _, st := range s.streamsCoveredLocked(g) {
		matches = append(matches, st.name)
	}
	s.mu.Unlock()
	return &api.Grant{Reader: g.Reader, Streams: slices.Clone(g.Streams), Until: g.Until, GrantedAt: g.GrantedAt, Matches: nonNil(matches), Expired: !g.active(now)}
}

// Admit is the key server's last word on an epoch key of this node's
// streams (keys.Deps.Admit): the requester must hold an active grant that
// covers the stream; the grant's end caps how long it may keep the key.
// Keys that are not epoch keys are left to their policy.
func (s *Service) Admit(_ context.Context, p *protocol.KeyPolicy, requester string) (int64, error) {
	name := streamOfID(p.LessonID)
	if name == "" {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[name] == nil {
		return 0, nil
	}
	g := s.grants[requester]
	now := s.now().UnixMilli()
	if g == nil || !g.covers(name) {
		return 0, fmt.Errorf("key %s: %w: %s is not granted the stream %s", p.KeyID, protocol.ErrAccessDenied, requester, name)
	}
	if !g.active(now) {
		return 0, fmt.Errorf("key %s: %w: the grant of %s ended at %s", p.KeyID, protocol.ErrAccessDenied, requester, time.UnixMilli(g.Until).UTC().Format(time.RFC3339))
	}
	return g.Until, nil
}

// granted are the streams requester may read now.
func (s *Service) granted(requester string) map[string]*stream {
	now := s.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*stream{}
	g := s.grants[requester]
	if requester == s.self {
		for n, st := range s.streams {
			out[n] = st
		}
		return out
	}
	if g == nil || !g.active(now) {
		return out
	}
	for _, st := range s.streamsCoveredLocked(g) {
		out[st.name] = st
	}
	return out
}
