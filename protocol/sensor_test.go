package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestStreamNames(t *testing.T) {
	for _, ok := range []string{"basement/humidity", "garage/temp-1", "a", "home/floor_2/kitchen/power"} {
		if err := ValidateStreamName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Basement/x", "a//b", "/a", "a/", "a/b/c/d/e", strings.Repeat("a", MaxStreamNameLength+1), "a b", "a/*"} {
		if err := ValidateStreamName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: accepted (%v)", bad, err)
		}
	}
	if err := ValidateStreamPattern("basement/*"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		pattern, stream string
		want            bool
	}{
		{"basement/*", "basement/humidity", true},
		{"basement/humidity", "basement/humidity", true},
		{"basement/humidity", "basement/temperature", false},
		{"garage/*", "basement/humidity", false},
	} {
		if got := StreamMatches(c.pattern, c.stream); got != c.want {
			t.Errorf("StreamMatches(%q, %q) = %v", c.pattern, c.stream, got)
		}
	}
}

func TestSensorQueryRoundTrip(t *testing.T) {
	q := &SensorQuery{Type: MsgSensorQuery, Streams: []string{"basement/*"}, Words: []string{"humidity"},
		Comparisons: []SensorComparison{{Field: "humidity", Op: ">", Value: 60, Unit: "%"}}, Since: testNow.UnixMilli(), Limit: 10}
	b, err := q.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSensorQuery(b)
	if err != nil || got.Comparisons[0] != q.Comparisons[0] || got.Since != q.Since {
		t.Fatalf("%+v %v", got, err)
	}
	// Trailing whitespace (a padded question) is allowed.
	if _, err := DecodeSensorQuery(append(b, bytes.Repeat([]byte(" "), 300)...)); err != nil {
		t.Fatalf("a padded query: %v", err)
	}
	for _, bad := range []string{
		`{"type":"sensorQuery","extra":1}`,
		`{"type":"lesson"}`,
		`{"type":"sensorQuery","comparisons":[{"field":"humidity","op":"~","value":1}]}`,
		`{"type":"sensorQuery","comparisons":[{"field":"a/b","op":">","value":1}]}`,
		`{"type":"sensorQuery","since":5,"until":4}`,
		`{"type":"sensorQuery","limit":100000}`,
		`{"type":"sensorQuery","words":["two words"]}`,
		`{"type":"sensorQuery"} {}`,
		`[]`,
	} {
		if _, err := DecodeSensorQuery([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		} else {
			checkDecodeErr(t, err)
		}
	}
	big := append([]byte(`{"type":"sensorQuery","words":["`), bytes.Repeat([]byte("a"), MaxSensorQuerySize)...)
	if _, err := DecodeSensorQuery(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized query: %v", err)
	}
}

func TestSensorAnswerRoundTrip(t *testing.T) {
	el, err := DecodeEncryptedLesson(fuzzEncryptedSeeds(t)[2])
	if err != nil {
		t.Fatal(err)
	}
	a := &SensorAnswer{Type: MsgSensorAnswer, Streams: []StreamInfo{{Name: "basement/humidity", Unit: "%", TTLMs: 1000}}, Readings: []*EncryptedLesson{el}}
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSensorAnswer(b)
	if err != nil || len(got.Readings) != 1 || got.Readings[0].LessonID != el.LessonID || got.Err() != nil {
		t.Fatalf("%+v %v", got, err)
	}
	eb, _ := SensorErrorAnswer(ErrAccessDenied).Encode()
	if got, err := DecodeSensorAnswer(eb); err != nil || !errors.Is(got.Err(), ErrAccessDenied) {
		t.Fatalf("error answer: %+v %v", got, err)
	}
	for _, bad := range []string{
		`{"type":"sensorAnswer","readings":[null]}`,
		`{"type":"sensorAnswer","readings":[{}]}`,
		`{"type":"sensorAnswer","streams":[{"name":"Bad//","ttlMs":1}]}`,
		`{"type":"sensorAnswer","streams":[{"name":"a","ttlMs":-1}]}`,
		`{"type":"sensorAnswer","error":"ACCESS_DENIED","streams":[{"name":"a","ttlMs":1}]}`,
		`{"type":"sensorQuery"}`,
	} {
		if _, err := DecodeSensorAnswer([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		} else {
			checkDecodeErr(t, err)
		}
	}
	big := append([]byte(`{"type":"sensorAnswer","message":"`), bytes.Repeat([]byte("a"), MaxSensorAnswerSize)...)
	if _, err := DecodeSensorAnswer(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized answer: %v", err)
	}
}

// FuzzDecodeSensorQuery: no panic, errors that match a sentinel, and what
// decodes encodes and decodes again to the same query.
func FuzzDecodeSensorQuery(f *testing.F) {
	f.Add([]byte(`{"type":"sensorQuery","streams":["basement/*"],"words":["humidity"],"comparisons":[{"field":"humidity","op":">","value":60,"unit":"%"}],"since":1767225600000,"limit":100}`))
	f.Add([]byte(`{"type":"sensorQuery","words":["anomaly"],"until":1}`))
	f.Add([]byte(`{"type":"sensorQuery","comparisons":[{"field":"t","op":"<=","value":-1e308}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := DecodeSensorQuery(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		b, err := q.Encode()
		if err != nil {
			t.Fatalf("a decoded query does not encode: %v", err)
		}
		q2, err := DecodeSensorQuery(b)
		if err != nil {
			t.Fatalf("a re-encoded query does not decode: %v\n%s", err, b)
		}
		b2, _ := q2.Encode()
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the query:\n%s\n%s", b, b2)
		}
	})
}

// FuzzDecodeSensorAnswer: no panic, errors that match a sentinel, and what
// decodes encodes and decodes again.
func FuzzDecodeSensorAnswer(f *testing.F) {
	for _, el := range fuzzEncryptedSeeds(f) {
		f.Add([]byte(`{"type":"sensorAnswer","streams":[{"name":"basement/humidity","unit":"%","ttlMs":604800000}],"readings":[` + string(el) + `],"truncated":true}`))
	}
	f.Add([]byte(`{"type":"sensorAnswer","error":"ACCESS_DENIED","message":"not granted"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeSensorAnswer(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		_ = a.Err()
		b, err := a.Encode()
		if err != nil {
			t.Fatalf("a decoded answer does not encode: %v", err)
		}
		if _, err := DecodeSensorAnswer(b); err != nil {
			t.Fatalf("a re-encoded answer does not decode: %v\n%s", err, b)
		}
	})
}
