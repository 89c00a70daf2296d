package pubsub

import (
	"context"
	"testing"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/meshprotocol/mesh/protocol"
)

// FuzzCheck feeds arbitrary topics and bytes to the validator: it must not
// panic, and whatever it accepts must be a verified, public announcement
// that belongs on its topic.
func FuzzCheck(f *testing.F) {
	now := time.UnixMilli(1767225600000)
	key := testKey(1)
	sl := signLesson(f, key, "seed", now, protocol.VisibilityPublic, "rust", "go")
	rev, err := protocol.SignRevocation(key, "seed", protocol.ReasonOutdated, now)
	if err != nil {
		f.Fatal(err)
	}
	id := nodeIDOf(f, key)
	el := encryptLesson(f, key, "sealed", now, protocol.VisibilityPublic, "rust")
	for _, a := range []*protocol.Announcement{pubAnn(sl), revAnn(rev), encAnn(el)} {
		b := encode(f, a)
		f.Add(protocol.TopicName("rust"), b)
		f.Add(protocol.FeedName(id), b)
		f.Add(protocol.TopicName("python"), b)
	}
	f.Add("/mesh/1/feed/", []byte(`{"type":"revocation","revocation":{}}`))
	f.Add("other", []byte(`null`))

	chk := newFakeChecker()
	chk.setHeld("held@"+id, 5)
	s := &Service{params: DefaultParams(), checker: chk, now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, topic string, data []byte) {
		for _, local := range []bool{false, true} {
			a, v := s.check(context.Background(), topic, data, local)
			if v.result != gossipsub.ValidationAccept {
				if (a != nil && v.reason != ReasonUntrusted) || v.reason == "" {
					t.Fatalf("not accepted (%v) but announcement %v, reason %q", v.result, a, v.reason)
				}
				continue
			}
			kind, name := parseTopic(topic)
			switch {
			case a.SignedLesson != nil:
				if err := protocol.Verify(a.SignedLesson, protocol.VerifyOptions{Now: now}); err != nil {
					t.Fatalf("accepted a lesson that does not verify: %v", err)
				}
				if a.SignedLesson.Publication.Visibility != protocol.VisibilityPublic {
					t.Fatal("accepted a lesson that is not public")
				}
				if kind == kindFeed && a.SignedLesson.Signature.NodeID != name {
					t.Fatal("accepted a spoofed feed message")
				}
				if kind == kindTopic && !hasTopic(a.SignedLesson.Publication.Topics, name) {
					t.Fatal("accepted a lesson off its topics")
				}
			case a.EncryptedLesson != nil:
				if err := protocol.VerifyEncrypted(a.EncryptedLesson, protocol.VerifyOptions{Now: now}); err != nil {
					t.Fatalf("accepted an encrypted lesson that does not verify: %v", err)
				}
				if a.EncryptedLesson.Publication.Visibility != protocol.VisibilityPublic {
					t.Fatal("accepted an encrypted lesson that is not public")
				}
				if kind == kindFeed && a.EncryptedLesson.Signature.NodeID != name {
					t.Fatal("accepted a spoofed feed message")
				}
				if kind == kindTopic && !hasTopic(a.EncryptedLesson.Publication.Topics, name) {
					t.Fatal("accepted an encrypted lesson off its topics")
				}
			case a.Revocation != nil:
				if err := protocol.VerifyRevocation(a.Revocation, protocol.VerifyOptions{Now: now}); err != nil {
					t.Fatalf("accepted a revocation that does not verify: %v", err)
				}
				if kind == kindFeed && a.Revocation.NodeID != name {
					t.Fatal("accepted a spoofed feed revocation")
				}
			default:
				t.Fatal("accepted an empty announcement")
			}
		}
	})
}
