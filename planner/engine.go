package planner

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/stores"
)

// Sources resolves the `-- source:` names of SQL resolvers.
type Sources interface {
	Source(name string) (stores.Source, error)
}

// Engine plans and runs feature queries over one feature graph. It is safe
// for concurrent use; plans are cached by query shape.
//
// Close ends what the engine started: it writes the queued write-backs to
// the online store and stops the goroutines writing them. It closes none of
// what the engine was given (the online store, the offline log, the
// sources): whoever opened them closes them, after the engine
// (config.Env.Close).
type Engine struct {
	graph   *features.Graph
	sources Sources
	mem     memory.Allocator
	funcs   *functions.Registry
	cache   sync.Map // shapeKey → *Plan

	store    stores.OnlineStore // nil: no online store
	queueLen int
	writer   *writer

	offline stores.OfflineLog // nil: computed values are not logged
}

// NewEngine returns an engine over g reading from sources. mem may be nil
// (the Go allocator).
func NewEngine(g *features.Graph, sources Sources, mem memory.Allocator, opts ...EngineOption) *Engine {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	e := &Engine{graph: g, sources: sources, mem: mem, funcs: functions.Default(), queueLen: 1024}
	for _, o := range opts {
		o(e)
	}
	if e.store != nil {
		e.writer = newWriter(e.store, e.queueLen)
	}
	return e
}

// Graph returns the engine's feature graph.
func (e *Engine) Graph() *features.Graph { return e.graph }

// Shape is a query without its input values: what plans are made and cached
// for. Inputs are the input columns (names and types) the rows will carry.
type Shape struct {
	Class   string
	Inputs  []arrow.Field
	Outputs []Output
}

// Plan is a planned query shape: its result schema is known before any row
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

// Execute runs the plan for inputs (columns as in the Shape) evaluated at
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

// Execute plans (or takes from the cache) and runs q.
func (e *Engine) Execute(ctx context.Context, q *Query) (arrow.RecordBatch, error) {
	p, err := e.Prepare(Shape{Class: q.Class, Inputs: q.Inputs.Schema().Fields(), Outputs: q.Outputs})
	if err != nil {
		return nil, err
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	return p.Execute(ctx, q.Inputs, now)
}
