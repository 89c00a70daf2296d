package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ds "github.com/ipfs/go-datastore"
)

// Limits of the node's metadata (GetMeta, SetMeta).
const (
	// MaxMetaKeyLength caps a metadata key.
	MaxMetaKeyLength = 256
	// MaxMetaSize caps a metadata value.
	MaxMetaSize = 1 << 20
)

// checkMetaKey accepts short names such as "follow" or "sync/<peer>":
// segments of letters, digits, '_', '-', '.' and '@', separated by single
// '/'; no segment is "." or "..".
func checkMetaKey(key string) error {
	if key == "" || len(key) > MaxMetaKeyLength {
		return invalidf("meta key %q: want 1 to %d bytes", truncate(key), MaxMetaKeyLength)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return invalidf("meta key %q: empty, \".\" or \"..\" segment", truncate(key))
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '@') {
				return invalidf("meta key %q: use letters, digits, '_', '-', '.', '@' and '/'", truncate(key))
			}
		}
	}
	return nil
}

func metaKey(key string) ds.Key { return ds.RawKey(nsNodeMeta + key) }

// GetMeta returns a value of the node's small durable state (followed
// topics, sync checkpoints, ...) set with SetMeta; an error wrapping
// ErrNotFound if it is unset.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	if err := checkMetaKey(key); err != nil {
		return nil, fmt.Errorf("store: get meta: %w", err)
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, fmt.Errorf("store: get meta %s: %w", key, err)
	}
	defer leave()
	v, err := s.ds.Get(ctx, metaKey(key))
	if errors.Is(err, ds.ErrNotFound) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta durably sets a value of the node's small state. Keys are short
// names like "follow" or "sync/<peer>" (letters, digits, '_', '-', '.', '@'
// and '/', at most MaxMetaKeyLength bytes); values are at most MaxMetaSize
// bytes. A nil value is stored as empty; DeleteMeta removes a key.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := checkMetaKey(key); err != nil {
		return fmt.Errorf("store: set meta: %w", err)
	}
	if len(value) > MaxMetaSize {
		return fmt.Errorf("store: set meta %s: %w", key, invalidf("value is %d bytes, the limit is %d", len(value), MaxMetaSize))
	}
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: set meta %s: %w", key, err)
	}
	defer leave()
	if value == nil {
		value = []byte{}
	}
	if err := s.ds.Put(ctx, metaKey(key), append([]byte(nil), value...)); err != nil {
		return fmt.Errorf("store: set meta %s: %w", key, err)
	}
	return nil
}

// DeleteMeta durably removes a key of the node's small state; removing an
// unset key is not an error.
func (s *Store) DeleteMeta(ctx context.Context, key string) error {
	if err := checkMetaKey(key); err != nil {
		return fmt.Errorf("store: delete meta: %w", err)
	}
	leave, err := s.beginWrite()
	if err != nil {
		return fmt.Errorf("store: delete meta %s: %w", key, err)
	}
	defer leave()
	if err := s.ds.Delete(ctx, metaKey(key)); err != nil {
		return fmt.Errorf("store: delete meta %s: %w", key, err)
	}
	return nil
}
