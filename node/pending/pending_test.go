package pending

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBookBounds(t *testing.T) {
	var b Book
	t0 := time.Unix(1000, 0)
	for i := range maxPublishers + 5 {
		b.Add(fmt.Sprintf("pub%03d", i), "k", []string{"t"}, "", t0.Add(time.Duration(i)*time.Second))
	}
	l, sum := b.List()
	if len(l) != maxPublishers || sum.Publishers != maxPublishers {
		t.Fatalf("%d publishers kept, want %d", len(l), maxPublishers)
	}
	if l[0].NodeID != fmt.Sprintf("pub%03d", maxPublishers+4) || l[len(l)-1].NodeID != "pub005" {
		t.Fatalf("order or eviction: first %s last %s", l[0].NodeID, l[len(l)-1].NodeID)
	}
	// One publisher: lessons counted once each and up to maxKeys; peers up
	// to maxVia; topics sorted in the listing.
	var c Book
	for i := range maxKeys + 10 {
		c.Add("p", fmt.Sprintf("k%d", i%(maxKeys+10)), []string{"z", "a"}, peer.ID(fmt.Sprintf("via%d", i%(maxVia+3))), t0)
		c.Add("p", fmt.Sprintf("k%d", i), nil, "", t0)
	}
	l, sum = c.List()
	if len(l) != 1 || l[0].Lessons != maxKeys || sum.Lessons != maxKeys || fmt.Sprint(l[0].Topics) != "[a z]" {
		t.Fatalf("%+v %+v", l, sum)
	}
	via, ok := c.Take("p")
	if !ok || len(via) != maxVia {
		t.Fatalf("take: %d peers, %v", len(via), ok)
	}
	if _, ok := c.Take("p"); ok || len(c.Publishers()) != 0 {
		t.Fatal("taken publisher still listed")
	}
}
