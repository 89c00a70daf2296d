package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	ds "github.com/ipfs/go-datastore"

	"github.com/meshprotocol/mesh/protocol"
)

// LogEntry is one entry of the sync log: a public lesson (Lesson set, or
// Encrypted for one published encrypted) or a tombstone (Revocation set).
type LogEntry struct {
	// Seq is the entry's sequence number: entries are numbered in the order
	// this node got them, and a later entry has a larger Seq.
	Seq        uint64
	Lesson     *protocol.SignedLesson
	Encrypted  *protocol.EncryptedLesson
	Revocation *protocol.Revocation
}

// LogFilter selects sync log entries. Empty fields do not restrict.
type LogFilter struct {
	// Since keeps the lessons with publication.publishedAt > Since and the
	// revocations with revokedAt > Since (Unix ms); 0 keeps all.
	Since int64
	// Topics keeps the lessons with any of these publication topics
	// (compared case-insensitively); revocations always pass.
	Topics []string
	// Publishers keeps the lessons and revocations of these node IDs.
	Publishers []string
}

// MaxLogPublishers caps LogFilter.Publishers.
const MaxLogPublishers = 1024

// Kinds of log entries, as held in memory.
const (
	kindPublication byte = 'p' // this node's publication; body in /pub/<id>
	kindRemote      byte = 'r' // a remote lesson; body in /remote/<nodeId>/<id>
	kindRevocation  byte = 't' // a tombstone; body in /tomb/<nodeId>/<id>
	// kindEncPublication is this node's encrypted publication; body in
	// /epub/<id>.
	kindEncPublication byte = 'q'
	// kindEncRemote is a remote encrypted lesson; body in
	// /eremote/<nodeId>/<id>.
	kindEncRemote byte = 'e'
)

var kindNames = map[byte]string{kindPublication: "publication", kindRemote: "remote", kindRevocation: "revocation",
	kindEncPublication: "encPublication", kindEncRemote: "encRemote"}

// logMeta is a log entry as the store keeps it in memory, and (without
// seq, which is in the key) as the value of /log/<seq>: enough to filter
// and to tell a superseded entry without reading the lesson.
type logMeta struct {
	seq    uint64
	kind   byte
	key    string // lessonId@nodeId
	at     int64  // publication.publishedAt or revokedAt
	topics []string
}

// logIndex is the sync log in memory: the entries in seq order, and the
// sequence numbers handed out to writes that have not finished. Guarded by
// Store.fedMu.
type logIndex struct {
	entries  []*logMeta
	last     uint64              // the last seq handed out
	inflight map[uint64]struct{} // handed out, write not finished
	// visible is the largest seq such that every write with a seq up to it
	// has finished: Log returns nothing beyond it, so that a reader never
	// skips an entry that commits after a later one.
	visible uint64
	dead    int // entries superseded, revoked or deleted since the last compaction
}

func logKey(seq uint64) ds.Key {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return ds.RawKey(nsLog + hex.EncodeToString(b[:]))
}

func parseLogKey(k string) (uint64, bool) {
	h, ok := strings.CutPrefix(k, nsLog)
	if !ok || len(h) != 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]), true
}

// storedLogValue is the JSON form of a log entry's value.
type storedLogValue struct {
	Kind   string   `json:"kind"`
	Key    string   `json:"key"`
	At     int64    `json:"at"`
	Topics []string `json:"topics,omitempty"`
}

// maxLogValueSize caps the stored value of a log entry.
const maxLogValueSize = 16 << 10

func encodeLogValue(m *logMeta) []byte {
	data, _ := json.Marshal(storedLogValue{Kind: kindNames[m.kind], Key: m.key, At: m.at, Topics: m.topics})
	return data
}

// decodeLogValue decodes and checks the value of a log entry (seq is left
// 0).
func decodeLogValue(data []byte) (*logMeta, error) {
	if len(data) > maxLogValueSize {
		return nil, fmt.Errorf("log entry is %d bytes, the limit is %d", len(data), maxLogValueSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v storedLogValue
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("log entry: %w", err)
	}
	if dec.More() {
		return nil, errors.New("log entry: data after the value")
	}
	m := &logMeta{key: v.Key, at: v.At, topics: v.Topics}
	for k, name := range kindNames {
		if v.Kind == name {
			m.kind = k
		}
	}
	if m.kind == 0 {
		return nil, fmt.Errorf("log entry: kind %q", truncate(v.Kind))
	}
	id, node, ok := splitKey(v.Key)
	if !ok || protocol.ValidateID(id) != nil || !safeNodeID(node) {
		return nil, fmt.Errorf("log entry: key %q", truncate(v.Key))
	}
	if v.At <= 0 {
		return nil, fmt.Errorf("log entry: time %d", v.At)
	}
	if len(v.Topics) > protocol.MaxTags || (m.kind == kindRevocation && v.Topics != nil) {
		return nil, errors.New("log entry: topics")
	}
	for _, t := range v.Topics {
		if t == "" || len(t) > protocol.MaxTagLength {
			return nil, errors.New("log entry: topics")
		}
	}
	return m, nil
}

// allocSeq hands out the next log sequence number. The write that got it
// must call settle, whether it committed or not.
func (s *Store) allocSeq() uint64 {
	s.fedMu.Lock()
	defer s.fedMu.Unlock()
	l := &s.fed.log
	l.last++
	if l.inflight == nil {
		l.inflight = map[uint64]struct{}{}
	}
	l.inflight[l.last] = struct{}{}
	return l.last
}

// settle applies the in-memory side of a write that committed (update, and
// meta, its log entry) or failed (both nil), and finishes seq (0: the write
// had none).
func (s *Store) settle(seq uint64, meta *logMeta, update func()) {
	s.fedMu.Lock()
	defer s.fedMu.Unlock()
	if update != nil {
		update()
	}
	l := &s.fed.log
	if meta != nil {
		i := len(l.entries)
		for i > 0 && l.entries[i-1].seq > meta.seq {
			i--
		}
		l.entries = slices.Insert(l.entries, i, meta)
	}
	if seq != 0 {
		delete(l.inflight, seq)
		l.visible = l.last
		for q := range l.inflight {
			if q <= l.visible {
				l.visible = q - 1
			}
		}
	}
	if l.dead > 1024 && 2*l.dead > len(l.entries) {
		kept := make([]*logMeta, 0, len(l.entries)-l.dead/2)
		for _, m := range l.entries {
			if s.liveLocked(m, 0) {
				kept = append(kept, m)
			}
		}
		l.entries, l.dead = kept, 0
	}
}

// liveLocked reports whether log entry m is the current entry of its key:
// not superseded, revoked or deleted, and (if now is not 0) not expired at
// now. s.fedMu is held.
func (s *Store) liveLocked(m *logMeta, now int64) bool {
	live := func(v version) bool {
		return v.seq == m.seq && (now == 0 || v.expiresAt == 0 || v.expiresAt > now)
	}
	switch m.kind {
	case kindRemote, kindEncRemote:
		v, ok := s.fed.remote[m.key]
		return ok && live(v)
	case kindPublication, kindEncPublication:
		id, node, _ := splitKey(m.key)
		v, ok := s.fed.own[id]
		return ok && v.nodeID == node && live(v)
	case kindRevocation:
		t, ok := s.fed.tombs[m.key]
		return ok && t.seq == m.seq
	}
	return false
}

func (f *LogFilter) match(m *logMeta) bool {
	if f.Since > 0 && m.at <= f.Since {
		return false
	}
	if len(f.Publishers) > 0 {
		_, node, _ := splitKey(m.key)
		if !slices.Contains(f.Publishers, node) {
			return false
		}
	}
	if len(f.Topics) > 0 && m.kind != kindRevocation {
		return slices.ContainsFunc(m.topics, func(t string) bool {
			return slices.ContainsFunc(f.Topics, func(w string) bool { return strings.EqualFold(t, w) })
		})
	}
	return true
}

// Log returns the sync log: every public lesson this node holds (its own
// public publications and the public remote lessons it cached, signed or
// encrypted) and every tombstone, in the order this node got them. Unlisted lessons are never in
// it, private records never.
//
// Log returns up to limit entries with Seq > after that match f, the seq to
// resume from (pass it as after to get the next page), and whether more
// matching entries remain. A lesson that was superseded, revoked, deleted
// or has expired since is left out: the newer entry or the tombstone comes
// later in the log. limit <= 0 or > protocol.MaxSyncPage means
// protocol.MaxSyncPage.
func (s *Store) Log(ctx context.Context, after uint64, limit int, f LogFilter) (entries []LogEntry, next uint64, more bool, err error) {
	if limit <= 0 || limit > protocol.MaxSyncPage {
		limit = protocol.MaxSyncPage
	}
	if f.Since < 0 {
		return nil, after, false, fmt.Errorf("store: log: %w", invalidf("since: want Unix milliseconds, not negative"))
	}
	if len(f.Topics) > protocol.MaxTags {
		return nil, after, false, fmt.Errorf("store: log: %w", invalidf("%d topics, the limit is %d", len(f.Topics), protocol.MaxTags))
	}
	if len(f.Publishers) > MaxLogPublishers {
		return nil, after, false, fmt.Errorf("store: log: %w", invalidf("%d publishers, the limit is %d", len(f.Publishers), MaxLogPublishers))
	}
	leave, err := s.beginRead()
	if err != nil {
		return nil, after, false, fmt.Errorf("store: log: %w", err)
	}
	defer leave()
	now := s.nowMS()

	next = after
	var picked []*logMeta
	s.fedMu.RLock()
	l := &s.fed.log
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].seq > after })
	for ; i < len(l.entries); i++ {
		m := l.entries[i]
		if m.seq > l.visible {
			break
		}
		if !f.match(m) || !s.liveLocked(m, now) {
			next = m.seq
			continue
		}
		if len(picked) == limit {
			more = true
			break
		}
		picked = append(picked, m)
		next = m.seq
	}
	s.fedMu.RUnlock()

	entries = make([]LogEntry, 0, len(picked))
	for _, m := range picked {
		e, err := s.logBody(ctx, m, now)
		if errors.Is(err, ErrNotFound) {
			continue // changed since we looked: a later entry tells
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, after, false, fmt.Errorf("store: log: %w", ctx.Err())
			}
			s.log.Warn("sync log entry unreadable", "seq", m.seq, "err", err)
			continue
		}
		entries = append(entries, e)
	}
	return entries, next, more, nil
}

// logBody reads the lesson or revocation of log entry m. ErrNotFound: it is
// no longer current.
func (s *Store) logBody(ctx context.Context, m *logMeta, now int64) (LogEntry, error) {
	e := LogEntry{Seq: m.seq}
	id, node, _ := splitKey(m.key)
	switch m.kind {
	case kindRevocation:
		rev, err := s.loadTomb(ctx, tombKey(node, id))
		if err != nil {
			return e, err
		}
		e.Revocation = rev
	case kindRemote:
		sl, err := s.loadRemote(ctx, m.key)
		if err != nil {
			return e, err
		}
		if sl.Publication.PublishedAt != m.at || expired(&sl.Lesson, now) {
			return e, ErrNotFound
		}
		e.Lesson = sl
	case kindEncRemote:
		el, err := s.loadRemoteEncrypted(ctx, m.key)
		if err != nil {
			return e, err
		}
		if el.Publication.PublishedAt != m.at {
			return e, ErrNotFound
		}
		e.Encrypted = el
	case kindEncPublication:
		el, err := s.loadEncryptedPublication(ctx, id)
		if err != nil {
			return e, err
		}
		if el.Key() != m.key || el.Publication.PublishedAt != m.at || el.Publication.Visibility != protocol.VisibilityPublic {
			return e, ErrNotFound
		}
		e.Encrypted = el
	case kindPublication:
		rec, err := s.load(ctx, id)
		if err != nil {
			return e, err
		}
		if expired(rec, now) {
			return e, ErrNotFound
		}
		data, err := s.ds.Get(ctx, pubKey(id))
		if errors.Is(err, ds.ErrNotFound) {
			return e, ErrNotFound
		}
		if err != nil {
			return e, err
		}
		sl, err := protocol.DecodeSignedLesson(data)
		if err != nil {
			return e, fmt.Errorf("stored publication is damaged: %w", err)
		}
		if sl.Key() != m.key || sl.Publication.PublishedAt != m.at || sl.Publication.Visibility != protocol.VisibilityPublic {
			return e, ErrNotFound
		}
		e.Lesson = sl
	default:
		return e, ErrNotFound
	}
	return e, nil
}

// LogEnd is the seq of the last entry of the sync log a reader can see
// now: Log(ctx, LogEnd(), ...) returns only what comes after this call.
func (s *Store) LogEnd() uint64 {
	s.fedMu.RLock()
	defer s.fedMu.RUnlock()
	return s.fed.log.visible
}
