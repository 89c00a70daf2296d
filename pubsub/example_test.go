package pubsub_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/pubsub"
)

// allowAll is a Checker for a node that holds nothing yet and trusts
// everyone. A real node answers from its store and trust graph.
type allowAll struct{}

func (allowAll) Revoked(context.Context, string) bool              { return false }
func (allowAll) HeldVersion(context.Context, string) (int64, bool) { return 0, false }
func (allowAll) Trusted(string) bool                               { return true }

// Two nodes: the reader follows the "rust" topic, the author announces a
// lesson on it and then takes it back.
func Example() {
	mn := mocknet.New() // in-memory network; a node uses its libp2p host
	defer mn.Close()
	_, authorKey, _ := ed25519.GenerateKey(nil)
	sk, _ := crypto.UnmarshalEd25519PrivateKey(authorKey)
	authorHost, _ := mn.AddPeer(sk, ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
	readerSK, _, _ := crypto.GenerateEd25519Key(nil)
	readerHost, _ := mn.AddPeer(readerSK, ma.StringCast("/ip4/127.0.0.1/tcp/4002"))
	_ = mn.LinkAll()
	_ = mn.ConnectAllButSelf()

	author, err := pubsub.New(pubsub.Config{Host: authorHost, Checker: allowAll{}})
	if err != nil {
		log.Fatal(err)
	}
	defer author.Close()
	reader, err := pubsub.New(pubsub.Config{Host: readerHost, Checker: allowAll{}})
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()
	if err := reader.Follow("rust"); err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Second) // let the author learn the subscription

	lesson := &protocol.Lesson{ID: "borrow-01", Type: protocol.TypeLesson, Title: "Clone is not a fix"}
	signed, err := protocol.Sign(authorKey, lesson, protocol.Publication{Visibility: protocol.VisibilityPublic, Topics: []string{"rust"}}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := author.Announce(ctx, &protocol.Announcement{Type: protocol.MsgPublication, SignedLesson: signed}, []string{"rust"}); err != nil {
		log.Fatal(err)
	}
	d := <-reader.Deliveries()
	fmt.Println("lesson:", d.Announcement.SignedLesson.Lesson.Title, "on", d.Topic)

	rev, _ := protocol.SignRevocation(authorKey, "borrow-01", protocol.ReasonOutdated, time.Now())
	if err := author.Announce(ctx, &protocol.Announcement{Type: protocol.MsgRevocation, Revocation: rev}, []string{"rust"}); err != nil {
		log.Fatal(err)
	}
	d = <-reader.Deliveries()
	fmt.Println("revoked:", d.Announcement.Revocation.LessonID)
	// Output:
	// lesson: Clone is not a fix on /mesh/1/topic/rust
	// revoked: borrow-01
}
