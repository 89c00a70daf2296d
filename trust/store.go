package trust

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/meshprotocol/mesh/protocol"
)

// Datastore layout:
//
//	/edges/<nodeId>                     Edge JSON
//	/vouches/<voucher>                  protocol.Vouch JSON, as received
//	/referrals/<nodeId>/<subject>       protocol.Referral JSON, as received
var (
	edgePrefix     = ds.NewKey("/edges")
	vouchPrefix    = ds.NewKey("/vouches")
	referralPrefix = ds.NewKey("/referrals")
)

func edgeKey(id string) ds.Key  { return edgePrefix.ChildString(id) }
func vouchKey(id string) ds.Key { return vouchPrefix.ChildString(id) }
func referralKey(k refKey) ds.Key {
	return referralPrefix.ChildString(k.from).ChildString(k.subject)
}

func encodeEdge(e Edge) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("trust: encode edge: %w", err)
	}
	return b, nil
}

// load reads the stored graph. An unreadable edge is an error (skipping it
// could unblock a node); an unreadable vouch or referral is logged and
// skipped.
func (g *Graph) load(ctx context.Context) error {
	err := g.each(ctx, edgePrefix, func(key string, value []byte) error {
		var e Edge
		if err := json.Unmarshal(value, &e); err != nil {
			return fmt.Errorf("trust: stored edge %s: %w", key, err)
		}
		if err := g.checkEdge(e); err != nil || key != edgeKey(e.NodeID).String() {
			return fmt.Errorf("trust: stored edge %s is invalid (%v): remove it or fix the datastore", key, err)
		}
		g.edges[e.NodeID] = e
		return nil
	})
	if err != nil {
		return err
	}
	err = g.each(ctx, vouchPrefix, func(key string, value []byte) error {
		v, err := protocol.DecodeVouch(value)
		if err != nil || key != vouchKey(v.NodeID).String() {
			g.log.Warn("trust: skipping unreadable stored vouch", "key", key, "err", err)
			return nil
		}
		g.vouches[v.NodeID] = v
		return nil
	})
	if err != nil {
		return err
	}
	return g.each(ctx, referralPrefix, func(key string, value []byte) error {
		r, err := protocol.DecodeReferral(value)
		if err != nil {
			g.log.Warn("trust: skipping unreadable stored referral", "key", key, "err", err)
			return nil
		}
		k := refKey{r.NodeID, r.Subject}
		if key != referralKey(k).String() {
			g.log.Warn("trust: skipping misfiled stored referral", "key", key)
			return nil
		}
		g.referrals[k] = r
		return nil
	})
}

// each calls fn for every entry under prefix.
func (g *Graph) each(ctx context.Context, prefix ds.Key, fn func(key string, value []byte) error) error {
	res, err := g.ds.Query(ctx, query.Query{Prefix: prefix.String()})
	if err != nil {
		return fmt.Errorf("trust: load %s: %w", prefix, err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return fmt.Errorf("trust: load %s: %w", prefix, r.Error)
		}
		if !strings.HasPrefix(r.Key, prefix.String()+"/") {
			continue
		}
		if err := fn(r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}
