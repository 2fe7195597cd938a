package planner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
)

// run is one execution of a plan.
type run struct {
	ctx   context.Context
	p     *Plan
	mem   memory.Allocator
	fctx  *functions.Context
	input arrow.RecordBatch
	now   time.Time
	opts  RunOptions
	// need[frame id][col] says which columns this run must compute: the
	// outputs, and what they read that the online store did not answer.
	need    [][]bool
	cacheOn bool
	// logCols are the root's output columns read from the offline log
	// (RunOptions.FromLog, logged.go).
	logCols []int

	failMu sync.Mutex
	failed map[*lookup]error // RunOptions.Partial: the lookups that failed

	cancel context.CancelCauseFunc // ends ctx with the run's first error (parallel)

	stages *stages // nil unless RunOptions.Analyze or the query is traced
}

// frameData is a frame's rows during one execution.
type frameData struct {
	node *frameNode
	n    int
	// times is the evaluation time of each row, µs since the epoch: read
	// it with rowTimes. The root frame's is filled on first use (with
	// nowUS for every row, unless the query gives times): an expression
	// over many rows never needs it.
	times     []int64
	nowUS     int64
	timesOnce sync.Once
	cols      []arrow.Array
	// hit marks the columns served from the online store; defaulted, the
	// rows of a column that got the feature's default.
	hit       []bool
	defaulted [][]bool

	mu       sync.Mutex // guards children while they are being filled concurrently
	lookups  map[*lookup][]int32
	records  map[*lookup]arrow.RecordBatch
	origin   []int32 // has-many: the origin row of each row
	children map[*frameNode]*childData
	// span is the context of the frame's span (stages.begin), the parent
	// of its stages'; nil when the run is not traced.
	span context.Context
	// memo holds the calls evaluated over a large frame by key: the
	// aggregations of a has-many frame share their filters (the purchases
	// among 50,000 prices, for a count, a mean and each window).
	memo map[string]arrow.Array
	// logged holds, per column read from the offline log, when each row's
	// value was logged (timestamp[us], null: never by the row's time).
	logged map[int]arrow.Array
	// tiles are the aggregation tiles read for the frame's keys, by tile
	// table: the windows of one feature share them (tiles.go).
	tiles map[string]*tileSet
	// raised holds, per column of a Python resolver's output, the rows
	// where the function raised and the exception (guarded by mu).
	raised map[int]map[int]string
	// invalid holds, per column, the rows whose value failed its
	// feature's strict validation (RunOptions.Partial): null, reported,
	// never stored. Guarded by mu.
	invalid map[int]violation
}

// rowTimes returns the evaluation time of each row.
func (f *frameData) rowTimes() []int64 {
	f.timesOnce.Do(func() {
		if f.times == nil {
			f.times = make([]int64, f.n)
			for i := range f.times {
				f.times[i] = f.nowUS
			}
		}
	})
	return f.times
}

func (f *frameData) raisedIn(col int) map[int]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raised[col]
}

func newFrameData(node *frameNode, n int, times []int64) *frameData {
	return &frameData{node: node, n: n, times: times, cols: make([]arrow.Array, len(node.cols)),
		hit: make([]bool, len(node.cols)), defaulted: make([][]bool, len(node.cols)),
		lookups: map[*lookup][]int32{}, records: map[*lookup]arrow.RecordBatch{}, children: map[*frameNode]*childData{}}
}

type childData struct {
	data *frameData
	// events orders a sliding frame's rows (window.go); nil otherwise.
	events *events
	// has-one: the child row of each parent row (-1: none).
	gather []int32
	// has-many: the parent row of each child row.
	parentRows []int32
}

func (p *Plan) execute(ctx context.Context, inputs arrow.RecordBatch, opts RunOptions) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &statement.Error{Kind: statement.Internal, Msg: fmt.Sprintf("internal error while executing: %v", r)}
		}
	}()
	// A failing stage cancels the stages running beside it (parallel).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	mem := p.engine.mem
	var bud *budget
	if max := p.engine.maxMemory; max > 0 {
		bud = newBudget(mem, max, cancel)
		mem = bud
	}
	r := &run{ctx: ctx, cancel: cancel, p: p, mem: mem, fctx: &functions.Context{Mem: mem}, input: inputs, now: opts.Now, opts: opts,
		need: make([][]bool, len(p.frames)), cacheOn: p.engine.store != nil && p.timeCol < 0 && !opts.Materialized && !opts.AlignWindows && !opts.FromLog}
	r.stages = p.engine.newStages(ctx, opts.Analyze, p.root.class.Table, int(inputs.NumRows()))
	if r.stages != nil {
		defer func() {
			rows := 0
			if res != nil && res.Record != nil {
				rows = int(res.Record.NumRows())
			}
			r.stages.end(rows, err)
		}()
	}
	if bud != nil {
		defer func() {
			// Passing the bound fails the run, whatever it returned (a
			// step may have ended on the cancellation, or finished).
			if bud.exceeded.Load() {
				if res != nil {
					res.Release()
					res = nil
				}
				err = bud.err()
			}
		}()
	}
	if r.logCols, err = r.logColumns(); err != nil {
		return nil, err
	}
	for _, f := range p.frames {
		r.need[f.id] = make([]bool, len(f.cols))
	}
	for _, idx := range p.outputs {
		r.need[p.root.id][idx] = true
	}
	n := int(inputs.NumRows())
	root := newFrameData(p.root, n, nil)
	defer root.release()
	root.nowUS = opts.Now.UnixMicro()
	if p.timeCol >= 0 {
		ts, ok := inputs.Column(p.timeCol).(*array.Timestamp)
		if !ok {
			return nil, invalid(expr.Pos{}, "%s must be a timestamp column", statement.AsOfColumn)
		}
		toUS := timestampToMicros(ts.DataType().(*arrow.TimestampType).Unit)
		times := root.rowTimes()
		for i := range times {
			if ts.IsValid(i) {
				times[i] = toUS(int64(ts.Value(i)))
			}
		}
	}
	if err := r.fill(root); err != nil {
		return nil, err
	}
	res, err = r.result(root)
	if s := r.stages; s != nil && s.analysis != nil && err == nil {
		a := s.analysis
		a.Total, a.Rows, res.Analysis = time.Since(a.start), root.n, a
	}
	return res, err
}

// result assembles the outputs of the filled root frame: a column that
// depends on a failed resolver is all nulls and reported.
func (r *run) result(root *frameData) (*Result, error) {
	p := r.p
	res := &Result{}
	// A row whose key is null names no entity: its outputs are null, not
	// the defaults of an entity without rows (DESIGN §4, Nulls).
	var keep []int32
	if key := root.cols[p.root.keyCol]; key != nil && key.NullN() > 0 {
		keep = make([]int32, root.n)
		for i := range keep {
			keep[i] = int32(i)
			if key.IsNull(i) {
				keep[i] = -1
				res.NullKeys = append(res.NullKeys, i)
			}
		}
	}
	cols := make([]arrow.Array, len(p.outputs))
	for i, idx := range p.outputs {
		c := p.root.cols[idx]
		if l, err := r.tainted(c); l != nil {
			res.Errors = append(res.Errors, OutputError{Output: i, Resolver: l.name(), Kind: statement.KindOf(err), Message: err.Error()})
			cols[i] = array.MakeArrayOfNull(r.mem, c.typ, root.n)
			defer cols[i].Release()
			continue
		}
		raised, err := r.raisedErrors(root, i, idx)
		if err != nil {
			return nil, err
		}
		res.Errors = append(res.Errors, raised...)
		if v := root.invalidRows(idx); v.rows != nil {
			res.Errors = append(res.Errors, OutputError{Output: i, Kind: statement.InvalidInput, Message: v.msg, Rows: v.rows})
		}
		if keep == nil {
			cols[i] = root.cols[idx]
			continue
		}
		masked, err := operators.Gather(r.mem, root.cols[idx], keep)
		if err != nil {
			return nil, err
		}
		defer masked.Release()
		cols[i] = masked
	}
	res.Record = array.NewRecordBatch(p.schema, cols, int64(root.n))
	if r.opts.Meta {
		res.Hits = make([]arrow.Array, len(p.outputs))
		for i, idx := range p.outputs {
			res.Hits[i] = r.hits(root, &colRef{idx: idx})
		}
	}
	return res, nil
}

// hits says, per row of f, whether b (a column, or a has-one path to one)
// was served from the online store.
func (r *run) hits(f *frameData, b bexpr) arrow.Array {
	rows := make([]bool, f.n)
	var mark func(f *frameData, b bexpr, gather []int32)
	mark = func(f *frameData, b bexpr, gather []int32) {
		switch b := b.(type) {
		case *colRef:
			if f.hit[b.idx] {
				for i, g := range gather {
					rows[i] = g >= 0
				}
				return
			}
			if c := f.node.cols[b.idx]; c.kind == colExpr && c.feature == nil {
				mark(f, c.expr, gather) // an output over a has-one path
			}
		case *hasOneRef:
			f.mu.Lock()
			cd := f.children[b.child]
			f.mu.Unlock()
			if cd == nil {
				return
			}
			next := make([]int32, len(gather))
			for i, g := range gather {
				next[i] = -1
				if g >= 0 {
					next[i] = cd.gather[g]
				}
			}
			mark(cd.data, b.inner, next)
		}
	}
	identity := make([]int32, f.n)
	for i := range identity {
		identity[i] = int32(i)
	}
	mark(f, b, identity)
	bld := array.NewBooleanBuilder(r.mem)
	defer bld.Release()
	bld.AppendValues(rows, nil)
	return bld.NewArray()
}

// tainted returns a failed lookup column c's value comes from, and its
// error; nil when none failed.
func (r *run) tainted(c *column) (*lookup, error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if len(r.failed) == 0 {
		return nil, nil
	}
	for _, l := range c.srcs {
		if err, ok := r.failed[l]; ok {
			return l, err
		}
	}
	return nil, nil
}

func timestampToMicros(u arrow.TimeUnit) func(int64) int64 {
	switch u {
	case arrow.Second:
		return func(v int64) int64 { return v * 1e6 }
	case arrow.Millisecond:
		return func(v int64) int64 { return v * 1e3 }
	case arrow.Nanosecond:
		return func(v int64) int64 { return v / 1e3 }
	}
	return func(v int64) int64 { return v }
}

func (f *frameData) release() {
	for _, c := range f.cols {
		if c != nil {
			c.Release()
		}
	}
	for _, rec := range f.records {
		rec.Release()
	}
	for _, c := range f.children {
		c.data.release()
	}
	for _, a := range f.memo {
		a.Release()
	}
	for _, t := range f.tiles {
		t.release()
	}
	for _, a := range f.logged {
		a.Release()
	}
}

// fill computes the columns of frame f this run needs: the key first,
// then what the online store answers, then the lookups and child frames the
// rest needs (concurrently), then the columns themselves; computed values
// with a staleness go back to the store, and every computed value to the
// offline log.
func (r *run) fill(f *frameData) (err error) {
	if s := r.stages; s != nil {
		st := s.begin(f, f.node, frameStage, f.n)
		f.span = st.ctx
		defer func() { s.finish(st, f.n, "", err) }()
	}
	node := f.node
	need := r.need[node.id]
	if f.n == 0 && node.parent != nil {
		return r.evalNeeded(f)
	}
	if node.keyCol >= 0 {
		if _, err := r.column(f, node.keyCol); err != nil {
			return err
		}
	}
	if node == r.p.root && len(r.logCols) > 0 {
		if err := r.readLog(f, r.logCols); err != nil {
			return err
		}
	}
	cached := r.cacheable(f, need)
	if len(cached) > 0 {
		r.readCache(f, cached)
	}
	r.closeNeeds(f)
	// Resolver lookups, and the child frames keyed by columns already at
	// hand (the input key: a user's reviews and purchases), start together;
	// then the children keyed by looked-up columns (a review's item).
	var lookups []*lookup
	for _, l := range node.lookups {
		for i, c := range node.cols {
			if need[i] && f.cols[i] == nil && c.kind == colLookup && c.lookup == l {
				lookups = append(lookups, l)
				break
			}
		}
	}
	var early, late []*frameNode
	for _, c := range node.children {
		if !r.needed(c) {
			continue
		}
		switch {
		case f.cols[c.parentKey] != nil || node.cols[c.parentKey].kind == colInput:
			early = append(early, c)
		case node.cols[c.parentKey].kind == colLookup || node.cols[c.parentKey].kind == colOrigin:
			late = append(late, c)
		}
	}
	for _, c := range early {
		if _, err := r.column(f, c.parentKey); err != nil {
			return err
		}
		if err := r.paramColumns(f, c.origin); err != nil {
			return err
		}
	}
	for _, l := range lookups {
		if err := r.paramColumns(f, l); err != nil {
			return err
		}
	}
	nl := len(lookups)
	if err := r.parallel(nl+len(early), func(i int) error {
		if i < nl {
			return r.runLookup(f, lookups[i])
		}
		_, err := r.child(f, early[i-nl])
		return err
	}); err != nil {
		return err
	}
	for _, c := range late {
		if _, err := r.column(f, c.parentKey); err != nil {
			return err
		}
		if err := r.paramColumns(f, c.origin); err != nil {
			return err
		}
	}
	if err := r.parallel(len(late), func(i int) error {
		_, err := r.child(f, late[i])
		return err
	}); err != nil {
		return err
	}
	if err := r.evalNeeded(f); err != nil {
		return err
	}
	if len(cached) > 0 {
		r.writeBack(f, cached)
	}
	r.logComputed(f)
	if node == r.p.root {
		r.etl(f)
	}
	return nil
}

// closeNeeds marks what the needed, not yet filled columns of f read: in f,
// and in the frames below it.
func (r *run) closeNeeds(f *frameData) {
	need := r.need[f.node.id]
	var work []int
	for i, yes := range need {
		if yes && f.cols[i] == nil {
			work = append(work, i)
		}
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		deps := f.node.cols[i].deps
		if r.opts.Materialized || r.opts.AlignWindows || r.servesTiles() {
			deps = f.node.cols[i].tiledDeps
		}
		for _, d := range deps {
			dn := r.need[d.frame.id]
			if dn[d.idx] {
				continue
			}
			dn[d.idx] = true
			if d.frame == f.node && f.cols[d.idx] == nil {
				work = append(work, d.idx)
			}
		}
	}
}

// needed reports whether the run needs any column of frame c or below it.
func (r *run) needed(c *frameNode) bool {
	for _, g := range c.subtree {
		for _, yes := range r.need[g.id] {
			if yes {
				return true
			}
		}
	}
	return false
}

func (r *run) evalNeeded(f *frameData) error {
	for i, yes := range r.need[f.node.id] {
		if !yes {
			continue
		}
		if _, err := r.column(f, i); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs fn(0..n-1) concurrently. The first to fail cancels the
// run, so that its siblings' source queries stop instead of running to
// their end for an answer no one will read, and the run's first error is
// what returns: a sibling's cancellation is an effect of it, not a cause.
func (r *run) parallel(n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 {
		if err := fn(0); err != nil {
			return r.abort(err)
		}
		return nil
	}
	var g errgroup.Group
	for i := range n {
		g.Go(func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = &statement.Error{Kind: statement.Internal, Msg: fmt.Sprintf("internal error: %v", p)}
				}
				if err != nil {
					r.cancel(err)
				}
			}()
			return fn(i)
		})
	}
	if err := g.Wait(); err != nil {
		return r.abort(err)
	}
	return nil
}

// abort cancels the run with err, unless it was cancelled before, and
// returns the cause: the first error of the run, or the caller's
// cancellation or deadline.
func (r *run) abort(err error) error {
	r.cancel(err)
	return context.Cause(r.ctx)
}

// column returns column i of f, computing it on first use.
func (r *run) column(f *frameData, i int) (arrow.Array, error) {
	if c := f.cols[i]; c != nil {
		return c, nil
	}
	col := f.node.cols[i]
	var arr arrow.Array
	var err error
	switch col.kind {
	case colInput:
		if f.node.parent == nil {
			if arr, err = coerce.Array(r.mem, r.input.Column(col.input), col.typ); err != nil {
				err = invalid(expr.Pos{}, "input column %s: %v", col.name, err)
			}
		} else {
			err = fmt.Errorf("key column %s of %s was not filled", col.name, f.node.class.Name)
		}
	case colLookup:
		arr, err = r.lookupColumn(f, col)
	case colOrigin:
		arr, err = r.originColumn(f, col)
	case colExpr:
		arr, err = r.eval(f, col.expr)
		if err == nil && col.raises != nil {
			arr, err = r.raise(f, i, col, arr)
		}
	case colPython:
		arr, err = r.pythonColumn(f, col)
	}
	if err != nil {
		return nil, err
	}
	if col.fill != nil && arr.NullN() > 0 {
		if col.feature != nil && optionFalse(col, "cache_defaults") {
			f.defaulted[i] = make([]bool, arr.Len())
			for k := range f.defaulted[i] {
				f.defaulted[i][k] = arr.IsNull(k)
			}
		}
		arr, err = r.applyDefault(col, arr)
		if err != nil {
			return nil, err
		}
	}
	if arr, err = r.validate(f, i, arr); err != nil {
		return nil, err
	}
	f.cols[i] = arr
	return arr, nil
}

func (r *run) applyDefault(col *column, arr arrow.Array) (arrow.Array, error) {
	defer arr.Release()
	def, err := operators.Constant(r.mem, col.typ, col.def.Value, arr.Len())
	if err != nil {
		return nil, err
	}
	defer def.Release()
	return col.fill.Exec(r.fctx, []arrow.Array{arr, def})
}

func (r *run) runLookup(f *frameData, l *lookup) error {
	keys, err := r.column(f, l.keyCol)
	if err != nil {
		return err
	}
	distinct, err := distinctKeys(r.mem, keys)
	if err != nil {
		return err
	}
	defer distinct.Release()
	rec, err := r.fetch(f, l, distinct)
	if err != nil {
		if !r.fail(l, err) {
			return err
		}
		// Partial: the lookup's columns read an empty result (nulls); the
		// outputs that depend on it are reported, never cached.
		rec = emptyRecord(r.mem, l)
	}
	f.mu.Lock()
	f.records[l] = rec
	f.mu.Unlock()
	ix, err := operators.NewKeyIndex(rec.Column(fieldIndex(rec, l.keyColumn)))
	if err != nil {
		return err
	}
	rows, err := ix.LookupLatest(keys, visibility(rec, l, f.rowTimes()))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.lookups[l] = rows
	f.mu.Unlock()
	return nil
}

func visibility(rec arrow.RecordBatch, l *lookup, times []int64) operators.Visibility {
	if l.eventTime == "" {
		return operators.Visibility{}
	}
	return operators.Visibility{EventTimes: rec.Column(fieldIndex(rec, l.eventTime)).(*array.Timestamp), ProbeTimes: times}
}

func fieldIndex(rec arrow.RecordBatch, name string) int {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return -1
	}
	return idx[0]
}

// paramColumns computes the columns of f that bind l's parameters, before
// lookups run concurrently (l may be nil).
func (r *run) paramColumns(f *frameData, l *lookup) error {
	if l == nil {
		return nil
	}
	for _, idx := range l.params {
		if idx >= 0 {
			if _, err := r.column(f, idx); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetch runs lookup l's resolver for keys, in one query, and checks that the
// source returned every column the plan uses, in the planned types. f is
// the frame whose columns bind the resolver's `${class.feature}`
// parameters (their distinct values, one array parameter).
func (r *run) fetch(f *frameData, l *lookup, keys arrow.Array) (arrow.RecordBatch, error) {
	res := l.resolver
	src, err := r.p.engine.sources.Source(res.Source)
	if err != nil {
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("resolver %s: %v", res.Name, err)}
	}
	fields := make([]arrow.Field, len(l.fields))
	for i, name := range l.fields {
		fields[i] = arrow.Field{Name: name, Type: l.fieldType[name], Nullable: true}
	}
	req := stores.FetchRequest{SQL: res.Query, KeyColumn: l.keyColumn, Keys: keys, Schema: arrow.NewSchema(fields, nil), Timeout: res.Timeout, Resolver: res.Name}
	for _, idx := range l.params {
		if idx < 0 {
			req.Params = append(req.Params, stores.ParamValue{Time: r.now})
			continue
		}
		values, err := distinctKeys(r.mem, f.cols[idx])
		if err != nil {
			return nil, err
		}
		defer values.Release()
		req.Params = append(req.Params, stores.ParamValue{Values: values})
	}
	start := time.Now()
	var st *stage
	if r.stages != nil { // the name is built only when asked for
		st = r.stages.begin(f, f.node, "fetch "+res.Name+" [source "+res.Source+"]", keys.Len())
	}
	rec, err := src.Fetch(r.ctx, r.mem, req)
	if o := r.p.engine.observer; o != nil {
		o.Fetched(res.Name, res.Source, time.Since(start), err)
	}
	if r.stages != nil {
		out := 0
		if err == nil {
			out = int(rec.NumRows())
		}
		r.stages.finish(st, out, "", err)
	}
	if err != nil {
		if r.ctx.Err() != nil {
			return nil, r.ctx.Err()
		}
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("resolver %s (source %s): %v", res.Name, res.Source, err)}
	}
	for _, fld := range fields {
		i := fieldIndex(rec, fld.Name)
		if i < 0 {
			rec.Release()
			return nil, &statement.Error{Kind: statement.SourceFailure, Pos: res.Pos, Msg: fmt.Sprintf("resolver %s returned no column %q", res.Name, fld.Name)}
		}
		if !arrow.TypeEqual(rec.Column(i).DataType(), fld.Type) {
			rec.Release()
			return nil, &statement.Error{Kind: statement.SourceFailure, Pos: res.Pos, Msg: fmt.Sprintf("resolver %s returned column %q as %s, expected %s", res.Name, fld.Name, rec.Column(i).DataType(), fld.Type)}
		}
	}
	return rec, nil
}

func distinctKeys(mem memory.Allocator, keys arrow.Array) (arrow.Array, error) {
	firsts, _, err := operators.Distinct(keys, make([]int64, keys.Len()))
	if err != nil {
		return nil, err
	}
	return operators.Gather(mem, keys, firsts)
}

func (r *run) lookupColumn(f *frameData, col *column) (arrow.Array, error) {
	f.mu.Lock()
	rows, ok := f.lookups[col.lookup]
	rec := f.records[col.lookup]
	f.mu.Unlock()
	if !ok {
		if f.n == 0 {
			return array.MakeArrayOfNull(r.mem, col.typ, 0), nil
		}
		if err := r.runLookup(f, col.lookup); err != nil {
			return nil, err
		}
		return r.lookupColumn(f, col)
	}
	return operators.Gather(r.mem, rec.Column(fieldIndex(rec, col.field)), rows)
}

func (r *run) originColumn(f *frameData, col *column) (arrow.Array, error) {
	if f.n == 0 {
		return array.MakeArrayOfNull(r.mem, col.typ, 0), nil
	}
	f.mu.Lock()
	rec := f.records[col.lookup]
	f.mu.Unlock()
	return operators.Gather(r.mem, rec.Column(fieldIndex(rec, col.field)), f.origin)
}

// child returns the data of child frame node c of f, filling it on first use.
func (r *run) child(f *frameData, c *frameNode) (*childData, error) {
	f.mu.Lock()
	cd, ok := f.children[c]
	f.mu.Unlock()
	if ok {
		return cd, nil
	}
	keys, err := r.column(f, c.parentKey)
	if err != nil {
		return nil, err
	}
	if c.rel.Many {
		cd, err = r.hasMany(f, c, keys)
	} else {
		cd, err = r.hasOne(f, c, keys)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.children[c] = cd
	f.mu.Unlock()
	return cd, nil
}

// hasOne makes the frame of the distinct (key, time) pairs of the parent's
// rows.
func (r *run) hasOne(f *frameData, c *frameNode, keys arrow.Array) (*childData, error) {
	firsts, pos, err := operators.Distinct(keys, f.rowTimes())
	if err != nil {
		return nil, err
	}
	d := newFrameData(c, len(firsts), make([]int64, len(firsts)))
	times := f.rowTimes()
	for i, row := range firsts {
		d.times[i] = times[row]
	}
	if d.cols[c.keyCol], err = operators.Gather(r.mem, keys, firsts); err != nil {
		return nil, err
	}
	d.span = f.span
	if err := r.fill(d); err != nil {
		d.release()
		return nil, err
	}
	return &childData{data: d, gather: pos}, nil
}

// hasMany makes the frame of the related rows of each parent row: the origin
// resolver's rows for the parent's distinct keys, each paired with every
// parent row it belongs to and may be seen from (event time ≤ row time).
func (r *run) hasMany(f *frameData, c *frameNode, keys arrow.Array) (*childData, error) {
	distinct, err := distinctKeys(r.mem, keys)
	if err != nil {
		return nil, err
	}
	defer distinct.Release()
	var rec arrow.RecordBatch
	if distinct.Len() > 0 {
		if rec, err = r.fetch(f, c.origin, distinct); err != nil {
			if !r.fail(c.origin, err) {
				return nil, err
			}
			rec = emptyRecord(r.mem, c.origin)
		}
	}
	d := newFrameData(c, 0, nil)
	d.span = f.span
	cd := &childData{data: d}
	if rec != nil {
		d.records[c.origin] = rec
		st := r.stages.begin(f, c, "has-many", distinct.Len())
		if c.sliding {
			cd.events, err = r.slidingFrame(f, c, keys, distinct, rec, d)
			if s := r.stages; s != nil {
				s.finish(st, d.n, fmt.Sprintf("%d source rows for %d parent rows, by key and time (sliding windows)", rec.NumRows(), keys.Len()), err)
			}
			if err != nil {
				d.release()
				return nil, err
			}
		} else if err := r.expand(f, c, keys, rec, st, d, cd); err != nil {
			d.release()
			return nil, err
		}
	}
	if err := r.fill(d); err != nil {
		d.release()
		return nil, err
	}
	return cd, nil
}

// expand fills d, the has-many frame of c below f, with the pairs of
// each parent row and every row of rec visible at its time.
func (r *run) expand(f *frameData, c *frameNode, keys arrow.Array, rec arrow.RecordBatch, st *stage, d *frameData, cd *childData) error {
	ix, err := operators.NewKeyIndex(rec.Column(fieldIndex(rec, c.origin.keyColumn)))
	if err != nil {
		r.stages.finish(st, 0, "", err)
		return err
	}
	parents, rows, _, err := ix.Expand(keys, visibility(rec, c.origin, f.rowTimes()))
	if err != nil {
		r.stages.finish(st, 0, "", err)
		return err
	}
	if s := r.stages; s != nil {
		s.finish(st, len(rows), fmt.Sprintf("%d source rows for %d parent rows", rec.NumRows(), keys.Len()), nil)
	}
	if err := r.checkHasMany(c, keys, parents); err != nil {
		return err
	}
	d.n, d.origin, cd.parentRows = len(rows), rows, parents
	d.times = make([]int64, len(rows))
	times := f.rowTimes()
	for i, p := range parents {
		d.times[i] = times[p]
	}
	return nil
}

// fail records a failed source query when the run is partial (and says so);
// a cancelled run is never partial.
func (r *run) fail(l *lookup, err error) bool {
	if !r.opts.Partial || r.ctx.Err() != nil {
		return false
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failed == nil {
		r.failed = map[*lookup]error{}
	}
	r.failed[l] = err
	return true
}

// emptyRecord is a lookup's result with no rows.
func emptyRecord(mem memory.Allocator, l *lookup) arrow.RecordBatch {
	fields := make([]arrow.Field, len(l.fields))
	cols := make([]arrow.Array, len(l.fields))
	for i, name := range l.fields {
		fields[i] = arrow.Field{Name: name, Type: l.fieldType[name], Nullable: true}
		cols[i] = array.MakeArrayOfNull(mem, l.fieldType[name], 0)
		defer cols[i].Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 0)
}
