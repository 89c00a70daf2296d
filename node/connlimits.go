package node

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/p2paddr"
	"github.com/meshprotocol/mesh/node/connlimit"
)

// DefaultMaxConnsPerIP is Config.MaxConnsPerIP's default: libp2p's own
// per-IP limit, applied to loopback too (see package connlimit).
const DefaultMaxConnsPerIP = connlimit.DefaultPerIP

// connLimitOptions returns the libp2p options of the node's resource and
// connection managers. They give way to a resource or connection manager
// set in Config.Libp2pOptions (then no allowlist is kept).
func (n *Node) connLimitOptions() ([]libp2p.Option, error) {
	l, err := connlimit.New(n.cfg.MaxConnsPerIP)
	if err != nil {
		return nil, err
	}
	n.limits = l
	return []libp2p.Option{l.Option()}, nil
}

// startConnKeeper protects the peers the node relies on: bootstrap and
// relay peers, and trusted ones (connlimit.Limits.Keep).
func (n *Node) startConnKeeper() {
	var static []peer.AddrInfo
	for _, list := range [][]string{n.cfg.Bootstrap, n.cfg.NAT.StaticRelays} {
		for _, a := range list {
			if ai, err := p2paddr.ParseAddrInfo(a); err == nil {
				static = append(static, *ai)
			}
		}
	}
	n.wg.Add(1)
	n.limits.Keep(n.ctx, n.host, n.trust, static, n.wg.Done)
}
