package store

import (
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
)

// Namespace returns a view of the store's datastore under /ns/<name>, for
// other parts of the node that keep durable state of their own (the trust
// graph). Writes through it are as durable as the store's own. The store
// never reads or writes those keys.
func (s *Store) Namespace(name string) ds.Batching {
	return namespace.Wrap(s.ds, ds.NewKey("/ns/"+name))
}
