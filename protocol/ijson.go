package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds the I-JSON validator every decoder runs, once, over the
// bytes it receives.
//
// It accepts exactly what github.com/gowebpki/jcs (the canonicalizer the
// signatures are defined by) accepts, so that whatever decodes can be
// canonicalized by an independent verifier: RFC 8259 JSON, strings of valid
// UTF-8 whose \u escapes pair surrogates correctly, no duplicate object keys
// (compared after unescaping), numbers that fit an IEEE 754 double, and at
// most MaxDepth nested arrays and objects. FuzzIJSONMatchesJCS holds the
// two to the same answer on every input no deeper than MaxDepth (jcs allows
// 10000 levels, far more than any MESH document needs, and more than some
// other implementations accept).
//
// It does in one pass, without allocating for ordinary documents, what
// jcs.Transform did as a check: parse the whole text into a tree, sort every
// object, and write the canonical form out, only to throw it away.

// maxJSONDepth is the nesting limit of every document (MaxDepth).
const maxJSONDepth = MaxDepth

// member is one member of a JSON object: its unescaped name and the raw
// bytes of its value (no surrounding whitespace).
type member struct {
	name  string
	value []byte
}

// ijsonParser reads one JSON text.
type ijsonParser struct {
	data  []byte
	i     int
	depth int
	// collect records the members of the top-level object in members.
	collect bool
	// shallow skips, rather than validates, the values of the top-level
	// object: for bytes already validated as part of a larger document.
	shallow bool
	members []member
	// keys holds the names of the members of every open object, innermost
	// last, for duplicate detection. A name without escapes aliases data;
	// none outlives the parse.
	keys     []string
	keyStack *[]string // where keys came from, see takeKeys
}

var (
	errJSONEOF   = errors.New("Unexpected EOF reached")
	errJSONUTF8  = errors.New("Invalid UTF-8 sequence")
	errJSONDepth = fmt.Errorf("nested more than %d levels deep (the limit of every MESH document)", maxJSONDepth)
)

// checkIJSON rejects input that is not I-JSON: invalid UTF-8, lone
// surrogates, duplicate object keys, numbers out of range, nesting deeper
// than maxJSONDepth, or anything that is not one JSON text.
func checkIJSON(data []byte) error {
	return checkIJSONDepth(data, 0)
}

// checkIJSONDepth is checkIJSON for a value that sits depth arrays or
// objects deep in a larger document.
func checkIJSONDepth(data []byte, depth int) error {
	p := ijsonParser{data: data, depth: depth}
	p.takeKeys()
	defer p.giveKeys()
	return p.text()
}

// parseIJSONObject checks that data is I-JSON and returns the members of the
// top-level value, in document order, and whether it is an object.
func parseIJSONObject(data []byte) ([]member, bool, error) {
	p := ijsonParser{data: data, collect: true, members: make([]member, 0, 8)}
	p.takeKeys()
	defer p.giveKeys()
	if err := p.text(); err != nil {
		return nil, false, err
	}
	return p.members, p.isObject(), nil
}

// splitIJSONObject returns the members of data, which must already have been
// validated as I-JSON (it is part of a larger document that was); it checks
// only the top-level structure.
func splitIJSONObject(data []byte) ([]member, bool, error) {
	p := ijsonParser{data: data, collect: true, shallow: true, members: make([]member, 0, 8)}
	p.takeKeys()
	defer p.giveKeys()
	if err := p.text(); err != nil {
		return nil, false, err
	}
	return p.members, p.isObject(), nil
}

// keyStacks pools the parsers' stacks of member names (ijsonParser.keys):
// every document decoded would otherwise grow one anew.
var keyStacks = sync.Pool{New: func() any { s := make([]string, 0, 32); return &s }}

// maxPooledKeys bounds the stacks that go back to the pool.
const maxPooledKeys = 1024

func (p *ijsonParser) takeKeys() {
	p.keyStack = keyStacks.Get().(*[]string)
	p.keys = (*p.keyStack)[:0]
}

// giveKeys returns the stack to the pool, emptied: its names alias the
// document, which must not be kept alive by it.
func (p *ijsonParser) giveKeys() {
	if cap(p.keys) > maxPooledKeys {
		return
	}
	clear(p.keys[:cap(p.keys)])
	*p.keyStack = p.keys[:0]
	keyStacks.Put(p.keyStack)
}

// memberName is a member's name to keep: name may alias the document, so
// it is copied, unless it is one of the names of MESH's documents.
func memberName(name string) string {
	if s, ok := knownNames[name]; ok {
		return s
	}
	return strings.Clone(name)
}

// knownNames are the member names of MESH's documents (the protocol
// package's JSON field names), each its own value.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"aad", "access", "addrs", "agent", "algorithm", "allowedNodes", "artifacts", "blockers", "canonical", "capabilities", "checkpoint", "ciphertext", "code", "comment", "comparisons", "contact", "content", "created", "deadlineMs", "decisions", "df", "directory", "docs", "document", "encryptedLesson", "encryptedLessons", "encryption", "end", "epochKey", "error", "escrow", "escrowSeeds", "expires", "expiresAt", "field", "file", "filters", "fingerprint", "flags", "hasMore", "hex", "hops", "id", "issuedAt", "key", "keyEndpoint", "keyId", "keyResponse", "kind", "language", "lateMs", "lesson", "lessonId", "lessonKey", "lessons", "limit", "message", "messages", "minTrustScore", "more", "name", "nodeId", "nodes", "nonce", "note", "op", "origin", "plaintext", "policy", "project", "publicKey", "publicUrl", "publication", "publishedAt", "publishers", "query", "readerId", "readerSeed", "readings", "reason", "referral", "registration", "repo", "requestId", "results", "retentionDays", "revocation", "revocations", "revokedAt", "role", "roles", "score", "sealInfo", "sealedKey", "sealedShare", "seed", "session", "severity", "share", "shares", "shortId", "sig", "signature", "signedLesson", "signerSeed", "since", "size", "start", "state", "stats", "streams", "subject", "tag", "tags", "terms", "threshold", "timestamp", "title", "tokens", "topics", "truncated", "trustScore", "trusts", "ttl", "ttlMs", "type", "types", "unit", "until", "updated", "value", "vectors", "version", "via", "visibility", "vocab", "vocabSketch", "vouch", "words", "working"} {
		m[n] = n
	}
	return m
}()

func (p *ijsonParser) isObject() bool {
	for _, c := range p.data {
		if !isJSONSpace(c) {
			return c == '{'
		}
	}
	return false
}

// text parses one JSON text: a value with optional whitespace around it.
func (p *ijsonParser) text() error {
	err := p.value()
	if err == nil {
		p.ws()
		if p.i < len(p.data) {
			err = errors.New("Improperly terminated JSON object")
		}
	}
	if err != nil && !utf8.Valid(p.data) {
		// Bad UTF-8 anywhere is reported as such, whatever tripped first.
		return invalidf("not valid UTF-8")
	}
	if err != nil {
		return invalidf("not I-JSON: %v", err)
	}
	return nil
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *ijsonParser) ws() {
	for p.i < len(p.data) && isJSONSpace(p.data[p.i]) {
		p.i++
	}
}

func (p *ijsonParser) value() error {
	p.ws()
	if p.i >= len(p.data) {
		return errJSONEOF
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		_, err := p.str(false)
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c >= 0x80:
		return errors.New("Unexpected non-ASCII character")
	default:
		return fmt.Errorf("Unexpected character %q", rune(c))
	}
}

func (p *ijsonParser) literal(lit string) error {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return errors.New("Invalid literal")
	}
	p.i += len(lit)
	return nil
}

// number reads a number of the RFC 8259 grammar and checks that it fits a
// double: jcs refuses one that overflows to ±Inf (underflow to 0 is fine).
func (p *ijsonParser) number() error {
	d, start := p.data, p.i
	i := p.i
	if d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return errJSONEOF
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i++; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		}
	default:
		return errors.New("Invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return errors.New("Invalid number")
		}
		for ; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		}
	}
	exp := false
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		exp = true
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return errors.New("Invalid number")
		}
		for ; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		}
	}
	p.i = i
	// Without an exponent a number under 300 characters is below 1e300.
	if exp || i-start >= 300 {
		if _, err := strconv.ParseFloat(unsafe.String(&d[start], i-start), 64); err != nil {
			return fmt.Errorf("Number out of range: %q", truncate(string(d[start:i])))
		}
	}
	return nil
}

// strSafe marks the bytes a string holds as they are: printable ASCII other
// than '"' and '\\'.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// str reads a string, checking UTF-8 and escapes. With decode, it returns the
// unescaped value; when the string has no escapes that value aliases data.
func (p *ijsonParser) str(decode bool) (string, error) {
	d := p.data
	p.i++ // the opening quote
	start := p.i
	escaped := false
	for {
		for p.i < len(d) && strSafe[d[p.i]] {
			p.i++
		}
		if p.i >= len(d) {
			return "", errJSONEOF
		}
		switch c := d[p.i]; {
		case c == '"':
			raw := d[start:p.i]
			p.i++
			switch {
			case !decode || len(raw) == 0:
				return "", nil
			case !escaped:
				return unsafe.String(&raw[0], len(raw)), nil
			}
			return string(unescapeJSON(nil, raw)), nil
		case c == '\\':
			escaped = true
			if err := p.escape(); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", errors.New("Unterminated string literal")
		default:
			r, size := utf8.DecodeRune(d[p.i:])
			if r == utf8.RuneError && size <= 1 {
				return "", errJSONUTF8
			}
			p.i += size
		}
	}
}

// escape reads one escape sequence; p.i is at the backslash. A \u escape of
// a high surrogate must be followed by one of a low surrogate.
func (p *ijsonParser) escape() error {
	p.i++
	if p.i >= len(p.data) {
		return errJSONEOF
	}
	c := p.data[p.i]
	p.i++
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return nil
	case 'u':
	default:
		return fmt.Errorf("Unexpected escape: %q", string([]byte{'\\', c}))
	}
	r, err := p.hex4()
	if err != nil {
		return err
	}
	if !utf16.IsSurrogate(r) {
		return nil
	}
	if r > 0xDBFF {
		return fmt.Errorf("Invalid high surrogate: \\u%04x", r)
	}
	if len(p.data)-p.i < 2 {
		return errJSONEOF
	}
	if p.data[p.i] != '\\' || p.data[p.i+1] != 'u' {
		return errors.New("Missing surrogate")
	}
	p.i += 2
	r2, err := p.hex4()
	if err != nil {
		return err
	}
	if r2 < 0xDC00 || r2 > 0xDFFF {
		return fmt.Errorf("Invalid low surrogate: \\u%04x", r2)
	}
	return nil
}

func (p *ijsonParser) hex4() (rune, error) {
	if len(p.data)-p.i < 4 {
		return 0, errJSONEOF
	}
	var r rune
	for _, c := range p.data[p.i : p.i+4] {
		v := unhex(c)
		if v < 0 {
			return 0, errors.New("Invalid \\u escape")
		}
		r = r<<4 | rune(v)
	}
	p.i += 4
	return r, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func (p *ijsonParser) array() error {
	p.i++
	if p.depth++; p.depth > maxJSONDepth {
		return errJSONDepth
	}
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		p.depth--
		return nil
	}
	for {
		if err := p.value(); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.data) {
			return errJSONEOF
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			p.depth--
			return nil
		default:
			return fmt.Errorf("Expected ',' or ']' but got %q", rune(p.data[p.i]))
		}
	}
}

// linearKeys is how many member names an object checks for duplicates by
// comparing each with every other; a larger object switches to a map.
const linearKeys = 16

func (p *ijsonParser) object() error {
	p.i++
	if p.depth++; p.depth > maxJSONDepth {
		return errJSONDepth
	}
	top := p.depth == 1
	base := len(p.keys)
	var seen map[string]struct{}
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		p.depth--
		return nil
	}
	for {
		p.ws()
		if p.i >= len(p.data) {
			return errJSONEOF
		}
		if p.data[p.i] != '"' {
			return fmt.Errorf("Expected '\"' but got %q", rune(p.data[p.i]))
		}
		name, err := p.str(true)
		if err != nil {
			return err
		}
		if seen != nil {
			if _, dup := seen[name]; dup {
				return fmt.Errorf("Duplicate key: %q", truncate(name))
			}
			seen[name] = struct{}{}
		} else {
			for _, k := range p.keys[base:] {
				if k == name {
					return fmt.Errorf("Duplicate key: %q", truncate(name))
				}
			}
			p.keys = append(p.keys, name)
			if len(p.keys)-base > linearKeys {
				seen = make(map[string]struct{}, 2*linearKeys)
				for _, k := range p.keys[base:] {
					seen[k] = struct{}{}
				}
			}
		}
		p.ws()
		if p.i >= len(p.data) {
			return errJSONEOF
		}
		if p.data[p.i] != ':' {
			return fmt.Errorf("Expected ':' but got %q", rune(p.data[p.i]))
		}
		p.i++
		p.ws()
		start := p.i
		if top && p.shallow {
			p.i = skipJSONValue(p.data, p.i)
		} else if err := p.value(); err != nil {
			return err
		}
		if top && p.collect {
			p.members = append(p.members, member{name: memberName(name), value: p.data[start:p.i:p.i]})
		}
		p.ws()
		if p.i >= len(p.data) {
			return errJSONEOF
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			p.depth--
			p.keys = p.keys[:base]
			return nil
		default:
			return fmt.Errorf("Expected ',' or '}' but got %q", rune(p.data[p.i]))
		}
	}
}

// skipJSONValue returns the end of the valid JSON value that starts at i.
func skipJSONValue(d []byte, i int) int {
	if i >= len(d) {
		return i
	}
	switch d[i] {
	case '"':
		return skipJSONString(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = skipJSONString(d, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipJSONString returns the end of the valid JSON string that starts at i.
// It jumps from quote to quote (bytes.IndexByte): a quote ends the string
// unless an odd number of backslashes precede it.
func skipJSONString(d []byte, i int) int {
	start := i + 1
	for i = start; ; i++ {
		j := bytes.IndexByte(d[i:], '"')
		if j < 0 {
			return len(d)
		}
		i += j
		n := 0
		for k := i - 1; k >= start && d[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
}

// unescapeJSON appends the value of raw, the inside of a valid JSON string,
// to dst.
func unescapeJSON(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		c = raw[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexRune(raw[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				r = utf16.DecodeRune(r, hexRune(raw[i+2:]))
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst
}

func hexRune(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | rune(unhex(c))
	}
	return r
}

// jsonStringValue returns the value of raw, a valid JSON string token.
func jsonStringValue(raw []byte) string {
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c == '\\' {
			return string(unescapeJSON(make([]byte, 0, len(in)), in))
		}
	}
	return string(in)
}

// memberValue returns the value of the member called name of obj, a JSON
// object already checked as I-JSON (so names are unique), without
// allocating; ok is false if obj has no such member.
func memberValue(obj []byte, name string) (value []byte, ok bool) {
	i := 0
	ws := func() {
		for i < len(obj) && isJSONSpace(obj[i]) {
			i++
		}
	}
	ws()
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i++
	for {
		ws()
		if i >= len(obj) || obj[i] != '"' {
			return nil, false // '}' or the end
		}
		end := skipJSONString(obj, i)
		if end > len(obj) || end < i+2 {
			return nil, false
		}
		raw := obj[i+1 : end-1]
		i = end
		ws()
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		i++
		ws()
		start := i
		i = skipJSONValue(obj, i)
		if i > len(obj) {
			return nil, false
		}
		if jsonNameIs(raw, name) {
			return obj[start:i:i], true
		}
		ws()
		if i >= len(obj) || obj[i] != ',' {
			return nil, false
		}
		i++
	}
}

// jsonNameIs reports whether raw, the inside of a valid JSON string, is
// name; it unescapes only when raw has an escape.
func jsonNameIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	return string(unescapeJSON(nil, raw)) == name
}
