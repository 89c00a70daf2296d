package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"
)

// Golden vectors of the encrypted records. Like the seed, these keys are
// public: never use them for anything but tests.
const (
	goldenLessonKey = "4d455348206c6573736f6e206b6579202d2d20676f6c64656e206f6e6c792121"
	goldenNonce     = "000102030405060708090a0b"
	goldenKeyID     = "kGoldenKey01"
	goldenEndpoint  = "https://node.example/mesh/v1/keys/" + goldenKeyID
	// goldenRandom seeds crypto/rand (cryptotest.SetGlobalRandom) while
	// the vectors are made, so HPKE's ephemeral keys and the Shamir
	// polynomials are the same on every run.
	goldenRandom = 0x6d657368676f6c64
)

// goldenNodeSeed is the Ed25519 seed of golden node b: 32 copies of b.
func goldenNodeSeed(b byte) []byte { return bytes.Repeat([]byte{b}, ed25519.SeedSize) }

var (
	goldenReaderByte = byte(0xa1)
	goldenEscrowByte = []byte{0xe1, 0xe2, 0xe3}
)

func addGoldenEncrypted(t *testing.T, key ed25519.PrivateKey, add func(name, kind string, doc any, canonical []byte, sig string),
	setSigner func(name, seed string), files goldenFiles) *goldenEncryption {
	cryptotest.SetGlobalRandom(t, goldenRandom)
	nodeID := testNodeID(t, key)
	lk, _ := hex.DecodeString(goldenLessonKey)
	nonce, _ := hex.DecodeString(goldenNonce)

	l := goldenLesson()
	el, err := encryptLesson(lk, l, EncryptParams{NodeID: nodeID, KeyID: goldenKeyID, KeyEndpoint: goldenEndpoint}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	el, err = SignEncrypted(key, el, Publication{Visibility: VisibilityPublic, PublishedAt: testNow.UnixMilli() - 1000, Topics: []string{"interop"}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := EncryptedSigningPayload(el, el.Signature.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := el.Encode()
	if err != nil {
		t.Fatal(err)
	}
	add("encrypted-lesson", "encryptedLesson", json.RawMessage(enc), payload, el.Signature.Sig)
	plaintext, err := appendCanonicalLesson(nil, l)
	if err != nil {
		t.Fatal(err)
	}
	files["encrypted-lesson.plaintext"] = plaintext
	files["encrypted-lesson.aad"] = EncryptionAAD(goldenKeyID, l.ID, nodeID)

	var escrowNodes, escrowSeeds []string
	for _, b := range goldenEscrowByte {
		escrowNodes = append(escrowNodes, testNodeID(t, ed25519.NewKeyFromSeed(goldenNodeSeed(b))))
		escrowSeeds = append(escrowSeeds, hex.EncodeToString(goldenNodeSeed(b)))
	}
	escrow, err := NewEscrow(lk, goldenKeyID, 2, escrowNodes)
	if err != nil {
		t.Fatal(err)
	}
	p, err := SignKeyPolicy(key, KeyPolicy{KeyID: goldenKeyID, LessonID: l.ID, Access: AccessTrusted, MinTrustScore: 0.25,
		ExpiresAt: testNow.Add(30 * 24 * time.Hour).UnixMilli(), Escrow: escrow}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	payload, err = p.signingPayload()
	if err != nil {
		t.Fatal(err)
	}
	add("key-policy", "keyPolicy", p, payload, p.Signature.Sig)

	reader := ed25519.NewKeyFromSeed(goldenNodeSeed(goldenReaderByte))
	readerID := testNodeID(t, reader)
	r, err := SignKeyRequest(reader, goldenKeyID, testNow)
	if err != nil {
		t.Fatal(err)
	}
	add("key-request", "keyRequest", r, r.SigningPayload(), r.Sig)
	setSigner("key-request", hex.EncodeToString(goldenNodeSeed(goldenReaderByte)))

	sealed, err := SealKey(reader.Public().(ed25519.PublicKey), lk, KeySealInfo(goldenKeyID, readerID))
	if err != nil {
		t.Fatal(err)
	}
	resp := &KeyResponse{Type: MsgKeyResponse, KeyID: goldenKeyID, SealedKey: base64.StdEncoding.EncodeToString(sealed), ExpiresAt: testNow.Add(time.Hour).UnixMilli()}
	rb, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	files["key-response-http.json"] = append(rb, '\n')

	// The messages that carry these records, one JSON line each.
	share, err := escrow.OpenShare(ed25519.NewKeyFromSeed(goldenNodeSeed(goldenEscrowByte[0])), goldenKeyID)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := SignRevocation(key, l.ID, ReasonPrivate, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var messages []string
	for _, m := range []struct {
		name string
		msg  interface{ Encode() ([]byte, error) }
	}{
		{"announcement-encrypted", &Announcement{Type: MsgPublication, EncryptedLesson: el}},
		{"fetch-response-encrypted", &FetchResponse{Type: MsgFetchResponse, EncryptedLesson: el}},
		{"sync-response-encrypted", &SyncResponse{Type: MsgSyncResponse, EncryptedLessons: []*EncryptedLesson{el}, Revocations: []*Revocation{rev}, Checkpoint: "0000000000000002"}},
		{"key-response-share", &KeyResponse{Type: MsgKeyResponse, KeyID: goldenKeyID, Share: base64.StdEncoding.EncodeToString(share), ExpiresAt: testNow.Add(time.Hour).UnixMilli(), Policy: p}},
		{"key-notice-policy", &KeyNotice{Type: MsgKeyNotice, Policy: p}},
		{"key-notice-revocation", &KeyNotice{Type: MsgKeyNotice, Revocation: rev}},
		{"key-notice-ack", &KeyNoticeAck{Type: MsgKeyNoticeAck}},
	} {
		b, err := m.msg.Encode()
		if err != nil {
			t.Fatal(err)
		}
		files[m.name+".json"] = append(b, '\n')
		messages = append(messages, m.name+".json")
	}

	return &goldenEncryption{
		Comment: "encrypted-lesson.json decrypts with lessonKey (AES-256-GCM, nonce and tag from the document, AAD encrypted-lesson.aad) to encrypted-lesson.plaintext; " +
			"key-response-http.json answers key-request.json, its sealedKey opens (HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, info sealInfo) " +
			"with the X25519 key of readerSeed to lessonKey; the shares of key-policy.json open the same way with the escrow seeds (info ShareSealInfo) and any 2 combine to lessonKey",
		LessonKey:   goldenLessonKey,
		Plaintext:   "encrypted-lesson.plaintext",
		AAD:         "encrypted-lesson.aad",
		ReaderSeed:  hex.EncodeToString(goldenNodeSeed(goldenReaderByte)),
		ReaderID:    readerID,
		KeyResponse: "key-response-http.json",
		SealInfo:    string(KeySealInfo(goldenKeyID, readerID)),
		EscrowSeeds: escrowSeeds,
		Messages:    messages,
	}
}

// checkGoldenEncryption checks the checked-in encrypted vectors past their
// signatures: they decrypt, the sealed key and shares open.
func checkGoldenEncryption(t *testing.T, m goldenManifest) {
	t.Helper()
	g := m.Encryption
	if g == nil {
		t.Fatal("vectors.json has no encryption section")
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lk, _ := hex.DecodeString(g.LessonKey)
	el, err := DecodeEncryptedLesson(read("encrypted-lesson.json"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := DecryptLesson(el, lk)
	if err != nil {
		t.Fatalf("golden encrypted lesson: %v", err)
	}
	if pt, _ := appendCanonicalLesson(nil, l); !bytes.Equal(pt, read(g.Plaintext)) {
		t.Fatal("the golden encrypted lesson does not decrypt to the checked-in plaintext")
	}
	if !bytes.Equal(EncryptionAAD(el.Encryption.KeyID, el.LessonID, el.Signature.NodeID), read(g.AAD)) {
		t.Fatal("AAD differs from the checked-in one")
	}
	// The plaintext holds no byte of the ciphertext's file in the clear.
	if bytes.Contains(read("encrypted-lesson.json"), []byte("Canonical JSON: numbers")) {
		t.Fatal("the encrypted lesson holds its title in the clear")
	}

	resp, err := DecodeKeyResponse(bytes.TrimSpace(read(g.KeyResponse)))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(g.ReaderSeed)
	sealed, _ := base64.StdEncoding.DecodeString(resp.SealedKey)
	got, err := OpenKey(ed25519.NewKeyFromSeed(seed), sealed, []byte(g.SealInfo))
	if err != nil || !bytes.Equal(got, lk) {
		t.Fatalf("the golden sealed key does not open to the lesson key: %v", err)
	}

	p, err := DecodeKeyPolicy(read("key-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shares [][]byte
	for _, hs := range g.EscrowSeeds {
		seed, _ := hex.DecodeString(hs)
		s, err := p.Escrow.OpenShare(ed25519.NewKeyFromSeed(seed), p.KeyID)
		if err != nil {
			t.Fatalf("golden escrow share: %v", err)
		}
		shares = append(shares, s)
	}
	for _, pair := range [][2]int{{0, 1}, {1, 2}, {0, 2}} {
		key, err := CombineShares([][]byte{shares[pair[0]], shares[pair[1]]})
		if err != nil || !bytes.Equal(key, lk) {
			t.Fatalf("golden shares %v do not combine to the lesson key: %v", pair, err)
		}
	}

	// The messages decode, and what they carry verifies.
	opts := VerifyOptions{Now: testNow}
	if len(g.Messages) != 7 {
		t.Fatalf("vectors.json lists %d messages, want 7", len(g.Messages))
	}
	for _, name := range g.Messages {
		b := bytes.TrimSpace(read(name))
		var err error
		switch name {
		case "announcement-encrypted.json":
			var a *Announcement
			if a, err = DecodeAnnouncement(b); err == nil {
				err = VerifyEncrypted(a.EncryptedLesson, opts)
			}
		case "fetch-response-encrypted.json":
			var r *FetchResponse
			if r, err = DecodeFetchResponse(b); err == nil {
				err = VerifyEncrypted(r.EncryptedLesson, opts)
			}
		case "sync-response-encrypted.json":
			var r *SyncResponse
			if r, err = DecodeSyncResponse(b); err == nil {
				if err = VerifyEncrypted(r.EncryptedLessons[0], opts); err == nil {
					err = VerifyRevocation(r.Revocations[0], opts)
				}
			}
		case "key-response-share.json":
			var r *KeyResponse
			if r, err = DecodeKeyResponse(b); err == nil {
				if err = VerifyKeyPolicy(r.Policy, opts); err == nil {
					s, _ := base64.StdEncoding.DecodeString(r.Share)
					if k, cerr := CombineShares([][]byte{s, shares[1]}); cerr != nil || !bytes.Equal(k, lk) {
						t.Fatalf("the share of %s does not combine to the lesson key: %v", name, cerr)
					}
				}
			}
		case "key-notice-policy.json", "key-notice-revocation.json":
			var n *KeyNotice
			if n, err = DecodeKeyNotice(b); err == nil {
				if n.Policy != nil {
					err = VerifyKeyPolicy(n.Policy, opts)
				} else if err = VerifyRevocation(n.Revocation, opts); err == nil && !n.Revocation.RevokesKeyOf(p) {
					t.Fatalf("%s does not revoke the key of key-policy.json", name)
				}
			}
		case "key-notice-ack.json":
			_, err = DecodeKeyNoticeAck(b)
		default:
			t.Fatalf("unknown golden message %s", name)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
