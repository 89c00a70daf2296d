package corpus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// mainModule is the module path of the repository whose go.mod and go.sum
// pin the corpus.
const mainModule = "github.com/meshprotocol/mesh"

// ErrMissingModule is returned when a module the corpus needs is not in the
// module cache. `go mod download` in the repository fetches it.
var ErrMissingModule = errors.New("corpus: module not in the module cache")

// Module is one source tree of the corpus: a module that go.mod requires, at
// the version go.mod selects, with the checksum go.sum records for it.
type Module struct {
	Path    string
	Version string
	Sum     string // go.sum's "h1:" hash of the module's zip
}

// goEnv returns GOROOT and GOMODCACHE: from the environment, else from
// `go env`, else from the runtime's defaults.
func goEnv() (goroot, modcache string) {
	goroot, modcache = os.Getenv("GOROOT"), os.Getenv("GOMODCACHE")
	if goroot == "" || modcache == "" {
		if out, err := exec.Command("go", "env", "GOROOT", "GOMODCACHE").Output(); err == nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) == 2 {
				if goroot == "" {
					goroot = strings.TrimSpace(lines[0])
				}
				if modcache == "" {
					modcache = strings.TrimSpace(lines[1])
				}
			}
		}
	}
	if goroot == "" {
		goroot = runtime.GOROOT() //nolint:staticcheck // last resort only
	}
	if modcache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			if home, err := os.UserHomeDir(); err == nil {
				gopath = filepath.Join(home, "go")
			}
		}
		if gopath != "" {
			modcache = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
		}
	}
	return goroot, modcache
}

// goVersion names the Go release in goroot: the first line of its VERSION
// file.
func goVersion(goroot string) (string, error) {
	b, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return "", fmt.Errorf("corpus: the Go version of GOROOT %s: %w", goroot, err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	v := string(bytes.TrimSpace(line))
	if v == "" {
		return "", fmt.Errorf("corpus: %s is empty", filepath.Join(goroot, "VERSION"))
	}
	return v, nil
}

// repoDir returns the directory of the repository's go.mod: the one above
// this source file when the binary was built from a checkout that is still
// there, else the one the go command finds from the working directory. Either
// must declare the mesh module.
func repoDir() (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "..", "..")
		if isMeshModule(dir) {
			return filepath.Clean(dir), nil
		}
		tried = append(tried, dir)
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			dir := filepath.Dir(gomod)
			if isMeshModule(dir) {
				return dir, nil
			}
			tried = append(tried, dir)
		}
	}
	return "", fmt.Errorf("corpus: cannot find the go.mod of %s (tried %q): run from inside the repository", mainModule, tried)
}

func isMeshModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	path, _, err := parseGoMod(b)
	return err == nil && path == mainModule
}

// readModules returns the modules that dir/go.mod requires, sorted by path,
// each with its checksum from dir/go.sum. These are exactly the modules that
// `go mod download` fetches. go.sum may hold checksums of further modules
// (test dependencies of dependencies, which neither `go mod download` nor a
// build fetches): those are not part of the corpus.
func readModules(dir string) ([]Module, error) {
	gomod := filepath.Join(dir, "go.mod")
	b, err := os.ReadFile(gomod)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	_, reqs, err := parseGoMod(b)
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", gomod, err)
	}
	gosum := filepath.Join(dir, "go.sum")
	b, err = os.ReadFile(gosum)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	sums, err := parseGoSum(b)
	if err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", gosum, err)
	}
	for i, m := range reqs {
		sum, ok := sums[m.Path+" "+m.Version]
		if !ok {
			return nil, fmt.Errorf("corpus: %s has no checksum of %s@%s, which go.mod requires: run `go mod tidy` in %s", gosum, m.Path, m.Version, dir)
		}
		reqs[i].Sum = sum
	}
	return reqs, nil
}

// parseGoMod returns the module path and the requirements of a go.mod file.
// It understands the subset of the syntax that a go.mod without replace
// directives uses; a replace directive is an error, as the corpus would not
// follow it.
func parseGoMod(data []byte) (path string, reqs []Module, err error) {
	seen := make(map[string]bool)
	block := "" // the verb of the block we are in, if any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		if block == "" {
			verb, f = f[0], f[1:]
			if len(f) == 1 && f[0] == "(" {
				block = verb
				continue
			}
		} else if len(f) == 1 && f[0] == ")" {
			block = ""
			continue
		}
		switch verb {
		case "module":
			if len(f) != 1 {
				return "", nil, fmt.Errorf("line %d: malformed module directive", n)
			}
			if path, err = unquote(f[0]); err != nil {
				return "", nil, fmt.Errorf("line %d: %w", n, err)
			}
		case "require":
			if len(f) != 2 {
				return "", nil, fmt.Errorf("line %d: malformed requirement", n)
			}
			p, err := unquote(f[0])
			if err != nil {
				return "", nil, fmt.Errorf("line %d: %w", n, err)
			}
			v, err := unquote(f[1])
			if err != nil {
				return "", nil, fmt.Errorf("line %d: %w", n, err)
			}
			if seen[p] {
				return "", nil, fmt.Errorf("line %d: %s required twice", n, p)
			}
			seen[p] = true
			reqs = append(reqs, Module{Path: p, Version: v})
		case "replace":
			return "", nil, fmt.Errorf("line %d: replace directives are not supported: the corpus reads modules from the module cache at the versions go.mod requires", n)
		}
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if block != "" {
		return "", nil, fmt.Errorf("unterminated %s block", block)
	}
	if path == "" {
		return "", nil, errors.New("no module directive")
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].Path < reqs[j].Path })
	return path, reqs, nil
}

func unquote(s string) (string, error) {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "`") {
		return strconv.Unquote(s)
	}
	return s, nil
}

// parseGoSum returns the zip checksums of a go.sum file, keyed by
// "path version". Lines for go.mod files ("version/go.mod") are skipped.
func parseGoSum(data []byte) (map[string]string, error) {
	sums := make(map[string]string)
	for n, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: malformed", n+1)
		}
		if strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		sums[f[0]+" "+f[1]] = f[2]
	}
	return sums, nil
}

// moduleDir returns where the module cache holds the extracted module m, and
// the file in which the go command recorded the hash of the zip it extracted.
func moduleDir(modcache string, m Module) (dir, ziphash string) {
	p, v := escapeModPath(m.Path), escapeModPath(m.Version)
	return filepath.Join(modcache, filepath.FromSlash(p)+"@"+v),
		filepath.Join(modcache, "cache", "download", filepath.FromSlash(p), "@v", v+".ziphash")
}

// checkModule returns the directory of m in the module cache, or an error
// wrapping ErrMissingModule that says how to fetch it. Where the go command
// left a record of the zip's hash, it must be go.sum's.
func checkModule(modcache, repo string, m Module) (string, error) {
	dir, ziphash := moduleDir(modcache, m)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s@%s (required by %s) is not in %s: run `go mod download` in %s",
			ErrMissingModule, m.Path, m.Version, filepath.Join(repo, "go.mod"), modcache, repo)
	}
	if b, err := os.ReadFile(ziphash); err == nil {
		if got := strings.TrimSpace(string(b)); got != m.Sum {
			return "", fmt.Errorf("corpus: the module cache's %s@%s has hash %s, go.sum says %s: run `go clean -modcache` and `go mod download` in %s",
				m.Path, m.Version, got, m.Sum, repo)
		}
	}
	return dir, nil
}

// escapeModPath applies the module cache's case encoding: "B" is stored as
// "!b", so that paths differing only in case do not collide.
func escapeModPath(p string) string {
	if strings.IndexFunc(p, unicode.IsUpper) < 0 {
		return p
	}
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
