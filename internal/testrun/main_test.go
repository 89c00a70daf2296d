package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunListsSkips runs testrun on a small module of its own: a passing,
// a skipping and a failing test. The output has go test's package line,
// the failing test's output, and the skip with its reason; the exit status
// is go test's.
func TestRunListsSkips(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.24\n",
		"a/a_test.go": `package a

import "testing"

func TestPasses(t *testing.T) {}

func TestNeedsRoot(t *testing.T) { t.Skip("needs root for network namespaces") }
`,
		"b/b_test.go": `package b

import "testing"

func TestFails(t *testing.T) { t.Fatal("broken on purpose") }
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run([]string{"-count=1"}, &out, &errb)
	got := out.String()
	if code != 1 {
		t.Errorf("exit %d, want go test's 1\n%s%s", code, got, errb.String())
	}
	for _, want := range []string{
		"ok  \texample.com/m/a\t",
		"broken on purpose",
		"FAIL\texample.com/m/b\t",
		"skipped on this machine (1):",
		"example.com/m/a TestNeedsRoot: a_test.go:7: needs root for network namespaces",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestPasses") {
		t.Errorf("a passing test's name was printed:\n%s", got)
	}
}
