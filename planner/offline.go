package planner

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores"
)

// The offline log in a run (docs/STORES.md, "The offline store"): every
// keyed frame (the input rows, a has-one's related rows) hands the scalar
// features the run computed to the log once they are filled — what the
// online write-back sees, and the features without a staleness too. Not
// logged: values served from the online store (logged when they were
// computed), the query's own inputs and the entity key (the row's key, not
// a value), columns from a failed resolver (their cells are nulls, not
// values), has-many rows (their aggregates are logged on the parent), and
// point-in-time runs, which recompute the past the log already holds as it
// was observed, and runs that read the log (RunOptions.FromLog).

// WithOfflineLog makes the engine log the feature values its runs compute,
// and, when log can be read back (stores.OfflineReader), answer runs with
// RunOptions.FromLog from it (logged.go).
func WithOfflineLog(log stores.OfflineLog) EngineOption {
	return func(e *Engine) {
		e.offline = log
		e.offlineRead, _ = log.(stores.OfflineReader)
	}
}

// HasOfflineLog says whether the engine logs what its runs compute: a
// front end names its runs (RunOptions.TraceID) only when it does.
func (e *Engine) HasOfflineLog() bool { return e.offline != nil }

// OfflineStats returns the offline log's counters (zero without one).
func (e *Engine) OfflineStats() stores.OfflineStats {
	if e.offline == nil {
		return stores.OfflineStats{}
	}
	return e.offline.Stats()
}

// logComputed logs the features of f this run computed.
func (r *run) logComputed(f *frameData) {
	log, node := r.p.engine.offline, f.node
	if log == nil || r.p.timeCol >= 0 || r.opts.FromLog || r.opts.Materialized || r.opts.AlignWindows || node.keyCol < 0 || f.n == 0 {
		return
	}
	var fields []arrow.Field
	var arrs []arrow.Array
	for i, c := range node.cols {
		if i == node.keyCol || f.cols[i] == nil || f.hit[i] || c.kind == colInput || c.feature == nil || c.feature.Kind != features.Scalar {
			continue
		}
		if l, _ := r.tainted(c); l != nil || f.raisedIn(i) != nil { // a row that raised has an error, not a value
			continue
		}
		if v := f.invalidRows(i); v.rows != nil {
			// values that failed a strict validation are never logged:
			// the others of the feature go in a batch of their own
			r.logRows(f, i, validRows(f.n, v.rows))
			continue
		}
		fields = append(fields, arrow.Field{Name: c.feature.Name, Type: c.typ, Nullable: true})
		arrs = append(arrs, f.cols[i])
	}
	if len(arrs) == 0 {
		return
	}
	keys := f.cols[node.keyCol]
	keys.Retain()
	log.Log(&stores.ComputedValues{
		Class:    node.class.Table,
		Keys:     keys,
		Values:   array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(f.n)),
		Observed: r.now,
		TraceID:  r.opts.TraceID,
	})
}

// logRows logs rows of column i of f alone.
func (r *run) logRows(f *frameData, i int, rows []int32) {
	if len(rows) == 0 {
		return
	}
	c := f.node.cols[i]
	keys, err := operators.Gather(r.mem, f.cols[f.node.keyCol], rows)
	if err != nil {
		return
	}
	values, err := operators.Gather(r.mem, f.cols[i], rows)
	if err != nil {
		keys.Release()
		return
	}
	defer values.Release()
	r.p.engine.offline.Log(&stores.ComputedValues{
		Class:    f.node.class.Table,
		Keys:     keys,
		Values:   array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: c.feature.Name, Type: c.typ, Nullable: true}}, nil), []arrow.Array{values}, int64(len(rows))),
		Observed: r.now,
		TraceID:  r.opts.TraceID,
	})
}
