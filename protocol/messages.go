package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Message types, the "type" field of every federation message.
const (
	MsgPublication   = "publication"
	MsgRevocation    = "revocation"
	MsgFetch         = "fetch"
	MsgFetchResponse = "fetchResponse"
	MsgSyncRequest   = "syncRequest"
	MsgSyncResponse  = "syncResponse"
)

// Size caps of federation messages.
const (
	// MaxAnnouncementSize caps one GossipSub message: the larger of a
	// SignedLesson and an EncryptedLesson, and the envelope.
	MaxAnnouncementSize = maxPublishedSize + 1<<10
	// MaxFetchRequestSize caps a fetch request.
	MaxFetchRequestSize = 1 << 10
	// MaxFetchResponseSize caps a fetch answer.
	MaxFetchResponseSize = maxPublishedSize + MaxRevocationSize + 1<<10
	// MaxSyncRequestSize caps a sync request.
	MaxSyncRequestSize = 16 << 10
	// MaxSyncResponseSize caps one page of a sync answer.
	MaxSyncResponseSize = 8 << 20
	// MaxSyncPage caps the lessons plus revocations in one sync page.
	MaxSyncPage = 256
)

// maxPublishedSize is the larger of the two forms a publication travels
// in: a SignedLesson or an EncryptedLesson.
const maxPublishedSize = max(MaxSignedLessonSize, MaxEncryptedLessonSize)

// Announcement is what travels on a GossipSub topic: a publication or a
// revocation, never both. A publication is signed in the clear
// (SignedLesson) or encrypted (EncryptedLesson), exactly one of them:
//
//	{"type":"publication","signedLesson":{…}}
//	{"type":"publication","encryptedLesson":{…}}
//	{"type":"revocation","revocation":{…}}
type Announcement struct {
	Type            string           `json:"type"` // MsgPublication or MsgRevocation
	SignedLesson    *SignedLesson    `json:"signedLesson,omitempty"`
	EncryptedLesson *EncryptedLesson `json:"encryptedLesson,omitempty"`
	Revocation      *Revocation      `json:"revocation,omitempty"`
}

// Encode returns the JSON encoding of a.
func (a *Announcement) Encode() ([]byte, error) { return encodeJSON(a) }

// DecodeAnnouncement decodes a GossipSub message: size cap, I-JSON, exact
// field names, and the member that goes with its type. It does not verify.
func DecodeAnnouncement(data []byte) (*Announcement, error) {
	if len(data) > MaxAnnouncementSize {
		return nil, fmt.Errorf("announcement: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxAnnouncementSize)
	}
	o, err := parseObject("announcement", data)
	if err != nil {
		return nil, err
	}
	typ, err := o.str("type")
	if err != nil {
		return nil, err
	}
	a := &Announcement{Type: typ}
	switch typ {
	case MsgPublication:
		if err := o.only([]string{"type"}, "signedLesson", "encryptedLesson"); err != nil {
			return nil, err
		}
		if o.has("signedLesson") == o.has("encryptedLesson") {
			return nil, invalidf("announcement: a publication carries exactly one of signedLesson and encryptedLesson")
		}
		if err := decodePublished(o, "announcement", &a.SignedLesson, &a.EncryptedLesson); err != nil {
			return nil, err
		}
	case MsgRevocation:
		if err := o.only([]string{"type", "revocation"}); err != nil {
			return nil, err
		}
		a.Revocation = new(Revocation)
		if err := a.Revocation.UnmarshalJSON(o.get("revocation")); err != nil {
			return nil, fmt.Errorf("announcement: %w", err)
		}
	default:
		return nil, invalidf("announcement: type %q: want %s or %s", truncate(typ), MsgPublication, MsgRevocation)
	}
	return a, nil
}

// decodePublished decodes o's signedLesson or encryptedLesson member,
// whichever it has, into sl or el.
func decodePublished(o object, what string, sl **SignedLesson, el **EncryptedLesson) error {
	if o.has("signedLesson") {
		*sl = new(SignedLesson)
		if err := (*sl).unmarshalChecked(o.get("signedLesson")); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if o.has("encryptedLesson") {
		*el = new(EncryptedLesson)
		if err := (*el).UnmarshalJSON(o.get("encryptedLesson")); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// FetchRequest asks a node for one lesson by its exact key
// (ProtocolFetch). Only unlisted and public lessons are ever answered.
type FetchRequest struct {
	Type string `json:"type"` // MsgFetch
	Key  string `json:"key"`  // lessonId@nodeId
}

// Encode returns the JSON encoding of r.
func (r *FetchRequest) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeFetchRequest decodes and checks a fetch request.
func DecodeFetchRequest(data []byte) (*FetchRequest, error) {
	if len(data) > MaxFetchRequestSize {
		return nil, fmt.Errorf("fetch request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxFetchRequestSize)
	}
	o, err := parseObject("fetch request", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "key"}); err != nil {
		return nil, err
	}
	r := &FetchRequest{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgFetch {
		return nil, invalidf("fetch request: type %q, want %q", truncate(r.Type), MsgFetch)
	}
	if r.Key, err = o.str("key"); err != nil {
		return nil, err
	}
	if _, _, err := ParseKey(r.Key); err != nil {
		return nil, fmt.Errorf("fetch request: %w", err)
	}
	return r, nil
}

// FetchResponse answers a FetchRequest: the lesson (signed, or encrypted),
// or the revocation that took it back, or an error (UNKNOWN_LESSON for
// anything not fetchable).
type FetchResponse struct {
	Type            string           `json:"type"` // MsgFetchResponse
	SignedLesson    *SignedLesson    `json:"signedLesson,omitempty"`
	EncryptedLesson *EncryptedLesson `json:"encryptedLesson,omitempty"`
	Revocation      *Revocation      `json:"revocation,omitempty"`
	Error           *Error           `json:"error,omitempty"`
}

// Encode returns the JSON encoding of r.
func (r *FetchResponse) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeFetchResponse decodes a fetch answer. It does not verify.
func DecodeFetchResponse(data []byte) (*FetchResponse, error) {
	if len(data) > MaxFetchResponseSize {
		return nil, fmt.Errorf("fetch response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxFetchResponseSize)
	}
	o, err := parseObject("fetch response", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "signedLesson", "encryptedLesson", "revocation", "error"); err != nil {
		return nil, err
	}
	r := &FetchResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgFetchResponse {
		return nil, invalidf("fetch response: type %q, want %q", truncate(r.Type), MsgFetchResponse)
	}
	if o.has("signedLesson") && o.has("encryptedLesson") {
		return nil, invalidf("fetch response: carries both a signedLesson and an encryptedLesson")
	}
	if err := decodePublished(o, "fetch response", &r.SignedLesson, &r.EncryptedLesson); err != nil {
		return nil, err
	}
	if o.has("revocation") {
		r.Revocation = new(Revocation)
		if err := r.Revocation.UnmarshalJSON(o.get("revocation")); err != nil {
			return nil, fmt.Errorf("fetch response: %w", err)
		}
	}
	if o.has("error") {
		r.Error = new(Error)
		if err := decodeError(o.get("error"), r.Error); err != nil {
			return nil, err
		}
	}
	if r.SignedLesson == nil && r.EncryptedLesson == nil && r.Revocation == nil && r.Error == nil {
		return nil, invalidf("fetch response: carries no lesson, revocation or error")
	}
	return r, nil
}

// SyncRequest asks a peer for what it has published or relayed since a
// checkpoint (ProtocolSync). Checkpoint is opaque: the value of the last
// page's SyncResponse.Checkpoint, or "" to start from Since.
type SyncRequest struct {
	Type       string   `json:"type"`                 // MsgSyncRequest
	Since      int64    `json:"since,omitempty"`      // Unix ms: publications after this time
	Topics     []string `json:"topics,omitempty"`     // only lessons on these topics
	Publishers []string `json:"publishers,omitempty"` // only lessons of these node IDs
	Checkpoint string   `json:"checkpoint,omitempty"`
	Limit      int      `json:"limit,omitempty"` // page size, at most MaxSyncPage
}

// Encode returns the JSON encoding of r.
func (r *SyncRequest) Encode() ([]byte, error) { return encodeJSON(r) }

// DecodeSyncRequest decodes and checks a sync request.
func DecodeSyncRequest(data []byte) (*SyncRequest, error) {
	if len(data) > MaxSyncRequestSize {
		return nil, fmt.Errorf("sync request: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSyncRequestSize)
	}
	o, err := parseObject("sync request", data)
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type"}, "since", "topics", "publishers", "checkpoint", "limit"); err != nil {
		return nil, err
	}
	r := &SyncRequest{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgSyncRequest {
		return nil, invalidf("sync request: type %q, want %q", truncate(r.Type), MsgSyncRequest)
	}
	if o.has("since") {
		if r.Since, err = o.int("since"); err != nil {
			return nil, err
		}
	}
	if o.has("topics") {
		if r.Topics, err = o.strs("topics"); err != nil {
			return nil, err
		}
	}
	if o.has("publishers") {
		if r.Publishers, err = o.strs("publishers"); err != nil {
			return nil, err
		}
	}
	if o.has("checkpoint") {
		if r.Checkpoint, err = o.str("checkpoint"); err != nil {
			return nil, err
		}
	}
	if o.has("limit") {
		n, err := o.int("limit")
		if err != nil {
			return nil, err
		}
		r.Limit = int(n)
	}
	if r.Since < 0 || r.Limit < 0 || len(r.Topics) > MaxTags || len(r.Publishers) > MaxTags || len(r.Checkpoint) > 256 {
		return nil, invalidf("sync request: since and limit must not be negative; at most %d topics and publishers; checkpoint at most 256 bytes", MaxTags)
	}
	return r, nil
}

// SyncResponse is one page of a sync answer. EncryptedLessons is optional
// on the wire (absent when empty, so a page without them is what older
// nodes sent); the page's limit counts all three lists together.
type SyncResponse struct {
	Type             string             `json:"type"` // MsgSyncResponse
	Lessons          []*SignedLesson    `json:"lessons"`
	EncryptedLessons []*EncryptedLesson `json:"encryptedLessons,omitempty"`
	Revocations      []*Revocation      `json:"revocations"`
	Checkpoint       string             `json:"checkpoint"`
	HasMore          bool               `json:"hasMore"`
	// Invalid counts the items of a decoded page that were left out
	// because they did not decode (a record nested too deep, say): one bad
	// item does not cost the rest of the page. Never sent.
	Invalid int `json:"-"`
}

// Encode returns the JSON encoding of r; nil lists encode as [].
func (r *SyncResponse) Encode() ([]byte, error) {
	c := *r
	if c.Lessons == nil {
		c.Lessons = []*SignedLesson{}
	}
	if c.Revocations == nil {
		c.Revocations = []*Revocation{}
	}
	return encodeJSON(&c)
}

// DecodeSyncResponse decodes one sync page. It does not verify the records.
// The envelope must be well formed; an item that does not decode (not
// I-JSON, nested deeper than MaxRecordDepth, a bad field) is left out and
// counted in Invalid, so that one bad record does not stall a sync.
func DecodeSyncResponse(data []byte) (*SyncResponse, error) {
	if len(data) > MaxSyncResponseSize {
		return nil, fmt.Errorf("sync response: %w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSyncResponseSize)
	}
	o, err := parseEnvelope("sync response", data, "type", "checkpoint", "hasMore")
	if err != nil {
		return nil, err
	}
	if err := o.only([]string{"type", "lessons", "revocations", "checkpoint", "hasMore"}, "encryptedLessons"); err != nil {
		return nil, err
	}
	r := &SyncResponse{}
	if r.Type, err = o.str("type"); err != nil {
		return nil, err
	}
	if r.Type != MsgSyncResponse {
		return nil, invalidf("sync response: type %q, want %q", truncate(r.Type), MsgSyncResponse)
	}
	lessons, isArray := splitArray(o.get("lessons"), MaxSyncPage+1)
	if !isArray {
		return nil, invalidf("sync response.lessons: want an array")
	}
	revs, isArray := splitArray(o.get("revocations"), MaxSyncPage+1)
	if !isArray {
		return nil, invalidf("sync response.revocations: want an array")
	}
	var encrypted [][]byte
	if raw, ok := o.lookup("encryptedLessons"); ok {
		if encrypted, isArray = splitArray(raw, MaxSyncPage+1); !isArray {
			return nil, invalidf("sync response.encryptedLessons: want an array")
		}
		if len(encrypted) == 0 {
			return nil, invalidf("sync response.encryptedLessons: empty: omit the field instead")
		}
	}
	if n := len(lessons) + len(encrypted) + len(revs); n > MaxSyncPage {
		return nil, fmt.Errorf("sync response: %w: %d records in one page, the limit is %d", ErrTooLarge, n, MaxSyncPage)
	}
	for _, raw := range lessons {
		sl := new(SignedLesson)
		if err := sl.UnmarshalJSON(raw); err != nil {
			r.Invalid++
			continue
		}
		r.Lessons = append(r.Lessons, sl)
	}
	for _, raw := range encrypted {
		el := new(EncryptedLesson)
		if err := el.UnmarshalJSON(raw); err != nil {
			r.Invalid++
			continue
		}
		r.EncryptedLessons = append(r.EncryptedLessons, el)
	}
	for _, raw := range revs {
		rv := new(Revocation)
		if err := rv.UnmarshalJSON(raw); err != nil {
			r.Invalid++
			continue
		}
		r.Revocations = append(r.Revocations, rv)
	}
	if r.Checkpoint, err = o.str("checkpoint"); err != nil {
		return nil, err
	}
	switch string(bytes.TrimSpace(o.get("hasMore"))) {
	case "true":
		r.HasMore = true
	case "false":
	default:
		return nil, invalidf("sync response.hasMore: want true or false")
	}
	return r, nil
}

// parseEnvelope is parseObject for a message that carries a list of
// items, each decoded (and, if bad, left out) on its own: it checks the
// top-level object (member names, no duplicates) and the members named in
// checked as I-JSON, but not the others, which the caller splits with
// splitArray and decodes item by item with a decoder that checks its
// input. An item nested too deep thus costs that item, not the message.
func parseEnvelope(path string, data []byte, checked ...string) (object, error) {
	ms, isObject, err := splitIJSONObject(data)
	if err != nil {
		if !utf8.Valid(data) {
			return object{}, invalidf("%s: not valid UTF-8", path)
		}
		return object{}, prefixErr(path, err)
	}
	for _, m := range ms {
		if contains(checked, m.name) {
			if err := checkIJSONDepth(m.value, 1); err != nil {
				return object{}, prefixErr(path+"."+m.name, err)
			}
		}
	}
	return newObject(path, ms, isObject)
}

func decodeError(data []byte, e *Error) error {
	o, err := parseObject("error", data)
	if err != nil {
		return err
	}
	if err := o.only([]string{"code", "message"}, "error"); err != nil {
		return err
	}
	code, err := o.str("code")
	if err != nil {
		return err
	}
	if e.Message, err = o.str("message"); err != nil {
		return err
	}
	e.Error, e.Code = true, Code(code)
	return nil
}

func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
