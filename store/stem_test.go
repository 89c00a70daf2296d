package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis"
)

// sameAnalysis fails t if the scoring analyzer and the index's text
// analyzer analyze text differently.
func sameAnalysis(t *testing.T, text string) {
	t.Helper()
	want := textAnalyzers().text.Analyze([]byte(text))
	for range 2 { // the second time from the memo
		got := scoringAnalyzer().Analyze([]byte(text))
		if !reflect.DeepEqual(terms(got), terms(want)) {
			t.Fatalf("analysis of %q:\n%v\nindex analyzer:\n%v", text, terms(got), terms(want))
		}
	}
}

func terms(ts analysis.TokenStream) []string {
	out := make([]string, len(ts))
	for i, tok := range ts {
		out[i] = fmt.Sprintf("%s@%d:%d-%d/%d/%v", tok.Term, tok.Position, tok.Start, tok.End, tok.Type, tok.KeyWord)
	}
	return out
}

// TestScoringAnalyzerMatchesIndex: the memoized analyzer gives the index
// analyzer's tokens, positions and types, first time and from the memo.
func TestScoringAnalyzerMatchesIndex(t *testing.T) {
	if _, ok := scoringAnalyzer().(*analysis.DefaultAnalyzer); !ok {
		t.Fatal("the scoring analyzer is not a copy of the index's")
	}
	for _, text := range []string{
		"",
		"Cargo builds crates in parallel; parallel builds crashed.",
		"The running runner runs: RUNNING, ran, runs!",
		"connection connections connected connecting connective",
		"naïve café Ünïcödé — 東京 42 x86_64 don't it's",
		strings.Repeat("generalizations ", 50),
	} {
		sameAnalysis(t, text)
	}
}

func FuzzScoringAnalyzer(f *testing.F) {
	f.Add("Cargo builds crates in parallel")
	f.Add("hopeful hopefulness relational conditional")
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 4096 {
			return
		}
		sameAnalysis(t, text)
	})
}
