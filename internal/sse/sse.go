// Package sse writes and reads server-sent events (the text/event-stream
// format of the HTML standard): the loopback API's stream of standing-query
// matches, and the web UI's live updates.
package sse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ContentType is the media type of an event stream.
const ContentType = "text/event-stream"

// Event is one server-sent event.
type Event struct {
	ID   string // the id field; "" for none
	Type string // the event field; "" means "message"
	Data []byte // one line: no '\n' or '\r'
}

// Writer writes events to an HTTP response, flushing each.
type Writer struct {
	w  io.Writer
	fl http.Flusher
}

// NewWriter sets the response's headers for an event stream, writes them,
// and returns a Writer.
func NewWriter(w http.ResponseWriter) *Writer {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	sw := &Writer{w: w, fl: fl}
	sw.flush()
	return sw
}

func (s *Writer) flush() {
	if s.fl != nil {
		s.fl.Flush()
	}
}

// Send writes one event.
func (s *Writer) Send(e Event) error {
	if strings.ContainsAny(string(e.Data), "\r\n") || strings.ContainsAny(e.ID+e.Type, "\r\n") {
		return errors.New("sse: an event's fields must be one line each")
	}
	var b strings.Builder
	if e.ID != "" {
		b.WriteString("id: " + e.ID + "\n")
	}
	if e.Type != "" {
		b.WriteString("event: " + e.Type + "\n")
	}
	b.WriteString("data: ")
	b.Write(e.Data)
	b.WriteString("\n\n")
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return err
	}
	s.flush()
	return nil
}

// Comment writes a comment line, which keeps an idle connection alive.
func (s *Writer) Comment(text string) error {
	if _, err := io.WriteString(s.w, ": "+strings.ReplaceAll(text, "\n", " ")+"\n\n"); err != nil {
		return err
	}
	s.flush()
	return nil
}

// MaxLine caps one line of a stream read by Read.
const MaxLine = 1 << 20

// Read reads events from r, calling fn with each, until r ends (nil) or fn
// returns an error (returned).
func Read(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var e Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				e.Data = []byte(strings.Join(data, "\n"))
				if err := fn(e); err != nil {
					return err
				}
			}
			e, data = Event{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			e.ID = value
		case "event":
			e.Type = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	return nil
}

// LastID is the sequence number a reconnecting client asks to resume
// after: the Last-Event-ID header, else the query parameter name; 0 if
// neither is set. A value that is not a number is an error.
func LastID(r *http.Request, name string) (uint64, error) {
	s := r.Header.Get("Last-Event-ID")
	if s == "" {
		s = r.URL.Query().Get(name)
	}
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// keepAliveEvery is how often Serve writes a comment on an idle stream.
const keepAliveEvery = 15 * time.Second

// Serve streams what subscribe delivers to w as events of type typ (data:
// the JSON of each value, id: id(value)), with a comment every 15 s while
// idle, until the client goes away or subscribe returns; an error it
// returns while the client is still there is sent as an "error" event
// whose data is errJSON(err).
func Serve[T any](w http.ResponseWriter, r *http.Request, typ string, id func(T) string,
	subscribe func(ctx context.Context, fn func(T) error) error, errJSON func(error) any) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	values := make(chan T)
	errc := make(chan error, 1)
	go func() {
		errc <- subscribe(ctx, func(v T) error {
			select {
			case values <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	s := NewWriter(w)
	tick := time.NewTicker(keepAliveEvery)
	defer tick.Stop()
	for {
		select {
		case v := <-values:
			data, err := json.Marshal(v)
			if err != nil || s.Send(Event{ID: id(v), Type: typ, Data: data}) != nil {
				return
			}
		case <-tick.C:
			if s.Comment("keep-alive") != nil {
				return
			}
		case err := <-errc:
			if ctx.Err() == nil && err != nil {
				data, _ := json.Marshal(errJSON(err))
				_ = s.Send(Event{Type: "error", Data: data})
			}
			return
		}
	}
}
