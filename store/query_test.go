package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meshprotocol/mesh/protocol"
)

func TestParseQuery(t *testing.T) {
	cmp := func(f, op string, v float64) Comparison { return Comparison{Field: f, Op: op, Value: v} }
	tests := []struct {
		in   string
		want ParsedQuery
	}{
		{"", ParsedQuery{}},
		{"   \t\n", ParsedQuery{}},
		{"retry backoff", ParsedQuery{Terms: []string{"retry", "backoff"}}},
		{`"exponential backoff" jitter`, ParsedQuery{Terms: []string{"jitter"}, Phrases: []string{"exponential backoff"}}},
		{`a"b c"d`, ParsedQuery{Terms: []string{"a", "d"}, Phrases: []string{"b c"}}},
		{`"" x`, ParsedQuery{Terms: []string{"x"}}},
		{"humidity > 60", ParsedQuery{Comparisons: []Comparison{cmp("humidity", ">", 60)}}},
		{"humidity > 60%", ParsedQuery{Comparisons: []Comparison{cmp("humidity", ">", 60)}}},
		{"temp<=20.5", ParsedQuery{Comparisons: []Comparison{cmp("temp", "<=", 20.5)}}},
		{"temp<= -3", ParsedQuery{Comparisons: []Comparison{cmp("temp", "<=", -3)}}},
		{"temp >=1e3", ParsedQuery{Comparisons: []Comparison{cmp("temp", ">=", 1000)}}},
		{"x=1 y <2", ParsedQuery{Comparisons: []Comparison{cmp("x", "=", 1), cmp("y", "<", 2)}}},
		{"sensor.humidity_pct >= 40 cellar", ParsedQuery{Terms: []string{"cellar"}, Comparisons: []Comparison{cmp("sensor.humidity_pct", ">=", 40)}}},
		{"cellar humidity < 50 damp", ParsedQuery{Terms: []string{"cellar", "damp"}, Comparisons: []Comparison{cmp("humidity", "<", 50)}}},
		{"use -> arrows", ParsedQuery{Terms: []string{"use", "->", "arrows"}}},
		{"std::vector C++ e.g.", ParsedQuery{Terms: []string{"std::vector", "C++", "e.g."}}},
		{"60 > humidity", ParsedQuery{Terms: []string{"60", ">", "humidity"}}},
		{"naïve café", ParsedQuery{Terms: []string{"naïve", "café"}}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseQuery(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []struct{ in, mention string }{
		{`"unterminated`, "unterminated quote"},
		{"humidity >", "want a number"},
		{"humidity > warm", "not a number"},
		{"humidity>warm", "not a number"},
		{"humidity > 60%%", "not a number"},
		{"x > 1e999", "not a number"},
		{"x > nan", "not a number"},
		{"x = --1", "not a number"},
		{"x > \"60\"", "want a number"},
		{strings.Repeat("a", 65) + " > 1", "at most 64 bytes"},
		{strings.Repeat("w ", MaxQueryClauses+1), "clauses"},
		{strings.Repeat("x", MaxQueryLength+1), "limit is 4096"},
		{"\xff", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(truncate(tc.in), func(t *testing.T) {
			_, err := ParseQuery(tc.in)
			if !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestComparisonMatch(t *testing.T) {
	for _, tc := range []struct {
		op   string
		v    float64
		want bool
	}{{">", 61, true}, {">", 60, false}, {">=", 60, true}, {"<", 59, true}, {"<", 60, false}, {"<=", 60, true}, {"=", 60, true}, {"=", 60.1, false}} {
		c := Comparison{Field: "h", Op: tc.op, Value: 60}
		if got := c.Match(tc.v); got != tc.want {
			t.Errorf("%v on %v = %v", c, tc.v, got)
		}
	}
	if s := (Comparison{Field: "h", Op: ">", Value: 60.5}).String(); s != "h > 60.5" {
		t.Errorf("String = %q", s)
	}
}

// FuzzParseQuery checks that ParseQuery never panics, fails only with
// ErrInvalid, keeps its caps, and that what it returns is well formed.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "retry backoff", `"exponential backoff" jitter`, "humidity > 60", "humidity > 60%",
		"temp<=20.5", "x=1 y <2 z>= -3e2", `"unterminated`, "a\"b c\"d", "use -> arrows",
		"humidity >", "humidity > warm", "\xff\xfe", "naïve\u00a0café", `"" "" x`, "a<b<c",
		"_x.y-z >= 0.5%", "=", ">", "a=", "a= =1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseQuery(text)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if len(text) > MaxQueryLength || !utf8.ValidString(text) {
			t.Fatalf("accepted over-long or invalid input")
		}
		if n := len(p.Terms) + len(p.Phrases) + len(p.Comparisons); n > MaxQueryClauses {
			t.Fatalf("%d clauses", n)
		}
		for _, w := range p.Terms {
			if w == "" || strings.ContainsAny(w, " \t\n\"") {
				t.Fatalf("bad term %q", w)
			}
		}
		for _, ph := range p.Phrases {
			if strings.Contains(ph, `"`) || strings.TrimSpace(ph) == "" {
				t.Fatalf("bad phrase %q", ph)
			}
		}
		for _, c := range p.Comparisons {
			if !validFieldName(c.Field) || opPrefix(c.Op) != c.Op {
				t.Fatalf("bad comparison %+v", c)
			}
			// A comparison's text parses back to itself.
			q, err := ParseQuery(c.String())
			if err != nil || len(q.Comparisons) != 1 || q.Comparisons[0] != c {
				t.Fatalf("comparison %q does not round-trip: %+v, %v", c.String(), q, err)
			}
		}
	})
}
