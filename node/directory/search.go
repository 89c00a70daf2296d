package directory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/fedsearch"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// Client-side directory search tuning.
const (
	// DefaultDirectoryDeadline is DirectorySearchRequest.DeadlineMs's
	// default.
	DefaultDirectoryDeadline = 5 * time.Second
	// untrustedWeight is the trust factor of a publisher with no trust
	// path, when such lessons are kept (directories index publishers
	// their users may not trust).
	untrustedWeight = 0.1
	// maxDirectoryDeadline bounds DirectorySearchRequest.DeadlineMs.
	maxDirectoryDeadline = time.Minute
	// maxSearchDirectories bounds the directories one search asks.
	maxSearchDirectories = 16
	// maxWarnings bounds the warnings of one search.
	maxWarnings = 100
)

// QueryDirectory sends one search to a public API at baseURL and returns
// its verified answer: the response signature (by expectNode if it is not
// "", by whoever the block names otherwise) and that the answer repeats
// the request. The lessons in it are not verified: the caller does that.
// hc nil means a client with a 10 s timeout.
func QueryDirectory(ctx context.Context, hc *http.Client, baseURL string, req *protocol.DirectorySearchRequest, expectNode string) (*protocol.DirectorySearchResponse, *protocol.DirectoryBlock, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	v, err := directoryCall(ctx, hc, http.MethodPost, baseURL, "/v1/search", body, expectNode)
	if err != nil {
		return nil, nil, err
	}
	resp, err := protocol.DecodeDirectorySearchResponse(v.Body)
	if err != nil {
		return nil, &v.Directory, err
	}
	want := req.Limit
	if want <= 0 {
		want = protocol.DefaultSearchLimit
	}
	gotF, _ := json.Marshal(resp.Filters)
	wantF, _ := json.Marshal(req.Filters)
	if resp.Query != req.Query || resp.Limit != min(want, protocol.MaxSearchLimit) || !bytes.Equal(gotF, wantF) {
		return nil, &v.Directory, fmt.Errorf("%w: the signed answer is to another request (query %q)", protocol.ErrInvalid, truncateStr(resp.Query))
	}
	if len(resp.Results) > resp.Limit {
		return nil, &v.Directory, fmt.Errorf("%w: %d results for a limit of %d", protocol.ErrInvalid, len(resp.Results), resp.Limit)
	}
	return resp, &v.Directory, nil
}

// FetchPolicy fetches and verifies GET /v1/policy of a public API.
func FetchPolicy(ctx context.Context, hc *http.Client, baseURL string) (*protocol.DirectoryPolicy, error) {
	v, err := directoryCall(ctx, hc, http.MethodGet, baseURL, "/v1/policy", nil, "")
	if err != nil {
		return nil, err
	}
	p, err := protocol.DecodeDirectoryPolicy(v.Body)
	if err != nil {
		return nil, err
	}
	if p.NodeID != v.Directory.NodeID {
		return nil, fmt.Errorf("%w: the policy of %s is signed by %s", protocol.ErrInvalidSignature, p.NodeID, v.Directory.NodeID)
	}
	return p, nil
}

// directoryCall makes one public API request and verifies the answer's
// signature. A verified error answer becomes an error matching its code.
func directoryCall(ctx context.Context, hc *http.Client, method, baseURL, path string, body []byte, expectNode string) (*protocol.VerifiedResponse, error) {
	base, err := checkBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrUnreachable, base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxSignedResponseSize+1))
	if err != nil {
		return nil, err
	}
	v, err := protocol.VerifyResponse(bytes.TrimSpace(data), protocol.VerifyOptions{})
	if err != nil {
		return nil, fmt.Errorf("answer (%s) does not verify: %w", resp.Status, err)
	}
	if expectNode != "" && v.Directory.NodeID != expectNode {
		return nil, fmt.Errorf("%w: the answer is signed by %s, not by the directory %s", protocol.ErrInvalidSignature, v.Directory.NodeID, expectNode)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    protocol.Code `json:"code"`
			Message string        `json:"message"`
		}
		if json.Unmarshal(v.Body, &e) == nil && e.Code != "" {
			return nil, protocol.ErrorFor(e.Code, e.Message)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return v, nil
}

// Search searches several directories' public APIs and, if req.Peers,
// the trusted network. It verifies every answer's signature and every
// lesson; a directory whose answer does not verify is left out, and a
// lesson that does not verify (altered, forged) is dropped, each with a
// warning. The rest is de-duplicated (the newest publication of each
// lesson), cleared of lessons this node knows revoked and of blocked
// publishers, and ranked here by relevance × trust.
func (s *Service) Search(ctx context.Context, req api.DirectorySearchRequest) (*api.DirectorySearchResult, error) {
	if len(req.Query) > protocol.MaxSearchQueryLength {
		return nil, fmt.Errorf("directory search: %w: query is %d bytes, the limit is %d", protocol.ErrInvalid, len(req.Query), protocol.MaxSearchQueryLength)
	}
	pq, err := store.ParseQuery(req.Query)
	if err != nil {
		return nil, fmt.Errorf("directory search: %w", err)
	}
	ms := &multiSearch{s: s, req: req, pq: pq, urls: map[string]string{},
		res:   &api.DirectorySearchResult{Success: true, Results: []api.DirectorySearchHit{}, Directories: []api.DirectoryAnswer{}, Warnings: []string{}},
		cands: map[string]*cand{}}
	ms.limit = min(cmp.Or(max(req.Limit, 0), protocol.DefaultSearchLimit), protocol.MaxSearchLimit)
	if err := ms.targets(ctx); err != nil {
		return nil, err
	}
	deadline := time.Duration(min(max(req.DeadlineMs, 0), maxDirectoryDeadline.Milliseconds())) * time.Millisecond
	if deadline <= 0 {
		deadline = DefaultDirectoryDeadline
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	answers, fed, fedErr := ms.ask(ctx, deadline)
	for _, a := range answers {
		ms.collect(a)
	}
	ms.collectPeers(fed, fedErr)
	ms.rank(ctx)
	res := ms.res
	if len(ms.order) > 0 && !slices.ContainsFunc(res.Directories, func(d api.DirectoryAnswer) bool { return d.Error == "" }) &&
		!(req.Peers && fedErr == nil && s.host != nil) {
		return nil, fmt.Errorf("directory search: %w: no directory answered: %s", protocol.ErrUnreachable, res.Warnings[0])
	}
	return res, nil
}

// multiSearch is one Search under way.
type multiSearch struct {
	s     *Service
	req   api.DirectorySearchRequest
	pq    store.ParsedQuery
	limit int
	res   *api.DirectorySearchResult

	urls  map[string]string // base URL -> expected node ID, "" if unknown
	order []string          // the URLs, in the order given
	dreq  *protocol.DirectorySearchRequest

	cands map[string]*cand
	keys  []string // of cands, in the order offered
}

// cand is one lesson among the answers, with who returned it.
type cand struct {
	sl      *protocol.SignedLesson
	sources []string
}

// directoryAnswer is one directory's answer.
type directoryAnswer struct {
	url  string
	resp *protocol.DirectorySearchResponse
	blk  *protocol.DirectoryBlock
	err  error
}

func (ms *multiSearch) warn(format string, a ...any) {
	if len(ms.res.Warnings) < maxWarnings {
		ms.res.Warnings = append(ms.res.Warnings, fmt.Sprintf(format, a...))
	}
}

// addURL adds a directory to ask, expected to be signed by node if not "".
func (ms *multiSearch) addURL(u, node string) error {
	b, err := checkBaseURL(u)
	if err != nil {
		return err
	}
	if _, ok := ms.urls[b]; !ok {
		ms.order = append(ms.order, b)
	}
	if node != "" || ms.urls[b] == "" {
		ms.urls[b] = node
	}
	return nil
}

// targets decides which directories to ask: those named in the request
// (a listed one's answer must be signed by it), else the listed ones.
func (ms *multiSearch) targets(ctx context.Context) error {
	list, err := ms.s.List(ctx)
	if err != nil {
		return err
	}
	if len(ms.req.Directories) > 0 {
		for _, u := range ms.req.Directories {
			if err := ms.addURL(u, ""); err != nil {
				return fmt.Errorf("directory search: %w", err)
			}
		}
		for _, e := range list {
			if _, ok := ms.urls[e.URL]; ok && e.URL != "" && e.NodeID != "" {
				ms.urls[e.URL] = e.NodeID
			}
		}
	} else {
		for _, e := range list {
			if e.URL != "" {
				_ = ms.addURL(e.URL, e.NodeID)
			}
		}
	}
	if len(ms.order) > maxSearchDirectories {
		return fmt.Errorf("directory search: %w: %d directories, at most %d", protocol.ErrInvalid, len(ms.order), maxSearchDirectories)
	}
	if len(ms.order) == 0 && !ms.req.Peers {
		return fmt.Errorf("directory search: %w: no directory with a public API URL: add one (mesh directory add URL) or name one", protocol.ErrInvalid)
	}
	ms.dreq = &protocol.DirectorySearchRequest{Query: ms.req.Query, Limit: ms.limit}
	if !ms.req.Filters.Empty() {
		f := ms.req.Filters
		ms.dreq.Filters = &f
	}
	return nil
}

// ask asks the directories and, if asked, the peers, all at once.
func (ms *multiSearch) ask(ctx context.Context, deadline time.Duration) ([]directoryAnswer, *api.FedSearchResponse, error) {
	answers := make([]directoryAnswer, len(ms.order))
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: deadline}
	for i, u := range ms.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, blk, err := QueryDirectory(ctx, hc, u, ms.dreq, ms.urls[u])
			answers[i] = directoryAnswer{u, r, blk, err}
		}()
	}
	var fed *api.FedSearchResponse
	var fedErr error
	if ms.req.Peers && ms.s.host != nil && ms.s.deps.SearchNetwork != nil {
		fed, fedErr = ms.s.deps.SearchNetwork(ctx, api.FedSearchRequest{Query: ms.req.Query, Filters: ms.req.Filters,
			Limit: ms.limit, Hops: ms.req.Hops, Deadline: deadline * 8 / 10})
	}
	wg.Wait()
	return answers, fed, fedErr
}

// offer adds a verified lesson from source.
func (ms *multiSearch) offer(sl *protocol.SignedLesson, source string) {
	key := sl.Key()
	c, ok := ms.cands[key]
	if !ok {
		c = &cand{sl: sl}
		ms.cands[key] = c
		ms.keys = append(ms.keys, key)
	} else if sl.Publication.PublishedAt > c.sl.Publication.PublishedAt {
		c.sl = sl
	}
	if !slices.Contains(c.sources, source) {
		c.sources = append(c.sources, source)
	}
}

// collect verifies one directory's answer and offers its lessons.
func (ms *multiSearch) collect(a directoryAnswer) {
	da := api.DirectoryAnswer{URL: a.url}
	if a.blk != nil {
		da.NodeID = a.blk.NodeID
	}
	if a.err != nil {
		da.Error = a.err.Error()
		ms.warn("directory %s: left out: %v", a.url, a.err)
		ms.res.Directories = append(ms.res.Directories, da)
		ms.res.Truncated = true
		return
	}
	da.Results = len(a.resp.Results)
	ms.res.Invalid += a.resp.Invalid // results that did not even decode
	vopts := protocol.VerifyOptions{Now: ms.s.now(), AllowOld: true}
	for _, r := range a.resp.Results {
		sl := r.SignedLesson
		err := protocol.Verify(sl, vopts)
		if err == nil && sl.Publication.Visibility != protocol.VisibilityPublic {
			err = fmt.Errorf("%w: the lesson is %s, not public", protocol.ErrInvalid, sl.Publication.Visibility)
		}
		if err == nil && !ms.dreq.Filters.Match(sl) {
			err = fmt.Errorf("%w: it does not pass the filters", protocol.ErrInvalid)
		}
		if err != nil {
			da.Dropped++
			ms.res.Invalid++
			ms.warn("directory %s (%s): dropped lesson %s: %v", shortNode(da.NodeID), a.url, truncateStr(sl.Key()), err)
			continue
		}
		ms.offer(sl, da.NodeID)
	}
	ms.res.Directories = append(ms.res.Directories, da)
}

// collectPeers offers the federated search's lessons, verified by it.
func (ms *multiSearch) collectPeers(fed *api.FedSearchResponse, fedErr error) {
	if !ms.req.Peers {
		return
	}
	switch {
	case ms.s.host == nil || ms.s.deps.SearchNetwork == nil:
		ms.warn("peers: left out: %v", api.ErrOffline)
	case fedErr != nil:
		ms.warn("peers: left out: %v", fedErr)
	default:
		ms.res.Truncated = ms.res.Truncated || fed.Truncated
		for _, h := range fed.Results {
			ms.offer(h.SignedLesson, "peers")
		}
	}
}

// rank applies this node's revocations and trust, then ranks.
func (ms *multiSearch) rank(ctx context.Context) {
	s, res := ms.s, ms.res
	self := s.self.String()
	var hits []api.FedSearchHit
	trusted := map[string]bool{}
	for _, key := range ms.keys {
		c := ms.cands[key]
		pub := c.sl.Signature.NodeID
		if s.deps.Local.Revoked(ctx, key) {
			res.Revoked++
			continue
		}
		if s.deps.Trust.Blocked(pub) {
			res.Blocked++
			continue
		}
		t := 1.0
		trusted[key] = true
		if pub != self {
			_, score, ok := s.deps.Trust.Path(pub)
			switch {
			case ok && score > 0:
				t = score
			case ms.req.TrustedOnly:
				res.Untrusted++
				continue
			default:
				t, trusted[key] = untrustedWeight, false
			}
		}
		hits = append(hits, api.FedSearchHit{Key: key, SignedLesson: c.sl, Trust: t})
	}
	hits = fedsearch.Rank(hits, ms.pq, 0, s.now())
	for _, h := range hits[:min(len(hits), ms.limit)] {
		c := ms.cands[h.Key]
		sort.Strings(c.sources)
		res.Results = append(res.Results, api.DirectorySearchHit{Key: h.Key, SignedLesson: h.SignedLesson, Relevance: h.Relevance,
			Trust: h.Trust, Trusted: trusted[h.Key], Score: h.Score, Sources: c.sources})
	}
}

// shortNode shortens a node ID for a warning.
func shortNode(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	if id == "" {
		return "?"
	}
	return id
}
