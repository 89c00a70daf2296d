package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/internal/interop"
)

const interopDir = "testdata/interop"

// interopNode returns the path of node, or skips (see interop.Verifier).
func interopNode(t *testing.T) string {
	t.Helper()
	node, _ := interop.Verifier(t)
	return node
}

// runVerifier runs verify.mjs with args and stdin and returns its output
// and whether it exited 0.
func runVerifier(t *testing.T, node string, stdin []byte, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(node, append([]string{"verify.mjs"}, args...)...)
	cmd.Dir = interopDir
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running node: %v", err)
		}
		if cmd.ProcessState.ExitCode() == 2 {
			t.Fatalf("verify.mjs usage error: %s", out)
		}
	}
	return string(out), err == nil
}

func TestInteropNode(t *testing.T) {
	node := interopNode(t)

	t.Run("golden vectors", func(t *testing.T) {
		out, ok := runVerifier(t, node, nil)
		if !ok {
			t.Fatalf("the independent verifier rejects the golden vectors:\n%s", out)
		}
		t.Logf("%s", out)
	})

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x6d657368))

	t.Run("fresh signed lessons with random extra fields", func(t *testing.T) {
		const n = 40
		var good, bad bytes.Buffer
		for i := range n {
			key := ed25519.NewKeyFromSeed(randBytes(rng, 32))
			l := &Lesson{ID: "fresh-" + strconv.Itoa(i), Type: TypeLesson, Title: randString(rng), Content: randString(rng),
				Tags: []string{"t" + strconv.Itoa(i)}, CreatedAt: testNow.UnixMilli(), Extra: map[string]json.RawMessage{}}
			for range 1 + rng.IntN(8) {
				k := randString(rng)
				if _, known := knownFields[k]; known || k == "" {
					continue
				}
				l.Extra[k] = json.RawMessage(randJSON(rng, 3))
			}
			s, err := Sign(key, l, Publication{Visibility: VisibilityPublic, Topics: []string{"interop"}}, testNow)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			// Our own decoder takes it back, then it goes out as JSON Lines.
			d, err := DecodeSignedLesson(mustEncode(t, s))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			good.Write(mustEncode(t, d))
			good.WriteByte('\n')
			// Tampered copies must fail there too.
			d.Lesson.Content += "."
			bad.Write(mustEncode(t, d))
			bad.WriteByte('\n')
		}
		if out, ok := runVerifier(t, node, good.Bytes(), "--jsonl", "--kind", "signedLesson"); !ok {
			t.Fatalf("the independent verifier rejects lessons we signed (seed %d):\n%s\n%s", seed, out, good.Bytes())
		}
		out, ok := runVerifier(t, node, bad.Bytes(), "--jsonl")
		if ok || strings.Count(out, "FAIL line") != n {
			t.Fatalf("the independent verifier accepts tampered lessons:\n%s", out)
		}
	})

	t.Run("fresh revocation and identity", func(t *testing.T) {
		key := ed25519.NewKeyFromSeed(randBytes(rng, 32))
		r, err := SignRevocation(key, "fresh-1", ReasonIncorrect, testNow)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := json.Marshal(r)
		d, err := SignIdentity(key, []string{"/ip6/::1/tcp/4001"}, nil, testNow)
		if err != nil {
			t.Fatal(err)
		}
		db, _ := json.Marshal(d)
		if out, ok := runVerifier(t, node, append(append(rb, '\n'), db...), "--jsonl"); !ok {
			t.Fatalf("rejected:\n%s\n%s\n%s", out, rb, db)
		}
		// A revocation signed by another key for this node's lesson.
		other := ed25519.NewKeyFromSeed(randBytes(rng, 32))
		forged, _ := SignRevocation(other, "fresh-1", "", testNow)
		forged.NodeID = r.NodeID
		fb, _ := json.Marshal(forged)
		if out, ok := runVerifier(t, node, fb, "--stdin"); ok || !strings.Contains(out, "not the peer ID") {
			t.Fatalf("forged revocation: %s", out)
		}
	})
}

// TestInteropNodeEncrypted runs the independent verifier over freshly made
// encrypted lessons, key policies and signed key requests: it checks their
// signatures (not decryption), and must refuse tampered copies.
func TestInteropNodeEncrypted(t *testing.T) {
	node := interopNode(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b657973))

	const n = 12
	var good, bad bytes.Buffer
	line := func(buf *bytes.Buffer, b []byte) {
		buf.Write(b)
		buf.WriteByte('\n')
	}
	for i := range n {
		key := ed25519.NewKeyFromSeed(randBytes(rng, 32))
		nodeID := testNodeID(t, key)
		l := &Lesson{ID: "enc-" + strconv.Itoa(i), Type: TypeLesson, Title: randString(rng), Content: randString(rng),
			CreatedAt: testNow.UnixMilli(), Extra: map[string]json.RawMessage{}}
		for range 1 + rng.IntN(4) {
			k := randString(rng)
			if _, known := knownFields[k]; known || k == "" {
				continue
			}
			l.Extra[k] = json.RawMessage(randJSON(rng, 3))
		}
		el, err := EncryptLesson(randBytes(rng, LessonKeySize), l, EncryptParams{NodeID: nodeID, KeyID: NewKeyID()})
		if err != nil {
			t.Fatal(err)
		}
		el, err = SignEncrypted(key, el, Publication{Visibility: VisibilityPublic, Topics: []string{"interop"}}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := el.Encode()
		line(&good, enc)
		tampered := *el
		tampered.Encryption.KeyEndpoint += "x"
		enc, _ = tampered.Encode()
		line(&bad, enc)

		var allowed []string
		for range 1 + rng.IntN(3) {
			allowed = append(allowed, testNodeID(t, ed25519.NewKeyFromSeed(randBytes(rng, 32))))
		}
		p, err := SignKeyPolicy(key, KeyPolicy{KeyID: el.Encryption.KeyID, LessonID: l.ID, Access: AccessExplicit, AllowedNodes: allowed}, testNow)
		if i%2 == 1 {
			p, err = SignKeyPolicy(key, KeyPolicy{KeyID: el.Encryption.KeyID, LessonID: l.ID, Access: AccessTrusted,
				MinTrustScore: float64(rng.IntN(1000)) / 999, ExpiresAt: testNow.Add(time.Hour).UnixMilli()}, testNow)
		}
		if err != nil {
			t.Fatal(err)
		}
		pb, _ := p.Encode()
		line(&good, pb)
		tp := *p
		tp.Access, tp.MinTrustScore, tp.AllowedNodes = AccessPublic, 0, nil
		pb, _ = tp.Encode()
		line(&bad, pb)

		r, err := SignKeyRequest(key, el.Encryption.KeyID, testNow)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := json.Marshal(r)
		line(&good, rb)
		tr := *r
		tr.KeyID += "x"
		rb, _ = json.Marshal(&tr)
		line(&bad, rb)
	}
	if out, ok := runVerifier(t, node, good.Bytes(), "--jsonl"); !ok {
		t.Fatalf("the independent verifier rejects what we signed (seed %d):\n%s\n%s", seed, out, good.Bytes())
	}
	out, ok := runVerifier(t, node, bad.Bytes(), "--jsonl")
	if ok || strings.Count(out, "FAIL line") != 3*n {
		t.Fatalf("the independent verifier accepts tampered records:\n%s", out)
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// randString draws from characters that trip canonicalizers: quotes,
// backslashes, control characters, U+2028, non-BMP (surrogate pairs in
// UTF-16, so they sort differently than in UTF-8), and the U+FB01 ligature.
func randString(rng *rand.Rand) string {
	pool := []rune("aZ09 _-\"\\/\n\t\u0000\u001f\u007f<&>é€ﬁ\u2028\u2029日🦀😀\U0010FFFF")
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteRune(pool[rng.IntN(len(pool))])
	}
	return b.String()
}

// randJSON writes a random JSON value, numbers spelled in many ways.
func randJSON(rng *rand.Rand, depth int) string {
	n := rng.IntN(9)
	if depth == 0 && n >= 7 {
		n = rng.IntN(7)
	}
	switch n {
	case 0:
		return "null"
	case 1:
		return strconv.FormatBool(rng.IntN(2) == 0)
	case 2:
		return string(marshalString(randString(rng)))
	case 3:
		return strconv.FormatInt(rng.Int64N(1<<53)-1<<52, 10)
	case 4, 5:
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = rng.Float64()
		}
		formats := []byte{'e', 'E', 'f', 'g'}
		s := strconv.FormatFloat(f, formats[rng.IntN(len(formats))], -1, 64)
		if strings.ContainsAny(s, "eE") || len(s) < 400 {
			return s
		}
		return strconv.FormatFloat(f, 'e', -1, 64)
	case 6:
		return fmt.Sprintf("%de%d", rng.IntN(100), rng.IntN(40)-20)
	case 7:
		var parts []string
		for range rng.IntN(4) {
			parts = append(parts, randJSON(rng, depth-1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		seen := map[string]bool{}
		var parts []string
		for range rng.IntN(4) {
			k := randString(rng)
			if seen[k] {
				continue
			}
			seen[k] = true
			parts = append(parts, string(marshalString(k))+":"+randJSON(rng, depth-1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}
