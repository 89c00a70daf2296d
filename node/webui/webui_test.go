package webui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/nodetest"
	"github.com/meshprotocol/mesh/node/webui"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// uiServer serves a real node's web UI on loopback and returns the UI, its
// base URL and a client that keeps cookies and does not follow redirects.
func uiServer(t *testing.T) (*node.Node, *webui.Server, string, *http.Client) {
	t.Helper()
	n := nodetest.New(t, node.Config{})
	ui := webui.New(webui.Config{API: n})
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return n, ui, srv.URL, c
}

func login(t *testing.T, ui *webui.Server, base string, c *http.Client) *http.Response {
	t.Helper()
	link, err := ui.NewLogin()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(base + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrfOf reads the session's form token from a page.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	const mark = `name="csrf" value="`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("no form token on the page:\n%s", page)
	}
	rest := page[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

func TestLoginLinkWorksOnceAndSetsAStrictCookie(t *testing.T) {
	_, ui, base, c := uiServer(t)
	if code, body := get(t, c, base+"/"); code != http.StatusUnauthorized || !strings.Contains(body, "mesh ui") {
		t.Fatalf("without a session: %d %s", code, body)
	}
	link, err := ui.NewLogin()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(base + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	if code, body := get(t, c, base+"/"); code != http.StatusOK || !strings.Contains(body, `id="node-id"`) {
		t.Fatalf("with the session: %d", code)
	}
	// The same link a second time, from another browser: refused.
	other := &http.Client{CheckRedirect: c.CheckRedirect}
	if code, _ := get(t, other, base+link); code != http.StatusForbidden {
		t.Fatalf("a login link opened twice: %d, want 403", code)
	}
	if code, _ := get(t, other, base+"/login?token="); code != http.StatusForbidden {
		t.Fatalf("an empty token: %d, want 403", code)
	}
}

func TestStateChangesNeedSessionSameOriginAndFormToken(t *testing.T) {
	n, ui, base, c := uiServer(t)
	ctx := context.Background()
	form := url.Values{"title": {"t"}, "content": {"from the form"}, "visibility": {"private"}}
	count := func() int {
		res, err := n.List(ctx, store.ListOptions{Origin: store.OriginLocal, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return res.Total
	}
	// No session.
	if code, _ := post(t, c, base+"/memories", form, map[string]string{"Origin": base}); code != http.StatusUnauthorized {
		t.Fatalf("a post without a session: %d, want 401", code)
	}
	login(t, ui, base, c)
	_, page := get(t, c, base+"/memories")
	form.Set("csrf", csrfOf(t, page))
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"another origin", map[string]string{"Origin": "http://localhost:1"}},
		{"origin null", map[string]string{"Origin": "null"}},
		{"https origin of another port", map[string]string{"Origin": "https://" + strings.TrimPrefix(base, "http://")}},
		{"cross-site fetch without Origin", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"neither Origin nor Sec-Fetch-Site", nil},
	} {
		if code, body := post(t, c, base+"/memories", form, tc.hdr); code != http.StatusForbidden || !strings.Contains(body, "Refused") {
			t.Errorf("%s: %d %q, want 403 Refused", tc.name, code, body)
		}
	}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf", "guess")
	if code, _ := post(t, c, base+"/memories", bad, map[string]string{"Origin": base}); code != http.StatusForbidden {
		t.Fatalf("a wrong form token: %d, want 403", code)
	}
	if got := count(); got != 0 {
		t.Fatalf("%d record(s) stored by refused posts", got)
	}
	code, loc := post(t, c, base+"/memories", form, map[string]string{"Origin": base})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/memories/lesson_") || !strings.Contains(loc, "ok=stored") {
		t.Fatalf("a same-origin post: %d %s", code, loc)
	}
	if got := count(); got != 1 {
		t.Fatalf("%d record(s) after one store", got)
	}
	// Too big a form: a clear 400, nothing stored.
	huge := url.Values{"csrf": {form.Get("csrf")}, "content": {strings.Repeat("x", 2<<20)}}
	if code, _ := post(t, c, base+"/memories", huge, map[string]string{"Origin": base}); code != http.StatusBadRequest {
		t.Fatalf("a 2 MiB form: %d, want 400", code)
	}
	// Log out: the session is gone.
	if code, _ := post(t, c, base+"/logout", url.Values{"csrf": {form.Get("csrf")}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusSeeOther {
		t.Fatalf("log out: %d", code)
	}
	if code, _ := get(t, c, base+"/memories"); code != http.StatusUnauthorized {
		t.Fatalf("after log out: %d, want 401", code)
	}
}

func TestPagesRenderAndEscape(t *testing.T) {
	n, ui, base, c := uiServer(t)
	other := nodetest.New(t, node.Config{})
	evil := `<script>alert(1)</script>`
	if err := n.TrustSet(context.Background(), other.ID().String(), trust.LevelLimited, evil); err != nil {
		t.Fatal(err)
	}
	login(t, ui, base, c)
	for _, p := range []string{"/", "/memories", "/memories?q=anything&origin=all", "/search", "/search?q=nothing", "/trust", "/following", "/watches", "/static/style.css", "/static/app.js"} {
		code, body := get(t, c, base+p)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, code, body)
		}
		if strings.Contains(body, evil) {
			t.Errorf("GET %s: a trust note is not escaped", p)
		}
	}
	_, page := get(t, c, base+"/trust")
	if !strings.Contains(page, `data-node="`+other.ID().String()+`" data-level="limited" data-hops="1"`) || !strings.Contains(page, "&lt;script&gt;") {
		t.Fatal("the trust graph does not show the limited peer with its escaped note")
	}
	for p, want := range map[string]int{"/nope": http.StatusNotFound, "/memories/not%20an%20id": http.StatusBadRequest, "/memories/lesson_0000000000000000": http.StatusOK} {
		if code, body := get(t, c, base+p); code != want {
			t.Errorf("GET %s: %d, want %d\n%s", p, code, want, body)
		}
	}
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
}
