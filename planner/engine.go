package planner

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/tiles"
)

// Sources resolves the `-- source:` names of SQL resolvers.
type Sources interface {
	Source(name string) (stores.Source, error)
}

// Engine plans and runs feature queries over one feature graph. It is safe
// for concurrent use; plans are cached by statement key (Prepare).
//
// Close ends what the engine started: it writes the queued write-backs to
// the online store and stops the goroutines writing them, and it stops the
// Python worker processes. It closes none of
// what the engine was given (the online store, the offline log, the
// sources): whoever opened them closes them, after the engine
// (config.Env.Close).
type Engine struct {
	graph   *features.Graph
	sources Sources
	mem     memory.Allocator
	funcs   *functions.Registry
	plans   *lru.Cache[string, *Plan] // by statement key
	// planEntries and planBytes bound plans (WithPlanCache).
	planEntries int
	planBytes   int64

	store    stores.OnlineStore // nil: no online store
	queueLen int
	writer   *writer

	offline stores.OfflineLog // nil: computed values are not logged
	// offlineRead reads the log back (RunOptions.FromLog); nil when the
	// log cannot be read or there is none.
	offlineRead stores.OfflineReader
	tiles       *tiles.Store // nil: materialized runs compute every bucket at the source

	pyCfg  pyworker.Config
	python *pyworker.Pool // nil: the graph has no resolver that runs in Python

	validations validationCounters // per feature with bounds

	observer   Observer         // nil: none
	tracer     oteltrace.Tracer // nil: runs are not traced (WithTracerProvider)
	maxMemory  int64            // WithMaxQueryMemory; 0: no bound
	maxHasMany int              // WithMaxHasManyRows

	reads sync.Map // *features.Feature → []string (Reads)
}

// NewEngine returns an engine over g reading from sources. mem may be nil
// (the Go allocator).
func NewEngine(g *features.Graph, sources Sources, mem memory.Allocator, opts ...EngineOption) *Engine {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	e := &Engine{graph: g, sources: sources, mem: mem, funcs: functions.Default(), queueLen: 1024,
		planEntries: DefaultPlanEntries, planBytes: DefaultPlanBytes, validations: newValidationCounters(g)}
	for _, o := range opts {
		o(e)
	}
	e.plans = lru.New[string, *Plan](e.planEntries, e.planBytes, nil)
	if e.store != nil {
		e.writer = newWriter(e.store, e.queueLen, e.observer)
	}
	e.python = newPython(g, e.pyCfg, mem)
	return e
}

// The plan cache's default bounds: enough for the statements of a busy
// service many times over, small next to a server's heap.
const (
	DefaultPlanEntries = 10000
	DefaultPlanBytes   = 64 << 20
)

// WithPlanCache bounds the plans the engine keeps: at most entries plans
// in about bytes of memory, the least recently used evicted first (0: the
// default of that bound).
func WithPlanCache(entries int, bytes int64) EngineOption {
	return func(e *Engine) {
		if entries > 0 {
			e.planEntries = entries
		}
		if bytes > 0 {
			e.planBytes = bytes
		}
	}
}

// Graph returns the engine's feature graph.
func (e *Engine) Graph() *features.Graph { return e.graph }

// Plan is a planned statement: its result schema is known before any row
// is read, and it can be executed many times with different inputs.
type Plan struct {
	engine  *Engine
	schema  *arrow.Schema
	root    *frameNode
	outputs []int // root columns, in output order
	timeCol int   // the input's __as_of__ column, -1 if none
	frames  []*frameNode
}

// Schema is the result schema: one field per output, in order.
func (p *Plan) Schema() *arrow.Schema { return p.schema }

// Execute runs the plan for inputs (columns as the statement's Inputs) evaluated at
// now (rows with an __as_of__ value use theirs). The result has one row per
// input row, in input order; the caller releases it.
func (p *Plan) Execute(ctx context.Context, inputs arrow.RecordBatch, now time.Time) (arrow.RecordBatch, error) {
	res, err := p.Run(ctx, inputs, RunOptions{Now: now})
	if err != nil {
		return nil, err
	}
	return res.Record, nil
}

// Run runs the plan for inputs with opts; see RunOptions and Result.
func (p *Plan) Run(ctx context.Context, inputs arrow.RecordBatch, opts RunOptions) (*Result, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.TraceID == "" && p.engine.offline != nil {
		opts.TraceID = rand.Text()
	}
	return p.execute(ctx, inputs, opts)
}

// Execute plans (or takes from the cache) and runs st over inputs, whose
// columns are st's Inputs, at st's Options.Now (zero: the time it starts).
// The caller releases the record.
func (e *Engine) Execute(ctx context.Context, st *statement.Statement, inputs arrow.RecordBatch) (arrow.RecordBatch, error) {
	p, err := e.Prepare(st)
	if err != nil {
		return nil, err
	}
	return p.Execute(ctx, inputs, st.Options.Now)
}
