package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
)

// QueryRequest is what the query page sends: a feature query (Class,
// Inputs, Outputs, as the native query takes them) or SQL.
type QueryRequest struct {
	Class string `json:"class,omitempty"`
	// Inputs are input columns by feature name, one value per row, as
	// text (converted to the features' types as the native query does).
	Inputs  map[string][]string `json:"inputs,omitempty"`
	Outputs []string            `json:"outputs,omitempty"`
	SQL     string              `json:"sql,omitempty"`
	// Now is the evaluation time (RFC 3339); empty: the server's clock.
	Now string `json:"now,omitempty"`
}

// QueryResult is a query's answer with its plan and what each stage did.
type QueryResult struct {
	Columns []string `json:"columns"`
	// Rows are the answer's rows, at most maxRows of them.
	Rows      [][]Cell `json:"rows"`
	TotalRows int      `json:"total_rows"`
	// More says the answer has rows beyond TotalRows: SQL beyond a lookup
	// stops once a row past maxRows arrives, rather than scanning on to
	// count rows nobody is shown.
	More bool `json:"more,omitempty"`
	// Hits says whether the answer has per-cell hit flags (feature
	// lookups do; SQL beyond a lookup does not).
	Hits   bool     `json:"hits"`
	Errors []string `json:"errors,omitempty"`
	Plan   PlanView `json:"plan"`
}

// Cell is one value and whether it was served from the online store.
type Cell struct {
	Value any  `json:"v"`
	Hit   bool `json:"hit,omitempty"`
}

// PlanView is a plan as the page draws it: its frames as a tree, the
// stages of the run (EXPLAIN ANALYZE) within them, and the text of both.
type PlanView struct {
	Text    string          `json:"text"`
	Frames  []planner.Frame `json:"frames"`
	Stages  []StageView     `json:"stages"`
	TotalMS float64         `json:"total_ms"`
	Classes []string        `json:"classes"`
}

// StageView is one stage of a run.
type StageView struct {
	Frame int     `json:"frame"` // index in Frames
	What  string  `json:"what"`
	AtMS  float64 `json:"at_ms"`
	MS    float64 `json:"ms"`
	In    int     `json:"in"`
	Out   int     `json:"out"`
	Note  string  `json:"note,omitempty"`
}

// maxRows bounds the rows a page is sent.
const maxRows = 1000

// errDenied refuses a query that reads a class the viewer may not read,
// without naming it.
var errDenied = errors.New("this query reads feature classes your token may not read")

// runner runs the console's queries in-process, on the engine serving now.
type runner struct {
	engine *planner.Engine
	exprs  native.Expressions
	mem    memory.Allocator
	now    time.Time
}

func (r runner) run(ctx context.Context, v viewer, req QueryRequest) (*QueryResult, error) {
	res, err := r.runAs(ctx, v, req)
	var own viewersError
	if errors.As(err, &own) {
		return nil, own.err
	}
	if err != nil && v.p != nil {
		// As the Flight port answers it: an error naming a class the
		// viewer may not read (a typo past a relation into it, with the
		// nearest of its features) refuses the query without naming it.
		var hidden []string
		if hidden, err = statement.Hide(r.engine.Graph(), err, v.canRead); len(hidden) > 0 {
			return nil, errDenied
		}
	}
	return res, err
}

// viewersError is an error read with the viewer's eyes (among the classes
// it may read only): it names nothing hidden, whatever it names.
type viewersError struct{ err error }

func (e viewersError) Error() string { return e.err.Error() }

func (r runner) runAs(ctx context.Context, v viewer, req QueryRequest) (*QueryResult, error) {
	if req.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Now)
		if err != nil {
			return nil, fmt.Errorf("now %q: expected a time like 2024-06-01T12:00:00Z", req.Now)
		}
		r.now = t.UTC()
	} else {
		// The server's clock, read once: SQL over features scans as of a
		// time, and a zero one would see no event at all.
		r.now = time.Now().UTC()
	}
	if strings.TrimSpace(req.SQL) != "" {
		return r.sql(ctx, v, req.SQL)
	}
	return r.feature(ctx, v, req)
}

// feature runs a feature query as the native query reads it.
func (r runner) feature(ctx context.Context, v viewer, req QueryRequest) (*QueryResult, error) {
	g := r.engine.Graph()
	c, err := visibleClass(g, v, req.Class)
	if err != nil {
		return nil, viewersError{err}
	}
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("give at least one input of %s, e.g. its key %s", c.Table, keyHint(c))
	}
	names := make([]string, 0, len(req.Inputs))
	for n := range req.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	fields := make([]arrow.Field, len(names))
	cols := make([]arrow.Array, len(names))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	rows := len(req.Inputs[names[0]])
	for i, n := range names {
		if len(req.Inputs[n]) != rows {
			return nil, fmt.Errorf("input %s has %d values but %s has %d: give each input once per row", n, len(req.Inputs[n]), names[0], rows)
		}
		b := array.NewStringBuilder(r.mem)
		b.AppendValues(req.Inputs[n], nil)
		cols[i] = b.NewArray()
		b.Release()
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	inputs := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(rows))
	defer inputs.Release()
	cmd, err := json.Marshal(native.Command{Query: &native.Query{Class: c.Table, Outputs: req.Outputs, Meta: true}})
	if err != nil {
		return nil, err
	}
	st, err := native.NewReader(g, r.exprs, 1, 1<<20).Read(cmd, inputs.Schema())
	if err != nil {
		return nil, err
	}
	bound, err := st.BindInputs(ctx, r.mem, inputs)
	if err != nil {
		return nil, err
	}
	defer bound.Release()
	return r.lookup(ctx, v, st, bound)
}

// lookup plans st, checks the viewer may read every class it reads, and
// runs it with EXPLAIN ANALYZE and hit flags.
func (r runner) lookup(ctx context.Context, v viewer, st *statement.Statement, inputs arrow.RecordBatch) (*QueryResult, error) {
	plan, err := r.engine.Prepare(st)
	if err != nil {
		return nil, err
	}
	if !v.canReadAll(plan.Classes()) {
		return nil, errDenied
	}
	res, err := plan.Run(ctx, inputs, planner.RunOptions{Now: r.now, Meta: true, Partial: true, Analyze: true})
	if err != nil {
		return nil, err
	}
	defer res.Release()
	out := &QueryResult{Hits: true, Plan: planView(plan, res.Analysis)}
	out.Plan.Classes = plan.Classes()
	rec := res.Record
	for _, f := range rec.Schema().Fields() {
		out.Columns = append(out.Columns, f.Name)
	}
	out.TotalRows = int(rec.NumRows())
	for i := 0; i < out.TotalRows && i < maxRows; i++ {
		row := make([]Cell, rec.NumCols())
		for j, col := range rec.Columns() {
			row[j].Value = jsonSafe(col.GetOneForMarshal(i))
			if j < len(res.Hits) && res.Hits[j] != nil {
				if h, ok := res.Hits[j].(*array.Boolean); ok && h.IsValid(i) {
					row[j].Hit = h.Value(i)
				}
			}
		}
		out.Rows = append(out.Rows, row)
	}
	for _, e := range res.Errors {
		out.Errors = append(out.Errors, out.Columns[e.Output]+": "+e.Message)
	}
	return out, nil
}

// sql runs SQL: a feature lookup as lookup does, SQL beyond one over the
// features it computes (relational), whose plan is text only.
func (r runner) sql(ctx context.Context, v viewer, text string) (*QueryResult, error) {
	var readable func(*features.Feature) bool
	if v.p != nil {
		// A `*` is the columns the viewer may read, as on the Flight port.
		readable = func(f *features.Feature) bool { return v.canReadAll(r.engine.Reads(f)) }
	}
	st, rel, err := sql.ParseQueryVisible(r.engine.Graph(), text, v.canRead, readable)
	if err != nil {
		// A table the viewer may not read is unknown to it; an error
		// everyone gets may name a hidden class (run checks).
		if _, _, all := sql.ParseQuery(r.engine.Graph(), text); all == nil || all.Error() != err.Error() {
			return nil, viewersError{err}
		}
		return nil, err
	}
	if rel == nil {
		inputs, err := st.LiteralInputs(r.mem)
		if err != nil {
			return nil, err
		}
		defer inputs.Release()
		return r.lookup(ctx, v, st, inputs)
	}
	re, err := relational.New(r.engine, r.mem)
	if err != nil {
		return nil, err
	}
	defer re.Close()
	q, err := re.Prepare(ctx, rel)
	if err != nil {
		return nil, err
	}
	if !v.canReadAll(q.Classes()) {
		return nil, errDenied
	}
	out := &QueryResult{Plan: PlanView{Text: q.Explain(), Frames: []planner.Frame{}, Stages: []StageView{}, Classes: q.Classes()}}
	for _, f := range q.Schema().Fields() {
		out.Columns = append(out.Columns, f.Name)
	}
	start := time.Now()
	err = q.Run(ctx, r.now, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			if len(out.Rows) >= maxRows {
				out.More = true
				return errEnough
			}
			out.TotalRows++
			row := make([]Cell, rec.NumCols())
			for j, col := range rec.Columns() {
				row[j].Value = jsonSafe(col.GetOneForMarshal(i))
			}
			out.Rows = append(out.Rows, row)
		}
		return nil
	})
	out.Plan.TotalMS = ms(time.Since(start))
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// errEnough stops a query whose rows beyond maxRows nobody would see.
var errEnough = errors.New("console: enough rows")

func planView(p *planner.Plan, a *planner.Analysis) PlanView {
	pv := PlanView{Text: p.ExplainAnalyze(a), Frames: p.Frames(), Stages: []StageView{}, TotalMS: ms(a.Total)}
	stages := append([]planner.Stage(nil), a.Stages...)
	sort.SliceStable(stages, func(i, j int) bool { return stages[i].At < stages[j].At })
	for _, s := range stages {
		pv.Stages = append(pv.Stages, StageView{Frame: fetchFrame(pv.Frames, s), What: s.What, AtMS: ms(s.At), MS: ms(s.Took), In: s.In, Out: s.Out, Note: s.Note})
	}
	return pv
}

// fetchFrame is the frame a stage is drawn in: its own, except for the
// fetch of a has-many's rows, which the run records in the parent frame
// (whose keys it reads) and the page draws in the has-many frame whose
// rows it is.
func fetchFrame(frames []planner.Frame, s planner.Stage) int {
	what, ok := strings.CutPrefix(s.What, "fetch ")
	if !ok || s.FrameID < 0 || s.FrameID >= len(frames) || slices.Contains(frames[s.FrameID].Fetches, what) {
		return s.FrameID
	}
	for _, f := range frames {
		if f.Parent == s.FrameID && len(f.Fetches) > 0 && f.Fetches[0] == what {
			return f.ID
		}
	}
	return s.FrameID
}

// jsonSafe is v with the floats JSON cannot carry (NaN, ±Inf: a division
// by zero) as the strings JavaScript prints for them, however deep in a
// list or struct.
func jsonSafe(v any) any {
	switch v := v.(type) {
	case float64:
		switch {
		case math.IsNaN(v):
			return "NaN"
		case math.IsInf(v, 1):
			return "Infinity"
		case math.IsInf(v, -1):
			return "-Infinity"
		}
	case float32:
		return jsonSafe(float64(v))
	case []any:
		for i := range v {
			v[i] = jsonSafe(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = jsonSafe(v[k])
		}
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// visibleClass finds a class v may read by table or Python name; a hidden
// class is unknown, like one that does not exist.
func visibleClass(g *features.Graph, v viewer, name string) (*features.Class, error) {
	var names []string
	for _, c := range g.Classes {
		if !v.canRead(c.Table) {
			continue
		}
		if strings.EqualFold(c.Table, name) || c.Name == name {
			return c, nil
		}
		names = append(names, c.Table)
	}
	sort.Strings(names)
	if name == "" {
		return nil, fmt.Errorf("choose a feature class (%s)", strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("no feature class %q%s (classes: %s)", name, suggest.DidYouMean(name, names), strings.Join(names, ", "))
}

// keyHint names the inputs that identify c's rows.
func keyHint(c *features.Class) string {
	primary, parts := statement.KeyColumns(c)
	if primary == nil {
		return "(none)"
	}
	if len(parts) == 0 {
		return primary.Name
	}
	var ns []string
	for _, p := range parts {
		ns = append(ns, p.Name)
	}
	return strings.Join(ns, " and ")
}
