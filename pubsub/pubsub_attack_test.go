package pubsub

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// arena is one attack: an attacker (a plain GossipSub peer without a
// validator) connected to a victim, and an observer behind the victim. Both
// victim and observer follow "rust" and the feed of an honest publisher
// whose announcements the attacker has captured.
type arena struct {
	tn       *testNet
	victim   *testNode
	observer *testNode
	attacker *rawPeer
	pub      peerHost // the honest publisher: its key signs what is replayed
	vc, oc   *collector
}

func newArena(t *testing.T) *arena {
	t.Helper()
	tn := newTestNet(t)
	ar := &arena{tn: tn}
	ar.pub = tn.host()
	ar.victim, ar.observer, ar.attacker = tn.node(), tn.node(), tn.raw()
	ar.vc, ar.oc = collect(t, ar.victim.svc), collect(t, ar.observer.svc)
	tn.connect(ar.attacker.h, ar.victim.h)
	tn.connect(ar.victim.h, ar.observer.h)
	for _, n := range []*testNode{ar.victim, ar.observer} {
		if err := n.svc.Follow("rust"); err != nil {
			t.Fatal(err)
		}
		if err := n.svc.FollowFeed(ar.pub.id); err != nil {
			t.Fatal(err)
		}
	}
	both := []*testNode{ar.victim, ar.observer}
	tn.waitMesh(both, protocol.TopicName("rust"))
	tn.waitMesh(both, protocol.FeedName(ar.pub.id))
	ar.attacker.waitPeer(t, protocol.TopicName("rust"), ar.victim.h.ID())
	ar.attacker.waitPeer(t, protocol.FeedName(ar.pub.id), ar.victim.h.ID())
	return ar
}

// both applies f to the victim's and the observer's checker (the node
// state an attack relies on).
func (ar *arena) both(f func(*fakeChecker)) {
	f(ar.victim.chk)
	f(ar.observer.chk)
}

// attack describes one case: how to build the message, where to send it,
// and the outcome the victim must count.
type attack struct {
	name   string
	topic  func(ar *arena) string // GossipSub topic; nil: rust
	build  func(t *testing.T, ar *arena) []byte
	reject bool // counted in Rejected (else Ignored)
	reason string
}

func TestAttacks(t *testing.T) {
	now := time.Now()
	rust := func(ar *arena) string { return protocol.TopicName("rust") }
	attacks := []attack{
		{
			name: "forged signature", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				sl := signLesson(t, ar.pub.key, "forged", now, protocol.VisibilityPublic, "rust")
				sl.Signature.Sig = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, ed25519.SignatureSize))
				return encode(t, pubAnn(sl))
			},
		},
		{
			name: "tampered content", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				sl := signLesson(t, ar.pub.key, "tampered", now, protocol.VisibilityPublic, "rust")
				sl.Lesson.Content = "run curl | sh to fix the borrow checker"
				return encode(t, pubAnn(sl))
			},
		},
		{
			name: "nodeId does not match publicKey", reject: true, reason: ReasonKeyMismatch,
			build: func(t *testing.T, ar *arena) []byte {
				// The attacker signs with its own key and claims the
				// honest publisher's node ID.
				sl := signLesson(t, ar.attacker.key, "impostor", now, protocol.VisibilityPublic, "rust")
				sl.Signature.NodeID = ar.pub.id
				return encode(t, pubAnn(sl))
			},
		},
		{
			name: "replay of an older version", reason: ReasonSuperseded,
			build: func(t *testing.T, ar *arena) []byte {
				old := signLesson(t, ar.pub.key, "versioned", now.Add(-10*time.Minute), protocol.VisibilityPublic, "rust")
				newer := signLesson(t, ar.pub.key, "versioned", now, protocol.VisibilityPublic, "rust")
				ar.both(func(c *fakeChecker) { c.setHeld(newer.Key(), newer.Publication.PublishedAt) })
				return encode(t, pubAnn(old))
			},
		},
		{
			name: "replay of the version held", reason: ReasonDuplicate,
			build: func(t *testing.T, ar *arena) []byte {
				sl := signLesson(t, ar.pub.key, "held", now, protocol.VisibilityPublic, "rust")
				ar.both(func(c *fakeChecker) { c.setHeld(sl.Key(), sl.Publication.PublishedAt) })
				return encode(t, pubAnn(sl))
			},
		},
		{
			name: "revocation signed by a non-author (own key, author's nodeId)", reject: true, reason: ReasonKeyMismatch,
			build: func(t *testing.T, ar *arena) []byte {
				r, err := protocol.SignRevocation(ar.attacker.key, "victim-lesson", protocol.ReasonIncorrect, now)
				if err != nil {
					t.Fatal(err)
				}
				r.NodeID = ar.pub.id
				return encode(t, revAnn(r))
			},
		},
		{
			name: "revocation signed by a non-author (author's key claimed)", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				r, err := protocol.SignRevocation(ar.attacker.key, "victim-lesson", protocol.ReasonIncorrect, now)
				if err != nil {
					t.Fatal(err)
				}
				r.NodeID = ar.pub.id
				r.Signature.PublicKey = base64.StdEncoding.EncodeToString(ar.pub.key.Public().(ed25519.PublicKey))
				return encode(t, revAnn(r))
			},
		},
		{
			name: "replay of a revoked lesson", reason: ReasonRevoked,
			build: func(t *testing.T, ar *arena) []byte {
				sl := signLesson(t, ar.pub.key, "revoked", now, protocol.VisibilityPublic, "rust")
				ar.both(func(c *fakeChecker) { c.setRevoked(sl.Key()) })
				return encode(t, pubAnn(sl))
			},
		},
		{
			name: "replay of a revocation already applied", reason: ReasonAlreadyRevoked,
			build: func(t *testing.T, ar *arena) []byte {
				r, err := protocol.SignRevocation(ar.pub.key, "gone", "", now)
				if err != nil {
					t.Fatal(err)
				}
				ar.both(func(c *fakeChecker) { c.setRevoked(r.Key()) })
				return encode(t, revAnn(r))
			},
		},
		{
			name: "oversize message", reject: true, reason: ReasonTooLarge,
			build: func(t *testing.T, ar *arena) []byte {
				// Over the announcement cap, under the frame cap: the
				// validator, not the stream reader, refuses it.
				return bytes.Repeat([]byte{' '}, protocol.MaxAnnouncementSize+1)
			},
		},
		{
			name: "oversize lesson inside a well-formed announcement", reject: true, reason: ReasonTooLarge,
			build: func(t *testing.T, ar *arena) []byte {
				sl := signLesson(t, ar.pub.key, "big", now, protocol.VisibilityPublic, "rust")
				b := encode(t, pubAnn(sl))
				pad := protocol.MaxRecordSize
				return bytes.Replace(b, []byte(`"content":"`), append([]byte(`"content":"`), bytes.Repeat([]byte{'a'}, pad)...), 1)
			},
		},
		{
			name: "far-future timestamp", reject: true, reason: ReasonTimestamp,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, pubAnn(signLesson(t, ar.pub.key, "future", now.Add(2*time.Hour), protocol.VisibilityPublic, "rust")))
			},
		},
		{
			name: "stale timestamp", reject: true, reason: ReasonTimestamp,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, pubAnn(signLesson(t, ar.pub.key, "stale", now.Add(-2*time.Hour), protocol.VisibilityPublic, "rust")))
			},
		},
		{
			name: "stale revocation", reject: true, reason: ReasonTimestamp,
			build: func(t *testing.T, ar *arena) []byte {
				r, err := protocol.SignRevocation(ar.pub.key, "old", "", now.Add(-3*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return encode(t, revAnn(r))
			},
		},
		{
			name: "unlisted lesson announced", reject: true, reason: ReasonNotPublic,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, pubAnn(signLesson(t, ar.pub.key, "unlisted", now, protocol.VisibilityUnlisted, "rust")))
			},
		},
		{
			name: "feed spoofing", reject: true, reason: ReasonFeedSpoof,
			topic: func(ar *arena) string { return protocol.FeedName(ar.pub.id) },
			build: func(t *testing.T, ar *arena) []byte {
				// A valid lesson of the attacker's, on the honest
				// publisher's feed.
				return encode(t, pubAnn(signLesson(t, ar.attacker.key, "spoof", now, protocol.VisibilityPublic, "rust")))
			},
		},
		{
			name: "lesson on a topic it was not published on", reject: true, reason: ReasonWrongTopic,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, pubAnn(signLesson(t, ar.pub.key, "offtopic", now, protocol.VisibilityPublic, "go")))
			},
		},
		{
			name: "malformed", reject: true, reason: ReasonMalformed,
			build: func(t *testing.T, ar *arena) []byte {
				return []byte(`{"type":"publication","signedLesson":{"lesson":{}}}`)
			},
		},
		{
			name: "untrusted publisher", reason: ReasonUntrusted,
			build: func(t *testing.T, ar *arena) []byte {
				ar.both(func(c *fakeChecker) { c.distrust(ar.attacker.id) })
				return encode(t, pubAnn(signLesson(t, ar.attacker.key, "junk", now, protocol.VisibilityPublic, "rust")))
			},
		},
	}
	for i, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			t.Parallel()
			ar := newArena(t)
			topic := rust(ar)
			if at.topic != nil {
				topic = at.topic(ar)
			}
			data := at.build(t, ar)
			ar.attacker.publish(t, topic, data)

			counter := func(n *testNode) int {
				st := n.svc.Stats()
				if at.reject {
					return st.Rejected[at.reason]
				}
				return st.Ignored[at.reason]
			}
			waitFor(t, 10*time.Second, "the victim to count "+at.reason, func() bool { return counter(ar.victim) == 1 })

			// A valid message after the attack, on the same topic from the
			// same attacker, goes through: the pipeline is flushed, and an
			// ignored message did not cost the attacker its standing.
			control := signLesson(t, ar.pub.key, fmt.Sprintf("control-%d", i), time.Now(), protocol.VisibilityPublic, "rust")
			ar.attacker.publish(t, topic, encode(t, pubAnn(control)))
			for _, c := range []*collector{ar.vc, ar.oc} {
				waitFor(t, 10*time.Second, "the control message", func() bool { return c.has(lessonKey(control)) })
			}
			for name, c := range map[string]*collector{"victim": ar.vc, "observer": ar.oc} {
				if c.len() != 1 {
					for _, d := range c.got {
						t.Errorf("%s delivered %s", name, deliveryKey(d))
					}
				}
			}
			st := ar.victim.svc.Stats()
			if total(st.Rejected)+total(st.Ignored) != 1 || st.Accepted != 1 {
				t.Errorf("victim stats %+v: want exactly the attack and the control", st)
			}
			// The victim did not forward it: the observer never saw it.
			if ost := ar.observer.svc.Stats(); total(ost.Rejected)+total(ost.Ignored) != 0 {
				t.Errorf("observer stats %+v: the attack was forwarded", ost)
			}
			// Rejection costs the attacker score; ignoring does not.
			waitFor(t, 5*time.Second, "the attacker's score", func() bool {
				s, ok := ar.victim.svc.score(ar.attacker.h.ID())
				if at.reject {
					return ok && s < 0
				}
				return ok && s >= 0
			})
		})
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestInvalidFloodGraylists: an attacker that keeps sending invalid
// messages drops below the graylist threshold, after which the victim
// ignores it altogether, valid messages included.
func TestInvalidFloodGraylists(t *testing.T) {
	ar := newArena(t)
	topic := protocol.TopicName("rust")
	for i := 0; i < 6; i++ {
		sl := signLesson(t, ar.pub.key, fmt.Sprintf("bad-%d", i), time.Now(), protocol.VisibilityPublic, "rust")
		sl.Lesson.Title = "tampered"
		ar.attacker.publish(t, topic, encode(t, pubAnn(sl)))
	}
	// The sixth may never reach the validator: five put the attacker on
	// the graylist.
	waitFor(t, 10*time.Second, "five rejections", func() bool { return ar.victim.svc.Stats().Rejected[ReasonSignature] >= 5 })
	graylist := DefaultParams().Thresholds.GraylistThreshold
	waitFor(t, 5*time.Second, "the attacker to be graylisted", func() bool {
		s, ok := ar.victim.svc.score(ar.attacker.h.ID())
		return ok && s < graylist
	})
	s, _ := ar.victim.svc.score(ar.attacker.h.ID())
	t.Logf("attacker score after %d rejected messages: %.0f (graylist below %.0f)", ar.victim.svc.Stats().Rejected[ReasonSignature], s, graylist)
	good := signLesson(t, ar.pub.key, "after-graylist", time.Now(), protocol.VisibilityPublic, "rust")
	ar.attacker.publish(t, topic, encode(t, pubAnn(good)))
	time.Sleep(500 * time.Millisecond)
	if ar.vc.has(lessonKey(good)) {
		t.Error("a graylisted peer's message was delivered")
	}
	if st := ar.victim.svc.Stats(); st.Accepted != 0 {
		t.Errorf("the graylisted peer's message reached the validator: %+v", st)
	}
}
