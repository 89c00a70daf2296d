package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"
)

// The X25519 keys of an Ed25519 key agree: the derived private key's public
// key is the Montgomery form of the Ed25519 public key.
func TestX25519FromEd25519(t *testing.T) {
	for _, b := range []byte{1, 2, 3, 0x7f, 0xff} {
		key := testKey(b)
		xpriv, err := X25519PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		xpub, err := X25519PublicKey(key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if !xpriv.PublicKey().Equal(xpub) {
			t.Fatalf("seed %#x: the X25519 keys derived from the Ed25519 pair do not match", b)
		}
	}
}

// Pinned against libsodium 1.0.18's crypto_sign_ed25519_pk_to_curve25519
// and crypto_sign_ed25519_sk_to_curve25519 of the Ed25519 keys with seeds
// 0x01*32 and 0x02*32 (computed with the system's libsodium through Python's
// ctypes, not with this code).
func TestX25519Pinned(t *testing.T) {
	for _, tt := range []struct {
		seed           byte
		edPub, xPub, x string
	}{
		{1, "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
			"1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57",
			"58e86efb75fa4e2c410f46e16de9f6acae1a1703528651b69bc176c088bef36e"},
		{2, "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
			"60346e7c911a5f6ba154129174cafe75b294ac3bbd5549632f48cec6266f8410",
			"a83c626bc9c38c8c201878ebb1d5b0b50ac40e8986c78793db1d4ef369fca14e"},
	} {
		key := testKey(tt.seed)
		pub := key.Public().(ed25519.PublicKey)
		if hex.EncodeToString(pub) != tt.edPub {
			t.Fatalf("seed %#x: ed25519 public key %x", tt.seed, pub)
		}
		xpub, err := X25519PublicKey(pub)
		if err != nil || hex.EncodeToString(xpub.Bytes()) != tt.xPub {
			t.Fatalf("seed %#x: X25519PublicKey = %x, %v; libsodium says %s", tt.seed, xpub.Bytes(), err, tt.xPub)
		}
		xpriv, err := X25519PrivateKey(key)
		if err != nil || hex.EncodeToString(xpriv.Bytes()) != tt.x {
			t.Fatalf("seed %#x: X25519PrivateKey = %x, %v; libsodium says %s", tt.seed, xpriv.Bytes(), err, tt.x)
		}
	}
	// The two derivations agree on a shared secret.
	a, b := testKey(1), testKey(2)
	xa, _ := X25519PrivateKey(a)
	xb, _ := X25519PrivateKey(b)
	pa, _ := X25519PublicKey(a.Public().(ed25519.PublicKey))
	pb, _ := X25519PublicKey(b.Public().(ed25519.PublicKey))
	s1, err1 := xa.ECDH(pb)
	s2, err2 := xb.ECDH(pa)
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("shared secrets differ: %x %x %v %v", s1, s2, err1, err2)
	}
}

func TestSealOpenKey(t *testing.T) {
	alice, bob := testKey(1), testKey(2)
	alicePub := alice.Public().(ed25519.PublicKey)
	aliceID, bobID := testNodeID(t, alice), testNodeID(t, bob)
	secret := bytes.Repeat([]byte{0x42}, LessonKeySize)
	info := KeySealInfo("k1", aliceID)
	sealed, err := SealKey(alicePub, secret, info)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != LessonKeySize+sealOverhead {
		t.Fatalf("sealed %d bytes, want %d", len(sealed), LessonKeySize+sealOverhead)
	}
	if bytes.Contains(sealed, secret[:8]) {
		t.Fatal("the sealed form holds the secret")
	}
	again, _ := SealKey(alicePub, secret, info)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one secret are equal: no fresh ephemeral key")
	}
	got, err := OpenKey(alice, sealed, info)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("OpenKey = %x, %v", got, err)
	}

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	encFlipped := bytes.Clone(sealed)
	encFlipped[0] ^= 1
	for _, tt := range []struct {
		name   string
		key    ed25519.PrivateKey
		sealed []byte
		info   []byte
	}{
		{"another node", bob, sealed, info},
		{"another keyId", alice, sealed, KeySealInfo("k2", aliceID)},
		{"another requester", alice, sealed, KeySealInfo("k1", bobID)},
		{"a share's info", alice, sealed, ShareSealInfo("k1", aliceID)},
		{"flipped ciphertext", alice, flipped, info},
		{"flipped encapsulated key", alice, encFlipped, info},
		{"truncated", alice, sealed[:40], info},
		{"empty", alice, nil, info},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenKey(tt.key, tt.sealed, tt.info)
			wantErr(t, err, ErrDecrypt, "")
			wantErr(t, err, ErrInvalid, "")
		})
	}

	if _, err := SealKey(alicePub[:31], secret, info); err == nil {
		t.Fatal("sealed to a 31-byte key")
	}
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2 // y = 2 is not on edwards25519
	if _, err := SealKey(ed25519.PublicKey(notOnCurve), secret, info); err == nil {
		t.Fatal("sealed to a key that is not a curve point")
	}
	for _, y := range []byte{0, 1} { // points of order 4 and 1
		lowOrder := make([]byte, 32)
		lowOrder[0] = y
		if _, err := SealKey(ed25519.PublicKey(lowOrder), secret, info); err == nil {
			t.Fatalf("sealed to the low-order point y=%d", y)
		}
	}
	if _, err := OpenKey(alice[:10], sealed, info); err == nil {
		t.Fatal("opened with a 10-byte private key")
	}
}

func TestSealInfo(t *testing.T) {
	if got := string(KeySealInfo("k1", "12D3KooWx")); got != `{"keyId":"k1","nodeId":"12D3KooWx","purpose":"mesh-key/1"}` {
		t.Fatalf("KeySealInfo = %s", got)
	}
	if got := string(ShareSealInfo("k1", "12D3KooWx")); got != `{"keyId":"k1","nodeId":"12D3KooWx","purpose":"mesh-escrow-share/1"}` {
		t.Fatalf("ShareSealInfo = %s", got)
	}
	for _, info := range [][]byte{KeySealInfo("k\"1", "n"), ShareSealInfo("k1", "n\\")} {
		if !bytes.Equal(mustCanonical(t, info), info) {
			t.Fatalf("info %s is not canonical JSON", info)
		}
	}
}
