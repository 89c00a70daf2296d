package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Plain is a lesson a reader decrypted. It lives in memory only.
type Plain struct {
	Lesson *protocol.Lesson
	KeyID  string
	// ExpiresAt is when the key and the plaintext are dropped from memory.
	ExpiresAt time.Time
	// From says where the key came from: "memory", "author", "this node",
	// or "escrow (k of n: node, node)".
	From string
}

// Read verifies el and decrypts it. The key comes from memory while it is
// valid, else from the author (over /mesh/keys/1.0.0), else from k escrow
// nodes. The key and the plaintext are kept in memory until the answer's
// expiresAt, and dropped at once when a revocation or rotation of the
// lesson arrives. An error says why the lesson cannot be read: it matches
// protocol.ErrKeyRevoked, ErrAccessDenied, ErrUnreachable (the author and
// escrow nodes could not be reached), ErrInvalidSignature, ErrDecrypt
// (tampered), ...
func (s *Service) Read(ctx context.Context, el *protocol.EncryptedLesson) (*Plain, error) {
	if err := protocol.VerifyEncrypted(el, protocol.VerifyOptions{Now: s.now(), AllowOld: true}); err != nil {
		return nil, fmt.Errorf("read %s: %w", el.Key(), err)
	}
	if el.Publication.Expired(s.now().UnixMilli()) {
		return nil, fmt.Errorf("read %s: %w: it expired at %s", el.Key(), protocol.ErrNotFound, time.UnixMilli(el.Publication.ExpiresAt).UTC().Format(time.RFC3339))
	}
	keyID := el.Encryption.KeyID
	digest := sealedDigest(el)
	if l, exp, ok := s.cache.plain(keyID, digest); ok {
		return &Plain{Lesson: l, KeyID: keyID, ExpiresAt: exp, From: "memory"}, nil
	}
	key, exp, from, err := s.fetchKey(ctx, el)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", el.Key(), err)
	}
	defer clear(key)
	l, err := protocol.DecryptLesson(el, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", el.Key(), err)
	}
	if el.Signature.NodeID != s.self {
		// The plaintext is kept only if it outlives the key: a reading
		// that expires sooner is not held past its expiry.
		keep := l
		if pe := el.Publication.ExpiresAt; pe != 0 && time.UnixMilli(pe).Before(exp) {
			keep = nil
		}
		s.cache.put(el.Key(), keyID, key, exp, keep, digest)
	}
	return &Plain{Lesson: l.Clone(), KeyID: keyID, ExpiresAt: exp, From: from}, nil
}

// sealedDigest names everything a decryption depends on: the AAD (key ID,
// lesson ID, publisher), the nonce, the tag and the ciphertext. Plaintext
// is served from memory only for exactly what decrypted to it.
func sealedDigest(el *protocol.EncryptedLesson) [sha256.Size]byte {
	h := sha256.New()
	h.Write(protocol.EncryptionAAD(el.Encryption.KeyID, el.LessonID, el.Signature.NodeID))
	for _, part := range []string{el.Encryption.Nonce, el.Encryption.Tag, el.Ciphertext} {
		h.Write([]byte{0})
		h.Write([]byte(part))
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Status says whether el's key is available to this node, fetching it if
// need be, without decrypting.
func (s *Service) Status(ctx context.Context, el *protocol.EncryptedLesson) *api.KeyStatus {
	st := &api.KeyStatus{KeyID: el.Encryption.KeyID, Key: el.Key()}
	if _, exp, ok := s.cache.key(el.Encryption.KeyID); ok {
		st.Status, st.From = api.KeyAvailable, "memory"
		st.Detail = "this node holds the key in memory until " + exp.UTC().Format(time.RFC3339)
		return st
	}
	key, exp, from, err := s.fetchKey(ctx, el)
	clear(key)
	switch {
	case err == nil:
		st.Status, st.From = api.KeyAvailable, from
		st.Detail = "the key is served to this node (until " + exp.UTC().Format(time.RFC3339) + ")"
	case errors.Is(err, protocol.ErrKeyRevoked):
		st.Status, st.Detail = api.KeyRevoked, err.Error()
		var rk *revokedErr
		if errors.As(err, &rk) {
			st.RevokedAt = rk.at
		}
	case errors.Is(err, protocol.ErrAccessDenied):
		st.Status, st.Detail = api.KeyDenied, err.Error()
	default:
		st.Status, st.Detail = api.KeyUnreachable, err.Error()
	}
	return st
}

// revokedErr is a KEY_REVOKED answer, with its time.
type revokedErr struct {
	err error
	at  int64
}

func (e *revokedErr) Error() string { return e.err.Error() }
func (e *revokedErr) Unwrap() error { return e.err }

// fetchKey finds el's key: this node's own, else from the author, else
// from its escrow nodes. It checks first what the node knows: a revoked
// key or lesson is not asked for.
func (s *Service) fetchKey(ctx context.Context, el *protocol.EncryptedLesson) (key []byte, exp time.Time, from string, err error) {
	keyID, author := el.Encryption.KeyID, el.Signature.NodeID
	if r, err := s.store.KeyRevoked(ctx, keyID); err == nil {
		return nil, exp, "", &revokedErr{fmt.Errorf("key %s: %w (%s, this node knows)", keyID, protocol.ErrKeyRevoked, r.Reason), r.RevokedAt}
	}
	if rev, err := s.store.Tombstone(ctx, el.Key()); err == nil {
		return nil, exp, "", &revokedErr{fmt.Errorf("key %s: %w: the lesson was revoked at %s", keyID, protocol.ErrKeyRevoked, time.UnixMilli(rev.RevokedAt).UTC().Format(time.RFC3339)), rev.RevokedAt}
	}
	if author == s.self {
		k, err := s.currentKey(ctx, keyID)
		if err != nil {
			return nil, exp, "", err
		}
		return slices.Clone(k.Key), s.now().Add(s.cfg.KeyTTL), "this node", nil
	}
	if key, exp, ok := s.cache.key(keyID); ok {
		return key, exp, "memory", nil
	}
	if s.host == nil {
		return nil, exp, "", fmt.Errorf("%w: the node is offline: it cannot ask for the key", protocol.ErrUnavailable)
	}
	// A connected author is asked, and escrow only if it cannot answer.
	// An author that is not connected may be offline, and dialling it can
	// take a while: then the author and the escrow nodes are asked at once,
	// and the first key wins. An escrow node answers by the same signed
	// policy, never for a key it knows revoked, and re-learns its authors'
	// revocations after a start before it answers at all.
	p, err := peer.Decode(author)
	if err != nil {
		return nil, exp, "", err
	}
	if len(s.host.Network().ConnsToPeer(p)) > 0 {
		key, exp, authorErr := s.askAuthor(ctx, el)
		if authorErr == nil {
			return key, exp, "author", nil
		}
		if errors.Is(authorErr, protocol.ErrKeyRevoked) || errors.Is(authorErr, protocol.ErrAccessDenied) {
			return nil, exp, "", authorErr
		}
		key, exp, from, escrowErr := s.askEscrow(ctx, el)
		return key, exp, from, s.bothFailed(authorErr, escrowErr)
	}
	type answer struct {
		key    []byte
		exp    time.Time
		from   string
		err    error
		author bool
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan answer, 2)
	go func() {
		key, exp, err := s.askAuthor(actx, el)
		ch <- answer{key, exp, "author", err, true}
	}()
	go func() {
		key, exp, from, err := s.askEscrow(actx, el)
		ch <- answer{key, exp, from, err, false}
	}()
	var authorErr, escrowErr error
	for range 2 {
		a := <-ch
		switch {
		case a.err == nil:
			cancel()
			go func() { // the other answer, if it brings a key, is dropped
				if b := <-ch; b.key != nil {
					clear(b.key)
				}
			}()
			return a.key, a.exp, a.from, nil
		case a.author:
			authorErr = a.err
			if errors.Is(a.err, protocol.ErrKeyRevoked) || errors.Is(a.err, protocol.ErrAccessDenied) {
				cancel()
				go func() {
					if b := <-ch; b.key != nil {
						clear(b.key)
					}
				}()
				return nil, exp, "", a.err
			}
		default:
			escrowErr = a.err
		}
	}
	return nil, exp, "", s.bothFailed(authorErr, escrowErr)
}

// bothFailed is the error of a key neither the author nor escrow gave:
// the escrow nodes' KEY_REVOKED or ACCESS_DENIED if they said so, else
// UNREACHABLE with both reasons.
func (s *Service) bothFailed(authorErr, escrowErr error) error {
	if escrowErr == nil {
		return nil
	}
	if errors.Is(escrowErr, protocol.ErrKeyRevoked) || errors.Is(escrowErr, protocol.ErrAccessDenied) {
		return escrowErr
	}
	return fmt.Errorf("%w: the author could not give the key (%v), and escrow could not either (%v)", protocol.ErrUnreachable, authorErr, escrowErr)
}

// ask sends a key request to p and decodes its answer; a KEY_REVOKED
// answer is returned as a revokedErr, after its revocation (if any) is
// verified and applied.
func (s *Service) ask(ctx context.Context, p peer.ID, el *protocol.EncryptedLesson) (*protocol.KeyResponse, error) {
	keyID := el.Encryption.KeyID
	req, _ := (&protocol.KeyRequest{Type: protocol.MsgKeyRequest, KeyID: keyID}).Encode()
	if pad := min(s.cfg.MinRequestSize, protocol.MaxKeyRequestSize) - len(req); pad > 0 {
		req = append(req, bytes.Repeat([]byte{' '}, pad)...)
	}
	b, err := s.call(ctx, p, protocol.ProtocolKeys, req, protocol.MaxKeyResponseSize)
	if err != nil {
		return nil, err
	}
	resp, err := protocol.DecodeKeyResponse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s answered: %v", protocol.ErrUnreachable, p, err)
	}
	if resp.KeyID != keyID {
		return nil, fmt.Errorf("%w: %s answered about key %s", protocol.ErrUnreachable, p, resp.KeyID)
	}
	if resp.Error == protocol.CodeKeyRevoked {
		if rev := resp.Revocation; rev != nil && rev.Key() == el.Key() &&
			protocol.VerifyRevocation(rev, protocol.VerifyOptions{Now: s.now(), AllowOld: true}) == nil {
			if s.deps.Revoke != nil {
				_ = s.deps.Revoke(ctx, rev)
			}
			s.OnRevocation(ctx, rev)
		}
		return nil, &revokedErr{resp.Err(), resp.RevokedAt}
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	if resp.Policy != nil && !s.policyFits(resp.Policy, el) {
		resp.Policy = nil
	}
	return resp, nil
}

// policyFits reports whether p is the author's verified policy of el's key.
func (s *Service) policyFits(p *protocol.KeyPolicy, el *protocol.EncryptedLesson) bool {
	return p.KeyID == el.Encryption.KeyID && p.NodeID == el.Signature.NodeID && p.LessonID == el.LessonID &&
		protocol.VerifyKeyPolicy(p, protocol.VerifyOptions{Now: s.now()}) == nil
}

// askAuthor asks el's author for its key.
func (s *Service) askAuthor(ctx context.Context, el *protocol.EncryptedLesson) ([]byte, time.Time, error) {
	author, err := peer.Decode(el.Signature.NodeID)
	if err != nil {
		return nil, time.Time{}, err
	}
	resp, err := s.ask(ctx, author, el)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("the author: %w", err)
	}
	key, err := resp.RawKey()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("the author: %w", err)
	}
	if resp.Policy != nil {
		s.cache.rememberPolicy(resp.Policy)
	}
	return key, s.capExpiry(resp.ExpiresAt), nil
}

// capExpiry is the time until which a key answered with expiresAt may be
// kept: never past it, and never more than the node's own KeyTTL from now.
func (s *Service) capExpiry(expiresAt int64) time.Time {
	exp := time.UnixMilli(expiresAt)
	if limit := s.now().Add(s.cfg.KeyTTL); exp.After(limit) {
		exp = limit
	}
	return exp
}

// askEscrow gathers k shares of el's key from its escrow nodes: those of a
// policy this node has seen, else whichever connected peers hold one (the
// first share answer carries the policy, which names the others). It asks
// them all at once and stops as soon as k shares of holders the policy
// names are in: a slow or offline escrow node costs nothing while k others
// answer.
func (s *Service) askEscrow(ctx context.Context, el *protocol.EncryptedLesson) ([]byte, time.Time, string, error) {
	keyID := el.Encryption.KeyID
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the answers still out are not waited for
	results := make(chan escrowAnswer, maxEscrowAsk+protocol.MaxEscrowShares)
	asked := map[string]bool{el.Signature.NodeID: true, s.self: true}
	pending := 0
	ask := func(p peer.ID) {
		if asked[p.String()] {
			return
		}
		asked[p.String()] = true
		pending++
		go func() {
			a := escrowAnswer{node: p.String()}
			resp, err := s.ask(ctx, p, el)
			if err == nil {
				var raw []byte
				if raw, err = base64.StdEncoding.DecodeString(resp.Share); err != nil || resp.Share == "" {
					err = fmt.Errorf("%w: %s answered without a share", protocol.ErrUnreachable, p)
				}
				a.share, a.exp, a.p = raw, resp.ExpiresAt, resp.Policy
			}
			a.err = err
			results <- a
		}()
	}
	askHolders := func(p *protocol.KeyPolicy) {
		if p.Escrow == nil {
			return
		}
		for _, sh := range p.Escrow.Shares {
			if id, err := peer.Decode(sh.NodeID); err == nil {
				ask(id)
			}
		}
	}
	policy := s.cache.policy(keyID)
	if policy != nil {
		askHolders(policy)
	} else {
		for _, p := range s.keyPeers() {
			ask(p)
		}
	}
	shares := map[string]escrowAnswer{}
	var errs []error
	enough := func() bool {
		if policy == nil || policy.Escrow == nil {
			return false
		}
		n := 0
		for id := range shares {
			if named(policy, id) {
				n++
			}
		}
		return n >= policy.Escrow.Threshold
	}
	for pending > 0 && !enough() {
		var a escrowAnswer
		select {
		case a = <-results:
		case <-ctx.Done():
			return nil, time.Time{}, "", fmt.Errorf("%w: key %s: escrow: %v", protocol.ErrUnreachable, keyID, ctx.Err())
		}
		pending--
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		shares[a.node] = a
		if policy == nil && a.p != nil {
			policy = a.p
			s.cache.rememberPolicy(policy)
			askHolders(policy)
		}
	}
	return s.combineEscrow(keyID, policy, shares, errs)
}

// escrowAnswer is an escrow node's answer to askEscrow.
type escrowAnswer struct {
	node  string
	share []byte
	exp   int64
	p     *protocol.KeyPolicy
	err   error
}

// combineEscrow combines the shares gathered of the holders policy names
// into the key, with the time until which it may be kept and where it came
// from.
func (s *Service) combineEscrow(keyID string, policy *protocol.KeyPolicy, shares map[string]escrowAnswer, errs []error) ([]byte, time.Time, string, error) {
	if policy == nil || policy.Escrow == nil {
		return nil, time.Time{}, "", s.escrowFailure(keyID, errs, "no escrow node of this key was found among the connected peers")
	}
	var got [][]byte
	var from []string
	exp := int64(0)
	for _, id := range sortedKeys(shares) {
		a := shares[id]
		if !named(policy, id) {
			continue
		}
		got = append(got, a.share)
		from = append(from, shortID(id))
		if exp == 0 || a.exp < exp {
			exp = a.exp
		}
	}
	k := policy.Escrow.Threshold
	if len(got) < k {
		return nil, time.Time{}, "", s.escrowFailure(keyID, errs, fmt.Sprintf("%d of the %d shares needed answered", len(got), k))
	}
	key, err := protocol.CombineShares(got[:k])
	if err != nil {
		return nil, time.Time{}, "", fmt.Errorf("key %s: the escrow shares do not combine: %w", keyID, err)
	}
	return key, s.capExpiry(exp), fmt.Sprintf("escrow (%d of %d: %s)", k, len(policy.Escrow.Shares), strings.Join(from[:k], ", ")), nil
}

// escrowFailure is the error of an escrow attempt that did not gather
// enough shares: KEY_REVOKED or ACCESS_DENIED if an escrow node said so,
// else UNREACHABLE with what happened.
func (s *Service) escrowFailure(keyID string, errs []error, what string) error {
	for _, e := range errs {
		if errors.Is(e, protocol.ErrKeyRevoked) {
			return e
		}
	}
	for _, e := range errs {
		if errors.Is(e, protocol.ErrAccessDenied) {
			return e
		}
	}
	return fmt.Errorf("%w: key %s: escrow: %s", protocol.ErrUnreachable, keyID, what)
}

// keyPeers are the connected peers that speak the key protocol, at most
// maxEscrowAsk.
func (s *Service) keyPeers() []peer.ID {
	var out []peer.ID
	for _, p := range s.host.Network().Peers() {
		if s.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		if ok, _ := s.host.Peerstore().SupportsProtocols(p, libp2pproto.ID(protocol.ProtocolKeys)); len(ok) == 0 {
			continue
		}
		out = append(out, p)
		if len(out) == maxEscrowAsk {
			break
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

// retiredBy is the revocation of old's key by a newer policy of its lesson
// under another key: a rotation.
func retiredBy(old, newer *protocol.KeyPolicy) store.RevokedKey {
	return store.RevokedKey{KeyID: old.KeyID, LessonID: old.LessonID, NodeID: old.NodeID, RevokedAt: newer.IssuedAt, Reason: store.KeyRetired}
}

// readerCache is a reader's memory of keys and what they decrypted. It is
// safe for concurrent use.
type readerCache struct {
	s *Service

	mu       sync.Mutex
	entries  map[string]*cached // by key ID
	policies map[string]*protocol.KeyPolicy
	wake     chan struct{}
}

type cached struct {
	lessonKey string // lessonId@nodeId
	key       []byte
	expires   time.Time
	lesson    *protocol.Lesson
	digest    [sha256.Size]byte // sealedDigest of what lesson was decrypted from
}

// maxPolicies bounds the policies remembered.
const maxPolicies = 4096

func (c *readerCache) init(s *Service) {
	c.s = s
	c.entries = map[string]*cached{}
	c.policies = map[string]*protocol.KeyPolicy{}
	c.wake = make(chan struct{}, 1)
}

func (c *readerCache) put(lessonKey, keyID string, key []byte, exp time.Time, l *protocol.Lesson, digest [sha256.Size]byte) {
	if !exp.After(c.s.now()) {
		return
	}
	c.mu.Lock()
	if old := c.entries[keyID]; old != nil {
		clear(old.key)
	}
	e := &cached{lessonKey: lessonKey, key: slices.Clone(key), expires: exp, digest: digest}
	if l != nil {
		e.lesson = l.Clone()
	}
	c.entries[keyID] = e
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// key returns a copy of a valid cached key.
func (c *readerCache) key(keyID string) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[keyID]
	if e == nil || !e.expires.After(c.s.now()) {
		return nil, time.Time{}, false
	}
	return slices.Clone(e.key), e.expires, true
}

// plain returns a copy of the cached plaintext of the ciphertext digest.
func (c *readerCache) plain(keyID string, digest [sha256.Size]byte) (*protocol.Lesson, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[keyID]
	if e == nil || !e.expires.After(c.s.now()) || e.digest != digest || e.lesson == nil {
		return nil, time.Time{}, false
	}
	return e.lesson.Clone(), e.expires, true
}

func (c *readerCache) dropLocked(keyID string) {
	if e := c.entries[keyID]; e != nil {
		clear(e.key)
		e.lesson = nil
		delete(c.entries, keyID)
	}
}

func (c *readerCache) forgetKey(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(keyID)
}

// forgetLesson drops every key of a lesson, and what it decrypted.
func (c *readerCache) forgetLesson(lessonKey string) { c.forgetLessonExcept(lessonKey, "") }

// forgetLessonExcept drops every key of a lesson but keep.
func (c *readerCache) forgetLessonExcept(lessonKey, keep string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		if e.lessonKey == lessonKey && id != keep {
			c.dropLocked(id)
		}
	}
	for id, p := range c.policies {
		if p.Key() == lessonKey && id != keep {
			delete(c.policies, id)
		}
	}
}

func (c *readerCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.entries {
		c.dropLocked(id)
	}
	clear(c.policies)
}

func (c *readerCache) rememberPolicy(p *protocol.KeyPolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.policies) >= maxPolicies {
		clear(c.policies)
	}
	c.policies[p.KeyID] = p
}

func (c *readerCache) policy(keyID string) *protocol.KeyPolicy {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.policies[keyID]
}

// list describes the keys held in memory.
func (c *readerCache) list() []api.KeyInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []api.KeyInfo
	now := c.s.now()
	for id, e := range c.entries {
		if !e.expires.After(now) {
			continue
		}
		lessonID, author, _ := strings.Cut(e.lessonKey, "@")
		info := api.KeyInfo{KeyID: id, LessonID: lessonID, NodeID: author, Role: api.KeyRoleReader, CachedUntil: e.expires.UnixMilli()}
		if p := c.policies[id]; p != nil {
			pi := policyInfo(p)
			pi.Role, pi.CachedUntil = info.Role, info.CachedUntil
			info = pi
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out
}

// Cached reports whether the node holds keyID's key (and what it
// decrypted) in memory.
func (s *Service) Cached(keyID string) bool {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	return s.cache.entries[keyID] != nil
}

// sweepLoop drops every entry at its expiry.
func (c *readerCache) sweepLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c.mu.Lock()
		now := c.s.now()
		next := now.Add(time.Hour)
		for id, e := range c.entries {
			if !e.expires.After(now) {
				c.dropLocked(id)
			} else if e.expires.Before(next) {
				next = e.expires
			}
		}
		c.mu.Unlock()
		t.Reset(max(next.Sub(now), 10*time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
	}
}
