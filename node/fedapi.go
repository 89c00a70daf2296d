package node

import (
	"context"
	"net/http"
	"time"

	"github.com/meshprotocol/mesh/protocol"
)

// FedSearchRequest is the control API's federated search request.
type FedSearchRequest struct {
	Query               string                 `json:"query"`
	Filters             protocol.SearchFilters `json:"filters"`
	Limit               int                    `json:"limit,omitempty"`
	Hops                int                    `json:"hops,omitempty"`
	DeadlineMs          int64                  `json:"deadlineMs,omitempty"`
	Sources             string                 `json:"sources,omitempty"`
	FreshnessHalfLifeMs int64                  `json:"freshnessHalfLifeMs,omitempty"`
}

// FedSearchHit is one ranked, verified result.
type FedSearchHit struct {
	Key          string                 `json:"key"`
	SignedLesson *protocol.SignedLesson `json:"signedLesson"`
	Relevance    float64                `json:"relevance"`
	Trust        float64                `json:"trust"`
	Freshness    float64                `json:"freshness"`
	Score        float64                `json:"score"`
	Via          string                 `json:"via"`
	TrustPath    []string               `json:"trustPath,omitempty"`
}

// FedSearchResponse is the control API's federated search answer.
type FedSearchResponse struct {
	Success   bool           `json:"success"`
	Results   []FedSearchHit `json:"results"`
	Truncated bool           `json:"truncated"`
	Invalid   int            `json:"invalid"`
	Revoked   int            `json:"revoked"`
	Untrusted int            `json:"untrusted"`
}

func (r *FedSearchRequest) query() FedQuery {
	return FedQuery{
		Query: r.Query, Filters: r.Filters, Limit: r.Limit, Hops: r.Hops,
		Deadline: time.Duration(r.DeadlineMs) * time.Millisecond, Sources: r.Sources,
		FreshnessHalfLife: time.Duration(r.FreshnessHalfLifeMs) * time.Millisecond,
	}
}

func fedResponse(res *FedResult) *FedSearchResponse {
	out := &FedSearchResponse{Success: true, Results: []FedSearchHit{}, Truncated: res.Truncated,
		Invalid: res.Invalid, Revoked: res.Revoked, Untrusted: res.Untrusted}
	for _, h := range res.Results {
		out.Results = append(out.Results, FedSearchHit{Key: h.Key, SignedLesson: h.Lesson, Relevance: h.Relevance,
			Trust: h.Trust, Freshness: h.Freshness, Score: h.Score, Via: h.Via, TrustPath: h.TrustPath})
	}
	return out
}

// SearchNetwork runs a federated search (FederatedSearch) and returns it in
// wire form; *Node and *Client both offer it.
func (n *Node) SearchNetwork(ctx context.Context, req FedSearchRequest) (*FedSearchResponse, error) {
	res, err := n.FederatedSearch(ctx, req.query())
	if err != nil {
		return nil, err
	}
	return fedResponse(res), nil
}

func (n *Node) handleFedSearch(w http.ResponseWriter, r *http.Request) {
	var req FedSearchRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, 0, err)
		return
	}
	resp, err := n.SearchNetwork(r.Context(), req)
	n.writeResult(w, resp, err)
}
