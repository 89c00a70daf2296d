package store

import (
	"context"
	"fmt"
	"strings"

	dsq "github.com/ipfs/go-datastore/query"
)

// ListMeta calls fn with every key of the node's small state (SetMeta)
// that starts with prefix ("directory/registrant/"), and its value, in no
// particular order. An error fn returns stops the listing and is returned.
func (s *Store) ListMeta(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if prefix != "" {
		if err := checkMetaKey(strings.TrimSuffix(prefix, "/")); err != nil {
			return fmt.Errorf("store: list meta: %w", err)
		}
	}
	leave, err := s.beginRead()
	if err != nil {
		return fmt.Errorf("store: list meta %s: %w", prefix, err)
	}
	defer leave()
	res, err := s.ds.Query(ctx, dsq.Query{Prefix: nsNodeMeta + prefix})
	if err != nil {
		return fmt.Errorf("store: list meta %s: %w", prefix, err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("store: list meta %s: %w", prefix, r.Error)
		}
		k := strings.TrimPrefix(r.Key, nsNodeMeta)
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if err := fn(k, r.Value); err != nil {
			return err
		}
	}
	return nil
}
