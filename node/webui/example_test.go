package webui_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/webui"
)

// A node's web UI on a loopback test server: a one-time login link (what
// mesh ui prints) opens a session in the browser that follows it; the
// same link a second time is refused. mesh daemon serves the UI on its API
// address by itself; this is how an embedding program serves it.
func Example() {
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{ListenAddrs: []string{}, DisableMDNS: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	ui := webui.New(webui.Config{API: n})
	srv := httptest.NewServer(ui)
	defer srv.Close()

	link, err := ui.NewLogin()
	if err != nil {
		log.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(srv.URL + link) // redirected to the Node page
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("node page:", resp.StatusCode, resp.Request.URL.Path)

	resp, err = http.Get(srv.URL + link)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("the link again:", resp.StatusCode)

	// A form posted from another site is refused, session or not.
	form := strings.NewReader("csrf=guess&title=x&content=y")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/memories", form)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err = browser.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("cross-site post:", resp.StatusCode)
	// Output:
	// node page: 200 /
	// the link again: 403
	// cross-site post: 403
}
