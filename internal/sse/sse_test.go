package sse_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/internal/sse"
)

// TestServeAndRead: Serve streams each value as an event with its id, an
// error from the subscription as an "error" event, and ends; Read reads
// them back; LastID prefers the Last-Event-ID header and refuses a
// non-number.
func TestServeAndRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, err := sse.LastID(r, "after")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sse.Serve(w, r, "n", func(n int) string { return strconv.Itoa(n) },
			func(ctx context.Context, fn func(int) error) error {
				for i := int(after) + 1; i <= int(after)+3; i++ {
					if err := fn(i); err != nil {
						return err
					}
				}
				return errors.New("gone")
			},
			func(err error) any { return map[string]string{"message": err.Error()} })
	}))
	defer srv.Close()

	read := func(req *http.Request) []sse.Event {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != sse.ContentType {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var got []sse.Event
		if err := sse.Read(resp.Body, func(e sse.Event) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"?after=1", nil)
	got := read(req)
	if len(got) != 4 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	for i, e := range got[:3] {
		if want := strconv.Itoa(i + 2); e.Type != "n" || e.ID != want || string(e.Data) != want {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if e := got[3]; e.Type != "error" || string(e.Data) != `{"message":"gone"}` {
		t.Errorf("the error event: %+v", e)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"?after=1", nil)
	req.Header.Set("Last-Event-ID", "10")
	if got := read(req); got[0].ID != "11" {
		t.Errorf("Last-Event-ID 10: first event %+v", got[0])
	}
	resp, err := http.Get(srv.URL + "?after=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("after=x: %d", resp.StatusCode)
	}
}

// FuzzRead: any input is read without a panic, and no event's id or type
// spans lines.
func FuzzRead(f *testing.F) {
	f.Add([]byte("id: 1\nevent: match\ndata: {\"a\":1}\n\n: keep-alive\n\n"))
	f.Add([]byte("data: a\ndata: b\n\nevent: x\n\n"))
	f.Add([]byte("\r\n\r\ndata\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = sse.Read(bytes.NewReader(b), func(e sse.Event) error {
			if strings.ContainsAny(e.ID, "\n") || strings.ContainsAny(e.Type, "\n") {
				t.Fatalf("a field spans lines: %+v", e)
			}
			return nil
		})
	})
}
