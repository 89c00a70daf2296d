package webui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshprotocol/mesh/internal/sse"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
	"github.com/meshprotocol/mesh/trust"
)

// templates: the layout and one file per page.
var pageNames = []string{"node", "memories", "memory", "search", "trust", "following", "watches", "sensors", "error"}

func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.New(name).Funcs(funcs)
		t = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
		out[name] = t
	}
	return out
}

var funcs = template.FuncMap{
	"short": shortID,
	"when": func(ms int64) string {
		if ms == 0 {
			return "—"
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"ago":   ago,
	"join":  strings.Join,
	"pct":   func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
	"path":  func(s string) string { return url.PathEscape(s) },
	"lower": strings.ToLower,
	"ttl": func(ms int64) string {
		d := time.Duration(ms) * time.Millisecond
		if d%(24*time.Hour) == 0 && d > 0 {
			return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " d"
		}
		return d.String()
	},
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}

func ago(ms int64) string {
	if ms == 0 {
		return "never"
	}
	d := time.Since(time.UnixMilli(ms))
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days ago"
}

// ---- Node -------------------------------------------------------------------

type syncReport struct {
	At    int64
	Peers []api.SyncProgress
	Err   string
}

type nodeData struct {
	Info    *api.Info
	Status  *api.Status
	Net     *api.NetworkStatus
	NetErr  string
	Peers   []peerRow
	DHT     *api.DHTStatus
	Sync    *syncReport
	Reach   string
	Records int
}

type peerRow struct {
	api.PeerInfo
	Kind string // direct, relayed, hole-punched
	Note string
}

func (s *Server) nodePage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Node", "node"
	d := &nodeData{}
	var err error
	if d.Info, err = s.api.Info(ctx); err != nil {
		return "", err
	}
	if d.Status, err = s.api.Status(ctx); err != nil {
		return "", err
	}
	if d.Net, err = s.api.Network(ctx); err != nil {
		d.NetErr = err.Error()
	} else {
		switch {
		case len(d.Net.Reservations) > 0 && d.Net.Reachability != "public":
			d.Reach = "relayed (behind NAT, reachable through " + strconv.Itoa(len(d.Net.Reservations)) + " relay(s))"
		case d.Net.Reachability == "public":
			d.Reach = "public"
		case d.Net.Reachability == "private":
			d.Reach = "behind NAT"
		default:
			d.Reach = "unknown (not yet determined)"
		}
	}
	notes := trustNotes(ctx, s.api)
	peers, _ := s.api.Peers(ctx)
	for _, p := range peers {
		row := peerRow{PeerInfo: p, Kind: "direct", Note: notes[p.ID]}
		switch {
		case p.Relayed:
			row.Kind = "relayed"
		case p.HolePunched:
			row.Kind = "hole-punched"
		}
		d.Peers = append(d.Peers, row)
	}
	d.DHT, _ = s.api.DHTStatus(ctx)
	s.mu.Lock()
	d.Sync = s.lastSync
	s.mu.Unlock()
	v.Data = d
	return "node", nil
}

// trustNotes maps node IDs to their trust notes (the names people gave).
func trustNotes(ctx context.Context, a api.API) map[string]string {
	out := map[string]string{}
	list, _ := a.TrustList(ctx)
	for _, e := range list {
		if e.Note != "" {
			out[e.NodeID] = e.Note
		}
	}
	return out
}

func (s *Server) doSync(r *http.Request) (string, string, error) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	rep := &syncReport{At: time.Now().UnixMilli()}
	err := s.api.Sync(ctx, func(p api.SyncProgress) {
		if p.Done {
			rep.Peers = append(rep.Peers, p)
		}
	})
	if err != nil {
		rep.Err = err.Error()
	}
	s.mu.Lock()
	s.lastSync = rep
	s.mu.Unlock()
	if err != nil {
		return "/", "", err
	}
	return "/", fmt.Sprintf("synced with %d peer(s)", len(rep.Peers)), nil
}

func (s *Server) doLogout(r *http.Request) (string, string, error) {
	if c, err := r.Cookie(cookieName(r)); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	return "/login", "", nil
}

// ---- Memories ---------------------------------------------------------------

type memRow struct {
	ID, Key, Title, Type, Visibility, Publisher string
	Created                                     int64
	Score                                       float64
}

type memoriesData struct {
	Query, Origin, Visibility string
	Rows                      []memRow
	Total                     int
	Searched                  bool
}

func (s *Server) memoriesPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Memories", "memories"
	q := r.URL.Query()
	d := &memoriesData{Query: strings.TrimSpace(q.Get("q")), Origin: q.Get("origin"), Visibility: q.Get("visibility")}
	if d.Origin != store.OriginRemote && d.Origin != store.OriginAll {
		d.Origin = store.OriginLocal
	}
	switch d.Visibility {
	case protocol.VisibilityPrivate, protocol.VisibilityPublic, protocol.VisibilityUnlisted:
	default:
		d.Visibility = ""
	}
	if d.Query != "" {
		d.Searched = true
		sq := store.Query{Text: d.Query, Origin: d.Origin, Limit: 50}
		if d.Visibility != "" {
			sq.Visibility = []string{d.Visibility}
		}
		res, err := s.api.Search(ctx, sq)
		if err != nil {
			v.Err = err.Error()
		} else {
			d.Total = res.Total
			for _, h := range res.Hits {
				d.Rows = append(d.Rows, rowOf(h.Record, h.Key, h.Publisher, h.Score))
			}
		}
	} else {
		res, err := s.api.List(ctx, store.ListOptions{Origin: d.Origin, Visibility: d.Visibility, Limit: 100})
		if err != nil {
			v.Err = err.Error()
		} else {
			d.Total = res.Total
			for i, rec := range res.Records {
				key := ""
				if i < len(res.Keys) {
					key = res.Keys[i]
				}
				pub := ""
				if key != "" {
					_, pub, _ = protocol.ParseKey(key)
				}
				d.Rows = append(d.Rows, rowOf(rec, key, pub, 0))
			}
		}
	}
	v.Data = d
	return "memories", nil
}

func rowOf(rec *protocol.Lesson, key, publisher string, score float64) memRow {
	title := rec.Title
	if title == "" {
		title = rec.WorkingOn
	}
	if title == "" {
		title = oneLine(rec.Content, 80)
	}
	vis := rec.Visibility
	if vis == "" {
		vis = protocol.VisibilityPrivate
	}
	return memRow{ID: rec.ID, Key: key, Title: title, Type: rec.Type, Visibility: vis, Publisher: publisher, Created: rec.CreatedAt, Score: score}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) doStore(r *http.Request) (string, string, error) {
	rec := &protocol.Lesson{
		Type: r.PostFormValue("type"), Title: strings.TrimSpace(r.PostFormValue("title")),
		Content: r.PostFormValue("content"), Tags: splitList(r.PostFormValue("tags")),
		Visibility: r.PostFormValue("visibility"),
	}
	if rec.Type == "" {
		rec.Type = "lesson"
	}
	if sev := r.PostFormValue("severity"); sev != "" {
		rec.Severity = sev
	}
	id, _, err := s.api.Put(r.Context(), rec)
	if err != nil {
		return "/memories", "", err
	}
	return "/memories/" + url.PathEscape(id), "stored " + id, nil
}

type memoryData struct {
	ID, Key   string
	Own       bool
	Record    *protocol.Lesson
	Fields    []field
	Signed    *protocol.SignedLesson
	Encrypted bool
	Verify    *api.VerifyReport
}

type field struct{ Name, Value string }

func (s *Server) memoryPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Active = "memories"
	ref := r.PathValue("id")
	if err := api.CheckRef(ref); err != nil {
		return "", badRequest{err}
	}
	d := &memoryData{ID: ref}
	rec, err := s.api.Get(ctx, ref)
	if err != nil {
		v.Title = ref
		v.Err = err.Error()
		v.Data = d
		return "memory", nil
	}
	d.Record = rec
	v.Title = rec.Title
	if v.Title == "" {
		v.Title = ref
	}
	self := v.Self
	if lessonID, nodeID, err := protocol.ParseKey(ref); err == nil {
		d.ID, d.Key, d.Own = lessonID, ref, nodeID == self
	} else if _, err := s.api.Get(ctx, ref+"@"+self); err == nil {
		d.Own, d.Key = true, ref+"@"+self
	} else {
		// A bare ID that is none of this node's records: the Get above
		// found the lesson received under it. Not ours: no owner's forms.
		d.Own = false
	}
	if d.Key != "" {
		if sl, err := s.api.Export(ctx, d.Key); err == nil {
			d.Signed = sl
		}
	}
	if d.Own {
		if _, err := s.api.ExportEncrypted(ctx, d.ID); err == nil {
			d.Encrypted = true
		}
	}
	if d.Signed != nil || d.Encrypted {
		d.Verify, _ = s.api.VerifyKey(ctx, d.Key)
	}
	add := func(name, value string) {
		if value != "" {
			d.Fields = append(d.Fields, field{name, value})
		}
	}
	add("id", rec.ID)
	add("type", rec.Type)
	add("severity", rec.Severity)
	add("tags", strings.Join(rec.Tags, ", "))
	add("agent", rec.Agent)
	add("project", rec.Project)
	add("created", funcs["when"].(func(int64) string)(rec.CreatedAt))
	if rec.ExpiresAt != 0 {
		add("expires", funcs["when"].(func(int64) string)(rec.ExpiresAt))
	}
	v.Data = d
	return "memory", nil
}

func (s *Server) doPublish(r *http.Request) (string, string, error) {
	id := r.PathValue("id")
	to := "/memories/" + url.PathEscape(id)
	vis := r.PostFormValue("visibility")
	topics := splitList(r.PostFormValue("topics"))
	sl, err := s.api.Publish(r.Context(), id, api.PublishOptions{Visibility: vis, Topics: topics})
	if err != nil {
		return to, "", err
	}
	return to, "published " + sl.Key() + " (" + vis + ")", nil
}

func (s *Server) doRevoke(r *http.Request) (string, string, error) {
	id := r.PathValue("id")
	to := "/memories/" + url.PathEscape(id)
	reason := r.PostFormValue("reason")
	if r.PostFormValue("hard") == "1" {
		res, err := s.api.RevokeHard(r.Context(), id, reason)
		if err != nil {
			return to, "", err
		}
		return to, fmt.Sprintf("revoked %s for good: its key is deleted (%d key(s))", id, len(res.KeyIDs)), nil
	}
	if _, err := s.api.Revoke(r.Context(), id, reason); err != nil {
		return to, "", err
	}
	return to, "revoked " + id + ": the revocation is announced", nil
}

func (s *Server) doDelete(r *http.Request) (string, string, error) {
	id := r.PathValue("id")
	ok, err := s.api.Delete(r.Context(), id)
	if err != nil {
		return "/memories/" + url.PathEscape(id), "", err
	}
	if !ok {
		return "/memories", "", fmt.Errorf("no record %s", id)
	}
	return "/memories", "deleted " + id, nil
}

// ---- Network search ---------------------------------------------------------

type hitRow struct {
	Key, Title, Content, Publisher, PublisherNote string
	Topics                                        []string
	TrustPath                                     []string
	Trusted                                       bool
	Trust, Relevance, Freshness, Score            float64
	PublishedAt                                   int64
	SigOK                                         bool
	SigErr                                        string
	Sources                                       []string
}

type searchData struct {
	Query, Sources    string
	Directories       bool
	Searched          bool
	Hits              []hitRow
	Truncated         bool
	Invalid           int
	Revoked           int
	Untrusted         int
	Answers           []api.DirectoryAnswer
	Warnings          []string
	DirectoriesListed int
}

func (s *Server) searchPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Network search", "search"
	q := r.URL.Query()
	d := &searchData{Query: strings.TrimSpace(q.Get("q")), Sources: strings.TrimSpace(q.Get("sources")), Directories: q.Get("directories") == "on"}
	if dl, err := s.api.DirectoryList(ctx); err == nil {
		d.DirectoriesListed = len(dl)
	}
	v.Data = d
	if !q.Has("q") {
		return "search", nil
	}
	d.Searched = true
	notes := trustNotes(ctx, s.api)
	verify := func(sl *protocol.SignedLesson) (bool, string) {
		if err := protocol.Verify(sl, protocol.VerifyOptions{}); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
	if d.Directories {
		res, err := s.api.DirectorySearch(ctx, api.DirectorySearchRequest{Query: d.Query, Peers: true, Limit: 30})
		if err != nil {
			v.Err = err.Error()
			return "search", nil
		}
		d.Truncated, d.Invalid, d.Revoked, d.Untrusted = res.Truncated, res.Invalid, res.Revoked, res.Untrusted
		d.Answers, d.Warnings = res.Directories, res.Warnings
		for _, h := range res.Results {
			row := hitOf(h.SignedLesson, notes)
			row.Trusted, row.Trust, row.Relevance, row.Score, row.Freshness = h.Trusted, h.Trust, h.Relevance, h.Score, 1
			row.Sources = h.Sources
			if p, err := s.api.TrustPath(ctx, row.Publisher); err == nil && p.Trusted {
				row.TrustPath = p.Hops
			}
			row.SigOK, row.SigErr = verify(h.SignedLesson)
			d.Hits = append(d.Hits, row)
		}
		return "search", nil
	}
	res, err := s.api.SearchNetwork(ctx, api.FedSearchRequest{Query: d.Query, Sources: d.Sources, Limit: 30, FreshnessHalfLife: 30 * 24 * time.Hour})
	if err != nil {
		v.Err = err.Error()
		return "search", nil
	}
	d.Truncated, d.Invalid, d.Revoked, d.Untrusted = res.Truncated, res.Invalid, res.Revoked, res.Untrusted
	for _, h := range res.Results {
		row := hitOf(h.SignedLesson, notes)
		row.Trusted, row.Trust, row.Relevance, row.Freshness, row.Score = true, h.Trust, h.Relevance, h.Freshness, h.Score
		row.TrustPath = h.TrustPath
		row.Sources = []string{h.Via}
		row.SigOK, row.SigErr = verify(h.SignedLesson)
		d.Hits = append(d.Hits, row)
	}
	return "search", nil
}

func hitOf(sl *protocol.SignedLesson, notes map[string]string) hitRow {
	return hitRow{
		Key: sl.Key(), Title: sl.Lesson.Title, Content: oneLine(sl.Lesson.Content, 240),
		Publisher: sl.Signature.NodeID, PublisherNote: notes[sl.Signature.NodeID],
		Topics: sl.Publication.Topics, PublishedAt: sl.Publication.PublishedAt,
	}
}

// ---- Trust ------------------------------------------------------------------

type trustData struct {
	Entries   []api.TrustEntry
	Pending   []api.PendingPublisher
	Referrals []*protocol.Referral
	Graph     template.HTML
}

func (s *Server) trustPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Trust", "trust"
	d := &trustData{}
	var err error
	if d.Entries, err = s.api.TrustList(ctx); err != nil {
		return "", err
	}
	sort.SliceStable(d.Entries, func(i, j int) bool { return d.Entries[i].Hops < d.Entries[j].Hops })
	d.Pending, _ = s.api.TrustPending(ctx)
	d.Referrals, _ = s.api.Referrals(ctx)
	d.Graph = trustGraph(v.Self, d.Entries)
	v.Data = d
	return "trust", nil
}

func (s *Server) doTrustAdd(r *http.Request) (string, string, error) {
	id := strings.TrimSpace(r.PostFormValue("nodeId"))
	level := trust.Level(r.PostFormValue("level"))
	if level == "" {
		level = trust.LevelFull
	}
	if err := s.api.TrustSet(r.Context(), id, level, strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		return "/trust", "", err
	}
	return "/trust", "trusted " + shortID(id) + " (" + string(level) + ")", nil
}

func (s *Server) doTrustRemove(r *http.Request) (string, string, error) {
	id := r.PostFormValue("nodeId")
	if err := s.api.TrustRemove(r.Context(), id); err != nil {
		return "/trust", "", err
	}
	return "/trust", "removed " + shortID(id), nil
}

// ---- Following --------------------------------------------------------------

type followingData struct {
	Topics, Feeds []string
	Notes         map[string]string
}

func (s *Server) followingPage(r *http.Request, v *view) (string, error) {
	v.Title, v.Active = "Following", "following"
	topics, feeds, err := s.api.Following(r.Context())
	if err != nil {
		return "", err
	}
	v.Data = &followingData{Topics: topics, Feeds: feeds, Notes: trustNotes(r.Context(), s.api)}
	return "following", nil
}

func (s *Server) doFollow(r *http.Request) (string, string, error) {
	t := strings.TrimSpace(r.PostFormValue("target"))
	if err := s.api.Follow(r.Context(), t); err != nil {
		return "/following", "", err
	}
	return "/following", "following " + t, nil
}

func (s *Server) doUnfollow(r *http.Request) (string, string, error) {
	t := r.PostFormValue("target")
	if err := s.api.Unfollow(r.Context(), t); err != nil {
		return "/following", "", err
	}
	return "/following", "unfollowed " + t, nil
}

// ---- Watches ----------------------------------------------------------------

type watchesData struct {
	Watches []api.Watch
	Matches []api.WatchMatch
	Next    uint64
}

func (s *Server) watchesPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Watches", "watches"
	d := &watchesData{}
	var err error
	if d.Watches, err = s.api.WatchList(ctx); err != nil {
		return "", err
	}
	res, err := s.api.WatchPoll(ctx, 0, api.MaxWatchPollLimit, 0)
	if err != nil {
		return "", err
	}
	d.Next = res.Next
	for i := len(res.Matches) - 1; i >= 0 && len(d.Matches) < 50; i-- {
		d.Matches = append(d.Matches, res.Matches[i]) // newest first
	}
	v.Data = d
	return "watches", nil
}

func (s *Server) doWatchAdd(r *http.Request) (string, string, error) {
	spec := api.WatchSpec{Query: strings.TrimSpace(r.PostFormValue("query")), Topic: strings.TrimSpace(r.PostFormValue("topic")),
		Sources: splitList(r.PostFormValue("sources"))}
	if spec.Query == "" && spec.Topic == "" && len(spec.Sources) == 0 {
		return "/watches", "", errors.New("give a query, a topic or sources")
	}
	res, err := s.api.WatchAdd(r.Context(), spec)
	if err != nil {
		return "/watches", "", err
	}
	msg := "added " + res.Watch.ID
	if res.Followed != "" {
		msg += "; now following topic " + res.Followed
	}
	return "/watches", msg, nil
}

func (s *Server) doWatchRemove(r *http.Request) (string, string, error) {
	id := r.PostFormValue("id")
	ok, err := s.api.WatchRemove(r.Context(), id)
	if err == nil && !ok {
		err = fmt.Errorf("no standing query %s", id)
	}
	if err != nil {
		return "/watches", "", err
	}
	return "/watches", "removed " + id, nil
}

// watchEvents streams the standing queries' matches to the Watches page
// (server-sent events; the page's EventSource resumes after Last-Event-ID).
func (s *Server) watchEvents(w http.ResponseWriter, r *http.Request, _ *session) {
	after, err := sse.LastID(r, "after")
	if err != nil {
		http.Error(w, "after: want a match's seq", http.StatusBadRequest)
		return
	}
	sse.Serve(w, r, "match", func(m api.WatchMatch) string { return strconv.FormatUint(m.Seq, 10) },
		func(ctx context.Context, fn func(api.WatchMatch) error) error {
			return s.api.WatchStream(ctx, after, fn)
		},
		func(err error) any { return map[string]string{"message": err.Error()} })
}
