package pubsub

import (
	"math"
	"strings"
	"testing"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/meshprotocol/mesh/protocol"
)

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
	if p.MaxMessageSize != protocol.MaxAnnouncementSize+FramingSlack || p.Window != protocol.DefaultTimestampWindow {
		t.Errorf("MaxMessageSize %d, Window %s", p.MaxMessageSize, p.Window)
	}
	// The low-traffic choices the doc promises.
	if p.Topic.MeshMessageDeliveriesWeight != 0 || p.Topic.MeshFailurePenaltyWeight != 0 {
		t.Error("mesh-delivery penalties are on: quiet MESH topics would punish honest peers")
	}
	// 3, 4 and 5 invalid messages cross gossip, publish and graylist even
	// for a peer at the positive cap.
	inv := func(n float64) float64 {
		return n*n*p.Topic.InvalidMessageDeliveriesWeight*p.Topic.TopicWeight + p.Score.TopicScoreCap
	}
	if !(inv(3) < p.Thresholds.GossipThreshold && inv(4) < p.Thresholds.PublishThreshold && inv(5) < p.Thresholds.GraylistThreshold) {
		t.Errorf("invalid-message steps: %v %v %v against %+v", inv(3), inv(4), inv(5), p.Thresholds)
	}
	if inv(2) < p.Thresholds.GossipThreshold {
		t.Errorf("two invalid messages already cost gossip: %v", inv(2))
	}
	if p.isZero() {
		t.Error("DefaultParams counts as zero")
	}
	if !(&Params{}).isZero() {
		t.Error("zero Params does not count as zero")
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(p *Params)
		want   string
	}{
		{"D out of range", func(p *Params) { p.Gossip.D = 20 }, "Dhi"},
		{"Dout too large", func(p *Params) { p.Gossip.Dout = 4 }, "Dout"},
		{"Dscore above Dhi", func(p *Params) { p.Gossip.Dscore = 13 }, "Dscore"},
		{"history", func(p *Params) { p.Gossip.HistoryGossip = 11 }, "HistoryGossip"},
		{"no heartbeat", func(p *Params) { p.Gossip.HeartbeatInterval = 0 }, "HeartbeatInterval"},
		{"positive gossip threshold", func(p *Params) { p.Thresholds.GossipThreshold = 1 }, "GossipThreshold"},
		{"publish above gossip", func(p *Params) { p.Thresholds.PublishThreshold = -100 }, "PublishThreshold"},
		{"graylist above publish", func(p *Params) { p.Thresholds.GraylistThreshold = -500 }, "GraylistThreshold"},
		{"zero thresholds", func(p *Params) { p.Thresholds = gossipsub.PeerScoreThresholds{} }, "GraylistThreshold"},
		{"NaN threshold", func(p *Params) { p.Thresholds.OpportunisticGraftThreshold = math.NaN() }, "Opportunistic"},
		{"negative cap", func(p *Params) { p.Score.TopicScoreCap = -1 }, "TopicScoreCap"},
		{"positive colocation weight", func(p *Params) { p.Score.IPColocationFactorWeight = 1 }, "IPColocation"},
		{"colocation threshold", func(p *Params) { p.Score.IPColocationFactorThreshold = 0 }, "IPColocationFactorThreshold"},
		{"behaviour decay", func(p *Params) { p.Score.BehaviourPenaltyDecay = 1 }, "BehaviourPenaltyDecay"},
		{"decay interval", func(p *Params) { p.Score.DecayInterval = time.Millisecond }, "DecayInterval"},
		{"decay to zero", func(p *Params) { p.Score.DecayToZero = 0 }, "DecayToZero"},
		{"negative topic weight", func(p *Params) { p.Topic.TopicWeight = -1 }, "TopicWeight"},
		{"no time quantum", func(p *Params) { p.Topic.TimeInMeshQuantum = 0 }, "TimeInMeshQuantum"},
		{"time cap", func(p *Params) { p.Topic.TimeInMeshCap = 0 }, "TimeInMeshCap"},
		{"first delivery decay", func(p *Params) { p.Topic.FirstMessageDeliveriesDecay = 0 }, "FirstMessageDeliveriesDecay"},
		{"P3 on without threshold", func(p *Params) {
			p.Topic.MeshMessageDeliveriesWeight = -1
			p.Topic.MeshMessageDeliveriesDecay = 0.5
			p.Topic.MeshMessageDeliveriesCap = 10
			p.Topic.MeshMessageDeliveriesActivation = time.Minute
		}, "MeshMessageDeliveriesThreshold"},
		{"positive invalid weight", func(p *Params) { p.Topic.InvalidMessageDeliveriesWeight = 1 }, "InvalidMessageDeliveriesWeight"},
		{"invalid decay", func(p *Params) { p.Topic.InvalidMessageDeliveriesDecay = 0 }, "InvalidMessageDeliveriesDecay"},
		{"bad per-topic entry", func(p *Params) {
			p.Score.Topics = map[string]*gossipsub.TopicScoreParams{"x": {TopicWeight: 1}}
		}, "topic x"},
		{"nil per-topic entry", func(p *Params) { p.Score.Topics = map[string]*gossipsub.TopicScoreParams{"x": nil} }, "topic x"},
		{"frame too small", func(p *Params) { p.MaxMessageSize = protocol.MaxAnnouncementSize }, "MaxMessageSize"},
		{"no window", func(p *Params) { p.Window = 0 }, "Window"},
		{"negative timeout", func(p *Params) { p.ValidatorTimeout = -1 }, "ValidatorTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.mutate(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestParamsAcceptedByRouter: what Validate accepts, the router accepts
// (New runs both).
func TestParamsAcceptedByRouter(t *testing.T) {
	tn := newTestNet(t)
	p := DefaultParams()
	p.Score.Topics = map[string]*gossipsub.TopicScoreParams{"/mesh/1/topic/special": func() *gossipsub.TopicScoreParams { tp := p.Topic; return &tp }()}
	p.ValidatorTimeout, p.ValidatorConcurrency, p.ValidateQueueSize = time.Second, 16, 64
	s, err := New(Config{Host: tn.host().h, Checker: newFakeChecker(), Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Follow("special"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}
