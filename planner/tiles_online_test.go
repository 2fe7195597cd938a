package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	memstore "github.com/fletch-engine/fletch/stores/memory"
	"github.com/fletch-engine/fletch/tiles"
)

// onlineQuery runs outputs for keys online (no __as_of__) at now.
func onlineQuery(t *testing.T, e *planner.Engine, mem memory.Allocator, keys []int64, outputs []string, now time.Time) arrow.RecordBatch {
	t.Helper()
	return onlineRun(t, e, mem, keys, outputs, planner.RunOptions{Now: now}).Record
}

// onlineRun runs outputs for keys online with opts.
func onlineRun(t *testing.T, e *planner.Engine, mem memory.Allocator, keys []int64, outputs []string, opts planner.RunOptions) *planner.Result {
	t.Helper()
	kb := array.NewInt64Builder(mem)
	defer kb.Release()
	kb.AppendValues(keys, nil)
	ka := kb.NewArray()
	defer ka.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{ka}, int64(len(keys)))
	defer in.Release()
	return runUsers(t, e, in, outputs, opts)
}

// Online serving of materialized features (DESIGN §4 "Tiles"): every
// aggregation answers the aligned window B(t − w) ≤ at ≤ t — tiles from
// the online store, then raw events — equal to DuckDB SQL over the same
// events and to the same window computed from raw events by the offline
// aligned path, with no tiles published, with tiles published up to
// several bucket boundaries before now (raw events over more than the open
// bucket), with tiles that do not reach back to a window's start, and for
// keys that have no tiles.
func TestTilesOnline(t *testing.T) {
	_, src, g := tilesFixture(t)
	ctx := context.Background()
	st, err := tiles.Open(ctx, src.DB(), src)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	online := memstore.New()
	counting := &countingSources{src: src}
	e := planner.NewEngine(g, counting, mem, planner.WithTiles(st), planner.WithOnlineStore(online))
	defer e.Close()
	offline := planner.NewEngine(g, &countingSources{src: src}, mem) // the aligned window from raw events only
	defer offline.Close()
	// Served without an online store: tiles from the tile store, then the
	// open buckets' raw events.
	noStore := planner.NewEngine(g, &countingSources{src: src}, mem, planner.WithTiles(st))
	defer noStore.Close()
	var names []string
	for _, c := range g.Class("user").Features {
		if c.Kind == features.WindowedGroup {
			names = append(names, c.Name)
		}
	}
	windows := []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour}
	buckets := []time.Duration{6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	var outs []string
	for _, n := range names {
		for _, w := range windows {
			outs = append(outs, features.WindowFQN(n, w))
		}
	}
	keys := make([]int64, 0, 41)
	for u := int64(1); u <= 40; u++ {
		keys = append(keys, u)
	}
	keys = append(keys, 999)
	nows := []time.Time{
		tileAnchor,                                       // inside the open bucket
		tileAnchor.Truncate(24 * time.Hour),              // on a day's edge
		tileAnchor.Truncate(6 * time.Hour),               // on a 6h edge
		tileAnchor.Add(-24*time.Hour + time.Microsecond), // an event of user 5 at t - 1d - 1µs... and edges
		tileAnchor.Add(36 * time.Hour),                   // user 4 has events after the anchor
	}
	check := func(t *testing.T, now time.Time) {
		t.Helper()
		rows := make([]spineRow, len(keys))
		for i, k := range keys {
			rows[i] = spineRow{fmt.Sprint(k), now}
		}
		ref := tileReference(t, src.DB(), rows, names, windows, buckets, alignedWindow)
		before := counting.fetches.Load()
		rec := onlineQuery(t, e, mem, keys, outs, now)
		defer rec.Release()
		// The raw events of the 30 tile tables (15 features, 2 buckets) are
		// read in one query per distinct start: the keys with tiles, and
		// those without (users 3, 40 and 999); the relation's rows are not
		// fetched.
		if n := counting.fetches.Load() - before; n > 2 {
			t.Errorf("the online query read the source %d times, want at most 2", n)
		}
		for i, o := range outs {
			checkCol(t, rec, rows, ref, o, i)
		}
		direct := onlineQuery(t, noStore, mem, keys, outs, now)
		defer direct.Release()
		for i, o := range outs {
			checkCol(t, direct, rows, ref, o, i)
		}
		// The offline aligned path, from raw events (no tile store): the
		// same answers.
		raw := tileQuery(t, offline, mem, rows, outs, planner.RunOptions{Materialized: true, AlignWindows: true})
		defer raw.Release()
		for i := range outs {
			a, b := rec.Column(i), raw.Column(i)
			if !array.ApproxEqual(a, b, array.WithAbsTolerance(1e-9)) {
				t.Errorf("%s at %s: online %v, offline aligned %v", outs[i], now, a, b)
			}
		}
	}
	for _, now := range nows {
		t.Run("no tiles "+now.Format(time.RFC3339Nano), func(t *testing.T) { check(t, now) })
	}
	publish := func(t *testing.T, end time.Time, horizon time.Duration) {
		for _, group := range tiles.Materialized(g) {
			spec, err := tiles.SpecFor(g, group)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tiles.Backfill(ctx, mem, src, st, spec, tiles.BackfillOptions{Start: tileAnchor.Add(-500 * 24 * time.Hour), End: end, Now: end}); err != nil {
				t.Fatal(err)
			}
			for _, d := range group.Materialization.Buckets(group.Windows) {
				if _, err := tiles.Publish(ctx, mem, st, online, spec, d, horizon); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Tiles three days before the anchor, reaching back 7 days only: the
	// 14d and 30d windows read their events raw; the others merge tiles
	// and three days and more of raw events.
	publish(t, tileAnchor.Add(-3*24*time.Hour), 7*24*time.Hour)
	for _, now := range nows {
		t.Run("short tiles "+now.Format(time.RFC3339Nano), func(t *testing.T) { check(t, now) })
	}
	// Tiles to the anchor's day, for every window.
	publish(t, tileAnchor.Truncate(24*time.Hour), 30*24*time.Hour)
	for _, now := range nows {
		t.Run("tiles "+now.Format(time.RFC3339Nano), func(t *testing.T) { check(t, now) })
	}
	t.Run("explain analyze", func(t *testing.T) { analyzeTiles(t, e, mem, keys, outs) })
}

// analyzeTiles checks that EXPLAIN ANALYZE of an online query of
// materialized features shows its reads: the online store's tiles (every
// distinct key in, those with tiles out: not users 3, 40 and 999) and the
// raw events after them, at the source. Neither was a stage: the plan of
// a materialized feature showed no read at all.
func analyzeTiles(t *testing.T, e *planner.Engine, mem memory.Allocator, keys []int64, outs []string) {
	res := onlineRun(t, e, mem, keys, outs, planner.RunOptions{Now: tileAnchor, Analyze: true})
	defer res.Release()
	var tiled, raw bool
	for _, st := range res.Analysis.Stages {
		switch {
		case strings.HasPrefix(st.What, "online tiles "):
			tiled = true
			if st.In != len(keys) || st.Out != len(keys)-3 {
				t.Errorf("%s: %d keys in, %d with tiles; want %d and %d", st.What, st.In, st.Out, len(keys), len(keys)-3)
			}
		case strings.HasPrefix(st.What, "raw events ") && strings.Contains(st.What, "[source "):
			raw = raw || st.In > 0
		}
	}
	if !tiled || !raw {
		t.Errorf("stages %+v: want an online tiles stage and a raw events stage", res.Analysis.Stages)
	}
}

func checkCol(t *testing.T, rec arrow.RecordBatch, rows []spineRow, ref [][]any, col string, refCol int) {
	t.Helper()
	check(t, rec, rows, ref, col, refCol, 1e-9)
}
