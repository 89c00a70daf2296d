package store

import (
	"sync/atomic"

	zapx "github.com/blevesearch/zapx/v17"

	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/meshprotocol/mesh/protocol"
)

// indexFormat is the version of the index layout: the fields below, their
// analyzers and the scoring model. Bump it whenever any of them changes; an
// index of another format is rebuilt on Open.
const indexFormat = "3"

// Internal (non-document) keys of the index.
var (
	internalFormat     = []byte("mesh.format")
	internalGeneration = []byte("mesh.generation")
)

// Index fields. One composite text field keeps a query to one posting list
// per word; the keyword and numeric fields serve filters and sorting.
const (
	fieldText       = "text"       // title, content and tags; English analyzer, term vectors for phrases
	fieldType       = "type"       // keyword, doc values (Status facets)
	fieldTag        = "tag"        // keyword, one per tag
	fieldProject    = "project"    // keyword
	fieldAgent      = "agent"      // keyword
	fieldVisibility = "visibility" // keyword; of a remote lesson, its publication's
	fieldOrigin     = "origin"     // keyword: originLocal (this node's records) or originRemote (the remote cache)
	fieldPublisher  = "publisher"  // keyword, remote lessons only: the publisher's node ID
	fieldCreated    = "created"    // numeric created_at, doc values (List sort, since/until, created_at comparisons)
	fieldModified   = "mtime"      // checkpoints only: updated_at, else created_at, doc values (AgentStatus)
	fieldExpires    = "exp"        // numeric expires_at, only if set: the expiry clause excludes exp <= now
	numPrefix       = "n."         // numeric value of a record field, for comparisons
)

// maxNumericFields caps how many Extra numeric fields of one record are
// indexed for comparisons, so that a record cannot blow up the index's field
// table.
const maxNumericFields = 32

// indexConfig is the scorch runtime configuration. unsafe_batch lets a batch
// return once it is searchable, before it is on disk: the datastore is the
// truth and dirty markers cover what the index had not persisted (see
// Store.indexBatch). So the persister may also wait (PersisterNapTimeMSec,
// as bleve advises unsafe-batch users) to merge the small segments of a
// quarter second's batches in memory and write them as one: that cut the CPU of
// storing received lessons by a sixth (meshbench ingest ratio 0.22-0.25 →
// 0.29-0.30). The nap is short because Close waits for the last persist,
// nap included: with 2 s, a Close took 1.5 s and the store's race tests
// four to six times as long. Received lessons are batched before the index
// instead (indexDelay).
func indexConfig() map[string]interface{} {
	return map[string]interface{}{
		"unsafe_batch": true,
		"scorchPersisterOptions": map[string]interface{}{
			"PersisterNapTimeMSec": 250,
		},
		"scorchMergePlanOptions": map[string]interface{}{
			"MaxSegmentsPerTier":   20,
			"SegmentsPerMergeTask": 10,
		},
	}
}

// newMapping returns the index mapping. Documents are built by buildDoc and
// indexed with IndexAdvanced, so the mapping only tells queries which
// analyzer a field uses and selects BM25 scoring.
func newMapping() *mapping.IndexMappingImpl {
	m := bleve.NewIndexMapping()
	m.ScoringModel = index.BM25Scoring
	m.DefaultAnalyzer = en.AnalyzerName
	m.DefaultMapping.Dynamic = false
	m.IndexDynamic = false
	m.StoreDynamic = false
	m.DocValuesDynamic = false
	kw := bleve.NewKeywordFieldMapping()
	for _, f := range []string{fieldType, fieldTag, fieldProject, fieldAgent, fieldVisibility, fieldOrigin, fieldPublisher} {
		m.DefaultMapping.AddFieldMappingsAt(f, kw)
	}
	text := bleve.NewTextFieldMapping()
	text.Analyzer = en.AnalyzerName
	text.IncludeTermVectors = true
	text.Store = false
	m.DefaultMapping.AddFieldMappingsAt(fieldText, text)
	return m
}

// analyzers are the ones newMapping names, resolved once per index.
type analyzers struct {
	text, keyword analysis.Analyzer
	// expiring is set once a document with an expiry has been built for
	// the index (or found in it at open): until then searches leave out
	// the expiry clause, a numeric range that costs a few hundred term
	// look-ups on every search.
	expiring *atomic.Bool
}

func newAnalyzers(m *mapping.IndexMappingImpl) (analyzers, error) {
	a := analyzers{text: m.AnalyzerNamed(en.AnalyzerName), keyword: m.AnalyzerNamed(keyword.Name), expiring: new(atomic.Bool)}
	if a.text == nil || a.keyword == nil {
		return a, errors.New("store: index analyzers not registered")
	}
	return a, nil
}

const (
	textOptions    = index.IndexField | index.IncludeTermVectors
	keywordOptions = index.IndexField
	facetOptions   = index.IndexField | index.DocValues
	sortOptions    = index.IndexField | index.DocValues
	numOptions     = index.IndexField
)

// Values of fieldOrigin.
const (
	originLocal  = "local"
	originRemote = "remote"
)

// buildDoc turns one of this node's records into an index document.
func (a analyzers) buildDoc(l *protocol.Lesson) *document.Document {
	return a.buildDocAs(l.ID, l, visibilityOf(l), originLocal, "")
}

// buildRemoteDoc turns a cached remote lesson into an index document whose
// id is the lesson's key, lessonId@nodeId: '@' is not an id character, so it
// cannot collide with a record's id.
func (a analyzers) buildRemoteDoc(sl *protocol.SignedLesson) *document.Document {
	return a.buildDocAs(sl.Key(), &sl.Lesson, sl.Publication.Visibility, originRemote, sl.Signature.NodeID)
}

func (a analyzers) buildDocAs(docID string, l *protocol.Lesson, visibility, origin, publisher string) *document.Document {
	d := document.NewDocument(docID)
	d.AddField(document.NewTextFieldCustom(fieldText, nil, indexedText(l), textOptions, a.text))
	d.AddField(document.NewTextFieldCustom(fieldType, nil, []byte(l.Type), facetOptions, a.keyword))
	for i, t := range l.Tags {
		d.AddField(document.NewTextFieldCustom(fieldTag, []uint64{uint64(i)}, []byte(t), keywordOptions, a.keyword))
	}
	if l.Project != "" {
		d.AddField(document.NewTextFieldCustom(fieldProject, nil, []byte(l.Project), keywordOptions, a.keyword))
	}
	if l.Agent != "" {
		d.AddField(document.NewTextFieldCustom(fieldAgent, nil, []byte(l.Agent), keywordOptions, a.keyword))
	}
	d.AddField(document.NewTextFieldCustom(fieldVisibility, nil, []byte(visibility), keywordOptions, a.keyword))
	d.AddField(document.NewTextFieldCustom(fieldOrigin, nil, []byte(origin), keywordOptions, a.keyword))
	if publisher != "" {
		d.AddField(document.NewTextFieldCustom(fieldPublisher, nil, []byte(publisher), keywordOptions, a.keyword))
	}
	d.AddField(document.NewNumericFieldWithIndexingOptions(fieldCreated, nil, float64(l.CreatedAt), sortOptions))
	if l.Type == protocol.TypeCheckpoint {
		mtime := l.UpdatedAt
		if mtime == 0 {
			mtime = l.CreatedAt
		}
		d.AddField(document.NewNumericFieldWithIndexingOptions(fieldModified, nil, float64(mtime), sortOptions))
	}
	if l.ExpiresAt != 0 {
		a.expiring.Store(true) // before the document can be found
		d.AddField(document.NewNumericFieldWithIndexingOptions(fieldExpires, nil, float64(l.ExpiresAt), numOptions))
	}
	for _, f := range numericFields(l) {
		d.AddField(document.NewNumericFieldWithIndexingOptions(numericFieldName(f.name), nil, f.value, numOptions))
	}
	return d
}

type numericField struct {
	name  string
	value float64
}

// numericFields returns the numeric values of l that comparisons can use:
// the typed integer fields that are set and up to maxNumericFields Extra
// fields whose value is a finite JSON number and whose name is a valid
// comparison field name, in name order.
func numericFields(l *protocol.Lesson) []numericField {
	var out []numericField
	// created_at is the field fieldCreated; see numericFieldName.
	for _, name := range [...]string{"updated_at", "expires_at", "start_line", "end_line"} {
		if v, ok := l.Number(name); ok {
			out = append(out, numericField{name, v})
		}
	}
	if len(l.Extra) == 0 {
		return out
	}
	names := make([]string, 0, len(l.Extra))
	for name, raw := range l.Extra {
		if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && validFieldName(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		if n == maxNumericFields {
			break
		}
		if v, ok := l.Number(name); ok && !math.IsInf(v, 0) && !math.IsNaN(v) {
			out = append(out, numericField{name, v})
			n++
		}
	}
	return out
}

// numericFieldName is the index field holding the numeric value of a record
// field.
func numericFieldName(field string) string {
	if field == "created_at" {
		return fieldCreated
	}
	return numPrefix + field
}

func visibilityOf(l *protocol.Lesson) string {
	if l.Visibility == "" {
		return protocol.VisibilityPrivate
	}
	return l.Visibility
}

// newIndex creates an empty index at path, or in memory if path is "".
func newIndex(path string) (bleve.Index, error) {
	if path == "" {
		return bleve.NewUsing("", newMapping(), scorch.Name, scorch.Name, nil)
	}
	return bleve.NewUsing(path, newMapping(), scorch.Name, scorch.Name, indexConfig())
}

// openIndex opens the index at path. A panic inside bleve while opening or
// probing a damaged index is turned into an error, so a corrupt index gets
// rebuilt rather than crashing the node.
func openIndex(path string) (idx bleve.Index, err error) {
	defer func() {
		if r := recover(); r != nil {
			if idx != nil {
				_ = idx.Close()
			}
			idx, err = nil, fmt.Errorf("index panicked while opening: %v", r)
		}
	}()
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	idx, err = bleve.OpenUsing(path, indexConfig())
	if err != nil {
		return nil, err
	}
	// Probe: a damaged segment often only fails when read.
	if _, err := idx.DocCount(); err != nil {
		_ = idx.Close()
		return nil, err
	}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), 1, 0, false)
	req.Score = "none"
	if _, err := idx.Search(req); err != nil {
		_ = idx.Close()
		return nil, err
	}
	return idx, nil
}

func init() {
	// zap sizes a new segment's buffer from the previous segment's bytes per
	// document times (documents + 100). MESH writes mostly one record per
	// batch, so that reserve made every one-record segment about 100 times
	// its size (100 kB for a 1 kB lesson), which an in-memory index keeps
	// until its next compaction. Sizing for the batch at hand is enough: the
	// buffer still grows on demand.
	zapx.NewSegmentBufferNumResultsBump = 0
}
