package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/meshprotocol/mesh/protocol"
)

// maxRequestBody caps every HTTP request body.
const maxRequestBody = protocol.MaxRecordSize + 16<<10

// ErrorBody is an error answer: AMP's success:false plus MESH's error
// block.
type ErrorBody struct {
	Success bool          `json:"success"`
	Error   bool          `json:"error"`
	Code    protocol.Code `json:"code"`
	Message string        `json:"message"`
}

// writeError writes err with status, or with the status of its code
// (protocol.HTTPStatus) when status is 0.
func writeError(w http.ResponseWriter, status int, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: request body over %d bytes", protocol.ErrTooLarge, maxRequestBody)
	}
	if status == 0 {
		status = protocol.HTTPStatus(err)
	}
	writeJSON(w, status, ErrorBody{Success: false, Error: true, Code: protocol.CodeOf(err), Message: err.Error()})
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

// readBody reads a capped request body and checks it is a JSON object.
func readBody(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: request body over %d bytes", protocol.ErrTooLarge, maxRequestBody)
		}
		return nil, fmt.Errorf("%w: reading body: %v", protocol.ErrInvalid, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: body must be a JSON object", protocol.ErrInvalid)
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

// validID writes an error and returns false if id is not a valid record id.
func validID(w http.ResponseWriter, id string) bool {
	if err := protocol.ValidateID(id); err != nil {
		writeError(w, 0, err)
		return false
	}
	return true
}

func errMissing(param string) error {
	return fmt.Errorf("%w: the %s parameter is missing", protocol.ErrInvalid, param)
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
