package protocol

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// This file splits a lesson key into k-of-n Shamir shares for escrow nodes,
// so readers a key policy admits can still get the key while its author is
// offline.
//
// Shamir sharing is Cloudflare CIRCL's secretsharing over the scalar field
// of ristretto255 (the prime ℓ = 2^252 + 27742317777372353535851937790883648493;
// constant time for that group). A scalar holds less than 256 bits, so the
// key is shared as two halves: key[0:16] and key[16:32], each read as a
// little-endian integer below 2^128, each shared with its own random
// polynomial, both at the same points x = 1 … n. One share is ShareSize
// bytes:
//
//	x (1 byte, 1…n) ‖ f₁(x) (32 bytes, little-endian, < ℓ) ‖ f₂(x) (32 bytes, little-endian, < ℓ)
//
// Fewer than k shares say nothing about the key. Combining interpolates
// through every share given; a result that is not below 2^128 in both
// halves (fewer than k shares, or shares of different keys: the chance of
// passing is about 2^-248) is refused.

// Share sizes.
const (
	// ShareSize is the size of one key share.
	ShareSize = 1 + 2*32
	// SealedShareSize is the size of a share sealed to a node (SealKey).
	SealedShareSize = ShareSize + sealOverhead
)

// maxShares is the most shares SplitKey makes: x is one byte.
const maxShares = 255

var shareGroup = group.Ristretto255

// SplitKey splits a lesson key into n shares, any k of which (2 ≤ k ≤ n ≤
// 255) give it back with CombineShares.
func SplitKey(key []byte, n, k int) ([][]byte, error) {
	if len(key) != LessonKeySize {
		return nil, invalidf("split key: the key is %d bytes, want %d", len(key), LessonKeySize)
	}
	if k < 2 || n < k || n > maxShares {
		return nil, invalidf("split key: %d of %d shares: want 2 ≤ threshold ≤ shares ≤ %d", k, n, maxShares)
	}
	shares := make([][]byte, n)
	for i := range shares {
		shares[i] = make([]byte, ShareSize)
		shares[i][0] = byte(i + 1)
	}
	for half := range 2 {
		secret, err := halfScalar(key[16*half : 16*half+16])
		if err != nil {
			return nil, err
		}
		ss := secretsharing.New(rand.Reader, uint(k-1), secret).Share(uint(n))
		for i, s := range ss {
			v, err := s.Value.MarshalBinary()
			if err != nil || len(v) != 32 {
				return nil, fmt.Errorf("split key: encoding a share: %v", err)
			}
			copy(shares[i][1+32*half:], v)
			clear(v)
		}
		secret.SetUint64(0)
	}
	return shares, nil
}

// halfScalar reads 16 bytes as a little-endian scalar below 2^128.
func halfScalar(half []byte) (group.Scalar, error) {
	var b [32]byte
	copy(b[:], half)
	defer clear(b[:])
	s := shareGroup.NewScalar()
	if err := s.UnmarshalBinary(b[:]); err != nil {
		return nil, fmt.Errorf("split key: %v", err) // below 2^128 < ℓ: unreachable
	}
	return s, nil
}

// CombineShares returns the key that at least its threshold of shares (from
// SplitKey, in any order) give. Too few shares, shares of different keys,
// duplicates and malformed shares are refused with ErrInvalid.
func CombineShares(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, invalidf("combine shares: %d shares, want at least 2", len(shares))
	}
	if len(shares) > maxShares {
		return nil, invalidf("combine shares: %d shares, at most %d", len(shares), maxShares)
	}
	var seen [256]bool
	for i, s := range shares {
		if len(s) != ShareSize {
			return nil, invalidf("combine shares: share %d is %d bytes, want %d", i, len(s), ShareSize)
		}
		if s[0] == 0 || seen[s[0]] {
			return nil, invalidf("combine shares: share %d: x = %d is zero or repeated", i, s[0])
		}
		seen[s[0]] = true
	}
	key := make([]byte, LessonKeySize)
	for half := range 2 {
		ss := make([]secretsharing.Share, len(shares))
		for i, s := range shares {
			v := shareGroup.NewScalar()
			if err := v.UnmarshalBinary(s[1+32*half : 33+32*half]); err != nil {
				return nil, invalidf("combine shares: share %d is not a share (a value is not a reduced scalar)", i)
			}
			ss[i] = secretsharing.Share{ID: shareGroup.NewScalar().SetUint64(uint64(s[0])), Value: v}
		}
		secret, err := secretsharing.Recover(uint(len(ss)-1), ss)
		if err != nil {
			return nil, invalidf("combine shares: %v", err)
		}
		b, err := secret.MarshalBinary()
		if err != nil || len(b) != 32 {
			return nil, invalidf("combine shares: %v", err)
		}
		for _, c := range b[16:] {
			if c != 0 {
				clear(b)
				clear(key)
				return nil, invalidf("combine shares: they do not give a key: fewer than the threshold, or shares of different keys")
			}
		}
		copy(key[16*half:], b[:16])
		clear(b)
	}
	return key, nil
}

// Escrow is the escrow block of a KeyPolicy: k-of-n shares of the key, each
// sealed to one escrow node.
//
//	{"threshold": 2, "shares": [{"nodeId": "12D3KooW…", "sealedShare": "base64"}, …]}
type Escrow struct {
	// Threshold is k: how many shares give the key back.
	Threshold int `json:"threshold"`
	// Shares are the n shares, one per escrow node.
	Shares []EscrowShare `json:"shares"`
}

// EscrowShare is one escrow node's share, sealed to it.
type EscrowShare struct {
	// NodeID is the escrow node holding the share.
	NodeID string `json:"nodeId"`
	// SealedShare is the standard padded base64 of
	// SealKey(nodeId's key, share, ShareSealInfo(keyId, nodeId)).
	SealedShare string `json:"sealedShare"`
}

// NewEscrow splits key into one share per escrow node, threshold of which
// give it back, and seals each share to its node.
func NewEscrow(key []byte, keyID string, threshold int, nodes []string) (*Escrow, error) {
	if err := ValidateID(keyID); err != nil {
		return nil, fmt.Errorf("escrow: keyId: %w", err)
	}
	if len(nodes) > MaxEscrowShares {
		return nil, invalidf("escrow: %d escrow nodes, at most %d", len(nodes), MaxEscrowShares)
	}
	shares, err := SplitKey(key, len(nodes), threshold)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	e := &Escrow{Threshold: threshold}
	for i, id := range nodes {
		pub, err := PublicKeyOf(id)
		if err != nil {
			return nil, fmt.Errorf("escrow node %d: %w", i, err)
		}
		sealed, err := SealKey(pub, shares[i], ShareSealInfo(keyID, id))
		if err != nil {
			return nil, fmt.Errorf("escrow node %s: %w", id, err)
		}
		e.Shares = append(e.Shares, EscrowShare{NodeID: id, SealedShare: base64.StdEncoding.EncodeToString(sealed)})
	}
	if err := e.validate(""); err != nil {
		return nil, err
	}
	return e, nil
}

// OpenShare opens the share sealed to the escrow node whose key is key, for
// keyID. It fails with ErrDecrypt if the share was sealed to another node or
// for another key.
func (e *Escrow) OpenShare(key ed25519.PrivateKey, keyID string) ([]byte, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, err
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	for _, s := range e.Shares {
		if s.NodeID != nodeID {
			continue
		}
		sealed, err := base64.StdEncoding.DecodeString(s.SealedShare)
		if err != nil {
			return nil, invalidf("escrow share of %s: sealedShare is not base64", nodeID)
		}
		share, err := OpenKey(key, sealed, ShareSealInfo(keyID, nodeID))
		if err != nil {
			return nil, fmt.Errorf("escrow share of %s: %w", nodeID, err)
		}
		if len(share) != ShareSize {
			clear(share)
			return nil, invalidf("escrow share of %s: %d bytes, want %d", nodeID, len(share), ShareSize)
		}
		return share, nil
	}
	return nil, fmt.Errorf("escrow: %w: %s holds no share", ErrNotFound, nodeID)
}

// validate checks the escrow block; author, when set, may not hold a share.
func (e *Escrow) validate(author string) error {
	n := len(e.Shares)
	if n < 2 || n > MaxEscrowShares {
		return invalidf("escrow.shares: %d shares, want 2 to %d", n, MaxEscrowShares)
	}
	if e.Threshold < 2 || e.Threshold > n {
		return invalidf("escrow.threshold %d: want 2 to the number of shares (%d)", e.Threshold, n)
	}
	seen := make(map[string]bool, n)
	for i, s := range e.Shares {
		if _, err := PublicKeyOf(s.NodeID); err != nil {
			return fmt.Errorf("escrow.shares[%d].nodeId: %w", i, err)
		}
		if seen[s.NodeID] {
			return invalidf("escrow.shares[%d]: %s holds two shares", i, truncate(s.NodeID))
		}
		if s.NodeID == author {
			return invalidf("escrow.shares[%d]: the author holds the key already", i)
		}
		seen[s.NodeID] = true
		if err := checkBase64Len(fmt.Sprintf("escrow.shares[%d].sealedShare", i), s.SealedShare, SealedShareSize); err != nil {
			return err
		}
	}
	return nil
}
