package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// signedSearchBody is a signed search answer carrying one real lesson.
func signedSearchBody(t testing.TB) []byte {
	t.Helper()
	sl := mustSign(t, testKey(1), testLesson())
	body, err := (&DirectorySearchResponse{Type: MsgDirectorySearch, Query: "borrow checker", Limit: 10, More: true,
		Results: []SearchResult{{SignedLesson: sl, Score: 0.5}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := SignResponse(testKey(2), body, testNow)
	if err != nil {
		t.Fatalf("SignResponse: %v", err)
	}
	return out
}

func TestSignVerifyResponse(t *testing.T) {
	data := signedSearchBody(t)
	v, err := VerifyResponse(data, VerifyOptions{Now: testNow})
	if err != nil {
		t.Fatalf("VerifyResponse: %v\n%s", err, data)
	}
	if v.Directory.NodeID != testNodeID(t, testKey(2)) || v.Directory.Timestamp != testNow.UnixMilli() {
		t.Fatalf("block %+v", v.Directory)
	}
	// What is signed is the canonical body without the block: check it the
	// way a verifier without our types would.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, DirectoryField)
	b, _ := json.Marshal(m)
	if want := mustCanonical(t, b); !bytes.Equal(v.Body, want) {
		t.Fatalf("signed body:\n%s\nwant\n%s", v.Body, want)
	}
	r, err := DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if r.Query != "borrow checker" || len(r.Results) != 1 || Verify(r.Results[0].SignedLesson, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("decoded %+v", r)
	}
	// An empty object signs too.
	e, err := SignResponse(testKey(2), []byte(` { } `), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyResponse(e, VerifyOptions{Now: testNow}); err != nil {
		t.Fatalf("empty body: %v\n%s", err, e)
	}
}

func TestVerifyResponseRejects(t *testing.T) {
	data := string(signedSearchBody(t))
	other, err := SignResponse(testKey(3), []byte(`{"a":1}`), testNow)
	if err != nil {
		t.Fatal(err)
	}
	var otherBlock struct {
		Directory json.RawMessage `json:"directory"`
	}
	_ = json.Unmarshal(other, &otherBlock)
	var blk struct {
		Directory json.RawMessage `json:"directory"`
	}
	_ = json.Unmarshal([]byte(data), &blk)
	ts := "1767225600000"
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"altered result", replaceOnce(t, data, `"score":0.5`, `"score":0.9`), ErrInvalidSignature},
		{"altered query", replaceOnce(t, data, `"query":"borrow checker"`, `"query":"borrow"`), ErrInvalidSignature},
		{"altered servedAt", replaceOnce(t, data, `"servedAt":`+ts, `"servedAt":1767225600001`), ErrInvalidSignature},
		{"altered timestamp", strings.Replace(data, `"timestamp":`+ts+`}`, `"timestamp":1767225600001}`, 1), ErrInvalidSignature},
		{"another node's block", strings.Replace(data, string(blk.Directory), string(otherBlock.Directory), 1), ErrInvalidSignature},
		{"no block", strings.Replace(data, `"directory":`+string(blk.Directory)+`,`, "", 1), ErrInvalidSignature},
		{"member injected", replaceOnce(t, data, `"query":`, `"injected":true,"query":`), ErrInvalidSignature},
		{"duplicate member", replaceOnce(t, data, `"query":`, `"query":"x","query":`), ErrInvalid},
		{"extra block field", replaceOnce(t, data, `"nodeId":"`+testNodeID(t, testKey(2)), `"x":1,"nodeId":"`+testNodeID(t, testKey(2))), ErrInvalid},
		{"not an object", `[1,2]`, ErrInvalid},
		{"too large", `{"a":"` + strings.Repeat("x", MaxSignedResponseSize) + `"}`, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyResponse([]byte(c.in), VerifyOptions{Now: testNow})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("stale", func(t *testing.T) {
		later := testNow.Add(DefaultResponseWindow + time.Second)
		if _, err := VerifyResponse([]byte(data), VerifyOptions{Now: later}); !errors.Is(err, ErrTimestamp) {
			t.Fatalf("a response older than the window: %v", err)
		}
		if _, err := VerifyResponse([]byte(data), VerifyOptions{Now: later, AllowOld: true}); err != nil {
			t.Fatalf("AllowOld (a response kept as proof): %v", err)
		}
	})
}

func TestSignResponseRefuses(t *testing.T) {
	for _, in := range []string{`{"directory":{}}`, `{"servedAt":1}`, `[]`, `{"a":1,"a":2}`, `not json`} {
		if _, err := SignResponse(testKey(1), []byte(in), testNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("SignResponse(%s): %v, want ErrInvalid", in, err)
		}
	}
}

func TestDecodeDirectorySearchRequest(t *testing.T) {
	r, err := DecodeDirectorySearchRequest([]byte(`{"query":"cargo build","limit":5,"filters":{"topics":["rust"]}}`))
	if err != nil || r.Query != "cargo build" || r.Limit != 5 || r.Filters == nil || r.Filters.Topics[0] != "rust" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := DecodeDirectorySearchRequest([]byte(`{}`)); err != nil || r.Query != "" || r.Filters != nil {
		t.Fatalf("empty request: %+v %v", r, err)
	}
	for in, want := range map[string]error{
		`{"Query":"x"}`:  ErrInvalid,
		`{"query":1}`:    ErrInvalid,
		`{"limit":-1}`:   ErrInvalid,
		`{"limit":101}`:  ErrInvalid,
		`{"filters":[]}`: ErrInvalid,
		`{"query":"` + strings.Repeat("a", MaxSearchQueryLength+1) + `"}`:  ErrInvalid,
		`{"query":"` + strings.Repeat("a", MaxDirectoryRequestSize) + `"}`: ErrTooLarge,
	} {
		if _, err := DecodeDirectorySearchRequest([]byte(in)); !errors.Is(err, want) {
			t.Errorf("%.60s: %v, want %v", in, err, want)
		}
	}
}

func TestDirectoryLessonResponse(t *testing.T) {
	sl := mustSign(t, testKey(1), testLesson())
	good, _ := json.Marshal(DirectoryLessonResponse{Key: sl.Key(), SignedLesson: sl})
	r, err := DecodeDirectoryLessonResponse(good)
	if err != nil || r.SignedLesson == nil || Verify(r.SignedLesson, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("%+v %v", r, err)
	}
	other := strings.Replace(string(good), `"key":"`+sl.Lesson.ID, `"key":"other`, 1)
	if _, err := DecodeDirectoryLessonResponse([]byte(other)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a lesson answering another key: %v", err)
	}
	rev, err := SignRevocation(testKey(1), sl.Lesson.ID, ReasonIncorrect, testNow)
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := json.Marshal(DirectoryLessonResponse{Key: sl.Key(), Revocation: rev, Error: true, Code: CodeAlreadyRevoked, Message: "revoked"})
	if r, err := DecodeDirectoryLessonResponse(gone); err != nil || r.Revocation == nil || !r.Error || r.Code != CodeAlreadyRevoked {
		t.Fatalf("revoked: %+v %v", r, err)
	}
	if _, err := DecodeDirectoryLessonResponse([]byte(`{"key":"` + sl.Key() + `"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("neither lesson nor revocation: %v", err)
	}
}

func TestDirectoryRegistration(t *testing.T) {
	b, _ := (&DirectoryRegister{Type: MsgRegister, Topics: []string{"rust"}}).Encode()
	if r, err := DecodeDirectoryRegister(b); err != nil || r.Topics[0] != "rust" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, in := range []string{`{"type":"register","topics":["a b"]}`, `{"type":"hello"}`, `{"type":"register","nodeId":"x"}`} {
		if _, err := DecodeDirectoryRegister([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", in, err)
		}
	}
	p := &DirectoryPolicy{NodeID: testNodeID(t, testKey(2)), Role: PolicyDirectory, Topics: []string{"rust"}, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Registration: ProtocolDirectory}
	b, _ = (&DirectoryRegistered{Type: MsgRegistered, Policy: p}).Encode()
	if r, err := DecodeDirectoryRegistered(b); err != nil || r.Policy.NodeID != p.NodeID {
		t.Fatalf("%+v %v", r, err)
	}
	e := NewError(ErrRateLimited)
	b, _ = (&DirectoryRegistered{Type: MsgRegistered, Error: &e}).Encode()
	if r, err := DecodeDirectoryRegistered(b); err != nil || r.Error.Code != CodeRateLimited {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := DecodeDirectoryRegistered([]byte(`{"type":"registered"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("neither policy nor error: %v", err)
	}
	bad := *p
	bad.Role = "king"
	b, _ = json.Marshal(bad)
	if _, err := DecodeDirectoryPolicy(b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v", err)
	}
}

// The fuzzers: no panic; whatever verifies is signed over exactly the
// canonical body without the block; decoders accept only what re-encodes to
// the same canonical form.

func FuzzVerifyResponse(f *testing.F) {
	f.Add(signedSearchBody(f))
	e, _ := SignResponse(testKey(2), []byte(`{"error":true,"code":"RATE_LIMITED","message":"slow down"}`), testNow)
	f.Add(e)
	f.Add([]byte(`{"directory":{"nodeId":"x","timestamp":1,"signature":"AA=="},"servedAt":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := VerifyResponse(data, VerifyOptions{Now: testNow, AllowOld: true})
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("error maps to INTERNAL: %v", err)
			}
			return
		}
		m := rawMembers(t, data)
		delete(m, DirectoryField)
		b, _ := json.Marshal(m)
		if !bytes.Equal(mustCanonical(t, b), v.Body) {
			t.Fatalf("verified body is not the canonical body without the block")
		}
	})
}

func FuzzDecodeDirectorySearchRequest(f *testing.F) {
	f.Add([]byte(`{"query":"cargo build","limit":5,"filters":{"topics":["rust"],"since":1}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"query":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeDirectorySearchRequest(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if r.Limit < 0 || r.Limit > MaxSearchLimit || len(r.Query) > MaxSearchQueryLength {
			t.Fatalf("out of bounds: %+v", r)
		}
	})
}

func FuzzDecodeDirectorySearchResponse(f *testing.F) {
	v, _ := VerifyResponse(signedSearchBody(f), VerifyOptions{Now: testNow})
	f.Add(v.Body)
	f.Add([]byte(`{"type":"directorySearch","query":"","limit":0,"more":false,"results":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeDirectorySearchResponse(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		for _, res := range r.Results {
			if _, err := DecodeSignedLesson(mustEncode(t, res.SignedLesson)); err != nil {
				t.Fatalf("a lesson accepted in a response does not decode alone: %v", err)
			}
		}
	})
}

func FuzzDecodeDirectoryLessonResponse(f *testing.F) {
	sl := mustSign(f, testKey(1), testLesson())
	good, _ := json.Marshal(DirectoryLessonResponse{Key: sl.Key(), SignedLesson: sl})
	f.Add(good)
	f.Add([]byte(`{"key":"a@b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeDirectoryLessonResponse(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if r.SignedLesson != nil && r.SignedLesson.Key() != r.Key || r.Revocation != nil && r.Revocation.Key() != r.Key {
			t.Fatalf("accepted an answer about another key: %+v", r)
		}
	})
}

func FuzzDecodeDirectoryRegistration(f *testing.F) {
	f.Add([]byte(`{"type":"register","topics":["rust"]}`))
	p := &DirectoryPolicy{NodeID: testNodeID(f, testKey(2)), Role: PolicyDirectory, Topics: []string{}, Addrs: []string{}}
	b, _ := (&DirectoryRegistered{Type: MsgRegistered, Policy: p}).Encode()
	f.Add(b)
	f.Add([]byte(`{"type":"registered","error":{"code":"RATE_LIMITED","message":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodeDirectoryRegister(data); err != nil {
			checkDecodeErr(t, err)
		}
		r, err := DecodeDirectoryRegistered(data)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if r.Policy != nil {
			if err := r.Policy.Validate(); err != nil {
				t.Fatalf("accepted an invalid policy: %v", err)
			}
		}
		if _, err := DecodeDirectoryPolicy(data); err != nil {
			checkDecodeErr(t, err)
		}
	})
}

// TestSignSearchResponseMatchesReference holds the direct canonical writer
// to the reference: SignResponse over the encoded body.
func TestSignSearchResponseMatchesReference(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x6469720a))
	scores := []float64{0, 1, 0.5, 0.1, 1e21, 1e-7, 5e-324, 123456.789, 0.30000000000000004}
	results := 0
	defer func() {
		if results < 20 {
			t.Errorf("only %d results in 60 responses: the comparison tests little", results)
		}
	}()
	for i := range 60 {
		r := &DirectorySearchResponse{Type: MsgDirectorySearch, Query: randString(rng), Limit: rng.IntN(101), More: rng.IntN(2) == 0}
		if i%3 == 0 {
			r.Filters = &SearchFilters{Tags: []string{randString(rng) + "x"}, Since: int64(rng.IntN(3)), Topics: []string{"rust"}}
			if i%2 == 0 {
				r.Filters.Nodes, r.Filters.Types = []string{"n"}, []string{"lesson", "a\"b"}
			}
		}
		for j := range rng.IntN(4) {
			l := testLesson()
			l.ID = fmt.Sprintf("r-%d-%d", i, j)
			l.Title, l.Content = randString(rng), randString(rng)+"x"
			for range rng.IntN(4) {
				if k := randString(rng); k != "" {
					if _, known := knownFields[k]; !known {
						l.Extra[k] = json.RawMessage(randJSON(rng, 3))
					}
				}
			}
			sl, err := Sign(testKey(byte(j+1)), l, testPublication(), testNow)
			if err != nil {
				continue // a random extra that does not validate
			}
			sl, _ = DecodeSignedLesson(mustEncode(t, sl)) // as a store holds it
			res := SearchResult{SignedLesson: sl, Score: scores[rng.IntN(len(scores))], TrustScore: scores[rng.IntN(len(scores))]}
			if j == 1 {
				res.Via = testNodeID(t, testKey(3))
			}
			r.Results = append(r.Results, res)
			results++
		}
		body, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		want, err := SignResponse(testKey(9), body, testNow)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		got, err := SignSearchResponse(testKey(9), r, testNow)
		if err != nil {
			t.Fatalf("SignSearchResponse: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d case %d:\n got %s\nwant %s", seed, i, got, want)
		}
	}
}
