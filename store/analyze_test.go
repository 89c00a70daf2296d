package store

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis"

	"github.com/meshprotocol/mesh/protocol"
)

// TestAnalyzeLessonMatchesBleve: analyzeLesson gives, token for token,
// what the scoring analyzer's own Analyze gives, on texts built to reach
// every branch of the tokenizer and the filters (possessives with three
// apostrophes, upper case that changes width, stop words, numbers,
// ideographs, kana, emoji, punctuation), twice over so that a pooled
// buffer or a stemmer memo pointing into one would show.
func TestAnalyzeLessonMatchesBleve(t *testing.T) {
	words := []string{
		"Cargo", "PARALLEL", "builds", "crash", "the", "a", "and", "is", "not", "Alice's", "BOB'S", "carol’s", "dave＇s",
		"running", "runs", "ran", "İstanbul", "ΣΊΣΥΦΟΣ", "straße", "Ǆemal", "42", "3.14", "1,000", "v1.2.3", "x86_64",
		"日本語", "東京", "カタカナ", "ひらがな", "한국어", "emoji🙂", "🙂", "—", "...", "(parens)", "don't", "e-mail",
		"URL:", "https://example.org/a?b=c", "#tag", "@user", "ñandú", "naïve", "café", "ﬁle", "Ⅻ", "",
	}
	seps := []string{" ", "  ", "\n", "\t", ", ", ". ", "; ", "/", "-", ""}
	rng := rand.New(rand.NewPCG(7, 8))
	text := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		return b.String()
	}
	var lessons []*protocol.Lesson
	for i := range 600 {
		l := &protocol.Lesson{Title: text(1 + i%7), Content: text(i % 120)}
		for range i % 4 {
			l.Tags = append(l.Tags, text(1))
		}
		lessons = append(lessons, l)
	}
	lessons = append(lessons, &protocol.Lesson{}, &protocol.Lesson{Title: strings.Repeat("word ", maxPooledText/4)})
	for pass := range 2 {
		for i, l := range lessons {
			want := scoringAnalyzer().Analyze(indexedText(l))
			var got []analysis.Token
			analyzeLesson(l, func(s analysis.TokenStream) {
				for _, tok := range s {
					c := *tok
					c.Term = bytes.Clone(tok.Term)
					got = append(got, c)
				}
			})
			if len(got) != len(want) {
				t.Fatalf("pass %d, lesson %d: %d tokens, bleve %d", pass, i, len(got), len(want))
			}
			for j, w := range want {
				g := got[j]
				if !bytes.Equal(g.Term, w.Term) || g.Position != w.Position || g.Start != w.Start || g.End != w.End || g.Type != w.Type || g.KeyWord != w.KeyWord {
					t.Fatalf("pass %d, lesson %d, token %d: %q@%d [%d,%d) type %d, bleve %q@%d [%d,%d) type %d",
						pass, i, j, g.Term, g.Position, g.Start, g.End, g.Type, w.Term, w.Position, w.Start, w.End, w.Type)
				}
			}
		}
	}
}

func BenchmarkFeatures(b *testing.B) {
	sc := NewScorer(ParsedQuery{Terms: []string{"cargo", "parallel"}}, nil)
	l := &protocol.Lesson{Title: "Cargo parallel builds crash small servers",
		Content: strings.Repeat("Use -j1 on a 1 GB VPS: cargo parallel builds run out of memory, and the linker is killed. ", 10),
		Tags:    []string{"rust", "cargo"}}
	b.ReportAllocs()
	for b.Loop() {
		sc.Features(l)
	}
}
