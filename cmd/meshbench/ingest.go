package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/meshprotocol/mesh/internal/corpus"
	"github.com/meshprotocol/mesh/protocol"
)

// ingestResult is the JSON line of the ingest scenario.
type ingestResult struct {
	Scenario   string  `json:"scenario"`
	Records    int     `json:"records"`
	VerifyPerS float64 `json:"verify_per_s"`
	IngestPerS float64 `json:"ingest_per_s"`
	Ratio      float64 `json:"ratio"`
	// CloseMs is how long closing the store took: the index persists
	// there what it had not yet. RatioWithClose counts it in the ingest
	// time, so that index work left for later does not raise the ratio.
	CloseMs        float64 `json:"close_ms"`
	RatioWithClose float64 `json:"ratio_with_close"`
	Workers        int     `json:"workers"`
	Batch          int     `json:"batch"`
	corpusInfo
}

// verifyPasses is how many times phase 1 verifies the whole set.
const verifyPasses = 3

type ingestConfig struct {
	n          int
	batch      int
	publishers int
	workers    int
	seed       int64
	dir        string
}

func ingestFlags(fs *flag.FlagSet) func(*env) (any, error) {
	var c ingestConfig
	fs.IntVar(&c.n, "n", 20000, "number of signed lessons")
	fs.IntVar(&c.batch, "batch", 256, "lessons per PutBatch (one durable commit each)")
	fs.IntVar(&c.publishers, "publishers", 16, "number of publishers (Ed25519 keys) signing the lessons")
	fs.IntVar(&c.workers, "workers", runtime.GOMAXPROCS(0), "goroutines for both phases (verify, and decode+verify+PutBatch)")
	fs.Int64Var(&c.seed, "seed", 1, "corpus sampling seed")
	fs.StringVar(&c.dir, "dir", "", "build the store in `DIR` (empty or new) and keep it; default: a temporary directory, removed")
	return func(e *env) (any, error) { return runIngest(context.Background(), e, c) }
}

// signedSet is the input of both ingest phases.
type signedSet struct {
	encoded  [][]byte            // JSON of each SignedLesson, what arrives off the wire
	payloads [][]byte            // canonical signing payloads
	sigs     [][]byte            // raw signatures
	keys     []ed25519.PublicKey // signer of each lesson
}

func runIngest(ctx context.Context, e *env, c ingestConfig) (*ingestResult, error) {
	if c.n <= 0 || c.batch <= 0 || c.publishers <= 0 || c.workers <= 0 {
		return nil, errors.New("-n, -batch, -publishers and -workers must be positive")
	}
	start := time.Now()
	docs, info, err := loadCorpus(e, c.n, c.seed)
	if err != nil {
		return nil, err
	}
	e.logf("loaded %d corpus docs in %s", len(docs), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	set, err := signAll(docs, c.publishers, c.workers)
	if err != nil {
		return nil, err
	}
	e.logf("signed and encoded %d lessons by %d publishers in %s", c.n, c.publishers, time.Since(start).Round(time.Millisecond))

	// Phase 1: raw Ed25519 verification of the precomputed payloads. A
	// pass over 20000 records takes well under a second, so one pass is at
	// the mercy of whatever else the machine does: the rate is the median of
	// verifyPasses passes.
	e.logf("load average: %s", loadAvg())
	stop := e.profile("ingest-verify")
	var passes []time.Duration
	var verifyCPU time.Duration
	for p := 0; p < verifyPasses; p++ {
		cpu0 := cpuTime()
		start = time.Now()
		err = parallel(c.workers, c.n, func(i int) error {
			if !ed25519.Verify(set.keys[i], set.payloads[i], set.sigs[i]) {
				return fmt.Errorf("lesson %d: signature does not verify", i)
			}
			return nil
		})
		passes = append(passes, time.Since(start))
		verifyCPU += cpuTime() - cpu0
		if err != nil {
			stop()
			return nil, err
		}
	}
	stop()
	verifyCPU /= verifyPasses
	slices.Sort(passes)
	verifyDur := passes[len(passes)/2]
	e.logf("phase 1: %d raw ed25519 verifies in %s (median of %d passes, %s to %s) on %d workers (%.0f/s); process CPU %s (%.0f µs per verify)",
		c.n, verifyDur.Round(time.Millisecond), verifyPasses, passes[0].Round(time.Millisecond), passes[len(passes)-1].Round(time.Millisecond),
		c.workers, rate(c.n, verifyDur), verifyCPU.Round(time.Millisecond), float64(verifyCPU.Microseconds())/float64(c.n))

	// Phase 2: decode + protocol.Verify + PutBatch into a durable store.
	dir, cleanup, err := workDir(c.dir, "meshbench-ingest-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	nb := (c.n + c.batch - 1) / c.batch
	opts := protocol.VerifyOptions{Now: time.Now()}
	// Where phase 2's time goes, summed over workers.
	var decodeNS, putNS atomic.Int64
	stop = e.profile("ingest-store")
	cpu0 := cpuTime()
	start = time.Now()
	err = parallel(c.workers, nb, func(b int) error {
		t0 := time.Now()
		lo, hi := b*c.batch, min((b+1)*c.batch, c.n)
		lessons := make([]*protocol.Lesson, 0, hi-lo)
		for i := lo; i < hi; i++ {
			sl, err := protocol.DecodeSignedLesson(set.encoded[i])
			if err != nil {
				return fmt.Errorf("lesson %d: %w", i, err)
			}
			if err := protocol.Verify(sl, opts); err != nil {
				return fmt.Errorf("lesson %d: %w", i, err)
			}
			l := &sl.Lesson
			l.Visibility = sl.Publication.Visibility
			lessons = append(lessons, l)
		}
		t1 := time.Now()
		decodeNS.Add(int64(t1.Sub(t0)))
		err := st.PutBatch(ctx, lessons)
		putNS.Add(int64(time.Since(t1)))
		return err
	})
	ingestDur := time.Since(start)
	ingestCPU := cpuTime() - cpu0
	stop()
	if err != nil {
		return nil, err
	}
	e.logf("phase 2: %d lessons decoded, verified and stored (%d batches of %d, durable, indexed) in %s on %d workers (%.0f/s)",
		c.n, nb, c.batch, ingestDur.Round(time.Millisecond), c.workers, rate(c.n, ingestDur))
	e.logf("phase 2: worker time: decode+verify %s, PutBatch %s (%.1f ms per batch); process CPU %s (%.0f µs per lesson)",
		time.Duration(decodeNS.Load()).Round(time.Millisecond), time.Duration(putNS.Load()).Round(time.Millisecond),
		ms(time.Duration(putNS.Load()))/float64(nb), ingestCPU.Round(time.Millisecond), float64(ingestCPU.Microseconds())/float64(c.n))
	start = time.Now()
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close store: %w", err)
	}
	closeDur := time.Since(start)
	e.logf("store closed in %s; load average: %s", closeDur.Round(time.Millisecond), loadAvg())

	if verifyCPU > 0 && ingestCPU > 0 {
		// On a machine shared with other work, wall-clock rates move with
		// the load; the CPU cost per record does much less.
		e.logf("cpu ratio (verify CPU per record / ingest CPU per record): %.3f", float64(verifyCPU)/float64(ingestCPU))
	}
	v, in := rate(c.n, verifyDur), rate(c.n, ingestDur)
	res := &ingestResult{
		Scenario:   "ingest",
		Records:    c.n,
		VerifyPerS: round(v, 1),
		IngestPerS: round(in, 1),
		Workers:    c.workers,
		Batch:      c.batch,
		CloseMs:    round(ms(closeDur), 1),
		corpusInfo: info,
	}
	if v > 0 {
		res.Ratio = round(in/v, 4)
		res.RatioWithClose = round(rate(c.n, ingestDur+closeDur)/v, 4)
	}
	return res, nil
}

// publisherKey returns the fixed key of publisher i.
func publisherKey(i int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "meshbench publisher %d", i))
	return ed25519.NewKeyFromSeed(seed[:])
}

// signAll turns docs into public lessons signed round-robin by the
// publishers, encodes them, and precomputes what phase 1 verifies.
func signAll(docs []corpus.Doc, publishers, workers int) (*signedSet, error) {
	keys := make([]ed25519.PrivateKey, publishers)
	for i := range keys {
		keys[i] = publisherKey(i)
	}
	n := len(docs)
	set := &signedSet{
		encoded:  make([][]byte, n),
		payloads: make([][]byte, n),
		sigs:     make([][]byte, n),
		keys:     make([]ed25519.PublicKey, n),
	}
	now := time.Now()
	err := parallel(workers, n, func(i int) error {
		d := docs[i]
		key := keys[i%publishers]
		l := &protocol.Lesson{
			ID:        d.ID,
			Type:      protocol.TypeLesson,
			Title:     d.Title,
			Content:   d.Content,
			Tags:      d.Tags,
			CreatedAt: now.UnixMilli(),
		}
		pub := protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli()}
		if t := topicOf(d.Tags); t != "" {
			pub.Topics = []string{t}
		}
		sl, err := protocol.Sign(key, l, pub, now)
		if err != nil {
			return fmt.Errorf("sign %s: %w", d.ID, err)
		}
		if set.encoded[i], err = sl.Encode(); err != nil {
			return fmt.Errorf("encode %s: %w", d.ID, err)
		}
		if set.payloads[i], err = protocol.SigningPayload(&sl.Lesson, &sl.Publication, sl.Signature.Timestamp); err != nil {
			return fmt.Errorf("payload %s: %w", d.ID, err)
		}
		if set.sigs[i], err = base64.StdEncoding.DecodeString(sl.Signature.Sig); err != nil {
			return fmt.Errorf("signature %s: %w", d.ID, err)
		}
		set.keys[i] = key.Public().(ed25519.PublicKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return set, nil
}

// topicOf picks a publication topic from a doc's tags: the last path element
// that is a valid topic name.
func topicOf(tags []string) string {
	for i := len(tags) - 1; i >= 0; i-- {
		t := tags[i]
		ok := len(t) <= protocol.MaxTagLength
		for j := 0; j < len(t) && ok; j++ {
			c := t[j]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		}
		if ok && t != "" {
			return t
		}
	}
	return ""
}
