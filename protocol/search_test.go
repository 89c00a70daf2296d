package protocol

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSearchRoundTrip(t *testing.T) {
	sl := mustSign(t, testKey(7), testLesson())
	t.Run("request", func(t *testing.T) {
		for _, req := range []*SearchRequest{
			{Type: MsgSearch, Query: "cargo parallel", RequestID: "r1"},
			{Type: MsgSearch, Query: "", RequestID: "r2", Origin: "12D3KooWx", Limit: 5, Hops: 2, TTL: 1, DeadlineMs: 700,
				Filters: &SearchFilters{Types: []string{"lesson"}, Tags: []string{"rust"}, Topics: []string{"go"}, Since: 9, Nodes: []string{"n"}}},
			{Type: MsgSearch, Query: "x", RequestID: "r3", Filters: &SearchFilters{}},
			{Type: MsgSearch, Query: "x", RequestID: "r4", DeadlineMs: 620, LateMs: 900},
		} {
			b, err := req.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeSearchRequest(b)
			if err != nil || !reflect.DeepEqual(got, req) {
				t.Fatalf("%s\n%+v %v", b, got, err)
			}
		}
	})
	t.Run("response", func(t *testing.T) {
		resp := &SearchResponse{Type: MsgSearchResponse, RequestID: "r1", Truncated: true,
			Results: []SearchResult{{SignedLesson: sl, Score: 0.75, TrustScore: 0.5, Via: "12D3KooWy"}, {SignedLesson: sl}}}
		b, err := resp.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSearchResponse(b)
		if err != nil || len(got.Results) != 2 || !got.Truncated || got.Results[0].Score != 0.75 || got.Results[0].TrustScore != 0.5 || got.Results[0].Via != "12D3KooWy" {
			t.Fatalf("%+v %v", got, err)
		}
		if err := Verify(got.Results[0].SignedLesson, VerifyOptions{Now: testNow}); err != nil {
			t.Fatal(err)
		}
		if got.More || bytes.Contains(b, []byte(`"more"`)) {
			t.Fatalf("a last frame says more: %s", b)
		}
		// A frame that more follow says so; a last frame need not.
		resp.More = true
		if b, err = resp.Encode(); err != nil {
			t.Fatal(err)
		}
		if got, err = DecodeSearchResponse(b); err != nil || !got.More {
			t.Fatalf("more lost: %+v %v", got, err)
		}
		if got, err = DecodeSearchRelay(b); err != nil || !got.More {
			t.Fatalf("more lost by the relay decoder: %+v %v", got, err)
		}
		for _, bad := range []string{`"more":1`, `"more":"true"`, `"more":null`} {
			_, err := DecodeSearchResponse([]byte(`{"type":"searchResponse","requestId":"r","results":[],` + bad + `}`))
			wantErr(t, err, ErrInvalid, "search response.more")
		}
		e := NewError(ErrRateLimited)
		b, _ = (&SearchResponse{Type: MsgSearchResponse, Error: &e}).Encode()
		if !bytes.Contains(b, []byte(`"results":[]`)) {
			t.Fatalf("nil results must encode as []: %s", b)
		}
		got, err = DecodeSearchResponse(b)
		if err != nil || got.Error == nil || got.Error.Code != CodeRateLimited || len(got.Results) != 0 {
			t.Fatalf("%+v %v", got, err)
		}
	})
}

func TestSearchRequestClamp(t *testing.T) {
	for _, tc := range []struct {
		in, want SearchRequest
	}{
		{SearchRequest{}, SearchRequest{Limit: DefaultSearchLimit, Hops: DefaultSearchHops, TTL: DefaultSearchHops, DeadlineMs: DefaultSearchDeadlineMs}},
		{SearchRequest{Limit: 10000, Hops: 50, TTL: 50, DeadlineMs: 1 << 40}, SearchRequest{Limit: MaxSearchLimit, Hops: MaxSearchHops, TTL: MaxSearchHops, DeadlineMs: MaxSearchDeadlineMs}},
		{SearchRequest{Limit: 7, Hops: 3, TTL: 1, DeadlineMs: 300}, SearchRequest{Limit: 7, Hops: 3, TTL: 1, DeadlineMs: 300}},
		{SearchRequest{Hops: 1}, SearchRequest{Limit: DefaultSearchLimit, Hops: 1, TTL: 1, DeadlineMs: DefaultSearchDeadlineMs}},
		// Late answers: only after the deadline, and no later than the
		// largest deadline.
		{SearchRequest{DeadlineMs: 300, LateMs: 500}, SearchRequest{Limit: DefaultSearchLimit, Hops: DefaultSearchHops, TTL: DefaultSearchHops, DeadlineMs: 300, LateMs: 500}},
		{SearchRequest{DeadlineMs: 300, LateMs: 300}, SearchRequest{Limit: DefaultSearchLimit, Hops: DefaultSearchHops, TTL: DefaultSearchHops, DeadlineMs: 300}},
		{SearchRequest{LateMs: 1000}, SearchRequest{Limit: DefaultSearchLimit, Hops: DefaultSearchHops, TTL: DefaultSearchHops, DeadlineMs: DefaultSearchDeadlineMs}},
		{SearchRequest{DeadlineMs: 300, LateMs: 1 << 40}, SearchRequest{Limit: DefaultSearchLimit, Hops: DefaultSearchHops, TTL: DefaultSearchHops, DeadlineMs: 300, LateMs: MaxSearchDeadlineMs}},
	} {
		got := tc.in
		got.Clamp()
		if got != tc.want {
			t.Errorf("Clamp(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestDecodeSearchRequestErrors(t *testing.T) {
	long := strings.Repeat("a", MaxSearchQueryLength+1)
	for _, tc := range []struct {
		in, msg string
		target  error
	}{
		{`{"type":"search","query":"x"}`, "requestId is missing", ErrInvalid},
		{`{"type":"search","query":"x","requestId":""}`, "requestId", ErrInvalid},
		{`{"type":"fetch","query":"x","requestId":"r"}`, "type", ErrInvalid},
		{`{"type":"search","Query":"x","query":"x","requestId":"r"}`, `unknown field "Query"`, ErrInvalid},
		{`{"type":"search","query":1,"requestId":"r"}`, "search request.query: want a string", ErrInvalid},
		{`{"type":"search","query":"` + long + `","requestId":"r"}`, "search request.query", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","ttl":-1}`, "search request.ttl", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","limit":1.5}`, "search request.limit", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","deadlineMs":"5"}`, "search request.deadlineMs", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","lateMs":-5}`, "search request.lateMs", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","filters":[]}`, "search request.filters", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","filters":{"tag":["a"]}}`, `unknown field "tag"`, ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","filters":{"tags":[1]}}`, "search request.filters.tags", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","filters":{"since":-1}}`, "search request.filters.since", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","filters":{"nodes":[""]}}`, "search request.filters.nodes", ErrInvalid},
		{`{"type":"search","query":"x","requestId":"r","requestId":"s"}`, "Duplicate key", ErrInvalid},
		{`null`, "", ErrInvalid},
		{`{"type":"search","query":"` + strings.Repeat("a", MaxSearchRequestSize) + `","requestId":"r"}`, "", ErrTooLarge},
	} {
		_, err := DecodeSearchRequest([]byte(tc.in))
		wantErr(t, err, tc.target, tc.msg)
		if CodeOf(err) == CodeInternal {
			t.Fatalf("%v maps to INTERNAL", err)
		}
	}
	// Huge but well-formed numbers decode; Clamp lowers them.
	r, err := DecodeSearchRequest([]byte(`{"type":"search","query":"x","requestId":"r","ttl":50,"hops":50,"limit":10000,"deadlineMs":9007199254740991}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Clamp()
	if r.TTL != MaxSearchHops || r.Hops != MaxSearchHops || r.Limit != MaxSearchLimit || r.DeadlineMs != MaxSearchDeadlineMs {
		t.Fatalf("not clamped: %+v", r)
	}
}

func TestDecodeSearchResponseErrors(t *testing.T) {
	sl := mustSign(t, testKey(7), testLesson())
	slb := string(mustEncode(t, sl))
	many := `{"type":"searchResponse","requestId":"r","results":[` + strings.TrimSuffix(strings.Repeat(`{"signedLesson":`+slb+`},`, MaxSearchResults+1), ",") + `]}`
	for _, tc := range []struct {
		in, msg string
		target  error
	}{
		{`{"type":"searchResponse","requestId":"r"}`, "results is missing", ErrInvalid},
		{`{"type":"searchResponse","requestId":"r","results":{}}`, "results: want an array", ErrInvalid},
		{`{"type":"searchResponse","requestId":"r","results":[],"truncated":1}`, "truncated", ErrInvalid},
		{`{"type":"searchResponse","requestId":"r","results":[],"error":{"code":"X"}}`, "search response: error.message is missing", ErrInvalid},
		{`{"type":"search","requestId":"r","results":[]}`, "type", ErrInvalid},
		{many, fmt.Sprint(MaxSearchResults+1, " results"), ErrTooLarge},
	} {
		_, err := DecodeSearchResponse([]byte(tc.in))
		wantErr(t, err, tc.target, tc.msg)
	}
	// A bad result is left out and counted; the good ones are kept.
	deepb := strings.Replace(slb, `"lesson":{`, `"lesson":{"x":`+strings.Repeat("[", 9990)+strings.Repeat("]", 9990)+`,`, 1)
	for _, bad := range []string{
		`{}`,
		`{"signedLesson":` + slb + `,"score":"1"}`,
		`{"signedLesson":` + slb + `,"Via":"x"}`,
		`{"signedLesson":{"lesson":{}}}`,
		`{"signedLesson":` + deepb + `}`,
		"{\"signedLesson\":\"\xff\"}",
	} {
		in := `{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + slb + `},` + bad + `,{"signedLesson":` + slb + `}]}`
		r, err := DecodeSearchResponse([]byte(in))
		if err != nil || r.Invalid != 1 || len(r.Results) != 2 {
			t.Errorf("one bad result %.80q: %v, %d invalid, %d results; want 1 invalid, 2 results", bad, err, r.Invalid, len(r.Results))
		}
	}
	big := make([]byte, MaxSearchResponseSize+1)
	if _, err := DecodeSearchResponse(big); CodeOf(err) != CodeTooLarge {
		t.Fatalf("oversized response: %v", err)
	}
}

func FuzzDecodeSearchRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"search","query":"cargo \"parallel build\" humidity > 60","requestId":"r1","origin":"12D3KooWx","limit":10,"hops":2,"ttl":2,"deadlineMs":2000}`,
		`{"type":"search","query":"","requestId":"r","filters":{"types":["lesson"],"tags":["a","b"],"topics":["rust"],"since":5,"nodes":["n"]}}`,
		`{"type":"search","query":"x","requestId":"r","filters":{"types":[]}}`,
		`{"type":"search","query":"x","requestId":"r","ttl":50,"limit":10000}`,
		`{"type":"search","query":"x","requestId":"r","ttl":2,"deadlineMs":620,"lateMs":900}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeSearchRequest(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		r2, err := DecodeSearchRequest(enc)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}
		r.Clamp()
		if r.Limit < 1 || r.Limit > MaxSearchLimit || r.TTL < 1 || r.TTL > MaxSearchHops || r.Hops < 1 || r.Hops > MaxSearchHops ||
			r.DeadlineMs < 1 || r.DeadlineMs > MaxSearchDeadlineMs || r.LateMs < 0 || r.LateMs > MaxSearchDeadlineMs ||
			(r.LateMs != 0 && r.LateMs <= r.DeadlineMs) {
			t.Fatalf("clamp left %+v", r)
		}
	})
}

func FuzzDecodeSearchResponse(f *testing.F) {
	_, signed, _, _ := fuzzSeeds(f)
	for _, b := range signed {
		f.Add([]byte(`{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + string(b) + `,"score":0.5,"trustScore":1,"via":"12D3KooWx"}],"truncated":true}`))
	}
	f.Add([]byte(`{"type":"searchResponse","requestId":"","results":[],"error":{"error":true,"code":"RATE_LIMITED","message":"rate limited"}}`))
	f.Add([]byte(`{"type":"searchResponse","requestId":"r","truncated":false,"more":true,"results":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeSearchResponse(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		r2, err := DecodeSearchResponse(enc)
		if err != nil {
			t.Fatalf("our encoding does not decode: %v\n%s", err, enc)
		}
		enc2, _ := r2.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		for i, res := range r.Results {
			if err := Verify(res.SignedLesson, opts); err == nil {
				if err := Verify(r2.Results[i].SignedLesson, opts); err != nil {
					t.Fatalf("result %d verified, but not after re-encoding: %v", i, err)
				}
			} else if CodeOf(err) == CodeInternal {
				t.Fatalf("Verify error maps to INTERNAL: %v", err)
			}
		}
	})
}

// TestDecodeSearchRelay: a forwarder reads each result's key and
// publication time, sends the lesson on byte for byte, and leaves out what
// it cannot read, as the full decoder does.
func TestDecodeSearchRelay(t *testing.T) {
	sl := mustSign(t, testKey(7), testLesson())
	resp := &SearchResponse{Type: MsgSearchResponse, RequestID: "r1", Truncated: true,
		Results: []SearchResult{{SignedLesson: sl, Score: 0.75, TrustScore: 0.5, Via: "12D3KooWy"}}}
	b, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSearchRelay(b)
	if err != nil || len(got.Results) != 1 || !got.Truncated || got.Results[0].Via != "12D3KooWy" {
		t.Fatalf("%+v %v", got, err)
	}
	r := got.Results[0]
	if r.SignedLesson != nil {
		t.Fatal("a relayed result has its lesson decoded")
	}
	key, at, ok := r.Lesson()
	if !ok || key != sl.Key() || at != sl.Publication.PublishedAt {
		t.Fatalf("Lesson() = %q %d %v, want %q %d", key, at, ok, sl.Key(), sl.Publication.PublishedAt)
	}
	if want, _ := sl.Encode(); !bytes.Equal(r.LessonBytes(), want) {
		t.Fatalf("LessonBytes() = %s, want %s", r.LessonBytes(), want)
	}
	// Passed on, the lesson decodes in full and verifies.
	b2, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("relayed answer changed:\n%s\n%s", b, b2)
	}
	full, err := DecodeSearchResponse(b2)
	if err != nil || len(full.Results) != 1 {
		t.Fatalf("%+v %v", full, err)
	}
	if err := Verify(full.Results[0].SignedLesson, VerifyOptions{Now: testNow}); err != nil {
		t.Fatal(err)
	}

	slb := string(mustEncode(t, sl))
	huge := strings.Replace(slb, `"content":"`, `"content":"`+strings.Repeat("a", MaxSignedLessonSize), 1)
	for _, bad := range []string{
		`{}`,
		`{"signedLesson":null}`,
		`{"signedLesson":` + slb + `,"score":"1"}`,
		`{"signedLesson":{"lesson":{}}}`,
		`{"signedLesson":{"lesson":{},"publication":{"publishedAt":1},"signature":{"nodeId":"n"}}}`,
		`{"signedLesson":` + strings.Replace(slb, `"publishedAt":`, `"publishedAt":-`, 1) + `}`,
		`{"signedLesson":` + strings.Replace(slb, `"nodeId":"`, `"nodeId":"/`, 1) + `}`,
		`{"signedLesson":` + strings.Replace(slb, `"id":"`, `"id":"../`, 1) + `}`,
		`{"signedLesson":` + huge + `}`,
		"{\"signedLesson\":\"\xff\"}",
	} {
		in := `{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + slb + `},` + bad + `]}`
		r, err := DecodeSearchRelay([]byte(in))
		if err != nil || r.Invalid != 1 || len(r.Results) != 1 {
			t.Errorf("one bad result %.80q: %v, %d invalid, %d results; want 1 invalid, 1 result", bad, err, r.Invalid, len(r.Results))
		}
	}
	// Field names past the ones it reads are the requester's to check.
	extra := `{"signedLesson":` + strings.Replace(slb, `"lesson":{`, `"extra":1,"lesson":{`, 1) + `}`
	in := `{"type":"searchResponse","requestId":"r","results":[` + extra + `]}`
	if r, err := DecodeSearchRelay([]byte(in)); err != nil || len(r.Results) != 1 {
		t.Fatalf("relay: %v %+v", err, r)
	}
	if r, err := DecodeSearchResponse([]byte(in)); err != nil || r.Invalid != 1 {
		t.Fatalf("full: %v %+v", err, r)
	}
	if _, err := DecodeSearchRelay(make([]byte, MaxSearchResponseSize+1)); CodeOf(err) != CodeTooLarge {
		t.Fatalf("oversized response: %v", err)
	}
}

// FuzzDecodeSearchRelay: the relay decoder never panics, fails only where
// the full decoder fails, keeps every result that verifies (with its key
// and publication time), and passes it on byte for byte.
func FuzzDecodeSearchRelay(f *testing.F) {
	_, signed, _, _ := fuzzSeeds(f)
	for _, b := range signed {
		f.Add([]byte(`{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + string(b) + `,"score":0.5,"trustScore":1,"via":"12D3KooWx"}],"truncated":true}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		relay, err := DecodeSearchRelay(data)
		full, ferr := DecodeSearchResponse(data)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("relay decoder: %v; full decoder: %v", err, ferr)
		}
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		enc, err := relay.Encode()
		if err != nil {
			t.Fatalf("relayed response does not encode: %v", err)
		}
		again, err := DecodeSearchResponse(enc)
		if err != nil {
			t.Fatalf("relayed response does not decode: %v\n%s", err, enc)
		}
		passed := map[string][]byte{}
		for _, r := range again.Results {
			b, _ := r.MarshalJSON()
			passed[r.SignedLesson.Key()] = b
		}
		opts := VerifyOptions{Now: testNow, AllowOld: true}
		for i, r := range full.Results {
			if Verify(r.SignedLesson, opts) != nil {
				continue
			}
			found := false
			for _, rr := range relay.Results {
				if k, at, ok := rr.Lesson(); ok && k == r.SignedLesson.Key() && at == r.SignedLesson.Publication.PublishedAt {
					found = true
				}
			}
			if !found {
				t.Fatalf("result %d verifies, but the relay decoder left it out", i)
			}
			want, _ := r.MarshalJSON()
			if got := passed[r.SignedLesson.Key()]; !bytes.Equal(got, want) {
				t.Fatalf("result %d passed on as\n%s\nwant\n%s", i, got, want)
			}
		}
		checkRelayedText(t, relay, full)
	})
}

// checkRelayedText: the text read in place from a relayed result is the
// text of the lesson decoded from it, and a relayed result decodes in full
// (DecodeLesson) wherever the full decoder decoded it, to the same lesson.
func checkRelayedText(t *testing.T, relay, full *SearchResponse) {
	t.Helper()
	decoded := map[string][]byte{} // key -> the full decoder's encoding
	for _, r := range full.Results {
		b, _ := r.SignedLesson.Encode()
		decoded[r.SignedLesson.Key()+"\x00"+string(r.LessonBytes())] = b
	}
	for i := range relay.Results {
		rr := &relay.Results[i]
		inPlace, ok := rr.AppendSearchText(nil)
		err := rr.DecodeLesson()
		want, fullOK := decoded[func() string { k, _, _ := rr.Lesson(); return k }()+"\x00"+string(rr.LessonBytes())]
		if fullOK && err != nil {
			t.Fatalf("result %d: the full decoder took it, DecodeLesson: %v", i, err)
		}
		if err != nil {
			checkDecodeErr(t, err)
			continue
		}
		if rr.Publisher() != rr.SignedLesson.Signature.NodeID {
			t.Fatalf("result %d: publisher %q, signed by %q", i, rr.Publisher(), rr.SignedLesson.Signature.NodeID)
		}
		if got, _ := rr.SignedLesson.Encode(); fullOK && !bytes.Equal(got, want) {
			t.Fatalf("result %d: DecodeLesson gave\n%s\nthe full decoder\n%s", i, got, want)
		}
		text, _ := rr.AppendSearchText(nil)
		if !ok || !bytes.Equal(inPlace, text) {
			t.Fatalf("result %d: text read in place (ok %v)\n%q\ndecoded\n%q", i, ok, inPlace, text)
		}
	}
}

// TestAppendSearchText: the searchable text of a relayed result, read in
// place, is that of the decoded lesson, escapes and all; a lesson whose
// text members are not strings does not read.
func TestAppendSearchText(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	l := &Lesson{ID: "x", Type: "lesson", Title: "Quotes \" and \\ and \u2028 é 🦀", Content: "line\nbreak\ttab </script>",
		Tags: []string{"rust", "go\"lang"}, CreatedAt: testNow.UnixMilli()}
	sl, err := Sign(priv, l, Publication{Visibility: VisibilityPublic, PublishedAt: testNow.UnixMilli()}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sl.Encode()
	if err != nil {
		t.Fatal(err)
	}
	answer := func(lesson []byte) *SearchResponse {
		t.Helper()
		resp, err := DecodeSearchRelay([]byte(`{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + string(lesson) + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	want := l.Title + "\n" + l.Content + "\nrust\ngo\"lang"
	r := &answer(b).Results[0]
	if r.SignedLesson != nil {
		t.Fatal("a relayed result is decoded")
	}
	if got, ok := r.AppendSearchText([]byte("prefix:")); !ok || string(got) != "prefix:"+want {
		t.Fatalf("in place: %q, %v; want %q", got, ok, want)
	}
	if err := r.DecodeLesson(); err != nil || r.SignedLesson == nil || r.SignedLesson.Lesson.Title != l.Title {
		t.Fatalf("DecodeLesson: %v, %+v", err, r.SignedLesson)
	}
	if got, ok := r.AppendSearchText(nil); !ok || string(got) != want {
		t.Fatalf("decoded: %q, %v; want %q", got, ok, want)
	}

	noTitle := *sl
	noTitle.Lesson.Title, noTitle.Lesson.Tags = "", nil
	nb, _ := noTitle.Encode()
	if got, ok := answer(nb).Results[0].AppendSearchText(nil); !ok || string(got) != "\n"+l.Content {
		t.Fatalf("no title, no tags: %q, %v", got, ok)
	}
	for _, bad := range []struct{ from, to string }{
		{`"title":"`, `"title":7,"x":"`},
		{`"tags":[`, `"tags":[1,`},
		{`"tags":[`, `"tags":"rust","more":[`},
	} {
		mb := bytes.Replace(b, []byte(bad.from), []byte(bad.to), 1)
		resp, err := DecodeSearchRelay([]byte(`{"type":"searchResponse","requestId":"r","results":[{"signedLesson":` + string(mb) + `}]}`))
		if err != nil || len(resp.Results) != 1 {
			t.Fatalf("%s: the relay decoder refused it: %v", mb, err) // it reads none of these members
		}
		if _, ok := resp.Results[0].AppendSearchText(nil); ok {
			t.Fatalf("%s: the text reads", mb)
		}
		if err := resp.Results[0].DecodeLesson(); err == nil {
			t.Fatalf("%s: DecodeLesson took it", mb)
		}
	}
}
