package sensors

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
)

// maxHeldScan bounds the held ciphertext of one source looked at when the
// source itself cannot answer.
const maxHeldScan = 5000

// Search asks the sources of req its question (straight to each node, in
// parallel, within the deadline), decrypts and verifies every reading
// they answer with (keys from memory or the source's key server), checks
// each against the question itself, and merges them, newest first. A
// source that cannot be reached is answered from the ciphertext of its
// readings this node holds (received by gossip or sync, perhaps from a
// relay while the source was away), which is decrypted here alike.
func (s *Service) Search(ctx context.Context, req api.SensorSearchRequest) (*api.SensorSearchResult, error) {
	q, err := ParseQuery(req.Query, s.now(), time.Local)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > protocol.MaxSensorReadings {
		return nil, fmt.Errorf("%w: limit %d: want 0 to %d", protocol.ErrInvalid, req.Limit, protocol.MaxSensorReadings)
	}
	q.Limit = req.Limit
	q.Streams = req.Streams
	if err := q.Validate(); err != nil {
		return nil, err
	}
	sources, err := s.resolve(ctx, req.Sources)
	if err != nil {
		return nil, err
	}
	d := defaultDeadline
	if req.DeadlineMs > 0 {
		d = min(time.Duration(req.DeadlineMs)*time.Millisecond, time.Minute)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := &api.SensorSearchResult{Success: true, Sources: make([]api.SourceResult, len(sources)), Readings: []api.Reading{}}
	res.Query.Words, res.Query.Comparisons = describe(q)
	res.Query.Since, res.Query.Until = q.Since, q.Until
	parts := make([][]api.Reading, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Sources[i], parts[i] = s.askSource(ctx, q, src)
		}()
	}
	wg.Wait()
	for _, p := range parts {
		res.Readings = append(res.Readings, p...)
	}
	sort.SliceStable(res.Readings, func(i, j int) bool { return res.Readings[i].At > res.Readings[j].At })
	if req.Stats {
		res.Stats = statsOf(res.Readings)
	}
	return res, nil
}

// askSource asks one source, or answers from this node's own streams.
func (s *Service) askSource(ctx context.Context, q *protocol.SensorQuery, src source) (api.SourceResult, []api.Reading) {
	sr := api.SourceResult{Source: src.id, Name: src.name, Streams: []string{}}
	if src.id == s.self {
		return s.askSelf(ctx, q, sr)
	}
	a, err := s.call(ctx, src.id, q)
	if err == nil {
		err = a.Err()
	}
	held := s.held(ctx, src.id)
	if err != nil {
		sr.Error, sr.Code = err.Error(), string(protocol.CodeOf(err))
		if len(held) == 0 {
			return sr, nil
		}
		// The source is away (or refuses): what this node holds of it may
		// still be read, if the keys are.
		var out []api.Reading
		for _, el := range held {
			r, ok, rerr := s.open(ctx, el, src, q)
			switch {
			case rerr != nil:
				sr.Unreadable++
			case ok:
				r.Held = true
				out = append(out, r)
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].At > out[j].At })
		limit := q.Limit
		if limit == 0 {
			limit = protocol.DefaultSensorReadings
		}
		if len(out) > limit {
			out, sr.Truncated = out[:limit], true
		}
		sr.Readings = len(out)
		for _, r := range out {
			if !slices.Contains(sr.Streams, r.Stream) {
				sr.Streams = append(sr.Streams, r.Stream)
			}
		}
		return sr, out
	}
	for _, st := range a.Streams {
		sr.Streams = append(sr.Streams, st.Name)
	}
	sr.Truncated = a.Truncated
	var out []api.Reading
	var firstErr error
	for _, el := range a.Readings {
		if el.Signature.NodeID != src.id {
			sr.Unreadable++
			continue
		}
		r, ok, rerr := s.open(ctx, el, src, q)
		switch {
		case rerr != nil:
			sr.Unreadable++
			if firstErr == nil {
				firstErr = rerr
			}
		case ok:
			_, r.Held = held[el.Key()]
			out = append(out, r)
		default:
			sr.Unreadable++ // decrypted, but not what was asked: the source erred
		}
	}
	if len(out) == 0 && firstErr != nil {
		sr.Error, sr.Code = firstErr.Error(), string(protocol.CodeOf(firstErr))
	}
	sr.Readings = len(out)
	return sr, out
}

// askSelf answers q from this node's own streams, in the clear.
func (s *Service) askSelf(ctx context.Context, q *protocol.SensorQuery, sr api.SourceResult) (api.SourceResult, []api.Reading) {
	fit, matches, truncated := s.evaluate(q, s.granted(s.self))
	for _, f := range fit {
		sr.Streams = append(sr.Streams, f.Name)
	}
	sr.Truncated = truncated
	var out []api.Reading
	for _, m := range matches {
		l, err := s.deps.Store.Get(ctx, m.e.id)
		if err != nil {
			continue
		}
		if r, ok := readingOf(l, s.self); ok {
			r.Name = sr.Name
			if el, err := s.deps.Store.EncryptedPublication(ctx, m.e.id); err == nil {
				r.KeyID = el.Encryption.KeyID
			}
			out = append(out, r)
		}
	}
	sr.Readings = len(out)
	return sr, out
}

// call sends q to the source id and decodes its answer.
func (s *Service) call(ctx context.Context, id string, q *protocol.SensorQuery) (*protocol.SensorAnswer, error) {
	h := s.deps.Host
	if h == nil {
		return nil, fmt.Errorf("%w: the node is offline: run mesh daemon to ask other nodes", protocol.ErrUnavailable)
	}
	p, err := peer.Decode(id)
	if err != nil {
		return nil, err
	}
	if len(h.Network().ConnsToPeer(p)) == 0 {
		if s.deps.Connect != nil {
			err = s.deps.Connect(ctx, p)
		} else {
			err = h.Connect(ctx, peer.AddrInfo{ID: p})
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", protocol.ErrUnreachable, id, err)
		}
	}
	body, err := q.Encode()
	if err != nil {
		return nil, err
	}
	if pad := min(s.cfg.MinRequestSize, protocol.MaxSensorQuerySize) - len(body); pad > 0 {
		body = append(body, bytes.Repeat([]byte{' '}, pad)...)
	}
	b, err := streamrpc.Call(ctx, h, p, protocol.ProtocolSensors, body, protocol.MaxSensorAnswerSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrUnreachable, id, err)
	}
	a, err := protocol.DecodeSensorAnswer(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s answered: %v", protocol.ErrUnreachable, id, err)
	}
	return a, nil
}

// held is the ciphertext of id's readings this node holds, by key.
func (s *Service) held(ctx context.Context, id string) map[string]*protocol.EncryptedLesson {
	out := map[string]*protocol.EncryptedLesson{}
	_ = s.deps.Store.RemoteEncryptedOf(ctx, id, maxHeldScan, func(el *protocol.EncryptedLesson) bool {
		out[el.Key()] = el
		return true
	})
	return out
}

// open decrypts and verifies el (a reading of src), and checks it
// against q: ok is false for a record that is no reading, or one that
// does not answer q.
func (s *Service) open(ctx context.Context, el *protocol.EncryptedLesson, src source, q *protocol.SensorQuery) (api.Reading, bool, error) {
	if s.deps.Decrypt == nil {
		return api.Reading{}, false, fmt.Errorf("%w: this node cannot decrypt", protocol.ErrUnavailable)
	}
	l, err := s.deps.Decrypt(ctx, el)
	if err != nil {
		return api.Reading{}, false, err
	}
	r, ok := readingOf(l, src.id)
	if !ok || !streamFits(q, r.Stream, r.Unit) || !readingFits(q, r.At, r.Value, r.Anomaly) {
		return api.Reading{}, false, nil
	}
	r.Name, r.KeyID = src.name, el.Encryption.KeyID
	return r, true, nil
}

// readingOf reads a reading record.
func readingOf(l *protocol.Lesson, source string) (api.Reading, bool) {
	if l.Type != TypeReading {
		return api.Reading{}, false
	}
	var name, unit string
	if raw, ok := l.Extra["stream"]; !ok || json.Unmarshal(raw, &name) != nil || protocol.ValidateStreamName(name) != nil {
		return api.Reading{}, false
	}
	if raw, ok := l.Extra["unit"]; ok {
		_ = json.Unmarshal(raw, &unit)
	}
	v, ok := l.Number("value")
	if !ok {
		return api.Reading{}, false
	}
	score, _ := l.Number("score")
	return api.Reading{Key: l.ID + "@" + source, Source: source, Stream: name, Value: v, Unit: unit, At: l.CreatedAt,
		Expires: l.ExpiresAt, Anomaly: slices.Contains(l.Tags, TagAnomaly), Score: score}, true
}

// statsOf aggregates readings per source and stream: count, min, max,
// mean, and the last (newest) value, over the window found.
func statsOf(rs []api.Reading) []api.StreamStats {
	by := map[[2]string]*api.StreamStats{}
	var order [][2]string
	for _, r := range rs {
		k := [2]string{r.Source, r.Stream}
		st := by[k]
		if st == nil {
			st = &api.StreamStats{Source: r.Source, Stream: r.Stream, Unit: r.Unit, Min: r.Value, Max: r.Value, From: r.At, To: r.At}
			by[k] = st
			order = append(order, k)
		}
		st.Count++
		st.Min, st.Max = min(st.Min, r.Value), max(st.Max, r.Value)
		st.Mean += r.Value
		st.From, st.To = min(st.From, r.At), max(st.To, r.At)
		if r.At >= st.LastAt {
			st.Last, st.LastAt = r.Value, r.At
		}
	}
	out := make([]api.StreamStats, 0, len(order))
	for _, k := range order {
		st := by[k]
		st.Mean /= float64(st.Count)
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Stream < out[j].Stream
	})
	return out
}
