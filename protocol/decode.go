package protocol

import (
	"encoding/json"
	"sort"
	"strings"
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
	path    string // for error messages: "revocation.signature"
	members map[string]json.RawMessage
}

// parseObject checks that data is I-JSON (valid UTF-8, no duplicate keys, no
// lone surrogates, numbers in range) and a JSON object, not null.
func parseObject(path string, data []byte) (object, error) {
	if err := checkIJSON(data); err != nil {
		return object{}, prefixErr(path, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return object{}, invalidf("%s: must be a JSON object", path)
	}
	return object{path: path, members: m}, nil
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
	for name := range o.members {
		if !contains(required, name) && !contains(optional, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return invalidf("%s: unknown field %q (field names are case-sensitive)", o.path, truncate(unknown[0]))
	}
	for _, name := range required {
		if _, ok := o.members[name]; !ok {
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
	_, ok := o.members[name]
	return ok
}

// str returns a string member; null and other types are rejected.
func (o object) str(name string) (string, error) {
	s, err := jsonString(o.members[name])
	if err != nil {
		return "", invalidf("%s.%s: want a string", o.path, name)
	}
	return s, nil
}

// strs returns an array-of-strings member, never nil; null, non-arrays and
// non-string elements are rejected.
func (o object) strs(name string) ([]string, error) {
	ss, err := jsonStrings(o.members[name])
	if err != nil {
		return nil, invalidf("%s.%s: want an array of strings", o.path, name)
	}
	return ss, nil
}

// int returns an integer member of at most 2^53-1 in magnitude.
func (o object) int(name string) (int64, error) {
	n, err := parseSafeInt(o.members[name])
	if err != nil {
		return 0, invalidf("%s.%s: %v", o.path, name, err)
	}
	return n, nil
}

// jsonString decodes a JSON string (and only a string: not null).
func jsonString(raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", errNotString
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// jsonStrings decodes a JSON array whose elements are all strings. The result
// is never nil. encoding/json would turn a null element into "", which does
// not re-encode to the bytes received, so elements are checked one by one.
func jsonStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errNotString
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, err := jsonString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

var errNotString = invalidf("want a string")
