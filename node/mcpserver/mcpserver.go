package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/meshprotocol/mesh/node/api"

	"github.com/meshprotocol/mesh/protocol"
	"github.com/meshprotocol/mesh/store"
)

// MCP tool names: AMP's MCP binding, plus MESH's own.
const (
	ToolStore       = "amp_store"
	ToolSearch      = "amp_search"
	ToolGet         = "amp_get"
	ToolDelete      = "amp_delete"
	ToolList        = "amp_list"
	ToolStatus      = "amp_status"
	ToolAgentStatus = "amp_agent_status"
	ToolPublish     = "mesh_publish"
	ToolExport      = "mesh_export"
)

// Options configure New. A nil *Options means all defaults.
type Options struct {
	// Logger receives the MCP server's own logs (sessions, transport
	// errors). Nil discards them. Tool arguments and results (record
	// contents, queries) are never logged.
	Logger *slog.Logger
}

// New returns an MCP server that serves AMP's MCP binding over api:
// the tools amp_store, amp_search, amp_get, amp_delete, amp_list and
// amp_status take and return the same JSON shapes as the REST binding
// (api.StoreResponse, api.SearchResponse, ...); amp_agent_status, mesh_publish and
// mesh_export add the rest of the node API, and the mesh_*encrypted, mesh_read,
// mesh_revoke_hard and mesh_key* tools its encrypted lessons and keys. api may be a *Node (in-process)
// or a *Client (a running daemon).
//
// A tool's result carries the answer as structured content, and as text: a
// one-line summary followed by the same JSON. A failure is a tool error
// (IsError) whose text is "CODE: message" with a MESH wire code
// (INVALID_REQUEST, UNKNOWN_LESSON, TOO_LARGE, ...); bad arguments are
// INVALID_REQUEST naming the field. An AMP request body sent as arguments
// as-is works: its "operation" field, if it names the tool's operation, is
// ignored.
//
// Serve it with Run on a transport (mcp.StdioTransport for `mesh mcp`).
// The server is safe for concurrent use.
func New(a api.API, version string, opts *Options) *mcp.Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "mesh", Title: "MESH agent memory", Version: version}, &mcp.ServerOptions{
		Logger: log,
		Instructions: "Agent memory (AMP) on a MESH node. Store lessons, checkpoints, snippets or " +
			"any other record type with amp_store; find them with amp_search (words, \"phrases\", " +
			"field comparisons such as humidity > 60) or amp_list. Records are private to this " +
			"node unless published with mesh_publish. Beyond this node: mesh_network_search searches the " +
			"public lessons of the peers it trusts (mesh_directory_search the directories), mesh_verify checks a " +
			"lesson, mesh_trust_* manage whom it trusts, mesh_follow the topics and feeds it receives, and " +
			"mesh_watch_add with mesh_watch_poll deliver new lessons that match a standing query.",
	})
	t := tools{api: a}
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(false)}

	addTool(s, log, &mcp.Tool{
		Name: ToolStore, Title: "Store a memory record",
		Description: "Store (upsert) a memory record. A record without an id gets one; an existing id is " +
			"updated. A record stored with visibility public or unlisted is published (signed, and announced " +
			"if public) as it is stored; private (the default) is never shared. Same request and answer as AMP's POST /amp/store.",
		Annotations: &mcp.ToolAnnotations{OpenWorldHint: ptr(true)},
	}, "store", t.store)
	addTool(s, log, &mcp.Tool{
		Name: ToolSearch, Title: "Search memory",
		Description: "Full-text search (BM25) of the node's records with optional filters; results are " +
			"ranked, each with a score in (0, 1]. Same request and answer as AMP's POST /amp/search.",
		Annotations: readOnly,
	}, "search", t.search)
	addTool(s, log, &mcp.Tool{
		Name: ToolGet, Title: "Get a record",
		Description: "Get one record by id. Same answer as AMP's GET /amp/records/{id}.",
		Annotations: readOnly,
	}, "get", t.get)
	addTool(s, log, &mcp.Tool{
		Name: ToolDelete, Title: "Delete a record",
		Description: "Delete a record (and its publication) by id. Same answer as AMP's DELETE /amp/records/{id}.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, "delete", t.delete)
	addTool(s, log, &mcp.Tool{
		Name: ToolList, Title: "List records",
		Description: "List records with filters, newest first by default, a page at a time. Same answer " +
			"as AMP's GET /amp/records.",
		Annotations: readOnly,
	}, "list", t.list)
	addTool(s, log, &mcp.Tool{
		Name: ToolStatus, Title: "Node status",
		Description: "Node health, version and record counts per type. Same answer as AMP's GET /amp/status.",
		Annotations: readOnly,
	}, "status", t.status)
	addTool(s, log, &mcp.Tool{
		Name: ToolAgentStatus, Title: "Agent status",
		Description: "An agent's state (idle, in_progress or blocked) from its latest checkpoint. Same " +
			"answer as GET /amp/agents/{agent}/status.",
		Annotations: readOnly,
	}, "agent_status", t.agentStatus)
	addTool(s, log, &mcp.Tool{
		Name: ToolPublish, Title: "Publish a record",
		Description: "Sign a record with the node's Ed25519 key for publication, public or unlisted; " +
			"the record then leaves the node for whoever asks for it. Private records are never " +
			"published. Answers the SignedLesson.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, "publish", t.publish)
	addTool(s, log, &mcp.Tool{
		Name: ToolExport, Title: "Export a signed record",
		Description: "The SignedLesson of a published record: JSON anyone can verify with a JCS " +
			"library and Ed25519 (mesh verify FILE).",
		Annotations: readOnly,
	}, "export", t.export)
	addKeyTools(s, log, t)
	addNetworkTools(s, log, t)
	return s
}

func ptr[T any](v T) *T { return &v }

// Tool arguments. Their JSON Schemas, generated from these types, are the
// tools' input schemas; unknown fields are refused.

type mcpStoreArgs struct {
	Record json.RawMessage `json:"record"`
}

type mcpIDArgs struct {
	ID string `json:"id" jsonschema:"the record's id, such as lesson_1a2b3c4d5e6f7a8b; for amp_get and mesh_export also a received lesson's key lessonId@nodeId"`
}

type mcpSearchArgs struct {
	Query      string   `json:"query,omitempty" jsonschema:"words (OR'ed, ranked by BM25), \"quoted phrases\" and numeric comparisons on record fields (humidity > 60); empty matches every record that passes the filters, newest first"`
	Type       string   `json:"type,omitempty" jsonschema:"only records of this type (lesson, checkpoint, snippet, ...)"`
	Types      []string `json:"types,omitempty" jsonschema:"only records of any of these types"`
	Tags       []string `json:"tags,omitempty" jsonschema:"only records carrying every one of these tags"`
	Project    string   `json:"project,omitempty" jsonschema:"only records of this project"`
	Agent      string   `json:"agent,omitempty" jsonschema:"only records of this agent"`
	Visibility []string `json:"visibility,omitempty" jsonschema:"only records with one of these visibilities: private, unlisted, public"`
	Since      int64    `json:"since,omitempty" jsonschema:"only records created at or after this time, Unix milliseconds"`
	Until      int64    `json:"until,omitempty" jsonschema:"only records created at or before this time, Unix milliseconds"`
	Limit      int      `json:"limit,omitempty" jsonschema:"at most this many results, 1 to 100; default 10"`
	MinScore   float64  `json:"min_score,omitempty" jsonschema:"drop results scoring below this, 0 to 1"`
	Origin     string   `json:"origin,omitempty" jsonschema:"local (the default: this node's own records), remote (lessons received from other nodes, each with its key and publisher) or all"`
}

type mcpListArgs struct {
	Type       string   `json:"type,omitempty" jsonschema:"only records of this type (lesson, checkpoint, snippet, ...)"`
	Agent      string   `json:"agent,omitempty" jsonschema:"only records of this agent"`
	Project    string   `json:"project,omitempty" jsonschema:"only records of this project"`
	Visibility string   `json:"visibility,omitempty" jsonschema:"only records of this visibility: private, unlisted or public"`
	Tags       []string `json:"tags,omitempty" jsonschema:"only records carrying every one of these tags"`
	Limit      int      `json:"limit,omitempty" jsonschema:"page size, 1 to 1000; default 20"`
	Offset     int      `json:"offset,omitempty" jsonschema:"skip this many records"`
	Order      string   `json:"order,omitempty" jsonschema:"by created_at: desc (newest first, the default) or asc"`
	Origin     string   `json:"origin,omitempty" jsonschema:"local (the default: this node's own records), remote (lessons received from other nodes) or all"`
}

type mcpAgentArgs struct {
	Agent string `json:"agent" jsonschema:"the agent identifier, as in its checkpoints' agent field"`
}

type mcpPublishArgs struct {
	ID         string   `json:"id" jsonschema:"the record's id"`
	Visibility string   `json:"visibility" jsonschema:"public (announced and searchable by others) or unlisted (fetchable by exact key only)"`
	Topics     []string `json:"topics,omitempty" jsonschema:"MESH topics to announce the record on"`
}

// tools are the tool handlers over one API.
type tools struct {
	api api.API
}

func (t tools) store(ctx context.Context, a *mcpStoreArgs) (*api.StoreResponse, string, error) {
	if len(a.Record) == 0 || string(a.Record) == "null" {
		return nil, "", fmt.Errorf("%w: record: required, a JSON object such as {\"type\":\"lesson\",\"title\":\"...\",\"content\":\"...\"}", protocol.ErrInvalid)
	}
	rec, err := protocol.DecodeLesson(a.Record)
	if err != nil {
		return nil, "", err
	}
	id, created, err := t.api.Put(ctx, rec)
	if err != nil {
		return nil, "", err
	}
	verb := "updated"
	if created {
		verb = "stored"
	}
	return &api.StoreResponse{Success: true, ID: id, Created: created}, fmt.Sprintf("%s %s %s", verb, rec.Type, id), nil
}

func (t tools) search(ctx context.Context, a *mcpSearchArgs) (*api.SearchResponse, string, error) {
	req := api.SearchRequest{
		Query: a.Query, Type: a.Type, Types: a.Types, Tags: a.Tags, Project: a.Project, Agent: a.Agent,
		Visibility: a.Visibility, Since: a.Since, Until: a.Until, Limit: a.Limit, MinScore: a.MinScore, Origin: a.Origin,
	}
	q, err := req.StoreQuery()
	if err != nil {
		return nil, "", err
	}
	res, err := t.api.Search(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out := api.NewSearchResponse(res)
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d matches", len(res.Hits), res.Total)
	for _, h := range res.Hits {
		name := h.ID
		if h.Key != "" {
			name = h.Key
		}
		fmt.Fprintf(&b, "\n%.3f %s %s", h.Score, name, recordSummary(h.Record))
	}
	return out, b.String(), nil
}

func (t tools) get(ctx context.Context, a *mcpIDArgs) (*api.RecordResponse, string, error) {
	if err := api.CheckRef(a.ID); err != nil {
		return nil, "", err
	}
	rec, err := t.api.Get(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	return &api.RecordResponse{Success: true, Record: rec}, rec.ID + " " + recordSummary(rec), nil
}

func (t tools) delete(ctx context.Context, a *mcpIDArgs) (*api.DeleteResponse, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	deleted, err := t.api.Delete(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	if !deleted {
		return nil, "", fmt.Errorf("delete %s: %w", a.ID, protocol.ErrUnknownLesson)
	}
	return &api.DeleteResponse{Success: true, Deleted: true}, "deleted " + a.ID, nil
}

func (t tools) list(ctx context.Context, a *mcpListArgs) (*api.ListResponse, string, error) {
	res, err := t.api.List(ctx, store.ListOptions{
		Type: a.Type, Agent: a.Agent, Project: a.Project, Visibility: a.Visibility, Tags: a.Tags,
		Limit: a.Limit, Offset: a.Offset, Order: a.Order, Origin: a.Origin,
	})
	if err != nil {
		return nil, "", err
	}
	out := api.NewListResponse(res)
	recs := out.Records
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d records", len(recs), res.Total)
	if res.HasMore {
		b.WriteString(" (more: raise offset)")
	}
	for _, r := range recs {
		fmt.Fprintf(&b, "\n%s [%s] %s", r.ID, r.Type, recordSummary(r))
	}
	return out, b.String(), nil
}

func (t tools) status(ctx context.Context, _ *struct{}) (*api.StatusResponse, string, error) {
	st, err := t.api.Status(ctx)
	if err != nil {
		return nil, "", err
	}
	resp := api.NewStatusResponse(st)
	health := "healthy"
	if !st.Healthy {
		health = "unhealthy"
	}
	return resp, fmt.Sprintf("node %s (mesh %s, %s): %d records", st.NodeID, st.Version, health, st.Total), nil
}

func (t tools) agentStatus(ctx context.Context, a *mcpAgentArgs) (*api.AgentStatusResponse, string, error) {
	if err := api.CheckAgent(a.Agent); err != nil {
		return nil, "", err
	}
	st, err := t.api.AgentStatus(ctx, a.Agent)
	if err != nil {
		return nil, "", err
	}
	sum := st.Agent + ": " + st.Status
	if st.WorkingOn != "" {
		sum += ", working on: " + oneLine(st.WorkingOn)
	}
	if len(st.Blockers) > 0 {
		sum += fmt.Sprintf(", %d blocker(s)", len(st.Blockers))
	}
	return api.NewAgentStatusResponse(st), sum, nil
}

func (t tools) publish(ctx context.Context, a *mcpPublishArgs) (*protocol.SignedLesson, string, error) {
	if err := protocol.ValidateID(a.ID); err != nil {
		return nil, "", err
	}
	if a.Visibility != protocol.VisibilityPublic && a.Visibility != protocol.VisibilityUnlisted {
		return nil, "", fmt.Errorf("%w: visibility %q: want public or unlisted", protocol.ErrInvalid, a.Visibility)
	}
	sl, err := t.api.Publish(ctx, a.ID, api.PublishOptions{Visibility: a.Visibility, Topics: a.Topics})
	if err != nil {
		return nil, "", err
	}
	return sl, fmt.Sprintf("published %s (%s) as %s", a.ID, a.Visibility, sl.Key()), nil
}

func (t tools) export(ctx context.Context, a *mcpIDArgs) (*protocol.SignedLesson, string, error) {
	if err := api.CheckRef(a.ID); err != nil {
		return nil, "", err
	}
	sl, err := t.api.Export(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	return sl, fmt.Sprintf("signed lesson %s (%s), signed by %s", sl.Key(), sl.Publication.Visibility, sl.Signature.NodeID), nil
}

// recordSummary is a record's title (else working_on, else content) on one
// line of at most 60 characters.
func recordSummary(r *protocol.Lesson) string {
	if r == nil {
		return ""
	}
	s := r.Title
	if s == "" {
		s = r.WorkingOn
	}
	if s == "" {
		s = r.Content
	}
	return oneLine(s)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return s
}

// addTool adds a tool whose input and output schemas are those of In and
// Out. Unlike mcp.AddTool, every failure, including arguments that do not
// fit the schema, becomes a tool error carrying a MESH code, and the text
// content is a summary followed by the JSON answer.
func addTool[In, Out any](s *mcp.Server, log *slog.Logger, t *mcp.Tool, op string, fn func(context.Context, *In) (*Out, string, error)) {
	in, out := schemaFor[In](), schemaFor[Out]()
	resolved, err := in.Resolve(nil)
	if err != nil {
		panic(fmt.Sprintf("mcpserver: tool %s: input schema: %v", t.Name, err)) // a bug in the types above
	}
	t.InputSchema, t.OutputSchema = in, out
	s.AddTool(t, func(ctx context.Context, req *mcp.CallToolRequest) (res *mcp.CallToolResult, _ error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("mcp tool panicked", "tool", t.Name)
				res = toolError(fmt.Errorf("%s: internal error", t.Name))
			}
		}()
		args, err := decodeArgs[In](req.Params.Arguments, resolved, t.Name, op)
		if err != nil {
			return toolError(err), nil
		}
		v, summary, err := fn(ctx, args)
		if err != nil {
			return toolError(err), nil
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return toolError(fmt.Errorf("%s: encode answer: %w", t.Name, err)), nil
		}
		js := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: summary}, &mcp.TextContent{Text: string(js)}},
			StructuredContent: json.RawMessage(js),
		}, nil
	})
}

// toolError is the tool result for err: IsError, and "CODE: message".
func toolError(err error) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		IsError: true,
		Content: []mcp.Content{&mcp.TextContent{Text: string(protocol.CodeOf(err)) + ": " + err.Error()}},
	}
}

// decodeArgs checks raw tool arguments against the tool's input schema and
// decodes them. An "operation" field naming op is dropped, so that an AMP
// request body works as arguments.
func decodeArgs[In any](raw json.RawMessage, schema *jsonschema.Resolved, tool, op string) (*In, error) {
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 && string(bytes.TrimSpace(raw)) != "null" {
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return nil, fmt.Errorf("%w: %s: arguments must be a JSON object", protocol.ErrInvalid, tool)
		}
	}
	if v, ok := m["operation"]; ok {
		var got string
		if json.Unmarshal(v, &got) != nil || got != op {
			return nil, fmt.Errorf("%w: %s: field operation: %s sent to %s; omit it or send %q", protocol.ErrInvalid, tool, v, tool, op)
		}
		delete(m, "operation")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrInvalid, tool, err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrInvalid, tool, err)
	}
	if err := schema.Validate(generic); err != nil {
		return nil, fmt.Errorf("%w: %s arguments: %s", protocol.ErrInvalid, tool, schemaError(err))
	}
	in := new(In)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w: %s: field %s: want %s", protocol.ErrInvalid, tool, te.Field, te.Type)
		}
		return nil, fmt.Errorf("%w: %s: %v", protocol.ErrInvalid, tool, err)
	}
	return in, nil
}

// schemaError shortens a schema validation error to what was wrong where:
// "validating root: validating /properties/record: validating
// /properties/record/properties/tags: type: ..." becomes "field
// record.tags: type: ...".
func schemaError(err error) string {
	s, path := strings.TrimPrefix(err.Error(), "validating root: "), ""
	for strings.HasPrefix(s, "validating /") {
		p, rest, ok := strings.Cut(strings.TrimPrefix(s, "validating "), ": ")
		if !ok {
			break
		}
		path, s = p, rest
	}
	if path == "" {
		return s
	}
	path = strings.ReplaceAll(strings.TrimPrefix(path, "/properties/"), "/properties/", ".")
	return "field " + strings.ReplaceAll(path, "/", ".") + ": " + s
}

// schemaFor is the JSON Schema of T, with records described by recordSchema.
func schemaFor[T any]() *jsonschema.Schema {
	s, err := jsonschema.For[T](&jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[protocol.Lesson](): recordSchema,
		reflect.TypeFor[json.RawMessage](): recordSchema, // mcpStoreArgs.Record
		reflect.TypeFor[document](): {Type: "object",
			Description: "a SignedLesson or EncryptedLesson JSON object, as mesh_export or a file gave it"},
	}})
	if err != nil {
		panic(fmt.Sprintf("mcpserver: schema of %T: %v", *new(T), err)) // a bug in the types above
	}
	return s
}

// recordSchema describes an AMP memory record. It is open: a record may
// carry any further field (a sensor reading's humidity, say), which is kept.
var recordSchema = func() *jsonschema.Schema {
	str := func(desc string) *jsonschema.Schema { return &jsonschema.Schema{Type: "string", Description: desc} }
	num := func(desc string) *jsonschema.Schema { return &jsonschema.Schema{Type: "integer", Description: desc} }
	strs := func(desc string) *jsonschema.Schema {
		return &jsonschema.Schema{Types: []string{"null", "array"}, Items: &jsonschema.Schema{Type: "string"}, Description: desc}
	}
	return &jsonschema.Schema{
		Type: "object",
		Description: "An AMP memory record: a lesson, checkpoint, snippet, or any other type. " +
			"Fields beyond those listed are kept as they are (numbers can be searched with comparisons).",
		Properties: map[string]*jsonschema.Schema{
			"id":         str("record id; generated when absent, an existing id is updated. Letters, digits, '_', '-', '.'"),
			"type":       str("lesson, checkpoint, snippet, or any other type (reading, ...)"),
			"title":      str("short descriptive title (lessons)"),
			"content":    str("the primary content, indexed for search"),
			"tags":       strs("tags"),
			"severity":   str("lessons: info, warning or critical"),
			"created_at": num("Unix milliseconds; set by the node when absent"),
			"updated_at": num("Unix milliseconds"),
			"agent":      str("agent identifier (required for checkpoints to count in agent status)"),
			"project":    str("project or repository scope"),
			"working_on": str("checkpoints: the current task"),
			"state": {
				Types:       []string{"null", "object"},
				Description: "checkpoints: {decisions, blockers, artifacts, flags}, each a list of strings; flags such as IDLE, IN_PROGRESS, BLOCKED",
			},
			"session_id": str("checkpoints: session correlation id"),
			"file_path":  str("snippets: source file path"),
			"language":   str("snippets: programming language"),
			"start_line": num("snippets: first line in the source"),
			"end_line":   num("snippets: last line in the source"),
			"repo":       str("snippets: repository"),
			"visibility": str("private (the default: never leaves the node), unlisted or public"),
			"expires_at": num("Unix milliseconds after which the record disappears; absent: never"),
		},
		Required: []string{"type"},
	}
}()
