// Package relational runs the SQL that goes beyond a feature lookup
// (aggregates, GROUP BY, ORDER BY, joins between classes, sub-selects,
// CTEs, window functions, scans without keys) over the features fletch
// computes. Each class table of a query is a scan: its entities are listed
// by the SQL resolver that returns its key (planner.Lister), a page at a
// time, and the lookup plan of those keys computes their features; the
// pages are an Arrow stream that an embedded, locked-down DuckDB reads as
// a view while it runs the rest of the query. The client's SQL never
// reaches a source: sources see only the listing of keys, with the
// conditions fletch quotes itself.
//
// It knows the statement type and the planner's API, and nothing of the
// wire (flight/ runs it), of parsing SQL (package sql reads the query into
// a statement.Relational), or of the sources' drivers.
package relational

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// DefaultPageRows is how many entities a scan lists and computes at
// first; later pages grow to 16 times that. The scan's memory is bounded by
// one page's features.
const DefaultPageRows = 4096

// Engine runs relational queries with a planner engine. It is safe for
// concurrent use.
type Engine struct {
	planner  *planner.Engine
	mem      memory.Allocator
	db       *duckDB
	pageRows int64
	schemas  *lru.Cache[string, *arrow.Schema] // result schemas, by schemaKey
}

// Option tunes an Engine.
type Option func(*Engine)

// WithPageRows sets how many entities a scan computes at a time.
func WithPageRows(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.pageRows = int64(n)
		}
	}
}

// New returns an engine over pe's features. Its DuckDB is in memory,
// holds no data of its own, and may read no file nor load extensions.
func New(pe *planner.Engine, mem memory.Allocator, opts ...Option) (*Engine, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	db, err := openDuckDB()
	if err != nil {
		return nil, err
	}
	e := &Engine{planner: pe, mem: mem, db: db, pageRows: DefaultPageRows, schemas: lru.New[string, *arrow.Schema](1024, 8<<20, nil)}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Close closes the engine's DuckDB.
func (e *Engine) Close() error {
	if e == nil || e.db == nil {
		return nil
	}
	return e.db.close()
}

// Query is a prepared relational query.
type Query struct {
	engine *Engine
	rel    *statement.Relational
	scans  []*scan
	schema *arrow.Schema
}

// scan is one class table of a query, planned.
type scan struct {
	spec   *statement.Scan
	lister *planner.Lister
	plan   *planner.Plan
	view   *arrow.Schema // the plan's schema in the types DuckDB reads
	pushed []statement.Filter
	limit  int64 // entities listed at most, -1: all
}

// Prepare plans rel: each scan's lister and lookup plan, and the result's
// schema (the SQL run over no rows).
func (e *Engine) Prepare(ctx context.Context, rel *statement.Relational) (*Query, error) {
	q := &Query{engine: e, rel: rel}
	for _, sp := range rel.Scans {
		s, err := e.prepareScan(sp)
		if err != nil {
			return nil, err
		}
		q.scans = append(q.scans, s)
	}
	key := q.schemaKey()
	if schema, ok := e.schemas.Get(key); ok {
		q.schema = schema
		return q, nil
	}
	views := map[string]array.RecordReader{}
	for _, s := range q.scans {
		views[s.spec.View] = emptyReader(s.view)
	}
	schema, err := e.db.run(ctx, rel.SQL, views, rel.Windows, nil)
	if err != nil {
		return nil, q.callerError(err)
	}
	q.schema = schema
	e.schemas.Add(key, schema, int64(len(key))+512)
	return q, nil
}

// schemaKey names the result schema: the SQL and the views' schemas.
func (q *Query) schemaKey() string {
	var b strings.Builder
	b.WriteString(q.rel.SQL)
	for _, s := range q.scans {
		b.WriteString("\x00")
		b.WriteString(s.view.String())
	}
	return b.String()
}

func (e *Engine) prepareScan(sp *statement.Scan) (*scan, error) {
	lister, err := e.planner.Lister(sp.Class, sp.Pos)
	if err != nil {
		return nil, err
	}
	key := sp.Class.Primary
	inputs := []arrow.Field{{Name: key.Name, Type: lister.KeyType()}}
	if !sp.AsOf.IsZero() {
		// A point in time, as `__as_of__` is in a lookup (exact windows),
		// not the query's now (online serving's aligned windows).
		inputs = append(inputs, arrow.Field{Name: statement.AsOfColumn, Type: asOfType})
	}
	st, err := statement.New(sp.Class, inputs, sp.Outputs)
	if err != nil {
		return nil, err
	}
	plan, err := e.planner.Prepare(st)
	if err != nil {
		return nil, err
	}
	s := &scan{spec: sp, lister: lister, plan: plan, view: duckSchema(plan.Schema()), limit: -1}
	for _, f := range sp.Filters {
		if lister.Pushable(f) {
			s.pushed = append(s.pushed, f)
		}
	}
	// A LIMIT is the listing's only when every condition is applied by it,
	// on rows that are the entities' own (a class with an event time may
	// list a key by an older row the condition holds for).
	if sp.Limit >= 0 && sp.WhereComplete && len(s.pushed) == len(sp.Filters) && (len(sp.Filters) == 0 || sp.Class.EventTime == nil) {
		s.limit = sp.Limit
	}
	return s, nil
}

// Schema is the result's schema.
func (q *Query) Schema() *arrow.Schema { return q.schema }

// Relational is the query q was prepared from.
func (q *Query) Relational() *statement.Relational { return q.rel }

// Classes are the tables of every class the query reads (its scans' and
// what their features read), for authorization.
func (q *Query) Classes() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range q.scans {
		for _, c := range append([]string{s.spec.Class.Table}, s.plan.Classes()...) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// Explain says which part of q is feature computation and which is SQL
// over its result.
func (q *Query) Explain() string {
	var b strings.Builder
	b.WriteString("SQL over the features (embedded DuckDB):\n  ")
	b.WriteString(q.rel.SQL)
	b.WriteString("\n")
	if len(q.scans) == 0 {
		b.WriteString("feature computation: none (the query reads no feature class)\n")
	}
	for _, s := range q.scans {
		fmt.Fprintf(&b, "feature computation %s: scan of %s\n", s.spec.View, s.spec.Class.Table)
		fmt.Fprintf(&b, "  entities listed by resolver %s in key order, pages of %d to %d", s.lister.Resolver(), q.engine.pageRows, 16*q.engine.pageRows)
		if s.limit >= 0 {
			fmt.Fprintf(&b, ", at most %d", s.limit)
		}
		b.WriteString("\n")
		for _, f := range s.pushed {
			fmt.Fprintf(&b, "  pushed into the listing: %s %s %v\n", f.Feature, f.Op, f.Values)
		}
		if !s.spec.AsOf.IsZero() {
			fmt.Fprintf(&b, "  evaluated as of %s\n", s.spec.AsOf.UTC().Format(time.RFC3339Nano))
		} else {
			b.WriteString("  evaluated at the query's now\n")
		}
		for _, line := range strings.Split(strings.TrimRight(s.plan.Explain(), "\n"), "\n") {
			b.WriteString("  ")
			b.WriteString(line)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Run runs q with now as the evaluation time of scans without their own,
// handing the result's batches to emit in order (emit borrows each).
func (q *Query) Run(ctx context.Context, now time.Time, emit func(arrow.RecordBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	views := map[string]array.RecordReader{}
	readers := make([]*scanReader, len(q.scans))
	for i, s := range q.scans {
		at := s.spec.AsOf
		if at.IsZero() {
			at = now
		}
		readers[i] = &scanReader{ctx: ctx, q: q, s: s, now: at, remaining: s.limit, refs: 1}
		views[s.spec.View] = readers[i]
	}
	_, err := q.engine.db.run(ctx, q.rel.SQL, views, q.rel.Windows, emit)
	defer func() {
		for _, r := range readers {
			r.Release()
		}
	}()
	// A scan's own error says what failed (a source, a resolver) in
	// fletch's words: DuckDB only wraps its text.
	for _, r := range readers {
		if ferr := r.failure(); ferr != nil {
			return ferr
		}
	}
	return q.callerError(err)
}

// unknownColumn is how DuckDB says a column is not there.
var unknownColumn = regexp.MustCompile(`Referenced column "([^"]+)" not found`)

// callerError is an error of the SQL run over the scans in the caller's
// terms: the scans' views by their tables' names, and a column that is
// not there as an unknown column of the query's table, with the nearest
// feature (DuckDB could only offer the columns the scan computes).
func (q *Query) callerError(err error) error {
	var se *statement.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	e := *se
	// DuckDB points into the SQL it ran, not the caller's text.
	if i := strings.Index(e.Msg, "\n\nLINE "); i >= 0 {
		e.Msg = e.Msg[:i]
	}
	e.Msg = strings.ReplaceAll(e.Msg, "Values list ", "table ")
	for _, s := range q.scans {
		e.Msg = strings.ReplaceAll(e.Msg, s.spec.View, s.spec.Class.Table)
	}
	if m := unknownColumn.FindStringSubmatch(se.Msg); m != nil && len(q.scans) == 1 {
		// The table's columns, not its relations (`purchases` is none).
		c := q.scans[0].spec.Class
		var columns []string
		for _, f := range statement.Columns(c) {
			columns = append(columns, f.Name)
		}
		pos := e.Pos
		if at, ok := q.rel.Columns[strings.ToLower(m[1])]; ok && pos.Line == 0 {
			pos = at
		}
		return &statement.Error{Kind: statement.InvalidInput, Pos: pos, Msg: fmt.Sprintf("unknown column %q of table %s", m[1], c.Table),
			Suggestion: suggest.Nearest(m[1], columns)}
	}
	return &e
}

// asOfType is the type of a scan's `__as_of__` input column.
var asOfType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// scanReader is the Arrow stream of one scan: pages of entities listed in
// key order, each computed by the scan's lookup plan when DuckDB asks for
// it. It is an array.RecordReader.
type scanReader struct {
	ctx       context.Context
	q         *Query
	s         *scan
	now       time.Time
	after     any
	remaining int64 // -1: no limit
	page      int64 // entities listed by the last page
	done      bool

	mu   sync.Mutex
	refs int64
	cur  arrow.RecordBatch
	err  error
}

func (r *scanReader) Retain() {
	r.mu.Lock()
	r.refs++
	r.mu.Unlock()
}

func (r *scanReader) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refs--; r.refs == 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

func (r *scanReader) Schema() *arrow.Schema            { return r.s.view }
func (r *scanReader) Record() arrow.RecordBatch        { return r.cur }
func (r *scanReader) RecordBatch() arrow.RecordBatch   { return r.cur }
func (r *scanReader) Err() error                       { return r.failure() }
func (r *scanReader) failure() error                   { r.mu.Lock(); defer r.mu.Unlock(); return r.err }
func (r *scanReader) fail(err error) bool              { r.mu.Lock(); r.err = err; r.mu.Unlock(); return false }
func (r *scanReader) setCurrent(rec arrow.RecordBatch) { r.mu.Lock(); r.cur = rec; r.mu.Unlock() }

// Next computes the next page.
func (r *scanReader) Next() bool {
	r.mu.Lock()
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	r.mu.Unlock()
	if r.done || r.remaining == 0 || r.failure() != nil {
		return false
	}
	// Pages grow (to 16 times the first): each listing is a top-N over
	// the entities left, so fewer, larger pages cost less on a long scan,
	// and memory stays bounded by the largest page.
	if r.page == 0 {
		r.page = r.q.engine.pageRows
	} else {
		r.page = min(2*r.page, 16*r.q.engine.pageRows)
	}
	page := r.page
	if r.remaining > 0 {
		page = min(page, r.remaining)
	}
	listed, err := r.s.lister.List(r.ctx, planner.ListOptions{Now: r.now, After: r.after, Limit: page, Filters: r.s.pushed})
	if err != nil {
		return r.fail(err)
	}
	defer listed.Release()
	if int64(listed.Len()) < page {
		r.done = true
	}
	if listed.Len() == 0 {
		return false
	}
	r.after = planner.KeyAt(listed, listed.Len()-1)
	keys, err := planner.Distinct(r.q.engine.mem, listed)
	if err != nil {
		return r.fail(err)
	}
	defer keys.Release()
	n := int64(keys.Len())
	if r.remaining > 0 {
		r.remaining -= n
	}
	key := r.s.spec.Class.Primary
	fields := []arrow.Field{{Name: key.Name, Type: keys.DataType(), Nullable: true}}
	cols := []arrow.Array{keys}
	if asOf := r.s.spec.AsOf; !asOf.IsZero() {
		b := array.NewTimestampBuilder(r.q.engine.mem, asOfType)
		defer b.Release()
		b.Reserve(int(n))
		for range n {
			b.UnsafeAppend(arrow.Timestamp(asOf.UnixMicro()))
		}
		times := b.NewArray()
		defer times.Release()
		fields = append(fields, arrow.Field{Name: statement.AsOfColumn, Type: asOfType})
		cols = append(cols, times)
	}
	in := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, n)
	defer in.Release()
	res, err := r.s.plan.Run(r.ctx, in, planner.RunOptions{Now: r.now})
	if err != nil {
		return r.fail(err)
	}
	defer res.Release()
	rec, err := toDuck(r.q.engine.mem, res.Record, r.s.view)
	if err != nil {
		return r.fail(err)
	}
	r.setCurrent(rec)
	return true
}

// emptyReader is a stream of no batches of schema.
func emptyReader(schema *arrow.Schema) array.RecordReader {
	rdr, _ := array.NewRecordReader(schema, nil)
	return rdr
}
