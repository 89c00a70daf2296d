package sensors_test

import (
	"fmt"
	"time"

	"github.com/meshprotocol/mesh/node/sensors"
)

// ParseQuery reads a question as a user types it; the result is what
// goes to the sources over /mesh/sensors/1.0.0.
func ExampleParseQuery() {
	now := time.Date(2026, 12, 4, 15, 30, 0, 0, time.UTC)
	for _, text := range []string{"humidity > 60%", "temperature last 24h", "power anomaly", "temp <= 4 since 2026-12-01"} {
		q, err := sensors.ParseQuery(text, now, time.UTC)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-28q words %v", text, q.Words)
		for _, c := range q.Comparisons {
			fmt.Printf(", %s %s %g%s", c.Field, c.Op, c.Value, c.Unit)
		}
		if q.Since != 0 {
			fmt.Printf(", since %s", time.UnixMilli(q.Since).UTC().Format(time.RFC3339))
		}
		fmt.Println()
	}
	_, err := sensors.ParseQuery("humidity >", now, time.UTC)
	fmt.Println(err)
	// Output:
	// "humidity > 60%"             words [], humidity > 60%
	// "temperature last 24h"       words [temperature], since 2026-12-03T15:30:00Z
	// "power anomaly"              words [power anomaly]
	// "temp <= 4 since 2026-12-01" words [], temp <= 4, since 2026-12-01T00:00:00Z
	// invalid: ">": a word of the question names a stream (humidity, basement), "anomaly", or a time phrase; comparisons are field op number (humidity > 60%)
}
