package sensors_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node/sensors"
	"github.com/meshprotocol/mesh/protocol"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 12, 4, 15, 30, 0, 0, time.UTC)
	q, err := sensors.ParseQuery("humidity > 60%", now, time.UTC)
	if err != nil || len(q.Comparisons) != 1 || q.Comparisons[0] != (protocol.SensorComparison{Field: "humidity", Op: ">", Value: 60, Unit: "%"}) {
		t.Fatalf("humidity > 60%%: %+v %v", q, err)
	}
	if q, err := sensors.ParseQuery("temperature last 24h", now, time.UTC); err != nil || q.Since != now.Add(-24*time.Hour).UnixMilli() || len(q.Words) != 1 {
		t.Fatalf("temperature last 24h: %+v %v", q, err)
	}
	if q, err := sensors.ParseQuery("power anomaly", now, time.UTC); err != nil || len(q.Words) != 2 {
		t.Fatalf("power anomaly: %+v %v", q, err)
	}
	if q, err := sensors.ParseQuery("temp <= 4 since 2026-12-01", now, time.UTC); err != nil || q.Since != time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli() || q.Comparisons[0].Op != "<=" {
		t.Fatalf("temp <= 4 since 2026-12-01: %+v %v", q, err)
	}
	for _, bad := range []string{"humidity >", "since never", "last forever", "\xff", strings.Repeat("a ", sensors.MaxQueryLength)} {
		if _, err := sensors.ParseQuery(bad, now, time.UTC); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseQuery: no panic; an error wraps protocol.ErrInvalid; what
// parses is a valid query that goes over the wire and back.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"humidity > 60%", "temp <= 4", "temperature last 24h", "since 2026-12-01", "today", "power anomaly",
		"basement humidity >= 61.5 % until 2026-12-02T10:00:00Z", "yesterday temp = -3.25°C", "last 2w"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 4, 15, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := sensors.ParseQuery(s, now, time.UTC)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("%q: an error that is not ErrInvalid: %v", s, err)
			}
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("%q parses to an invalid query: %v", s, err)
		}
		b, err := q.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.DecodeSensorQuery(b); err != nil {
			t.Fatalf("%q: the parsed query does not decode: %v\n%s", s, err, b)
		}
	})
}
