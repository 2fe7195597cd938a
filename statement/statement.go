// Package statement is the one query type of fletch. Every front end —
// SQL text (package sql), Substrait plans (package substrait), the native
// feature query (package native) and the CLI — turns what it reads into a
// Statement: the class it reads, its outputs as expressions, its input
// columns and the rows or parameters that fill them, a limit and options.
// The planner plans a Statement and the transport runs it, whatever
// language it came in.
//
// It also holds what front ends share so they never import each other: the
// rules by which conditions name input rows (Build), table and column
// lookup against the feature graph, and the one error type (Error, with a
// position and a suggestion). It knows the feature graph and Arrow, and
// nothing of gRPC, Flight, parsing or execution.
package statement

import (
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// AsOfColumn is the input column that gives each input row its own
// evaluation time (the point-in-time path).
const AsOfColumn = "__as_of__"

// Catalog and Schema are the only catalog and schema of the SQL surface.
const (
	Catalog = "fletch"
	Schema  = "features"
)

// Statement is one query: the class it reads, its outputs, its input
// columns and the rows (or parameters) that fill them. A Statement is
// read-only once a front end has built it: plans and caches share it.
type Statement struct {
	// Text is the query as the client wrote it (SQL text), for messages;
	// empty for front ends without text.
	Text    string
	Class   *features.Class
	Outputs []Output
	// Inputs are the input columns, typed as the features they fill: key
	// columns (or any scalar features given as inputs) first, then
	// AsOfColumn when the query gives one.
	Inputs []arrow.Field
	// Params are the parameters by number ($1 first): what a bound batch
	// fills, one column per parameter.
	Params []Param
	// Limit caps the number of result rows; -1 means no limit.
	Limit   int64
	Options Options

	// rows are the input rows the query spells out: one per IN element,
	// each with one cell per input column. A statement with parameters has
	// exactly one row, whose parameter cells are filled from each bound
	// parameter row.
	rows [][]cell
	key  string
}

// Output is one requested column: a feature path (`full_name`,
// `item.title`, `review_count__604800__`) or any expression over the class.
type Output struct {
	Expr expr.Node
	// Name is the result column's name; empty means derived from Expr.
	Name string
}

// Options are what a query asks of its execution besides its outputs.
type Options struct {
	// Now is the evaluation time of rows without their own __as_of__; zero
	// means the server's clock.
	Now time.Time
	// Staleness overrides max_staleness: keys are feature names qualified
	// by their class's table (`user.full_name`) or "*"; 0 always computes,
	// a negative duration accepts any age.
	Staleness map[string]time.Duration
	// Meta asks for per-cell metadata (whether each cell was a cache hit).
	Meta bool
	// Partial nulls the outputs whose source fails, reporting them, instead
	// of failing the query.
	Partial bool
	// Explain asks for the plan instead of the answer.
	Explain bool
	// Analyze, with Explain, runs the query and answers the plan with what
	// each of its stages did (EXPLAIN ANALYZE).
	Analyze bool
	// Materialized answers materialized windowed features from
	// aggregation tiles (use_materialized_offline_query, docs/TILES.md).
	Materialized bool
	// AlignWindows adds, to the tiles, the raw events of each row's open
	// bucket (align_offline_chalk_window_with_materialization): what
	// online serving of a materialized feature sees.
	AlignWindows bool
	// FromLog answers the outputs that are features of the class with the
	// values the offline log holds at each row's time (the values served
	// then) instead of recomputing them: recompute_features=False
	// (docs/STORES.md, "Reading the offline store").
	FromLog bool
	// Recompute, with FromLog, names the outputs still recomputed
	// (recompute_features=[...]): features as `user.full_name` or
	// `full_name`.
	Recompute []string
}

// Param is one parameter of a statement.
type Param struct {
	// Column is the input column the parameter fills.
	Column string
	Type   arrow.DataType
	Pos    expr.Pos
}

// cell is one value of an input row: a converted literal or a parameter.
type cell struct {
	param int // index into Params, -1 for a literal
	value any // int64, float64, string, bool, arrow.Timestamp, arrow.Date32
}

// New is the statement of a query over class whose input columns all come
// from the batches it is bound to (the native query, the CLI): inputs are
// the columns as the client sends them, each a parameter, converted to its
// feature's type when bound. Options and Limit are left to the caller.
func New(class *features.Class, inputs []arrow.Field, outputs []Output) (*Statement, error) {
	if err := checkDepth(outputs); err != nil {
		return nil, err
	}
	st := &Statement{Class: class, Outputs: outputs, Limit: -1}
	row := make([]cell, len(inputs))
	for i, f := range inputs {
		typ, err := inputType(class, f.Name)
		if err != nil {
			return nil, err
		}
		if !coerce.Convertible(f.Type, typ) {
			return nil, Errorf(InvalidInput, expr.Pos{}, "input column %q is %s; %s.%s is %s", f.Name, f.Type, class.Table, f.Name, typ)
		}
		st.Inputs = append(st.Inputs, arrow.Field{Name: f.Name, Type: typ, Nullable: true})
		st.Params = append(st.Params, Param{Column: f.Name, Type: typ})
		row[i] = cell{param: i}
	}
	st.rows = [][]cell{row}
	return st.seal(), nil
}

// inputType is the type of an input column of class: a scalar feature's,
// or a timestamp for AsOfColumn.
func inputType(class *features.Class, name string) (arrow.DataType, error) {
	if name == AsOfColumn {
		return arrow.FixedWidthTypes.Timestamp_us, nil
	}
	f := class.Feature(name)
	if f == nil || f.Kind != features.Scalar {
		var names []string
		for _, f := range Columns(class) {
			names = append(names, f.Name)
		}
		return nil, suggested(Errorf(InvalidInput, expr.Pos{}, "input column %q is not a feature of %s", name, class.Table), name, append(names, AsOfColumn))
	}
	return f.Type.Arrow(), nil
}

// Columns are the columns of a class's table: its scalar features,
// windows included, in definition order.
func Columns(c *features.Class) []*features.Feature {
	var fs []*features.Feature
	for _, f := range c.Features {
		if f.Kind == features.Scalar {
			fs = append(fs, f)
		}
	}
	return fs
}

// ParamSchema is the schema a parameter batch must have: one field per
// parameter, in parameter order, typed as the input column it fills.
func (s *Statement) ParamSchema() *arrow.Schema {
	fields := make([]arrow.Field, len(s.Params))
	for i, p := range s.Params {
		fields[i] = arrow.Field{Name: p.Column, Type: p.Type, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Key is the statement's plan key: its class, input columns and outputs in
// a typed canonical form (expr.AppendKey), so that two statements share a
// plan exactly when they ask for the same computation. Values of input rows,
// the limit and the options are not part of it: they do not change the
// plan. Statements built by New and Build carry it from then on; one
// built by hand computes it at each call.
func (s *Statement) Key() string {
	if s.key != "" {
		return s.key
	}
	return s.makeKey()
}

func (s *Statement) makeKey() string {
	b := make([]byte, 0, 64+32*len(s.Outputs))
	b = strconv.AppendQuote(b, s.Class.Table)
	for _, f := range s.Inputs {
		b = append(b, '|')
		b = strconv.AppendQuote(b, f.Name)
		b = append(b, ':')
		b = append(b, f.Type.Fingerprint()...)
	}
	b = append(b, '>')
	for _, o := range s.Outputs {
		b = expr.AppendKey(append(b, '|'), o.Expr)
		b = append(b, " AS "...)
		b = strconv.AppendQuote(b, o.Name)
	}
	return string(b)
}

// MaxDepth bounds the nesting of an output's expression whatever the
// configuration: deeper ones are refused as soon as a front end has read
// them, before anything plans them, so that a hostile query cannot keep a
// core busy (planning is linear in an expression's size, no more). The
// server's own bound, DefaultMaxDepth unless fletch.yaml's
// server.limits.max_expression_depth says otherwise, is at most this.
const MaxDepth = 4096

// DefaultMaxDepth is the server's bound on an output's nesting when
// fletch.yaml sets none: far beyond what a feature needs.
const DefaultMaxDepth = 256

// checkDepth refuses outputs nested deeper than MaxDepth.
func checkDepth(outputs []Output) error {
	for i, o := range outputs {
		if d := expr.Depth(o.Expr); d > MaxDepth {
			return Errorf(InvalidInput, o.Expr.Position(), "output %d is nested %d deep: at most %d", i+1, d, MaxDepth)
		}
	}
	return nil
}

// seal computes the key of a statement once it is built: from then on it
// is shared read-only.
func (s *Statement) seal() *Statement {
	s.key = s.makeKey()
	return s
}
