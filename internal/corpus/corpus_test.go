package corpus

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/protocol"
)

func TestLoadDeterministic(t *testing.T) {
	a, err := Load(500, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(500, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Load(500, 7) differs between calls")
	}
	c, err := Load(500, 8)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("Load with another seed gave the same docs")
	}
	ids := make(map[string]bool)
	for _, d := range a {
		if ids[d.ID] {
			t.Fatalf("duplicate id %s", d.ID)
		}
		ids[d.ID] = true
		if err := protocol.ValidateID(d.ID); err != nil {
			t.Fatalf("id %q: %v", d.ID, err)
		}
		if len(d.Content) < minChars || d.Title == "" || len(d.Tags) == 0 {
			t.Fatalf("bad doc %+v", d)
		}
		if strings.Contains(d.Content, "  ") || strings.ContainsAny(d.Content, "\n\t") {
			t.Fatalf("whitespace not collapsed: %q", d.Content)
		}
		l := protocol.Lesson{ID: d.ID, Type: protocol.TypeLesson, Title: d.Title, Content: d.Content, Tags: d.Tags}
		if err := l.Validate(); err != nil {
			t.Fatalf("doc %s is not a valid lesson: %v", d.ID, err)
		}
	}
}

func TestLoadTooMany(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("corpus holds %d docs", len(all))
	if _, err := Load(len(all)+1, 1); !errors.Is(err, ErrTooFew) {
		t.Fatalf("Load(len+1) = %v, want ErrTooFew", err)
	}
	if _, err := Load(-1, 1); err == nil {
		t.Fatal("Load(-1) succeeded")
	}
}

func TestQueries(t *testing.T) {
	docs, err := Load(500, 1)
	if err != nil {
		t.Fatal(err)
	}
	q1 := Queries(docs, 50, 3)
	q2 := Queries(docs, 50, 3)
	if !reflect.DeepEqual(q1, q2) {
		t.Fatal("Queries differ for the same seed")
	}
	if len(q1) != 50 {
		t.Fatalf("got %d queries, want 50", len(q1))
	}
	for _, q := range q1 {
		words := strings.Fields(q)
		if len(words) < 2 || len(words) > 4 {
			t.Fatalf("query %q: want 2 to 4 words", q)
		}
		for _, w := range words {
			if stopwords[w] || w != strings.ToLower(w) {
				t.Fatalf("query %q: bad word %q", q, w)
			}
		}
	}
	if Queries(nil, 5, 1) != nil {
		t.Fatal("Queries(nil) returned queries")
	}
}

func TestSplitLong(t *testing.T) {
	long := strings.Repeat("This sentence is about forty-five characters. ", 20)
	long = strings.TrimSpace(long)
	parts := splitLong(long)
	if len(parts) < 2 {
		t.Fatalf("not split: %d parts", len(parts))
	}
	if strings.Join(parts, " ") != long {
		t.Fatal("split parts do not rejoin to the original")
	}
	for _, p := range parts {
		if len(p) > maxChars || !strings.HasSuffix(p, ".") {
			t.Fatalf("bad part %q", p)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"v1.10.0", "v1.9.9", 1},
		{"v1.2.3", "v1.2.3", 0},
		{"v1.2.3-pre", "v1.2.3", -1},
		{"v0.0.0-20260811182544-a038080d80e5", "v0.0.0-20260717140457-bdb89881bb75", 1},
		{"v2.0.0+incompatible", "v1.5.0", 1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := unescapePath("github.com/!data!dog/zstd"); got != "github.com/DataDog/zstd" {
		t.Errorf("unescapePath = %q", got)
	}
}
