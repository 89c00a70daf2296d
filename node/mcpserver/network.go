package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/trust"
)

// MCP tools of the network: what the CLI does beyond the node's own store.
const (
	ToolNode            = "mesh_node"
	ToolPeers           = "mesh_peers"
	ToolConnect         = "mesh_connect"
	ToolSync            = "mesh_sync"
	ToolNetworkSearch   = "mesh_network_search"
	ToolDirectorySearch = "mesh_directory_search"
	ToolDirectories     = "mesh_directories"
	ToolDirectoryAdd    = "mesh_directory_add"
	ToolDirectoryRemove = "mesh_directory_remove"
	ToolVerify          = "mesh_verify"
	ToolRevoke          = "mesh_revoke"
	ToolFollow          = "mesh_follow"
	ToolUnfollow        = "mesh_unfollow"
	ToolFollowing       = "mesh_following"
	ToolTrustList       = "mesh_trust_list"
	ToolTrustAdd        = "mesh_trust_add"
	ToolTrustRemove     = "mesh_trust_remove"
	ToolTrustPath       = "mesh_trust_path"
	ToolWatchAdd        = "mesh_watch_add"
	ToolWatchList       = "mesh_watch_list"
	ToolWatchRemove     = "mesh_watch_remove"
	ToolWatchPoll       = "mesh_watch_poll"
)

// MaxWatchPollWait caps mesh_watch_poll's wait_ms: a tool call should not
// hold a client's request open longer.
const MaxWatchPollWait = time.Minute

// Arguments of the network tools.

type mcpNetworkSearchArgs struct {
	Query      string   `json:"query,omitempty" jsonschema:"words, \"quoted phrases\" and numeric comparisons, as in amp_search; empty matches every public lesson"`
	Sources    string   `json:"sources,omitempty" jsonschema:"whom to ask: trusted (the default: every connected peer with a trust path, and this node), a node ID (that node only) or a topic name (keep the lessons published on that topic)"`
	Types      []string `json:"types,omitempty" jsonschema:"only lessons of one of these types (lesson, snippet, ...)"`
	Tags       []string `json:"tags,omitempty" jsonschema:"only lessons carrying every one of these tags"`
	Limit      int      `json:"limit,omitempty" jsonschema:"at most this many results, 1 to 100; default 10"`
	Hops       int      `json:"hops,omitempty" jsonschema:"1 asks the peers only, 2 their peers too; default 2"`
	DeadlineMs int64    `json:"deadline_ms,omitempty" jsonschema:"how long to wait for answers, in milliseconds; default 2000, at most 60000. What arrived by then is returned, marked truncated"`
}

type mcpDirectorySearchArgs struct {
	Query       string   `json:"query,omitempty" jsonschema:"words, \"quoted phrases\" and numeric comparisons"`
	Directories []string `json:"directories,omitempty" jsonschema:"public API base URLs of directories; default: the directories this node lists (mesh_directories)"`
	Peers       bool     `json:"peers,omitempty" jsonschema:"also search the trusted peers (as mesh_network_search) and merge the results"`
	TrustedOnly bool     `json:"trusted_only,omitempty" jsonschema:"drop lessons of publishers without a trust path (by default they are kept, ranked low and marked untrusted)"`
	Limit       int      `json:"limit,omitempty" jsonschema:"at most this many results, 1 to 100; default 10"`
	DeadlineMs  int64    `json:"deadline_ms,omitempty" jsonschema:"how long to wait, in milliseconds; default 5000, at most 60000"`
}

type mcpTargetArgs struct {
	Target string `json:"target" jsonschema:"a topic name (rust) or a publisher's node ID (12D3KooW...) whose feed to follow"`
}

type mcpAddrArgs struct {
	Addr string `json:"addr" jsonschema:"a multiaddr with /p2p/ (/ip4/192.0.2.1/tcp/4001/p2p/12D3KooW...) or a node ID to find in the DHT"`
}

type mcpDirectoryArgs struct {
	Target string `json:"target" jsonschema:"a directory's node ID, multiaddr with /p2p/, or public API URL"`
}

type mcpVerifyArgs struct {
	Key      string    `json:"key,omitempty" jsonschema:"a lesson's key lessonId@nodeId: fetched (local cache, its publisher, any peer), its signature checked, its publisher asked whether it was revoked, and the trust path shown"`
	Document *document `json:"document,omitempty" jsonschema:"a SignedLesson or EncryptedLesson JSON object (as mesh_export or a file gave it), checked offline: signature over its canonical form, signer is the author; of an EncryptedLesson also whether its key is available to this node"`
}

// document is a JSON object taken as it is (its schema: any object).
type document struct{ json.RawMessage }

type mcpRevokeArgs2 struct {
	ID     string `json:"id" jsonschema:"the id of a record this node published"`
	Reason string `json:"reason,omitempty" jsonschema:"outdated, incorrect, private or other (the default)"`
}

type mcpNodeIDArgs struct {
	NodeID string `json:"node_id" jsonschema:"a node ID, 12D3KooW..."`
}

type mcpTrustAddArgs struct {
	NodeID string `json:"node_id" jsonschema:"the node ID to trust, 12D3KooW..."`
	Level  string `json:"level,omitempty" jsonschema:"full (the default: search, sync, and its vouches count), limited (its lessons only) or none (blocked)"`
	Note   string `json:"note,omitempty" jsonschema:"a name for it, shown with its lessons"`
}

type mcpWatchAddArgs struct {
	Query   string   `json:"query,omitempty" jsonschema:"words, \"quoted phrases\" and numeric comparisons (humidity > 60), as in a search; empty matches every lesson that passes sources and topic"`
	Topic   string   `json:"topic,omitempty" jsonschema:"keep lessons published on this topic; the node follows it if it does not yet"`
	Sources []string `json:"sources,omitempty" jsonschema:"keep lessons of these publishers only: node IDs, or self for this node's own records"`
}

type mcpWatchIDArgs struct {
	ID string `json:"id" jsonschema:"a standing query's id, watch_..."`
}

type mcpWatchPollArgs struct {
	After  uint64 `json:"after,omitempty" jsonschema:"return matches after this seq: 0 for the whole backlog, the previous answer's next to continue"`
	Limit  int    `json:"limit,omitempty" jsonschema:"at most this many matches, 1 to 1000; default 100"`
	WaitMs int64  `json:"wait_ms,omitempty" jsonschema:"if nothing is there yet, wait up to this long for a match, in milliseconds; at most 60000; 0 answers at once"`
}

// Answers that would be bare lists are objects, as a tool's structured
// content must be.

type nodeAnswer struct {
	Info    *api.Info          `json:"info"`
	Status  *api.Status        `json:"status"`
	Network *api.NetworkStatus `json:"network,omitempty"`
	// NetworkError says why Network is missing (an offline node).
	NetworkError string `json:"networkError,omitempty"`
}

type peersAnswer struct {
	Peers []api.PeerInfo `json:"peers"`
}

type connectAnswer struct {
	NodeID string `json:"nodeId"`
}

type syncAnswer struct {
	Peers []api.SyncProgress `json:"peers"`
	// Error joins the failures of the peers that failed; the others synced.
	Error string `json:"error,omitempty"`
}

type directoriesAnswer struct {
	Directories []api.DirectoryEntry `json:"directories"`
}

type removedAnswer struct {
	Removed bool `json:"removed"`
}

type followingAnswer struct {
	Topics []string `json:"topics"`
	Feeds  []string `json:"feeds"`
}

type trustListAnswer struct {
	Entries []api.TrustEntry `json:"entries"`
	// Pending are the publishers whose lessons were refused for want of
	// trust: trusting one brings its lessons in.
	Pending []api.PendingPublisher `json:"pending"`
}

type okAnswer struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

type watchListAnswer struct {
	Watches []api.Watch `json:"watches"`
}

// addNetworkTools adds the tools of the network, trust, following and
// standing queries.
func addNetworkTools(s *mcp.Server, log *slog.Logger, t tools) {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)}
	local := &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)}
	addTool(s, log, &mcp.Tool{Name: ToolNode, Title: "Node and network status",
		Description: "This node's ID, fingerprint, addresses, health and record counts, and its reachability " +
			"(public, private behind NAT, or unknown), relay reservations and hole punching.",
		Annotations: readOnly}, "node", t.node)
	addTool(s, log, &mcp.Tool{Name: ToolPeers, Title: "Connected peers",
		Description: "The peers connected now: addresses, direction, and whether the connection is direct, relayed or hole-punched.",
		Annotations: readOnly}, "peers", t.peers)
	addTool(s, log, &mcp.Tool{Name: ToolConnect, Title: "Connect to a node",
		Description: "Dial a node by multiaddr (with /p2p/) or by node ID (found in the DHT) and keep the connection.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(true)}}, "connect", t.connect)
	addTool(s, log, &mcp.Tool{Name: ToolSync, Title: "Sync with every peer",
		Description: "Catch up now with every connected peer: fetch the public lessons and revocations of the " +
			"topics and feeds this node follows that it missed. Answers each peer's counts.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(true)}}, "sync", t.sync)
	addTool(s, log, &mcp.Tool{Name: ToolNetworkSearch, Title: "Search the trusted network",
		Description: "Federated search of the public lessons of this node and of the peers it trusts (or one named " +
			"node, or one topic). Every result is signature-checked, and carries its publisher, trust path and score; " +
			"truncated says some peers did not answer in time. Lessons of untrusted publishers are dropped and counted.",
		Annotations: readOnly}, "network_search", t.networkSearch)
	addTool(s, log, &mcp.Tool{Name: ToolDirectorySearch, Title: "Search directories",
		Description: "Search the public APIs of directories (and with peers, the trusted network too). Every " +
			"result is signature-checked and ranked by trust; publishers without a trust path are marked.",
		Annotations: readOnly}, "directory_search", t.directorySearch)
	addTool(s, log, &mcp.Tool{Name: ToolDirectories, Title: "List directories",
		Description: "The directories this node registers with and searches.",
		Annotations: readOnly}, "directories", t.directories)
	addTool(s, log, &mcp.Tool{Name: ToolDirectoryAdd, Title: "Add a directory",
		Description: "Register with a directory (by node ID, multiaddr or public API URL) and search it from now on.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(true)}}, "directory_add", t.directoryAdd)
	addTool(s, log, &mcp.Tool{Name: ToolDirectoryRemove, Title: "Remove a directory",
		Description: "Stop registering with and searching a directory.",
		Annotations: local}, "directory_remove", t.directoryRemove)
	addTool(s, log, &mcp.Tool{Name: ToolVerify, Title: "Verify a lesson",
		Description: "Verify a lesson by key (fetched from the network, signature, revocation and trust path " +
			"checked) or a SignedLesson or EncryptedLesson document offline. Give key or document. A verification " +
			"that fails is an answer with valid false and the reason, not a tool error.",
		Annotations: readOnly}, "verify", t.verify)
	addTool(s, log, &mcp.Tool{Name: ToolRevoke, Title: "Revoke a publication",
		Description: "Take back a lesson this node published: a signed revocation is announced, and nodes that " +
			"hold the lesson drop it. (For a lesson published encrypted, mesh_revoke_hard also deletes its key.)",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)}}, "revoke", t.revoke)
	addTool(s, log, &mcp.Tool{Name: ToolFollow, Title: "Follow a topic or feed",
		Description: "Subscribe to a topic, or to a publisher's feed by node ID: its public lessons arrive, if its publisher is trusted.",
		Annotations: local}, "follow", t.follow)
	addTool(s, log, &mcp.Tool{Name: ToolUnfollow, Title: "Unfollow a topic or feed",
		Description: "Stop following a topic or a publisher's feed.", Annotations: local}, "unfollow", t.unfollow)
	addTool(s, log, &mcp.Tool{Name: ToolFollowing, Title: "Topics and feeds followed",
		Description: "The topics and publisher feeds this node follows.", Annotations: readOnly}, "following", t.following)
	addTool(s, log, &mcp.Tool{Name: ToolTrustList, Title: "Web of trust",
		Description: "The nodes this node trusts, directly or through the vouches of fully trusted nodes: level, " +
			"hops, score; and the pending publishers whose lessons were refused for want of trust.",
		Annotations: readOnly}, "trust_list", t.trustList)
	addTool(s, log, &mcp.Tool{Name: ToolTrustAdd, Title: "Trust a node",
		Description: "Trust a node (full, limited) or block it (none). Its lessons refused so far come in at once.",
		Annotations: local}, "trust_add", t.trustAdd)
	addTool(s, log, &mcp.Tool{Name: ToolTrustRemove, Title: "Remove trust",
		Description: "Remove this node's direct trust edge to a node.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)}}, "trust_remove", t.trustRemove)
	addTool(s, log, &mcp.Tool{Name: ToolTrustPath, Title: "Trust path to a node",
		Description: "Whether this node trusts a node, through whom (the path, this node first) and with what score.",
		Annotations: readOnly}, "trust_path", t.trustPath)
	addTool(s, log, &mcp.Tool{Name: ToolWatchAdd, Title: "Add a standing query",
		Description: "Watch for lessons: every lesson this node stores or receives from now on (gossip, sync, " +
			"directories) is matched against it; read the matches with mesh_watch_poll. A watch on a topic the " +
			"node does not follow follows it, and says so in followed.",
		Annotations: local}, "watch_add", t.watchAdd)
	addTool(s, log, &mcp.Tool{Name: ToolWatchList, Title: "List standing queries",
		Description: "The standing queries, with their match counts.", Annotations: readOnly}, "watch_list", t.watchList)
	addTool(s, log, &mcp.Tool{Name: ToolWatchRemove, Title: "Remove a standing query",
		Description: "Remove a standing query by id.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)}}, "watch_remove", t.watchRemove)
	addTool(s, log, &mcp.Tool{Name: ToolWatchPoll, Title: "Poll standing-query matches",
		Description: "The matches of the standing queries after a seq, oldest first, waiting up to wait_ms for " +
			"one if there is none yet. Pass the answer's next as after to continue; missed says the backlog " +
			"overflowed since.",
		Annotations: readOnly}, "watch_poll", t.watchPoll)
}

func (t tools) node(ctx context.Context, _ *struct{}) (*nodeAnswer, string, error) {
	info, err := t.api.Info(ctx)
	if err != nil {
		return nil, "", err
	}
	st, err := t.api.Status(ctx)
	if err != nil {
		return nil, "", err
	}
	out := &nodeAnswer{Info: info, Status: st}
	reach := "offline"
	if out.Network, err = t.api.Network(ctx); err != nil {
		out.NetworkError = err.Error()
	} else {
		reach = out.Network.Reachability
	}
	return out, fmt.Sprintf("node %s (fingerprint %s), %s, %d records, reachability %s", info.NodeID, info.Fingerprint,
		map[bool]string{true: "online", false: "offline"}[info.Online], st.Total, reach), nil
}

func (t tools) peers(ctx context.Context, _ *struct{}) (*peersAnswer, string, error) {
	ps, err := t.api.Peers(ctx)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d peer(s)", len(ps))
	for _, p := range ps {
		kind := p.Connection
		if p.HolePunched {
			kind = "hole-punched"
		}
		fmt.Fprintf(&b, "\n%s %s %s", p.ID, kind, p.Direction)
	}
	return &peersAnswer{Peers: nonNil(ps)}, b.String(), nil
}

func (t tools) connect(ctx context.Context, a *mcpAddrArgs) (*connectAnswer, string, error) {
	if strings.TrimSpace(a.Addr) == "" {
		return nil, "", fmt.Errorf("%w: addr: required", protocol.ErrInvalid)
	}
	id, err := t.api.Connect(ctx, a.Addr)
	if err != nil {
		return nil, "", err
	}
	return &connectAnswer{NodeID: id.String()}, "connected to " + id.String(), nil
}

func (t tools) sync(ctx context.Context, _ *struct{}) (*syncAnswer, string, error) {
	out := &syncAnswer{Peers: []api.SyncProgress{}}
	err := t.api.Sync(ctx, func(p api.SyncProgress) {
		if p.Done {
			out.Peers = append(out.Peers, p)
		}
	})
	if err != nil {
		if errors.Is(err, api.ErrOffline) || len(out.Peers) == 0 && ctx.Err() != nil {
			return nil, "", err
		}
		out.Error = err.Error()
	}
	lessons := 0
	for _, p := range out.Peers {
		lessons += p.Lessons
	}
	sum := fmt.Sprintf("synced with %d peer(s): %d lesson(s) stored", len(out.Peers), lessons)
	if out.Error != "" {
		sum += "; some failed: " + out.Error
	}
	return out, sum, nil
}

// deadline turns a tool's deadline_ms into a duration, capped at a minute.
func deadline(ms int64) (time.Duration, error) {
	if ms < 0 {
		return 0, fmt.Errorf("%w: deadline_ms must not be negative", protocol.ErrInvalid)
	}
	return min(time.Duration(ms)*time.Millisecond, time.Minute), nil
}

func (t tools) networkSearch(ctx context.Context, a *mcpNetworkSearchArgs) (*api.FedSearchResponse, string, error) {
	d, err := deadline(a.DeadlineMs)
	if err != nil {
		return nil, "", err
	}
	req := api.FedSearchRequest{Query: a.Query, Sources: a.Sources, Limit: a.Limit, Hops: a.Hops, Deadline: d,
		Filters: protocol.SearchFilters{Types: a.Types, Tags: a.Tags}}
	res, err := t.api.SearchNetwork(ctx, req)
	if err != nil {
		return nil, "", err
	}
	res.Results = nonNil(res.Results)
	var b strings.Builder
	fmt.Fprintf(&b, "%d result(s)", len(res.Results))
	if res.Truncated {
		b.WriteString(" (partial: some peers did not answer in time)")
	}
	if res.Untrusted > 0 {
		fmt.Fprintf(&b, ", %d dropped: publisher not trusted", res.Untrusted)
	}
	for _, h := range res.Results {
		fmt.Fprintf(&b, "\n%.3f %s %s (trust %.2f)", h.Score, h.Key, recordSummary(&h.SignedLesson.Lesson), h.Trust)
	}
	return res, b.String(), nil
}

func (t tools) directorySearch(ctx context.Context, a *mcpDirectorySearchArgs) (*api.DirectorySearchResult, string, error) {
	if a.DeadlineMs < 0 {
		return nil, "", fmt.Errorf("%w: deadline_ms must not be negative", protocol.ErrInvalid)
	}
	res, err := t.api.DirectorySearch(ctx, api.DirectorySearchRequest{Query: a.Query, Directories: a.Directories,
		Peers: a.Peers, TrustedOnly: a.TrustedOnly, Limit: a.Limit, DeadlineMs: min(a.DeadlineMs, 60_000)})
	if err != nil {
		return nil, "", err
	}
	res.Results, res.Directories, res.Warnings = nonNil(res.Results), nonNil(res.Directories), nonNil(res.Warnings)
	var b strings.Builder
	fmt.Fprintf(&b, "%d result(s) from %d directorie(s)", len(res.Results), len(res.Directories))
	if res.Truncated {
		b.WriteString(" (partial)")
	}
	for _, h := range res.Results {
		mark := ""
		if !h.Trusted {
			mark = " [untrusted publisher]"
		}
		fmt.Fprintf(&b, "\n%.3f %s %s%s", h.Score, h.Key, recordSummary(&h.SignedLesson.Lesson), mark)
	}
	return res, b.String(), nil
}

func (t tools) directories(ctx context.Context, _ *struct{}) (*directoriesAnswer, string, error) {
	ds, err := t.api.DirectoryList(ctx)
	if err != nil {
		return nil, "", err
	}
	return &directoriesAnswer{Directories: nonNil(ds)}, fmt.Sprintf("%d directorie(s)", len(ds)), nil
}

func (t tools) directoryAdd(ctx context.Context, a *mcpDirectoryArgs) (*api.DirectoryEntry, string, error) {
	if strings.TrimSpace(a.Target) == "" {
		return nil, "", fmt.Errorf("%w: target: required", protocol.ErrInvalid)
	}
	e, err := t.api.DirectoryAdd(ctx, a.Target)
	if err != nil {
		return nil, "", err
	}
	return e, "added directory " + a.Target, nil
}

func (t tools) directoryRemove(ctx context.Context, a *mcpDirectoryArgs) (*removedAnswer, string, error) {
	ok, err := t.api.DirectoryRemove(ctx, a.Target)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", fmt.Errorf("%w: no directory %s", protocol.ErrNotFound, a.Target)
	}
	return &removedAnswer{Removed: true}, "removed directory " + a.Target, nil
}

func (t tools) verify(ctx context.Context, a *mcpVerifyArgs) (*api.VerifyReport, string, error) {
	hasDoc := a.Document != nil && len(bytes.TrimSpace(a.Document.RawMessage)) > 0 && string(bytes.TrimSpace(a.Document.RawMessage)) != "null"
	if (a.Key == "") == !hasDoc {
		return nil, "", fmt.Errorf("%w: give key (lessonId@nodeId) or document (a SignedLesson or EncryptedLesson), one of them", protocol.ErrInvalid)
	}
	var rep *api.VerifyReport
	if a.Key != "" {
		if _, _, err := protocol.ParseKey(a.Key); err != nil {
			return nil, "", err
		}
		var err error
		if rep, err = t.api.VerifyKey(ctx, a.Key); err != nil {
			return nil, "", err
		}
	} else {
		rep = t.verifyDocument(ctx, a.Document.RawMessage)
	}
	sum := "✓ " + rep.Key + " is valid"
	switch {
	case !rep.Valid:
		sum = "✗ " + rep.Key + " is not valid: " + rep.Error
	case rep.Revoked:
		sum = "✗ " + rep.Key + " is signed but revoked"
	}
	if rep.Valid && rep.Source != "document" {
		if rep.Trusted {
			sum += fmt.Sprintf("; trusted (score %.2f)", rep.TrustScore)
		} else {
			sum += "; no trust path to its publisher"
		}
	}
	return rep, sum, nil
}

// verifyDocument checks a SignedLesson or EncryptedLesson offline.
func (t tools) verifyDocument(ctx context.Context, doc json.RawMessage) *api.VerifyReport {
	rep := &api.VerifyReport{Source: "document", RevocationSource: "not checked: a document alone has no revocation source"}
	var probe struct {
		Encryption json.RawMessage `json:"encryption"`
	}
	_ = json.Unmarshal(doc, &probe)
	var err error
	if len(probe.Encryption) > 0 {
		var el *protocol.EncryptedLesson
		if el, err = protocol.DecodeEncryptedLesson(doc); err == nil {
			rep.Key, rep.NodeID, rep.Timestamp, rep.PublishedAt = el.Key(), el.Signature.NodeID, el.Signature.Timestamp, el.Publication.PublishedAt
			rep.EncryptedLesson = el
			if err = protocol.VerifyEncrypted(el, protocol.VerifyOptions{AllowOld: true}); err == nil {
				rep.KeyStatus, _ = t.api.KeyStatus(ctx, el)
			}
		}
	} else {
		var sl *protocol.SignedLesson
		if sl, err = protocol.DecodeSignedLesson(doc); err == nil {
			rep.Key, rep.NodeID, rep.Timestamp, rep.PublishedAt = sl.Key(), sl.Signature.NodeID, sl.Signature.Timestamp, sl.Publication.PublishedAt
			rep.Lesson = sl
			err = protocol.Verify(sl, protocol.VerifyOptions{AllowOld: true})
		}
	}
	if pk, kerr := protocol.PublicKeyOf(rep.NodeID); kerr == nil {
		rep.Fingerprint = protocol.Fingerprint(pk)
	}
	rep.Valid = err == nil
	if err != nil {
		rep.Error = err.Error()
	}
	return rep
}

func (t tools) revoke(ctx context.Context, a *mcpRevokeArgs2) (*protocol.Revocation, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	reason := a.Reason
	if reason == "" {
		reason = "other"
	}
	rv, err := t.api.Revoke(ctx, a.ID, reason)
	if err != nil {
		return nil, "", err
	}
	return rv, "revoked " + a.ID + " (" + reason + "): the revocation is announced", nil
}

func (t tools) follow(ctx context.Context, a *mcpTargetArgs) (*okAnswer, string, error) {
	if err := t.api.Follow(ctx, a.Target); err != nil {
		return nil, "", err
	}
	msg := "following " + a.Target
	return &okAnswer{Success: true, Message: msg}, msg, nil
}

func (t tools) unfollow(ctx context.Context, a *mcpTargetArgs) (*okAnswer, string, error) {
	if err := t.api.Unfollow(ctx, a.Target); err != nil {
		return nil, "", err
	}
	msg := "no longer following " + a.Target
	return &okAnswer{Success: true, Message: msg}, msg, nil
}

func (t tools) following(ctx context.Context, _ *struct{}) (*followingAnswer, string, error) {
	topics, feeds, err := t.api.Following(ctx)
	if err != nil {
		return nil, "", err
	}
	return &followingAnswer{Topics: nonNil(topics), Feeds: nonNil(feeds)},
		fmt.Sprintf("topics: %s; feeds: %d", strings.Join(topics, ", "), len(feeds)), nil
}

func (t tools) trustList(ctx context.Context, _ *struct{}) (*trustListAnswer, string, error) {
	es, err := t.api.TrustList(ctx)
	if err != nil {
		return nil, "", err
	}
	pending, err := t.api.TrustPending(ctx)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d trusted, %d pending", len(es), len(pending))
	for _, e := range es {
		fmt.Fprintf(&b, "\n%s %s %d hop(s) score %.2f %s", e.NodeID, e.Level, e.Hops, e.Score, e.Note)
	}
	return &trustListAnswer{Entries: nonNil(es), Pending: nonNil(pending)}, b.String(), nil
}

func (t tools) trustAdd(ctx context.Context, a *mcpTrustAddArgs) (*okAnswer, string, error) {
	level := trust.LevelFull
	if a.Level != "" {
		l, err := trust.ParseLevel(a.Level)
		if err != nil {
			return nil, "", fmt.Errorf("%w: level: %v", protocol.ErrInvalid, err)
		}
		level = l
	}
	if err := t.api.TrustSet(ctx, a.NodeID, level, a.Note); err != nil {
		return nil, "", err
	}
	msg := fmt.Sprintf("trust %s: %s", a.NodeID, level)
	return &okAnswer{Success: true, Message: msg}, msg, nil
}

func (t tools) trustRemove(ctx context.Context, a *mcpNodeIDArgs) (*okAnswer, string, error) {
	if err := t.api.TrustRemove(ctx, a.NodeID); err != nil {
		return nil, "", err
	}
	msg := "removed trust in " + a.NodeID
	return &okAnswer{Success: true, Message: msg}, msg, nil
}

func (t tools) trustPath(ctx context.Context, a *mcpNodeIDArgs) (*api.TrustPathInfo, string, error) {
	p, err := t.api.TrustPath(ctx, a.NodeID)
	if err != nil {
		return nil, "", err
	}
	sum := a.NodeID + ": no trust path"
	switch {
	case p.Blocked:
		sum = a.NodeID + ": blocked"
	case p.Trusted:
		sum = fmt.Sprintf("%s: trusted, score %.2f, path %s", a.NodeID, p.Score, strings.Join(p.Hops, " → "))
	}
	return p, sum, nil
}

func (t tools) watchAdd(ctx context.Context, a *mcpWatchAddArgs) (*api.WatchAdded, string, error) {
	res, err := t.api.WatchAdd(ctx, api.WatchSpec{Query: a.Query, Topic: a.Topic, Sources: a.Sources})
	if err != nil {
		return nil, "", err
	}
	sum := "added standing query " + res.Watch.ID
	if res.Followed != "" {
		sum += "; now following topic " + res.Followed
	}
	return res, sum, nil
}

func (t tools) watchList(ctx context.Context, _ *struct{}) (*watchListAnswer, string, error) {
	ws, err := t.api.WatchList(ctx)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d standing quer(ies)", len(ws))
	for _, w := range ws {
		fmt.Fprintf(&b, "\n%s %q topic=%s %d match(es)", w.ID, w.Query, w.Topic, w.Matches)
	}
	return &watchListAnswer{Watches: nonNil(ws)}, b.String(), nil
}

func (t tools) watchRemove(ctx context.Context, a *mcpWatchIDArgs) (*removedAnswer, string, error) {
	ok, err := t.api.WatchRemove(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", fmt.Errorf("%w: no standing query %s", protocol.ErrNotFound, a.ID)
	}
	return &removedAnswer{Removed: true}, "removed " + a.ID, nil
}

func (t tools) watchPoll(ctx context.Context, a *mcpWatchPollArgs) (*api.WatchPollResult, string, error) {
	if a.WaitMs < 0 || a.Limit < 0 {
		return nil, "", fmt.Errorf("%w: wait_ms and limit must not be negative", protocol.ErrInvalid)
	}
	wait := min(time.Duration(a.WaitMs)*time.Millisecond, MaxWatchPollWait)
	res, err := t.api.WatchPoll(ctx, a.After, a.Limit, wait)
	if err != nil {
		return nil, "", err
	}
	res.Matches = nonNil(res.Matches)
	var b strings.Builder
	fmt.Fprintf(&b, "%d match(es), next %d", len(res.Matches), res.Next)
	if res.Missed {
		b.WriteString(" (some were missed: the backlog overflowed)")
	}
	for _, m := range res.Matches {
		fmt.Fprintf(&b, "\n%d %s %s (watch %s, %s)", m.Seq, m.Key, recordSummary(m.Lesson), m.Watch, m.Origin)
	}
	return res, b.String(), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
