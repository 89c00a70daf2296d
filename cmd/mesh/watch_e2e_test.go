package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// watchLine is one line of mesh --json watch: a match or the summary.
type watchLine struct {
	Summary bool   `json:"summary"`
	Matches int    `json:"matches"`
	Reason  string `json:"reason"`
	Seq     uint64 `json:"seq"`
	Watch   string `json:"watch"`
	Key     string `json:"key"`
	Origin  string `json:"origin"`
	Lesson  *struct {
		Title string `json:"title"`
	} `json:"lesson"`
}

// TestWatchEndToEnd drives standing queries through real daemons: B adds
// a watch on a topic it does not follow (and is told it now follows it),
// streams with mesh --json watch, and gets A's matching lesson as soon as
// it arrives by gossip, and not A's other lesson on the same topic; the
// watch persists across a restart of B; a private record stored on B
// matches a watch limited to self; removing the watch stops the matches.
func TestWatchEndToEnd(t *testing.T) {
	t.Parallel()
	ra, rb := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	startDaemon(t, ra)
	db := startDaemon(t, rb)
	a := idOf(t, ra)
	mustMesh(t, ra, "", "follow", "rust")
	mustMesh(t, rb, "", "trust", "add", a.NodeID)

	var added struct {
		Watch struct {
			ID    string `json:"id"`
			Query string `json:"query"`
			Topic string `json:"topic"`
		} `json:"watch"`
		Followed string `json:"followed"`
	}
	out := mustMesh(t, rb, "", "--json", "watch", "add", "cargo", "linker", "--topic", "rust")
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.Followed != "rust" || added.Watch.Query != "cargo linker" || added.Watch.Topic != "rust" {
		t.Fatalf("watch add: %s (%v)", out, err)
	}
	if out := mustMesh(t, rb, "", "--json", "following"); !strings.Contains(out, `"rust"`) {
		t.Fatalf("the watch did not make B follow rust: %s", out)
	}
	if out := mustMesh(t, rb, "", "watch", "add", "tokio", "--topic", "rust"); strings.Contains(out, "now following") {
		t.Fatalf("a second watch on a followed topic says it follows it anew: %s", out)
	}
	mustMesh(t, rb, "", "connect", a.Addrs[0])

	// The stream: started before the lessons exist, from seq 0, so that
	// nothing found before it connects is missed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshBin, "--repo", rb, "--json", "watch", "--after", "0", "--count", "1", "--for", "90s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan watchLine, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l watchLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("mesh --json watch: a line is not JSON: %q", sc.Text())
				return
			}
			lines <- l
		}
	}()
	publish := func(title, content string) string {
		var st struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(mustMesh(t, ra, "", "--json", "store", "--title", title, "--content", content)), &st); err != nil {
			t.Fatal(err)
		}
		mustMesh(t, ra, "", "publish", st.ID, "--visibility", "public", "--topic", "rust")
		return st.ID + "@" + a.NodeID
	}
	publish("Borrow checker tips", "Clone less, borrow more.")
	key := publish("Cargo builds exhaust memory", "The linker of parallel cargo builds runs a small VPS out of memory.")
	arrived := time.Now()
	eventually(t, "the lesson to arrive at B", func() bool {
		return strings.Contains(mustMesh(t, rb, "", "list", "--from", a.NodeID), key)
	})

	// The match comes on the stream: bounded wait, no wall-clock claim.
	var got []watchLine
	for l := range lines {
		got = append(got, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mesh watch: %v (lines %+v)", err, got)
	}
	t.Logf("match streamed %v after the publication", time.Since(arrived).Round(time.Millisecond))
	if len(got) != 2 || got[0].Key != key || got[0].Watch != added.Watch.ID || got[0].Origin != "remote" ||
		got[0].Lesson == nil || got[0].Lesson.Title != "Cargo builds exhaust memory" {
		t.Fatalf("stream: %+v", got)
	}
	if !got[1].Summary || got[1].Matches != 1 || got[1].Reason != "count" {
		t.Fatalf("summary: %+v", got[1])
	}

	// Persisted: B restarts and still has both watches; the backlog
	// replays from seq 0 only what was found since the restart (nothing).
	db.stop(t)
	startDaemon(t, rb)
	var ws []struct {
		ID      string `json:"id"`
		Query   string `json:"query"`
		Matches int    `json:"matches"`
	}
	if err := json.Unmarshal([]byte(mustMesh(t, rb, "", "--json", "watch", "list")), &ws); err != nil || len(ws) != 2 || ws[0].ID != added.Watch.ID {
		t.Fatalf("watch list after restart: %+v %v", ws, err)
	}

	// A watch of B's own records: a private record matches at once.
	mustMesh(t, rb, "", "watch", "add", "humidity > 60", "--sources", "self")
	mustMesh(t, rb, "", "store", "--type", "reading", "--content", "basement", "--field", "humidity=64")
	mustMesh(t, rb, "", "store", "--type", "reading", "--content", "attic", "--field", "humidity=40")
	out = mustMesh(t, rb, "", "--json", "watch", "--after", "0", "--for", "2s")
	var vals []watchLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var w watchLine
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		vals = append(vals, w)
	}
	if len(vals) != 2 || vals[0].Origin != "local" || !vals[1].Summary || vals[1].Reason != "for" {
		t.Fatalf("self watch: %s", out)
	}

	// Removed: gone from the list.
	mustMesh(t, rb, "", "watch", "remove", added.Watch.ID)
	out = mustMesh(t, rb, "", "--json", "watch", "list")
	if strings.Contains(out, added.Watch.ID) || !slices.ContainsFunc(strings.Split(out, "\n"), func(s string) bool { return strings.Contains(s, "humidity") }) {
		t.Fatalf("watch list after remove: %s", out)
	}
	if r := mesh(t, rb, "", "watch", "remove", added.Watch.ID); r.code != 1 {
		t.Fatalf("second remove: %+v", r)
	}
}
