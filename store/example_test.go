package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mesh-store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	id, created, err := s.Put(ctx, &protocol.Lesson{
		Type:    protocol.TypeLesson,
		Title:   "Retry with exponential backoff",
		Content: "When the upstream API rate-limits, back off exponentially and add jitter.",
		Tags:    []string{"http"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, len(id) > 0)

	res, err := s.Search(ctx, store.Query{Text: `"exponential backoff" jitter`})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range res.Hits {
		fmt.Println(h.Record.Title, h.Score > 0 && h.Score <= 1)
	}
	// Output:
	// true true
	// Retry with exponential backoff true
}

// Sensor readings carry their measurements as extra fields; comparisons in
// the query text filter on them.
func ExampleStore_Search_comparison() {
	ctx := context.Background()
	s, err := store.Open(store.Options{}) // in memory
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	for room, humidity := range map[string]string{"cellar": "72", "attic": "35"} {
		_, _, err := s.Put(ctx, &protocol.Lesson{
			ID:      "reading-" + room,
			Type:    "reading",
			Content: room + " humidity",
			Extra:   map[string]json.RawMessage{"humidity": json.RawMessage(humidity)},
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	res, err := s.Search(ctx, store.Query{Text: "humidity > 60%", Type: "reading"})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range res.Hits {
		fmt.Println(h.ID)
	}
	// Output:
	// reading-cellar
}

func ExampleParseQuery() {
	q, err := store.ParseQuery(`"connection reset" retry temp<=20.5`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("terms %q phrases %q comparisons %v\n", q.Terms, q.Phrases, q.Comparisons)
	// Output:
	// terms ["retry"] phrases ["connection reset"] comparisons [temp <= 20.5]
}

func ExampleStore_AgentStatus() {
	ctx := context.Background()
	s, err := store.Open(store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	_, _, err = s.Put(ctx, &protocol.Lesson{
		Type:      protocol.TypeCheckpoint,
		Agent:     "builder",
		WorkingOn: "the release",
		State:     json.RawMessage(`{"blockers":["waiting for CI"]}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	st, err := s.AgentStatus(ctx, "builder")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Status, st.WorkingOn, st.Blockers)
	// Output:
	// blocked the release [waiting for CI]
}
