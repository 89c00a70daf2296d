package protocol

import "fmt"

// Message types of /mesh/trust/1.0.0.
const (
	MsgVouchRequest  = "vouchRequest"
	MsgVouchPush     = "vouchPush"
	MsgReferral      = "referral"
	MsgTrustResponse = "trustResponse"
)

// Size caps of /mesh/trust/1.0.0 messages. A request may carry a vouch
// (MsgVouchPush).
const (
	MaxTrustRequestSize  = MaxVouchSize + 8<<10
	MaxTrustResponseSize = 256 << 10
)

// TrustRequest is sent on ProtocolTrust: a request for the peer's vouch (its
// signed list of fully trusted nodes; answered only to peers it trusts
// fully), the sender's own new vouch, pushed to the peers it trusts fully
// when its full-trust edges change, or a referral ("you may want to trust
// X") for the peer to keep.
type TrustRequest struct {
	Type     string    `json:"type"` // MsgVouchRequest, MsgVouchPush or MsgReferral
	Vouch    *Vouch    `json:"vouch,omitempty"`
	Referral *Referral `json:"referral,omitempty"`
}

// Encode returns the JSON encoding of r.
func (r *TrustRequest) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeTrustRequest decodes a trust request: size cap, I-JSON, exact names,
// and a referral exactly when the type says so. It does not verify.
func DecodeTrustRequest(data []byte) (*TrustRequest, error) {
	if len(data) > MaxTrustRequestSize {
		return nil, fmt.Errorf("trust request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxTrustRequestSize)
	}
	o, err := parseObject("trust request", data)
	if err != nil {
		return nil, err
	}
	typ, err := o.str("type")
	if err != nil {
		return nil, err
	}
	r := &TrustRequest{Type: typ}
	switch typ {
	case MsgVouchRequest:
		if err := o.only([]string{"type"}); err != nil {
			return nil, err
		}
	case MsgVouchPush:
		if err := o.only([]string{"type", "vouch"}); err != nil {
			return nil, err
		}
		if r.Vouch, err = DecodeVouch(o.get("vouch")); err != nil {
			return nil, fmt.Errorf("trust request: %w", err)
		}
	case MsgReferral:
		if err := o.only([]string{"type", "referral"}); err != nil {
			return nil, err
		}
		if r.Referral, err = DecodeReferral(o.get("referral")); err != nil {
			return nil, fmt.Errorf("trust request: %w", err)
		}
	default:
		return nil, invalidf("trust request: type %q: want %s, %s or %s", truncate(typ), MsgVouchRequest, MsgVouchPush, MsgReferral)
	}
	return r, nil
}

// TrustResponse answers a TrustRequest: the vouch asked for, an empty
// acknowledgement of a referral, or an error (UNTRUSTED_NODE to a peer that
// is not trusted fully).
type TrustResponse struct {
	Type  string `json:"type"` // MsgTrustResponse
	Vouch *Vouch `json:"vouch,omitempty"`
	Error *Error `json:"error,omitempty"`
}

// Encode returns the JSON encoding of r.
func (r *TrustResponse) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeTrustResponse decodes a trust answer. It does not verify the vouch.
func DecodeTrustResponse(data []byte) (*TrustResponse, error) {
	if len(data) > MaxTrustResponseSize {
		return nil, fmt.Errorf("trust response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxTrustResponseSize)
	}
	o, err := parseObject("trust response", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "vouch", "error"); err != nil {
		return nil, err
	}
	r := &TrustResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgTrustResponse {
		return nil, invalidf("trust response: type %q, want %q", truncate(r.Type), MsgTrustResponse)
	}
	if o.has("vouch") {
		if r.Vouch, err = DecodeVouch(o.get("vouch")); err != nil {
			return nil, fmt.Errorf("trust response: %w", err)
		}
	}
	if o.has("error") {
		r.Error = new(Error)
		if err := decodeError(o.get("error"), r.Error); err != nil {
			return nil, err
		}
	}
	return r, nil
}
