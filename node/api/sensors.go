package api

import "context"

// Sensors is the Sovereign IoT face of a node: its streams of encrypted
// readings, the readers it grants them to, the local names it gives other
// nodes, and the structured questions it asks them (package
// node/sensors).
type Sensors interface {
	// SensorAdd creates a stream (or changes its unit, TTL or anomaly
	// settings) and makes its first epoch key.
	SensorAdd(ctx context.Context, opts StreamOptions) (*Stream, error)
	// SensorList lists this node's streams.
	SensorList(ctx context.Context) ([]Stream, error)
	// SensorPush records one reading of a stream: signed, encrypted under
	// the stream's current epoch key, kept (durably: it survives kill -9
	// once this returns) and, for a published stream, announced.
	SensorPush(ctx context.Context, req PushRequest) (*Reading, error)
	// AccessGrant lets a reader fetch the epoch keys of the streams that
	// match its patterns, until Until (0: no end).
	AccessGrant(ctx context.Context, g GrantOptions) (*Grant, error)
	// AccessRevoke takes streams (all, if none are named) away from a
	// reader: their epochs rotate at once and the reader is refused every
	// key it has not fetched.
	AccessRevoke(ctx context.Context, reader string, streams []string) (*RevokeResult, error)
	// AccessList lists the grants.
	AccessList(ctx context.Context) ([]Grant, error)
	// NameSet gives one node, or a group of nodes, a local name.
	NameSet(ctx context.Context, name string, targets []string) (*Name, error)
	// NameList lists the local names.
	NameList(ctx context.Context) ([]Name, error)
	// NameRemove forgets a name; false if there was none.
	NameRemove(ctx context.Context, name string) (bool, error)
	// SensorSearch asks sources a structured question and decrypts and
	// verifies the readings they answer with.
	SensorSearch(ctx context.Context, req SensorSearchRequest) (*SensorSearchResult, error)
}

// AnomalyOptions tune a stream's anomaly marking: a reading is marked
// anomaly when it lies more than Threshold standard deviations from the
// stream's exponentially weighted mean (span Window readings), once
// MinSamples readings have been seen. Zero fields take the defaults
// (window 60, threshold 4, 10 samples).
type AnomalyOptions struct {
	Window     int     `json:"window,omitempty"`
	Threshold  float64 `json:"threshold,omitempty"`
	MinSamples int     `json:"minSamples,omitempty"`
}

// StreamOptions describe a stream to create or change.
type StreamOptions struct {
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
	// TTLMs is how long a reading lives everywhere, in ms; 0 means 7
	// days.
	TTLMs int64 `json:"ttlMs,omitempty"`
	// Local keeps the readings on this node: they are not announced (they
	// are still served, encrypted, to granted readers who ask).
	Local   bool           `json:"local,omitempty"`
	Anomaly AnomalyOptions `json:"anomaly,omitempty"`
}

// Stream is one of this node's streams.
type Stream struct {
	Name    string         `json:"name"`
	Unit    string         `json:"unit,omitempty"`
	TTLMs   int64          `json:"ttlMs"`
	Local   bool           `json:"local,omitempty"`
	Anomaly AnomalyOptions `json:"anomaly"`
	// Epoch is the current epoch key's ID, Epochs the live ones.
	Epoch  string `json:"epoch"`
	Epochs int    `json:"epochs"`
	// Readers are the nodes granted the stream now.
	Readers []string `json:"readers"`
	// Readings is how many readings are held (unexpired); Last the newest.
	Readings  int      `json:"readings"`
	Last      *float64 `json:"last,omitempty"`
	LastAt    int64    `json:"lastAt,omitempty"`
	CreatedAt int64    `json:"createdAt"`
}

// PushRequest is one reading.
type PushRequest struct {
	Stream string  `json:"stream"`
	Value  float64 `json:"value"`
	// At is when it was taken, Unix ms; 0 means now. At most an hour
	// ahead of the node's clock.
	At int64 `json:"at,omitempty"`
}

// Reading is one reading, as its sensor made it or as a reader decrypted
// and verified it.
type Reading struct {
	// Key is lessonId@nodeId of the reading's record.
	Key     string  `json:"key"`
	Source  string  `json:"source"`
	Name    string  `json:"name,omitempty"` // the source's local name, if any
	Stream  string  `json:"stream"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	At      int64   `json:"at"`
	Expires int64   `json:"expiresAt"`
	Anomaly bool    `json:"anomaly,omitempty"`
	// Score is how many standard deviations the reading lies from the
	// stream's rolling mean when it was taken (0 before enough samples).
	Score float64 `json:"score"`
	// KeyID is the epoch key it is encrypted under.
	KeyID string `json:"keyId"`
	// Held says this node holds the reading's ciphertext (received by
	// gossip or sync, perhaps from a relay while the source was away).
	Held bool `json:"held,omitempty"`
}

// GrantOptions grant a reader streams.
type GrantOptions struct {
	Reader string `json:"reader"`
	// Streams are stream patterns ("basement/*", "*"); none means "*".
	Streams []string `json:"streams,omitempty"`
	// Until ends the grant (Unix ms); 0 means no end.
	Until int64 `json:"until,omitempty"`
}

// Grant is a reader's access to streams of this node.
type Grant struct {
	Reader    string   `json:"reader"`
	Streams   []string `json:"streams"`
	Until     int64    `json:"until,omitempty"`
	GrantedAt int64    `json:"grantedAt"`
	// Matches are this node's streams the grant covers now.
	Matches []string `json:"matches"`
	Expired bool     `json:"expired,omitempty"`
}

// RevokeResult says what a revocation did.
type RevokeResult struct {
	Reader string `json:"reader"`
	// Streams are the streams taken away; each has a new epoch.
	Streams []string `json:"streams"`
	// Epochs are the new epoch keys, by stream.
	Epochs map[string]string `json:"epochs"`
	// Remaining is what is left of the grant, nil if nothing.
	Remaining *Grant `json:"remaining,omitempty"`
}

// Name is a local name for one node or a group of nodes.
type Name struct {
	Name  string   `json:"name"`
	Nodes []string `json:"nodes"`
}

// SensorSearchRequest is a structured question to sources.
type SensorSearchRequest struct {
	// Query is the question: words, comparisons with units
	// ("humidity > 60%"), time phrases ("last 24h", "since 2026-12-01",
	// "today").
	Query string `json:"query"`
	// Sources are names (NameSet) or node IDs, comma-separated.
	Sources string `json:"sources"`
	// Streams, if any, keep only the streams matching these patterns
	// ("basement/*").
	Streams []string `json:"streams,omitempty"`
	// Stats adds min/max/mean/last per stream over the readings found.
	Stats bool `json:"stats,omitempty"`
	// Limit caps the readings per source (0: 100, at most 1000).
	Limit int `json:"limit,omitempty"`
	// DeadlineMs bounds the question (0: 5 s).
	DeadlineMs int64 `json:"deadlineMs,omitempty"`
}

// SensorSearchResult is what the sources answered, decrypted and verified
// here.
type SensorSearchResult struct {
	Success bool `json:"success"`
	// Query is the question as understood.
	Query    SensorQueryInfo `json:"query"`
	Sources  []SourceResult  `json:"sources"`
	Readings []Reading       `json:"readings"`
	Stats    []StreamStats   `json:"stats,omitempty"`
}

// SensorQueryInfo is a parsed question, for people to check.
type SensorQueryInfo struct {
	Words       []string `json:"words,omitempty"`
	Comparisons []string `json:"comparisons,omitempty"`
	Since       int64    `json:"since,omitempty"`
	Until       int64    `json:"until,omitempty"`
}

// SourceResult is one source's part of an answer.
type SourceResult struct {
	Source   string   `json:"source"`
	Name     string   `json:"name,omitempty"`
	Streams  []string `json:"streams"`
	Readings int      `json:"readings"`
	// Unreadable counts readings that did not decrypt or verify here
	// (their keys refused: revoked access).
	Unreadable int    `json:"unreadable,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
	Error      string `json:"error,omitempty"`
	Code       string `json:"code,omitempty"`
}

// StreamStats aggregates one stream's readings found.
type StreamStats struct {
	Source string  `json:"source"`
	Stream string  `json:"stream"`
	Unit   string  `json:"unit,omitempty"`
	Count  int     `json:"count"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	Last   float64 `json:"last"`
	LastAt int64   `json:"lastAt"`
	From   int64   `json:"from"`
	To     int64   `json:"to"`
}
