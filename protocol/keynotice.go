package protocol

import "fmt"

// Message types of the key notice protocol (ProtocolKeyNotice).
const (
	MsgKeyNotice    = "keyNotice"
	MsgKeyNoticeAck = "keyNoticeAck"
)

// maxKeyNoticeDepth caps a KeyNotice's nesting: the notice and the policy
// it carries (escrow, shares, one share).
const maxKeyNoticeDepth = 1 + maxKeyPolicyDepth

// KeyNotice is what an author tells the nodes that hold something of one
// of its keys, over ProtocolKeyNotice (the sender is the peer at the other
// end of the secure channel). It carries exactly one of:
//
//	{"type":"keyNotice","policy":{…}}       the key's current signed KeyPolicy
//	{"type":"keyNotice","revocation":{…}}   the author's signed Revocation of the lesson (a hard revoke)
//
// A policy goes to the escrow nodes it names (it delivers their sealed
// shares), and, when it supersedes an older policy of the same lesson, to
// the escrow nodes of the older one and to the readers the author served:
// a newer policy for another keyId retires the older key (a rotation), so
// its shares are deleted and readers drop it. A revocation goes to every
// escrow node and every reader the author served: escrow nodes delete
// their shares of every key it revokes (Revocation.RevokesKeyOf), readers
// drop the key and the plaintext. Both are signed by the author, so
// whoever passes a notice on cannot forge one.
type KeyNotice struct {
	Type       string      `json:"type"` // MsgKeyNotice
	Policy     *KeyPolicy  `json:"policy,omitempty"`
	Revocation *Revocation `json:"revocation,omitempty"`
}

// Encode returns the JSON encoding of n.
func (n *KeyNotice) Encode() ([]byte, error) { return encodeJSON(n) }

// DecodeKeyNotice decodes a key notice: size cap, nesting depth, I-JSON,
// exact field names and types, and exactly one of policy and revocation,
// each held to its decoder's rules. It does not verify signatures.
func DecodeKeyNotice(data []byte) (*KeyNotice, error) {
	if len(data) > MaxKeyNoticeSize {
		return nil, fmt.Errorf("key notice: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxKeyNoticeSize)
	}
	o, err := parseObjectDepth("key notice", data, maxKeyNoticeDepth)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "policy", "revocation"); err != nil {
		return nil, err
	}
	n := &KeyNotice{}
	if n.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if n.Type != MsgKeyNotice {
		return nil, invalidf("key notice: type %q, want %q", truncate(n.Type), MsgKeyNotice)
	}
	if o.has("policy") == o.has("revocation") {
		return nil, invalidf("key notice: carries exactly one of policy and revocation")
	}
	if o.has("policy") {
		if n.Policy, err = DecodeKeyPolicy(o.get("policy")); err != nil {
			return nil, fmt.Errorf("key notice: %w", err)
		}
	} else if n.Revocation, err = DecodeRevocation(o.get("revocation")); err != nil {
		return nil, fmt.Errorf("key notice: %w", err)
	}
	return n, nil
}

// KeyNoticeAck answers a KeyNotice: {"type":"keyNoticeAck"} when the
// notice was taken (verified, and acted on or already known), else with
// an error ({"type":"keyNoticeAck","error":{"error":true,"code":…,"message":…}}).
type KeyNoticeAck struct {
	Type  string `json:"type"` // MsgKeyNoticeAck
	Error *Error `json:"error,omitempty"`
}

// Encode returns the JSON encoding of a.
func (a *KeyNoticeAck) Encode() ([]byte, error) { return encodeJSON(a) }

// Err is the error an answer carries, matching its code's sentinel; nil
// when the notice was taken.
func (a *KeyNoticeAck) Err() error {
	if a.Error == nil {
		return nil
	}
	return ErrorFor(a.Error.Code, a.Error.Message)
}

// DecodeKeyNoticeAck decodes an answer to a KeyNotice.
func DecodeKeyNoticeAck(data []byte) (*KeyNoticeAck, error) {
	if len(data) > MaxKeyNoticeAckSize {
		return nil, fmt.Errorf("key notice ack: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxKeyNoticeAckSize)
	}
	o, err := parseObjectDepth("key notice ack", data, 2)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "error"); err != nil {
		return nil, err
	}
	a := &KeyNoticeAck{}
	if a.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if a.Type != MsgKeyNoticeAck {
		return nil, invalidf("key notice ack: type %q, want %q", truncate(a.Type), MsgKeyNoticeAck)
	}
	if o.has("error") {
		a.Error = new(Error)
		if err := decodeError(o.get("error"), a.Error); err != nil {
			return nil, fmt.Errorf("key notice ack: %w", err)
		}
	}
	return a, nil
}
