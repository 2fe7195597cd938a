package planner

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/statement"
)

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
	// Materialized answers the windows of materialized features from
	// aggregation tiles (use_materialized_offline_query, docs/TILES.md):
	// the complete buckets that intersect each row's window.
	Materialized bool
	// AlignWindows, with Materialized, adds the raw events of each row's
	// open bucket to its tiles (align_offline_chalk_window_with_materialization).
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
	// TraceID names the run in the offline log (a request id from the
	// caller); empty: the engine makes a random one.
	TraceID string
	// Analyze asks for what the run did, stage by stage
	// (Result.Analysis): EXPLAIN ANALYZE.
	Analyze bool
}

// Result is the answer of Plan.Run.
type Result struct {
	// Record has one column per output and one row per input row, in input
	// order.
	Record arrow.RecordBatch
	// Hits, when RunOptions.Meta is set, has one boolean array per output:
	// whether each cell was served from the online store.
	Hits []arrow.Array
	// Errors are the outputs that could not be computed (RunOptions.Partial),
	// for all rows or for some (OutputError.Rows); their cells are null.
	Errors []OutputError
	// NullKeys are the input rows whose key is null: they name no entity,
	// and every output of theirs is null.
	NullKeys []int
	// Analysis, with RunOptions.Analyze, is what the run did.
	Analysis *Analysis
}

// Release releases the arrays of r.
func (r *Result) Release() {
	r.Record.Release()
	for _, h := range r.Hits {
		h.Release()
	}
}

// OutputError says why an output column could not be computed, in every
// row or in some.
type OutputError struct {
	Output   int    // index of the output
	Resolver string // the resolver that failed, "" when none
	Kind     statement.ErrorKind
	Message  string
	// Rows are the input rows (from 0, ascending) that failed when only
	// some did (a Python resolver raised for them, or their value broke a
	// strict validation; their cells are null); nil: all of them.
	Rows []int
}
