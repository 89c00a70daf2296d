package pubsub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

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
			name: "encrypted: tampered ciphertext", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				el := encryptLesson(t, ar.pub.key, "tampered-enc", now, protocol.VisibilityPublic, "rust")
				el.Ciphertext = "A" + el.Ciphertext[1:]
				return encode(t, encAnn(el))
			},
		},
		{
			name: "encrypted: moved under another lesson ID", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				el := encryptLesson(t, ar.pub.key, "moved", now, protocol.VisibilityPublic, "rust")
				el.LessonID = "elsewhere"
				return encode(t, encAnn(el))
			},
		},
		{
			name: "encrypted: unlisted announced", reject: true, reason: ReasonNotPublic,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, encAnn(encryptLesson(t, ar.pub.key, "unlisted-enc", now, protocol.VisibilityUnlisted, "rust")))
			},
		},
		{
			name: "encrypted: off its topics", reject: true, reason: ReasonWrongTopic,
			build: func(t *testing.T, ar *arena) []byte {
				return encode(t, encAnn(encryptLesson(t, ar.pub.key, "offtopic-enc", now, protocol.VisibilityPublic, "go")))
			},
		},
		{
			name: "encrypted: replay of the version held", reason: ReasonDuplicate,
			build: func(t *testing.T, ar *arena) []byte {
				el := encryptLesson(t, ar.pub.key, "held-enc", now, protocol.VisibilityPublic, "rust")
				ar.both(func(c *fakeChecker) { c.setHeld(el.Key(), el.Publication.PublishedAt) })
				return encode(t, encAnn(el))
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
			name: "a carried reading whose sensor proof is forged", reject: true, reason: ReasonSignature,
			build: func(t *testing.T, ar *arena) []byte {
				// A gateway's record, validly signed by the gateway, whose
				// compact reading claims the honest publisher's key as
				// the sensor's but was signed by the attacker.
				sensor := ar.pub.key
				ann, err := protocol.EncodeAnnouncement(sensor, protocol.AnnouncementParams{Seq: 1, Time: now,
					Streams: []protocol.CompactStream{{Name: "barn/climate", Fields: []string{"temp"}}}})
				if err != nil {
					t.Fatal(err)
				}
				rd, err := protocol.EncodeReading(ar.attacker.key, protocol.ReadingParams{Seq: 2, Time: now, Fields: []protocol.CompactField{{Index: 0, Value: 40}}})
				if err != nil {
					t.Fatal(err)
				}
				short := protocol.ShortIDOf(sensor.Public().(ed25519.PublicKey))
				copy(rd[1:5], short[:])
				l := &protocol.Lesson{ID: protocol.CarriedID(short, 2), Type: "reading", Title: "barn/climate", Content: "temp=40",
					Extra: map[string]json.RawMessage{
						protocol.CarriedCompactField:      json.RawMessage(`"` + base64.StdEncoding.EncodeToString(rd) + `"`),
						protocol.CarriedAnnouncementField: json.RawMessage(`"` + base64.StdEncoding.EncodeToString(ann) + `"`),
					}}
				sl, err := protocol.Sign(ar.attacker.key, l, protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: now.UnixMilli(), Topics: []string{"rust"}}, now)
				if err != nil {
					t.Fatal(err)
				}
				return encode(t, pubAnn(sl))
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

// TestSybilFlood: Sybil peers, each at ten times an honest node's rate,
// send valid but junk lessons (good signatures from keys the honest nodes
// do not trust) and black-hole every honest message they receive, while
// sitting in the honest nodes' meshes. Every honest lesson must still reach
// every honest node, and no junk may be delivered.
func TestSybilFlood(t *testing.T) {
	const (
		honestN      = 6
		sybilN       = 6
		perHonest    = 15
		honestPeriod = 100 * time.Millisecond
		perSybil     = perHonest * 10
		sybilPeriod  = honestPeriod / 10
	)
	tn := newTestNet(t)
	honest := make([]*testNode, honestN)
	cols := make([]*collector, honestN)
	for i := range honest {
		honest[i] = tn.node()
		cols[i] = collect(t, honest[i].svc)
	}
	for i := range honest { // a ring with one chord
		tn.connect(honest[i].h, honest[(i+1)%honestN].h)
	}
	tn.connect(honest[0].h, honest[3].h)

	sybilIDs := map[peer.ID]bool{}
	var sybils []*rawPeer
	for i := 0; i < sybilN; i++ {
		// A Sybil relays only Sybil traffic.
		s := tn.raw(gossipsub.WithDefaultValidator(func(_ context.Context, _ peer.ID, m *gossipsub.Message) gossipsub.ValidationResult {
			if sybilIDs[m.ReceivedFrom] || m.Local {
				return gossipsub.ValidationAccept
			}
			return gossipsub.ValidationIgnore
		}))
		sybilIDs[s.h.ID()] = true
		sybils = append(sybils, s)
		tn.connect(s.h, honest[i%honestN].h)
		tn.connect(s.h, honest[(i+2)%honestN].h)
		for _, n := range honest {
			n.chk.distrust(s.id)
		}
	}
	name := protocol.TopicName("rust")
	for _, n := range honest {
		if err := n.svc.Follow("rust"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sybils {
		if _, err := s.topic(t, name).Subscribe(); err != nil { // to be grafted
			t.Fatal(err)
		}
	}
	tn.waitMesh(honest, name)
	for i, s := range sybils {
		s.waitPeer(t, name, honest[i%honestN].h.ID())
	}

	// Sign everything first, so the send rates are what they claim.
	lessons := make([][]*protocol.SignedLesson, honestN)
	for i, n := range honest {
		for j := 0; j < perHonest; j++ {
			lessons[i] = append(lessons[i], signLesson(t, n.key, fmt.Sprintf("honest-%d-%d", i, j), time.Now(), protocol.VisibilityPublic, "rust"))
		}
	}
	junk := make([][][]byte, sybilN)
	for i, s := range sybils {
		for j := 0; j < perSybil; j++ {
			junk[i] = append(junk[i], encode(t, pubAnn(signLesson(t, s.key, fmt.Sprintf("junk-%d-%d", i, j), time.Now(), protocol.VisibilityPublic, "rust"))))
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range sybils {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tp := s.topic(t, name)
			for _, data := range junk[i] {
				if err := tp.Publish(context.Background(), data); err != nil {
					t.Errorf("sybil publish: %v", err)
					return
				}
				time.Sleep(sybilPeriod)
			}
		}()
	}
	for i, n := range honest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, sl := range lessons[i] {
				if err := n.svc.Announce(context.Background(), pubAnn(sl), []string{"rust"}); err != nil {
					t.Errorf("honest announce: %v", err)
					return
				}
				time.Sleep(honestPeriod)
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)

	want := (honestN - 1) * perHonest
	missing := func(i int) (out []string) {
		for j := range honest {
			if j == i {
				continue
			}
			for k, sl := range lessons[j] {
				if !cols[i].has(lessonKey(sl)) {
					out = append(out, fmt.Sprintf("%d/%d", j, k))
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range honest {
		for len(missing(i)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, n := range honest {
		if m := missing(i); len(m) > 0 {
			t.Errorf("honest node %d is missing %d honest lessons (publisher/seq): %v; stats %+v, mesh %v",
				i, len(m), m, n.svc.Stats(), n.svc.tracer.meshPeers(name))
		}
	}
	if t.Failed() {
		return
	}
	done := time.Since(start)
	var ignored, throttled int
	for i, n := range honest {
		st := n.svc.Stats()
		ignored += st.Ignored[ReasonUntrusted]
		throttled += st.Ignored[ReasonThrottled]
		if cols[i].len() != want {
			t.Errorf("honest node %d delivered %d announcements, want exactly the %d honest ones", i, cols[i].len(), want)
		}
		if len(st.Rejected) != 0 {
			t.Errorf("honest node %d rejected %v", i, st.Rejected)
		}
	}
	if ignored == 0 {
		t.Error("no junk was seen (and ignored as untrusted): the flood did not happen")
	}
	if throttled != 0 {
		t.Errorf("%d messages dropped unvalidated (throttled)", throttled)
	}
	t.Logf("%d honest lessons (%d deliveries, 100%%) and %d junk messages sent in %s; all delivered %s after the start; %d junk copies ignored as untrusted, none forwarded",
		honestN*perHonest, honestN*want, sybilN*perSybil, sent.Round(time.Millisecond), done.Round(time.Millisecond), ignored)
}
