package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMessagesRoundTrip(t *testing.T) {
	key := testKey(7)
	sl := mustSign(t, key, testLesson())
	rev, err := SignRevocation(key, sl.Lesson.ID, ReasonOutdated, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("announcement", func(t *testing.T) {
		for _, a := range []*Announcement{{Type: MsgPublication, SignedLesson: sl}, {Type: MsgRevocation, Revocation: rev}} {
			b, err := a.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeAnnouncement(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.SignedLesson != nil {
				if err := Verify(got.SignedLesson, VerifyOptions{Now: testNow}); err != nil {
					t.Fatal(err)
				}
			} else if err := VerifyRevocation(got.Revocation, VerifyOptions{Now: testNow}); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("fetch", func(t *testing.T) {
		req := &FetchRequest{Type: MsgFetch, Key: sl.Key()}
		b, _ := req.Encode()
		got, err := DecodeFetchRequest(b)
		if err != nil || got.Key != sl.Key() {
			t.Fatal(got, err)
		}
		resp := &FetchResponse{Type: MsgFetchResponse, SignedLesson: sl}
		b, _ = resp.Encode()
		gr, err := DecodeFetchResponse(b)
		if err != nil || Verify(gr.SignedLesson, VerifyOptions{Now: testNow}) != nil {
			t.Fatal(err)
		}
		e := NewError(ErrUnknownLesson)
		resp = &FetchResponse{Type: MsgFetchResponse, Error: &e}
		b, _ = resp.Encode()
		gr, err = DecodeFetchResponse(b)
		if err != nil || gr.Error.Code != CodeUnknownLesson {
			t.Fatal(gr, err)
		}
	})
	t.Run("sync", func(t *testing.T) {
		req := &SyncRequest{Type: MsgSyncRequest, Since: 5, Topics: []string{"rust"}, Checkpoint: "00000000000000a1", Limit: 50}
		b, _ := req.Encode()
		got, err := DecodeSyncRequest(b)
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Fatalf("%+v %v", got, err)
		}
		resp := &SyncResponse{Type: MsgSyncResponse, Lessons: []*SignedLesson{sl}, Revocations: []*Revocation{rev}, Checkpoint: "x", HasMore: true}
		b, _ = resp.Encode()
		gr, err := DecodeSyncResponse(b)
		if err != nil || len(gr.Lessons) != 1 || len(gr.Revocations) != 1 || !gr.HasMore || gr.Checkpoint != "x" {
			t.Fatalf("%+v %v", gr, err)
		}
		if err := Verify(gr.Lessons[0], VerifyOptions{Now: testNow}); err != nil {
			t.Fatal(err)
		}
		empty := &SyncResponse{Type: MsgSyncResponse}
		b, _ = empty.Encode()
		if _, err := DecodeSyncResponse(b); err != nil {
			t.Fatalf("empty page %s: %v", b, err)
		}
	})
}

func TestMessagesRejectBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     string
		want   error
		says   string
	}{
		{"announcement type", func(b []byte) error { _, err := DecodeAnnouncement(b); return err }, `{"type":"spam"}`, ErrInvalid, "spam"},
		{"announcement both", func(b []byte) error { _, err := DecodeAnnouncement(b); return err }, `{"type":"revocation","revocation":{},"signedLesson":{}}`, ErrInvalid, "signedLesson"},
		{"announcement size", func(b []byte) error { _, err := DecodeAnnouncement(b); return err }, `{"type":"publication","x":"` + strings.Repeat("a", MaxAnnouncementSize) + `"}`, ErrTooLarge, "limit"},
		{"fetch key", func(b []byte) error { _, err := DecodeFetchRequest(b); return err }, `{"type":"fetch","key":"nokey"}`, ErrInvalid, "lessonId@nodeId"},
		{"fetch case", func(b []byte) error { _, err := DecodeFetchRequest(b); return err }, `{"type":"fetch","Key":"a@b"}`, ErrInvalid, "case-sensitive"},
		{"fetch empty answer", func(b []byte) error { _, err := DecodeFetchResponse(b); return err }, `{"type":"fetchResponse"}`, ErrInvalid, "carries no"},
		{"sync negative", func(b []byte) error { _, err := DecodeSyncRequest(b); return err }, `{"type":"syncRequest","limit":-1}`, ErrInvalid, "negative"},
		{"sync type", func(b []byte) error { _, err := DecodeSyncRequest(b); return err }, `{"type":"fetch"}`, ErrInvalid, "syncRequest"},
		{"sync page lessons", func(b []byte) error { _, err := DecodeSyncResponse(b); return err }, `{"type":"syncResponse","lessons":{},"revocations":[],"checkpoint":"","hasMore":false}`, ErrInvalid, "array"},
		{"sync page hasMore", func(b []byte) error { _, err := DecodeSyncResponse(b); return err }, `{"type":"syncResponse","lessons":[],"revocations":[],"checkpoint":"","hasMore":"yes"}`, ErrInvalid, "hasMore"},
		{"sync page too many", func(b []byte) error { _, err := DecodeSyncResponse(b); return err }, `{"type":"syncResponse","lessons":[` + strings.Repeat(`{},`, MaxSyncPage) + `{}],"revocations":[],"checkpoint":"","hasMore":false}`, ErrTooLarge, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode([]byte(tc.in))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.says)
			}
		})
	}
}

func FuzzDecodeAnnouncement(f *testing.F) {
	key := testKey(3)
	sl := mustSign(f, key, testLesson())
	b, _ := (&Announcement{Type: MsgPublication, SignedLesson: sl}).Encode()
	f.Add(b)
	rev, _ := SignRevocation(key, "x", "", testNow)
	b, _ = (&Announcement{Type: MsgRevocation, Revocation: rev}).Encode()
	f.Add(b)
	f.Add([]byte(`{"type":"publication","signedLesson":null}`))
	b, _ = (&Announcement{Type: MsgPublication, EncryptedLesson: mustEncrypt(f, key, testLesson(), testLessonKey(2), "k1")}).Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAnnouncement(data)
		if err != nil {
			return
		}
		carried := 0
		for _, set := range []bool{a.SignedLesson != nil, a.EncryptedLesson != nil, a.Revocation != nil} {
			if set {
				carried++
			}
		}
		if carried != 1 {
			t.Fatalf("decoded announcement carries %v, %v and %v", a.SignedLesson, a.EncryptedLesson, a.Revocation)
		}
		if _, err := a.Encode(); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzDecodeSyncAndFetch(f *testing.F) {
	sl := mustSign(f, testKey(4), testLesson())
	b, _ := (&SyncResponse{Type: MsgSyncResponse, Lessons: []*SignedLesson{sl}}).Encode()
	f.Add(b)
	b, _ = (&SyncRequest{Type: MsgSyncRequest, Topics: []string{"a"}}).Encode()
	f.Add(b)
	b, _ = (&FetchResponse{Type: MsgFetchResponse, SignedLesson: sl}).Encode()
	f.Add(b)
	el := mustEncrypt(f, testKey(4), testLesson(), testLessonKey(2), "k1")
	b, _ = (&FetchResponse{Type: MsgFetchResponse, EncryptedLesson: el}).Encode()
	f.Add(b)
	b, _ = (&SyncResponse{Type: MsgSyncResponse, EncryptedLessons: []*EncryptedLesson{el}}).Encode()
	f.Add(b)
	f.Add([]byte(`{"type":"fetch","key":"a@12D3KooWAbc"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeSyncRequest(data); err == nil && (r.Limit < 0 || r.Since < 0) {
			t.Fatalf("accepted %+v", r)
		}
		if r, err := DecodeSyncResponse(data); err == nil && len(r.Lessons)+len(r.EncryptedLessons)+len(r.Revocations) > MaxSyncPage {
			t.Fatalf("accepted a page of %d", len(r.Lessons)+len(r.EncryptedLessons)+len(r.Revocations))
		}
		if r, err := DecodeFetchRequest(data); err == nil {
			if _, _, err := ParseKey(r.Key); err != nil {
				t.Fatalf("accepted key %q", r.Key)
			}
		}
		if r, err := DecodeFetchResponse(data); err == nil {
			if r.SignedLesson == nil && r.EncryptedLesson == nil && r.Revocation == nil && r.Error == nil {
				t.Fatal("accepted an empty fetch response")
			}
			if r.SignedLesson != nil && r.EncryptedLesson != nil {
				t.Fatal("accepted a fetch response with both a signed and an encrypted lesson")
			}
		}
	})
}

// TestSyncPageSkipsBadItems: a sync page with one bad item (a record nested
// 9990 levels deep, say) keeps the others and counts the bad one.
func TestSyncPageSkipsBadItems(t *testing.T) {
	sl := mustSign(t, testKey(7), testLesson())
	slb := string(mustEncode(t, sl))
	deep := strings.Replace(slb, `"lesson":{`, `"lesson":{"x":`+strings.Repeat("[", 9990)+strings.Repeat("]", 9990)+`,`, 1)
	if !strings.Contains(deep, "[[[[") {
		t.Fatal("no lesson member to nest in")
	}
	over := strings.Replace(slb, `"lesson":{`, `"lesson":{"x":`+strings.Repeat("[", MaxRecordDepth)+strings.Repeat("]", MaxRecordDepth)+`,`, 1)
	for _, bad := range []string{deep, over, `{}`, "\"\xff\"", `17`} {
		page := `{"type":"syncResponse","lessons":[` + slb + `,` + bad + `,` + slb + `],"revocations":[{"x":1}],"checkpoint":"00000000000000f3","hasMore":true}`
		r, err := DecodeSyncResponse([]byte(page))
		if err != nil {
			t.Fatalf("%.60q: %v", bad, err)
		}
		if len(r.Lessons) != 2 || r.Invalid != 2 || !r.HasMore || r.Checkpoint != "00000000000000f3" {
			t.Fatalf("%.60q: %d lessons, %d invalid, %+v", bad, len(r.Lessons), r.Invalid, r)
		}
	}
	// A record exactly MaxRecordDepth deep is fine.
	ok := strings.Replace(slb, `"lesson":{`, `"lesson":{"x":`+strings.Repeat("[", MaxRecordDepth-1)+strings.Repeat("]", MaxRecordDepth-1)+`,`, 1)
	if r, err := DecodeSyncResponse([]byte(`{"type":"syncResponse","lessons":[` + ok + `],"revocations":[],"checkpoint":"","hasMore":false}`)); err != nil || r.Invalid != 0 || len(r.Lessons) != 1 {
		t.Fatalf("a record %d deep: %v %+v", MaxRecordDepth, err, r)
	}
	// A broken envelope is still an error.
	for _, in := range []string{`{"type":"syncResponse","lessons":[`, `{"type":"syncResponse","type":"syncResponse","lessons":[],"revocations":[],"checkpoint":"","hasMore":false}`, "{\"type\":\"sync\xffResponse\",\"lessons\":[],\"revocations\":[],\"checkpoint\":\"\",\"hasMore\":false}"} {
		if _, err := DecodeSyncResponse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: %v", in, err)
		}
	}
}

func TestLessonDepthCap(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n-1) + strings.Repeat("]", n-1) }
	if _, err := DecodeLesson([]byte(`{"type":"lesson","x":` + nest(MaxRecordDepth) + `}`)); err != nil {
		t.Fatalf("%d deep: %v", MaxRecordDepth, err)
	}
	_, err := DecodeLesson([]byte(`{"type":"lesson","x":` + nest(MaxRecordDepth+1) + `}`))
	wantErr(t, err, ErrInvalid, "the limit is 32")
	_, err = DecodeLesson([]byte(`{"type":"lesson","x":` + nest(9998) + `}`))
	wantErr(t, err, ErrInvalid, "the limit is 32")
}
