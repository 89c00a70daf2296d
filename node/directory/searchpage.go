package directory

import (
	_ "embed"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// The public search page: a read-only HTML view of ServeSearch for people
// without a node, served at GET / of the public API.
var (
	//go:embed page/search.html
	searchPageHTML string
	//go:embed page/search.css
	searchPageCSS []byte

	searchPage = template.Must(template.New("search").Parse(searchPageHTML))
)

type searchPageHit struct {
	Key, Title, Content                    string
	Publisher, PublisherShort, Fingerprint string
	Published, Topics                      string
}

type searchPageData struct {
	Query, Short, Topics, Err string
	Searched, More            bool
	Hits                      []searchPageHit
	Bad                       int
}

// handleSearchPage serves the search page: a form, and for ?q= the
// results, each with its publisher and its signature checked here.
func (s *Service) handleSearchPage(w http.ResponseWriter, r *http.Request) {
	d := searchPageData{Short: shortNodeID(s.self.String()), Topics: strings.Join(s.cfg.Topics, ", ")}
	q := r.URL.Query()
	if q.Has("q") {
		d.Query = strings.TrimSpace(q.Get("q"))
		d.Searched = true
		if len(d.Query) > protocol.MaxSearchQueryLength {
			d.Err = "the query is too long"
		} else if resp, err := s.ServeSearch(r.Context(), &protocol.DirectorySearchRequest{Query: d.Query, Limit: 30}); err != nil {
			d.Err = err.Error()
		} else {
			d.More = resp.More
			for _, res := range resp.Results {
				sl := res.SignedLesson
				if sl == nil || protocol.Verify(sl, protocol.VerifyOptions{}) != nil {
					d.Bad++
					continue
				}
				content := strings.Join(strings.Fields(sl.Lesson.Content), " ")
				if rs := []rune(content); len(rs) > 300 {
					content = string(rs[:299]) + "…"
				}
				fp := ""
				if pk, err := protocol.PublicKeyOf(sl.Signature.NodeID); err == nil {
					fp = protocol.Fingerprint(pk)
				}
				d.Hits = append(d.Hits, searchPageHit{
					Key: sl.Key(), Title: sl.Lesson.Title, Content: content,
					Publisher: sl.Signature.NodeID, PublisherShort: shortNodeID(sl.Signature.NodeID),
					Fingerprint: fp,
					Published:   time.UnixMilli(sl.Publication.PublishedAt).UTC().Format("2006-01-02 15:04 UTC"),
					Topics:      strings.Join(sl.Publication.Topics, ", "),
				})
			}
		}
	}
	var b strings.Builder
	if err := searchPage.Execute(&b, d); err != nil {
		s.writeSignedError(w, http.StatusInternalServerError, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(b.String()))
}

func shortNodeID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}
