package main

import (
	"context"
	"fmt"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// benchStore is what the scenarios need of a store.
type benchStore struct {
	s *store.Store
}

// openStore opens a persistent store in dir, with expiry sweeps off so that
// nothing but the benchmark runs.
func openStore(dir string) (*benchStore, error) {
	s, err := store.Open(store.Options{Dir: dir, SweepInterval: -1})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	return &benchStore{s: s}, nil
}

// PutBatch stores lessons in one durable commit and fails if any was refused.
func (b *benchStore) PutBatch(ctx context.Context, lessons []*protocol.Lesson) error {
	_, err := b.s.PutBatch(ctx, lessons)
	return err
}

// Search runs a text query and returns the number of hits.
func (b *benchStore) Search(ctx context.Context, text string, limit int) (int, error) {
	res, err := b.s.Search(ctx, store.Query{Text: text, Limit: limit})
	if err != nil {
		return 0, err
	}
	return len(res.Hits), nil
}

// Reindex rebuilds the full-text index from the datastore.
func (b *benchStore) Reindex(ctx context.Context) error { return b.s.Reindex(ctx) }

// Close closes the store; closing twice is harmless here.
func (b *benchStore) Close() error {
	if b.s == nil {
		return nil
	}
	s := b.s
	b.s = nil
	return s.Close()
}
