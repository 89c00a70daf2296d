package corpus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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

// goVersion names the Go release in goroot (its VERSION file), or the
// runtime's version.
func goVersion(goroot string) string {
	if b, err := os.ReadFile(filepath.Join(goroot, "VERSION")); err == nil {
		if line, _, _ := bytes.Cut(b, []byte("\n")); len(line) > 0 {
			return string(bytes.TrimSpace(line))
		}
	}
	return runtime.Version()
}

// sources lists the standard library and, for every module in the module
// cache, its newest version, sorted by module path.
func sources(goroot, modcache string) []source {
	var srcs []source
	if goroot != "" {
		srcs = append(srcs, source{dir: filepath.Join(goroot, "src"), prefix: ""})
	}
	if modcache == "" {
		return srcs
	}
	newest := make(map[string]string) // module path -> version
	dirOf := make(map[string]string)  // module path -> dir
	var walk func(dir, rel string, depth int)
	walk = func(dir, rel string, depth int) {
		if depth > 6 {
			return
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			name := e.Name()
			if rel == "" && name == "cache" {
				continue // the download cache: zips, not sources
			}
			p := name
			if rel != "" {
				p = rel + "/" + name
			}
			if i := strings.IndexByte(name, '@'); i >= 0 {
				mod := unescapePath(p[:len(p)-len(name)+i])
				ver := name[i+1:]
				if old, ok := newest[mod]; !ok || compareVersions(ver, old) > 0 {
					newest[mod] = ver
					dirOf[mod] = filepath.Join(dir, name)
				}
				continue
			}
			walk(filepath.Join(dir, name), p, depth+1)
		}
	}
	walk(modcache, "", 0)
	mods := make([]string, 0, len(newest))
	for m := range newest {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		srcs = append(srcs, source{dir: dirOf[m], prefix: m})
	}
	return srcs
}

// unescapePath undoes the module cache's case encoding: "!b" stands for "B".
func unescapePath(p string) string {
	if !strings.Contains(p, "!") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '!' && i+1 < len(p) {
			r, _ := utf8.DecodeRuneInString(p[i+1:])
			b.WriteRune(unicode.ToUpper(r))
			i++
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// compareVersions orders semantic versions such as v1.2.3, v0.0.0-2024...-abc
// and v2.1.0+incompatible: release numbers first, then a release beats a
// pre-release, then pre-release strings compare as text.
func compareVersions(a, b string) int {
	na, pa := splitVersion(a)
	nb, pb := splitVersion(b)
	for i := 0; i < 3; i++ {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return strings.Compare(pa, pb)
}

func splitVersion(v string) (nums [3]int, pre string) {
	v = strings.TrimPrefix(v, "v")
	v, _, _ = strings.Cut(v, "+")
	core, pre, _ := strings.Cut(v, "-")
	for i, part := range strings.SplitN(core, ".", 3) {
		n, _ := strconv.Atoi(part)
		nums[i] = n
	}
	return nums, pre
}
