package sensors

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshprotocol/mesh/protocol"
)

// MaxQueryLength caps the text of a question, in bytes.
const MaxQueryLength = 1024

// comparisonRE finds `field op number[unit]`, with or without spaces
// around the operator: "humidity > 60%", "temp<=4", "power >= 1.5kW".
var comparisonRE = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_-]*)\s*(>=|<=|>|<|=)\s*(-?[0-9]+(?:\.[0-9]+)?)([^\s0-9.,][^\s,]*)?`)

// durationRE is a duration of a time phrase: "24h", "7d", "30min", "2w".
var durationRE = regexp.MustCompile(`^([0-9]+)(s|sec|secs|m|min|mins|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)$`)

// ParseQuery turns the text of a question into the query a source
// evaluates, at now in loc (the asker's time zone: "today" is its day):
//
//   - comparisons with an optional unit: "humidity > 60%", "temp <= 4",
//     "power >= 1500W" (the unit must be the stream's, if given);
//   - time phrases: "last 24h", "last 7 days", "last hour", "since
//     2026-12-01" (or an RFC 3339 time), "until 2026-12-02", "today",
//     "yesterday";
//   - words: each must name a segment of a stream ("humidity",
//     "basement"; "temp" and "temperature" match either way), or be
//     "anomaly" (readings marked anomalous).
//
// Errors wrap protocol.ErrInvalid and say what was wrong.
func ParseQuery(text string, now time.Time, loc *time.Location) (*protocol.SensorQuery, error) {
	if loc == nil {
		loc = time.Local
	}
	q := &protocol.SensorQuery{Type: protocol.MsgSensorQuery}
	if len(text) > MaxQueryLength {
		return nil, fmt.Errorf("%w: the question is %d bytes, the limit is %d", protocol.ErrInvalid, len(text), MaxQueryLength)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: the question is not valid UTF-8", protocol.ErrInvalid)
	}
	rest := comparisonRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := comparisonRE.FindStringSubmatch(m)
		v, err := strconv.ParseFloat(sub[3], 64)
		if err != nil {
			return m // cannot happen: the pattern is a number
		}
		q.Comparisons = append(q.Comparisons, protocol.SensorComparison{Field: strings.ToLower(sub[1]), Op: sub[2], Value: v, Unit: sub[4]})
		return " "
	})
	words := strings.Fields(strings.ToLower(rest))
	day := func(t time.Time) time.Time {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	for i := 0; i < len(words); i++ {
		w := strings.Trim(words[i], ",;")
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%w: %q wants something after it (last 24h, since 2026-12-01)", protocol.ErrInvalid, w)
			}
			i++
			return strings.Trim(words[i], ",;"), nil
		}
		switch w {
		case "":
			continue
		case "and", "in", "the", "of", "at", "over", "for", "readings", "reading":
			continue
		case "today":
			q.Since = day(now).UnixMilli()
		case "yesterday":
			d := day(now)
			q.Since, q.Until = d.AddDate(0, 0, -1).UnixMilli(), d.UnixMilli()-1
		case "last", "past":
			arg, err := next()
			if err != nil {
				return nil, err
			}
			d, err := phraseDuration(arg)
			if err != nil && i+1 < len(words) { // "last 7 days"
				if n, nerr := strconv.Atoi(arg); nerr == nil && n > 0 {
					unit := strings.Trim(words[i+1], ",;")
					if d, err = phraseDuration(arg + unit); err == nil {
						i++
					}
				}
			}
			if err != nil {
				return nil, err
			}
			q.Since = now.Add(-d).UnixMilli()
		case "since", "from", "after":
			arg, err := next()
			if err != nil {
				return nil, err
			}
			t, err := phraseTime(arg, loc)
			if err != nil {
				return nil, err
			}
			q.Since = t.UnixMilli()
		case "until", "before", "to":
			arg, err := next()
			if err != nil {
				return nil, err
			}
			t, err := phraseTime(arg, loc)
			if err != nil {
				return nil, err
			}
			q.Until = t.UnixMilli()
		default:
			if !wordOK(w) {
				return nil, fmt.Errorf("%w: %q: a word of the question names a stream (humidity, basement), \"anomaly\", or a time phrase; comparisons are field op number (humidity > 60%%)", protocol.ErrInvalid, truncate(w))
			}
			if w == "anomalies" || w == "anomalous" {
				w = "anomaly"
			}
			q.Words = append(q.Words, w)
		}
	}
	if q.Since > now.UnixMilli() {
		return nil, fmt.Errorf("%w: since %s is in the future", protocol.ErrInvalid, time.UnixMilli(q.Since).In(loc).Format(time.RFC3339))
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

func wordOK(w string) bool {
	if w == "" || len(w) > protocol.MaxStreamNameLength {
		return false
	}
	for _, r := range w {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// phraseDuration reads "24h", "7d", "hour", "day", "week".
func phraseDuration(s string) (time.Duration, error) {
	switch s {
	case "hour":
		return time.Hour, nil
	case "day":
		return 24 * time.Hour, nil
	case "week":
		return 7 * 24 * time.Hour, nil
	case "minute":
		return time.Minute, nil
	}
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%w: %q: want a duration such as 24h, 7d, 30min, 2w or hour", protocol.ErrInvalid, truncate(s))
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 || n > 100000 {
		return 0, fmt.Errorf("%w: %q: the number is out of range", protocol.ErrInvalid, truncate(s))
	}
	var unit time.Duration
	switch m[2] {
	case "s", "sec", "secs":
		unit = time.Second
	case "m", "min", "mins":
		unit = time.Minute
	case "h", "hr", "hrs", "hour", "hours":
		unit = time.Hour
	case "d", "day", "days":
		unit = 24 * time.Hour
	default:
		unit = 7 * 24 * time.Hour
	}
	return time.Duration(n) * unit, nil
}

// phraseTime reads a date (2026-12-01, midnight in loc), a date and time
// (2026-12-01T08:00, in loc) or an RFC 3339 time.
func phraseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, strings.ToUpper(s)); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02t15:04", "2006-01-02t15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q: want a date (2026-12-01), a local time (2026-12-01T08:00) or an RFC 3339 time", protocol.ErrInvalid, truncate(s))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// segmentMatch reports whether a word of a question names a segment of
// stream: equal, or one a prefix of the other when both have at least 3
// letters ("temp" ~ "temperature").
func segmentMatch(word, stream string) bool {
	for _, seg := range strings.Split(stream, "/") {
		if seg == word {
			return true
		}
		if len(word) >= 3 && len(seg) >= 3 && (strings.HasPrefix(seg, word) || strings.HasPrefix(word, seg)) {
			return true
		}
	}
	return false
}

// normUnit folds the spellings of a unit that mean one thing: case, a
// degree sign ("°C" = "C" = "c").
func normUnit(u string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(u, "°"), "º"))
}

// streamFits reports whether a stream named name with unit could hold
// matches of q: it matches one of q's stream patterns (if any), every
// word but "anomaly" names one of its segments, and every comparison's
// field names one of its segments with a unit that is the stream's (if
// the comparison gives one).
func streamFits(q *protocol.SensorQuery, name, unit string) bool {
	if len(q.Streams) > 0 {
		ok := false
		for _, p := range q.Streams {
			if protocol.StreamMatches(p, name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, w := range q.Words {
		if w != "anomaly" && !segmentMatch(w, name) {
			return false
		}
	}
	for _, c := range q.Comparisons {
		if !segmentMatch(c.Field, name) {
			return false
		}
		if c.Unit != "" && normUnit(c.Unit) != normUnit(unit) {
			return false
		}
	}
	return true
}

// readingFits reports whether a reading of a fitting stream matches q's
// time window, comparisons and anomaly word.
func readingFits(q *protocol.SensorQuery, at int64, value float64, anomaly bool) bool {
	if q.Since != 0 && at < q.Since || q.Until != 0 && at > q.Until {
		return false
	}
	for _, c := range q.Comparisons {
		if !c.Match(value) {
			return false
		}
	}
	for _, w := range q.Words {
		if w == "anomaly" && !anomaly {
			return false
		}
	}
	return true
}

// describe is the query as people read it back.
func describe(q *protocol.SensorQuery) (words, comparisons []string) {
	words = append(words, q.Words...)
	for _, c := range q.Comparisons {
		comparisons = append(comparisons, c.Field+" "+c.Op+" "+strconv.FormatFloat(c.Value, 'g', -1, 64)+c.Unit)
	}
	return words, comparisons
}
