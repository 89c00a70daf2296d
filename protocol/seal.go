package protocol

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha512"
	"fmt"

	"filippo.io/edwards25519"
)

// This file seals a secret (a lesson key, an escrow share) to one node, so
// that it may cross plain HTTP or sit on an escrow node that cannot read it
// until asked.
//
// A node has one key, its Ed25519 node key. Sealing uses the X25519 key
// derived from it the standard way (RFC 8032 / RFC 7748, as libsodium's
// crypto_sign_ed25519_pk_to_curve25519 and _sk_to_curve25519 do): the public
// key is the Montgomery form of the Edwards point, the private key the
// clamped first half of SHA-512 of the Ed25519 seed. Encryption is HPKE
// (RFC 9180, Go's crypto/hpke) in base mode with the suite
// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (IDs 0x0020,
// 0x0001, 0x0003), no AAD, and an info string that names what is sealed and
// to whom (KeySealInfo, ShareSealInfo). The sealed form is HPKE's
// enc ‖ ciphertext: 32 bytes of encapsulated key, then the secret's length
// plus 16 bytes.

// HPKE suite IDs of sealed keys and shares.
const (
	SealKEM  = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	SealKDF  = 0x0001 // HKDF-SHA256
	SealAEAD = 0x0003 // ChaCha20-Poly1305
)

// Purposes named in the HPKE info of sealed secrets.
const (
	sealPurposeKey   = "mesh-key/1"
	sealPurposeShare = "mesh-escrow-share/1"
)

// sealOverhead is what sealing adds to a secret: the encapsulated key and
// the AEAD tag.
const sealOverhead = 32 + 16

// X25519PublicKey returns the X25519 public key of an Ed25519 public key:
// the Montgomery u-coordinate of its Edwards point.
func X25519PublicKey(pub ed25519.PublicKey) (*ecdh.PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, invalidf("ed25519 public key: %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, invalidf("ed25519 public key: not a point on the curve")
	}
	x, err := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	if err != nil {
		return nil, invalidf("x25519 public key: %v", err)
	}
	return x, nil
}

// X25519PrivateKey returns the X25519 private key of an Ed25519 private
// key: the first 32 bytes of SHA-512 of its seed, clamped. Its public key
// is X25519PublicKey of the Ed25519 public key.
func X25519PrivateKey(priv ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	if _, err := checkPrivateKey(priv); err != nil {
		return nil, err
	}
	h := sha512.Sum512(priv.Seed())
	defer clear(h[:])
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	x, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, invalidf("x25519 private key: %v", err)
	}
	return x, nil
}

func sealSuite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.ChaCha20Poly1305() }

// SealKey seals secret (a lesson key, an escrow share) to the node whose
// Ed25519 public key is recipient, under info (KeySealInfo or
// ShareSealInfo). Only that node's private key opens it, and only with the
// same info. Each call draws a fresh ephemeral key, so two seals of one
// secret differ.
func SealKey(recipient ed25519.PublicKey, secret, info []byte) ([]byte, error) {
	x, err := X25519PublicKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(x)
	if err != nil {
		return nil, fmt.Errorf("seal: %w: %v", ErrInvalid, err)
	}
	kdf, aead := sealSuite()
	out, err := hpke.Seal(pk, kdf, aead, info, secret)
	if err != nil {
		// A low-order public key: no honest node has one.
		return nil, fmt.Errorf("seal: %w: %v", ErrInvalid, err)
	}
	return out, nil
}

// OpenKey opens what SealKey sealed to the node whose Ed25519 private key is
// recipient. A wrong key, another info or any altered byte gives an error
// matching ErrDecrypt (and ErrInvalid).
func OpenKey(recipient ed25519.PrivateKey, sealed, info []byte) ([]byte, error) {
	x, err := X25519PrivateKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("open sealed key: %w", err)
	}
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("open sealed key: %w: %w: %d bytes, want at least %d", ErrDecrypt, ErrInvalid, len(sealed), sealOverhead)
	}
	sk, err := hpke.NewDHKEMPrivateKey(x)
	if err != nil {
		return nil, fmt.Errorf("open sealed key: %w: %v", ErrInvalid, err)
	}
	kdf, aead := sealSuite()
	out, err := hpke.Open(sk, kdf, aead, info, sealed)
	if err != nil {
		return nil, fmt.Errorf("open sealed key: %w: %w: it was sealed to another node or for another key, or altered", ErrDecrypt, ErrInvalid)
	}
	return out, nil
}

// KeySealInfo is the HPKE info of a lesson key sealed to the node that
// asked for it (the answer to GET /mesh/v1/keys/{keyId}): the RFC 8785 JSON
//
//	{"keyId":"<keyId>","nodeId":"<requester>","purpose":"mesh-key/1"}
func KeySealInfo(keyID, requester string) []byte {
	return sealInfo(keyID, requester, sealPurposeKey)
}

// ShareSealInfo is the HPKE info of an escrow share sealed to a node (the
// escrow node holding it, or a reader it is served to): the RFC 8785 JSON
//
//	{"keyId":"<keyId>","nodeId":"<holder>","purpose":"mesh-escrow-share/1"}
func ShareSealInfo(keyID, holder string) []byte {
	return sealInfo(keyID, holder, sealPurposeShare)
}

func sealInfo(keyID, nodeID, purpose string) []byte {
	b := append([]byte(nil), `{"keyId":`...)
	b = appendJSONString(b, keyID)
	b = append(b, `,"nodeId":`...)
	b = appendJSONString(b, nodeID)
	b = append(b, `,"purpose":`...)
	b = appendJSONString(b, purpose)
	return append(b, '}')
}
