package protocol

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"
)

// object is a JSON object whose members are matched by exact name.
//
// encoding/json matches struct fields case-insensitively and lets the last of
// "nodeId" and "NODEID" win, so a record could decode to a value whose
// canonical form differs from the canonical form of the bytes received. An
// independent verifier canonicalizes the bytes, we canonicalize the value:
// the two must agree on everything we accept. The wire types therefore decode
// through object, which knows each member by its exact name, rejects every
// other name, and checks each member's JSON type before converting it.
type object struct {
	path string // for error messages: "revocation.signature"
	// members in document order. Objects are small (a record has about a
	// dozen members) and looked up a few times each: a slice scanned
	// linearly costs less than the map it replaced, which was a tenth of
	// what decoding a federated-search answer allocated.
	members []member
}

// lookup returns the member called name, exactly.
func (o object) lookup(name string) (json.RawMessage, bool) {
	for i := range o.members {
		if o.members[i].name == name {
			return o.members[i].value, true
		}
	}
	return nil, false
}

// get returns the member called name, nil if there is none.
func (o object) get(name string) json.RawMessage {
	v, _ := o.lookup(name)
	return v
}

// asMap returns the members as a map (a copy).
func (o object) asMap() map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(o.members))
	for _, x := range o.members {
		m[x.name] = x.value
	}
	return m
}

// parseObject checks that data is I-JSON (valid UTF-8, no duplicate keys, no
// lone surrogates, numbers in range) and a JSON object, not null.
func parseObject(path string, data []byte) (object, error) {
	ms, isObject, err := parseIJSONObject(data)
	if err != nil {
		return object{}, prefixErr(path, err)
	}
	return newObject(path, ms, isObject)
}

// splitObject is parseObject for data already checked as part of a larger
// I-JSON document (a member of an object parseObject returned): it does not
// check data again.
func splitObject(path string, data []byte) (object, error) {
	ms, isObject, err := splitIJSONObject(data)
	if err != nil {
		return object{}, prefixErr(path, err)
	}
	return newObject(path, ms, isObject)
}

func newObject(path string, ms []member, isObject bool) (object, error) {
	if !isObject {
		return object{}, invalidf("%s: must be a JSON object", path)
	}
	return object{path: path, members: ms}, nil
}

// prefixErr names where an ErrInvalid came from: "invalid: revocation: ...".
func prefixErr(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	return invalidf("%s: %s", path, msg)
}

// only rejects members not named in required or optional, and required
// members that are missing. Names are compared exactly.
func (o object) only(required []string, optional ...string) error {
	var unknown []string
	for _, m := range o.members {
		if !contains(required, m.name) && !contains(optional, m.name) {
			unknown = append(unknown, m.name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return invalidf("%s: unknown field %q (field names are case-sensitive)", o.path, truncate(unknown[0]))
	}
	for _, name := range required {
		if !o.has(name) {
			return invalidf("%s.%s is missing", o.path, name)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o object) has(name string) bool {
	_, ok := o.lookup(name)
	return ok
}

// str returns a string member; null and other types are rejected.
func (o object) str(name string) (string, error) {
	s, err := jsonString(o.get(name))
	if err != nil {
		return "", invalidf("%s.%s: want a string", o.path, name)
	}
	return s, nil
}

// strBytes is str without copying the string: its bytes in the document
// when it has no escapes (they must not be written), else unescaped.
// For long members read once, such as a vocabulary's base64.
func (o object) strBytes(name string) ([]byte, error) {
	raw := o.get(name)
	if len(raw) < 2 || raw[0] != '"' {
		return nil, invalidf("%s.%s: want a string", o.path, name)
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in, nil
	}
	return unescapeJSON(make([]byte, 0, len(in)), in), nil
}

// strs returns an array-of-strings member, never nil; null, non-arrays and
// non-string elements are rejected.
func (o object) strs(name string) ([]string, error) {
	ss, err := jsonStrings(o.get(name))
	if err != nil {
		return nil, invalidf("%s.%s: want an array of strings", o.path, name)
	}
	return ss, nil
}

// int returns an integer member of at most 2^53-1 in magnitude.
func (o object) int(name string) (int64, error) {
	n, err := parseSafeInt(o.get(name))
	if err != nil {
		return 0, invalidf("%s.%s: %v", o.path, name, err)
	}
	return n, nil
}

// jsonString decodes a JSON string (and only a string: not null). raw must
// be valid I-JSON: a member value the decoders split out of checked input.
func jsonString(raw json.RawMessage) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errNotString
	}
	return jsonStringValue(raw), nil
}

// jsonStrings decodes a JSON array whose elements are all strings. The result
// is never nil. encoding/json would turn a null element into "", which does
// not re-encode to the bytes received, so elements are checked one by one.
// raw must be valid I-JSON, as for jsonString.
func jsonStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errNotString
	}
	out := []string{}
	for i := 1; i < len(raw); {
		for i < len(raw) && (isJSONSpace(raw[i]) || raw[i] == ',') {
			i++
		}
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		if raw[i] != '"' {
			return nil, errNotString
		}
		end := skipJSONString(raw, i)
		out = append(out, jsonStringValue(raw[i:end]))
		i = end
	}
	return out, nil
}

var errNotString = invalidf("want a string")

// DecodeEnvelope decodes the JSON object of a request that carries records
// or other values its caller decodes with a decoder of their own (the AMP
// binding's {"operation":…, "record":{…}}): it refuses invalid UTF-8
// anywhere, duplicate member names, anything but one object, and checks
// every member but those named in later as I-JSON nested at most MaxDepth
// deep. The members named in later are returned unchecked: the caller
// must decode them strictly (DecodeLesson, say), which names its own
// limits. It does not cap the size: the caller does, before reading.
func DecodeEnvelope(data []byte, later ...string) (map[string]json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, invalidf("body: not valid UTF-8")
	}
	all := []string{}
	ms, isObject, err := splitIJSONObject(data)
	if err != nil {
		return nil, prefixErr("body", err)
	}
	for _, m := range ms {
		if !contains(later, m.name) {
			all = append(all, m.name)
		}
	}
	o, err := parseEnvelope("body", data, all...)
	if err != nil {
		return nil, err
	}
	if !isObject {
		return nil, invalidf("body: must be a JSON object")
	}
	return o.asMap(), nil
}

// CheckJSON reports whether data is one I-JSON text (valid UTF-8, no
// duplicate keys, no lone surrogates, numbers in range) nested at most
// MaxDepth deep, for a caller that decodes it with encoding/json
// afterwards.
func CheckJSON(data []byte) error { return checkIJSON(data) }
