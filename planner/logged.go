package planner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
)

// The offline store as a source, and reverse ETL (docs/STORES.md,
// "Reading the offline store" and "Reverse ETL"):
//
//   - A run with RunOptions.FromLog (recompute_features=False) reads the
//     outputs that are features of the queried class from the offline log
//     instead of computing them: for each row (key, t), the value logged
//     with the latest observation time <= t — the value served then —, in
//     one as-of query for all the rows (stores.OfflineReader). A feature
//     never logged by t is null: it was never served. Nothing they depend
//     on is computed; the outputs named in RunOptions.Recompute, and the
//     other outputs of such a run, are. Such a run logs nothing (its
//     values are the log's) and never reads the online store.
//   - An offline run (rows with their own times, or FromLog) writes the
//     values of the root's etl_offline_to_online features to the online
//     store, each observed at its row's time (a value read from the log: at
//     the time it was logged). The stores keep a value observed later than
//     the one written, so an ETL never replaces a newer online value.

// logColumns lists the output columns of the root this run reads from the
// offline log; an error names an output that cannot come from it.
func (r *run) logColumns() ([]int, error) {
	if !r.opts.FromLog {
		return nil, nil
	}
	if r.p.engine.offlineRead == nil {
		return nil, &statement.Error{Kind: statement.Unsupported,
			Msg: "recompute_features=False reads the values served from the offline store, and this server has none: configure `offline_store:` in fletch.yaml (docs/STORES.md), or recompute the features"}
	}
	root := r.p.root
	names := make([]string, len(r.p.outputs))
	for oi, idx := range r.p.outputs {
		names[oi] = r.p.schema.Field(oi).Name
		if c := root.cols[idx]; c.feature != nil {
			names[oi] = c.feature.Class.Table + "." + c.feature.Name
		}
	}
	recompute := make([]bool, len(r.p.outputs))
	for _, name := range r.opts.Recompute {
		found := false
		for oi, idx := range r.p.outputs {
			if recomputes(name, names[oi], r.p.schema.Field(oi).Name, root.cols[idx]) {
				recompute[oi], found = true, true
			}
		}
		if !found {
			e := invalid(expr.Pos{}, "recompute_features names %q, which is not an output of the query", name)
			e.Suggestion = suggest.Nearest(name, append(slices.Clone(names), outputNames(r.p.schema)...))
			return nil, e
		}
	}
	var cols []int
	for oi, idx := range r.p.outputs {
		c := root.cols[idx]
		if recompute[oi] || c.kind == colInput || idx == root.keyCol || slices.Contains(cols, idx) {
			continue // an input is the caller's own value, not a served one
		}
		if c.feature == nil || c.feature.Kind != features.Scalar || c.feature.Class != root.class {
			return nil, invalid(expr.Pos{}, "output %q cannot be read from the offline store, which logs the features of %s by name, not expressions or related classes' features: recompute it (recompute_features=[%q])",
				r.p.schema.Field(oi).Name, root.class.Table, r.p.schema.Field(oi).Name)
		}
		cols = append(cols, idx)
	}
	return cols, nil
}

// outputNames are the result's column names, as the query wrote its outputs:
// the names a caller may use in recompute_features besides the features'.
func outputNames(s *arrow.Schema) []string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return names
}

// recomputes says whether name (of RunOptions.Recompute) names output
// column c: by its qualified feature name, its feature name or the
// output's own name.
func recomputes(name, qualified, output string, c *column) bool {
	if strings.EqualFold(name, qualified) || strings.EqualFold(name, output) {
		return true
	}
	return c.feature != nil && strings.EqualFold(name, c.feature.Name)
}

// readLog fills cols of the root frame f with the values the offline log
// holds as of each row's time, and keeps when each was logged (for ETL).
func (r *run) readLog(f *frameData, cols []int) error {
	node := f.node
	fields := make([]arrow.Field, len(cols))
	for j, i := range cols {
		fields[j] = arrow.Field{Name: node.cols[i].feature.Name, Type: node.cols[i].typ, Nullable: true}
	}
	st := r.stages.begin(f, node, "offline store", f.n)
	got, err := r.p.engine.offlineRead.AsOf(r.ctx, r.mem, node.class.Table, f.cols[node.keyCol], f.rowTimes(), arrow.NewSchema(fields, nil))
	if err != nil {
		r.stages.finish(st, 0, "", err)
		return &statement.Error{Kind: statement.SourceFailure, Msg: err.Error()}
	}
	defer got.Release()
	found := 0
	f.logged = make(map[int]arrow.Array, len(cols))
	for j, i := range cols {
		v, obs := got.Values.Column(j), got.Observed[j]
		v.Retain()
		obs.Retain()
		f.cols[i], f.logged[i] = v, obs
		found += obs.Len() - obs.NullN()
	}
	r.stages.finish(st, f.n, fmt.Sprintf("%d features as of each row's time: %d of %d values logged", len(cols), found, len(cols)*f.n), nil)
	return nil
}

// offlineRun says whether r is an offline query: its rows have their own
// times, or it reads the log. A materialized run's windows end at their
// bucket (docs/TILES.md), not at the row's time: not an online value.
func (r *run) offlineRun() bool {
	return (r.p.timeCol >= 0 || r.opts.FromLog) && !(r.opts.Materialized && !r.opts.AlignWindows)
}

// etl writes the root's etl_offline_to_online features to the online
// store, one write per feature: each row's value observed at the row's
// time, or, read from the log, when it was logged. A row time later than
// the clock is skipped (the store would serve it as not yet observed, and
// keep it over the values observed until then).
func (r *run) etl(f *frameData) {
	if r.p.engine.writer == nil || !r.offlineRun() || f.node.keyCol < 0 || f.n == 0 {
		return
	}
	node := f.node
	var times []int64
	clock := time.Now().UnixMicro()
	for i, c := range node.cols {
		if f.cols[i] == nil || i == node.keyCol || c.kind == colInput || c.feature == nil || c.feature.Kind != features.Scalar ||
			!c.feature.ETLOfflineToOnline() || stores.CacheableType(c.typ) != nil {
			continue
		}
		keep, every, ok := r.storable(f, i)
		if !ok {
			continue
		}
		logged, _ := f.logged[i].(*array.Timestamp)
		if logged == nil && times == nil {
			times = f.rowTimes()
		}
		rows := make([]int32, 0, f.n)
		observed := make([]time.Time, 0, f.n)
		add := func(k int32) {
			switch {
			case logged != nil && logged.IsValid(int(k)):
				rows, observed = append(rows, k), append(observed, time.UnixMicro(int64(logged.Value(int(k)))).UTC())
			case logged == nil && times[k] <= clock:
				rows, observed = append(rows, k), append(observed, time.UnixMicro(times[k]).UTC())
			}
		}
		if every {
			for k := range f.n {
				add(int32(k))
			}
		} else {
			for _, k := range keep {
				add(k)
			}
		}
		r.queueWrite(f, []int{i}, rows, observed)
	}
}
