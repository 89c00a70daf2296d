package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs a Prometheus endpoint as a scraper would (text exposition
// format) and parses it.
func scrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: content type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the text exposition format: %v", url, err)
	}
	return mfs
}

// series is the value of the series of family name whose labels include
// labels ("k=v"): a counter's or gauge's value, a histogram's count. -1 if
// there is none.
func series(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	total, found := 0.0, false
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	if !found {
		return -1
	}
	return total
}

// TestMetricsScrape: a daemon serves Prometheus metrics at /metrics on its
// API (bearer token; refused without) and on --metrics ADDR; a scrape
// parses as the text format and holds libp2p's own series, Go's and
// MESH's; after stores, a publication that B receives by gossip, a
// federated search, a sync and a watch match, those series moved.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	ra, rb := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	maddr := freePort(t)
	startDaemon(t, ra)
	db := startDaemonWith(t, rb, "--metrics", maddr)
	a := idOf(t, ra)
	c := db.client(30 * time.Second)

	// The token is needed on the API.
	resp, err := http.Get(db.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %s", resp.Status)
	}

	before := scrape(t, c, db.api+"/metrics")
	for _, name := range []string{
		"go_goroutines", "process_resident_memory_bytes",
		"libp2p_swarm_dial_ranking_delay_seconds", "libp2p_identify_addrs_count",
		"mesh_store_records", "mesh_store_disk_bytes", "mesh_following", "mesh_dht_routing_table_peers", "mesh_peers", "mesh_watch_queries",
	} {
		if before[name] == nil {
			t.Errorf("series %s missing from the first scrape", name)
		}
	}
	if v := series(before, "mesh_store_records", "origin=remote"); v != 0 {
		t.Errorf("mesh_store_records{origin=remote} = %v at start, want 0", v)
	}

	// Work: B follows rust and trusts A, watches for cargo, connects; A
	// publishes; B searches, fed and local, and syncs.
	mustMesh(t, ra, "", "follow", "rust")
	mustMesh(t, rb, "", "follow", "rust")
	mustMesh(t, rb, "", "trust", "add", a.NodeID)
	mustMesh(t, rb, "", "watch", "add", "cargo")
	mustMesh(t, rb, "", "connect", a.Addrs[0])
	var st struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", "Cargo builds", "--content", "cargo runs out of memory")), &st); err != nil {
		t.Fatal(err)
	}
	id := st.ID
	mustMesh(t, ra, "", "publish", id, "--visibility", "public", "--topic", "rust")
	eventually(t, "the lesson to arrive at B", func() bool {
		return strings.Contains(mustMesh(t, rb, "", "list", "--remote"), id)
	})
	mustMesh(t, rb, "", "search", "cargo")
	mustMesh(t, rb, "", "search", "cargo", "--sources", "trusted")
	mustMesh(t, rb, "", "sync")

	after := scrape(t, c, db.api+"/metrics")
	moved := []struct {
		name   string
		labels []string
	}{
		{"mesh_store_records", []string{"origin=remote"}},
		{"mesh_store_operation_duration_seconds", []string{"op=search"}},
		{"mesh_search_duration_seconds", []string{"kind=local"}},
		{"mesh_search_duration_seconds", []string{"kind=network"}},
		{"mesh_fedsearch_searches_total", []string{"result=ok"}},
		{"mesh_fedsearch_fanout_peers", nil},
		{"mesh_sync_runs_total", nil},
		{"mesh_pubsub_messages_total", []string{"outcome=accepted"}},
		{"mesh_watch_matches_total", nil},
		{"mesh_watch_queries", nil},
		{"mesh_peers", []string{"connection=direct"}},
		{"mesh_following", []string{"kind=topic"}},
		{"mesh_http_requests_total", []string{"route=POST /api/v1/search", "code=200"}},
		{"mesh_http_requests_total", []string{"route=GET /metrics", "code=200"}},
		{"libp2p_swarm_connections_opened_total", nil},
	}
	for _, m := range moved {
		b, a := max(series(before, m.name, m.labels...), 0), series(after, m.name, m.labels...)
		if a <= b {
			t.Errorf("%s%v did not move: %v then %v", m.name, m.labels, b, a)
		}
		t.Logf("%s%v: %v -> %v", m.name, m.labels, b, a)
	}

	// A's node served B's search: counted on A's side too, which --metrics
	// does not serve; B's --metrics listener serves B's registry without
	// the token.
	plain := scrape(t, &http.Client{Timeout: 30 * time.Second}, fmt.Sprintf("http://%s/metrics", maddr))
	if v := series(plain, "mesh_store_records", "origin=remote"); v != 1 {
		t.Errorf("--metrics: mesh_store_records{origin=remote} = %v, want 1", v)
	}
}
