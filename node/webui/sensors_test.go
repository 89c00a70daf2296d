package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/nodetest"
)

// TestSensorsPage: a node's streams, each charted from the readings of the
// last day (read back through the node's own question path, decrypted),
// and its grants, granted and revoked from the page.
func TestSensorsPage(t *testing.T) {
	n, ui, base, c := uiServer(t)
	ctx := context.Background()
	if _, err := n.SensorAdd(ctx, api.StreamOptions{Name: "basement/humidity", Unit: "%"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, v := range []float64{58.5, 61, 63.25, 62, 64.2} {
		at := now.Add(-time.Duration(5-i) * time.Hour).UnixMilli()
		if _, err := n.SensorPush(ctx, api.PushRequest{Stream: "basement/humidity", Value: v, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	// Pushed two days ago: outside the chart's window.
	if _, err := n.SensorPush(ctx, api.PushRequest{Stream: "basement/humidity", Value: 99, At: now.Add(-50 * time.Minute).Add(-47 * time.Hour).UnixMilli()}); err == nil {
		t.Log("an old reading was taken; it must stay out of the chart")
	}
	login(t, ui, base, c)
	code, page := get(t, c, base+"/sensors")
	if code != http.StatusOK {
		t.Fatalf("GET /sensors: %d\n%s", code, page)
	}
	for _, want := range []string{`id="stream-basement/humidity"`, "<polyline", "5 readings in the last 24 h", "last 64.2 %", "no grants"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if got := strings.Count(page[strings.Index(page, `points="`):], ","); got < 5 {
		t.Errorf("the line has %d points, want 5", got)
	}

	reader := nodetest.New(t, node.Config{}).ID().String()
	csrf := csrfOf(t, page)
	form := url.Values{"csrf": {csrf}, "reader": {reader}, "streams": {"basement/*"}, "until": {"2099-06-01"}}
	if code, loc := post(t, c, base+"/sensors/grant", form, map[string]string{"Origin": base}); code != http.StatusSeeOther || !strings.Contains(loc, "granted") {
		t.Fatalf("grant: %d %s", code, loc)
	}
	_, page = get(t, c, base+"/sensors")
	if !strings.Contains(page, reader) || !strings.Contains(page, "2099-06-01") {
		t.Fatalf("the grant is not listed:\n%s", page)
	}
	grants, err := n.AccessList(ctx)
	if err != nil || len(grants) != 1 || grants[0].Reader != reader {
		t.Fatalf("grants %+v %v", grants, err)
	}
	// A bad date is refused and changes nothing.
	form.Set("until", "soon")
	if code, loc := post(t, c, base+"/sensors/grant", form, map[string]string{"Origin": base}); code != http.StatusSeeOther || !strings.Contains(loc, "err=") {
		t.Fatalf("a bad date: %d %s", code, loc)
	}
	// A cross-site revoke is refused.
	rv := url.Values{"csrf": {csrf}, "reader": {reader}}
	if code, _ := post(t, c, base+"/sensors/revoke", rv, map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Fatalf("a cross-site revoke: %d, want 403", code)
	}
	if code, loc := post(t, c, base+"/sensors/revoke", rv, map[string]string{"Origin": base}); code != http.StatusSeeOther || !strings.Contains(loc, "revoked") {
		t.Fatalf("revoke: %d %s", code, loc)
	}
	st, err := n.SensorList(ctx)
	if err != nil || len(st) != 1 || len(st[0].Readers) != 0 {
		t.Fatalf("after the revoke, readers %+v %v", st, err)
	}
}

// TestReceivedLessonByBareIDHasNoOwnerForms: a lesson received from
// another node, opened by its bare ID, is shown without the publish,
// revoke and delete forms of one's own records.
func TestReceivedLessonByBareIDHasNoOwnerForms(t *testing.T) {
	n, ui, base, c := uiServer(t)
	other := nodetest.New(t, node.Config{})
	nodetest.TrustAll(t, n, other)
	if err := n.Follow(context.Background(), "ui"); err != nil {
		t.Fatal(err)
	}
	nodetest.Connect(t, n, other)
	sl := nodetest.Publish(t, other, "received lesson", "from the other node", "public", "ui")
	if _, err := n.SyncWith(context.Background(), other.ID(), nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, "the lesson at n", func() bool { return nodetest.HasRemote(n, sl.Key()) })
	login(t, ui, base, c)
	code, page := get(t, c, base+"/memories/"+sl.Lesson.ID)
	if code != http.StatusOK || !strings.Contains(page, "received lesson") {
		t.Fatalf("GET /memories/%s: %d\n%s", sl.Lesson.ID, code, page)
	}
	for _, form := range []string{"publish-form", "revoke-form", "delete-form"} {
		if strings.Contains(page, `id="`+form+`"`) {
			t.Errorf("a received lesson shows the owner's %s", form)
		}
	}
	// One's own record by bare ID keeps its forms.
	own := nodetest.Publish(t, n, "own lesson", "mine", "public", "ui")
	if _, page := get(t, c, base+"/memories/"+own.Lesson.ID); !strings.Contains(page, `id="revoke-form"`) && !strings.Contains(page, `id="publish-form"`) {
		t.Errorf("one's own lesson lost its forms:\n%s", page)
	}
}
