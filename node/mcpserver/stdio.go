package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/protocol"
)

// MaxLineLength caps one JSON-RPC line on the stdio transport (the SDK's
// default).
const MaxLineLength = mcp.DefaultMaxLineLength

// JSON-RPC error codes the stdio transport answers a bad line with.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
)

// LineTransport is newline-delimited JSON-RPC over r and w (stdin and
// stdout for `mesh mcp`), like the SDK's StdioTransport, except that a bad
// line does not end the session: a line that is not JSON (or nests deeper
// than protocol.MaxDepth, or is longer than MaxLineLength) is answered
// with a JSON-RPC error -32700, one that is JSON but no JSON-RPC message
// with -32600, both with id null, and the session goes on (calls in flight
// get their answers). The SDK's own transport ends the session on the
// first undecodable line.
type LineTransport struct {
	Reader io.Reader
	Writer io.Writer
}

// Connect implements mcp.Transport.
func (t *LineTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	pr, pw := io.Pipe()
	w := &lockedWriter{w: t.Writer}
	go filterLines(t.Reader, pw, w)
	inner := &mcp.IOTransport{Reader: pr, Writer: w, MaxLineLength: MaxLineLength + 1}
	return inner.Connect(ctx)
}

// lockedWriter serializes the session's writes and the filter's error
// answers, each one whole line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) Close() error { return nil }

// filterLines copies the good lines of r to pw and answers the bad ones on
// w, until r ends (then pw is closed, which ends the session) or the
// session stops reading.
func filterLines(r io.Reader, pw *io.PipeWriter, w io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, tooLong, err := readLine(br, MaxLineLength)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if code, msg := checkLine(line, tooLong); code != 0 {
				if _, werr := w.Write(errorLine(code, msg)); werr != nil {
					pw.CloseWithError(werr)
					return
				}
			} else if _, werr := pw.Write(append(line, '\n')); werr != nil {
				return // the session is gone
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				pw.Close()
			} else {
				pw.CloseWithError(err)
			}
			return
		}
	}
}

// readLine reads one line without its newline, keeping at most max bytes
// (tooLong says the rest was dropped).
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			tooLong = true
		} else {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), tooLong, err
	}
}

// checkLine returns the JSON-RPC error code and message for a bad line, or
// 0 for one the session can take.
func checkLine(line []byte, tooLong bool) (int, string) {
	if tooLong {
		return codeParseError, fmt.Sprintf("Parse error: line over %d bytes", MaxLineLength)
	}
	if !json.Valid(line) {
		return codeParseError, "Parse error: not valid JSON"
	}
	if protocol.CheckJSON(line) != nil {
		return codeParseError, fmt.Sprintf("Parse error: not I-JSON or nested more than %d levels deep", protocol.MaxDepth)
	}
	t := bytes.TrimSpace(line)
	if t[0] == '[' {
		var batch []json.RawMessage
		if json.Unmarshal(t, &batch) != nil || len(batch) == 0 {
			return codeInvalidRequest, "Invalid Request: an empty or malformed batch"
		}
		for _, m := range batch {
			if _, err := jsonrpc.DecodeMessage(m); err != nil {
				return codeInvalidRequest, "Invalid Request: " + err.Error()
			}
		}
		return 0, ""
	}
	if _, err := jsonrpc.DecodeMessage(t); err != nil {
		return codeInvalidRequest, "Invalid Request: " + err.Error()
	}
	return 0, ""
}

func errorLine(code int, msg string) []byte {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": code, "message": msg},
	})
	return append(b, '\n')
}
