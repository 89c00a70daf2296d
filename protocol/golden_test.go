package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenSeed is the Ed25519 seed of the golden vectors. It is public: never
// use it for anything but tests.
const goldenSeed = "4d45534820676f6c64656e20766563746f7273202d2d20646f206e6f74207573"

const goldenDir = "testdata/golden"

// goldenManifest is testdata/golden/vectors.json, read by the interop
// verifier in testdata/interop.
type goldenManifest struct {
	Comment     string         `json:"comment"`
	Seed        string         `json:"seed"`
	PublicKey   string         `json:"publicKey"`
	NodeID      string         `json:"nodeId"`
	Fingerprint string         `json:"fingerprint"`
	Vectors     []goldenVector `json:"vectors"`
	// Encryption holds what it takes to check the encrypted vectors past
	// their signatures: the lesson key, the exact plaintext and AAD, and
	// the keys of the nodes keys and shares are sealed to.
	Encryption *goldenEncryption `json:"encryption,omitempty"`
}

type goldenEncryption struct {
	Comment     string   `json:"comment"`
	LessonKey   string   `json:"lessonKey"`   // hex; AES-256 key of encrypted-lesson.json
	Plaintext   string   `json:"plaintext"`   // file: the exact bytes encrypted
	AAD         string   `json:"aad"`         // file: the exact GCM additional data
	ReaderSeed  string   `json:"readerSeed"`  // hex Ed25519 seed of the node the HTTP answer is sealed to
	ReaderID    string   `json:"readerId"`    // its node ID
	KeyResponse string   `json:"keyResponse"` // file: the HTTP answer, key sealed to the reader
	SealInfo    string   `json:"sealInfo"`    // the HPKE info of that sealed key
	EscrowSeeds []string `json:"escrowSeeds"` // hex Ed25519 seeds of the escrow nodes of key-policy.json, in its order
	// Messages are files of the messages that carry these records (an
	// announcement, a fetch and a sync answer, an escrow node's share
	// answer, key notices), one JSON line each.
	Messages []string `json:"messages"`
}

type goldenVector struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`      // signedLesson, revocation, identity, encryptedLesson, keyPolicy or keyRequest
	Document  string `json:"document"`  // file: the JSON document as sent
	Canonical string `json:"canonical"` // file: the exact bytes signed
	Signature string `json:"signature"` // base64, as in the document
	// SignerSeed is the hex Ed25519 seed of the signer when it is not the
	// manifest's (a reader's key request).
	SignerSeed string `json:"signerSeed,omitempty"`
}

func goldenKey(t testing.TB) ed25519.PrivateKey {
	seed, err := hex.DecodeString(goldenSeed)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("bad golden seed")
	}
	return ed25519.NewKeyFromSeed(seed)
}

// goldenLesson exercises what an independent canonicalizer must get right:
// unknown fields, nested objects, key order by UTF-16 code units ("ﬁ" is
// U+FB01, the crab is a surrogate pair and sorts first), escapes, non-ASCII
// text, and numbers whose canonical form differs from how they are written.
func goldenLesson() *Lesson {
	return &Lesson{
		ID:        "golden-01",
		Type:      TypeLesson,
		Title:     "Canonical JSON: numbers, escapes and key order",
		Content:   "Line one\nTab\there, quote \" backslash \\ bell \u0007, <&>, é, 日本語, 🦀, U+2028 \u2028.",
		Tags:      []string{"jcs", "interop", "ünïcödé"},
		Severity:  "info",
		CreatedAt: 1767225500000,
		Agent:     "golden",
		Project:   "mesh",
		Extra: map[string]json.RawMessage{
			"numbers": json.RawMessage(`{"big":1e21,"tenth":0.1,"exp":1E-7,"trailing":100.0,"negzero":-0,` +
				`"int":42,"float":3.14159265358979323846,"pow2":9007199254740993,"small":5e-324}`),
			"ordering": json.RawMessage(`{"ﬁ":1,"🦀":2,"z":3,"é":4,"A":5,"\r":6}`),
			"escaped":  json.RawMessage(`"\u00e9\u0041\/\ud83e\udd80"`),
			"nothing":  json.RawMessage(`null`),
			"list":     json.RawMessage(`[true,false,null,[],{},"",0]`),
			"title_fr": json.RawMessage(`"Le JSON canonique"`),
		},
	}
}

type goldenFiles map[string][]byte

func buildGolden(t *testing.T) (goldenManifest, goldenFiles) {
	key := goldenKey(t)
	pub := key.Public().(ed25519.PublicKey)
	nodeID := testNodeID(t, key)
	m := goldenManifest{
		Comment:     "MESH golden vectors: regenerate with go test ./protocol -run TestGolden -update; verify independently with testdata/interop/verify.mjs",
		Seed:        goldenSeed,
		PublicKey:   base64.StdEncoding.EncodeToString(pub),
		NodeID:      nodeID,
		Fingerprint: Fingerprint(pub),
	}
	files := goldenFiles{}
	add := func(name, kind string, doc any, canonical []byte, sig string) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		// Indented: an independent verifier must canonicalize, not compare.
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		files[name+".json"] = pretty.Bytes()
		files[name+".canonical"] = canonical
		m.Vectors = append(m.Vectors, goldenVector{Name: name, Kind: kind, Document: name + ".json", Canonical: name + ".canonical", Signature: sig})
	}

	s, err := Sign(key, goldenLesson(), Publication{Visibility: VisibilityPublic, PublishedAt: testNow.UnixMilli() - 1000, Topics: []string{"interop", "jcs"}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := SigningPayload(&s.Lesson, &s.Publication, s.Signature.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	// Encode, not json.Marshal: the document keeps "<&>" unescaped.
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	add("signed-lesson", "signedLesson", json.RawMessage(enc), payload, s.Signature.Sig)

	r, err := SignRevocation(key, "golden-01", ReasonOutdated, testNow)
	if err != nil {
		t.Fatal(err)
	}
	payload, err = r.signingPayload()
	if err != nil {
		t.Fatal(err)
	}
	add("revocation", "revocation", r, payload, r.Signature.Sig)

	d, err := SignIdentity(key, []string{"/ip4/198.51.100.7/tcp/4001", "/ip4/198.51.100.7/udp/4001/quic-v1", "/dns4/relay.example/tcp/443/wss/p2p-circuit"},
		[]string{CapabilityStore, CapabilitySearch, CapabilitySync, CapabilityFetch}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	payload, err = d.signingPayload()
	if err != nil {
		t.Fatal(err)
	}
	add("identity", "identity", d, payload, d.Signature)

	setSigner := func(name, seed string) {
		for i := range m.Vectors {
			if m.Vectors[i].Name == name {
				m.Vectors[i].SignerSeed = seed
			}
		}
	}
	m.Encryption = addGoldenEncrypted(t, key, add, setSigner, files)

	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files["vectors.json"] = append(mb, '\n')
	files["seed.hex"] = []byte(goldenSeed + "\n")
	return m, files
}

func TestGolden(t *testing.T) {
	m, files := buildGolden(t)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(goldenDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatalf("%v (run go test ./protocol -run TestGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what this code produces: the wire format changed (or, for the sealed keys "+
				"and shares, crypto/hpke or CIRCL now draw randomness differently under cryptotest.SetGlobalRandom).\n got %q\nwant %q", name, got, want)
		}
	}

	checkGoldenEncryption(t, m)

	// The checked-in documents decode, verify, and canonicalize to the
	// checked-in signed bytes.
	opts := VerifyOptions{Now: testNow}
	for _, v := range m.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			doc, _ := os.ReadFile(filepath.Join(goldenDir, v.Document))
			canonical, _ := os.ReadFile(filepath.Join(goldenDir, v.Canonical))
			var payload []byte
			var err error
			switch v.Kind {
			case "signedLesson":
				s, derr := DecodeSignedLesson(doc)
				if derr != nil {
					t.Fatal(derr)
				}
				err = Verify(s, opts)
				payload, _ = SigningPayload(&s.Lesson, &s.Publication, s.Signature.Timestamp)
			case "revocation":
				r, derr := DecodeRevocation(doc)
				if derr != nil {
					t.Fatal(derr)
				}
				err = VerifyRevocation(r, opts)
				payload, _ = r.signingPayload()
			case "identity":
				d, derr := DecodeIdentity(doc)
				if derr != nil {
					t.Fatal(derr)
				}
				err = VerifyIdentity(d, opts)
				payload, _ = d.signingPayload()
			case "encryptedLesson":
				e, derr := DecodeEncryptedLesson(doc)
				if derr != nil {
					t.Fatal(derr)
				}
				err = VerifyEncrypted(e, opts)
				payload, _ = EncryptedSigningPayload(e, e.Signature.Timestamp)
			case "keyPolicy":
				p, derr := DecodeKeyPolicy(doc)
				if derr != nil {
					t.Fatal(derr)
				}
				err = VerifyKeyPolicy(p, opts)
				payload, _ = p.signingPayload()
			case "keyRequest":
				var r SignedKeyRequest
				if derr := json.Unmarshal(doc, &r); derr != nil {
					t.Fatal(derr)
				}
				err = VerifyKeyRequest(&r, opts)
				payload = r.SigningPayload()
			default:
				t.Fatalf("unknown kind %s", v.Kind)
			}
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if !bytes.Equal(payload, canonical) {
				t.Fatalf("signed bytes\n got %s\nwant %s", payload, canonical)
			}
			if bytes.Equal(doc, canonical) {
				t.Fatal("the document is already canonical: it tests nothing")
			}
		})
	}
}
