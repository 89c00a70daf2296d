package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/reach"
	"github.com/meshprotocol/mesh/protocol"
)

// natFlags adds the reachability flags of `mesh daemon`.
func natFlags(c *cobra.Command) func(*cobra.Command, *node.Config) error {
	var (
		relay          bool
		relayVia       []string
		announce       []string
		announceAppend []string
		reachability   string
		noHolePunch    bool
		noPortMap      bool
		noAutoRelay    bool
		keepRelayed    bool
		rl             reach.RelayConfig
		rlTTL, rlDur   time.Duration
	)
	f := c.Flags()
	f.BoolVar(&relay, "relay", false, "run a circuit relay for nodes behind NAT (on a publicly reachable node; implies --reachability public unless given)")
	f.StringArrayVar(&relayVia, "relay-via", nil, "relay multiaddr (/p2p/<id>) to reserve a slot with when behind NAT (repeatable; also config.json nat.staticRelays)")
	f.StringArrayVar(&relayVia, "static-relay", nil, "same as --relay-via")
	f.StringArrayVar(&announce, "announce", nil, "advertise this multiaddr instead of the listen addresses, e.g. a tunnel's /dns4/HOST/tcp/443/wss (repeatable)")
	f.StringArrayVar(&announceAppend, "announce-append", nil, "advertise this multiaddr on top of the listen addresses (repeatable)")
	f.StringVar(&reachability, "reachability", "", "auto (AutoNAT decides), public or private (default auto)")
	f.BoolVar(&noHolePunch, "no-holepunch", false, "never upgrade relayed connections to direct ones by hole punching (DCUtR)")
	f.BoolVar(&noPortMap, "no-portmap", false, "do not ask the router for a port mapping (UPnP, NAT-PMP)")
	f.BoolVar(&noAutoRelay, "no-autorelay", false, "never reserve relay slots")
	f.BoolVar(&keepRelayed, "keep-relayed", false, "keep relayed connections open once a direct one exists")
	f.IntVar(&rl.MaxReservations, "relay-max-reservations", 0, fmt.Sprintf("relay: nodes holding a slot at once (default %d)", reach.DefaultRelayMaxReservations))
	f.IntVar(&rl.MaxReservationsPerIP, "relay-max-reservations-per-ip", 0, fmt.Sprintf("relay: slots per IP address (default %d)", reach.DefaultRelayMaxReservationsPerIP))
	f.IntVar(&rl.MaxCircuits, "relay-max-circuits", 0, fmt.Sprintf("relay: relayed connections open at once per node (default %d)", reach.DefaultRelayMaxCircuits))
	f.DurationVar(&rlTTL, "relay-reservation-ttl", 0, "relay: how long a slot lasts before it must be refreshed (default 1h)")
	f.DurationVar(&rlDur, "relay-circuit-duration", 0, "relay: close each relayed connection after this long (default: no cap)")
	f.Int64Var(&rl.CircuitBytes, "relay-circuit-bytes", 0, "relay: close each relayed connection after this many bytes each way (default: no cap)")
	f.BoolVar(&rl.TrustedOnly, "relay-trusted-only", false, "relay: grant slots only to nodes this node trusts")
	return func(c *cobra.Command, cfg *node.Config) error {
		nc := &cfg.NAT
		changed := c.Flags().Changed
		if relay {
			nc.Relay.Enabled = true
			if !slices.Contains(cfg.DHT.Roles, protocol.RoleRelay) {
				// Home nodes find relays in the DHT by this role.
				cfg.DHT.Roles = append(cfg.DHT.Roles, protocol.RoleRelay)
			}
			if !changed("reachability") && (nc.Reachability == "" || nc.Reachability == reach.ReachabilityAuto) {
				nc.Reachability = reach.ReachabilityPublic
			}
		}
		if changed("relay-max-reservations") {
			nc.Relay.MaxReservations = rl.MaxReservations
		}
		if changed("relay-max-reservations-per-ip") {
			nc.Relay.MaxReservationsPerIP = rl.MaxReservationsPerIP
		}
		if changed("relay-max-circuits") {
			nc.Relay.MaxCircuits = rl.MaxCircuits
		}
		if changed("relay-reservation-ttl") {
			nc.Relay.ReservationTTL = api.Duration(rlTTL)
		}
		if changed("relay-circuit-duration") {
			nc.Relay.CircuitDuration = api.Duration(rlDur)
		}
		if changed("relay-circuit-bytes") {
			nc.Relay.CircuitBytes = rl.CircuitBytes
		}
		if rl.TrustedOnly {
			nc.Relay.TrustedOnly = true
		}
		nc.StaticRelays = append(nc.StaticRelays, relayVia...)
		if len(announce) > 0 {
			nc.Announce = announce
		}
		nc.AppendAnnounce = append(nc.AppendAnnounce, announceAppend...)
		if changed("reachability") {
			nc.Reachability = strings.ToLower(reachability)
		}
		if noHolePunch {
			nc.NoHolePunch = true
		}
		if noAutoRelay {
			nc.NoAutoRelay = true
		}
		if keepRelayed {
			nc.KeepRelayed = true
		}
		if noPortMap {
			off := false
			nc.PortMap = &off
		} else if nc.PortMap == nil {
			on := true
			nc.PortMap = &on
		}
		return nc.Validate()
	}
}

// fillNetwork adds the daemon's network status to st when the backend did
// not include it (the control API's status answer carries the AMP fields).
func fillNetwork(ctx context.Context, b api.API, st *api.Status) {
	if st.Network != nil {
		return
	}
	if na, ok := b.(api.Network); ok {
		if ns, err := na.Network(ctx); err == nil {
			st.Network = ns
		}
	}
}

// printNetwork prints the network part of `mesh status`.
func printNetwork(g *globals, st *api.Status) {
	ns := st.Network
	if ns == nil {
		g.printf("network: offline (no daemon running)\n")
		return
	}
	g.printf("reachability: %s (%s)\n", ns.Reachability, ns.ReachabilitySource)
	g.printf("peers:   %d direct, %d relayed\n", ns.Peers.Direct, ns.Peers.Relayed)
	if len(ns.Reservations) == 0 {
		g.printf("relay reservations: none\n")
	} else {
		g.printf("relay reservations: %d\n", len(ns.Reservations))
		for _, r := range ns.Reservations {
			g.printf("  via %s\n", r.Relay)
			for _, a := range r.Addrs {
				g.printf("    %s\n", a)
			}
		}
	}
	onOff := map[bool]string{true: "on", false: "off"}
	g.printf("hole punching: %s (%d succeeded, %d failed)\nport mapping: %s\n",
		onOff[ns.HolePunching], ns.HolePunches.Succeeded, ns.HolePunches.Failed, onOff[ns.PortMapping])
	if rs := ns.RelayService; rs != nil {
		dur, bytes := "no cap", "no cap"
		if rs.CircuitDuration != "" {
			dur = rs.CircuitDuration
		}
		if rs.CircuitBytes > 0 {
			bytes = fmt.Sprintf("%d bytes", rs.CircuitBytes)
		}
		g.printf("relay service: %d/%d reservations, %d circuits open (%d total), %d bytes relayed; per circuit: %s, %s\n",
			rs.Reservations, rs.MaxReservations, rs.Circuits, rs.CircuitsTotal, rs.BytesRelayed, dur, bytes)
	}
}

// peerHow says how a peer is connected, for `mesh peers`.
func peerHow(p api.PeerInfo) string {
	switch {
	case p.Relayed && p.Relay != "":
		return "relayed via " + shortID(p.Relay)
	case p.Relayed:
		return "relayed"
	case p.HolePunched:
		return "direct (hole punched)"
	}
	return "direct"
}
