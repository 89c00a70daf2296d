package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// vouchTTL is how long this node's signed vouch is valid; it is re-signed
// when half of it has passed or the full-trust edges change.
const vouchTTL = 24 * time.Hour

// vouchRefresh is how often vouches are fetched again from fully trusted
// peers that stay connected.
const vouchRefresh = 30 * time.Minute

func (n *Node) openTrust() error {
	g, err := trust.New(trust.Config{
		Datastore: n.store.Namespace("trust"),
		Self:      n.id.String(),
		MaxDepth:  n.cfg.TrustDepth,
		Now:       n.now,
		Logger:    n.log,
	})
	if err != nil {
		return fmt.Errorf("node: trust graph: %w", err)
	}
	n.trust = g
	return nil
}

// acceptsPublisher says whether lessons of nodeID may be stored: never from a
// blocked node; otherwise from any node with a trust path that is more than
// limited, or from anyone if Config.AcceptUntrusted is set.
func (n *Node) acceptsPublisher(nodeID string) bool {
	if nodeID == n.id.String() {
		return true
	}
	if n.trust.Blocked(nodeID) {
		return false
	}
	if n.cfg.AcceptUntrusted || n.cfg.Directory.Enabled { // a directory indexes any publisher not blocked
		return true
	}
	if n.trust.Limited(nodeID) {
		return false
	}
	_, _, ok := n.trust.Path(nodeID)
	return ok
}

// trustGater refuses connections with blocked nodes, both ways.
type trustGater struct{ n *Node }

func (g trustGater) InterceptPeerDial(p peer.ID) bool             { return !g.blocked(p) }
func (g trustGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g trustGater) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (g trustGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
func (g trustGater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.blocked(p)
}

func (g trustGater) blocked(p peer.ID) bool {
	return g.n.trust != nil && g.n.trust.Blocked(p.String())
}

// startTrust serves this node's vouch to fully trusted peers, fetches theirs,
// and acts on trust changes at once: blocked peers are disconnected, newly
// fully trusted ones asked for their vouch.
func (n *Node) startTrust() error {
	n.host.SetStreamHandler(libp2pproto.ID(protocol.ProtocolTrust),
		streamrpc.Serve(n.ctx, protocol.MaxTrustRequestSize, streamrpc.Timeout, n.handleTrust))
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("node: event bus: %w", err)
	}
	n.wg.Add(1)
	go n.trustLoop(sub)
	return nil
}

// trustLoop acts on trust changes and on peers as they are identified: it
// asks a fully trusted peer for its vouch and syncs with it (sync.go), and
// re-fetches vouches every vouchRefresh.
func (n *Node) trustLoop(sub event.Subscription) {
	defer n.wg.Done()
	defer sub.Close()
	tick := time.NewTicker(vouchRefresh)
	defer tick.Stop()
	changed := n.trust.Changed()
	full := n.fullEdges()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			e := ev.(event.EvtPeerIdentificationCompleted)
			n.maybeFetchVouch(e.Peer)
			n.syncOnIdentified(e)
			n.keysOnIdentified(e)
		case <-changed:
			// Any change: drop blocked peers, and bring in the lessons of
			// refused publishers now accepted. Only a peer newly trusted
			// fully is asked for its vouch, and this node's own vouch is
			// pushed only when its own full-trust edges changed: a vouch
			// arriving changes the graph too, and asking or telling
			// everyone again on every change would never settle.
			changed = n.trust.Changed()
			n.enforceBlocks()
			n.retryPending()
			now := n.fullEdges()
			for id := range now {
				if !full[id] {
					if p, err := peer.Decode(id); err == nil && n.host.Network().Connectedness(p) == network.Connected {
						n.maybeFetchVouch(p)
					}
				}
			}
			if !maps.Equal(now, full) {
				n.pushVouch(now)
			}
			full = now
		case <-tick.C:
			n.refreshVouches()
		}
	}
}

// fullEdges is the set of nodes this node trusts fully and directly.
func (n *Node) fullEdges() map[string]bool {
	out := map[string]bool{}
	for _, e := range n.trust.Edges() {
		if e.Level == trust.LevelFull {
			out[e.NodeID] = true
		}
	}
	return out
}

// enforceBlocks closes every connection to a blocked peer.
func (n *Node) enforceBlocks() {
	for _, p := range n.host.Network().Peers() {
		if n.trust.Blocked(p.String()) {
			_ = n.host.Network().ClosePeer(p)
		}
	}
}

func (n *Node) refreshVouches() {
	for _, p := range n.host.Network().Peers() {
		n.maybeFetchVouch(p)
	}
}

// maybeFetchVouch asks p for its vouch if this node trusts p fully.
func (n *Node) maybeFetchVouch(p peer.ID) {
	if lvl, ok := n.trust.Level(p.String()); !ok || lvl != trust.LevelFull {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.fetchVouch(n.ctx, p); err != nil && n.ctx.Err() == nil {
			n.log.Debug("vouch", "peer", p.String(), "err", err)
		}
	}()
}

// pushVouch sends this node's new vouch to the connected peers it trusts
// fully (to), so that their trust paths through it change at once.
func (n *Node) pushVouch(to map[string]bool) {
	v, err := n.ownVouch()
	if err != nil {
		n.log.Warn("sign vouch", "err", err)
		return
	}
	for id := range to {
		p, err := peer.Decode(id)
		if err != nil || n.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if _, err := n.trustCall(n.ctx, p, &protocol.TrustRequest{Type: protocol.MsgVouchPush, Vouch: v}); err != nil && n.ctx.Err() == nil {
				n.log.Debug("push vouch", "peer", p.String(), "err", err)
			}
		}()
	}
}

// fetchVouch asks peer p for its signed list of fully trusted nodes over
// /mesh/trust/1.0.0, verifies it and caches it. p answers only the peers it
// trusts fully.
func (n *Node) fetchVouch(ctx context.Context, p peer.ID) error {
	n.vouchFetches.Add(1)
	resp, err := n.trustCall(ctx, p, &protocol.TrustRequest{Type: protocol.MsgVouchRequest})
	if err != nil {
		return err
	}
	if resp.Vouch == nil {
		return fmt.Errorf("%w: trust answer without a vouch", protocol.ErrInvalid)
	}
	return n.takeVouch(p, resp.Vouch)
}

// takeVouch verifies a vouch that peer p gave and keeps it. A vouch not
// newer than the one held changes nothing and is no error.
func (n *Node) takeVouch(p peer.ID, v *protocol.Vouch) error {
	if v.NodeID != p.String() {
		return fmt.Errorf("%w: %s gave a vouch of %s", protocol.ErrInvalidSignature, p, v.NodeID)
	}
	if err := protocol.VerifyVouch(v, protocol.VerifyOptions{Now: n.now(), AllowOld: true}); err != nil {
		return err
	}
	if err := n.trust.AddVouch(v); err != nil && !errors.Is(err, trust.ErrStale) {
		return err
	}
	return nil
}

// SendReferral tells peer p that this node recommends subject. p keeps it in
// its list of referrals; it never acts on it by itself.
func (n *Node) SendReferral(ctx context.Context, p peer.ID, subject, note string) error {
	if n.host == nil {
		return api.ErrOffline
	}
	r, err := protocol.SignReferral(n.edKey, subject, note, n.now())
	if err != nil {
		return err
	}
	_, err = n.trustCall(ctx, p, &protocol.TrustRequest{Type: protocol.MsgReferral, Referral: r})
	return err
}

// trustCall sends one /mesh/trust/1.0.0 request to p; an error answer is
// an error matching its code.
func (n *Node) trustCall(ctx context.Context, p peer.ID, req *protocol.TrustRequest) (*protocol.TrustResponse, error) {
	b, err := req.Encode()
	if err != nil {
		return nil, err
	}
	if b, err = streamrpc.Call(ctx, n.host, p, protocol.ProtocolTrust, b, protocol.MaxTrustResponseSize); err != nil {
		return nil, err
	}
	resp, err := protocol.DecodeTrustResponse(b)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, protocol.ErrorFor(resp.Error.Code, resp.Error.Message)
	}
	return resp, nil
}

// handleTrust answers /mesh/trust/1.0.0: a vouch request from a peer this
// node trusts fully, a vouch pushed by a peer it trusts fully, or a
// referral from any peer that is not blocked.
func (n *Node) handleTrust(_ context.Context, r *streamrpc.Request) []byte {
	if r.Err != nil {
		return nil
	}
	from := r.From.String()
	resp := &protocol.TrustResponse{Type: protocol.MsgTrustResponse}
	req, err := protocol.DecodeTrustRequest(r.Body)
	if err == nil {
		switch req.Type {
		case protocol.MsgVouchRequest:
			if lvl, ok := n.trust.Level(from); !ok || lvl != trust.LevelFull {
				err = fmt.Errorf("%w: this node shares its vouches only with peers it trusts fully", protocol.ErrUntrusted)
				break
			}
			resp.Vouch, err = n.ownVouch()
		case protocol.MsgVouchPush:
			if lvl, ok := n.trust.Level(from); !ok || lvl != trust.LevelFull {
				err = fmt.Errorf("%w: this node keeps vouches only of peers it trusts fully", protocol.ErrUntrusted)
				break
			}
			err = n.takeVouch(r.From, req.Vouch)
		case protocol.MsgReferral:
			switch {
			case n.trust.Blocked(from):
				err = fmt.Errorf("%w: blocked", protocol.ErrUntrusted)
			case req.Referral.NodeID != from:
				err = fmt.Errorf("%w: a referral must be signed by the peer that sends it", protocol.ErrInvalidSignature)
			default:
				if err = protocol.VerifyReferral(req.Referral, protocol.VerifyOptions{Now: n.now()}); err == nil {
					err = n.trust.AddReferral(req.Referral)
				}
			}
		}
	}
	resp.Error = protocol.ErrorOf(err)
	return streamrpc.Encode(resp)
}

// ownVouch returns this node's signed vouch, re-signing it only when its
// direct full-trust edges changed or half its life has passed: a vouch that
// says the same thing is not news to anyone.
func (n *Node) ownVouch() (*protocol.Vouch, error) {
	n.vouchMu.Lock()
	defer n.vouchMu.Unlock()
	full := n.fullEdges()
	same := n.vouch != nil && len(n.vouch.Trusts) == len(full)
	if same {
		for _, id := range n.vouch.Trusts {
			same = same && full[id]
		}
	}
	if same && n.now().Before(time.UnixMilli(n.vouch.IssuedAt).Add(vouchTTL/2)) {
		return n.vouch, nil
	}
	v, err := n.trust.SignVouch(n.edKey, vouchTTL)
	if err != nil {
		return nil, err
	}
	n.vouch = v
	return v, nil
}
