package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// encrypt makes an encrypted lesson of p, published at publishedAt.
func (p peerKey) encrypt(t testing.TB, id, content, visibility string, publishedAt int64, topics ...string) *protocol.EncryptedLesson {
	t.Helper()
	l := &protocol.Lesson{ID: id, Type: protocol.TypeLesson, Title: id, Content: content, CreatedAt: publishedAt}
	el, err := protocol.EncryptLesson(protocol.NewLessonKey(), l, protocol.EncryptParams{NodeID: p.id, KeyID: protocol.NewKeyID()})
	if err != nil {
		t.Fatal(err)
	}
	el, err = protocol.SignEncrypted(p.priv, el, protocol.Publication{Visibility: visibility, PublishedAt: publishedAt, Topics: topics}, time.UnixMilli(publishedAt))
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func TestRemoteEncrypted(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openFed(t, dir, clk, newPeer(t, 9).id)
	pub := newPeer(t, 1)
	at := clk.MS()

	el := pub.encrypt(t, "secret", "SECRETWORDS here", protocol.VisibilityPublic, at, "lab")
	if err := s.PutRemoteEncrypted(ctx, el); err != nil {
		t.Fatal(err)
	}
	got, err := s.RemoteEncrypted(ctx, el.Key())
	if err != nil || got.Encryption.KeyID != el.Encryption.KeyID || got.Ciphertext != el.Ciphertext {
		t.Fatalf("RemoteEncrypted: %+v %v", got, err)
	}
	if _, err := s.Remote(ctx, el.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remote of an encrypted lesson: %v", err)
	}
	if v, ok := s.HeldVersion(ctx, el.Key()); !ok || v != at || !s.Encrypted(el.Key()) {
		t.Fatalf("HeldVersion %d %v, Encrypted %v", v, ok, s.Encrypted(el.Key()))
	}
	// Equal or older: stale. Not searchable: its words are in the ciphertext.
	if err := s.PutRemoteEncrypted(ctx, el); !errors.Is(err, ErrStale) {
		t.Fatalf("duplicate: %v", err)
	}
	if keys := searchKeys(t, s, Query{Text: "secretwords", Origin: OriginAll}); len(keys) != 0 {
		t.Fatalf("an encrypted lesson was searchable: %v", keys)
	}
	if got := logKeys(t, s, 0, LogFilter{Topics: []string{"lab"}}); len(got) != 1 || got[0] != "E "+el.Key()+"@"+itoa(at) {
		t.Fatalf("log: %v", got)
	}

	// A newer signed version supersedes it, and a newer encrypted one the signed one.
	sl := pub.sign(t, "secret", "secret", "now in the clear", protocol.VisibilityPublic, at+1, "lab")
	mustPutRemote(t, s, sl)
	if _, err := s.RemoteEncrypted(ctx, el.Key()); !errors.Is(err, ErrNotFound) || s.Encrypted(el.Key()) {
		t.Fatalf("the superseded encrypted copy is still there: %v", err)
	}
	el2 := pub.encrypt(t, "secret", "encrypted again", protocol.VisibilityPublic, at+2, "lab")
	if err := s.PutRemoteEncrypted(ctx, el2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remote(ctx, el.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the superseded signed copy is still there: %v", err)
	}
	if keys := searchKeys(t, s, Query{Text: "clear", Origin: OriginAll}); len(keys) != 0 {
		t.Fatalf("the superseded signed copy is still indexed: %v", keys)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 || got[0] != "E "+el.Key()+"@"+itoa(at+2) {
		t.Fatalf("log after supersession: %v", got)
	}

	// Across a restart.
	s.Close()
	s = openFed(t, dir, clk, newPeer(t, 9).id)
	if got, err := s.RemoteEncrypted(ctx, el.Key()); err != nil || got.Publication.PublishedAt != at+2 {
		t.Fatalf("after restart: %v", err)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 {
		t.Fatalf("log after restart: %v", got)
	}

	// Revoked: gone, refused, the tombstone in the log.
	if err := s.Revoke(ctx, pub.revoke(t, "secret", at+3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoteEncrypted(ctx, el.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked encrypted lesson still held: %v", err)
	}
	if err := s.PutRemoteEncrypted(ctx, pub.encrypt(t, "secret", "again", protocol.VisibilityPublic, at+4)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("replay after revocation: %v", err)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 || got[0] != "R "+el.Key() {
		t.Fatalf("log after revocation: %v", got)
	}

	// Unlisted: kept, not in the log. Own: refused. Malformed: refused.
	unl := pub.encrypt(t, "unl", "x", protocol.VisibilityUnlisted, at)
	if err := s.PutRemoteEncrypted(ctx, unl); err != nil {
		t.Fatal(err)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 {
		t.Fatalf("an unlisted lesson entered the log: %v", got)
	}
	if err := s.PutRemoteEncrypted(ctx, newPeer(t, 9).encrypt(t, "mine", "x", protocol.VisibilityPublic, at)); !errors.Is(err, ErrOwnLesson) {
		t.Fatalf("own lesson: %v", err)
	}
	bad := *pub.encrypt(t, "bad", "x", protocol.VisibilityPublic, at)
	bad.Encryption.Nonce = "AAAA"
	if err := s.PutRemoteEncrypted(ctx, &bad); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestEncryptedPublication(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	me := newPeer(t, 1)
	s := openFed(t, dir, clk, me.id)
	at := clk.MS()

	// Published signed first, then encrypted: the signed form is gone.
	sl := publish(t, s, me, "rec", "PLAINWORDS", protocol.VisibilityPublic, at, "lab")
	rec, _ := s.Get(ctx, "rec")
	el, err := protocol.EncryptLesson(protocol.NewLessonKey(), rec, protocol.EncryptParams{NodeID: me.id, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	el, _ = protocol.SignEncrypted(me.priv, el, protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: at + 1, Topics: []string{"lab"}}, time.UnixMilli(at+1))
	if err := s.PutEncryptedPublication(ctx, el); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publication(ctx, "rec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the signed publication survived the encrypted one: %v", err)
	}
	got, err := s.EncryptedPublication(ctx, "rec")
	if err != nil || got.Ciphertext != el.Ciphertext {
		t.Fatalf("EncryptedPublication: %v", err)
	}
	if r, _ := s.Get(ctx, "rec"); r.Visibility != protocol.VisibilityPublic {
		t.Fatalf("record visibility %q", r.Visibility)
	}
	if _, _, err := s.SharedPublication(ctx, rec); !errors.Is(err, ErrNotShared) {
		t.Fatalf("the record's words are still shared in the clear: %v", err)
	}
	if v, ok := s.HeldVersion(ctx, sl.Key()); !ok || v != at+1 || !s.Encrypted(sl.Key()) {
		t.Fatalf("HeldVersion %d %v", v, ok)
	}
	entries, _, _, err := s.Log(ctx, 0, 0, LogFilter{})
	if err != nil || len(entries) != 1 || entries[0].Encrypted == nil || entries[0].Lesson != nil {
		t.Fatalf("log: %+v %v", entries, err)
	}
	if bytes.Contains(mustJSONBytes(t, entries[0].Encrypted), []byte("PLAINWORDS")) {
		t.Fatal("plaintext in the logged lesson")
	}

	// Across a restart.
	s.Close()
	s = openFed(t, dir, clk, me.id)
	if _, err := s.EncryptedPublication(ctx, "rec"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if !s.Encrypted(sl.Key()) {
		t.Fatal("after restart, not known as encrypted")
	}

	// Made private, the publication goes; publishing signed again replaces it.
	rec, _ = s.Get(ctx, "rec")
	rec.Visibility = protocol.VisibilityPrivate
	mustPut(t, s, rec)
	if _, err := s.EncryptedPublication(ctx, "rec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("private record still published encrypted: %v", err)
	}
	if err := s.PutEncryptedPublication(ctx, el); err != nil {
		t.Fatal(err)
	}
	publish(t, s, me, "rec", "", protocol.VisibilityPublic, at+2)
	if _, err := s.EncryptedPublication(ctx, "rec"); !errors.Is(err, ErrNotFound) || s.Encrypted(sl.Key()) {
		t.Fatalf("a signed publication left the encrypted one: %v", err)
	}
	if err := s.PutEncryptedPublication(ctx, el); err != nil {
		t.Fatal(err)
	}
	// Deleted with its record; revoked: gone and refused.
	if _, err := s.Delete(ctx, "rec"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EncryptedPublication(ctx, "rec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted record still published: %v", err)
	}
	mustPut(t, s, &protocol.Lesson{ID: "rec", Type: protocol.TypeLesson, Title: "x"})
	if err := s.PutEncryptedPublication(ctx, el); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, me.revoke(t, "rec", at+3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EncryptedPublication(ctx, "rec"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked publication still there: %v", err)
	}
	if err := s.PutEncryptedPublication(ctx, el); !errors.Is(err, ErrRevoked) {
		t.Fatalf("publication after revocation: %v", err)
	}
}

func TestKeyMaterial(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	me := newPeer(t, 1)
	s := openFed(t, dir, clk, me.id)

	policy, err := protocol.SignKeyPolicy(me.priv, protocol.KeyPolicy{KeyID: "k1", LessonID: "rec", Access: protocol.AccessPublic}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := protocol.NewLessonKey()
	if err := s.PutLessonKey(ctx, &LessonKey{KeyID: "k1", LessonID: "rec", Key: key, Policy: policy, CreatedAt: clk.MS()}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LessonKey(ctx, "k1")
	if err != nil || !bytes.Equal(got.Key, key) || got.Policy.KeyID != "k1" {
		t.Fatalf("LessonKey: %+v %v", got, err)
	}
	if all, err := s.LessonKeys(ctx); err != nil || len(all) != 1 {
		t.Fatalf("LessonKeys: %d %v", len(all), err)
	}
	if err := s.PutLessonKey(ctx, &LessonKey{KeyID: "k2", LessonID: "rec", Key: key[:16], Policy: policy}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("a short key, another policy: %v", err)
	}

	// An escrow share of another node's key.
	other := newPeer(t, 2)
	ep := escrowShare(t, clk, me, other)
	if err := s.PutEscrowShare(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if p, err := s.EscrowShare(ctx, "k9"); err != nil || p.NodeID != other.id {
		t.Fatalf("EscrowShare: %v", err)
	}

	// Revoked: gone, and refused forever, across a restart.
	if err := s.RevokeKeys(ctx, RevokedKey{KeyID: "k1", LessonID: "rec", NodeID: me.id, RevokedAt: clk.MS(), Reason: KeyRevokedHard},
		RevokedKey{KeyID: "k9", LessonID: "theirs", NodeID: other.id, RevokedAt: clk.MS(), Reason: KeyRevokedHard}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openFed(t, dir, clk, me.id)
	if _, err := s.LessonKey(ctx, "k1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a revoked key is still held: %v", err)
	}
	if _, err := s.EscrowShare(ctx, "k9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a revoked share is still held: %v", err)
	}
	r, err := s.KeyRevoked(ctx, "k1")
	if err != nil || r.Reason != KeyRevokedHard || r.Key() != "rec@"+me.id {
		t.Fatalf("KeyRevoked: %+v %v", r, err)
	}
	if err := s.PutLessonKey(ctx, &LessonKey{KeyID: "k1", LessonID: "rec", Key: key, Policy: policy}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a revoked key came back: %v", err)
	}
	if err := s.PutEscrowShare(ctx, ep); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a revoked share came back: %v", err)
	}
	// Revoking again keeps the first record.
	if err := s.RevokeKeys(ctx, RevokedKey{KeyID: "k1", LessonID: "rec", NodeID: me.id, RevokedAt: clk.MS() + 5, Reason: KeyRetired}); err != nil {
		t.Fatal(err)
	}
	if r2, _ := s.KeyRevoked(ctx, "k1"); r2.RevokedAt != r.RevokedAt || r2.Reason != KeyRevokedHard {
		t.Fatalf("second revocation overwrote the first: %+v", r2)
	}
	if all, err := s.RevokedKeys(ctx); err != nil || len(all) != 2 {
		t.Fatalf("RevokedKeys: %v %v", all, err)
	}
	if _, err := s.KeyRevoked(ctx, "k2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("KeyRevoked of a key never revoked: %v", err)
	}
}

func mustJSONBytes(t testing.TB, el *protocol.EncryptedLesson) []byte {
	t.Helper()
	b, err := el.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An encrypted lesson whose signed publication carries expiresAt (a sensor
// reading held as ciphertext by a relay or a reader) is dropped at that
// time: gone from reads and the sync log at once, from disk at the next
// sweep, and refused when it arrives already expired; across a restart too.
func TestRemoteEncryptedExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openFed(t, dir, clk, newPeer(t, 9).id)
	pub := newPeer(t, 1)
	at := clk.MS()
	mk := func(id string, ttl int64) *protocol.EncryptedLesson {
		l := &protocol.Lesson{ID: id, Type: "reading", Title: id, Content: "reading", CreatedAt: at}
		el, err := protocol.EncryptLesson(protocol.NewLessonKey(), l, protocol.EncryptParams{NodeID: pub.id, KeyID: protocol.NewKeyID()})
		if err != nil {
			t.Fatal(err)
		}
		el, err = protocol.SignEncrypted(pub.priv, el, protocol.Publication{Visibility: protocol.VisibilityPublic, PublishedAt: at, ExpiresAt: at + ttl}, time.UnixMilli(at))
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	short, long := mk("r1", 60_000), mk("r2", 3_600_000)
	for _, el := range []*protocol.EncryptedLesson{short, long} {
		if err := s.PutRemoteEncrypted(ctx, el); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		n := 0
		if err := s.RemoteEncryptedOf(ctx, pub.id, 0, func(*protocol.EncryptedLesson) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("held %d, want 2", n)
	}
	clk.Add(61 * time.Second)
	if _, err := s.RemoteEncrypted(ctx, short.Key()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired reading is still read: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("held %d after the first expired, want 1", n)
	}
	if got := logKeys(t, s, 0, LogFilter{}); len(got) != 1 {
		t.Fatalf("sync log serves an expired reading: %v", got)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if _, err := s.ds.Get(ctx, encRemoteKey(pub.id, "r1")); err == nil {
		t.Fatal("the expired ciphertext is still on disk after the sweep")
	}
	// Already expired on arrival: refused.
	late := mk("r3", 1_000)
	if err := s.PutRemoteEncrypted(ctx, late); !errors.Is(err, ErrStale) {
		t.Fatalf("an expired reading was taken: %v", err)
	}
	// A restart keeps the expiry.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFed(t, dir, clk, newPeer(t, 9).id)
	clk.Add(time.Hour)
	if n := count(); n != 0 {
		t.Fatalf("after a restart, an expired reading is held: %d", n)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after restart: %d %v", n, err)
	}
}

// TestEscrowSharesListed: a store lists the escrow shares it holds, those
// it held before a restart too, and a store that never held one answers
// without reading the datastore but still fails once closed.
func TestEscrowSharesListed(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	me, other := newPeer(t, 1), newPeer(t, 2)
	s := openFed(t, dir, clk, me.id)
	if shares, err := s.EscrowShares(ctx); err != nil || len(shares) != 0 {
		t.Fatalf("a new store: %d shares, %v", len(shares), err)
	}
	if err := s.PutEscrowShare(ctx, escrowShare(t, clk, me, other)); err != nil {
		t.Fatal(err)
	}
	if shares, err := s.EscrowShares(ctx); err != nil || len(shares) != 1 || shares[0].KeyID != "k9" {
		t.Fatalf("after a put: %d shares, %v", len(shares), err)
	}
	s.Close()
	s = openFed(t, dir, clk, me.id)
	if shares, err := s.EscrowShares(ctx); err != nil || len(shares) != 1 || shares[0].KeyID != "k9" {
		t.Fatalf("after a restart: %d shares, %v", len(shares), err)
	}

	fresh := openFed(t, t.TempDir(), clk, me.id)
	fresh.Close()
	if _, err := fresh.EscrowShares(ctx); err == nil {
		t.Fatal("a closed store listed its escrow shares")
	}
}

// escrowShare is the policy of other's key k9 (lesson "theirs") with an
// escrow share for me and one for a third node.
func escrowShare(t *testing.T, clk *clock, me, other peerKey) *protocol.KeyPolicy {
	t.Helper()
	escrow, err := protocol.NewEscrow(protocol.NewLessonKey(), "k9", 2, []string{me.id, newPeer(t, 3).id})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := protocol.SignKeyPolicy(other.priv, protocol.KeyPolicy{KeyID: "k9", LessonID: "theirs", Access: protocol.AccessPublic, Escrow: escrow}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ep
}
