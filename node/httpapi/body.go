package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/meshprotocol/mesh/dht"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// maxRequestBody caps every HTTP request body but those of bodyCaps.
const maxRequestBody = protocol.MaxRecordSize + 16<<10

// bodyCaps are the routes whose bodies have a cap of their own: a trust
// export may be as large as the node imports (trust.MaxImportSize).
var bodyCaps = map[string]int64{
	"/api/v1/trust/import": trust.MaxImportSize,
	"/api/v1/keys/status":  protocol.MaxEncryptedLessonSize,
}

// bodyCap is the cap on the body of a request to path.
func bodyCap(path string) int64 {
	if c, ok := bodyCaps[path]; ok {
		return c
	}
	return maxRequestBody
}

// ErrorBody is an error answer: AMP's success:false plus MESH's error
// block. A failed sync ends its stream with one too.
type ErrorBody struct {
	Success bool          `json:"success"`
	Error   bool          `json:"error"`
	Code    protocol.Code `json:"code"`
	Message string        `json:"message"`
	// Reason names the error, more specific than its code's sentinel,
	// that the API documents: "offline" (api.ErrOffline) or "no_dht"
	// (api.ErrNoDHT), both UNAVAILABLE, or "dht_not_found"
	// (dht.ErrNotFound, NOT_FOUND). Empty for any other error.
	Reason string `json:"reason,omitempty"`
}

// reasons are the errors ErrorBody.Reason names.
var reasons = []struct {
	name string
	err  error
}{
	{"offline", api.ErrOffline},
	{"no_dht", api.ErrNoDHT},
	{"dht_not_found", dht.ErrNotFound},
}

// newErrorBody is the error answer for err.
func newErrorBody(err error) ErrorBody {
	b := ErrorBody{Error: true, Code: protocol.CodeOf(err), Message: err.Error()}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			b.Reason = r.name
			break
		}
	}
	return b
}

// Err is the error b answers: it matches, with errors.Is, the protocol
// sentinel of b.Code (see protocol.ErrorFor) and the error b.Reason names,
// as the error it was made from did.
func (b ErrorBody) Err() error {
	err := protocol.ErrorFor(b.Code, b.Message)
	for _, r := range reasons {
		if r.name == b.Reason {
			return &reasonError{err: err, reason: r.err}
		}
	}
	return err
}

// reasonError is an error answer that also matches the error its reason
// names.
type reasonError struct {
	err    error // from protocol.ErrorFor: it carries the code
	reason error
}

func (e *reasonError) Error() string   { return e.err.Error() }
func (e *reasonError) Unwrap() []error { return []error{e.err, e.reason} }

// writeError writes err with status, or with the status of its code
// (protocol.HTTPStatus) when status is 0.
func writeError(w http.ResponseWriter, status int, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: request body over %d bytes", protocol.ErrTooLarge, mbe.Limit)
	}
	if status == 0 {
		status = protocol.HTTPStatus(err)
	}
	writeJSON(w, status, newErrorBody(err))
}

// writeResult writes v, or err if it is not nil; a nil v is {"success":true}.
func writeResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, 0, err)
		return
	}
	if v == nil {
		v = map[string]any{"success": true}
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeRaw writes a JSON answer the backend made, byte for byte.
func writeRaw(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// readAll reads a request body, capped by guard.
func readAll(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: request body over %d bytes", protocol.ErrTooLarge, mbe.Limit)
		}
		return nil, fmt.Errorf("%w: reading body: %v", protocol.ErrInvalid, err)
	}
	return b, nil
}

// readBody reads a capped request body and checks it is a JSON object.
func readBody(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	// Strictly, as the records themselves: a duplicate member name or
	// invalid UTF-8 is refused, not resolved by encoding/json's "last one
	// wins" and U+FFFD. A record is decoded by protocol.DecodeLesson,
	// which names its own depth limit.
	m, err := protocol.DecodeEnvelope(b, "record")
	if err != nil {
		return nil, fmt.Errorf("%w: body must be a JSON object: %s", protocol.ErrInvalid, strings.TrimPrefix(err.Error(), protocol.ErrInvalid.Error()+": body: "))
	}
	return m, nil
}

// decode reads a capped JSON object body into v; on failure it writes the
// error and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	m, err := readBody(r)
	if err == nil {
		err = remarshal(m, v)
	}
	if err != nil {
		writeError(w, 0, err)
		return false
	}
	return true
}

// remarshal decodes an already-split JSON object into v, naming the field
// that had the wrong type.
func remarshal(m map[string]json.RawMessage, v any) error {
	b, _ := json.Marshal(m)
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: field %s: want %s", protocol.ErrInvalid, te.Field, te.Type)
		}
		if errors.Is(err, protocol.ErrInvalid) {
			return err
		}
		return fmt.Errorf("%w: %v", protocol.ErrInvalid, err)
	}
	return nil
}

func checkOperation(m map[string]json.RawMessage, want string) error {
	raw, ok := m["operation"]
	if !ok {
		return nil
	}
	var op string
	if json.Unmarshal(raw, &op) != nil || op != want {
		return fmt.Errorf("%w: operation %s sent to the %s endpoint", protocol.ErrInvalid, raw, want)
	}
	return nil
}
