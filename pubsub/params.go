package pubsub

import (
	"fmt"
	"math"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/meshprotocol/mesh/protocol"
)

// FramingSlack is what DefaultParams adds to protocol.MaxAnnouncementSize
// for the GossipSub frame around one announcement: the protobuf envelope,
// the topic name, the libp2p author, sequence number and signature, and the
// RPC that carries it. 8 KiB is several times what those take.
const FramingSlack = 8 << 10

// Params is the GossipSub v1.1 tuning of a MESH node, peer scoring included.
// DefaultParams explains every value; change them only for a network whose
// traffic differs from MESH's (few, small, bursty messages on many topics).
// Every MESH node should run the same Params: a node with a larger
// MaxMessageSize, say, may send RPCs the others refuse.
type Params struct {
	// Gossip is the router's mesh and gossip tuning.
	Gossip gossipsub.GossipSubParams
	// Score holds the peer-scoring parameters that do not depend on the
	// topic. A nil AppSpecificScore counts as a function returning 0 (trust
	// will feed it later); Topics may be nil: New applies Topic to every
	// topic the service joins.
	Score gossipsub.PeerScoreParams
	// Thresholds are the score thresholds below which a peer loses gossip,
	// publishing, and finally any processing of its RPCs.
	Thresholds gossipsub.PeerScoreThresholds
	// Topic is the per-topic score applied to every MESH topic and feed.
	Topic gossipsub.TopicScoreParams
	// MaxMessageSize caps one GossipSub RPC frame. It must leave room for
	// one announcement of protocol.MaxAnnouncementSize bytes plus framing.
	MaxMessageSize int
	// Window is how far a fresh announcement's signing time (a lesson's
	// signature.timestamp, a revocation's revokedAt) may lie from the
	// local clock, either way. Older lessons travel by sync, not gossip.
	Window time.Duration

	// ValidatorTimeout bounds one validation, Checker calls included; a
	// validation that runs out of time is ignored (never rejected: the
	// sender is not at fault for a slow store). Zero means 2 s.
	ValidatorTimeout time.Duration
	// ValidatorConcurrency caps the validations running at once. A message
	// that finds the cap reached is dropped unvalidated and is then lost to
	// this node for the seen-cache lifetime (2 min), so the cap is generous:
	// validation is CPU-bound and short. Zero means 1024.
	ValidatorConcurrency int
	// ValidateQueueSize is the front-end queue in front of the validators;
	// a message that finds it full is dropped before being marked seen, so
	// another peer's copy still gets through. Zero means 512.
	ValidateQueueSize int
	// OutboundQueueSize is the queue of RPCs waiting to be written to one
	// peer. An RPC that finds it full is dropped (counted in
	// Stats.DroppedRPCs): a mesh peer then misses the messages it carried
	// unless gossip or sync makes up for it. GossipSub's default of 32
	// overflowed in a burst of announcements while a Sybil flood kept the
	// writers busy, so MESH keeps more (each is one RPC, typically a
	// message of a few KiB). Zero means 128.
	OutboundQueueSize int
}

// Defaults of the Params fields whose zero value means "default".
const (
	defaultValidatorTimeout     = 2 * time.Second
	defaultValidatorConcurrency = 1024
	defaultValidateQueueSize    = 512
	defaultOutboundQueueSize    = 128
)

// DefaultParams returns MESH's GossipSub tuning. The reasoning, value by
// value:
//
// Mesh (Gossip). D=6, Dlo=4, Dhi=12, Dscore=4, Dout=2, Dlazy=6: the
// libp2p defaults, except Dlo lowered from 5 to 4 so that small, sparse
// home networks (a few peers per topic) do not graft on every heartbeat.
// HistoryLength=10, HistoryGossip=5 (defaults 5 and 3): MESH traffic is
// low, so keeping ten seconds of messages costs little memory and gives a
// peer that missed a message on a flaky home link twice as many IHAVE
// rounds to ask for it. The heartbeat stays at 1 s.
//
// Flood publishing stays on (the libp2p default): a fresh lesson goes to
// every peer with a score above PublishThreshold at once, which matters
// more than bandwidth on topics that see a few messages an hour. Peer
// exchange stays off: MESH finds peers through its DHT and known peers, so
// it never has to trust a PRUNE's peer list.
//
// Thresholds. Gossip -500, Publish -1000, Graylist -2000: with P4 below,
// 3, 4 and 5 invalid messages on one topic cross them, even with the
// largest positive score a peer can hold (TopicScoreCap), so a peer that
// sends garbage first loses gossip, then our publications, then is
// ignored altogether. AcceptPX 100 is unreachable without an
// application score (PX is off anyway). OpportunisticGraft 1: honest peers
// on quiet topics rarely reach a high score, so a median below 1 (about an
// hour in the mesh without a first delivery) is what "a poor mesh" means.
//
// Topic score (applied to every topic and feed, weight 1):
//   - P1 time in mesh: quantum 10 s, cap 360, weight 1/360: at most +1,
//     after an hour. A long-lived peer is slightly preferred, but time alone
//     never outweighs one invalid message.
//   - P2 first deliveries: weight 1, cap 20, decaying over an hour: a peer
//     that brings us fresh lessons first earns up to +20.
//   - P3 and P3b mesh delivery deficits: off (weight 0). They penalise mesh
//     peers that deliver fewer than a threshold of messages per window,
//     which on a topic that is silent for hours punishes every honest peer
//     and breaks the mesh. This is the best-known sharp edge of GossipSub
//     scoring on low-traffic topics.
//   - P4 invalid messages: weight -100, decaying over an hour. The penalty
//     is the square of the count: 3 invalid messages put a peer below
//     Gossip, 4 below Publish, 5 on the graylist, and a slow drip of one
//     every two minutes keeps it there.
//
// Peer score (topic-independent):
//   - TopicScoreCap 50: positive topic scores are capped, so a peer cannot
//     bank credit on many topics and then spend it on invalid messages.
//   - P5 application score: weight 1, function nil (zero); trust-ranked
//     scores come with the trust package.
//   - P6 IP colocation: weight -10 above 8 peers per IP. Home networks
//     and carrier NAT put a few honest nodes behind one address, so the
//     threshold is loose; a Sybil farm of 20 peers on one address still
//     lands below Gossip. The router skips loopback and limited
//     connections, and the host it is given hides the relay's IP from
//     relayed ones (colocation.go), so tests on 127.0.0.1 and home nodes
//     behind a shared relay are not penalised.
//   - P7 behaviour: weight -10 above 6, decaying over 10 minutes: repeated
//     GRAFT-during-backoff or broken IWANT promises cost a peer gossip.
//   - Decay every second to zero at 0.01; scores are retained for an hour
//     after a peer disconnects, so a punished peer gains nothing by
//     reconnecting.
//
// MaxMessageSize is protocol.MaxAnnouncementSize + FramingSlack (about
// 153 KiB), far below the 1 MiB libp2p default: an RPC frame larger than
// any message MESH sends is refused before it is read. Window is
// protocol.DefaultTimestampWindow (±1 h).
func DefaultParams() Params {
	g := gossipsub.DefaultGossipSubParams()
	g.Dlo = 4
	g.HistoryLength = 10
	g.HistoryGossip = 5

	return Params{
		Gossip: g,
		Score: gossipsub.PeerScoreParams{
			TopicScoreCap:               50,
			AppSpecificWeight:           1,
			IPColocationFactorWeight:    -10,
			IPColocationFactorThreshold: 8,
			BehaviourPenaltyWeight:      -10,
			BehaviourPenaltyThreshold:   6,
			BehaviourPenaltyDecay:       gossipsub.ScoreParameterDecay(10 * time.Minute),
			DecayInterval:               gossipsub.DefaultDecayInterval,
			DecayToZero:                 gossipsub.DefaultDecayToZero,
			RetainScore:                 time.Hour,
		},
		Thresholds: gossipsub.PeerScoreThresholds{
			GossipThreshold:             -500,
			PublishThreshold:            -1000,
			GraylistThreshold:           -2000,
			AcceptPXThreshold:           100,
			OpportunisticGraftThreshold: 1,
		},
		Topic: gossipsub.TopicScoreParams{
			TopicWeight:                    1,
			TimeInMeshWeight:               1.0 / 360,
			TimeInMeshQuantum:              10 * time.Second,
			TimeInMeshCap:                  360,
			FirstMessageDeliveriesWeight:   1,
			FirstMessageDeliveriesDecay:    gossipsub.ScoreParameterDecay(time.Hour),
			FirstMessageDeliveriesCap:      20,
			InvalidMessageDeliveriesWeight: -100,
			InvalidMessageDeliveriesDecay:  gossipsub.ScoreParameterDecay(time.Hour),
		},
		MaxMessageSize: protocol.MaxAnnouncementSize + FramingSlack,
		Window:         protocol.DefaultTimestampWindow,
	}
}

// isZero reports whether p is the zero Params (New then uses DefaultParams).
func (p *Params) isZero() bool {
	return p.Gossip == (gossipsub.GossipSubParams{}) && p.Score.Topics == nil && p.Score.AppSpecificScore == nil &&
		p.Score.IPColocationFactorWhitelist == nil && p.MaxMessageSize == 0 && p.Window == 0 &&
		p.Thresholds == (gossipsub.PeerScoreThresholds{}) && p.Topic == (gossipsub.TopicScoreParams{}) &&
		p.Score.DecayInterval == 0 && p.Score.DecayToZero == 0
}

// Validate checks p: the rules go-libp2p-pubsub applies when the router is
// built (which it does not export), applied atomically whatever
// SkipAtomicValidation says, plus MESH's own: the frame must hold a full
// announcement and the window must be positive. A MESH node must score
// peers, so scoring cannot be switched off by leaving Score zero.
func (p Params) Validate() error {
	if err := validateGossip(&p.Gossip); err != nil {
		return fmt.Errorf("pubsub: params: gossip: %w", err)
	}
	if err := validateThresholds(&p.Thresholds); err != nil {
		return fmt.Errorf("pubsub: params: thresholds: %w", err)
	}
	if err := validateScore(&p.Score); err != nil {
		return fmt.Errorf("pubsub: params: score: %w", err)
	}
	for name, tp := range p.Score.Topics {
		if tp == nil {
			return fmt.Errorf("pubsub: params: score: topic %s: nil parameters", name)
		}
		if err := validateTopic(tp); err != nil {
			return fmt.Errorf("pubsub: params: score: topic %s: %w", name, err)
		}
	}
	if err := validateTopic(&p.Topic); err != nil {
		return fmt.Errorf("pubsub: params: topic: %w", err)
	}
	if p.MaxMessageSize < protocol.MaxAnnouncementSize+1<<10 {
		return fmt.Errorf("pubsub: params: MaxMessageSize %d cannot hold an announcement of %d bytes and its framing: use at least %d",
			p.MaxMessageSize, protocol.MaxAnnouncementSize, protocol.MaxAnnouncementSize+1<<10)
	}
	if p.Window <= 0 {
		return fmt.Errorf("pubsub: params: Window %s: want a positive duration (the default is %s)", p.Window, protocol.DefaultTimestampWindow)
	}
	if p.ValidatorTimeout < 0 || p.ValidatorConcurrency < 0 || p.ValidateQueueSize < 0 || p.OutboundQueueSize < 0 {
		return fmt.Errorf("pubsub: params: ValidatorTimeout, ValidatorConcurrency, ValidateQueueSize and OutboundQueueSize must not be negative (zero means the default)")
	}
	return nil
}

func bad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

func validateGossip(g *gossipsub.GossipSubParams) error {
	if g.HistoryGossip > g.HistoryLength {
		return fmt.Errorf("HistoryGossip %d must not exceed HistoryLength %d", g.HistoryGossip, g.HistoryLength)
	}
	if g.HistoryLength <= 0 || g.HeartbeatInterval <= 0 {
		return fmt.Errorf("HistoryLength and HeartbeatInterval must be positive: start from DefaultParams().Gossip")
	}
	if !(g.Dlo <= g.D && g.D <= g.Dhi) || g.D <= 0 {
		return fmt.Errorf("want 0 < Dlo %d <= D %d <= Dhi %d", g.Dlo, g.D, g.Dhi)
	}
	if g.Dscore > g.Dhi {
		return fmt.Errorf("Dscore %d must not exceed Dhi %d", g.Dscore, g.Dhi)
	}
	if !(g.Dout < g.Dlo && g.Dout < g.D/2) {
		return fmt.Errorf("Dout %d must be below Dlo %d and below D/2 (%d)", g.Dout, g.Dlo, g.D/2)
	}
	return nil
}

func validateThresholds(t *gossipsub.PeerScoreThresholds) error {
	switch {
	case bad(t.GossipThreshold) || t.GossipThreshold > 0:
		return fmt.Errorf("GossipThreshold %g must be <= 0", t.GossipThreshold)
	case bad(t.PublishThreshold) || t.PublishThreshold > t.GossipThreshold:
		return fmt.Errorf("PublishThreshold %g must be <= GossipThreshold %g", t.PublishThreshold, t.GossipThreshold)
	case bad(t.GraylistThreshold) || t.GraylistThreshold > t.PublishThreshold:
		return fmt.Errorf("GraylistThreshold %g must be <= PublishThreshold %g", t.GraylistThreshold, t.PublishThreshold)
	case t.GraylistThreshold == 0:
		return fmt.Errorf("GraylistThreshold is 0: every peer would be graylisted at once; start from DefaultParams().Thresholds")
	case bad(t.AcceptPXThreshold) || t.AcceptPXThreshold < 0:
		return fmt.Errorf("AcceptPXThreshold %g must be >= 0", t.AcceptPXThreshold)
	case bad(t.OpportunisticGraftThreshold) || t.OpportunisticGraftThreshold < 0:
		return fmt.Errorf("OpportunisticGraftThreshold %g must be >= 0", t.OpportunisticGraftThreshold)
	}
	return nil
}

func validateScore(s *gossipsub.PeerScoreParams) error {
	switch {
	case bad(s.TopicScoreCap) || s.TopicScoreCap < 0:
		return fmt.Errorf("TopicScoreCap %g must be >= 0 (0: no cap)", s.TopicScoreCap)
	case bad(s.AppSpecificWeight):
		return fmt.Errorf("AppSpecificWeight must be a number")
	case bad(s.IPColocationFactorWeight) || s.IPColocationFactorWeight > 0:
		return fmt.Errorf("IPColocationFactorWeight %g must be <= 0", s.IPColocationFactorWeight)
	case s.IPColocationFactorWeight != 0 && s.IPColocationFactorThreshold < 1:
		return fmt.Errorf("IPColocationFactorThreshold %d must be at least 1", s.IPColocationFactorThreshold)
	case bad(s.BehaviourPenaltyWeight) || s.BehaviourPenaltyWeight > 0:
		return fmt.Errorf("BehaviourPenaltyWeight %g must be <= 0", s.BehaviourPenaltyWeight)
	case s.BehaviourPenaltyWeight != 0 && !unit(s.BehaviourPenaltyDecay):
		return fmt.Errorf("BehaviourPenaltyDecay %g must lie strictly between 0 and 1", s.BehaviourPenaltyDecay)
	case bad(s.BehaviourPenaltyThreshold) || s.BehaviourPenaltyThreshold < 0:
		return fmt.Errorf("BehaviourPenaltyThreshold %g must be >= 0", s.BehaviourPenaltyThreshold)
	case s.DecayInterval < time.Second:
		return fmt.Errorf("DecayInterval %s must be at least 1s", s.DecayInterval)
	case !unit(s.DecayToZero):
		return fmt.Errorf("DecayToZero %g must lie strictly between 0 and 1", s.DecayToZero)
	case s.RetainScore < 0:
		return fmt.Errorf("RetainScore %s must not be negative", s.RetainScore)
	}
	return nil
}

func validateTopic(t *gossipsub.TopicScoreParams) error {
	switch {
	case bad(t.TopicWeight) || t.TopicWeight < 0:
		return fmt.Errorf("TopicWeight %g must be >= 0", t.TopicWeight)
	// P1
	case t.TimeInMeshQuantum <= 0:
		return fmt.Errorf("TimeInMeshQuantum %s must be positive", t.TimeInMeshQuantum)
	case bad(t.TimeInMeshWeight) || t.TimeInMeshWeight < 0:
		return fmt.Errorf("TimeInMeshWeight %g must be >= 0", t.TimeInMeshWeight)
	case t.TimeInMeshWeight != 0 && (bad(t.TimeInMeshCap) || t.TimeInMeshCap <= 0):
		return fmt.Errorf("TimeInMeshCap %g must be positive", t.TimeInMeshCap)
	// P2
	case bad(t.FirstMessageDeliveriesWeight) || t.FirstMessageDeliveriesWeight < 0:
		return fmt.Errorf("FirstMessageDeliveriesWeight %g must be >= 0", t.FirstMessageDeliveriesWeight)
	case t.FirstMessageDeliveriesWeight != 0 && !unit(t.FirstMessageDeliveriesDecay):
		return fmt.Errorf("FirstMessageDeliveriesDecay %g must lie strictly between 0 and 1", t.FirstMessageDeliveriesDecay)
	case t.FirstMessageDeliveriesWeight != 0 && (bad(t.FirstMessageDeliveriesCap) || t.FirstMessageDeliveriesCap <= 0):
		return fmt.Errorf("FirstMessageDeliveriesCap %g must be positive", t.FirstMessageDeliveriesCap)
	// P3
	case bad(t.MeshMessageDeliveriesWeight) || t.MeshMessageDeliveriesWeight > 0:
		return fmt.Errorf("MeshMessageDeliveriesWeight %g must be <= 0", t.MeshMessageDeliveriesWeight)
	case t.MeshMessageDeliveriesWeight != 0 && !unit(t.MeshMessageDeliveriesDecay):
		return fmt.Errorf("MeshMessageDeliveriesDecay %g must lie strictly between 0 and 1", t.MeshMessageDeliveriesDecay)
	case t.MeshMessageDeliveriesWeight != 0 && (bad(t.MeshMessageDeliveriesCap) || t.MeshMessageDeliveriesCap <= 0):
		return fmt.Errorf("MeshMessageDeliveriesCap %g must be positive", t.MeshMessageDeliveriesCap)
	case t.MeshMessageDeliveriesWeight != 0 && (bad(t.MeshMessageDeliveriesThreshold) || t.MeshMessageDeliveriesThreshold <= 0):
		return fmt.Errorf("MeshMessageDeliveriesThreshold %g must be positive", t.MeshMessageDeliveriesThreshold)
	case t.MeshMessageDeliveriesWindow < 0:
		return fmt.Errorf("MeshMessageDeliveriesWindow %s must not be negative", t.MeshMessageDeliveriesWindow)
	case t.MeshMessageDeliveriesWeight != 0 && t.MeshMessageDeliveriesActivation < time.Second:
		return fmt.Errorf("MeshMessageDeliveriesActivation %s must be at least 1s", t.MeshMessageDeliveriesActivation)
	// P3b
	case bad(t.MeshFailurePenaltyWeight) || t.MeshFailurePenaltyWeight > 0:
		return fmt.Errorf("MeshFailurePenaltyWeight %g must be <= 0", t.MeshFailurePenaltyWeight)
	case t.MeshFailurePenaltyWeight != 0 && !unit(t.MeshFailurePenaltyDecay):
		return fmt.Errorf("MeshFailurePenaltyDecay %g must lie strictly between 0 and 1", t.MeshFailurePenaltyDecay)
	// P4
	case bad(t.InvalidMessageDeliveriesWeight) || t.InvalidMessageDeliveriesWeight > 0:
		return fmt.Errorf("InvalidMessageDeliveriesWeight %g must be <= 0", t.InvalidMessageDeliveriesWeight)
	case !unit(t.InvalidMessageDeliveriesDecay):
		return fmt.Errorf("InvalidMessageDeliveriesDecay %g must lie strictly between 0 and 1", t.InvalidMessageDeliveriesDecay)
	}
	return nil
}

func unit(f float64) bool { return !bad(f) && f > 0 && f < 1 }
