package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of a search query's text.
const (
	// MaxQueryLength caps the text of a query, in bytes.
	MaxQueryLength = 4 << 10
	// MaxQueryClauses caps the number of words, phrases and comparisons in
	// one query.
	MaxQueryClauses = 64
	// MaxFieldNameLength caps the field name of a comparison.
	MaxFieldNameLength = 64
)

// Comparison operators.
const (
	OpGreater      = ">"
	OpGreaterEqual = ">="
	OpLess         = "<"
	OpLessEqual    = "<="
	OpEqual        = "="
)

// Comparison is a numeric condition on a record field, such as
// `humidity > 60`. Field names a typed integer field of the record
// (created_at, updated_at, expires_at, start_line, end_line) or any other
// field whose value is a JSON number.
type Comparison struct {
	Field string
	Op    string // one of OpGreater, OpGreaterEqual, OpLess, OpLessEqual, OpEqual
	Value float64
}

// Match reports whether v satisfies the comparison.
func (c Comparison) Match(v float64) bool {
	switch c.Op {
	case OpGreater:
		return v > c.Value
	case OpGreaterEqual:
		return v >= c.Value
	case OpLess:
		return v < c.Value
	case OpLessEqual:
		return v <= c.Value
	case OpEqual:
		return v == c.Value
	}
	return false
}

// String returns the comparison as query text, e.g. "humidity > 60".
func (c Comparison) String() string {
	return c.Field + " " + c.Op + " " + strconv.FormatFloat(c.Value, 'g', -1, 64)
}

// ParsedQuery is the text of a query split into its parts.
type ParsedQuery struct {
	// Terms are the free words, in order. They are OR'ed: a record matches
	// if it contains any of them, and BM25 ranks the matches.
	Terms []string
	// Phrases are the "quoted phrases", without quotes. Each must occur in
	// a record, in order.
	Phrases []string
	// Comparisons are numeric conditions; each must hold.
	Comparisons []Comparison
}

// Empty reports whether the query has no clause at all.
func (p ParsedQuery) Empty() bool {
	return len(p.Terms) == 0 && len(p.Phrases) == 0 && len(p.Comparisons) == 0
}

// ParseQuery splits the text of a search query into words, "quoted phrases"
// and numeric comparisons on record fields.
//
// A comparison is a field name (a letter or '_', then letters, digits, '_',
// '.' or '-'), an operator (> >= < <= =) and a number, with or without
// spaces between them: `humidity > 60`, `temp<=20.5`. A trailing '%' on the
// number is ignored, so `humidity > 60%` means `humidity > 60`.
//
// The text may be at most MaxQueryLength bytes of UTF-8 and hold at most
// MaxQueryClauses clauses. Errors wrap protocol.ErrInvalid and say what was
// wrong.
func ParseQuery(text string) (ParsedQuery, error) {
	var p ParsedQuery
	if len(text) > MaxQueryLength {
		return p, invalidf("query is %d bytes, the limit is %d", len(text), MaxQueryLength)
	}
	if !utf8.ValidString(text) {
		return p, invalidf("query is not valid UTF-8")
	}
	toks, err := tokenize(text)
	if err != nil {
		return p, err
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.phrase {
			if strings.TrimSpace(t.text) != "" {
				p.Phrases = append(p.Phrases, t.text)
			}
			continue
		}
		c, used, isCmp, err := comparisonAt(toks[i:])
		if err != nil {
			return ParsedQuery{}, err
		}
		if isCmp {
			p.Comparisons = append(p.Comparisons, c)
			i += used - 1
			continue
		}
		p.Terms = append(p.Terms, t.text)
	}
	if n := len(p.Terms) + len(p.Phrases) + len(p.Comparisons); n > MaxQueryClauses {
		return ParsedQuery{}, invalidf("query has %d clauses (words, phrases, comparisons), the limit is %d", n, MaxQueryClauses)
	}
	return p, nil
}

type token struct {
	text   string
	phrase bool
}

// tokenize splits text at white space, keeping "quoted phrases" whole.
func tokenize(text string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isSpace(r):
			i += size
		case r == '"':
			end := strings.IndexByte(text[i+1:], '"')
			if end < 0 {
				return nil, invalidf("query: unterminated quote at byte %d: close the phrase with \"", i)
			}
			toks = append(toks, token{text: text[i+1 : i+1+end], phrase: true})
			i += end + 2
		default:
			j := i
			for j < len(text) {
				r, size := utf8.DecodeRuneInString(text[j:])
				if isSpace(r) || r == '"' {
					break
				}
				j += size
			}
			toks = append(toks, token{text: text[i:j]})
			i = j
		}
		// Bound the work on hostile input: more tokens than this cannot make
		// a valid query anyway.
		if len(toks) > 4*MaxQueryClauses {
			return nil, invalidf("query has more than %d clauses (words, phrases, comparisons)", MaxQueryClauses)
		}
	}
	return toks, nil
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0:
		return true
	}
	return r > 0xff && strings.ContainsRune("\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

// comparisonAt looks for a comparison at the start of toks. It reports how
// many tokens it used, whether there is one, and an error if the tokens
// start like a comparison (a field name and an operator) but do not finish
// like one.
func comparisonAt(toks []token) (c Comparison, used int, ok bool, err error) {
	// Join up to three plain tokens: "humidity", ">", "60" or "humidity>",
	// "60" or "humidity", ">60" or "humidity>60".
	first := toks[0].text
	name, rest := splitField(first)
	if name == "" {
		return c, 0, false, nil
	}
	used = 1
	if rest == "" {
		// The operator must start the next token.
		if len(toks) < 2 || toks[1].phrase || opPrefix(toks[1].text) == "" {
			return c, 0, false, nil
		}
		rest = toks[1].text
		used = 2
	}
	op := opPrefix(rest)
	if op == "" {
		// The field name runs into something else ("foo!bar"): a word.
		return c, 0, false, nil
	}
	num := rest[len(op):]
	if num == "" {
		if len(toks) <= used || toks[used].phrase {
			return c, 0, false, invalidf("query: comparison %q: want a number after %s, e.g. %s %s 60", truncate(name+" "+op), op, truncate(name), op)
		}
		num = toks[used].text
		used++
	}
	if len(name) > MaxFieldNameLength {
		return c, 0, false, invalidf("query: comparison field %q: names are at most %d bytes", truncate(name), MaxFieldNameLength)
	}
	v, perr := parseNumber(num)
	if perr != nil {
		return c, 0, false, invalidf("query: comparison %q: %q is not a number", truncate(name+" "+op+" "+num), truncate(num))
	}
	return Comparison{Field: name, Op: op, Value: v}, used, true, nil
}

// splitField splits a leading field name off s. It returns "" if s does not
// start with one followed by nothing or by an operator.
func splitField(s string) (name, rest string) {
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return "", ""
	}
	i := 1
	for i < len(s) && isFieldByte(s[i]) {
		i++
	}
	if i < len(s) && opPrefix(s[i:]) == "" {
		return "", ""
	}
	return s[:i], s[i:]
}

func opPrefix(s string) string {
	for _, op := range [...]string{OpGreaterEqual, OpLessEqual, OpGreater, OpLess, OpEqual} {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

func isAlpha(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

func isFieldByte(b byte) bool {
	return isAlpha(b) || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-'
}

// validFieldName reports whether name can be used in a comparison.
func validFieldName(name string) bool {
	if name == "" || len(name) > MaxFieldNameLength || !(isAlpha(name[0]) || name[0] == '_') {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isFieldByte(name[i]) {
			return false
		}
	}
	return true
}

// parseNumber parses a decimal number, with an optional trailing '%'.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSuffix(s, "%")
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, fmt.Errorf("not a number")
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("not a number")
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	i := 40
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
