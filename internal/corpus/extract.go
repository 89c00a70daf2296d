package corpus

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Doc is one corpus entry: a paragraph of documentation, or a generated doc
// made of sentences of one file's paragraphs.
type Doc struct {
	// ID is derived from the content: "d" (a paragraph) or "g" (generated)
	// and 20 hex digits of the SHA-256 of the lower-cased content. It is a
	// valid protocol record ID and unique within the corpus.
	ID string `json:"id"`
	// Title is "pkg.Symbol" for the doc of a declaration, or the first
	// sentence of the paragraph for a package doc; a generated doc has the
	// title of the paragraph its first sentence comes from.
	Title string `json:"title"`
	// Content is the text, whitespace collapsed to single spaces.
	Content string `json:"content"`
	// Tags are the elements of the package's import path.
	Tags []string `json:"tags"`
}

// ID prefixes and the number of hash bytes an ID carries.
const (
	realPrefix = "d"
	genPrefix  = "g"
	idBytes    = 10
)

// Limits on what counts as a paragraph worth keeping.
const (
	minChars = 60  // shorter paragraphs are dropped
	minWords = 8   // so are paragraphs of fewer words
	maxChars = 280 // longer paragraphs are split into sentence groups
	maxTitle = 90  // a title from a first sentence is cut at a word boundary
)

// source is one tree of Go packages: dir holds the package whose import path
// is prefix.
type source struct {
	dir    string
	prefix string
}

// goFile is one file to parse, with its package's import path.
type goFile struct {
	path       string
	importPath string
}

// listFiles walks the sources in order and returns their non-test Go files
// in a deterministic order (lexical within each source). An unreadable
// directory is an error: skipping it would make the corpus depend on the
// machine.
func listFiles(srcs []source) ([]goFile, error) {
	var out []goFile
	for _, s := range srcs {
		err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if p != s.dir && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				return nil
			}
			rel, err := filepath.Rel(s.dir, filepath.Dir(p))
			if err != nil {
				return err
			}
			ip := path.Join(s.prefix, filepath.ToSlash(rel))
			if ip == "." || ip == "" {
				return nil
			}
			out = append(out, goFile{path: p, importPath: ip})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("corpus: list %s: %w", s.dir, err)
		}
	}
	return out, nil
}

// rawPara is a paragraph before de-duplication.
type rawPara struct {
	title string
	text  string
	tags  []string
}

// extractAll parses every file with GOMAXPROCS workers and returns the
// cleaned, de-duplicated docs in file order, and where each file's docs start:
// the docs of file group g are docs[groups[g]:groups[g+1]] (files without docs
// have no group). A file that cannot be read is an error; one that does not
// parse contributes nothing, on every machine alike.
func extractAll(files []goFile) (docs []Doc, groups []int32, err error) {
	results := make([][]rawPara, len(files))
	errs := make([]error, len(files))
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p comment.Parser
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(files) {
					return
				}
				results[i], errs[i] = extractFile(&p, files[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}

	seen := make(map[[sha256.Size]byte]struct{})
	for _, rs := range results {
		start := len(docs)
		for _, r := range rs {
			for _, text := range splitLong(r.text) {
				if len(text) < minChars {
					// A short sentence between two long ones stands
					// alone after splitting: too short to be a doc.
					continue
				}
				key := sha256.Sum256([]byte(strings.ToLower(text)))
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
				title := r.title
				if title == "" {
					title = firstSentence(text)
				}
				docs = append(docs, Doc{
					ID:      realPrefix + hex.EncodeToString(key[:idBytes]),
					Title:   title,
					Content: text,
					Tags:    r.tags,
				})
			}
		}
		if len(docs) > start {
			groups = append(groups, int32(start))
		}
	}
	groups = append(groups, int32(len(docs)))
	return docs, groups, nil
}

// extractFile returns the usable paragraphs of one file's comments: the
// package doc, the docs of declarations (titled "pkg.Symbol"), then every other
// comment (titled by its first sentence).
func extractFile(p *comment.Parser, f goFile) ([]rawPara, error) {
	src, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if isGenerated(src) {
		return nil, nil
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, f.path, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil || file.Name == nil {
		return nil, nil
	}
	pkg := file.Name.Name
	if pkg == "main" || strings.HasSuffix(pkg, "_test") {
		pkg = path.Base(f.importPath)
	}
	tags := pathTags(f.importPath)
	var out []rawPara
	used := make(map[*ast.CommentGroup]bool)
	add := func(title string, cg *ast.CommentGroup) {
		if cg == nil || used[cg] {
			return
		}
		used[cg] = true
		for _, text := range paragraphs(p, cg.Text()) {
			out = append(out, rawPara{title: title, text: text, tags: tags})
		}
	}
	add("", file.Doc)
	for _, decl := range file.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				if recv := recvName(d.Recv.List[0].Type); recv != "" {
					name = recv + "." + name
				}
			}
			add(pkg+"."+name, d.Doc)
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					doc := s.Doc
					if doc == nil && len(d.Specs) == 1 {
						doc = d.Doc
					}
					add(pkg+"."+s.Name.Name, doc)
					addFields(add, pkg+"."+s.Name.Name, s.Type)
				case *ast.ValueSpec:
					var name string
					for _, n := range s.Names {
						if n.Name != "_" {
							name = n.Name
							break
						}
					}
					if name == "" {
						continue
					}
					doc := s.Doc
					if doc == nil && len(d.Specs) == 1 {
						doc = d.Doc
					}
					add(pkg+"."+name, doc)
				}
			}
			if len(d.Specs) > 1 && d.Doc != nil {
				add("", d.Doc) // doc of a const or var group
			}
		}
	}
	// Then every other comment: explanations inside function bodies and
	// between declarations.
	for _, cg := range file.Comments {
		add("", cg)
	}
	return out, nil
}

// addFields adds the docs of the exported fields of a struct type or the
// methods of an interface type.
func addFields(add func(string, *ast.CommentGroup), prefix string, typ ast.Expr) {
	var list *ast.FieldList
	switch t := typ.(type) {
	case *ast.StructType:
		list = t.Fields
	case *ast.InterfaceType:
		list = t.Methods
	}
	if list == nil {
		return
	}
	for _, fld := range list.List {
		for _, n := range fld.Names {
			if n.Name != "_" {
				add(prefix+"."+n.Name, fld.Doc)
				break
			}
		}
	}
}

func recvName(x ast.Expr) string {
	for {
		switch t := x.(type) {
		case *ast.StarExpr:
			x = t.X
		case *ast.IndexExpr:
			x = t.X
		case *ast.IndexListExpr:
			x = t.X
		case *ast.ParenExpr:
			x = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

func isGenerated(src []byte) bool {
	n := len(src)
	if n > 2048 {
		n = 2048
	}
	head := string(src[:n])
	return strings.Contains(head, "Code generated") && strings.Contains(head, "DO NOT EDIT")
}

// paragraphs parses a doc comment and returns its prose paragraphs (list
// items included, code blocks and headings dropped) that pass the filters.
func paragraphs(p *comment.Parser, text string) []string {
	d := p.Parse(text)
	var out []string
	keep := func(ts []comment.Text) {
		var b strings.Builder
		plain(&b, ts)
		if s := clean(b.String()); s != "" {
			out = append(out, s)
		}
	}
	for _, blk := range d.Content {
		switch x := blk.(type) {
		case *comment.Paragraph:
			keep(x.Text)
		case *comment.List:
			for _, it := range x.Items {
				for _, c := range it.Content {
					if para, ok := c.(*comment.Paragraph); ok {
						keep(para.Text)
					}
				}
			}
		}
	}
	return out
}

func plain(b *strings.Builder, ts []comment.Text) {
	for _, t := range ts {
		switch x := t.(type) {
		case comment.Plain:
			b.WriteString(string(x))
		case comment.Italic:
			b.WriteString(string(x))
		case *comment.Link:
			plain(b, x.Text)
		case *comment.DocLink:
			plain(b, x.Text)
		}
	}
}

// boilerplate marks paragraphs that are licences, build notes or similar.
var boilerplate = []string{
	"copyright", "licensed under", "license", "all rights reserved",
	"do not edit", "code generated", "go:build", "+build", "go:generate",
	"spdx", "todo", "fixme", "xxx:", "http://", "https://",
}

// clean collapses whitespace and returns "" for a paragraph that is too
// short, looks like code or is boilerplate.
func clean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) < minChars || !utf8.ValidString(s) {
		return ""
	}
	lower := strings.ToLower(s)
	for _, bp := range boilerplate {
		if strings.Contains(lower, bp) {
			return ""
		}
	}
	words, letters, other := 0, 0, 0
	inWord := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
			if !inWord {
				words++
				inWord = true
			}
		case r == ' ':
			inWord = false
		case strings.ContainsRune(".,;:'\"()-?!/", r):
			inWord = false
		default:
			other++ // digits, operators, brackets...
			inWord = false
		}
		if r > unicode.MaxASCII && !unicode.IsLetter(r) && !unicode.IsSpace(r) && !unicode.IsPunct(r) {
			return "" // symbols, box drawing, emoji
		}
	}
	if words < minWords || other*20 > len(s) || letters*10 < len(s)*7 {
		return ""
	}
	// Prose starts with a capital letter or a Go identifier and ends in
	// punctuation.
	last, _ := utf8.DecodeLastRuneInString(s)
	if !strings.ContainsRune(".:)!?", last) {
		return ""
	}
	return s
}

// splitLong splits a paragraph longer than maxChars into groups of whole,
// consecutive sentences of at most maxChars (a single longer sentence stays
// whole). Shorter paragraphs are returned as they are.
func splitLong(s string) []string {
	if len(s) <= maxChars {
		return []string{s}
	}
	sents := sentences(s)
	var out []string
	var cur strings.Builder
	for _, sent := range sents {
		if cur.Len() > 0 && cur.Len()+1+len(sent) > maxChars {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(sent)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	// A short tail joins the group before it rather than standing alone.
	if n := len(out); n > 1 && len(out[n-1]) < minChars {
		out[n-2] += " " + out[n-1]
		out = out[:n-1]
	}
	return out
}

// sentences splits text after ". ", "? " or "! " when the next word starts
// with an upper-case letter, and not after common abbreviations.
func sentences(s string) []string {
	var out []string
	splitSentences(s, func(off, end int) { out = append(out, s[off:end]) })
	return out
}

// splitSentences calls fn with the bounds of each sentence of s, in order;
// consecutive sentences are one space apart.
func splitSentences(s string, fn func(off, end int)) {
	start := 0
	for i := 0; i+2 < len(s); i++ {
		c := s[i]
		if (c != '.' && c != '?' && c != '!') || s[i+1] != ' ' {
			continue
		}
		r, _ := utf8.DecodeRuneInString(s[i+2:])
		if !unicode.IsUpper(r) {
			continue
		}
		word := s[strings.LastIndexByte(s[:i], ' ')+1 : i+1]
		switch strings.ToLower(word) {
		case "e.g.", "i.e.", "etc.", "vs.", "cf.", "no.", "mr.", "dr.":
			continue
		}
		fn(start, i+1)
		start = i + 2
	}
	fn(start, len(s))
}

// firstSentence returns the first sentence of s, cut at a word boundary if it
// is longer than maxTitle.
func firstSentence(s string) string {
	t := sentences(s)[0]
	if len(t) <= maxTitle {
		return strings.TrimSuffix(t, ".")
	}
	cut := strings.LastIndexByte(t[:maxTitle], ' ')
	if cut <= 0 {
		cut = maxTitle
		for !utf8.RuneStart(t[cut]) {
			cut--
		}
	}
	return strings.TrimRight(t[:cut], " ,;:") + "…"
}

// pathTags returns the elements of an import path as tags.
func pathTags(importPath string) []string {
	var tags []string
	for _, e := range strings.Split(importPath, "/") {
		if e != "" && len(e) <= 128 && len(tags) < 64 {
			tags = append(tags, e)
		}
	}
	return tags
}
