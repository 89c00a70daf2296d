package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/node/sensors"
	"github.com/meshprotocol/mesh/protocol"
)

func init() {
	scenarios = append(scenarios, scenario{"sensors", sensorsFlags})
}

// sensorsResult is the JSON line of the sensors scenario.
type sensorsResult struct {
	Scenario     string  `json:"scenario"`
	Sensors      int     `json:"sensors"`
	ReadingsPerS float64 `json:"readings_per_s"` // per sensor, while the owner asks
	LatencyMs    int     `json:"latency_ms"`
	Queries      int     `json:"queries"`
	QueryP50Ms   float64 `json:"query_p50_ms"`
	QueryP99Ms   float64 `json:"query_p99_ms"`
	// BoundMs is one round trip over the links: what a question to one
	// source costs at the least. (Questions and key requests are padded
	// past mocknet's 256 bytes so that they pay the link latency as on a
	// real link: mocknet delivers a shorter write followed by a close at
	// once.)
	BoundMs float64 `json:"bound_ms"`
	// RevokeEffectiveMs is the longest, over the sensors, time from the
	// start of `access revoke` until the sensor's next reading is under
	// an epoch key the revoked reader is refused (checked after: its
	// question gets ACCESS_DENIED and not the reading).
	RevokeEffectiveMs float64 `json:"revoke_effective_ms"`
	// IngestReadingsPerS is readings one node signs, encrypts and stores
	// (durably) per second, one after another; SignPerS the raw Ed25519
	// signatures per second on one core beside it.
	IngestReadingsPerS float64 `json:"ingest_readings_per_s"`
	SignPerS           float64 `json:"sign_per_s"`
	RSSMB              float64 `json:"rss_mb"`
}

type sensorsConfig struct {
	sensors  int
	rate     float64
	duration time.Duration
	latency  time.Duration
	queries  int
	ingest   int
}

func sensorsFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c sensorsConfig
	fs.IntVar(&c.sensors, "sensors", 5, "sensor nodes (real libp2p hosts on mocknet), one stream each")
	fs.Float64Var(&c.rate, "rate", 2, "readings per second each sensor pushes while the owner asks")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long the sensors push (the owner asks meanwhile)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency of every link")
	fs.IntVar(&c.queries, "queries", 200, "questions the owner asks its named sources, one source each, in turn, at most 8/s per source")
	fs.IntVar(&c.ingest, "ingest", 2000, "readings pushed one after another on a node of its own for the ingest rate")
	return func(e *env) (any, error) { return runSensors(context.Background(), e, c) }
}

// runSensors runs S sensors, an owner and a tenant on a mocknet whose
// links have the latency given, the owner and the tenant connected to
// every sensor and granted every stream, the owner naming each sensor:
//
//   - questions: while every sensor pushes R readings/s (for -duration
//     at least), the owner asks "humidity > 50%" of one named source
//     after another, at most 8 a second of each; each answer's
//     readings are decrypted and verified on the owner. The epoch keys
//     are fetched once per sensor before measuring;
//   - revoke: each sensor revokes the tenant; the time until the revoke
//     returned (the next reading goes under a key the tenant is refused),
//     then checked: the tenant's question is denied;
//   - ingest: one more node pushes readings back to back.
func runSensors(ctx context.Context, e *env, c sensorsConfig) (*sensorsResult, error) {
	if c.sensors < 1 || c.rate <= 0 || c.duration <= 0 || c.latency < 0 || c.queries < 1 || c.ingest < 1 {
		return nil, errors.New("-sensors, -queries and -ingest must be at least 1, -rate and -duration positive, -latency not negative")
	}
	res := &sensorsResult{Scenario: "sensors", Sensors: c.sensors, ReadingsPerS: c.rate, LatencyMs: int(c.latency / time.Millisecond),
		Queries: c.queries, BoundMs: ms(2 * c.latency)}

	net := nodetest.NewNet(c.latency)
	defer net.Close()
	cfg := node.Config{DisableMDNS: true, Keys: keys.Config{MinRequestSize: 300}, Sensors: sensors.Config{MinRequestSize: 300}}
	start := func() (*node.Node, error) { return net.Start(ctx, cfg) }
	owner, err := start()
	if err != nil {
		return nil, err
	}
	tenant, err := start()
	if err != nil {
		return nil, err
	}
	sensors := make([]*node.Node, c.sensors)
	stream := func(i int) string { return fmt.Sprintf("s%d/humidity", i) }
	for i := range sensors {
		s, err := start()
		if err != nil {
			return nil, err
		}
		sensors[i] = s
		if _, err := s.SensorAdd(ctx, api.StreamOptions{Name: stream(i), Unit: "%"}); err != nil {
			return nil, err
		}
		for _, r := range []*node.Node{owner, tenant} {
			if err := nodetest.ConnectNodes(ctx, r, s); err != nil {
				return nil, err
			}
			if _, err := s.AccessGrant(ctx, api.GrantOptions{Reader: r.ID().String(), Streams: []string{stream(i)}}); err != nil {
				return nil, err
			}
			if _, err := r.NameSet(ctx, fmt.Sprintf("s%d", i), []string{s.ID().String()}); err != nil {
				return nil, err
			}
		}
		if _, err := s.SensorPush(ctx, api.PushRequest{Stream: stream(i), Value: 55}); err != nil {
			return nil, err
		}
	}
	e.logf("%d sensors, an owner and a tenant on mocknet, %s links", c.sensors, c.latency)
	ask := func(r *node.Node, i int) (*api.SensorSearchResult, error) {
		return r.SensorSearch(ctx, api.SensorSearchRequest{Query: "humidity > 50%", Sources: fmt.Sprintf("s%d", i), Limit: 20})
	}
	// The first question to each sensor fetches its epoch key: not
	// measured.
	for i := range sensors {
		for _, r := range []*node.Node{owner, tenant} {
			a, err := ask(r, i)
			if err != nil {
				return nil, err
			}
			if len(a.Readings) == 0 {
				return nil, fmt.Errorf("warm-up: sensor %d answered no reading: %+v", i, a.Sources)
			}
		}
	}

	// Questions while the sensors push.
	load, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pushErr := make([]error, len(sensors))
	pushed := make([]int, len(sensors))
	period := time.Duration(float64(time.Second) / c.rate)
	for i, s := range sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(period)
			defer tick.Stop()
			for v := 0; ; v++ {
				select {
				case <-load.Done():
					return
				case <-tick.C:
				}
				if _, err := s.SensorPush(ctx, api.PushRequest{Stream: stream(i), Value: 51 + float64(v%40)}); err != nil {
					pushErr[i] = err
					return
				}
				pushed[i]++
			}
		}()
	}
	// The owner asks at most 8 questions a second of each source: under
	// the 10 a second each source answers one asker.
	pace := time.NewTicker(time.Second / time.Duration(8*len(sensors)))
	defer pace.Stop()
	began := time.Now()
	var lat []float64
	var askErr error
	for q := range c.queries {
		<-pace.C
		t0 := time.Now()
		a, err := ask(owner, q%len(sensors))
		lat = append(lat, ms(time.Since(t0)))
		if err == nil && (len(a.Readings) == 0 || a.Sources[0].Error != "") {
			err = fmt.Errorf("question %d: no reading: %+v", q, a.Sources)
		}
		if err != nil {
			askErr = err
			break
		}
	}
	if rest := c.duration - time.Since(began); rest > 0 && askErr == nil {
		time.Sleep(rest)
	}
	stop()
	wg.Wait()
	if err := errors.Join(append(pushErr, askErr)...); err != nil {
		return nil, err
	}
	total := 0
	for _, n := range pushed {
		total += n
	}
	slices.Sort(lat)
	res.QueryP50Ms, res.QueryP99Ms = round(quantile(lat, 0.5), 2), round(quantile(lat, 0.99), 2)
	e.logf("questions to one named source: p50 %.1f ms, p99 %.1f ms (bound: one round trip, %.0f ms); %d questions while %d readings were pushed in %s",
		res.QueryP50Ms, res.QueryP99Ms, res.BoundMs, len(lat), total, time.Since(began).Round(time.Millisecond))

	// Revoke the tenant on every sensor.
	for i, s := range sensors {
		t0 := time.Now()
		if _, err := s.AccessRevoke(ctx, tenant.ID().String(), nil); err != nil {
			return nil, err
		}
		res.RevokeEffectiveMs = max(res.RevokeEffectiveMs, round(ms(time.Since(t0)), 3))
		r, err := s.SensorPush(ctx, api.PushRequest{Stream: stream(i), Value: 99})
		if err != nil {
			return nil, err
		}
		a, err := ask(tenant, i)
		if err != nil {
			return nil, err
		}
		for _, got := range a.Readings {
			if got.Key == r.Key {
				return nil, fmt.Errorf("sensor %d: the revoked tenant read the next reading", i)
			}
		}
		if a.Sources[0].Code != string(protocol.CodeAccessDenied) {
			return nil, fmt.Errorf("sensor %d: the revoked tenant was answered %+v", i, a.Sources[0])
		}
	}
	e.logf("revoke effective (the next reading unreadable to the tenant): at most %.3f ms over %d sensors", res.RevokeEffectiveMs, len(sensors))

	// Ingest on a node of its own.
	in, err := start()
	if err != nil {
		return nil, err
	}
	if _, err := in.SensorAdd(ctx, api.StreamOptions{Name: "ingest/power", Unit: "W"}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	for i := range c.ingest {
		if _, err := in.SensorPush(ctx, api.PushRequest{Stream: "ingest/power", Value: float64(i % 1000)}); err != nil {
			return nil, err
		}
	}
	res.IngestReadingsPerS = round(rate(c.ingest, time.Since(t0)), 1)
	res.SignPerS = round(signRate(time.Second), 0)
	e.logf("ingest: %.0f readings/s signed, encrypted and stored, one after another (raw Ed25519 signing: %.0f/s on one core)", res.IngestReadingsPerS, res.SignPerS)
	res.RSSMB = rssMB()
	return res, nil
}

// signRate is raw Ed25519 signatures per second of a reading-sized message
// on one core, over about d.
func signRate(d time.Duration) float64 {
	_, key, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 600)
	n, start := 0, time.Now()
	for time.Since(start) < d || n == 0 {
		ed25519.Sign(key, msg)
		n++
	}
	return rate(n, time.Since(start))
}
