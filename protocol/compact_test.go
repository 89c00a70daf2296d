package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// compactSensor is a sensor key from a fixed seed (public: tests only).
func compactSensor(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

var (
	compactTime  = time.Date(2026, 12, 4, 18, 30, 0, 0, time.UTC)
	compactEpoch = bytes.Repeat([]byte{0x42}, LessonKeySize)
	compactThree = []CompactField{{0, 21.5}, {1, 64.2}, {2, 1013.25}}
	compactAnn   = AnnouncementParams{Seq: 1, Time: compactTime, Streams: []CompactStream{
		{Name: "basement/climate", Unit: "si", Fields: []string{"temp_c", "humidity", "pressure"}},
		{Name: "basement/power", Unit: "w", Fields: []string{"watts"}},
	}}
)

func TestCompactReadingRoundTrip(t *testing.T) {
	priv := compactSensor(0x5e)
	pub := priv.Public().(ed25519.PublicKey)
	for _, enc := range []bool{false, true} {
		p := ReadingParams{Stream: 0, Seq: 7, Time: compactTime, Fields: compactThree}
		if enc {
			p.Key, p.Epoch = compactEpoch, 3
		}
		b, err := EncodeReading(priv, p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeCompact(b)
		if err != nil {
			t.Fatalf("encrypted=%v: %v", enc, err)
		}
		if c.Kind != CompactReading || c.Sender != ShortIDOf(pub) || c.Seq != 7 || !c.Time.Equal(compactTime) || c.Encrypted != enc {
			t.Fatalf("encrypted=%v: decoded %+v", enc, c)
		}
		// Anyone (a gateway without the key) verifies the signature.
		if err := c.Verify(pub); err != nil {
			t.Fatalf("encrypted=%v: %v", enc, err)
		}
		if enc && (c.Fields != nil || c.Epoch != 3) {
			t.Fatalf("encrypted reading shows its fields or lost its epoch: %+v", c)
		}
		fs, err := c.Open(compactEpoch, pub)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 3 || fs[0] != compactThree[0] || fs[1] != compactThree[1] || fs[2] != compactThree[2] {
			t.Fatalf("encrypted=%v: fields %+v", enc, fs)
		}
	}
}

// TestCompactBudget checks the byte budget: a signed, encrypted
// three-field reading fits in 120 bytes, and every record in 233.
func TestCompactBudget(t *testing.T) {
	priv := compactSensor(0x5e)
	b, err := EncodeReading(priv, ReadingParams{Seq: 1 << 20, Time: compactTime, Fields: compactThree, Key: compactEpoch, Epoch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 120 {
		t.Errorf("an encrypted three-field reading is %d bytes, the budget is 120", len(b))
	}
	t.Logf("encrypted three-field reading: %d bytes", len(b))
	// The largest announcement the limits allow does not fit: the encoder
	// says so rather than sending what a radio would cut.
	big := AnnouncementParams{Seq: 1, Time: compactTime}
	for i := range MaxCompactStreams {
		big.Streams = append(big.Streams, CompactStream{Name: strings.Repeat(string(rune('a'+i)), MaxCompactNameLength), Fields: []string{"value"}})
	}
	if _, err := EncodeAnnouncement(priv, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an announcement over %d bytes: %v, want ErrTooLarge", MaxCompactSize, err)
	}
	if b, err := EncodeAnnouncement(priv, compactAnn); err != nil || len(b) > MaxCompactSize {
		t.Fatalf("announcement: %d bytes, %v", len(b), err)
	}
}

func TestCompactAnnouncementAndRevocation(t *testing.T) {
	priv := compactSensor(0x5e)
	pub := priv.Public().(ed25519.PublicKey)
	b, err := EncodeAnnouncement(priv, compactAnn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCompact(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyAnnouncement(); err != nil {
		t.Fatal(err)
	}
	if !c.PublicKey.Equal(pub) || c.Sender != ShortIDOf(pub) || len(c.Streams) != 2 || c.Streams[0].Fields[2] != "pressure" || c.Streams[1].Unit != "w" {
		t.Fatalf("announcement decoded as %+v", c)
	}
	// An announcement re-signed by another key for this key is refused.
	other := compactSensor(0x77)
	forged := append([]byte(nil), b...)
	copy(forged[len(forged)-ed25519.SignatureSize:], ed25519.Sign(other, compactSigned(b[:len(b)-ed25519.SignatureSize])))
	if c, err := DecodeCompact(forged); err != nil || !errors.Is(c.VerifyAnnouncement(), ErrInvalidSignature) {
		t.Fatalf("forged announcement: %v", err)
	}

	rb, err := EncodeCompactRevocation(priv, RevocationParams{Seq: 9, Time: compactTime, Target: 7, Reason: 1})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := DecodeCompact(rb)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Kind != CompactRevocation || rc.Target != 7 || rc.Reason != 1 || rc.Verify(pub) != nil {
		t.Fatalf("revocation decoded as %+v", rc)
	}
	if _, err := EncodeCompactRevocation(priv, RevocationParams{Seq: 9, Time: compactTime, Target: 9}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a revocation of itself: %v", err)
	}
}

// TestCompactTampering flips every bit of every record: each flip is
// refused by the decoder, the signature check or (encrypted) the GCM tag.
func TestCompactTampering(t *testing.T) {
	priv := compactSensor(0x5e)
	pub := priv.Public().(ed25519.PublicKey)
	recs := map[string][]byte{}
	var err error
	if recs["plain"], err = EncodeReading(priv, ReadingParams{Seq: 5, Time: compactTime, Fields: compactThree}); err != nil {
		t.Fatal(err)
	}
	if recs["encrypted"], err = EncodeReading(priv, ReadingParams{Seq: 6, Time: compactTime, Fields: compactThree, Key: compactEpoch, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if recs["announcement"], err = EncodeAnnouncement(priv, compactAnn); err != nil {
		t.Fatal(err)
	}
	if recs["revocation"], err = EncodeCompactRevocation(priv, RevocationParams{Seq: 8, Time: compactTime, Target: 5}); err != nil {
		t.Fatal(err)
	}
	for name, b := range recs {
		for i := range len(b) * 8 {
			x := append([]byte(nil), b...)
			x[i/8] ^= 1 << (i % 8)
			c, err := DecodeCompact(x)
			if err != nil {
				checkDecodeErr(t, err)
				continue
			}
			if c.Verify(pub) == nil {
				t.Fatalf("%s: bit %d flipped still verifies", name, i)
			}
		}
		// Every prefix is refused (a packet cut short), never a panic.
		for n := range len(b) {
			if c, err := DecodeCompact(b[:n]); err == nil && c.Verify(pub) == nil {
				t.Fatalf("%s: the first %d bytes verify", name, n)
			}
		}
	}
	// The ciphertext cannot be moved under another stream, epoch or
	// sequence number, nor opened with another key.
	c, _ := DecodeCompact(recs["encrypted"])
	if _, err := c.Open(bytes.Repeat([]byte{1}, LessonKeySize), pub); !errors.Is(err, ErrInvalid) {
		t.Fatalf("opened with a wrong key: %v", err)
	}
	moved := *c
	moved.Seq++
	if _, err := moved.Open(compactEpoch, pub); err == nil {
		t.Fatal("a ciphertext opened under another sequence number")
	}
}

func TestCompactDecodeErrors(t *testing.T) {
	priv := compactSensor(0x5e)
	good, _ := EncodeReading(priv, ReadingParams{Seq: 300, Time: compactTime, Fields: compactThree})
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"too large":  {make([]byte, MaxCompactSize+1), "the limit is 233"},
		"too short":  {good[:10], "too short"},
		"version 2":  {append([]byte{0x21}, good[1:]...), "version 2"},
		"kind 9":     {append([]byte{0x19}, good[1:]...), "unknown kind 9"},
		"flags":      {append(append(append([]byte{}, good[:5]...), 0x80), good[6:]...), "unknown flags"},
		"long seq":   {append(append(append([]byte{}, good[:7]...), 0xac, 0x82, 0x00), good[9:]...), "shortest form"},
		"left over":  {append(append(append([]byte{}, good[:len(good)-64]...), 0), good[len(good)-64:]...), "after the fields"},
		"empty mask": {append(append(append([]byte{}, good[:13]...), 0), good[len(good)-64:]...), "no fields"},
	}
	for name, tc := range cases {
		_, err := DecodeCompact(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
			continue
		}
		checkDecodeErr(t, err)
	}
	for name, p := range map[string]ReadingParams{
		"seq 0":       {Time: compactTime, Fields: compactThree},
		"no fields":   {Seq: 1, Time: compactTime},
		"index 8":     {Seq: 1, Time: compactTime, Fields: []CompactField{{8, 1}}},
		"twice":       {Seq: 1, Time: compactTime, Fields: []CompactField{{1, 1}, {1, 2}}},
		"short key":   {Seq: 1, Time: compactTime, Fields: compactThree, Key: []byte("short")},
		"before 1970": {Seq: 1, Time: time.Unix(-5, 0), Fields: compactThree},
	} {
		if _, err := EncodeReading(priv, p); !errors.Is(err, ErrInvalid) {
			t.Errorf("encode %s: %v, want ErrInvalid", name, err)
		}
	}
	bad := compactAnn
	bad.Streams = []CompactStream{{Name: "Basement", Fields: []string{"x"}}}
	if _, err := EncodeAnnouncement(priv, bad); err == nil || !strings.Contains(err.Error(), "lower-case") {
		t.Errorf("upper-case stream name: %v", err)
	}
}

func TestShortIDTable(t *testing.T) {
	a, b := compactSensor(1).Public().(ed25519.PublicKey), compactSensor(2).Public().(ed25519.PublicKey)
	tab := NewShortIDTable(2)
	if err := tab.Learn(a); err != nil {
		t.Fatal(err)
	}
	if err := tab.Learn(a); err != nil {
		t.Fatalf("learning a key again: %v", err)
	}
	// Plant b under a's short ID, as a colliding key would be.
	tab.keys[ShortIDOf(a)] = b
	if err := tab.Learn(a); !errors.Is(err, ErrShortIDCollision) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("a collision: %v", err)
	}
	tab.keys[ShortIDOf(a)] = a
	if err := tab.Learn(b); err != nil {
		t.Fatal(err)
	}
	if err := tab.Learn(compactSensor(3).Public().(ed25519.PublicKey)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a full table: %v", err)
	}
	if k, ok := tab.Lookup(ShortIDOf(b)); !ok || !k.Equal(b) {
		t.Fatal("lookup")
	}
}

func TestReplayWindow(t *testing.T) {
	var w ReplayWindow
	for _, s := range []uint32{5, 3, 4, 10, 9, 100, 37} {
		if err := w.Accept(s); err != nil {
			t.Fatalf("accept %d: %v", s, err)
		}
	}
	for _, s := range []uint32{0, 5, 3, 10, 100, 37, 36} {
		if err := w.Accept(s); !errors.Is(err, ErrReplay) {
			t.Errorf("replay of %d accepted (%v)", s, err)
		}
	}
	if err := w.Accept(38); err != nil {
		t.Fatalf("38, unseen and inside the window: %v", err)
	}
	if w.Highest != 100 {
		t.Fatalf("highest %d", w.Highest)
	}
	if err := w.Accept(100 + ReplayWindowSize + 5); err != nil {
		t.Fatal(err)
	}
	if err := w.Accept(99); !errors.Is(err, ErrReplay) {
		t.Fatalf("99 after the window moved on: %v", err)
	}
}

// compactGolden is testdata/golden/compact.json: each vector's inputs and
// its bytes, for implementations in other languages (a sensor's firmware).
type compactGolden struct {
	Comment string          `json:"comment"`
	Seed    string          `json:"seed"` // the sensor's Ed25519 seed, hex
	Public  string          `json:"publicKey"`
	ShortID string          `json:"shortId"`
	Vectors []compactVector `json:"vectors"`
}

type compactVector struct {
	Name     string `json:"name"`
	EpochKey string `json:"epochKey,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Hex      string `json:"hex"`
	Size     int    `json:"size"`
}

func TestCompactGolden(t *testing.T) {
	seed := bytes.Repeat([]byte{0x5e}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	g := compactGolden{
		Comment: "MESH compact records (protocol README, Compact records): regenerate with go test ./protocol -run TestCompactGolden -update. Time 2026-12-04T18:30:00Z; fields temp_c 21.5, humidity 64.2, pressure 1013.25.",
		Seed:    hex.EncodeToString(seed), Public: hex.EncodeToString(pub), ShortID: ShortIDOf(pub).String(),
	}
	add := func(name string, b []byte, err error, key, nonce []byte) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v := compactVector{Name: name, Hex: hex.EncodeToString(b), Size: len(b)}
		if key != nil {
			v.EpochKey, v.Nonce = hex.EncodeToString(key), hex.EncodeToString(nonce)
		}
		g.Vectors = append(g.Vectors, v)
	}
	b, err := EncodeAnnouncement(priv, compactAnn)
	add("announcement", b, err, nil, nil)
	b, err = EncodeReading(priv, ReadingParams{Seq: 2, Time: compactTime, Fields: compactThree})
	add("reading", b, err, nil, nil)
	b, err = EncodeReading(priv, ReadingParams{Seq: 3, Time: compactTime, Fields: compactThree, Key: compactEpoch, Epoch: 1})
	add("reading-encrypted", b, err, compactEpoch, CompactNonce(pub, 0, 1, 3))
	b, err = EncodeCompactRevocation(priv, RevocationParams{Seq: 4, Time: compactTime, Target: 2, Reason: 1})
	add("revocation", b, err, nil, nil)

	got, _ := json.MarshalIndent(g, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", "compact.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestCompactGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("compact records differ from %s: the byte layout changed (if on purpose, run with -update and document it)\n%s", path, got)
	}
	// The vectors decode and verify as written.
	for _, v := range g.Vectors {
		raw, _ := hex.DecodeString(v.Hex)
		c, err := DecodeCompact(raw)
		if err != nil || c.Verify(pub) != nil {
			t.Fatalf("vector %s: %v", v.Name, err)
		}
	}
}

func FuzzDecodeCompact(f *testing.F) {
	priv := compactSensor(0x5e)
	pub := priv.Public().(ed25519.PublicKey)
	for _, p := range []ReadingParams{
		{Seq: 1, Time: compactTime, Fields: compactThree},
		{Seq: 2, Time: compactTime, Fields: compactThree, Key: compactEpoch, Epoch: 9},
	} {
		b, _ := EncodeReading(priv, p)
		f.Add(b)
	}
	b, _ := EncodeAnnouncement(priv, compactAnn)
	f.Add(b)
	b, _ = EncodeCompactRevocation(priv, RevocationParams{Seq: 3, Time: compactTime, Target: 1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCompact(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if len(b) > MaxCompactSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if c.Verify(pub) == nil {
			// Whatever verifies re-encodes to the same bytes: a record
			// has one encoding (no malleability under the signature).
			var again []byte
			var err error
			switch c.Kind {
			case CompactReading:
				if c.Encrypted {
					fs, oerr := c.Open(compactEpoch, pub)
					if oerr != nil {
						return
					}
					again, err = EncodeReading(priv, ReadingParams{Stream: c.Stream, Seq: c.Seq, Time: c.Time, Fields: fs, Key: compactEpoch, Epoch: c.Epoch})
				} else {
					again, err = EncodeReading(priv, ReadingParams{Stream: c.Stream, Seq: c.Seq, Time: c.Time, Fields: c.Fields})
				}
			case CompactAnnouncement:
				again, err = EncodeAnnouncement(priv, AnnouncementParams{Seq: c.Seq, Time: c.Time, Streams: c.Streams})
			case CompactRevocation:
				again, err = EncodeCompactRevocation(priv, RevocationParams{Seq: c.Seq, Time: c.Time, Target: c.Target, Reason: c.Reason})
			}
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("a verified %s re-encodes differently (%v)", c.Kind, err)
			}
		}
		if c.Kind == CompactReading && c.Encrypted {
			c.Open(compactEpoch, pub) // must not panic
		}
	})
}

func TestVerifyCarried(t *testing.T) {
	priv := compactSensor(0x5e)
	pub := priv.Public().(ed25519.PublicKey)
	ann, _ := EncodeAnnouncement(priv, compactAnn)
	rd, _ := EncodeReading(priv, ReadingParams{Stream: 1, Seq: 4, Time: compactTime, Fields: []CompactField{{0, 230}}})
	c, err := VerifyCarried(rd, ann)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := NodeID(pub)
	if c.Sensor != id || c.Stream == nil || c.Stream.Name != "basement/power" || !c.Key.Equal(pub) {
		t.Fatalf("%+v", c)
	}
	if CarriedID(c.Record.Sender, c.Record.Seq) != "lora-"+ShortIDOf(pub).String()+"-4" {
		t.Fatal(CarriedID(c.Record.Sender, c.Record.Seq))
	}
	other := compactSensor(0x77)
	otherAnn, _ := EncodeAnnouncement(other, compactAnn)
	if _, err := VerifyCarried(rd, otherAnn); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("another sensor's announcement: %v", err)
	}
	bad, _ := EncodeReading(priv, ReadingParams{Stream: 5, Seq: 5, Time: compactTime, Fields: []CompactField{{0, 1}}})
	if _, err := VerifyCarried(bad, ann); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a stream the announcement does not name: %v", err)
	}
	tampered := append([]byte(nil), rd...)
	tampered[15] ^= 1
	if _, err := VerifyCarried(tampered, ann); err == nil {
		t.Fatal("a tampered reading verified")
	}
	if _, err := VerifyCarried(rd, rd); err == nil {
		t.Fatal("a reading taken for an announcement")
	}
}
