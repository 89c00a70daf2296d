package protocol

import (
	"strings"
	"testing"
)

// benchResponse is an answer of ten lessons of about 1 KB each.
func benchResponse(b *testing.B) []byte {
	var rs []SearchResult
	for i := range 10 {
		l := testLesson()
		l.ID = l.ID + string(rune('a'+i))
		l.Content = strings.Repeat("a lesson about borrowing, lifetimes and \"moves\".\n", 20)
		rs = append(rs, SearchResult{SignedLesson: mustSign(b, testKey(7), l), Score: 1.5})
	}
	data, err := (&SearchResponse{Type: MsgSearchResponse, RequestID: "r", Results: rs}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecodeSearchResponse(b *testing.B) {
	data := benchResponse(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSearchResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSearchRelay(b *testing.B) {
	data := benchResponse(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSearchRelay(data); err != nil {
			b.Fatal(err)
		}
	}
}
