package trust

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/meshprotocol/mesh/protocol"
)

// AddVouch caches v, which the caller has verified with
// protocol.VerifyVouch. One vouch is kept per voucher, the newest: an older
// one than held, or a different one issued at the same time, is an
// ErrStale error; the same one again is a no-op. An expired vouch is an
// ErrExpired error. A vouch from a node this node does not trust fully is
// kept, but followed only while the voucher is trusted fully. Beyond
// MaxVouches vouchers the error is ErrFull.
func (g *Graph) AddVouch(v *protocol.Vouch) error {
	if v == nil || v.Type != protocol.TypeVouch {
		return fmt.Errorf("%w: trust: not a vouch", protocol.ErrInvalid)
	}
	if _, err := protocol.PublicKeyOf(v.NodeID); err != nil {
		return fmt.Errorf("trust: vouch: %w", err)
	}
	if v.NodeID == g.self {
		return fmt.Errorf("%w: trust: a vouch of this node's own", protocol.ErrInvalid)
	}
	now := g.now()
	if v.Expired(now) {
		return fmt.Errorf("%w: %w: from %s", ErrExpired, protocol.ErrTimestamp, v.NodeID)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("trust: encode vouch: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.vouches[v.NodeID]
	if ok && !old.Expired(now) {
		switch {
		case old.IssuedAt == v.IssuedAt && old.Signature == v.Signature:
			return nil
		case old.IssuedAt >= v.IssuedAt:
			return fmt.Errorf("%w: vouch from %s", ErrStale, v.NodeID)
		}
	}
	if !ok && len(g.vouches) >= MaxVouches {
		g.sweepLocked(now)
		if len(g.vouches) >= MaxVouches {
			return fmt.Errorf("%w: %d vouches", ErrFull, len(g.vouches))
		}
	}
	if err := g.ds.Put(context.Background(), vouchKey(v.NodeID), b); err != nil {
		return fmt.Errorf("trust: add vouch from %s: %w", v.NodeID, err)
	}
	g.vouches[v.NodeID] = cloneVouch(v)
	g.changeLocked()
	return nil
}

// Vouches returns the unexpired vouches held, sorted by voucher. The caller
// owns them.
func (g *Graph) Vouches() []*protocol.Vouch {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*protocol.Vouch, 0, len(g.vouches))
	for _, v := range g.vouches {
		if !v.Expired(now) {
			out = append(out, cloneVouch(v))
		}
	}
	slices.SortFunc(out, func(a, b *protocol.Vouch) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

func cloneVouch(v *protocol.Vouch) *protocol.Vouch {
	c := *v
	c.Trusts = slices.Clone(v.Trusts)
	return &c
}

// AddReferral keeps r, which the caller has verified with
// protocol.VerifyReferral, to be listed by Referrals. It never changes the
// graph. One referral is kept per recommender and subject, the newest (an
// older one is an ErrStale error, the same one again a no-op), and at most
// MaxReferralsPerNode per recommender: a new one beyond that replaces the
// recommender's oldest. A referral from a blocked node is an error wrapping
// protocol.ErrUntrusted; beyond MaxReferrals the error is ErrFull.
func (g *Graph) AddReferral(r *protocol.Referral) error {
	if r == nil || r.Type != protocol.TypeReferral {
		return fmt.Errorf("%w: trust: not a referral", protocol.ErrInvalid)
	}
	if _, err := protocol.PublicKeyOf(r.NodeID); err != nil {
		return fmt.Errorf("trust: referral: %w", err)
	}
	if _, err := protocol.PublicKeyOf(r.Subject); err != nil {
		return fmt.Errorf("trust: referral subject: %w", err)
	}
	if r.NodeID == g.self {
		return fmt.Errorf("%w: trust: a referral of this node's own", protocol.ErrInvalid)
	}
	if g.Blocked(r.NodeID) {
		return fmt.Errorf("%w: trust: referral from blocked node %s", protocol.ErrUntrusted, r.NodeID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("trust: encode referral: %w", err)
	}
	k := refKey{r.NodeID, r.Subject}
	ctx := context.Background()
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.referrals[k]
	switch {
	case ok && old.IssuedAt == r.IssuedAt && old.Signature == r.Signature:
		return nil
	case ok && old.IssuedAt >= r.IssuedAt:
		return fmt.Errorf("%w: referral from %s", ErrStale, r.NodeID)
	}
	var evict *refKey
	if !ok {
		var mine []refKey
		for ok := range g.referrals {
			if ok.from == r.NodeID {
				mine = append(mine, ok)
			}
		}
		if len(mine) >= MaxReferralsPerNode {
			oldest := slices.MinFunc(mine, func(a, b refKey) int {
				return cmp.Or(cmp.Compare(g.referrals[a].IssuedAt, g.referrals[b].IssuedAt), cmp.Compare(a.subject, b.subject))
			})
			evict = &oldest
		} else if len(g.referrals) >= MaxReferrals {
			return fmt.Errorf("%w: %d referrals", ErrFull, len(g.referrals))
		}
	}
	batch, err := g.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("trust: add referral: %w", err)
	}
	if evict != nil {
		if err := batch.Delete(ctx, referralKey(*evict)); err != nil {
			return fmt.Errorf("trust: add referral: %w", err)
		}
	}
	if err := batch.Put(ctx, referralKey(k), b); err != nil {
		return fmt.Errorf("trust: add referral: %w", err)
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("trust: add referral: %w", err)
	}
	if evict != nil {
		delete(g.referrals, *evict)
	}
	c := *r
	g.referrals[k] = &c
	g.changeLocked()
	return nil
}

// Referrals returns the referrals held, newest first. The caller owns them.
func (g *Graph) Referrals() []*protocol.Referral {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*protocol.Referral, 0, len(g.referrals))
	for _, r := range g.referrals {
		c := *r
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *protocol.Referral) int {
		return cmp.Or(cmp.Compare(b.IssuedAt, a.IssuedAt), cmp.Compare(a.NodeID, b.NodeID), cmp.Compare(a.Subject, b.Subject))
	})
	return out
}
