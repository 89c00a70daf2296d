package node

// Client-side search of several directories' public APIs: every answer's
// signature and every lesson in it is verified, what fails is dropped with
// a warning, and the rest is merged, de-duplicated, merged with a
// federated search of the direct peers if asked, and ranked here.

import (
	"bytes"
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

// DirectorySearchRequest asks several directories (and, if Peers, the
// trusted network) for public lessons.
type DirectorySearchRequest struct {
	Query   string                 `json:"query"`
	Filters protocol.SearchFilters `json:"filters"`
	// Limit: 0 means protocol.DefaultSearchLimit, at most
	// protocol.MaxSearchLimit.
	Limit int `json:"limit,omitempty"`
	// Directories are public API base URLs. Empty means the URLs of the
	// directories listed with DirectoryAdd.
	Directories []string `json:"directories,omitempty"`
	// Peers also runs a federated search of the trusted peers
	// (FederatedSearch) and merges its results.
	Peers bool `json:"peers,omitempty"`
	// Hops is the federated search's hops, when Peers.
	Hops int `json:"hops,omitempty"`
	// DeadlineMs bounds the search; 0 means DefaultDirectoryDeadline, at
	// most a minute.
	DeadlineMs int64 `json:"deadlineMs,omitempty"`
	// TrustedOnly drops the lessons of publishers with no trust path. By
	// default they are kept, ranked with a trust of 0.1, and marked.
	TrustedOnly bool `json:"trustedOnly,omitempty"`
}

// DirectorySearchHit is one verified, ranked result.
type DirectorySearchHit struct {
	Key          string                 `json:"key"`
	SignedLesson *protocol.SignedLesson `json:"signedLesson"`
	Relevance    float64                `json:"relevance"`
	// Trust is this node's trust in the publisher, or 0.1 for one it has
	// no trust path to (Trusted is then false).
	Trust   float64 `json:"trust"`
	Trusted bool    `json:"trusted"`
	// Score is Relevance × Trust.
	Score float64 `json:"score"`
	// Sources are the node IDs of the directories that returned the
	// lesson, and "peers" if the federated search did.
	Sources []string `json:"sources"`
}

// DirectoryAnswer says how one directory answered.
type DirectoryAnswer struct {
	URL    string `json:"url"`
	NodeID string `json:"nodeId,omitempty"`
	// Results is how many results it sent; Dropped how many of them
	// failed verification.
	Results int    `json:"results"`
	Dropped int    `json:"dropped"`
	Error   string `json:"error,omitempty"`
}

// DirectorySearchResult is the answer to DirectorySearch.
type DirectorySearchResult struct {
	Success     bool                 `json:"success"`
	Results     []DirectorySearchHit `json:"results"`
	Directories []DirectoryAnswer    `json:"directories"`
	// Warnings name each directory that failed, and each lesson dropped
	// because it failed verification, and from whom it came.
	Warnings []string `json:"warnings"`
	// Invalid counts the results dropped for failing verification;
	// Revoked those this node knows revoked; Blocked those of blocked
	// publishers; Untrusted those dropped for TrustedOnly.
	Invalid   int  `json:"invalid"`
	Revoked   int  `json:"revoked"`
	Blocked   int  `json:"blocked"`
	Untrusted int  `json:"untrusted"`
	Truncated bool `json:"truncated"`
}

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
		return nil, err
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

// DirectorySearch searches several directories' public APIs and, if
// req.Peers, the trusted network. It verifies every answer's signature and
// every lesson; a directory whose answer does not verify is left out, and a
// lesson that does not verify (altered, forged) is dropped, each with a
// warning. The rest is de-duplicated (the newest publication of each
// lesson), cleared of lessons this node knows revoked and of blocked
// publishers, and ranked here by relevance × trust.
func (n *Node) DirectorySearch(ctx context.Context, req DirectorySearchRequest) (*DirectorySearchResult, error) {
	pq, err := store.ParseQuery(req.Query)
	if err != nil {
		return nil, fmt.Errorf("directory search: %w", err)
	}
	if len(req.Query) > protocol.MaxSearchQueryLength {
		return nil, fmt.Errorf("directory search: %w: query is %d bytes, the limit is %d", protocol.ErrInvalid, len(req.Query), protocol.MaxSearchQueryLength)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = protocol.DefaultSearchLimit
	}
	limit = min(limit, protocol.MaxSearchLimit)
	urls := map[string]string{} // base URL -> expected node ID, "" if unknown
	var order []string
	addURL := func(u, node string) error {
		b, err := checkBaseURL(u)
		if err != nil {
			return err
		}
		if _, ok := urls[b]; !ok {
			order = append(order, b)
		}
		if node != "" || urls[b] == "" {
			urls[b] = node
		}
		return nil
	}
	list, err := n.DirectoryList(ctx)
	if err != nil {
		return nil, err
	}
	if len(req.Directories) > 0 {
		for _, u := range req.Directories {
			if err := addURL(u, ""); err != nil {
				return nil, fmt.Errorf("directory search: %w", err)
			}
		}
		for _, e := range list { // a listed directory's answer must be signed by it
			if e.URL != "" && e.NodeID != "" {
				if _, ok := urls[e.URL]; ok {
					urls[e.URL] = e.NodeID
				}
			}
		}
	} else {
		for _, e := range list {
			if e.URL != "" {
				_ = addURL(e.URL, e.NodeID)
			}
		}
	}
	if len(order) > maxSearchDirectories {
		return nil, fmt.Errorf("directory search: %w: %d directories, at most %d", protocol.ErrInvalid, len(order), maxSearchDirectories)
	}
	if len(order) == 0 && !req.Peers {
		return nil, fmt.Errorf("directory search: %w: no directory with a public API URL: add one (mesh directory add URL) or name one", protocol.ErrInvalid)
	}
	deadline := time.Duration(min(max(req.DeadlineMs, 0), maxDirectoryDeadline.Milliseconds())) * time.Millisecond
	if deadline <= 0 {
		deadline = DefaultDirectoryDeadline
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	res := &DirectorySearchResult{Success: true, Results: []DirectorySearchHit{}, Directories: []DirectoryAnswer{}, Warnings: []string{}}
	warn := func(format string, a ...any) {
		if len(res.Warnings) < maxWarnings {
			res.Warnings = append(res.Warnings, fmt.Sprintf(format, a...))
		}
	}
	dreq := &protocol.DirectorySearchRequest{Query: req.Query, Limit: limit}
	if !req.Filters.Empty() {
		f := req.Filters
		dreq.Filters = &f
	}

	// Ask the directories and the peers at once.
	type answer struct {
		url  string
		resp *protocol.DirectorySearchResponse
		blk  *protocol.DirectoryBlock
		err  error
	}
	answers := make([]answer, len(order))
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: deadline}
	for i, u := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, blk, err := QueryDirectory(ctx, hc, u, dreq, urls[u])
			answers[i] = answer{u, r, blk, err}
		}()
	}
	var fed *FedResult
	var fedErr error
	if req.Peers && n.host != nil {
		fed, fedErr = n.FederatedSearch(ctx, FedQuery{Query: req.Query, Filters: req.Filters, Limit: limit, Hops: req.Hops, Deadline: deadline * 8 / 10})
	}
	wg.Wait()

	type cand struct {
		sl      *protocol.SignedLesson
		sources []string
	}
	cands := map[string]*cand{}
	var keys []string
	offer := func(sl *protocol.SignedLesson, source string) {
		key := sl.Key()
		c, ok := cands[key]
		if !ok {
			c = &cand{sl: sl}
			cands[key] = c
			keys = append(keys, key)
		} else if sl.Publication.PublishedAt > c.sl.Publication.PublishedAt {
			c.sl = sl
		}
		if !slices.Contains(c.sources, source) {
			c.sources = append(c.sources, source)
		}
	}
	vopts := protocol.VerifyOptions{Now: n.now(), AllowOld: true}
	for _, a := range answers {
		da := DirectoryAnswer{URL: a.url}
		if a.blk != nil {
			da.NodeID = a.blk.NodeID
		}
		if a.err != nil {
			da.Error = a.err.Error()
			warn("directory %s: left out: %v", a.url, a.err)
			res.Directories = append(res.Directories, da)
			res.Truncated = true
			continue
		}
		da.Results = len(a.resp.Results)
		for _, r := range a.resp.Results {
			sl := r.SignedLesson
			err := protocol.Verify(sl, vopts)
			if err == nil && sl.Publication.Visibility != protocol.VisibilityPublic {
				err = fmt.Errorf("%w: the lesson is %s, not public", protocol.ErrInvalid, sl.Publication.Visibility)
			}
			if err == nil && !matchSearchFilters(sl, dreq.Filters) {
				err = fmt.Errorf("%w: it does not pass the filters", protocol.ErrInvalid)
			}
			if err != nil {
				da.Dropped++
				res.Invalid++
				warn("directory %s (%s): dropped lesson %s: %v", shortNode(da.NodeID), a.url, truncateStr(sl.Key()), err)
				continue
			}
			offer(sl, da.NodeID)
		}
		res.Directories = append(res.Directories, da)
	}
	if req.Peers {
		switch {
		case n.host == nil:
			warn("peers: left out: %v", ErrOffline)
		case fedErr != nil:
			warn("peers: left out: %v", fedErr)
		default:
			res.Truncated = res.Truncated || fed.Truncated
			for _, h := range fed.Results { // verified by FederatedSearch
				offer(h.Lesson, "peers")
			}
		}
	}

	// Apply this node's revocations and trust, then rank.
	self := n.id.String()
	tv := n.trustView()
	var hits []FedHit
	trusted := map[string]bool{}
	for _, key := range keys {
		c := cands[key]
		pub := c.sl.Signature.NodeID
		if n.store.Revoked(ctx, key) {
			res.Revoked++
			continue
		}
		if tv.Blocked(pub) {
			res.Blocked++
			continue
		}
		t := 1.0
		trusted[key] = true
		if pub != self {
			_, score, ok := tv.Path(pub)
			switch {
			case ok && score > 0:
				t = score
			case req.TrustedOnly:
				res.Untrusted++
				continue
			default:
				t, trusted[key] = untrustedWeight, false
			}
		}
		hits = append(hits, FedHit{Key: key, Lesson: c.sl, Trust: t})
	}
	hits = rankHits(hits, pq, 0, n.now())
	if len(hits) > limit {
		hits = hits[:limit]
	}
	for _, h := range hits {
		c := cands[h.Key]
		sort.Strings(c.sources)
		res.Results = append(res.Results, DirectorySearchHit{Key: h.Key, SignedLesson: h.Lesson, Relevance: h.Relevance,
			Trust: h.Trust, Trusted: trusted[h.Key], Score: h.Score, Sources: c.sources})
	}
	if len(order) > 0 && !slices.ContainsFunc(res.Directories, func(d DirectoryAnswer) bool { return d.Error == "" }) && !(req.Peers && fedErr == nil && n.host != nil) {
		return res, fmt.Errorf("directory search: no directory answered: %w", errors.New(res.Warnings[0]))
	}
	return res, nil
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
