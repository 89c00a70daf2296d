package protocol

import (
	"strings"
	"testing"
)

// benchSigned is a signed lesson shaped like the ones meshbench ingests: a
// title, a few KB of content, tags and a topic.
func benchSigned(b *testing.B) []byte {
	b.Helper()
	l := &Lesson{
		ID:        "bench-0001",
		Type:      TypeLesson,
		Title:     "Package sync provides basic synchronization primitives",
		Content:   strings.Repeat("Values containing the types defined in this package should not be copied. \"Quoted\", tab\t, é, 🦀.\n", 30),
		Tags:      []string{"go", "sync", "stdlib/sync"},
		CreatedAt: testNow.UnixMilli(),
	}
	s := mustSign(b, testKey(1), l)
	return mustEncode(b, s)
}

func BenchmarkCheckIJSON(b *testing.B) {
	data := benchSigned(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkIJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSignedLesson(b *testing.B) {
	data := benchSigned(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedLesson(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s, err := DecodeSignedLesson(benchSigned(b))
	if err != nil {
		b.Fatal(err)
	}
	opts := VerifyOptions{Now: testNow}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(s, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSigningPayload(b *testing.B) {
	s, err := DecodeSignedLesson(benchSigned(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SigningPayload(&s.Lesson, &s.Publication, s.Signature.Timestamp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLessonMarshalJSON(b *testing.B) {
	s, err := DecodeSignedLesson(benchSigned(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lesson.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLessonUnmarshalJSON(b *testing.B) {
	s, err := DecodeSignedLesson(benchSigned(b))
	if err != nil {
		b.Fatal(err)
	}
	data, err := s.Lesson.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var l Lesson
		if err := l.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
