package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores"
)

// The online store in a run (DESIGN §4 Staleness, docs/SEMANTICS.md):
//
//   - A frame with a key (the input rows, a has-one's related rows) reads the
//     features it needs that have a staleness (max_staleness, or the run's
//     override) from the online store in one Get for all its keys.
//   - A column is served from the store when every row's stored value was
//     observed no later than the run's time and no longer ago than the
//     staleness; then nothing it depends on is computed. Otherwise the whole
//     column is computed (a bulk query with a few new keys recomputes that
//     column for all its rows: fresher, never staler) and written back.
//   - Point-in-time runs (an __as_of__ column) never read the store: a
//     cached value says what was true when it was observed, not at each
//     row's time. They write only their etl_offline_to_online features, at
//     each row's time (logged.go).
//   - Write-back is asynchronous and bounded: a full queue drops the write
//     (counted), the answer never waits for it. A value computed from a
//     failed resolver is never written.

// EngineOption configures an Engine.
type EngineOption func(*Engine)

// WithOnlineStore makes the engine serve features that have a staleness
// from store, and write computed values back to it.
func WithOnlineStore(store stores.OnlineStore) EngineOption {
	return func(e *Engine) { e.store = store }
}

// writeJob is one Set for the online store, holding its arrays.
type writeJob struct {
	class    string
	keys     arrow.Array
	values   arrow.RecordBatch
	observed []time.Time
	// span is the write-back's span in the trace of the query that
	// computed the values (nil when it is not traced): from the queue to
	// the store.
	span oteltrace.Span
}

// errDropped is the error of a write-back's span when it was dropped.
var errDropped = errors.New("write-back dropped: the queue is full or the engine closed")

// done releases j's arrays and ends its span with the write's error.
func (j *writeJob) done(err error) {
	j.keys.Release()
	j.values.Release()
	trace.End(j.span, err)
}

// writer drains write-backs to the online store.
type writer struct {
	store    stores.OnlineStore
	observer Observer // nil: none
	jobs     chan *writeJob
	pending  sync.WaitGroup // jobs queued and not yet written (or failed)
	loops    sync.WaitGroup // the draining goroutines, for close
	// mu orders enqueue against close: a run that finishes while the
	// engine closes must not send on the closed channel.
	mu      sync.RWMutex
	closed  bool
	dropped atomic.Int64
	failed  atomic.Int64
}

func newWriter(store stores.OnlineStore, n int, o Observer) *writer {
	w := &writer{store: store, jobs: make(chan *writeJob, n), observer: o}
	for range 2 {
		w.loops.Add(1)
		go w.loop()
	}
	return w
}

func (w *writer) loop() {
	defer w.loops.Done()
	for j := range w.jobs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := w.store.Set(ctx, j.class, j.keys, j.values, j.observed)
		if w.observer != nil {
			w.observer.OnlineWritten(j.class, time.Since(start), err)
		}
		if err != nil {
			if n := w.failed.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th... failure
				slog.Warn("writing to the online store failed", "class", j.class, "failures", n, "err", err)
			}
		}
		cancel()
		j.done(err)
		w.pending.Done()
	}
}

// enqueue queues j, or drops it (counted) when the queue is full or the
// writer closed.
func (w *writer) enqueue(j *writeJob) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.closed {
		w.pending.Add(1)
		select {
		case w.jobs <- j:
			return
		default:
			w.pending.Done()
		}
	}
	w.dropped.Add(1)
	j.done(errDropped)
}

// close writes every job queued so far (each reaches the store or fails)
// and returns when the loops have ended. Later enqueues are dropped.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs) // the loops drain what is buffered, then end
	}
	w.mu.Unlock()
	w.loops.Wait()
}

// Close stops the engine's own work: every write-back queued before it
// reaches the online store (or fails), then the goroutines writing them
// end; a write-back queued after it, by a run still going, is dropped
// (CacheStats.Dropped). The Python workers stop: a run still calling one
// fails there (a per-feature error in a partial run).
// It does not close the online store, the offline log or the sources:
// they belong to whoever opened them (config.Env.Close). Close may be
// called more than once; the engine still answers queries after it.
func (e *Engine) Close() {
	if e.writer != nil {
		e.writer.close()
	}
	if e.python != nil {
		e.python.Close()
	}
}

// Flush waits until every write-back queued so far has reached the online
// store, and every value logged so far the offline store (or failed).
func (e *Engine) Flush() {
	if e.writer != nil {
		e.writer.pending.Wait()
	}
	if e.offline != nil {
		e.offline.Flush()
	}
}

// CacheStats are counters of the online store's write-backs.
type CacheStats struct {
	Dropped int64 // writes dropped because the queue was full or the engine closed
	Failed  int64 // writes the store refused
}

// CacheStats returns the write-back counters.
func (e *Engine) CacheStats() CacheStats {
	if e.writer == nil {
		return CacheStats{}
	}
	return CacheStats{Dropped: e.writer.dropped.Load(), Failed: e.writer.failed.Load()}
}

// staleness is how long column c's values may be served from the store in
// this run: 0 is never.
func (r *run) staleness(c *column) time.Duration {
	if c.feature == nil || (c.kind != colLookup && c.kind != colExpr) {
		return 0
	}
	if st, ok := r.opts.Staleness[c.fqn]; ok {
		return normStaleness(st)
	}
	if st, ok := r.opts.Staleness["*"]; ok && (c.staleness > 0 || st == 0) {
		return normStaleness(st)
	}
	return c.staleness
}

func normStaleness(d time.Duration) time.Duration {
	if d < 0 {
		return infinite
	}
	return d
}

// cacheable lists the columns of f this run may serve from the store.
func (r *run) cacheable(f *frameData, need []bool) []int {
	if !r.cacheOn || f.node.keyCol < 0 || f.n == 0 {
		return nil
	}
	var out []int
	for i, c := range f.node.cols {
		if need[i] && i != f.node.keyCol && f.cols[i] == nil && r.staleness(c) > 0 {
			out = append(out, i)
		}
	}
	return out
}

// readCache fills the columns of f whose every row is fresh in the store.
// A failing store is logged and treated as empty: the run computes.
func (r *run) readCache(f *frameData, cols []int) {
	node := f.node
	fields := make([]arrow.Field, len(cols))
	for j, i := range cols {
		fields[j] = arrow.Field{Name: node.cols[i].feature.Name, Type: node.cols[i].typ, Nullable: true}
	}
	start := time.Now()
	st := r.stages.begin(f, node, "online store", f.n)
	got, err := r.p.engine.store.Get(r.ctx, r.mem, node.class.Table, f.cols[node.keyCol], arrow.NewSchema(fields, nil))
	if err != nil {
		r.stages.finish(st, 0, "", err)
		if o := r.p.engine.observer; o != nil {
			o.OnlineRead(node.class.Table, 0, len(cols)*f.n, time.Since(start), err)
		}
		slog.WarnContext(r.ctx, "reading the online store failed: computing instead", "class", node.class.Table, "err", err)
		return
	}
	defer got.Release()
	if o, s := r.p.engine.observer, r.stages; o != nil || s != nil {
		defer func() {
			hits := 0
			for _, i := range cols {
				if f.hit[i] {
					hits++
				}
			}
			if o != nil {
				o.OnlineRead(node.class.Table, hits*f.n, (len(cols)-hits)*f.n, time.Since(start), nil)
			}
			if s != nil {
				s.finish(st, f.n, fmt.Sprintf("%d of %d features served", hits, len(cols)), nil)
			}
		}()
	}
	nowUS := r.now.UnixMicro()
	// Stores share one Observed array among features observed together:
	// its span is computed once.
	var last arrow.Array
	var stored bool
	var oldest, newest int64
	for j, i := range cols {
		if obs := got.Observed[j]; obs != last {
			last = obs
			stored, oldest, newest = observedSpan(obs.(*array.Timestamp))
		}
		st := r.staleness(node.cols[i])
		if stored && newest <= nowUS && (st == infinite || nowUS-oldest <= st.Microseconds()) {
			v := got.Values.Column(j)
			v.Retain()
			f.cols[i] = v
			f.hit[i] = true
		}
	}
}

// observedSpan is the oldest and newest of the times in obs; stored is
// false when some row has none (nothing stored, or no row).
func observedSpan(obs *array.Timestamp) (stored bool, oldest, newest int64) {
	if obs.Len() == 0 || obs.NullN() > 0 {
		return false, 0, 0
	}
	ts := obs.TimestampValues()
	oldest, newest = int64(ts[0]), int64(ts[0])
	for _, t := range ts[1:] {
		oldest, newest = min(oldest, int64(t)), max(newest, int64(t))
	}
	return true, oldest, newest
}

// writeBack queues the computed values of cols (those not served from the
// store) for the store, observed at the run's time.
func (r *run) writeBack(f *frameData, cols []int) {
	var all []int
	for _, i := range cols {
		if f.hit[i] || f.cols[i] == nil {
			continue
		}
		keep, every, ok := r.storable(f, i)
		switch {
		case !ok:
		case every:
			all = append(all, i)
		default:
			r.queueWrite(f, []int{i}, keep, nil)
		}
	}
	if len(all) > 0 {
		r.queueWrite(f, all, nil, nil)
	}
}

// storable is the rows of column i of f the online store may keep: none
// (ok false) when the column is tainted by a failed resolver; every row
// (every) unless the feature asks not to cache some (cache_nulls=False,
// cache_defaults=False) or some raised or failed its strict validation;
// else those in keep.
func (r *run) storable(f *frameData, i int) (keep []int32, every, ok bool) {
	c := f.node.cols[i]
	if l, _ := r.tainted(c); l != nil {
		return nil, false, false
	}
	skipNulls := optionFalse(c, "cache_nulls")
	skipDefaults := optionFalse(c, "cache_defaults") && f.defaulted[i] != nil
	raised := f.raisedIn(i)          // a row that raised is an error, not a value to serve later
	invalid := f.invalidRows(i).rows // strict violations are never stored
	if !skipNulls && !skipDefaults && raised == nil && invalid == nil {
		return nil, true, true
	}
	keep = make([]int32, 0, f.n)
	for k := 0; k < f.n; k++ {
		if _, bad := raised[k]; bad || (skipNulls && f.cols[i].IsNull(k)) || (skipDefaults && f.defaulted[i][k]) {
			continue
		}
		if len(invalid) > 0 && invalid[0] == k {
			invalid = invalid[1:]
			continue
		}
		keep = append(keep, int32(k))
	}
	return keep, false, true
}

// queueWrite queues rows (nil: all) of cols of f, row k of them observed
// at observed[k] (nil: all at the run's time).
func (r *run) queueWrite(f *frameData, cols []int, rows []int32, observed []time.Time) {
	if rows != nil && len(rows) == 0 {
		return
	}
	pick := func(a arrow.Array) (arrow.Array, error) {
		if rows == nil {
			a.Retain()
			return a, nil
		}
		return operators.Gather(r.mem, a, rows)
	}
	keys, err := pick(f.cols[f.node.keyCol])
	if err != nil {
		return
	}
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for j, i := range cols {
		c := f.node.cols[i]
		fields[j] = arrow.Field{Name: c.feature.Name, Type: c.typ, Nullable: true}
		if arrs[j], err = pick(f.cols[i]); err != nil {
			keys.Release()
			for _, a := range arrs[:j] {
				a.Release()
			}
			return
		}
	}
	n := keys.Len()
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	if observed == nil {
		observed = make([]time.Time, n)
		for k := range observed {
			observed[k] = r.now
		}
	}
	j := &writeJob{class: f.node.class.Table, keys: keys, values: rec, observed: observed}
	if s := r.stages; s != nil && s.tracer != nil {
		_, j.span = s.tracer.Start(s.parentOf(f), "online store write", oteltrace.WithAttributes(
			attribute.String("fletch.class", j.class), attribute.Int("fletch.rows_in", n)))
	}
	r.p.engine.writer.enqueue(j)
}

// optionFalse reports whether c's feature(...) sets option to False.
func optionFalse(c *column, option string) bool {
	v, ok := c.feature.Options[option]
	if !ok {
		return false
	}
	lit, isLit := v.(*expr.Literal)
	if !isLit {
		return false
	}
	b, isBool := lit.Value.(bool)
	return isBool && !b
}
