package protocol

import (
	"errors"
	"testing"
	"time"
)

func TestTrustMessages(t *testing.T) {
	key := testKey(9)
	v, err := SignVouch(key, []string{testNodeID(t, testKey(10))}, testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&TrustResponse{Type: MsgTrustResponse, Vouch: v}).Encode()
	got, err := DecodeTrustResponse(b)
	if err != nil || VerifyVouch(got.Vouch, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("vouch answer: %v", err)
	}
	r, err := SignReferral(key, testNodeID(t, testKey(11)), "knows rust", testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = (&TrustRequest{Type: MsgReferral, Referral: r}).Encode()
	req, err := DecodeTrustRequest(b)
	if err != nil || VerifyReferral(req.Referral, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("referral: %v", err)
	}
	b, _ = (&TrustRequest{Type: MsgVouchPush, Vouch: v}).Encode()
	req, err = DecodeTrustRequest(b)
	if err != nil || req.Vouch == nil || VerifyVouch(req.Vouch, VerifyOptions{Now: testNow}) != nil {
		t.Fatalf("vouch push: %v", err)
	}
	for _, bad := range []string{`{"type":"vouchRequest","x":1}`, `{"type":"referral"}`, `{"type":"gimme"}`, `{"type":"vouchRequest","type":"referral"}`,
		`{"type":"vouchPush"}`, `{"type":"vouchPush","referral":{}}`, `{"type":"vouchRequest","vouch":{}}`} {
		if _, err := DecodeTrustRequest([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func FuzzDecodeTrustMessages(f *testing.F) {
	f.Add([]byte(`{"type":"vouchRequest"}`))
	f.Add([]byte(`{"type":"vouchPush","vouch":{"type":"vouch"}}`))
	f.Add([]byte(`{"type":"trustResponse","error":{"error":true,"code":"UNTRUSTED_NODE","message":"no"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeTrustRequest(data); err == nil && (r.Type == MsgReferral && r.Referral == nil || r.Type == MsgVouchPush && r.Vouch == nil) {
			t.Fatal("request without its record")
		}
		if r, err := DecodeTrustResponse(data); err == nil && r.Type != MsgTrustResponse {
			t.Fatalf("accepted type %q", r.Type)
		}
	})
}
