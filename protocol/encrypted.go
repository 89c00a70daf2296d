package protocol

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// AlgorithmAES256GCM is the only content encryption MESH speaks.
const AlgorithmAES256GCM = "aes-256-gcm"

// Sizes of the AES-256-GCM parts of an EncryptedLesson.
const (
	// LessonKeySize is the size of a lesson key: AES-256.
	LessonKeySize = 32
	// NonceSize is the size of a GCM nonce.
	NonceSize = 12
	// TagSize is the size of a GCM tag.
	TagSize = 16
)

// maxEncryptedDepth caps the nesting of an EncryptedLesson: the document,
// its encryption, publication and signature objects, and topics.
const maxEncryptedDepth = 3

// Encryption says how an EncryptedLesson's ciphertext was made and where
// its key is served.
type Encryption struct {
	// Algorithm is always AlgorithmAES256GCM.
	Algorithm string `json:"algorithm"`
	// KeyID names the key; 1 to MaxIDLength letters, digits, '_', '-' or
	// '.' (NewKeyID makes a random one).
	KeyID string `json:"keyId"`
	// KeyEndpoint says where to ask for the key: KeyEndpoint's
	// mesh://<nodeId>/keys/<keyId> (the author's ProtocolKeys), or an
	// http(s) URL ending in /mesh/v1/keys/<keyId>. Printable ASCII, no
	// spaces, at most MaxKeyEndpointLength bytes.
	KeyEndpoint string `json:"keyEndpoint"`
	// Nonce is the 12-byte GCM nonce, base64 std padded.
	Nonce string `json:"nonce"`
	// Tag is the 16-byte GCM tag, base64 std padded.
	Tag string `json:"tag"`
}

// EncryptedLesson is a lesson as it travels when only its readers may read
// it: the record encrypted under a key its author keeps, and the author's
// signature over the encrypted form, so anyone can check who published it
// without reading it. Delete the key and every copy is noise.
//
// The plaintext is the RFC 8785 JSON of the lesson record (its id is
// LessonID). The GCM additional data is [EncryptionAAD]; the signature
// covers [EncryptedSigningPayload]. Publication and Signature are the
// blocks of a SignedLesson.
type EncryptedLesson struct {
	LessonID    string      `json:"lessonId"`
	Encryption  Encryption  `json:"encryption"`
	Ciphertext  string      `json:"ciphertext"` // base64 std padded; the GCM output without its tag
	Publication Publication `json:"publication"`
	Signature   Signature   `json:"signature"`
}

// Key is the lesson's global key, lessonId@nodeId.
func (e *EncryptedLesson) Key() string { return e.LessonID + "@" + e.Signature.NodeID }

// KeyEndpoint is the keyEndpoint of a key served by its author over
// ProtocolKeys: mesh://<nodeId>/keys/<keyId>.
func KeyEndpoint(nodeID, keyID string) string { return "mesh://" + nodeID + "/keys/" + keyID }

// NewKeyID returns a random key ID: "k" and 22 characters of base64url,
// 128 bits from crypto/rand.
func NewKeyID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return "k" + base64.RawURLEncoding.EncodeToString(b[:])
}

// NewLessonKey returns a random 256-bit lesson key from crypto/rand.
func NewLessonKey() []byte {
	k := make([]byte, LessonKeySize)
	rand.Read(k) // never fails (crypto/rand)
	return k
}

// EncryptParams names the key an EncryptedLesson is made under and who
// publishes it.
type EncryptParams struct {
	// NodeID is the publisher's node ID. It is bound into the GCM
	// additional data, so the lesson must be signed by that node.
	NodeID string
	// KeyID names the key (see Encryption.KeyID).
	KeyID string
	// KeyEndpoint says where the key is served. Empty means
	// KeyEndpoint(NodeID, KeyID).
	KeyEndpoint string
}

// EncryptLesson encrypts lesson under key (LessonKeySize random bytes, see
// NewLessonKey) with a random nonce from crypto/rand. The lesson must have
// an ID and validate; its Visibility field is dropped, as Sign drops it. The
// result is not signed yet: pass it to SignEncrypted, with the key of
// p.NodeID.
func EncryptLesson(key []byte, lesson *Lesson, p EncryptParams) (*EncryptedLesson, error) {
	var nonce [NonceSize]byte
	rand.Read(nonce[:]) // never fails (crypto/rand)
	return encryptLesson(key, lesson, p, nonce[:])
}

func encryptLesson(key []byte, lesson *Lesson, p EncryptParams, nonce []byte) (*EncryptedLesson, error) {
	if len(key) != LessonKeySize {
		return nil, invalidf("encrypt: the key is %d bytes, want %d (AES-256)", len(key), LessonKeySize)
	}
	if lesson == nil {
		return nil, invalidf("encrypt: nil lesson")
	}
	if _, err := PublicKeyOf(p.NodeID); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if p.KeyEndpoint == "" {
		p.KeyEndpoint = KeyEndpoint(p.NodeID, p.KeyID)
	}
	l := lesson.Clone()
	l.Visibility = ""
	delete(l.Extra, "visibility")
	if l.ID == "" {
		return nil, invalidf("encrypt: the lesson has no id")
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	plaintext, err := appendCanonicalLesson(nil, l)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	defer clear(plaintext)
	if len(plaintext) > MaxRecordSize {
		return nil, fmt.Errorf("encrypt: %w: the record is %d bytes, the limit is %d", ErrTooLarge, len(plaintext), MaxRecordSize)
	}
	enc := Encryption{Algorithm: AlgorithmAES256GCM, KeyID: p.KeyID, KeyEndpoint: p.KeyEndpoint}
	if err := enc.validateKeyRef(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sealed := gcm.Seal(nil, nonce, plaintext, EncryptionAAD(p.KeyID, l.ID, p.NodeID))
	ct, tag := sealed[:len(sealed)-TagSize], sealed[len(sealed)-TagSize:]
	enc.Nonce = base64.StdEncoding.EncodeToString(nonce)
	enc.Tag = base64.StdEncoding.EncodeToString(tag)
	return &EncryptedLesson{
		LessonID:   l.ID,
		Encryption: enc,
		Ciphertext: base64.StdEncoding.EncodeToString(ct),
		Signature:  Signature{NodeID: p.NodeID},
	}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, invalidf("aes: %v", err)
	}
	gcm, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
	if err != nil {
		return nil, invalidf("gcm: %v", err)
	}
	return gcm, nil
}

// EncryptionAAD is the GCM additional data of an EncryptedLesson: the
// RFC 8785 JSON
//
//	{"keyId":"<keyId>","lessonId":"<lessonId>","nodeId":"<publisher>"}
//
// so a ciphertext opens only under the key it was made for, the lesson ID
// it was published as, and the node that published it.
func EncryptionAAD(keyID, lessonID, nodeID string) []byte {
	b := make([]byte, 0, 48+len(keyID)+len(lessonID)+len(nodeID))
	b = append(b, `{"keyId":`...)
	b = appendJSONString(b, keyID)
	b = append(b, `,"lessonId":`...)
	b = appendJSONString(b, lessonID)
	b = append(b, `,"nodeId":`...)
	b = appendJSONString(b, nodeID)
	return append(b, '}')
}

// SignEncrypted signs el, as published by pub at time now, with key, and
// returns the signed copy. key must be the key of the node el was encrypted
// for (EncryptParams.NodeID): readers could not decrypt it otherwise.
func SignEncrypted(key ed25519.PrivateKey, el *EncryptedLesson, pub Publication, now time.Time) (*EncryptedLesson, error) {
	pk, err := checkPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign encrypted: %w", err)
	}
	if el == nil {
		return nil, invalidf("sign encrypted: nil lesson")
	}
	nodeID, err := NodeID(pk)
	if err != nil {
		return nil, err
	}
	if el.Signature.NodeID != "" && el.Signature.NodeID != nodeID {
		return nil, invalidf("sign encrypted: encrypted for node %s, signing as %s: readers could not decrypt it", truncate(el.Signature.NodeID), nodeID)
	}
	out := *el
	if err := out.validateContent(); err != nil {
		return nil, fmt.Errorf("sign encrypted: %w", err)
	}
	if pub.PublishedAt == 0 {
		pub.PublishedAt = now.UnixMilli()
	}
	if err := pub.Validate(); err != nil {
		return nil, fmt.Errorf("sign encrypted: %w", err)
	}
	if pub.Topics != nil {
		pub.Topics = append([]string{}, pub.Topics...)
	}
	out.Publication = pub
	ts := now.UnixMilli()
	if err := checkTimestamp(ts); err != nil {
		return nil, fmt.Errorf("sign encrypted: %w", err)
	}
	payload, err := EncryptedSigningPayload(&out, ts)
	if err != nil {
		return nil, fmt.Errorf("sign encrypted: %w", err)
	}
	out.Signature = Signature{
		Algorithm: AlgorithmEd25519,
		NodeID:    nodeID,
		PublicKey: base64.StdEncoding.EncodeToString(pk),
		Timestamp: ts,
		Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, payload)),
	}
	return &out, nil
}

// EncryptedSigningPayload returns the bytes an EncryptedLesson's signature
// covers: the RFC 8785 JSON of
//
//	{"ciphertext":…,"encryption":{…},"lessonId":…,"publication":{…},"timestamp":…}
//
// with timestamp the signature's. It is computed afresh from the values.
func EncryptedSigningPayload(e *EncryptedLesson, timestamp int64) ([]byte, error) {
	if e == nil {
		return nil, invalidf("signing payload: nil encrypted lesson")
	}
	b := make([]byte, 0, 256+len(e.Ciphertext)+len(e.LessonID)+len(e.Encryption.KeyEndpoint)+len(e.Encryption.KeyID))
	b = append(b, `{"ciphertext":`...)
	b = appendJSONString(b, e.Ciphertext)
	b = append(b, `,"encryption":{"algorithm":`...)
	b = appendJSONString(b, e.Encryption.Algorithm)
	b = append(b, `,"keyEndpoint":`...)
	b = appendJSONString(b, e.Encryption.KeyEndpoint)
	b = append(b, `,"keyId":`...)
	b = appendJSONString(b, e.Encryption.KeyID)
	b = append(b, `,"nonce":`...)
	b = appendJSONString(b, e.Encryption.Nonce)
	b = append(b, `,"tag":`...)
	b = appendJSONString(b, e.Encryption.Tag)
	b = append(b, `},"lessonId":`...)
	b = appendJSONString(b, e.LessonID)
	b = append(b, `,"publication":`...)
	b = appendCanonicalPublication(b, &e.Publication)
	b = append(b, `,"timestamp":`...)
	b = appendCanonicalInt(b, timestamp)
	return append(b, '}'), nil
}

// VerifyEncrypted checks an EncryptedLesson without its key: the algorithm,
// that nodeId is the peer ID of publicKey, the Ed25519 signature over
// EncryptedSigningPayload, the signing time against opts, and that the
// lesson ID, encryption block, ciphertext and publication are well formed.
// It says nothing of whether the key is still served.
func VerifyEncrypted(e *EncryptedLesson, opts VerifyOptions) error {
	if e == nil {
		return invalidf("encrypted lesson: nil")
	}
	if err := checkTimestamp(e.Signature.Timestamp); err != nil {
		return err
	}
	pk, err := verifyKey(e.Signature.Algorithm, e.Signature.NodeID, e.Signature.PublicKey)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not a base64 Ed25519 signature", ErrInvalidSignature)
	}
	payload, err := EncryptedSigningPayload(e, e.Signature.Timestamp)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	if !ed25519.Verify(pk, payload, sig) {
		return fmt.Errorf("%w: ed25519 signature does not match the encrypted lesson", ErrInvalidSignature)
	}
	if err := opts.check(e.Signature.Timestamp); err != nil {
		return err
	}
	if err := e.validateContent(); err != nil {
		return err
	}
	return e.Publication.Validate()
}

// Validate checks that e is well formed, as VerifyEncrypted does, without
// the signature and the clock: the lesson ID, the encryption block, the
// ciphertext, the publication, and that signature.nodeId is a node ID. It
// is for a store re-reading what it verified before.
func (e *EncryptedLesson) Validate() error {
	if err := e.validateContent(); err != nil {
		return err
	}
	if _, err := PublicKeyOf(e.Signature.NodeID); err != nil {
		return fmt.Errorf("encrypted lesson.signature.nodeId: %w", err)
	}
	return e.Publication.Validate()
}

// validateContent checks the lesson ID, the encryption block and the
// ciphertext (not the publication nor the signature).
func (e *EncryptedLesson) validateContent() error {
	if err := ValidateID(e.LessonID); err != nil {
		return fmt.Errorf("encrypted lesson.lessonId: %w", err)
	}
	if err := e.Encryption.validate(); err != nil {
		return err
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(e.Ciphertext)
	if err != nil || base64.StdEncoding.EncodeToString(ct) != e.Ciphertext {
		return invalidf("encrypted lesson.ciphertext: want standard padded base64")
	}
	if len(ct) == 0 {
		return invalidf("encrypted lesson.ciphertext: empty")
	}
	if len(ct) > MaxRecordSize {
		return fmt.Errorf("encrypted lesson.ciphertext: %w: %d bytes, the limit is %d", ErrTooLarge, len(ct), MaxRecordSize)
	}
	return nil
}

func (enc *Encryption) validate() error {
	if err := enc.validateKeyRef(); err != nil {
		return err
	}
	if err := checkBase64Len("encryption.nonce", enc.Nonce, NonceSize); err != nil {
		return err
	}
	return checkBase64Len("encryption.tag", enc.Tag, TagSize)
}

// validateKeyRef checks the algorithm, keyId and keyEndpoint.
func (enc *Encryption) validateKeyRef() error {
	if enc.Algorithm != AlgorithmAES256GCM {
		return invalidf("encryption.algorithm %q: want %q", truncate(enc.Algorithm), AlgorithmAES256GCM)
	}
	if err := ValidateID(enc.KeyID); err != nil {
		return fmt.Errorf("encryption.keyId: %w", err)
	}
	if enc.KeyEndpoint == "" || len(enc.KeyEndpoint) > MaxKeyEndpointLength {
		return invalidf("encryption.keyEndpoint: want 1 to %d bytes", MaxKeyEndpointLength)
	}
	for i := 0; i < len(enc.KeyEndpoint); i++ {
		if c := enc.KeyEndpoint[i]; c <= ' ' || c >= 0x7f {
			return invalidf("encryption.keyEndpoint %q: want printable ASCII without spaces", truncate(enc.KeyEndpoint))
		}
	}
	return nil
}

// checkBase64Len checks that s is the standard padded base64 of n bytes.
func checkBase64Len(what, s string, n int) error {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n || base64.StdEncoding.EncodeToString(b) != s {
		return invalidf("%s: want %d bytes in standard padded base64", what, n)
	}
	return nil
}

// DecryptLesson decrypts el with key and returns the lesson. It checks the
// structure, not the signature: call VerifyEncrypted first. A wrong key, or
// a ciphertext, nonce or tag that was altered, or moved under another
// keyId, lessonId or publisher, gives an error matching ErrDecrypt (and
// ErrInvalid). The plaintext must be the RFC 8785 JSON of a valid record
// whose id is el.LessonID.
func DecryptLesson(el *EncryptedLesson, key []byte) (*Lesson, error) {
	if el == nil {
		return nil, invalidf("decrypt: nil encrypted lesson")
	}
	if len(key) != LessonKeySize {
		return nil, invalidf("decrypt: the key is %d bytes, want %d (AES-256)", len(key), LessonKeySize)
	}
	if err := el.validateContent(); err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if _, err := PublicKeyOf(el.Signature.NodeID); err != nil {
		return nil, fmt.Errorf("decrypt: signature.nodeId: %w", err)
	}
	ct, _ := base64.StdEncoding.DecodeString(el.Ciphertext) // checked above
	nonce, _ := base64.StdEncoding.DecodeString(el.Encryption.Nonce)
	tag, _ := base64.StdEncoding.DecodeString(el.Encryption.Tag)
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	aad := EncryptionAAD(el.Encryption.KeyID, el.LessonID, el.Signature.NodeID)
	plaintext, err := gcm.Open(nil, nonce, append(ct, tag...), aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w: %w: wrong key, or the ciphertext, nonce, tag, keyId, lessonId or publisher was altered", truncate(el.Key()), ErrDecrypt, ErrInvalid)
	}
	defer clear(plaintext)
	l, err := DecodeLesson(plaintext)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: the plaintext: %w", truncate(el.Key()), err)
	}
	if l.ID != el.LessonID {
		return nil, invalidf("decrypt %s: the plaintext is lesson %q", truncate(el.Key()), truncate(l.ID))
	}
	canon, err := appendCanonicalLesson(nil, l)
	if err != nil || !bytes.Equal(canon, plaintext) {
		return nil, invalidf("decrypt %s: the plaintext is not the RFC 8785 JSON of the record", truncate(el.Key()))
	}
	clear(canon)
	return l, nil
}

// Encode returns the JSON encoding. Strings are not HTML-escaped.
func (e *EncryptedLesson) Encode() ([]byte, error) { return encodeJSON(e) }

// DecodeEncryptedLesson decodes an EncryptedLesson, checking the size cap,
// the nesting depth, I-JSON, exact field names and field types. It does not
// verify the signature nor check values: call VerifyEncrypted.
func DecodeEncryptedLesson(data []byte) (*EncryptedLesson, error) {
	var e EncryptedLesson
	if err := e.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &e, nil
}

// UnmarshalJSON decodes an EncryptedLesson as DecodeEncryptedLesson does,
// so that one inside a larger message is held to the same rules.
func (e *EncryptedLesson) UnmarshalJSON(data []byte) error {
	if len(data) > MaxEncryptedLessonSize {
		return fmt.Errorf("encrypted lesson: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxEncryptedLessonSize)
	}
	o, err := parseObjectDepth("encrypted lesson", data, maxEncryptedDepth)
	if err != nil {
		return err
	}
	if err := o.only([]string{"lessonId", "encryption", "ciphertext", "publication", "signature"}); err != nil {
		return err
	}
	var out EncryptedLesson
	if out.LessonID, err = o.str("lessonId"); err != nil {
		return err
	}
	if out.Ciphertext, err = o.str("ciphertext"); err != nil {
		return err
	}
	if err := out.Encryption.unmarshalChecked(o.get("encryption")); err != nil {
		return fmt.Errorf("encrypted lesson: %w", err)
	}
	if err := out.Publication.unmarshalChecked(o.get("publication")); err != nil {
		return fmt.Errorf("encrypted lesson: %w", err)
	}
	if err := out.Signature.unmarshalChecked(o.get("signature")); err != nil {
		return fmt.Errorf("encrypted lesson: %w", err)
	}
	*e = out
	return nil
}

// UnmarshalJSON decodes an encryption block with exact field names; every
// field is a required string.
func (enc *Encryption) UnmarshalJSON(data []byte) error {
	o, err := parseObject("encryption", data)
	if err != nil {
		return err
	}
	return enc.decode(o)
}

func (enc *Encryption) unmarshalChecked(data []byte) error {
	o, err := splitObject("encryption", data)
	if err != nil {
		return err
	}
	return enc.decode(o)
}

func (enc *Encryption) decode(o object) error {
	if err := o.only([]string{"algorithm", "keyId", "keyEndpoint", "nonce", "tag"}); err != nil {
		return err
	}
	var out Encryption
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"algorithm", &out.Algorithm}, {"keyId", &out.KeyID}, {"keyEndpoint", &out.KeyEndpoint}, {"nonce", &out.Nonce}, {"tag", &out.Tag}} {
		if *f.dst, err = o.str(f.name); err != nil {
			return err
		}
	}
	*enc = out
	return nil
}

// parseObjectDepth is parseObject for a document that nests at most
// maxDepth arrays and objects (the document itself counts one).
func parseObjectDepth(path string, data []byte, maxDepth int) (object, error) {
	if d := jsonDepth(data); d > maxDepth {
		return object{}, invalidf("%s: nested %d levels deep, the limit is %d", path, d, maxDepth)
	}
	return parseObject(path, data)
}

// jsonDepth returns how deeply data nests arrays and objects, counting
// brackets outside strings. On invalid JSON it returns a number the parser
// then has no use for.
func jsonDepth(data []byte) int {
	depth, max := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			i = skipJSONString(data, i) - 1
		case '{', '[':
			if depth++; depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}
