package store

import (
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/segment"

	"github.com/meshprotocol/mesh/protocol"
)

// analyzeLesson runs the scoring analyzer over l's indexed text, exactly
// as scoringAnalyzer().Analyze(indexedText(l)) does, and hands
// the token stream to fn. The stream, its tokens and their terms are
// valid only until fn returns.
//
// A requester analyses every candidate of a federated search, hundreds
// per search, and bleve's Analyze allocates the text and every token
// afresh: 13% of what meshbench fedsearch allocated. Here the text and the
// tokens live in pooled buffers; the tokenizer is bleve's unicode
// tokenizer, reproduced (it is the one the analyzer is built with, which
// is checked, else Analyze itself is used), and the token filters are the
// analyzer's own. The filters change terms in place or replace them with
// slices of their own (the stemmer, whose memo therefore never points
// into a pooled text): TestAnalyzeLessonMatchesBleve.
func analyzeLesson(l *protocol.Lesson, fn func(analysis.TokenStream)) {
	analyzeText(func(b []byte) ([]byte, bool) { return l.AppendSearchText(b), true }, fn)
}

// analyzeText is analyzeLesson of the text appendText appends to a
// buffer: false, and fn not called, if appendText fails.
func analyzeText(appendText func([]byte) ([]byte, bool), fn func(analysis.TokenStream)) bool {
	an := scoringAnalyzer()
	da, ok := an.(*analysis.DefaultAnalyzer)
	if ok && len(da.CharFilters) == 0 {
		_, ok = da.Tokenizer.(*unicode.UnicodeTokenizer)
	}
	if !ok {
		text, ok := appendText(nil)
		if ok {
			fn(an.Analyze(text))
		}
		return ok
	}
	b := analysisBufs.Get().(*analysisBuf)
	defer func() {
		if cap(b.text) <= maxPooledText {
			clear(b.tokens) // drop the terms, which may be the stemmer's
			analysisBufs.Put(b)
		}
	}()
	if b.text, ok = appendText(b.text[:0]); !ok {
		return false
	}
	stream := b.tokenize()
	for _, f := range da.TokenFilters {
		stream = f.Filter(stream)
	}
	fn(stream)
	return true
}

// maxPooledText bounds the texts whose buffers go back to the pool.
const maxPooledText = 64 << 10

// analysisBuf holds one analysis: the text, its tokens, and the stream of
// pointers to them.
type analysisBuf struct {
	text   []byte
	tokens []analysis.Token
	stream analysis.TokenStream
}

var analysisBufs = sync.Pool{New: func() any { return new(analysisBuf) }}

// tokenize is bleve's unicode tokenizer (analysis/tokenizer/unicode) over
// b.text, into b's buffers: a token per word segment of any type but
// None, numbered from 1.
func (b *analysisBuf) tokenize() analysis.TokenStream {
	b.tokens = b.tokens[:0]
	seg := segment.NewWordSegmenterDirect(b.text)
	start, pos := 0, 1
	for seg.Segment() {
		bs := seg.Bytes()
		end := start + len(bs)
		if t := seg.Type(); t != segment.None {
			b.tokens = append(b.tokens, analysis.Token{Term: bs, Start: start, End: end, Position: pos, Type: tokenType(t)})
			pos++
		}
		start = end
	}
	b.stream = b.stream[:0]
	for i := range b.tokens {
		b.stream = append(b.stream, &b.tokens[i])
	}
	return b.stream
}

// tokenType is the unicode tokenizer's type of a word segment.
func tokenType(t int) analysis.TokenType {
	switch t {
	case segment.Ideo, segment.Kana:
		return analysis.Ideographic
	case segment.Number:
		return analysis.Numeric
	}
	return analysis.AlphaNumeric
}
