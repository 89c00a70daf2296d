package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRun runs the example and checks what each reader could read: the
// owner everything, the anomaly included; the tenant the basement's
// humidity until it was revoked, then nothing, the new reading least of
// all.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	before, after, ok := strings.Cut(out.String(), "after")
	if !ok {
		t.Fatalf("no before and after:\n%s", out.String())
	}
	line := func(part, who, q string) string {
		for _, l := range strings.Split(part, "\n") {
			if strings.Contains(l, who+" ") && strings.Contains(l, q) {
				return l
			}
		}
		t.Fatalf("no line for %s %s in:\n%s", who, q, part)
		return ""
	}
	for _, c := range []struct {
		part, who, q, want string
	}{
		{before, "owner", "humidity > 60%", "64.2 %"},
		{before, "owner", "temperature last 24h", "4.25 °C, 3.5 °C"},
		{before, "owner", "power anomaly", "5200 W (anomaly)"},
		{before, "tenant", "humidity > 60%", "64.2 %"},
		{before, "tenant", "temperature last 24h", "ACCESS_DENIED"},
		{after, "owner", "humidity > 60%", "71.5 %, 64.2 %"},
		{after, "tenant", "humidity > 60%", "ACCESS_DENIED from 1 of 1 sources"},
	} {
		if l := line(c.part, c.who, c.q); !strings.Contains(l, c.want) {
			t.Errorf("%s %q: %q, want %q", c.who, c.q, l, c.want)
		}
	}
	for _, l := range strings.Split(after, "\n") {
		if strings.Contains(l, "tenant") && strings.Contains(l, " %") {
			t.Errorf("the revoked tenant read a reading: %s", l)
		}
	}
}
