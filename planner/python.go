package planner

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/statement"
)

// Python resolvers that run in CPython (features.PyWorker): a frame that
// needs one of their outputs gathers the resolver's inputs for its rows,
// like an expression's dependencies, and calls the engine's worker pool once
// per run with one batch; each output is a column of the answer. A row the
// function raised for is null in every output and reported as a compiled
// resolver's exception is (raise.go); a call that
// fails as a whole (the worker died or timed out, the module does not
// import, the queue is full) fails like a SQL resolver's query.

// pyCall is a Python resolver's call in a frame.
type pyCall struct {
	resolver *features.PyResolver
	fn       *pyworker.Function
	inputs   []bexpr // one per parameter, in the frame
	schema   *arrow.Schema
}

// WithPython configures the Python worker pool of the engine (fletch.yaml's
// `python:`); its Dir is the graph's folder. Without it the defaults apply.
func WithPython(cfg pyworker.Config) EngineOption {
	return func(e *Engine) { e.pyCfg = cfg }
}

// newPython returns the pool for g's PyWorker resolvers; nil when it has
// none. No process starts before a plan needs one.
func newPython(g *features.Graph, cfg pyworker.Config, mem memory.Allocator) *pyworker.Pool {
	if g == nil {
		return nil
	}
	for _, r := range g.PyResolvers {
		if r.Mode == features.PyWorker {
			cfg.Dir = g.Dir
			return pyworker.New(cfg, mem)
		}
	}
	return nil
}

// CheckPython starts a Python worker if the graph has resolvers that need
// one, and returns, per such resolver, why it cannot run (nil: all can):
// what `fletch serve` and `fletch validate` warn about.
func (e *Engine) CheckPython() []error {
	if e.python == nil {
		return nil
	}
	err := e.python.Check()
	if err == nil {
		return nil
	}
	var errs []error
	for _, r := range e.graph.PyResolvers {
		if r.Mode == features.PyWorker {
			errs = append(errs, features.Errorf(r.Pos, "Python resolver %s runs in Python (%s), and %v: its features are unavailable", r.Name, r.Why, err))
		}
	}
	return errs
}

// pyResolverFor is the Python resolver that outputs feat, nil when none.
func (pl *planner) pyResolverFor(feat *features.Feature) *features.PyResolver {
	for _, r := range pl.e.graph.PyResolvers {
		for _, out := range r.Outputs {
			if out == feat {
				return r
			}
		}
	}
	return nil
}

// needPython plans col, output feat of resolver pr, in frame f.
func (pl *planner) needPython(f *frameNode, col *column, pr *features.PyResolver) (int, error) {
	feat := col.feature
	if pr.Mode != features.PyWorker {
		return 0, &statement.Error{Kind: statement.Internal, Pos: pr.Pos, Msg: fmt.Sprintf("%s comes from the Python resolver %s, compiled to expressions, but has no expression", feat.QualifiedName(), pr.Name)}
	}
	if pl.e.python == nil || pl.e.graph.Dir == "" {
		return 0, &statement.Error{Kind: statement.Unsupported, Pos: pr.Pos, Msg: fmt.Sprintf("%s comes from the Python resolver %s, which runs in Python (%s), and this engine has no repository folder to import it from", feat.QualifiedName(), pr.Name, pr.Why)}
	}
	if err := pl.e.python.Check(); err != nil {
		return 0, &statement.Error{Kind: statement.Unsupported, Pos: pr.Pos, Msg: fmt.Sprintf("%s comes from the Python resolver %s, which runs in Python (%s), and %v", feat.QualifiedName(), pr.Name, pr.Why, err)}
	}
	l := f.pyLookup(pr)
	if l == nil {
		var err error
		if l, err = pl.pyCall(f, pr); err != nil {
			return 0, err
		}
	}
	col.kind, col.lookup, col.field, col.py = colPython, l, feat.Name, pr
	return f.add(col), nil
}

// pyLookup is frame f's call of pr, nil when none is planned yet.
func (f *frameNode) pyLookup(pr *features.PyResolver) *lookup {
	for _, c := range f.cols {
		if c.kind == colPython && c.lookup.py.resolver == pr {
			return c.lookup
		}
	}
	return nil
}

// pyCall plans the call of pr in frame f: its inputs, bound in f.
func (pl *planner) pyCall(f *frameNode, pr *features.PyResolver) (*lookup, error) {
	file, err := filepath.Rel(pl.e.graph.Dir, pr.File)
	if err != nil || strings.HasPrefix(file, "..") {
		return nil, &statement.Error{Kind: statement.Internal, Pos: pr.Pos, Msg: fmt.Sprintf("resolver %s is defined outside the repository", pr.Name)}
	}
	pc := &pyCall{resolver: pr, fn: &pyworker.Function{File: file, Name: pr.Name}}
	var fields []arrow.Field
	for _, in := range pr.Inputs {
		if in.Root != f.class {
			return nil, &statement.Error{Kind: statement.Unsupported, Pos: pr.Pos, Msg: fmt.Sprintf("resolver %s: parameter %s is a feature of %s, but the resolver runs for rows of %s", pr.Name, in.Param, in.Root.Name, f.class.Name)}
		}
		b, err := pl.bind(f, &expr.Ref{Path: in.Path, At: pr.Pos}, 0)
		if err != nil {
			return nil, err
		}
		pc.inputs = append(pc.inputs, b)
		pc.fn.Params = append(pc.fn.Params, in.Param)
		fields = append(fields, arrow.Field{Name: in.Param, Type: b.dataType(), Nullable: true})
	}
	for _, out := range pr.Outputs {
		pc.fn.Outputs = append(pc.fn.Outputs, arrow.Field{Name: out.Name, Type: out.Type.Arrow(), Nullable: true})
	}
	pc.schema = arrow.NewSchema(fields, nil)
	return &lookup{py: pc}, nil
}

// pythonColumn is column col of f, from its resolver's call (made on first
// use).
func (r *run) pythonColumn(f *frameData, col *column) (arrow.Array, error) {
	f.mu.Lock()
	rec, ok := f.records[col.lookup]
	f.mu.Unlock()
	if !ok {
		var err error
		if rec, err = r.callPython(f, col.lookup); err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.records[col.lookup] = rec
		f.mu.Unlock()
	}
	a := rec.Column(fieldIndex(rec, col.field))
	a.Retain()
	return a, nil
}

// callPython calls l's resolver for the rows of f.
func (r *run) callPython(f *frameData, l *lookup) (arrow.RecordBatch, error) {
	pc := l.py
	if f.n == 0 {
		return nullRecord(r.mem, pc.fn.Outputs, 0), nil
	}
	cols := make([]arrow.Array, len(pc.inputs))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, b := range pc.inputs {
		c, err := r.eval(f, b)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	res, err := r.callRows(pc, cols, f.n)
	if err != nil {
		if r.ctx.Err() != nil {
			return nil, r.ctx.Err()
		}
		err = pythonError(pc.resolver, err)
		if !r.fail(l, err) {
			return nil, err
		}
		return nullRecord(r.mem, pc.fn.Outputs, f.n), nil
	}
	if len(res.Errors) > 0 {
		// The rows the function raised for are reported as compiled
		// resolvers' exceptions are (raise.go): per input row, for every
		// output that reads them.
		raised := make(map[int]string, len(res.Errors))
		for _, e := range res.Errors {
			raised[e.Row] = e.Message
		}
		f.mu.Lock()
		if f.raised == nil {
			f.raised = map[int]map[int]string{}
		}
		for i, c := range f.node.cols {
			if c.kind == colPython && c.lookup == l {
				f.raised[i] = raised
			}
		}
		f.mu.Unlock()
	}
	return res.Record, nil
}

// callRows calls pc's function for the n rows of cols, but for the rows
// where an input of a non-optional type is null (a missing entity): they
// are not the function's business (the rule compiled resolvers follow,
// docs/PYTHON.md), so they are not sent — no call, no side effect — and
// their outputs are null.
func (r *run) callRows(pc *pyCall, cols []arrow.Array, n int) (*pyworker.Result, error) {
	var missing []bool
	for i, in := range pc.resolver.Inputs {
		if inputType(in).Nullable || cols[i].NullN() == 0 {
			continue
		}
		if missing == nil {
			missing = make([]bool, n)
		}
		for k := range n {
			if cols[i].IsNull(k) {
				missing[k] = true
			}
		}
	}
	if missing == nil {
		in := array.NewRecordBatch(pc.schema, cols, int64(n))
		defer in.Release()
		return r.p.engine.python.Call(r.ctx, pc.fn, in)
	}
	keep := make([]int32, 0, n) // the rows sent
	for k, m := range missing {
		if !m {
			keep = append(keep, int32(k))
		}
	}
	if len(keep) == 0 {
		return &pyworker.Result{Record: nullRecord(r.mem, pc.fn.Outputs, n)}, nil
	}
	sent := make([]arrow.Array, len(cols))
	defer releaseArrays(sent)
	for i, c := range cols {
		var err error
		if sent[i], err = operators.Gather(r.mem, c, keep); err != nil {
			return nil, err
		}
	}
	in := array.NewRecordBatch(pc.schema, sent, int64(len(keep)))
	defer in.Release()
	res, err := r.p.engine.python.Call(r.ctx, pc.fn, in)
	if err != nil {
		return nil, err
	}
	// Back to the frame's rows: the rows not sent are null.
	back := make([]int32, n)
	for k := range back {
		back[k] = -1
	}
	for j, k := range keep {
		back[k] = int32(j)
	}
	outs := make([]arrow.Array, res.Record.NumCols())
	defer releaseArrays(outs)
	for i, c := range res.Record.Columns() {
		if outs[i], err = operators.Gather(r.mem, c, back); err != nil {
			res.Record.Release()
			return nil, err
		}
	}
	res.Record.Release()
	res.Record = array.NewRecordBatch(arrow.NewSchema(pc.fn.Outputs, nil), outs, int64(n))
	for i := range res.Errors {
		res.Errors[i].Row = int(keep[res.Errors[i].Row])
	}
	return res, nil
}

// inputType is the type of the feature a parameter reads.
func inputType(in features.PyInput) features.Type {
	c := in.Root
	var f *features.Feature
	for _, name := range in.Path {
		f = c.Feature(name)
		if f.Relation != nil {
			c = f.Relation.To
		}
	}
	return f.Type
}

func releaseArrays(as []arrow.Array) {
	for _, a := range as {
		if a != nil {
			a.Release()
		}
	}
}

// pythonError is a failed call of resolver pr, classified.
func pythonError(pr *features.PyResolver, err error) error {
	kind := statement.SourceFailure
	if errors.Is(err, pyworker.ErrQueueFull) {
		kind = statement.ResourceExhausted
	}
	return &statement.Error{Kind: kind, Pos: pr.Pos, Msg: fmt.Sprintf("Python resolver %s: %v", pr.Name, err)}
}

func nullRecord(mem memory.Allocator, fields []arrow.Field, n int) arrow.RecordBatch {
	cols := make([]arrow.Array, len(fields))
	for i, fld := range fields {
		cols[i] = array.MakeArrayOfNull(mem, fld.Type, n)
		defer cols[i].Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
}

// name is the resolver the lookup runs.
func (l *lookup) name() string {
	if l.py != nil {
		return l.py.resolver.Name
	}
	return l.resolver.Name
}

func (pc *pyCall) String() string {
	args := make([]string, len(pc.inputs))
	for i, b := range pc.inputs {
		args[i] = pc.fn.Params[i] + "=" + b.String()
	}
	return fmt.Sprintf("python %s(%s) [%s, %s]", pc.resolver.Name, strings.Join(args, ", "), pc.fn.File, pc.resolver.Why)
}
