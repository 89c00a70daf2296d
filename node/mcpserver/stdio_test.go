package mcpserver

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// FuzzFilterLines: whatever arrives on stdin, the filter never panics,
// passes on only lines the SDK can decode, and answers every other
// non-blank line with one JSON-RPC error line.
func FuzzFilterLines(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n{bad\n",
		"\xff\n\n[]\n[1]\n{}\n",
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pr, pw := io.Pipe()
		var errs bytes.Buffer
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(pr); done <- b }()
		filterLines(bytes.NewReader(in), pw, &errs)
		passed := <-done
		for _, l := range bytes.Split(bytes.TrimSuffix(passed, []byte("\n")), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			if code, msg := checkLine(l, false); code != 0 {
				t.Fatalf("passed a bad line %q: %d %s", l, code, msg)
			}
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(errs.Bytes(), []byte("\n")), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			var m struct {
				Error struct{ Code int } `json:"error"`
			}
			if json.Unmarshal(l, &m) != nil || (m.Error.Code != codeParseError && m.Error.Code != codeInvalidRequest) {
				t.Fatalf("error line %q", l)
			}
		}
	})
}
