package sensors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

// home is a sensor, its owner and a tenant on a mocknet, connected.
type home struct {
	sensor, owner, tenant *node.Node
}

func newHome(t *testing.T) home {
	t.Helper()
	_, nodes := nodetest.Mock(t, 3, 0, node.Config{})
	h := home{nodes[0], nodes[1], nodes[2]}
	nodetest.Connect(t, h.owner, h.sensor)
	nodetest.Connect(t, h.tenant, h.sensor)
	return h
}

func push(t *testing.T, n *node.Node, stream string, v float64) *api.Reading {
	t.Helper()
	r, err := n.SensorPush(context.Background(), api.PushRequest{Stream: stream, Value: v})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ask(t *testing.T, n *node.Node, q, sources string) *api.SensorSearchResult {
	t.Helper()
	res, err := n.SensorSearch(context.Background(), api.SensorSearchRequest{Query: q, Sources: sources, Stats: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func values(res *api.SensorSearchResult) []float64 {
	var out []float64
	for _, r := range res.Readings {
		out = append(out, r.Value)
	}
	return out
}

// A reader sees nothing before a grant, every matching reading (decrypted
// and verified) after it; a revoked reader is refused the source's answer
// and every key it has not fetched, from the very next reading on, while
// the owner reads on.
func TestGrantQueryRevoke(t *testing.T) {
	ctx := context.Background()
	h := newHome(t)
	if _, err := h.sensor.SensorAdd(ctx, api.StreamOptions{Name: "basement/humidity", Unit: "%", TTLMs: (7 * 24 * time.Hour).Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{55, 61.5, 64.2, 58} {
		push(t, h.sensor, "basement/humidity", v)
	}
	sensorID := h.sensor.ID().String()
	for _, n := range []*node.Node{h.owner, h.tenant} {
		if _, err := n.NameSet(ctx, "basement", []string{sensorID}); err != nil {
			t.Fatal(err)
		}
	}

	// No grant: the source refuses, nothing is read.
	res := ask(t, h.owner, "humidity > 60%", "basement")
	if len(res.Readings) != 0 || res.Sources[0].Code != string(protocol.CodeAccessDenied) {
		t.Fatalf("before a grant: %+v", res)
	}

	if _, err := h.sensor.AccessGrant(ctx, api.GrantOptions{Reader: h.owner.ID().String(), Streams: []string{"basement/*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sensor.AccessGrant(ctx, api.GrantOptions{Reader: h.tenant.ID().String(), Streams: []string{"basement/humidity"}}); err != nil {
		t.Fatal(err)
	}
	res = ask(t, h.owner, "humidity > 60%", "basement")
	if got := values(res); len(got) != 2 || got[0] != 64.2 || got[1] != 61.5 {
		t.Fatalf("owner: humidity > 60%%: %v (%+v)", got, res.Sources)
	}
	if res.Readings[0].Stream != "basement/humidity" || res.Readings[0].Unit != "%" || res.Readings[0].Name != "basement" {
		t.Fatalf("reading: %+v", res.Readings[0])
	}
	if len(res.Stats) != 1 || res.Stats[0].Count != 2 || res.Stats[0].Min != 61.5 || res.Stats[0].Max != 64.2 || res.Stats[0].Last != 64.2 {
		t.Fatalf("stats: %+v", res.Stats)
	}
	// A unit that is not the stream's matches nothing.
	if res := ask(t, h.owner, "humidity > 60C", "basement"); len(res.Readings) != 0 {
		t.Fatalf("a comparison in another unit matched: %v", values(res))
	}
	res = ask(t, h.tenant, "humidity", "basement")
	if len(res.Readings) != 4 {
		t.Fatalf("tenant before revoke: %v %+v", values(res), res.Sources)
	}
	before := res.Readings[0]

	rr, err := h.sensor.AccessRevoke(ctx, h.tenant.ID().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Streams) != 1 || rr.Epochs["basement/humidity"] == before.KeyID {
		t.Fatalf("revoke: %+v", rr)
	}
	next := push(t, h.sensor, "basement/humidity", 70)
	if next.KeyID == before.KeyID {
		t.Fatal("the reading after a revoke is under the old epoch key")
	}
	// The source no longer answers the tenant...
	res = ask(t, h.tenant, "humidity", "basement")
	if len(res.Readings) != 0 || res.Sources[0].Code != string(protocol.CodeAccessDenied) {
		t.Fatalf("tenant after revoke: %v %+v", values(res), res.Sources)
	}
	// ...and its key server refuses it the new epoch's key, even with the
	// ciphertext in hand.
	el, err := h.sensor.Store().EncryptedPublication(ctx, keyID(next.Key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.tenant.Keys().Read(ctx, el); !errors.Is(err, protocol.ErrAccessDenied) {
		t.Fatalf("tenant read the reading after its revocation: %v", err)
	}
	// The owner reads on, the new reading included.
	res = ask(t, h.owner, "humidity > 60%", "basement")
	if got := values(res); len(got) != 3 || got[0] != 70 {
		t.Fatalf("owner after the tenant's revoke: %v", got)
	}
	list, err := h.sensor.AccessList(ctx)
	if err != nil || len(list) != 1 || list[0].Reader != h.owner.ID().String() {
		t.Fatalf("access list: %+v %v", list, err)
	}
}

func keyID(key string) string {
	id, _, _ := protocol.ParseKey(key)
	return id
}

// A grant with --until ends by itself: the key server refuses the keys
// after it (capping the keys it gave before at it), and the stream
// rotates its epoch.
func TestGrantUntil(t *testing.T) {
	ctx := context.Background()
	h := newHome(t)
	if _, err := h.sensor.SensorAdd(ctx, api.StreamOptions{Name: "garage/temperature", Unit: "°C"}); err != nil {
		t.Fatal(err)
	}
	first := push(t, h.sensor, "garage/temperature", 4)
	until := time.Now().Add(1500 * time.Millisecond).UnixMilli()
	if _, err := h.sensor.AccessGrant(ctx, api.GrantOptions{Reader: h.tenant.ID().String(), Until: until}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.tenant.NameSet(ctx, "garage", []string{h.sensor.ID().String()}); err != nil {
		t.Fatal(err)
	}
	res := ask(t, h.tenant, "temp <= 4", "garage")
	if len(res.Readings) != 1 || res.Readings[0].Key != first.Key {
		t.Fatalf("within the grant: %+v", res)
	}
	for _, k := range mustKeys(t, h.tenant) {
		if k.Role == api.KeyRoleReader && k.CachedUntil > until {
			t.Fatalf("a key given under a grant ending at %d is kept until %d", until, k.CachedUntil)
		}
	}
	nodetest.Eventually(t, "the grant to end", func() bool {
		st, err := h.sensor.SensorList(ctx)
		return err == nil && len(st) == 1 && st[0].Epochs == 2 && len(st[0].Readers) == 0
	})
	res = ask(t, h.tenant, "temp <= 4", "garage")
	if len(res.Readings) != 0 {
		t.Fatalf("after the grant ended: %v", values(res))
	}
}

func mustKeys(t *testing.T, n *node.Node) []api.KeyInfo {
	t.Helper()
	list, err := n.KeyList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Named groups, time phrases and anomalies: "power anomaly" finds the
// reading that lies far outside the stream's recent behaviour, "home"
// asks several sources at once.
func TestGroupsAnomalyTime(t *testing.T) {
	ctx := context.Background()
	_, nodes := nodetest.Mock(t, 3, 0, node.Config{})
	garage, breaker, owner := nodes[0], nodes[1], nodes[2]
	nodetest.Connect(t, owner, garage)
	nodetest.Connect(t, owner, breaker)
	for _, s := range []struct {
		n            *node.Node
		stream, unit string
	}{{garage, "garage/temperature", "°C"}, {breaker, "breaker/power", "W"}} {
		if _, err := s.n.SensorAdd(ctx, api.StreamOptions{Name: s.stream, Unit: s.unit, Anomaly: api.AnomalyOptions{Window: 20, Threshold: 4, MinSamples: 10}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.n.AccessGrant(ctx, api.GrantOptions{Reader: owner.ID().String()}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		push(t, garage, "garage/temperature", 4+float64(i%3)*0.1)
		push(t, breaker, "breaker/power", 400+float64(i%5))
	}
	spike := push(t, breaker, "breaker/power", 3500)
	if !spike.Anomaly || spike.Score < 4 {
		t.Fatalf("a spike was not marked: %+v", spike)
	}
	if _, err := owner.NameSet(ctx, "garage", []string{garage.ID().String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.NameSet(ctx, "home", []string{"garage", breaker.ID().String()}); err != nil {
		t.Fatal(err)
	}
	res := ask(t, owner, "power anomaly", "home")
	if len(res.Readings) != 1 || res.Readings[0].Value != 3500 || !res.Readings[0].Anomaly {
		t.Fatalf("power anomaly: %v %+v", values(res), res.Sources)
	}
	res = ask(t, owner, "last 24h", "home")
	if len(res.Readings) != 61 || len(res.Stats) != 2 {
		t.Fatalf("last 24h over home: %d readings, stats %+v", len(res.Readings), res.Stats)
	}
	res = ask(t, owner, "temperature today", "home")
	if len(res.Readings) != 30 || len(res.Sources) != 2 || res.Sources[1].Readings != 0 {
		t.Fatalf("temperature today: %d %+v", len(res.Readings), res.Sources)
	}
	future := time.Now().Add(48 * time.Hour).Format("2006-01-02")
	if _, err := owner.SensorSearch(ctx, api.SensorSearchRequest{Query: "since " + future, Sources: "home"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("a question from the future: %v", err)
	}
}
