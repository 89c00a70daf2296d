package pubsub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/meshprotocol/mesh/protocol"
)

// BenchmarkCheck measures the validator on one message: a typical lesson
// and one near the size cap.
func BenchmarkCheck(b *testing.B) {
	now := time.Now()
	key := testKey(1)
	for _, size := range []int{500, 100 << 10} {
		l := &protocol.Lesson{ID: "bench", Type: protocol.TypeLesson, Title: "bench", Content: strings.Repeat("borrow checker ", size/15), Tags: []string{"rust"}}
		sl, err := protocol.Sign(key, l, protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), Topics: []string{"rust"}}, now)
		if err != nil {
			b.Fatal(err)
		}
		data := encode(b, pubAnn(sl))
		s := &Service{params: DefaultParams(), checker: newFakeChecker(), now: func() time.Time { return now }}
		topic := protocol.TopicName("rust")
		b.Run(fmt.Sprintf("%dB", len(data)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, v := s.check(context.Background(), topic, data, false); v.result != gossipsub.ValidationAccept {
					b.Fatal(v.reason)
				}
			}
		})
	}
}
