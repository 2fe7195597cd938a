package planner

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features/expr"
)

// AsOfColumn is the input column that gives each input row its own
// evaluation time (the point-in-time path).
const AsOfColumn = "__as_of__"

// Query is a feature query, whatever front end it came from (SQL text,
// Substrait, the native feature query, the CLI).
type Query struct {
	// Class is the root feature class (table name or Python name).
	Class string
	// Inputs holds one row per requested entity. Its columns are named by
	// features of Class: the primary key (`id`) or the features the key is
	// derived from (`user_id`, `item_id`), plus optionally AsOfColumn, a
	// timestamp giving that row's evaluation time.
	Inputs arrow.RecordBatch
	// Outputs are the requested columns, in order.
	Outputs []Output
	// Now is the evaluation time of rows without their own; zero means the
	// time the query starts.
	Now time.Time
}

// Output is one requested column: a feature path (`full_name`,
// `item.title`, `review_count__604800__`) or any expression over the class.
type Output struct {
	Expr expr.Node
	// Name is the result column's name; empty means derived from Expr.
	Name string
}

// RunOptions tune one execution of a plan.
type RunOptions struct {
	// Now is the evaluation time of rows without their own __as_of__; zero
	// means the time the run starts.
	Now time.Time
	// Staleness overrides max_staleness for this run: keys are feature
	// names qualified by their class's table (`user.full_name`,
	// `user.review_count__604800__`) or "*" for every feature. 0 bypasses
	// the online store (always compute); a negative value means infinity.
	Staleness map[string]time.Duration
	// Meta asks for per-cell metadata (Result.Hits).
	Meta bool
	// Partial makes a failing source null the outputs that need it and
	// report them in Result.Errors, instead of failing the whole run.
	Partial bool
	// TraceID names the run in the offline log (a request id from the
	// caller); empty: the engine makes a random one.
	TraceID string
}

// Result is the answer of Plan.Run.
type Result struct {
	// Record has one column per output and one row per input row, in input
	// order.
	Record arrow.RecordBatch
	// Hits, when RunOptions.Meta is set, has one boolean array per output:
	// whether each cell was served from the online store.
	Hits []arrow.Array
	// Errors are the outputs that could not be computed (RunOptions.Partial);
	// their cells are null.
	Errors []OutputError
}

// Release releases the arrays of r.
func (r *Result) Release() {
	r.Record.Release()
	for _, h := range r.Hits {
		h.Release()
	}
}

// OutputError says why an output column could not be computed.
type OutputError struct {
	Output   int    // index of the output
	Resolver string // the resolver that failed, "" when none
	Kind     ErrorKind
	Message  string
}
