package sensors

import (
	"context"
	"fmt"
	"sort"

	"github.com/meshprotocol/mesh/internal/streamrpc"
	"github.com/meshprotocol/mesh/protocol"
)

// match is one reading that answers a question.
type match struct {
	stream *stream
	name   string
	unit   string
	e      entry
}

// evaluate runs q over streams (those the asker may read) on this node's
// plaintext index: the fitting streams, and the newest limit matching
// readings of them, newest first; truncated if more matched.
func (s *Service) evaluate(q *protocol.SensorQuery, streams map[string]*stream) (fit []protocol.StreamInfo, out []match, truncated bool) {
	limit := q.Limit
	if limit == 0 {
		limit = protocol.DefaultSensorReadings
	}
	now := s.now().UnixMilli()
	for name, st := range streams {
		st.mu.Lock()
		unit, ttl := st.rec.Unit, st.rec.TTLMs
		if !streamFits(q, name, unit) {
			st.mu.Unlock()
			continue
		}
		fit = append(fit, protocol.StreamInfo{Name: name, Unit: unit, TTLMs: ttl})
		for i := len(st.idx) - 1; i >= 0; i-- {
			e := st.idx[i]
			if q.Since != 0 && e.at < q.Since {
				break // the index is oldest first: the rest are older still
			}
			if e.expires <= now || !readingFits(q, e.at, e.value, e.anomaly) {
				continue
			}
			out = append(out, match{stream: st, name: name, unit: unit, e: e})
		}
		st.mu.Unlock()
	}
	sort.Slice(fit, func(i, j int) bool { return fit[i].Name < fit[j].Name })
	sort.SliceStable(out, func(i, j int) bool { return out[i].e.at > out[j].e.at })
	if len(out) > limit {
		out, truncated = out[:limit], true
	}
	return fit, out, truncated
}

// handle answers /mesh/sensors/1.0.0: only the streams the asker was
// granted are looked at, and the readings go out as they are kept,
// encrypted under their epoch keys.
func (s *Service) handle(ctx context.Context, r *streamrpc.Request) []byte {
	if r.Err != nil {
		return streamrpc.Encode(protocol.SensorErrorAnswer(r.Err))
	}
	q, err := protocol.DecodeSensorQuery(r.Body)
	if err != nil {
		return streamrpc.Encode(protocol.SensorErrorAnswer(err))
	}
	from := r.From.String()
	if !s.limit.Allow(from, s.now()) {
		return streamrpc.Encode(protocol.SensorErrorAnswer(fmt.Errorf("%w: too many questions; slow down", protocol.ErrRateLimited)))
	}
	streams := s.granted(from)
	if len(streams) == 0 {
		return streamrpc.Encode(protocol.SensorErrorAnswer(fmt.Errorf("%w: this node has granted %s no stream", protocol.ErrAccessDenied, from)))
	}
	return streamrpc.Encode(s.answer(ctx, q, streams))
}

// answer is the SensorAnswer to q over streams.
func (s *Service) answer(ctx context.Context, q *protocol.SensorQuery, streams map[string]*stream) *protocol.SensorAnswer {
	fit, matches, truncated := s.evaluate(q, streams)
	a := &protocol.SensorAnswer{Type: protocol.MsgSensorAnswer, Streams: fit, Truncated: truncated}
	size := 1024
	for _, m := range matches {
		el, err := s.deps.Store.EncryptedPublication(ctx, m.e.id)
		if err != nil {
			continue // expired or deleted since it was indexed
		}
		b, err := el.Encode()
		if err != nil {
			continue
		}
		if size += len(b) + 1; size > protocol.MaxSensorAnswerSize {
			a.Truncated = true
			break
		}
		a.Readings = append(a.Readings, el)
	}
	return a
}
