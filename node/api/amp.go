package api

import (
	"fmt"
	"strings"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// AMPProtocol is the AMP version the REST binding follows.
const AMPProtocol = "AMP/0.1"

// StoreResponse is the AMP store answer.
type StoreResponse struct {
	Success bool   `json:"success"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

// SearchRequest is the AMP search request, with MESH's extra filters.
type SearchRequest struct {
	Operation  string   `json:"operation,omitempty"`
	Query      string   `json:"query"`
	Type       string   `json:"type,omitempty"`
	Types      []string `json:"types,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Project    string   `json:"project,omitempty"`
	Agent      string   `json:"agent,omitempty"`
	Visibility []string `json:"visibility,omitempty"`
	Since      int64    `json:"since,omitempty"`
	Until      int64    `json:"until,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	MinScore   float64  `json:"min_score,omitempty"`
	// Origin is MESH's: "local" (default: this node's own records, as AMP
	// clients expect), "remote" (lessons received from other nodes) or "all".
	Origin string `json:"origin,omitempty"`
}

// StoreQuery converts the request to a store query, parsing its text once
// (store.Query.Parsed): an unparsable query is an error wrapping
// protocol.ErrInvalid.
func (s *SearchRequest) StoreQuery() (store.Query, error) {
	q := store.Query{
		Text: s.Query, Type: s.Type, Types: s.Types, Tags: s.Tags, Project: s.Project,
		Agent: s.Agent, Visibility: s.Visibility, Since: s.Since, Until: s.Until,
		Limit: s.Limit, MinScore: s.MinScore, Origin: s.Origin,
	}
	pq, err := store.ParseQuery(s.Query)
	if err != nil {
		return q, err
	}
	q.Parsed = &pq
	return q, nil
}

// NewSearchRequest is the AMP search request for q.
func NewSearchRequest(q store.Query) *SearchRequest {
	return &SearchRequest{
		Operation: "search", Query: q.Text, Type: q.Type, Types: q.Types, Tags: q.Tags,
		Project: q.Project, Agent: q.Agent, Visibility: q.Visibility, Since: q.Since,
		Until: q.Until, Limit: q.Limit, MinScore: q.MinScore, Origin: q.Origin,
	}
}

// SearchResult is one AMP search hit.
type SearchResult struct {
	ID     string           `json:"id"`
	Score  float64          `json:"score"`
	Record *protocol.Lesson `json:"record"`
	// Key and Publisher are set for lessons received from other nodes.
	Key       string `json:"key,omitempty"`
	Publisher string `json:"publisher,omitempty"`
}

// SearchResponse is the AMP search answer.
type SearchResponse struct {
	Success bool           `json:"success"`
	Results []SearchResult `json:"results"`
	Total   int            `json:"total"`
}

// NewSearchResponse is the AMP search answer for res.
func NewSearchResponse(res *store.SearchResult) *SearchResponse {
	out := &SearchResponse{Success: true, Results: make([]SearchResult, 0, len(res.Hits)), Total: res.Total}
	for _, h := range res.Hits {
		out.Results = append(out.Results, SearchResult{ID: h.ID, Score: h.Score, Record: h.Record, Key: h.Key, Publisher: h.Publisher})
	}
	return out
}

// StoreResult is the store form of the answer.
func (r *SearchResponse) StoreResult() *store.SearchResult {
	res := &store.SearchResult{Total: r.Total}
	for _, h := range r.Results {
		res.Hits = append(res.Hits, store.Hit{ID: h.ID, Score: h.Score, Record: h.Record, Key: h.Key, Publisher: h.Publisher})
	}
	return res
}

// RecordResponse is the AMP get answer.
type RecordResponse struct {
	Success bool             `json:"success"`
	Record  *protocol.Lesson `json:"record"`
}

// DeleteResponse is the AMP delete answer.
type DeleteResponse struct {
	Success bool `json:"success"`
	Deleted bool `json:"deleted"`
}

// ListResponse is the AMP list answer.
type ListResponse struct {
	Success bool               `json:"success"`
	Records []*protocol.Lesson `json:"records"`
	// Keys holds, when the page lists lessons received from other nodes
	// (origin remote or all), the key lessonId@nodeId of each record, ""
	// for an own record; absent otherwise.
	Keys    []string `json:"keys,omitempty"`
	Total   int      `json:"total"`
	HasMore bool     `json:"has_more"`
}

// NewListResponse is the AMP list answer for res.
func NewListResponse(res *store.ListResult) *ListResponse {
	out := &ListResponse{Success: true, Records: res.Records, Total: res.Total, HasMore: res.HasMore}
	if out.Records == nil {
		out.Records = []*protocol.Lesson{}
	}
	for _, k := range res.Keys {
		if k != "" {
			out.Keys = res.Keys
			break
		}
	}
	return out
}

// StoreResult is the store form of the answer.
func (r *ListResponse) StoreResult() *store.ListResult {
	res := &store.ListResult{Records: r.Records, Keys: r.Keys, Total: r.Total, HasMore: r.HasMore}
	if len(res.Records) == 0 {
		res.Records = nil
	}
	if res.Keys == nil && len(res.Records) > 0 {
		res.Keys = make([]string, len(res.Records))
	}
	return res
}

// StatusResponse is the AMP status answer.
type StatusResponse struct {
	Success      bool           `json:"success"`
	Healthy      bool           `json:"healthy"`
	Version      string         `json:"version"`
	Protocol     string         `json:"protocol"`
	NodeID       string         `json:"node_id"`
	Stats        map[string]int `json:"stats"`
	Capabilities struct {
		Search           string   `json:"search"`
		MaxContentLength int      `json:"max_content_length"`
		SupportedTypes   []string `json:"supported_types"`
	} `json:"capabilities"`
}

// ampStatsKey maps a record type to AMP's stats key: lessons, checkpoints,
// snippets; other types are pluralised the same way.
func ampStatsKey(typ string) string { return typ + "s" }

// AgentStatusResponse is the agent-status answer.
type AgentStatusResponse struct {
	Success      bool     `json:"success"`
	Agent        string   `json:"agent"`
	Status       string   `json:"status"`
	WorkingOn    string   `json:"working_on,omitempty"`
	Blockers     []string `json:"blockers,omitempty"`
	CheckpointID string   `json:"checkpoint_id,omitempty"`
	UpdatedAt    int64    `json:"updated_at,omitempty"`
}

// CheckRef checks what Get and Export take: a record id, or a lesson key
// lessonId@nodeId.
func CheckRef(ref string) error {
	if strings.Contains(ref, "@") {
		_, _, err := protocol.ParseKey(ref)
		return err
	}
	return protocol.ValidateID(ref)
}

// CheckAgent checks an agent name of an agent-status request.
func CheckAgent(agent string) error {
	if agent == "" || len(agent) > protocol.MaxIDLength {
		return fmt.Errorf("%w: agent: want 1 to %d bytes", protocol.ErrInvalid, protocol.MaxIDLength)
	}
	return nil
}

// NewAgentStatusResponse is the agent-status answer for st.
func NewAgentStatusResponse(st *store.AgentStatus) *AgentStatusResponse {
	return &AgentStatusResponse{
		Success: true, Agent: st.Agent, Status: st.Status, WorkingOn: st.WorkingOn,
		Blockers: st.Blockers, CheckpointID: st.CheckpointID, UpdatedAt: st.UpdatedAt,
	}
}

// StoreStatus is the store form of the answer.
func (r *AgentStatusResponse) StoreStatus() *store.AgentStatus {
	return &store.AgentStatus{Agent: r.Agent, Status: r.Status, WorkingOn: r.WorkingOn, Blockers: r.Blockers, CheckpointID: r.CheckpointID, UpdatedAt: r.UpdatedAt}
}

// PublishRequest is the control API's publish request.
type PublishRequest struct {
	ID string `json:"id"`
	PublishOptions
}

// RevokeRequest is the control API's revoke request.
type RevokeRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
}

// FollowingResponse lists what a node follows.
type FollowingResponse struct {
	Topics []string `json:"topics"`
	Feeds  []string `json:"feeds"`
}

// NewStatusResponse is the AMP status answer for st, as GET /amp/status
// gives it.
func NewStatusResponse(st *Status) *StatusResponse {
	resp := &StatusResponse{Success: true, Healthy: st.Healthy, Version: st.Version, Protocol: AMPProtocol, NodeID: st.NodeID}
	resp.Stats = map[string]int{"lessons": 0, "checkpoints": 0, "snippets": 0, "total_records": st.Total}
	for typ, c := range st.Counts {
		resp.Stats[ampStatsKey(typ)] = c
	}
	resp.Capabilities.Search = "bm25"
	resp.Capabilities.MaxContentLength = protocol.MaxRecordSize
	resp.Capabilities.SupportedTypes = []string{protocol.TypeLesson, protocol.TypeCheckpoint, protocol.TypeSnippet, "*"}
	return resp
}
