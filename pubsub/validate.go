package pubsub

import (
	"context"
	"errors"
	"strings"
	"time"

	gossipsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/protocol"
)

// Reasons a message is rejected (the sender is penalised: no honest node
// forwards such a message, because every MESH node runs this validator).
const (
	ReasonTooLarge    = "too_large"    // over protocol.MaxAnnouncementSize
	ReasonMalformed   = "malformed"    // does not decode, or the record breaks protocol rules
	ReasonSignature   = "signature"    // the Ed25519 signature does not verify
	ReasonKeyMismatch = "key_mismatch" // nodeId is not the peer ID of publicKey
	ReasonTimestamp   = "timestamp"    // signed outside ±Params.Window
	ReasonNotPublic   = "not_public"   // an unlisted (or private) lesson was announced
	ReasonFeedSpoof   = "feed_spoof"   // on a feed whose owner is not the publisher
	ReasonWrongTopic  = "wrong_topic"  // not a MESH topic, or a lesson not published on it
)

// Reasons a message is ignored (dropped and not forwarded, but the sender is
// not penalised: an honest forwarder may not know what this node knows).
const (
	ReasonRevoked        = "revoked"         // a publication whose key carries a tombstone
	ReasonAlreadyRevoked = "already_revoked" // a revocation of a key already revoked
	ReasonDuplicate      = "duplicate"       // this version is already held
	ReasonSuperseded     = "superseded"      // a newer version is already held
	ReasonUntrusted      = "untrusted"       // Checker.Trusted refused the publisher
	ReasonTimeout        = "timeout"         // validation ran out of time
	ReasonInternal       = "internal"        // the validator failed (a bug); see the log
)

var (
	topicPrefix = protocol.TopicName("")
	feedPrefix  = protocol.FeedName("")
)

type topicKind int

const (
	kindNone topicKind = iota
	kindTopic
	kindFeed
)

// parseTopic splits a GossipSub topic name into its kind and the MESH topic
// or node ID it names.
func parseTopic(name string) (topicKind, string) {
	switch {
	case strings.HasPrefix(name, topicPrefix) && len(name) > len(topicPrefix):
		return kindTopic, name[len(topicPrefix):]
	case strings.HasPrefix(name, feedPrefix) && len(name) > len(feedPrefix):
		return kindFeed, name[len(feedPrefix):]
	}
	return kindNone, ""
}

// verdict is the outcome of validating one message.
type verdict struct {
	result gossipsub.ValidationResult
	reason string // "" when accepted
}

var accept = verdict{result: gossipsub.ValidationAccept}

func reject(reason string) verdict { return verdict{gossipsub.ValidationReject, reason} }
func ignore(reason string) verdict { return verdict{gossipsub.ValidationIgnore, reason} }

// classify maps an error from protocol.Verify or VerifyRevocation to a
// rejection reason.
func classify(err error) verdict {
	switch {
	case errors.Is(err, protocol.ErrKeyMismatch):
		return reject(ReasonKeyMismatch)
	case errors.Is(err, protocol.ErrInvalidSignature):
		return reject(ReasonSignature)
	case errors.Is(err, protocol.ErrTimestamp):
		return reject(ReasonTimestamp)
	case errors.Is(err, protocol.ErrTooLarge):
		return reject(ReasonTooLarge)
	}
	return reject(ReasonMalformed)
}

// validator is the GossipSub validator installed on every topic.
func (s *Service) validator(ctx context.Context, from peer.ID, msg *gossipsub.Message) (res gossipsub.ValidationResult) {
	local := from == s.self
	start := time.Now()
	defer func() {
		// No input may crash the node: a panic here is a bug of ours, so
		// the message is ignored rather than held against the sender.
		if r := recover(); r != nil {
			s.log.Error("pubsub validator panicked", "topic", msg.GetTopic(), "peer", from, "err", r)
			res = gossipsub.ValidationIgnore
			if !local {
				s.count(ignore(ReasonInternal), time.Since(start))
			}
		}
	}()
	a, v := s.check(ctx, msg.GetTopic(), msg.GetData(), local)
	if v.result == gossipsub.ValidationAccept {
		msg.ValidatorData = a
	}
	if v.reason == ReasonUntrusted && a != nil && s.refused != nil {
		switch {
		case a.SignedLesson != nil:
			sl := a.SignedLesson
			s.refused(Refusal{Key: sl.Key(), Publisher: sl.Signature.NodeID, Topics: sl.Publication.Topics, ReceivedFrom: msg.ReceivedFrom})
		case a.EncryptedLesson != nil:
			el := a.EncryptedLesson
			s.refused(Refusal{Key: el.Key(), Publisher: el.Signature.NodeID, Topics: el.Publication.Topics, ReceivedFrom: msg.ReceivedFrom})
		}
	}
	if !local {
		s.count(v, time.Since(start))
		if v.result == gossipsub.ValidationReject {
			s.log.Debug("pubsub message rejected", "topic", msg.GetTopic(), "peer", from, "reason", v.reason)
		}
	}
	return v.result
}

// check validates one message in the order the protocol fixes: size, decode,
// signature, key agreement, time window, (what the message claims about
// itself: visibility, feed and topic), tombstone, supersession, trust. Local
// publications stop before the Checker: the node holds what it announces.
func (s *Service) check(ctx context.Context, topic string, data []byte, local bool) (*protocol.Announcement, verdict) {
	if len(data) > protocol.MaxAnnouncementSize {
		return nil, reject(ReasonTooLarge)
	}
	kind, name := parseTopic(topic)
	if kind == kindNone {
		return nil, reject(ReasonWrongTopic)
	}
	a, err := protocol.DecodeAnnouncement(data)
	if err != nil {
		if errors.Is(err, protocol.ErrTooLarge) {
			return nil, reject(ReasonTooLarge)
		}
		return nil, reject(ReasonMalformed)
	}
	opts := protocol.VerifyOptions{Now: s.now(), Window: s.params.Window}
	var key, publisher string
	var publishedAt int64
	switch a.Type {
	case protocol.MsgPublication:
		var pub *protocol.Publication
		if sl := a.SignedLesson; sl != nil {
			if err := protocol.Verify(sl, opts); err != nil {
				return nil, classify(err)
			}
			if sl.Lesson.Visibility != "" && sl.Lesson.Visibility != protocol.VisibilityPublic {
				return nil, reject(ReasonNotPublic)
			}
			if _, _, err := protocol.CheckCarried(&sl.Lesson); err != nil {
				// A reading carried from a radio whose sensor's proof fails
				// is not forwarded.
				return nil, classify(err)
			}
			key, publisher, pub = sl.Key(), sl.Signature.NodeID, &sl.Publication
		} else {
			el := a.EncryptedLesson // DecodeAnnouncement gives one of the two
			if err := protocol.VerifyEncrypted(el, opts); err != nil {
				return nil, classify(err)
			}
			key, publisher, pub = el.Key(), el.Signature.NodeID, &el.Publication
		}
		if pub.Visibility != protocol.VisibilityPublic {
			return nil, reject(ReasonNotPublic)
		}
		if kind == kindTopic && !hasTopic(pub.Topics, name) {
			return nil, reject(ReasonWrongTopic)
		}
		publishedAt = pub.PublishedAt
	case protocol.MsgRevocation:
		r := a.Revocation
		if err := protocol.VerifyRevocation(r, opts); err != nil {
			return nil, classify(err)
		}
		key, publisher = r.Key(), r.NodeID
	default: // DecodeAnnouncement refuses any other type
		return nil, reject(ReasonMalformed)
	}
	if kind == kindFeed && publisher != name {
		return nil, reject(ReasonFeedSpoof)
	}
	if local {
		return a, accept
	}

	revoked := s.checker.Revoked(ctx, key)
	if ctx.Err() != nil {
		return nil, ignore(ReasonTimeout)
	}
	if revoked {
		if a.Revocation != nil {
			return nil, ignore(ReasonAlreadyRevoked)
		}
		return nil, ignore(ReasonRevoked)
	}
	held, ok := s.checker.HeldVersion(ctx, key)
	if ctx.Err() != nil {
		return nil, ignore(ReasonTimeout)
	}
	if a.Type == protocol.MsgPublication && ok {
		switch {
		case held == publishedAt:
			return nil, ignore(ReasonDuplicate)
		case held > publishedAt:
			return nil, ignore(ReasonSuperseded)
		}
	}
	// A revocation of a lesson this node holds is taken whatever the trust
	// in its publisher now: it can only remove, and it is signed by the
	// only key that may revoke.
	if !(a.Revocation != nil && ok) && !s.checker.Trusted(publisher) {
		return a, ignore(ReasonUntrusted) // a, for Config.Refused; only an accepted one is delivered
	}
	return a, accept
}

// hasTopic reports whether the GossipSub topic name (lower case) is one of a
// publication's topics.
func hasTopic(topics []string, name string) bool {
	for _, t := range topics {
		if strings.ToLower(t) == name {
			return true
		}
	}
	return false
}
