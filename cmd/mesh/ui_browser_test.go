package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a headless-capable Chromium, or skips the test saying
// why; under CI=true it fails instead (.ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: the browser tests need Chromium: apt-get install chromium (.ci/run does)")
	}
	t.Skip("needs Chromium for the browser tests: apt-get install chromium")
	return ""
}

// uiLink is a one-time login link to a daemon's web UI (mesh --json ui).
func uiLink(t *testing.T, repo string) string {
	t.Helper()
	var out struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, repo, "", "--json", "ui")), &out); err != nil || !strings.Contains(out.URL, "/login?token=") {
		t.Fatalf("mesh --json ui: %+v %v", out, err)
	}
	return out.URL
}

// browser is a headless Chromium that fails the test on any console
// error or uncaught exception in the tabs it watches.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	shots  string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, shots: t.TempDir()}
	if os.Getenv("MESH_UPDATE_SCREENSHOTS") == "1" {
		b.shots = filepath.Join("..", "..", "docs", "screenshots")
	}
	return b
}

// tab opens a tab whose console is watched (watch false: a page that is
// meant to fail, such as a cross-site attack).
func (b *browser) tab(name string, watch bool) context.Context {
	ctx, _ := chromedp.NewContext(b.ctx)
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open tab %s: %v", name, err)
	}
	if watch {
		go func() {
			for m, err := range msgs {
				if err != nil {
					return
				}
				if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == "assert" {
					b.mu.Lock()
					b.errors = append(b.errors, fmt.Sprintf("%s: %s (%s:%d)", name, m.Text, m.URL, m.Line+1))
					b.mu.Unlock()
				}
			}
		}()
	}
	return ctx
}

// do runs steps on a tab, bounded by 30 s.
func (b *browser) do(tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(tab, chromedp.Location())
		body, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func (b *browser) text(tab context.Context, sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(tab context.Context, expr string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until reloads url on tab until expr is true, for at most 30 s.
func (b *browser) until(tab context.Context, what, url, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.do(tab, what, chromedp.Navigate(url))
		if b.eval(tab, expr) {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
			b.t.Fatalf("timed out waiting for %s:\n%s", what, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// shot saves a full-page screenshot of the tab as name.png.
func (b *browser) shot(tab context.Context, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		b.t.Errorf("browser console: %s", e)
	}
}

// TestWebUIBrowser drives the web UI in a real headless Chromium against
// real daemons: A's user logs in with a mesh ui link, stores a lesson and
// publishes it from the Memories pages; B's user searches the network and
// finds nothing from A, trusts A on the Trust page and sees A appear in
// the trust graph, then finds A's lesson with its signature checked and
// its trust path; B adds a watch on a topic it did not follow and sees a
// matching lesson arrive live; the directory's public search page shows
// the lesson, read-only; A revokes it and it disappears from B's search;
// a cross-site form post against B's UI is refused and changes nothing.
// It fails on any console error; it saves a screenshot of every page
// (MESH_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots).
func TestWebUIBrowser(t *testing.T) {
	b := newBrowser(t)
	t.Parallel()
	dir := t.TempDir()
	ra, rb, rd := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "dir")
	public := freePort(t)
	startDaemonWith(t, rd, "--directory", "--directory-topic", "rust", "--public-api", public, "--public-rate", "1000")
	da, db := startDaemon(t, ra), startDaemon(t, rb)
	a, d := idOf(t, ra), idOf(t, rd)
	for _, r := range []string{ra, rb} {
		mustMesh(t, r, "", "follow", "rust")
	}
	mustMesh(t, rb, "", "connect", a.Addrs[0])
	mustMesh(t, ra, "", "directory", "add", d.Addrs[0])

	// A logs in: the Node page.
	ta := b.tab("A", true)
	b.do(ta, "A logs in", chromedp.Navigate(uiLink(t, ra)), chromedp.WaitVisible(chromedp.CSS("#node-id")))
	if got := b.text(ta, "#node-id"); got != a.NodeID {
		t.Fatalf("node page shows %q, want %s", got, a.NodeID)
	}
	if !b.eval(ta, `document.querySelectorAll('#peers tr').length >= 2`) {
		t.Fatal("the node page lists no peer")
	}
	b.shot(ta, "node")

	// A stores a lesson from the Memories page and publishes it.
	b.do(ta, "A stores a lesson",
		chromedp.Navigate(da.api+"/memories"),
		chromedp.SendKeys(chromedp.CSS(`#store-form input[name=title]`), "Cargo builds exhaust memory"),
		chromedp.SendKeys(chromedp.CSS(`#store-form textarea[name=content]`), "Parallel cargo builds run the linker out of memory on a small VPS."),
		chromedp.SendKeys(chromedp.CSS(`#store-form input[name=tags]`), "rust, cargo"),
		chromedp.Click(chromedp.CSS("#store")),
		chromedp.WaitVisible(chromedp.CSS("#publish-form")))
	if ok := b.text(ta, "#flash-ok"); !strings.HasPrefix(ok, "stored lesson_") {
		t.Fatalf("store: flash %q", ok)
	}
	if v := b.text(ta, "#visibility"); v != "private" {
		t.Fatalf("a stored lesson is %q, want private", v)
	}
	loc, err := chromedp.Run(ta, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Path[strings.LastIndex(u.Path, "/")+1:]
	key := id + "@" + a.NodeID
	b.do(ta, "A publishes it",
		chromedp.SetValue(chromedp.CSS(`#publish-form select[name=visibility]`), "public"),
		chromedp.SendKeys(chromedp.CSS(`#publish-form input[name=topics]`), "rust"),
		chromedp.Click(chromedp.CSS("#publish")),
		chromedp.WaitVisible(chromedp.CSS("#revoke-form")))
	if pub := b.text(ta, "#publication"); !strings.Contains(pub, "public on rust") || !strings.Contains(pub, "✓ signature valid") || !strings.Contains(pub, "not revoked") {
		t.Fatalf("publication after publish: %q", pub)
	}
	b.shot(ta, "memory")
	b.do(ta, "A lists memories", chromedp.Navigate(da.api+"/memories"), chromedp.WaitVisible(chromedp.CSS(`#records tr[data-id="`+id+`"]`)))
	if v := b.text(ta, `#records tr[data-id="`+id+`"] .badge`); v != "public" {
		t.Fatalf("the list shows %q, want a public badge", v)
	}
	b.shot(ta, "memories")

	// B: the network search finds nothing of A's while B does not trust A.
	tb := b.tab("B", true)
	b.do(tb, "B logs in", chromedp.Navigate(uiLink(t, rb)), chromedp.WaitVisible(chromedp.CSS("#node-id")))
	search := db.api + "/search?q=cargo+memory"
	b.do(tb, "B searches", chromedp.Navigate(search), chromedp.WaitVisible(chromedp.CSS("#summary")))
	if b.eval(tb, `document.querySelector('.hit') !== null`) {
		t.Fatal("B found a lesson of a publisher it does not trust")
	}

	// B trusts A on the Trust page: A appears in the graph.
	b.do(tb, "B opens Trust", chromedp.Navigate(db.api+"/trust"), chromedp.WaitVisible(chromedp.CSS("#graph svg")))
	nodeInGraph := `document.querySelector('#graph g.node[data-node="` + a.NodeID + `"]')`
	if b.eval(tb, nodeInGraph+` !== null`) {
		t.Fatal("A is in B's trust graph before B trusts it")
	}
	b.do(tb, "B trusts A",
		chromedp.SendKeys(chromedp.CSS(`#trust-form input[name=nodeId]`), a.NodeID),
		chromedp.SendKeys(chromedp.CSS(`#trust-form input[name=note]`), "alice"),
		chromedp.Click(chromedp.CSS("#trust-add")),
		chromedp.WaitVisible(chromedp.CSS("#flash-ok")))
	if !b.eval(tb, nodeInGraph+`.getAttribute("data-level") === "full"`) || !b.eval(tb, `document.querySelector('#graph line.edge-full') !== null`) {
		t.Fatal("A does not appear in B's trust graph, fully trusted")
	}
	b.shot(tb, "trust")

	// Now the search finds A's lesson, verified, with its trust path.
	hit := `.hit[data-key="` + key + `"]`
	b.until(tb, "B to find A's lesson", search, `document.querySelector('`+hit+`') !== null`)
	if meta := b.text(tb, hit+" .meta"); !strings.Contains(meta, "✓ signature valid") || !strings.Contains(meta, "you → ") || !strings.Contains(meta, "(alice)") {
		t.Fatalf("search hit: %q", meta)
	}
	b.shot(tb, "search")

	// B watches "tokio" on a topic it does not follow: it follows it, and
	// a matching lesson arrives live on the Watches page.
	b.do(tb, "B adds a watch",
		chromedp.Navigate(db.api+"/watches"),
		chromedp.SendKeys(chromedp.CSS(`#watch-form input[name=query]`), "tokio"),
		chromedp.SendKeys(chromedp.CSS(`#watch-form input[name=topic]`), "async"),
		chromedp.Click(chromedp.CSS("#watch-add")),
		chromedp.WaitVisible(chromedp.CSS("#flash-ok")))
	if ok := b.text(tb, "#flash-ok"); !strings.Contains(ok, "now following topic async") {
		t.Fatalf("watch add: %q", ok)
	}
	b.do(tb, "B's watch page goes live", chromedp.Poll[chromedp.Void](`document.getElementById("live").textContent === "live"`))
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "Tokio blocking calls", "--content", "Never block a tokio worker thread.")), &st); err != nil {
		t.Fatal(err)
	}
	mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "async")
	b.do(tb, "the match to arrive live", chromedp.WaitVisible(chromedp.CSS(`#matches li[data-key="`+st.ID+"@"+a.NodeID+`"]`)))
	if !b.eval(tb, `document.querySelector('#watch-list tr[data-watch] .match-count').textContent === "1"`) {
		t.Fatalf("the watch's match count did not follow the live match: %q", b.text(tb, "#watch-list"))
	}
	b.shot(tb, "watches")
	b.do(tb, "B opens Following", chromedp.Navigate(db.api+"/following"), chromedp.WaitVisible(chromedp.CSS("#topics")))
	if got := b.text(tb, "#topics"); !strings.Contains(got, "async") || !strings.Contains(got, "rust") {
		t.Fatalf("following: %q", got)
	}
	b.shot(tb, "following")
	b.do(tb, "B's node page", chromedp.Navigate(db.api+"/"), chromedp.WaitVisible(chromedp.CSS("#peers")))
	b.shot(tb, "node-b")

	// A's sensors: a stream with readings, charted; a grant to B.
	mustMesh(t, ra, "", "sensor", "add", "basement/humidity", "--unit", "%")
	for i, v := range []string{"58.5", "61", "63.25", "62", "64.2"} {
		at := time.Now().Add(-time.Duration(20-4*i) * time.Hour).UTC().Format(time.RFC3339)
		mustMesh(t, ra, "", "sensor", "push", "basement/humidity", v, "--at", at)
	}
	mustMesh(t, ra, "", "access", "grant", idOf(t, rb).NodeID, "--stream", "basement/*")
	b.do(ta, "A opens Sensors", chromedp.Navigate(da.api+"/sensors"), chromedp.WaitVisible(chromedp.CSS("svg.chart polyline")))
	if got := b.text(ta, "#grants"); !strings.Contains(got, "basement/*") {
		t.Fatalf("grants: %q", got)
	}
	b.shot(ta, "sensors")

	// The directory's public page: the lesson, signature checked; no form
	// changes anything there.
	tp := b.tab("public", true)
	b.until(tp, "the directory to list A's lesson", "http://"+public+"/?q=cargo", `document.querySelector('`+hit+`') !== null`)
	if sig := b.text(tp, hit+" .sig"); !strings.Contains(sig, "✓ signature valid") {
		t.Fatalf("public page: %q", sig)
	}
	if b.eval(tp, `document.querySelector('form[method=post], form[method=POST]') !== null`) {
		t.Fatal("the public search page has a form that posts")
	}
	b.shot(tp, "public-search")

	// A revokes: the lesson disappears from B's search.
	b.do(ta, "A revokes", chromedp.Navigate(da.api+"/memories/"+id), chromedp.Click(chromedp.CSS("#revoke")), chromedp.WaitVisible(chromedp.CSS("#flash-ok")))
	if ok := b.text(ta, "#flash-ok"); !strings.Contains(ok, "revoked") {
		t.Fatalf("revoke: %q", ok)
	}
	b.until(tb, "the revoked lesson to leave B's search", search, `document.querySelector('`+hit+`') === null`)

	// A cross-site form post against B's UI (B is logged in in this
	// browser) is refused and deletes nothing.
	var bst struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, rb, "", "--json", "store", "--title", "keep me", "--content", "private")), &bst); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "localhost:0") // another site than 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	evil := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><body><form method="post" action="%s/memories/%s/delete"><input name="csrf" value="guess"></form>
<script>document.forms[0].submit()</script></body>`, db.api, bst.ID)
	}))
	evil.Listener.Close()
	evil.Listener = ln
	evil.Start()
	defer evil.Close()
	te := b.tab("evil", false)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	b.do(te, "the cross-site post", chromedp.Navigate("http://localhost:"+port+"/"),
		chromedp.Poll[chromedp.Void](`location.href.startsWith("`+db.api+`")`))
	b.do(te, "the refusal to load", chromedp.WaitVisible(chromedp.CSS("body")))
	if body := b.text(te, "body"); !strings.Contains(body, "refused") {
		t.Fatalf("the cross-site post was not refused: %q", body)
	}
	if out := mustMesh(t, rb, "", "get", bst.ID); !strings.Contains(out, "keep me") {
		t.Fatalf("the record is gone after a cross-site post: %s", out)
	}
	b.checkConsole()
}

// TestWebUIOff: a daemon started with --no-ui serves no page, and mesh ui
// says why instead of printing a link that leads nowhere.
func TestWebUIOff(t *testing.T) {
	t.Parallel()
	repo := filepath.Join(t.TempDir(), "r")
	d := startDaemonWith(t, repo, "--no-ui")
	r := mesh(t, repo, "", "ui")
	if r.code != 1 || !strings.Contains(r.stderr, "--no-ui") {
		t.Fatalf("mesh ui on a daemon without a UI: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	resp, err := http.Get(d.api + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET / without a UI: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
