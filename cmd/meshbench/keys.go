package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/keys"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/protocol"
)

func init() {
	scenarios = append(scenarios, scenario{"keys", keysFlags})
}

// keysResult is the JSON line of the keys scenario. Each latency has its
// bound beside it: one round trip over the links (2 × latency), what a key
// fetch, a parallel gathering of escrow shares and a pushed revocation
// each cost at the least.
type keysResult struct {
	Scenario               string  `json:"scenario"`
	Readers                int     `json:"readers"`
	LatencyMs              int     `json:"latency_ms"`
	Lessons                int     `json:"lessons"`
	KeyFetchP50Ms          float64 `json:"key_fetch_p50_ms"`
	KeyFetchP99Ms          float64 `json:"key_fetch_p99_ms"`
	KeyFetchBoundMs        float64 `json:"key_fetch_bound_ms"`
	EscrowReconstructP50Ms float64 `json:"escrow_reconstruct_p50_ms"`
	EscrowReconstructP99Ms float64 `json:"escrow_reconstruct_p99_ms"`
	EscrowBoundMs          float64 `json:"escrow_reconstruct_bound_ms"`
	EscrowThreshold        string  `json:"escrow"`
	RevokeToDeniedP50Ms    float64 `json:"revoke_to_denied_p50_ms"`
	RevokeToDeniedP99Ms    float64 `json:"revoke_to_denied_p99_ms"`
	RevokeBoundMs          float64 `json:"revoke_to_denied_bound_ms"`
	EncryptMBs             float64 `json:"encrypt_mb_s"`
	DecryptMBs             float64 `json:"decrypt_mb_s"`
	PlaintextKiB           int     `json:"plaintext_kib"`
	RSSMB                  float64 `json:"rss_mb"`
}

type keysConfig struct {
	readers int
	lessons int
	latency time.Duration
	size    int
	cpu     time.Duration
}

func keysFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c keysConfig
	fs.IntVar(&c.readers, "readers", 20, "reader nodes (real libp2p hosts on mocknet), each reading every lesson")
	fs.IntVar(&c.lessons, "lessons", 5, "encrypted lessons published (each read by every reader, then revoked)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "latency of every link")
	fs.IntVar(&c.size, "size", 100<<10, "plaintext bytes of the lesson encrypted and decrypted for the throughput figures")
	fs.DurationVar(&c.cpu, "cpu", time.Second, "how long each of the encrypt and decrypt loops runs")
	return func(e *env) (any, error) { return runKeys(context.Background(), e, c) }
}

// runKeys runs an author, three escrow nodes and the readers on a mocknet
// whose links have the latency given, every reader connected to the author
// and to the escrow nodes:
//
//   - key fetch: every reader reads every lesson (encrypted, trusted
//     access) for the first time, so the key comes from the author: one
//     key request each;
//   - revoke to denied: the author revokes each lesson for good; for every
//     reader, the time from the revoke's start to when the reader has
//     dropped the key (the pushed notice arrived);
//   - escrow reconstruct: lessons published with a 2-of-3 escrow, the
//     author stopped, every reader reads each through escrow (asking the
//     unreachable author and, at the same time, its peers, two of whose
//     shares rebuild the key);
//   - encrypt and decrypt throughput of a lesson of -size bytes, on one
//     core.
func runKeys(ctx context.Context, e *env, c keysConfig) (*keysResult, error) {
	if c.readers < 1 || c.lessons < 1 || c.latency < 0 || c.size < 1 || c.size > protocol.MaxRecordSize-4<<10 {
		return nil, errors.New("-readers and -lessons must be at least 1, -latency not negative, -size 1 to 124 KiB")
	}
	res := &keysResult{Scenario: "keys", Readers: c.readers, LatencyMs: int(c.latency / time.Millisecond), Lessons: c.lessons,
		EscrowThreshold: "2 of 3", PlaintextKiB: c.size >> 10}
	rt := ms(2 * c.latency)
	res.KeyFetchBoundMs, res.EscrowBoundMs, res.RevokeBoundMs = rt, rt, rt

	res.EncryptMBs, res.DecryptMBs = cipherRates(c.size, c.cpu)
	e.logf("AES-256-GCM on a %d KiB lesson: encrypt %.0f MB/s, decrypt %.0f MB/s", c.size>>10, res.EncryptMBs, res.DecryptMBs)

	net := nodetest.NewNet(c.latency)
	defer net.Close()
	// Key requests are padded past mocknet's 256 bytes, so that they pay
	// the link latency as on a real link (mocknet delivers a shorter
	// write followed by a close at once).
	cfg := node.Config{DisableMDNS: true, Keys: keys.Config{MinRequestSize: 300}}
	start := func() (*node.Node, error) { return net.Start(ctx, cfg) }
	author, err := start()
	if err != nil {
		return nil, err
	}
	var escrow, readers []*node.Node
	for range 3 {
		n, err := start()
		if err != nil {
			return nil, err
		}
		escrow = append(escrow, n)
	}
	for range c.readers {
		n, err := start()
		if err != nil {
			return nil, err
		}
		readers = append(readers, n)
	}
	all := append(append([]*node.Node{author}, escrow...), readers...)
	if err := nodetest.TrustEach(all...); err != nil {
		return nil, err
	}
	for _, n := range all[1:] {
		if err := nodetest.ConnectNodes(ctx, n, author); err != nil {
			return nil, err
		}
	}
	for _, r := range readers {
		for _, es := range escrow {
			if err := nodetest.ConnectNodes(ctx, r, es); err != nil {
				return nil, err
			}
		}
	}
	e.logf("%d readers, 3 escrow nodes and an author on mocknet, %s links", c.readers, c.latency)

	publish := func(i int, policy api.PolicyOptions) (*protocol.EncryptedLesson, error) {
		id, _, err := author.Put(ctx, &protocol.Lesson{Type: "lesson", Title: fmt.Sprintf("sealed %d", i), Content: strings.Repeat("sealed words ", 64)})
		if err != nil {
			return nil, err
		}
		p, err := author.PublishEncrypted(ctx, id, api.EncryptOptions{Visibility: protocol.VisibilityUnlisted, Policy: policy})
		if err != nil {
			return nil, err
		}
		for _, s := range p.Notices {
			if !s.Delivered {
				return nil, fmt.Errorf("escrow share not delivered to %s: %s", s.NodeID, s.Error)
			}
		}
		return p.EncryptedLesson, nil
	}

	// Key fetch, then revoke to denied.
	var fetch, denied []float64
	for i := range c.lessons {
		el, err := publish(i, api.PolicyOptions{Access: protocol.AccessTrusted})
		if err != nil {
			return nil, err
		}
		lat, err := readAll(ctx, readers, el, "author")
		if err != nil {
			return nil, err
		}
		fetch = append(fetch, lat...)
		lat, err = revokeToDenied(ctx, author, readers, el)
		if err != nil {
			return nil, err
		}
		denied = append(denied, lat...)
	}
	slices.Sort(fetch)
	slices.Sort(denied)
	res.KeyFetchP50Ms, res.KeyFetchP99Ms = round(quantile(fetch, 0.5), 2), round(quantile(fetch, 0.99), 2)
	res.RevokeToDeniedP50Ms, res.RevokeToDeniedP99Ms = round(quantile(denied, 0.5), 2), round(quantile(denied, 0.99), 2)
	e.logf("key fetch from the author: p50 %.1f ms, p99 %.1f ms (bound: one round trip, %.0f ms); %d fetches", res.KeyFetchP50Ms, res.KeyFetchP99Ms, rt, len(fetch))
	e.logf("revoke to denied at the readers: p50 %.1f ms, p99 %.1f ms (bound: one round trip, %.0f ms)", res.RevokeToDeniedP50Ms, res.RevokeToDeniedP99Ms, rt)

	// Escrow: published with shares, then the author stopped.
	var sealed []*protocol.EncryptedLesson
	ids := []string{escrow[0].ID().String(), escrow[1].ID().String(), escrow[2].ID().String()}
	for i := range c.lessons {
		el, err := publish(c.lessons+i, api.PolicyOptions{Access: protocol.AccessTrusted, EscrowNodes: ids, Threshold: 2})
		if err != nil {
			return nil, err
		}
		sealed = append(sealed, el)
	}
	// An escrow node re-learns its authors' revocations from its peers on
	// the first key request after it starts (one more round trip, once):
	// that is done before measuring.
	for _, es := range escrow {
		if err := warmKeys(ctx, readers[0], es, sealed[0].Encryption.KeyID); err != nil {
			return nil, err
		}
	}
	if err := author.Close(); err != nil {
		return nil, err
	}
	var escrowLat []float64
	for _, el := range sealed {
		lat, err := readAll(ctx, readers, el, "escrow")
		if err != nil {
			return nil, err
		}
		escrowLat = append(escrowLat, lat...)
	}
	slices.Sort(escrowLat)
	res.EscrowReconstructP50Ms, res.EscrowReconstructP99Ms = round(quantile(escrowLat, 0.5), 2), round(quantile(escrowLat, 0.99), 2)
	e.logf("escrow reconstruct (author stopped, 2 of 3 shares): p50 %.1f ms, p99 %.1f ms (bound: one round trip, %.0f ms)",
		res.EscrowReconstructP50Ms, res.EscrowReconstructP99Ms, rt)
	res.RSSMB = rssMB()
	return res, nil
}

// readAll has every reader read el at once, the key coming from from
// ("author" or "escrow"), and returns each read's time in ms.
func readAll(ctx context.Context, readers []*node.Node, el *protocol.EncryptedLesson, from string) ([]float64, error) {
	out := make([]float64, len(readers))
	errs := make([]error, len(readers))
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			p, err := r.Keys().Read(ctx, el)
			out[i] = ms(time.Since(start))
			if err == nil && !strings.HasPrefix(p.From, from) {
				err = fmt.Errorf("the key came from %s, not the %s", p.From, from)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// warmKeys asks n for keyID from r's host, as a reader would.
func warmKeys(ctx context.Context, r, n *node.Node, keyID string) error {
	req, _ := (&protocol.KeyRequest{Type: protocol.MsgKeyRequest, KeyID: keyID}).Encode()
	b, err := streamrpc.Call(ctx, r.Host(), n.ID(), protocol.ProtocolKeys, req, protocol.MaxKeyResponseSize)
	if err != nil {
		return err
	}
	resp, err := protocol.DecodeKeyResponse(b)
	if err != nil {
		return err
	}
	return resp.Err()
}

// revokeToDenied revokes el for good and returns, for each reader, the
// time from the revoke's start until the reader no longer holds the key.
func revokeToDenied(ctx context.Context, author *node.Node, readers []*node.Node, el *protocol.EncryptedLesson) ([]float64, error) {
	keyID := el.Encryption.KeyID
	out := make([]float64, len(readers))
	start := time.Now()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.Keys().Cached(keyID) {
				select {
				case <-done:
					return
				case <-time.After(200 * time.Microsecond):
				}
			}
			out[i] = ms(time.Since(start))
		}()
	}
	_, err := author.RevokeHard(ctx, el.LessonID, "")
	if err != nil {
		close(done)
		wg.Wait()
		return nil, err
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		close(done)
		<-waited
		return nil, errors.New("a reader kept the key 30 s after the hard revoke")
	}
	return out, nil
}

// cipherRates measures AES-256-GCM over a lesson of size bytes of content:
// EncryptLesson and DecryptLesson (canonical JSON, AAD, checks included),
// in MB of plaintext per second, each for about d.
func cipherRates(size int, d time.Duration) (enc, dec float64) {
	key := protocol.NewLessonKey()
	l := &protocol.Lesson{ID: "bench", Type: "lesson", Title: "throughput", Content: strings.Repeat("x", size)}
	nodeID := "12D3KooWF7PeaaxapfGJ1qWefsCkwKrcL16ZnUPgZdPbfpMZHuTq"
	p := protocol.EncryptParams{NodeID: nodeID, KeyID: "kbench"}
	var el *protocol.EncryptedLesson
	n, start := 0, time.Now()
	for time.Since(start) < d || n == 0 {
		var err error
		if el, err = protocol.EncryptLesson(key, l, p); err != nil {
			return 0, 0
		}
		n++
	}
	enc = round(float64(n*size)/time.Since(start).Seconds()/1e6, 1)
	el.Signature.NodeID = nodeID
	n, start = 0, time.Now()
	for time.Since(start) < d || n == 0 {
		if _, err := protocol.DecryptLesson(el, key); err != nil {
			return enc, 0
		}
		n++
	}
	dec = round(float64(n*size)/time.Since(start).Seconds()/1e6, 1)
	return enc, dec
}
