package dht

import (
	"fmt"
	"time"

	record "github.com/libp2p/go-libp2p-record"

	"github.com/meshprotocol/mesh/protocol"
)

// NodeRecordValidator is the DHT validator of the /mesh-node namespace. A
// value is valid when it decodes as a protocol.NodeRecord, names the node
// of its key, is signed by that node's own key (the key embedded in the
// node ID), is not issued in the future beyond the timestamp window, and has
// not expired. Of several valid values Select picks the newest issuedAt.
//
// Every DHT server runs it on every PUT_VALUE, and every reader on every
// value it receives: a record signed by another key, or older than the one a
// server holds, never replaces it.
type NodeRecordValidator struct {
	// Now is the validator's clock. Nil means time.Now.
	Now func() time.Time
}

var _ record.Validator = NodeRecordValidator{}

func (v NodeRecordValidator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate checks one value stored under key.
func (v NodeRecordValidator) Validate(key string, value []byte) error {
	_, err := v.decode(key, value)
	return err
}

// decode decodes and verifies value as the record under key.
func (v NodeRecordValidator) decode(key string, value []byte) (*protocol.NodeRecord, error) {
	id, err := parseNodeKey(key)
	if err != nil {
		return nil, err
	}
	r, err := protocol.DecodeNodeRecord(value)
	if err != nil {
		return nil, err
	}
	if r.NodeID != id.String() {
		return nil, fmt.Errorf("%w: node record of %s stored under the key of %s", protocol.ErrKeyMismatch, truncate(r.NodeID), id)
	}
	if err := protocol.VerifyNodeRecord(r, protocol.VerifyOptions{Now: v.now()}); err != nil {
		return nil, err
	}
	return r, nil
}

// Select returns the index of the best of values: the valid record with the
// newest issuedAt; on a tie the one that expires last, then the first.
// Invalid values are never selected; if none is valid it is an error.
func (v NodeRecordValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bestRec *protocol.NodeRecord
	for i, val := range values {
		r, err := v.decode(key, val)
		if err != nil {
			continue
		}
		if bestRec == nil || r.IssuedAt > bestRec.IssuedAt ||
			(r.IssuedAt == bestRec.IssuedAt && r.ExpiresAt > bestRec.ExpiresAt) {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid node record among %d values for %s", protocol.ErrInvalid, len(values), truncate(key))
	}
	return best, nil
}
