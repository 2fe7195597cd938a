package planner

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/tiles"
)

// Materialized offline queries (docs/TILES.md, DESIGN §4 "Tiles"): a
// windowed aggregation with a materialization is answered, when the run
// asks for it (RunOptions.Materialized), by merging the tiles of the
// complete buckets that intersect each row's window — events with
// B(t − w) ≤ time < B(t) — instead of reading the related rows per row.
// Buckets without tiles are computed from the raw events of that range
// only, at the source (the backfill's own query, restricted to the run's
// keys).

// WithTiles makes the engine read aggregation tiles from st.
func WithTiles(st *tiles.Store) EngineOption {
	return func(e *Engine) { e.tiles = st }
}

// tileInfo is how a windowed aggregation may be answered from tiles.
type tileInfo struct {
	spec   *tiles.Spec
	err    error // why it cannot be, when spec is nil
	window time.Duration
	bucket time.Duration
	// widest is the longest window of the plan that reads the same tiles:
	// they are read once per frame, for it (tileSet).
	widest *time.Duration
	// group is the tile tables of the plan over the same relation's rows:
	// online, their raw events are read in one query (onlineGroup).
	group *rawGroup
}

// rawGroup is the tile tables of a plan whose aggregations read the rows of
// one relation (one child frame, one resolver, key and time): one tileInfo
// per table.
type rawGroup struct {
	infos []*tileInfo
}

// attachTiles marks the aggregation a window of a materialized feature
// computes (b, possibly under a cast) with its tiles.
func (pl *planner) attachTiles(feat *features.Feature, b bexpr) {
	if feat.Window == nil || feat.Materialization == nil {
		return
	}
	if c, ok := b.(*castTo); ok {
		b = c.x
	}
	a, ok := b.(*aggregation)
	if !ok {
		return
	}
	group := feat.Window.Group
	info := &tileInfo{window: feat.Window.Duration, bucket: feat.Materialization.Bucket(feat.Window.Duration)}
	if !slices.Contains(group.Windows, feat) {
		// A window the definition does not declare (an ad-hoc "14d"),
		// checked by adHocWindow.
		info.bucket, _ = feat.Materialization.AdHocBucket(group.Windows, info.window)
	}
	info.spec, info.err = tiles.SpecFor(pl.e.graph, group)
	if info.spec != nil {
		table := info.spec.Table(info.bucket)
		if pl.widest == nil {
			pl.widest = map[string]*time.Duration{}
		}
		if pl.widest[table] == nil {
			pl.widest[table] = new(time.Duration)
		}
		info.widest = pl.widest[table]
		*info.widest = max(*info.widest, info.window)
		gk := fmt.Sprintf("%p\x00%s\x00%s\x00%s", a.child, info.spec.Resolver.Name, info.spec.Key, info.spec.Time)
		if pl.rawGroups == nil {
			pl.rawGroups = map[string]*rawGroup{}
		}
		g := pl.rawGroups[gk]
		if g == nil {
			g = &rawGroup{}
			pl.rawGroups[gk] = g
		}
		if !slices.ContainsFunc(g.infos, func(o *tileInfo) bool { return o.spec.Table(o.bucket) == table }) {
			g.infos = append(g.infos, info)
		}
		info.group = g
	}
	a.tile = info
}

// adHocWindow returns a window of the materialized windowed aggregation
// group that its definition does not declare (`total_spend__1209600__`, `total_spend["14d"]`):
// the same expression over another window. nil when name names none; an
// error when it names a window its tiles cannot answer.
func adHocWindow(c *features.Class, name string) (*features.Feature, error) {
	var group *features.Feature
	var d time.Duration
	if i := len(name) - 2; i > 0 && name[i:] == "__" {
		base, secs, ok := cutWindowFQN(name)
		if !ok {
			return nil, nil
		}
		group, d = c.Feature(base), time.Duration(secs)*time.Second
	} else if i := indexByte(name, '['); i > 0 && name[len(name)-1] == ']' {
		label := name[i+1 : len(name)-1]
		if len(label) >= 2 && (label[0] == '"' || label[0] == '\'') {
			label = label[1 : len(label)-1]
		}
		var err error
		if d, err = features.ParseDuration(label); err != nil {
			return nil, nil
		}
		group = c.Feature(name[:i])
	}
	if group == nil || group.Kind != features.WindowedGroup || len(group.Windows) == 0 || d <= 0 || group.Materialization == nil {
		return nil, nil
	}
	if _, ok := group.Windows[0].Expr.(*expr.Agg); !ok {
		return nil, nil // a window of other windows' values: not one expression over another window
	}
	for _, w := range group.Windows {
		if w.Window.Duration == d {
			return w, nil
		}
	}
	if bucket, ok := group.Materialization.AdHocBucket(group.Windows, d); !ok {
		return nil, fmt.Errorf("%s.%s has no %s window, and its tiles cannot answer a window shorter than its finest bucket (%s): declare it in windowed(...) with a bucket no longer than it",
			c.Table, group.Name, features.FormatDuration(d), features.FormatDuration(bucket))
	}
	first := group.Windows[0]
	inst := *first
	inst.Name = features.WindowFQN(group.Name, d)
	inst.Window = &features.Window{Label: features.FormatDuration(d), Duration: d, Group: group}
	return &inst, nil
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// cutWindowFQN splits name__<seconds>__.
func cutWindowFQN(name string) (string, int64, bool) {
	s := name[:len(name)-2]
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || i < 3 || s[i-2:i] != "__" {
		return "", 0, false
	}
	var secs int64
	for _, ch := range s[i:] {
		secs = secs*10 + int64(ch-'0')
	}
	return s[:i-2], secs, true
}

// tiled reports whether a run answers aggregation a from tiles: a
// materialized offline run, or online serving of a feature whose tiles
// can be computed (`fletch validate` rejects the others; serving computes
// them exactly rather than fail).
func (r *run) tiled(a *aggregation) bool {
	if a.tile == nil {
		return false
	}
	return r.opts.Materialized || r.opts.AlignWindows || (r.servesTiles() && a.tile.spec != nil)
}

// servesTiles reports whether the run is online serving (no __as_of__, no
// offline option), where a materialized feature sees the aligned window
// B(t - w) <= time <= t: its tiles from the online store, then the raw
// events after them (DESIGN §4 "Tiles", docs/TILES.md "Online serving").
func (r *run) servesTiles() bool {
	return r.p.timeCol < 0 && !r.opts.Materialized && !r.opts.AlignWindows
}

// tiledAggregate answers a for the rows of f from tiles.
func (r *run) tiledAggregate(f *frameData, a *aggregation) (arrow.Array, error) {
	info := a.tile
	if info.spec == nil {
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf("use_materialized_offline_query: %v", info.err)}
	}
	keys, err := r.column(f, a.child.parentKey)
	if err != nil {
		return nil, err
	}
	ts, err := r.tileSet(f, info, keys)
	if err != nil {
		return nil, err
	}
	d, w := info.bucket, info.window.Microseconds()
	sp := aggregate.Spans{Lo: make([]int32, f.n), Hi: make([]int32, f.n)}
	if ts.rawRuns != nil {
		sp.Lo2, sp.Hi2 = make([]int32, f.n), make([]int32, f.n)
	}
	times := f.rowTimes()
	// Offline from complete tiles: every window of a row ends where its
	// key's tiles before B(t) end, and holds at most reach tiles.
	complete := ts.covHi == nil && ts.rawRuns == nil
	if complete {
		ends := ts.endsAt(f, d)
		du := d.Microseconds()
		reach := int32(w/du + 2)
		for _, i := range ts.order {
			// B(t - w) is B(t) - w when the window is whole buckets: no
			// division per row and window.
			lo, hi := ts.bt[i]-w, ts.bt[i]
			if w%du != 0 {
				lo = tiles.Bucket(times[i]-w, d)
			}
			if lo < hi {
				e := ends[i]
				s := max(ts.runLo[ts.rowKey[i]], e-reach)
				a, _ := slices.BinarySearch(ts.buckets[s:e], lo)
				sp.Lo[i], sp.Hi[i] = s+int32(a), e
			}
		}
	}
	for i, t := range times {
		k := ts.rowKey[i]
		if k < 0 || complete {
			continue
		}
		lo, hi := tiles.Bucket(t-w, d), tiles.Bucket(t, d)
		if ts.covHi != nil {
			// Online: tiles where the published range covers the window's
			// start, raw events after them.
			hi = rawFrom(ts, k, lo, hi)
		}
		if lo < hi {
			run := ts.buckets[ts.runLo[k]:ts.runHi[k]]
			a, _ := slices.BinarySearch(run, lo)
			b, _ := slices.BinarySearch(run, hi)
			sp.Lo[i], sp.Hi[i] = ts.runLo[k]+int32(a), ts.runLo[k]+int32(b)
		}
		if ts.rawRuns != nil {
			// Aligned: the open bucket's events, B(t) <= time <= t (online:
			// from the end of the row's tiles).
			run := ts.rawTimes[ts.rawRuns[k]:ts.rawRuns[k+1]]
			a, _ := slices.BinarySearch(run, hi)
			b, _ := slices.BinarySearch(run, t+1)
			base := ts.tiles + ts.rawRuns[k]
			sp.Lo2[i], sp.Hi2[i] = base+int32(a), base+int32(b)
		}
	}
	var out arrow.Array
	if ts.prefix != nil {
		out, err = ts.prefix.Merge(r.mem, ts.states, sp)
	} else {
		out, err = aggregate.MergeSpans(r.mem, a.fn, ts.states, sp)
	}
	if err != nil {
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf("%s: %v", a.text, err)}
	}
	return out, nil
}

// tileSet is the tiles of one tile table for the keys of a frame, over the
// buckets its widest window needs, ordered by key and bucket.
type tileSet struct {
	states  []arrow.Array
	buckets []int64 // per tile
	// runLo[k] .. runHi[k] are the tiles of distinct key k, by bucket.
	runLo, runHi []int32
	rowKey       []int32 // per frame row: its distinct key, -1 for none
	// Aligned runs only: after the tiles (states[tiles:]), the raw events
	// of the rows' open buckets as states of one event each, by key and
	// time; rawRuns as runs.
	tiles    int32
	rawTimes []int64
	rawRuns  []int32
	// resident holds the tiles when they are the store's resident copy
	// (states then refer to its columns); prefix is its running totals,
	// valid for the first `tiles` states.
	resident *tiles.Resident
	prefix   *aggregate.Prefix
	// ends is, per frame row, where its key's tiles before B(t) end
	// (endsAt).
	endsOnce sync.Once
	ends     []int32
	bt       []int64 // per frame row with tiles: B(t)
	order    []int32 // the rows with tiles, by run
	// Online serving only: per distinct key, the buckets its tiles cover,
	// [covLo, covHi) (covLo > covHi: none); nil when the tiles cover every
	// bucket asked for (offline runs compute the missing ones).
	covLo, covHi []int64
}

// endsAt returns, per row of f, where its key's tiles before its bucket
// B(t) end: the end of every window of the row, found once for the
// windows of the table.
func (t *tileSet) endsAt(f *frameData, d time.Duration) []int32 {
	t.endsOnce.Do(func() {
		// Rows in order of their runs, so that the tiles are read in
		// memory order, not at random (BENCHMARKS.md §24).
		at := make([]int32, len(t.runLo)+1)
		for _, k := range t.rowKey {
			at[k+1]++ // k = -1 counts in at[0], before every run
		}
		for k := 1; k < len(at); k++ {
			at[k] += at[k-1]
		}
		none := at[0]
		t.order = make([]int32, at[len(at)-1]-none)
		for i, k := range t.rowKey {
			if k >= 0 {
				t.order[at[k]-none] = int32(i)
				at[k]++
			}
		}
		t.ends, t.bt = make([]int32, f.n), make([]int64, f.n)
		times := f.rowTimes()
		for _, i := range t.order {
			k := t.rowKey[i]
			lo := t.runLo[k]
			t.bt[i] = tiles.Bucket(times[i], d)
			e, _ := slices.BinarySearch(t.buckets[lo:t.runHi[k]], t.bt[i])
			t.ends[i] = lo + int32(e)
		}
	})
	return t.ends
}

func (t *tileSet) release() {
	for _, s := range t.states {
		s.Release()
	}
	if t.resident != nil {
		t.resident.Release()
	}
}

// tileSet returns the tiles info reads for frame f, reading them on first
// use: stored where the store covers their buckets, computed at the source
// where it does not.
func (r *run) tileSet(f *frameData, info *tileInfo, keys arrow.Array) (*tileSet, error) {
	table := info.spec.Table(info.bucket)
	f.mu.Lock()
	ts, ok := f.tiles[table]
	f.mu.Unlock()
	if ok {
		return ts, nil
	}
	if r.servesTiles() && r.p.engine.store != nil {
		return r.onlineGroup(f, info, keys)
	}
	d, w := info.bucket, info.widest.Microseconds()
	all := tiles.Range{Lo: 1<<63 - 1, Hi: -1 << 63}
	for _, t := range f.rowTimes() {
		if lo, hi := tiles.Bucket(t-w, d), tiles.Bucket(t, d); lo < hi {
			all.Lo, all.Hi = min(all.Lo, lo), max(all.Hi, hi)
		}
	}
	open := r.opts.AlignWindows || r.servesTiles() // raw events after the tiles
	var covered []tiles.Covered
	var res *tiles.Resident
	var st *stage
	finish := func(out int, note string, err error) {
		if st != nil {
			r.stages.finish(st, out, note, err)
		}
	}
	if all.Lo < all.Hi && keys.Len() > 0 {
		if r.stages != nil {
			st = r.stages.begin(f, f.node, "tiles "+info.spec.Group.QualifiedName(), keys.Len())
		}
		var err error
		if covered, res, err = r.resident(info, all); err != nil {
			finish(0, "", err)
			return nil, err
		}
	}
	if res != nil && !open {
		// The frame's keys straight into the resident runs.
		ts = &tileSet{runLo: res.Runs[:len(res.Runs)-1], runHi: res.Runs[1:]}
		ts.hold(res)
		var err error
		if ts.rowKey, err = res.Index.LookupLatest(keys, operators.Visibility{}); err != nil {
			ts.release()
			finish(0, "", err)
			return nil, err
		}
		finish(len(ts.buckets), "resident tiles", nil)
		return f.keepTiles(table, ts), nil
	}
	distinct, err := distinctKeys(r.mem, keys)
	if err != nil {
		finish(0, "", err)
		return nil, err
	}
	defer distinct.Release()
	ix, err := operators.NewKeyIndex(distinct)
	if err != nil {
		finish(0, "", err)
		return nil, err
	}
	switch {
	case res != nil:
		ts, err = residentSet(res, distinct)
	case all.Lo < all.Hi && distinct.Len() > 0:
		ts, err = r.readTiles(info, distinct, ix, all, covered)
	default:
		ts = &tileSet{}
		ts.states, ts.buckets, ts.runLo, ts.runHi, err = r.sortedTiles(info, nil, ix, distinct.Len())
	}
	if ts != nil {
		finish(len(ts.buckets), "", err)
	} else {
		finish(0, "", err)
	}
	if err != nil {
		return nil, err
	}
	if ts.rowKey, err = ix.LookupLatest(keys, operators.Visibility{}); err != nil {
		ts.release()
		return nil, err
	}
	if (r.opts.AlignWindows || r.servesTiles()) && distinct.Len() > 0 {
		// Aligned, or served online without an online store (tiles from
		// the tile store): the open buckets' raw events after the tiles.
		if err := r.openBuckets(f, info, distinct, ix, ts); err != nil {
			ts.release()
			return nil, err
		}
	}
	return f.keepTiles(table, ts), nil
}

// keepTiles records ts as the frame's tiles of table, unless a concurrent
// evaluation did first: it returns the frame's.
func (f *frameData) keepTiles(table string, ts *tileSet) *tileSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.tiles[table]; ok {
		ts.release()
		return prev
	}
	if f.tiles == nil {
		f.tiles = map[string]*tileSet{}
	}
	f.tiles[table] = ts
	return ts
}

// resident returns the coverage of info's tile table and, when it covers
// all and the table fits in the store's memory, the store's resident copy
// of its tiles (the caller releases it).
func (r *run) resident(info *tileInfo, all tiles.Range) ([]tiles.Covered, *tiles.Resident, error) {
	st := r.p.engine.tiles
	if st == nil {
		return nil, nil, nil
	}
	covered, err := st.Coverage(r.ctx, info.spec, info.bucket)
	if err != nil {
		return nil, nil, &statement.Error{Kind: statement.SourceFailure, Msg: err.Error()}
	}
	if missingRanges(covered, all) != nil {
		return covered, nil, nil
	}
	res, err := st.Resident(r.ctx, info.spec, info.bucket, covered)
	if err != nil {
		return nil, nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("tiles of %s: %v", info.spec.Group.QualifiedName(), err)}
	}
	return covered, res, nil
}

// readTiles returns the tiles of keys (indexed by ix) in range all: read
// from the store where it covers them (covered, its coverage) and computed
// from the raw events at the source where it does not.
func (r *run) readTiles(info *tileInfo, keys arrow.Array, ix *operators.KeyIndex, all tiles.Range, covered []tiles.Covered) (*tileSet, error) {
	recs, err := r.tilesFor(info, keys, all, covered)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	ts := &tileSet{}
	if ts.states, ts.buckets, ts.runLo, ts.runHi, err = r.sortedTiles(info, recs, ix, keys.Len()); err != nil {
		return nil, err
	}
	return ts, nil
}

// residentSet is the tile set of the distinct keys over a store's resident
// tiles res (which it holds): each key's run is the resident one, none for
// a key without tiles.
func residentSet(res *tiles.Resident, keys arrow.Array) (*tileSet, error) {
	ts := &tileSet{}
	ts.hold(res)
	rk, err := res.Index.LookupLatest(keys, operators.Visibility{})
	if err != nil {
		ts.release()
		return nil, err
	}
	ts.runLo, ts.runHi = make([]int32, len(rk)), make([]int32, len(rk))
	for k, j := range rk {
		if j >= 0 {
			ts.runLo[k], ts.runHi[k] = res.Runs[j], res.Runs[j+1]
		}
	}
	return ts, nil
}

// hold makes ts the owner of a reference to res, its tiles.
func (t *tileSet) hold(res *tiles.Resident) {
	t.resident, t.buckets, t.prefix = res, res.Buckets, res.Prefix
	t.states = make([]arrow.Array, len(res.States))
	for c, s := range res.States {
		s.Retain()
		t.states[c] = s
	}
}

// missingRanges is what of r the ranges of covered (by start) do not hold.
func missingRanges(covered []tiles.Covered, all tiles.Range) []tiles.Range {
	var missing []tiles.Range
	at := all.Lo
	for _, c := range covered {
		if c.Hi <= at || c.Lo >= all.Hi {
			continue
		}
		if c.Lo > at {
			missing = append(missing, tiles.Range{Lo: at, Hi: c.Lo})
		}
		at = max(at, c.Hi)
		if at >= all.Hi {
			break
		}
	}
	if at < all.Hi {
		missing = append(missing, tiles.Range{Lo: at, Hi: all.Hi})
	}
	return missing
}

// tilesFor returns the tiles of keys in range all: read from the tile store
// where it covers them (covered, its coverage), computed from the raw
// events at the source where it does not.
func (r *run) tilesFor(info *tileInfo, keys arrow.Array, all tiles.Range, covered []tiles.Covered) ([]arrow.RecordBatch, error) {
	st := r.p.engine.tiles
	var recs []arrow.RecordBatch
	fail := func(err error) ([]arrow.RecordBatch, error) {
		for _, rec := range recs {
			rec.Release()
		}
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("tiles of %s: %v", info.spec.Group.QualifiedName(), err)}
	}
	missing := missingRanges(covered, all)
	read := len(missing) != 1 || missing[0] != all
	if read {
		rec, err := st.Read(r.ctx, r.mem, info.spec, info.bucket, keys, all)
		if err != nil {
			return fail(err)
		}
		recs = append(recs, rec)
	}
	if len(missing) > 0 {
		src, err := r.p.engine.sources.Source(info.spec.Resolver.Source)
		if err != nil {
			return fail(err)
		}
		for _, m := range missing {
			rec, err := info.spec.Compute(r.ctx, r.mem, src, info.bucket, m, keys)
			if err != nil {
				return fail(err)
			}
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

// sortedTiles returns the tiles of recs grouped by key and ordered by
// bucket: the state columns, each tile's bucket start, and per key of ix
// (nkeys of them) its run of tiles [runLo, runHi). Tiles of other keys may
// remain, in no run. A single record already grouped and ordered (the
// store reads them so) is used as it is; otherwise the tiles are sorted.
func (r *run) sortedTiles(info *tileInfo, recs []arrow.RecordBatch, ix *operators.KeyIndex, nkeys int) (states []arrow.Array, buckets []int64, runLo, runHi []int32, err error) {
	nstates := len(info.spec.States)
	var n int
	for _, rec := range recs {
		n += int(rec.NumRows())
	}
	keyOf := make([]int32, 0, n)
	bucketOf := make([]int64, 0, n)
	for _, rec := range recs {
		k, err := ix.LookupLatest(rec.Column(0), operators.Visibility{})
		if err != nil {
			return nil, nil, nil, nil, err
		}
		keyOf = append(keyOf, k...)
		bucketOf = append(bucketOf, rec.Column(1).(*array.Int64).Int64Values()...)
	}
	runLo, runHi = make([]int32, nkeys), make([]int32, nkeys)
	if len(recs) == 1 {
		if lo, hi, ok := runsIn(keyOf, bucketOf, nkeys); ok {
			states = make([]arrow.Array, nstates)
			for c := range states {
				states[c] = recs[0].Column(2 + c)
				states[c].Retain()
			}
			return states, bucketOf, lo, hi, nil
		}
	}
	perm := make([]int32, 0, n)
	for i := range n {
		if keyOf[i] >= 0 {
			perm = append(perm, int32(i))
		}
	}
	sort.Slice(perm, func(a, b int) bool {
		i, j := perm[a], perm[b]
		if keyOf[i] != keyOf[j] {
			return keyOf[i] < keyOf[j]
		}
		return bucketOf[i] < bucketOf[j]
	})
	states = make([]arrow.Array, nstates)
	for c := range nstates {
		parts := make([]arrow.Array, len(recs))
		for i, rec := range recs {
			parts[i] = rec.Column(2 + c)
		}
		var col arrow.Array
		if len(parts) == 1 {
			col = parts[0]
			col.Retain()
		} else if len(parts) == 0 {
			col = array.MakeArrayOfNull(r.mem, info.spec.States[c].Type, 0)
		} else if col, err = array.Concatenate(parts, r.mem); err != nil {
			release(states)
			return nil, nil, nil, nil, err
		}
		states[c], err = operators.Gather(r.mem, col, perm)
		col.Release()
		if err != nil {
			release(states)
			return nil, nil, nil, nil, err
		}
	}
	sortedKeys := make([]int32, len(perm))
	buckets = make([]int64, len(perm))
	for i, p := range perm {
		sortedKeys[i], buckets[i] = keyOf[p], bucketOf[p]
	}
	runs := runsOf(sortedKeys, nkeys)
	return states, buckets, runs[:nkeys], runs[1:], nil
}

// runsIn returns the runs of tiles already grouped by key and ordered by
// bucket within each key; ok is false when they are not.
func runsIn(keyOf []int32, bucketOf []int64, nkeys int) (lo, hi []int32, ok bool) {
	lo, hi = make([]int32, nkeys), make([]int32, nkeys)
	seen := make([]bool, nkeys)
	start := 0
	for i := 1; i <= len(keyOf); i++ {
		if i < len(keyOf) && keyOf[i] == keyOf[start] && keyOf[i] >= 0 {
			if bucketOf[i] <= bucketOf[i-1] {
				return nil, nil, false
			}
			continue
		}
		if k := keyOf[start]; k >= 0 {
			if seen[k] {
				return nil, nil, false // a key in two places: not grouped
			}
			seen[k] = true
			lo[k], hi[k] = int32(start), int32(i)
		}
		start = i
	}
	return lo, hi, true
}

func release(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

// tiledAggregation is the aggregation with tiles b computes (under a cast
// or a default), nil when none.
func tiledAggregation(b bexpr) *aggregation {
	switch b := b.(type) {
	case *aggregation:
		if b.tile != nil {
			return b
		}
	case *castTo:
		return tiledAggregation(b.x)
	case *call:
		if len(b.args) > 0 {
			return tiledAggregation(b.args[0])
		}
	}
	return nil
}

// describe says, for a plan's text, where the tiles of an aggregation are.
func (t *tileInfo) describe() string {
	if t.spec == nil {
		return fmt.Sprintf("with use_materialized_offline_query: %v", t.err)
	}
	return fmt.Sprintf("with use_materialized_offline_query: merge tiles %s (%s buckets, B(t - %s) <= time < B(t)); buckets without tiles: GROUP BY key, bucket at source %s",
		t.spec.Table(t.bucket), features.FormatDuration(t.bucket), features.FormatDuration(t.window), t.spec.Resolver.Source)
}

// describeServed says, for a plan's text, what online serving reads for a
// materialized window instead of the related rows (run.servesTiles).
func (t *tileInfo) describeServed() string {
	return fmt.Sprintf("served online: tiles %s (%s buckets) from the online store, then the raw events after them at source %s (B(t - %s) <= time <= t); the related rows are not fetched for it",
		t.spec.Table(t.bucket), features.FormatDuration(t.bucket), t.spec.Resolver.Source, features.FormatDuration(t.window))
}

// runsOf returns, for keys sorted by key index, where each key's run
// starts: runs[k] .. runs[k+1].
func runsOf(keys []int32, n int) []int32 {
	runs := make([]int32, n+1)
	for _, k := range keys {
		runs[k+1]++
	}
	for k := 1; k < len(runs); k++ {
		runs[k] += runs[k-1]
	}
	return runs
}

// onlineGroup reads, for online serving, the tiles of every tile table of
// info's group (the plan's tile tables over one relation) for the keys of
// f from the online store, then the raw events each row sees after its
// tiles (B(t) <= time <= t, from where its key's tiles end) for all those
// tables in one query per distinct start (a key without tiles reads its
// whole window; the others need not), and returns info's.
func (r *run) onlineGroup(f *frameData, info *tileInfo, keys arrow.Array) (*tileSet, error) {
	distinct, err := distinctKeys(r.mem, keys)
	if err != nil {
		return nil, err
	}
	defer distinct.Release()
	ix, err := operators.NewKeyIndex(distinct)
	if err != nil {
		return nil, err
	}
	rowKey, err := ix.LookupLatest(keys, operators.Visibility{})
	if err != nil {
		return nil, err
	}
	group := info.group.infos
	sets := make([]*tileSet, len(group))
	defer func() {
		for _, ts := range sets {
			if ts != nil {
				ts.release()
			}
		}
	}()
	nk := distinct.Len()
	need := make([]int64, nk) // per key: where its earliest raw event read starts
	for k := range need {
		need[k] = 1<<63 - 1
	}
	end := int64(-1 << 63)
	var st *stage
	if r.stages != nil { // the name is built only when asked for
		st = r.stages.begin(f, f.node, "online tiles "+info.spec.Group.QualifiedName(), nk)
	}
	for g, gi := range group {
		ts := &tileSet{rowKey: rowKey}
		sets[g] = ts
		if err := r.onlineTiles(gi, distinct, ts); err != nil {
			r.stages.finish(st, 0, "", err)
			return nil, err
		}
		d, w := gi.bucket, gi.widest.Microseconds()
		for i, t := range f.rowTimes() {
			k := rowKey[i]
			if k < 0 {
				continue
			}
			need[k] = min(need[k], rawFrom(ts, k, tiles.Bucket(t-w, d), tiles.Bucket(t, d)))
			end = max(end, t+1)
		}
	}
	if r.stages != nil {
		r.stages.finish(st, coveredKeys(sets), fmt.Sprintf("keys with tiles, of %d tile table(s)", len(group)), nil)
	}
	if err := r.readRaw(f, info, group, sets, distinct, need, end, ix); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tiles == nil {
		f.tiles = map[string]*tileSet{}
	}
	for g, gi := range group {
		table := gi.spec.Table(gi.bucket)
		if _, ok := f.tiles[table]; !ok {
			f.tiles[table] = sets[g]
			sets[g] = nil
		}
	}
	return f.tiles[info.spec.Table(info.bucket)], nil
}

// coveredKeys counts the distinct keys some tile set has tiles of.
func coveredKeys(sets []*tileSet) int {
	n := 0
	for k := range sets[0].covLo {
		for _, ts := range sets {
			if ts.covLo[k] <= ts.covHi[k] {
				n++
				break
			}
		}
	}
	return n
}

// rawFrom is where a row's raw events start after the tiles of key k in
// ts, for its window [lo, t] whose tiles end at hi = B(t): where the key's
// tiles end, or lo when they do not reach back to it.
func rawFrom(ts *tileSet, k int32, lo, hi int64) int64 {
	if ts.covLo[k] > lo || ts.covHi[k] <= lo {
		return lo
	}
	return min(hi, ts.covHi[k])
}

// readRaw reads the raw events of group's tables for the keys of distinct
// from need[k] (per key) to end, in one query per distinct start (at most
// maxRawReads, else one from the earliest), and adds each table's to its
// tile set.
func (r *run) readRaw(f *frameData, info *tileInfo, group []*tileInfo, sets []*tileSet, distinct arrow.Array, need []int64, end int64, ix *operators.KeyIndex) error {
	byStart := map[int64][]int32{}
	var starts []int64
	for k, lo := range need {
		if lo >= end {
			continue
		}
		if byStart[lo] == nil {
			starts = append(starts, lo)
		}
		byStart[lo] = append(byStart[lo], int32(k))
	}
	slices.Sort(starts)
	if len(starts) > maxRawReads {
		all := slices.Concat(slices.Collect(maps.Values(byStart))...)
		starts, byStart = starts[:1], map[int64][]int32{starts[0]: all}
	}
	src, err := r.p.engine.sources.Source(info.spec.Resolver.Source)
	if err != nil {
		return &statement.Error{Kind: statement.SourceFailure, Msg: err.Error()}
	}
	specs := make([]*tiles.Spec, len(group))
	for g, gi := range group {
		specs[g] = gi.spec
	}
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	var cols []tiles.RawColumns
	for _, lo := range starts {
		keys, err := operators.Gather(r.mem, distinct, byStart[lo])
		if err != nil {
			return err
		}
		var st *stage
		if r.stages != nil {
			st = r.stages.begin(f, f.node, "raw events "+info.spec.Group.QualifiedName()+" [source "+info.spec.Resolver.Source+"]", keys.Len())
		}
		rec, c, err := tiles.RawAll(r.ctx, r.mem, src, specs, tiles.Range{Lo: lo, Hi: end}, keys)
		keys.Release()
		if r.stages != nil {
			out := 0
			if err == nil {
				out = int(rec.NumRows())
			}
			r.stages.finish(st, out, "", err)
		}
		if err != nil {
			return &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("raw events of %s: %v", info.spec.Group.QualifiedName(), err)}
		}
		recs, cols = append(recs, rec), c
	}
	if len(recs) == 0 {
		return nil
	}
	all, err := concatColumns(r.mem, recs)
	if err != nil {
		return err
	}
	defer release(all)
	col := func(i int) arrow.Array {
		if i < 0 {
			return nil
		}
		return all[i]
	}
	for g, gi := range group {
		var mask *array.Boolean
		if w := cols[g].Where; w >= 0 {
			mask = all[w].(*array.Boolean)
		}
		if err := r.appendRaw(gi.spec, sets[g], all[0], all[1], col(cols[g].Value), col(cols[g].SortBy), mask, ix); err != nil {
			return err
		}
	}
	return nil
}

// maxRawReads bounds the source queries of one online read of raw events.
const maxRawReads = 4

// onlineTiles fills ts with the tiles of the distinct keys read from the
// online store (tiles.Publish wrote them) and, per key, the range they
// cover. A key without tiles there, or with tiles of another definition,
// covers nothing: its rows read raw events. A failing store is logged and
// treated as empty, as for cached values.
func (r *run) onlineTiles(info *tileInfo, distinct arrow.Array, ts *tileSet) error {
	nk := distinct.Len()
	ts.runLo, ts.runHi = make([]int32, nk), make([]int32, nk)
	ts.covLo, ts.covHi = make([]int64, nk), make([]int64, nk)
	for k := range nk {
		ts.covLo[k], ts.covHi[k] = 1<<63-1, -1<<63
	}
	spec := info.spec
	var got *stores.OnlineValues
	if nk > 0 {
		var err error
		class := spec.OnlineClass(info.bucket)
		if got, err = r.p.engine.store.Get(r.ctx, r.mem, class, distinct, spec.OnlineSchema()); err != nil {
			slog.WarnContext(r.ctx, "reading tiles from the online store failed: reading raw events instead", "tiles", class, "err", err)
			got = nil
		}
	}
	states := make([]arrow.Array, len(spec.States))
	if got == nil {
		for c, f := range spec.States {
			states[c] = array.MakeArrayOfNull(r.mem, f.Type, 0)
		}
		ts.states = states
		return nil
	}
	defer got.Release()
	v := got.Values
	lo, hi := v.Column(0).(*array.Int64), v.Column(1).(*array.Int64)
	def, buckets := v.Column(2).(*array.String), v.Column(3).(*array.List)
	bvals := buckets.ListValues().(*array.Int64).Int64Values()
	lists := make([]*array.List, len(spec.States))
	for c := range lists {
		lists[c] = v.Column(4 + c).(*array.List)
	}
	want := spec.Definition()
	var idx []int32
	for k := range nk {
		ts.runLo[k] = int32(len(idx))
		ts.runHi[k] = ts.runLo[k]
		if lo.IsNull(k) || hi.IsNull(k) || def.IsNull(k) || def.Value(k) != want || buckets.IsNull(k) {
			continue
		}
		s, e := buckets.ValueOffsets(k)
		ok := true
		for _, l := range lists {
			if ls, le := l.ValueOffsets(k); l.IsNull(k) || ls != s || le != e {
				ok = false // written together, so never; but never misread either
			}
		}
		if !ok {
			continue
		}
		for j := s; j < e; j++ {
			idx = append(idx, int32(j))
			ts.buckets = append(ts.buckets, bvals[j])
		}
		ts.runHi[k] = int32(len(idx))
		ts.covLo[k], ts.covHi[k] = lo.Value(k), hi.Value(k)
	}
	for c, l := range lists {
		var err error
		if states[c], err = operators.Gather(r.mem, l.ListValues(), idx); err != nil {
			release(states)
			return err
		}
	}
	ts.states = states
	return nil
}

// openBuckets adds to ts the raw events of the open buckets of f's rows
// (B(t) <= time <= t), read at the source for the frame's keys, as states
// of one event each after the tiles.
func (r *run) openBuckets(f *frameData, info *tileInfo, distinct arrow.Array, ix *operators.KeyIndex, ts *tileSet) error {
	open := tiles.Range{Lo: 1<<63 - 1, Hi: -1 << 63}
	for _, t := range f.rowTimes() {
		open.Lo, open.Hi = min(open.Lo, tiles.Bucket(t, info.bucket)), max(open.Hi, t+1)
	}
	src, err := r.p.engine.sources.Source(info.spec.Resolver.Source)
	if err != nil {
		return &statement.Error{Kind: statement.SourceFailure, Msg: err.Error()}
	}
	var st *stage
	if r.stages != nil {
		st = r.stages.begin(f, f.node, "open buckets "+info.spec.Group.QualifiedName()+" [source "+info.spec.Resolver.Source+"]", distinct.Len())
	}
	rec, err := info.spec.Raw(r.ctx, r.mem, src, open, distinct)
	if r.stages != nil {
		out := 0
		if err == nil {
			out = int(rec.NumRows())
		}
		r.stages.finish(st, out, "", err)
	}
	if err != nil {
		return &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("open buckets of %s: %v", info.spec.Group.QualifiedName(), err)}
	}
	defer rec.Release()
	var values, sortKey arrow.Array
	col := 2
	if info.spec.Value != "" {
		values = rec.Column(col)
		col++
	}
	if info.spec.SortBy != "" {
		sortKey = rec.Column(col)
	}
	return r.appendRaw(info.spec, ts, rec.Column(0), rec.Column(1), values, sortKey, nil, ix)
}

// appendRaw adds to ts, after its tiles (states[tiles:]), the raw events
// given by key, us (µs), values and sortKey (nil when spec has none) whose
// mask is true (nil: all), as states of one event each, by key and time;
// rawRuns as runs.
func (r *run) appendRaw(spec *tiles.Spec, ts *tileSet, key, us arrow.Array, values, sortKey arrow.Array, mask *array.Boolean, ix *operators.KeyIndex) error {
	keyOf, err := ix.LookupLatest(key, operators.Visibility{})
	if err != nil {
		return err
	}
	times := us.(*array.Int64).Int64Values()
	perm := make([]int32, 0, len(keyOf))
	for i, k := range keyOf {
		if k >= 0 && (mask == nil || mask.IsValid(i) && mask.Value(i)) {
			perm = append(perm, int32(i))
		}
	}
	sort.Slice(perm, func(a, b int) bool {
		i, j := perm[a], perm[b]
		if keyOf[i] != keyOf[j] {
			return keyOf[i] < keyOf[j]
		}
		return times[i] < times[j] || (times[i] == times[j] && i < j)
	})
	gather := func(a arrow.Array) (arrow.Array, error) {
		if a == nil {
			return nil, nil
		}
		return operators.Gather(r.mem, a, perm)
	}
	if values, err = gather(values); err != nil {
		return err
	}
	if values != nil {
		defer values.Release()
	}
	if sortKey, err = gather(sortKey); err != nil {
		return err
	}
	if sortKey != nil {
		defer sortKey.Release()
	}
	own := make([]int32, len(perm))
	for i := range own {
		own[i] = int32(i)
	}
	raw, err := aggregate.Partial(r.mem, spec.Fn, values, sortKey, own, len(perm))
	if err != nil {
		return err
	}
	defer release(raw)
	ts.tiles = int32(ts.states[0].Len())
	for c := range ts.states {
		joined, err := array.Concatenate([]arrow.Array{ts.states[c], raw[c]}, r.mem)
		if err != nil {
			return err
		}
		ts.states[c].Release()
		ts.states[c] = joined
	}
	sortedKeys := make([]int32, len(perm))
	ts.rawTimes = make([]int64, len(perm))
	for i, p := range perm {
		sortedKeys[i], ts.rawTimes[i] = keyOf[p], times[p]
	}
	ts.rawRuns = runsOf(sortedKeys, len(ts.runLo))
	return nil
}

// concatColumns returns the columns of recs (of one schema) as one array
// each.
func concatColumns(mem memory.Allocator, recs []arrow.RecordBatch) ([]arrow.Array, error) {
	cols := make([]arrow.Array, recs[0].NumCols())
	for c := range cols {
		if len(recs) == 1 {
			cols[c] = recs[0].Column(c)
			cols[c].Retain()
			continue
		}
		parts := make([]arrow.Array, len(recs))
		for i, rec := range recs {
			parts[i] = rec.Column(c)
		}
		var err error
		if cols[c], err = array.Concatenate(parts, mem); err != nil {
			release(cols)
			return nil, err
		}
	}
	return cols, nil
}
