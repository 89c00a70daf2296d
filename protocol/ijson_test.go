package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// ijsonSeeds are inputs on the edges of what jcs accepts.
var ijsonSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `1`, ` 42 `, "true\n", `null`, `nul`, `truex`, `[true1]`,
	`{"a":1}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a" 1}`, `{"a":1 "b":2}`, `{} {}`, `{}}`, `[[]]]`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"a":1},"b":{"a":2}}`, `{"é":1,"\u00e9":2}`,
	`{"a":"\ud83e\udd80"}`, `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800\ud800"`, `"\ud800x"`, `"\ud800\"`,
	`"\u00e9\u2028\/\b\f\n\r\t\"\\"`, `"\u00G0"`, `"\x"`, `"\u12"`, "\"\x01\"", "\"\x7f\"", "\"\xff\"", "\"\xed\xa0\x80\"",
	"\"\xef\xbf\xbd\"", "\xef\xbb\xbf{}", "{\"a\":\xc3\xa9}", "\"\xc3\"", "[1]\xff",
	`1e400`, `-1e400`, `1e-400`, `1E+2`, `1.5e308`, `1.8e308`, `01`, `-01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `Infinity`,
	strings.Repeat("9", 309), strings.Repeat("9", 308) + ".5", "0." + strings.Repeat("0", 400) + "1",
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k0":0}`,
	`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18}`,
	"{\"a\":[1,{\"b\":null}],\t\"c\" :\r\n\"d\"}",
}

func addIJSONSeeds(f *testing.F) {
	for _, s := range ijsonSeeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("testdata/golden/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lessons, signed, revocations, identities := fuzzSeeds(f)
	for _, set := range [][][]byte{lessons, signed, revocations, identities} {
		for _, b := range set {
			f.Add(b)
		}
	}
}

// FuzzIJSONMatchesJCS holds checkIJSON to jcs: it accepts an input exactly
// when jcs.Transform does. For an accepted object it also checks that the
// members parseIJSONObject and splitIJSONObject return are those
// encoding/json finds.
func FuzzIJSONMatchesJCS(f *testing.F) {
	addIJSONSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, jcsErr := jcs.Transform(data)
		err := checkIJSON(data)
		if tooDeep(data, err) {
			return
		}
		if (err == nil) != (jcsErr == nil) {
			t.Fatalf("checkIJSON: %v, jcs.Transform: %v\ninput %q", err, jcsErr, truncate(string(data)))
		}
		if err != nil {
			if !strings.Contains(err.Error(), "not I-JSON") && !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("unexpected error text: %v", err)
			}
			return
		}
		ms, isObject, err := parseIJSONObject(data)
		if err != nil {
			t.Fatalf("checkIJSON accepts, parseIJSONObject: %v", err)
		}
		if !isObject {
			if len(ms) != 0 {
				t.Fatalf("members of a non-object: %v", ms)
			}
			return
		}
		split, isObject2, err := splitIJSONObject(data)
		if err != nil || !isObject2 {
			t.Fatalf("splitIJSONObject: %v, %v", isObject2, err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("accepted, but encoding/json: %v", err)
		}
		for _, got := range [][]member{ms, split} {
			if len(got) != len(want) {
				t.Fatalf("%d members, encoding/json finds %d", len(got), len(want))
			}
			for _, m := range got {
				w, ok := want[m.name]
				if !ok || !bytes.Equal(m.value, bytes.TrimSpace(w)) {
					t.Fatalf("member %q = %q, encoding/json: %q (present %v)", m.name, m.value, w, ok)
				}
			}
		}
	})
}

func TestIJSONSeedsMatchJCS(t *testing.T) {
	for _, s := range ijsonSeeds {
		_, jcsErr := jcs.Transform([]byte(s))
		err := checkIJSON([]byte(s))
		if tooDeep([]byte(s), err) {
			continue
		}
		if (err == nil) != (jcsErr == nil) {
			t.Errorf("%q: checkIJSON %v, jcs %v", truncate(s), err, jcsErr)
		}
	}
}

// tooDeep reports whether data nests deeper than MaxDepth, where checkIJSON
// must refuse it (err, naming the limit) whatever jcs, which allows 10000
// levels, says. It fails the test if checkIJSON accepted it.
func tooDeep(data []byte, err error) bool {
	if jsonDepth(data) <= MaxDepth {
		return false
	}
	if err == nil {
		panic(fmt.Sprintf("%q: nested %d deep, accepted", truncate(string(data)), jsonDepth(data)))
	}
	return true
}

func TestIJSONDepthInContext(t *testing.T) {
	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	if err := checkIJSONDepth(deep(MaxDepth-2), 2); err != nil {
		t.Fatalf("%d deep at depth 2: %v", MaxDepth-2, err)
	}
	if err := checkIJSONDepth(deep(MaxDepth-1), 2); err == nil {
		t.Fatalf("%d deep at depth 2 accepted", MaxDepth-1)
	}
	if err := checkIJSON(deep(20000)); err == nil || !strings.Contains(err.Error(), "64 levels deep") {
		t.Fatalf("20000 deep: %v, want the limit named", err)
	}
	// Against jcs, in context.
	for _, n := range []int{MaxDepth - 2} {
		doc := append(append([]byte(`{"a":{"b":`), deep(n)...), "}}"...)
		_, jcsErr := jcs.Transform(doc)
		if err := checkIJSONDepth(deep(n), 2); (err == nil) != (jcsErr == nil) {
			t.Fatalf("depth %d: %v vs jcs %v", n, err, jcsErr)
		}
	}
}

func TestSkipJSONStringAndMemberValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"abc",`, 5},
		{`"a\"b",`, 6},
		{`"a\\",`, 5},
		{`"a\\\"b",`, 8},
		{`"\\\\",`, 6},
		{`""`, 2},
		{`"unterminated`, 13},
		{`"ends in escape\"`, 17},
	} {
		if got := skipJSONString([]byte(tc.in), 0); got != tc.want {
			t.Errorf("skipJSONString(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
	obj := []byte(` { "a" : "x\"}" , "b\\":1, "c":{"a":2}, "\u0064" : [1,"]"] } `)
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"a", `"x\"}"`, true},
		{`b\`, `1`, true},
		{"c", `{"a":2}`, true},
		{"d", `[1,"]"]`, true},
		{"e", "", false},
	} {
		v, ok := memberValue(obj, tc.name)
		if ok != tc.ok || string(v) != tc.want {
			t.Errorf("memberValue(%q) = %s %v, want %s %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{``, `[]`, `{`, `{"a"`, `{"a":1`, `"a"`} {
		if v, ok := memberValue([]byte(bad), "a"); ok && bad != `{"a":1` {
			t.Errorf("memberValue(%q) = %s, true", bad, v)
		}
	}
}
