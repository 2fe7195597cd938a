package planner_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/tiles"
)

// The tiled path against DuckDB SQL: every aggregation, over windows of
// 1d (6h buckets), 7d and 30d (1d buckets) and an undeclared 14d, on events
// with heavy-hitter keys, nulls, events exactly on bucket edges and at
// t − w, and spine rows before any event, inside the open bucket and on
// bucket edges. The reference writes each path's window (DESIGN §4) in SQL:
// exact `t − w < at ≤ t`, materialized `B(t − w) ≤ at < B(t)`.

const tilesRepo = `from chalk.features import features, DataFrame, FeatureTime, _
from chalk import Windowed, windowed

@features
class Txn:
    id: int
    user_id: "User.id"
    amount: float | None
    qty: int | None
    flag: bool | None
    at: FeatureTime

M = {"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}}

@features
class User:
    id: int
    txns: DataFrame[Txn]
    cnt: Windowed[int] = windowed("1d", "7d", "30d", expression=_.txns[_.at > _.chalk_window].count(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    cnt_amount: Windowed[int] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].count(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    big: Windowed[int] = windowed("1d", "7d", "30d", expression=_.txns[_.amount > 50, _.at > _.chalk_window].count(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    total: Windowed[float] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].sum(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    qty_sum: Windowed[int] = windowed("1d", "7d", "30d", expression=_.txns[_.qty, _.at > _.chalk_window].sum(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    avg: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].mean(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    sd: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].std(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    qvar: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.qty, _.at > _.chalk_window].var(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    lo: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].min(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    hi: Windowed[int | None] = windowed("1d", "7d", "30d", expression=_.txns[_.qty, _.at > _.chalk_window].max(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    some: Windowed[bool] = windowed("1d", "7d", "30d", expression=_.txns[_.flag, _.at > _.chalk_window].any(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    every: Windowed[bool] = windowed("1d", "7d", "30d", expression=_.txns[_.flag, _.at > _.chalk_window].all(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    kinds: Windowed[int] = windowed("1d", "7d", "30d", expression=_.txns[_.qty, _.at > _.chalk_window].approx_count_distinct(), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    last_amount: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].max_by(_.at), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
    first_amount: Windowed[float | None] = windowed("1d", "7d", "30d", expression=_.txns[_.amount, _.at > _.chalk_window].min_by(_.at), materialization={"bucket_duration": "1d", "bucket_durations": {"6h": "1d"}})
`

const tilesResolver = `-- resolves: Txn
-- source: events
select id, user_id, amount, qty, flag, ts as "at" from txns
`

// tileRefs are the reference SQL of each feature over the joined events e.
var tileRefs = map[string]string{
	"cnt":          "count(e.id)",
	"cnt_amount":   "count(e.amount)",
	"big":          "count(e.id) FILTER (WHERE e.amount > 50)",
	"total":        "coalesce(sum(e.amount), 0)",
	"qty_sum":      "coalesce(sum(e.qty), 0)",
	"avg":          "avg(e.amount)",
	"sd":           "stddev_samp(e.amount)",
	"qvar":         "var_samp(e.qty)",
	"lo":           "min(e.amount)",
	"hi":           "max(e.qty)",
	"some":         "coalesce(bool_or(e.flag), false)",
	"every":        "coalesce(bool_and(e.flag), true)",
	"kinds":        "count(DISTINCT e.qty)",
	"last_amount":  "arg_max(e.amount, e.ts) FILTER (WHERE e.amount IS NOT NULL)",
	"first_amount": "arg_min(e.amount, e.ts) FILTER (WHERE e.amount IS NOT NULL)",
}

var tileAnchor = time.Date(2026, 3, 1, 13, 17, 5, 123456, time.UTC)

// tilesFixture writes the repository and its events: users 1 and 2 are
// heavy hitters, user 3 has none, 4..39 a few; events lie on every
// midnight and six-hour edge for user 4, and at t − w of the spine.
func tilesFixture(t *testing.T) (string, *duckdb.Source, *features.Graph) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.py"), []byte(tilesRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "txns.chalk.sql"), []byte(tilesResolver), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := duckdb.Open(filepath.Join(dir, "events.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	db := src.DB()
	if _, err := db.Exec("SET TimeZone = 'UTC'; CREATE TABLE txns (id BIGINT, user_id BIGINT, amount DOUBLE, qty BIGINT, flag BOOLEAN, ts TIMESTAMPTZ)"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 13))
	var rows []string
	id := 0
	add := func(user int, at time.Time) {
		id++
		amount, qty, flag := "NULL", "NULL", "NULL"
		if rng.IntN(10) > 0 {
			amount = fmt.Sprintf("%.2f", rng.Float64()*100)
		}
		if rng.IntN(8) > 0 {
			qty = fmt.Sprint(rng.IntN(40))
		}
		if rng.IntN(6) > 0 {
			flag = fmt.Sprint(rng.IntN(7) > 0)
		}
		rows = append(rows, fmt.Sprintf("(%d, %d, %s, %s, %s, TIMESTAMPTZ '%s')", id, user, amount, qty, flag, at.Format("2006-01-02 15:04:05.999999Z07:00")))
	}
	span := 45 * 24 * time.Hour
	for user := 1; user < 40; user++ {
		n := 5 + rng.IntN(40)
		switch user {
		case 1, 2:
			n = 3000
		case 3:
			n = 0
		}
		for range n {
			add(user, tileAnchor.Add(-time.Duration(rng.Int64N(int64(span)))).Truncate(time.Microsecond))
		}
	}
	for at := tileAnchor.Truncate(6 * time.Hour).Add(-span); at.Before(tileAnchor.Add(2 * 24 * time.Hour)); at = at.Add(6 * time.Hour) {
		add(4, at)
	}
	for _, w := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour} {
		add(5, tileAnchor.Add(-w))
	}
	for i := 0; i < len(rows); i += 1000 {
		if _, err := db.Exec("INSERT INTO txns VALUES " + strings.Join(rows[i:min(i+1000, len(rows))], ",")); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, src, g
}

// tileSpine is every user (and a missing one) at the anchor, and user 1, 4
// and 5 at the edge cases: on a bucket edge, inside the open bucket, before
// any event.
func tileSpine() []spineRow {
	var rows []spineRow
	for u := 1; u <= 40; u++ {
		rows = append(rows, spineRow{fmt.Sprint(u), tileAnchor})
	}
	for _, u := range []string{"1", "4", "5"} {
		for _, at := range []time.Time{
			tileAnchor.Truncate(24 * time.Hour), tileAnchor.Truncate(6 * time.Hour), tileAnchor.Add(-time.Hour),
			tileAnchor.Add(-20 * 24 * time.Hour), tileAnchor.Add(-400 * 24 * time.Hour), tileAnchor.Add(time.Microsecond),
		} {
			rows = append(rows, spineRow{u, at})
		}
	}
	return append(rows, spineRow{"999", tileAnchor})
}

// countingSources counts the fetches of the engine's sources.
type countingSources struct {
	src     stores.Source
	fetches atomic.Int64
}

func (c *countingSources) Source(string) (stores.Source, error) { return c, nil }
func (c *countingSources) Close() error                         { return nil }
func (c *countingSources) Unwrap() stores.Source                { return c.src }
func (c *countingSources) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (arrow.RecordBatch, error) {
	c.fetches.Add(1)
	return c.src.Fetch(ctx, mem, req)
}

func tileQuery(t *testing.T, e *planner.Engine, mem memory.Allocator, rows []spineRow, outputs []string, opts planner.RunOptions) arrow.RecordBatch {
	t.Helper()
	in := spineInput(t, mem, rows)
	defer in.Release()
	return runUsers(t, e, in, outputs, opts).Record
}

// spineInput is the spine as a query's input: id and __as_of__.
func spineInput(t *testing.T, mem memory.Allocator, rows []spineRow) arrow.RecordBatch {
	t.Helper()
	kb := array.NewInt64Builder(mem)
	defer kb.Release()
	tb := array.NewTimestampBuilder(mem, features.TimestampType)
	defer tb.Release()
	for _, r := range rows {
		var k int64
		fmt.Sscan(r.key, &k)
		kb.Append(k)
		tb.Append(arrow.Timestamp(r.at.UnixMicro()))
	}
	keys, times := kb.NewArray(), tb.NewArray()
	defer keys.Release()
	defer times.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: statement.AsOfColumn, Type: features.TimestampType}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{keys, times}, int64(len(rows)))
}

// runUsers prepares outputs of user over the input columns of in and runs
// the plan on in with opts.
func runUsers(t *testing.T, e *planner.Engine, in arrow.RecordBatch, outputs []string, opts planner.RunOptions) *planner.Result {
	t.Helper()
	q := &statement.Statement{Class: e.Graph().Class("user"), Inputs: in.Schema().Fields()}
	for _, o := range outputs {
		q.Outputs = append(q.Outputs, statement.Output{Expr: &expr.Ref{Path: []string{o}}})
	}
	p, err := e.Prepare(q)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), in, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The windows of each path (DESIGN §4 "Tiles").
const (
	exactWindow     = iota // t - w < at <= t
	completeBuckets        // B(t - w) <= at < B(t)
	alignedWindow          // B(t - w) <= at <= t
)

// tileReference answers every feature of tileRefs over windows for the
// spine, on one path's windows.
func tileReference(t *testing.T, db *sql.DB, rows []spineRow, names []string, windows []time.Duration, buckets []time.Duration, path int) [][]any {
	var cols []string
	for _, name := range names {
		for i, w := range windows {
			wu, du := w.Microseconds(), buckets[i].Microseconds()
			cond := fmt.Sprintf("epoch_us(e.ts) > epoch_us(s.t) - %d AND e.ts <= s.t", wu)
			b := func(x string) string { return fmt.Sprintf("(%s - (((%s %% %d) + %d) %% %d))", x, x, du, du, du) }
			switch path {
			case completeBuckets:
				cond = fmt.Sprintf("epoch_us(e.ts) >= %s AND epoch_us(e.ts) < %s", b(fmt.Sprintf("(epoch_us(s.t) - %d)", wu)), b("epoch_us(s.t)"))
			case alignedWindow:
				cond = fmt.Sprintf("epoch_us(e.ts) >= %s AND e.ts <= s.t", b(fmt.Sprintf("(epoch_us(s.t) - %d)", wu)))
			}
			ref := tileRefs[name]
			// Each feature's own join: its window.
			cols = append(cols, fmt.Sprintf("(SELECT %s FROM txns e WHERE e.user_id = CAST(s.id AS BIGINT) AND %s)", ref, cond))
		}
	}
	return reference(t, db, rows, "SELECT "+strings.Join(cols, ", ")+" FROM spine s")
}

// TestTilesMatchDuckDB runs with the tile store's tables resident in memory
// (the default) and read per query (no memory for them): the same answers.
func TestTilesMatchDuckDB(t *testing.T) {
	t.Run("resident", func(t *testing.T) { testTilesMatchDuckDB(t) })
	t.Run("read per query", func(t *testing.T) { testTilesMatchDuckDB(t, tiles.WithCacheBytes(0)) })
}

func testTilesMatchDuckDB(t *testing.T, opts ...tiles.Option) {
	dir, src, g := tilesFixture(t)
	ctx := context.Background()
	stMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer stMem.AssertSize(t, 0)
	st, err := tiles.Open(ctx, src.DB(), src, append(opts, tiles.WithAllocator(stMem))...)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	counting := &countingSources{src: src}
	e := planner.NewEngine(g, counting, mem, planner.WithTiles(st))
	rows := tileSpine()
	names := make([]string, 0, len(tileRefs))
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
	compare := func(t *testing.T, rec arrow.RecordBatch, ref [][]any) {
		for i, o := range outs {
			check(t, rec, rows, ref, o, i, 1e-9)
		}
	}
	exact := tileReference(t, src.DB(), rows, names, windows, buckets, exactWindow)
	tiled := tileReference(t, src.DB(), rows, names, windows, buckets, completeBuckets)
	aligned := tileReference(t, src.DB(), rows, names, windows, buckets, alignedWindow)
	materialized := planner.RunOptions{Materialized: true}
	align := planner.RunOptions{Materialized: true, AlignWindows: true}
	differ := 0
	for i := range exact {
		for j := range exact[i] {
			if !matches(exact[i][j], tiled[i][j], 1e-9) {
				differ++
			}
		}
	}
	if differ < len(rows) {
		t.Fatalf("the exact and materialized windows differ in %d cells only: the spine does not tell them apart", differ)
	}
	t.Logf("exact and materialized answers differ in %d of %d cells", differ, len(rows)*len(outs))

	t.Run("exact", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, planner.RunOptions{})
		defer rec.Release()
		compare(t, rec, exact)
	})
	t.Run("materialized without tiles", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, materialized)
		defer rec.Release()
		compare(t, rec, tiled)
	})
	t.Run("aligned without tiles", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, align)
		defer rec.Release()
		compare(t, rec, aligned)
	})
	// Half the history backfilled: the rest comes from raw events.
	backfill := func(start, end time.Time) {
		for _, group := range tiles.Materialized(g) {
			spec, err := tiles.SpecFor(g, group)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tiles.Backfill(ctx, mem, src, st, spec, tiles.BackfillOptions{Start: start, End: end, Now: tileAnchor.Add(3 * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	backfill(tileAnchor.Add(-30*24*time.Hour), tileAnchor.Add(-10*24*time.Hour))
	t.Run("materialized with some tiles", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, materialized)
		defer rec.Release()
		compare(t, rec, tiled)
	})
	t.Run("aligned with some tiles", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, align)
		defer rec.Release()
		compare(t, rec, aligned)
	})
	backfill(tileAnchor.Add(-500*24*time.Hour), time.Time{})
	t.Run("materialized with all tiles", func(t *testing.T) {
		before := counting.fetches.Load()
		// Twice: the second reads the resident tiles the first read.
		for range 2 {
			rec := tileQuery(t, e, mem, rows, outs, materialized)
			compare(t, rec, tiled)
			rec.Release()
		}
		analyzed := materialized
		analyzed.Analyze = true
		in := spineInput(t, mem, rows)
		res := runUsers(t, e, in, outs, analyzed)
		in.Release()
		compare(t, res.Record, tiled)
		resident := 0
		for _, s := range res.Analysis.Stages {
			if s.Note == "resident tiles" {
				resident++
			}
		}
		res.Release()
		if want := len(opts) == 0; (resident > 0) != want {
			t.Errorf("%d tile tables answered from resident tiles, want them to be %v", resident, want)
		}
		// Every bucket has tiles: the events are never read, the 14d
		// window that no feature declares included.
		if n := counting.fetches.Load() - before; n != 0 {
			t.Errorf("the source was queried %d times", n)
		}
	})
	t.Run("aligned with all tiles", func(t *testing.T) {
		rec := tileQuery(t, e, mem, rows, outs, align)
		defer rec.Release()
		compare(t, rec, aligned)
	})
	_ = dir
	// fletch plan says so: the events' frame is not read from tiles.
	q := &statement.Statement{Class: g.Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}},
		Outputs: []statement.Output{{Expr: &expr.Ref{Path: []string{"total__1209600__"}}}}}
	p, err := e.Prepare(q)
	if err != nil {
		t.Fatal(err)
	}
	if text := p.Explain(); !strings.Contains(text, "with use_materialized_offline_query: not read") || !strings.Contains(text, "merge tiles fletch_tiles__user__total__86400") {
		t.Errorf("the plan does not say the events are not read:\n%s", text)
	}
}

// TestAdHocWindowBuckets: a window a materialized feature does not declare
// is answered from the tiles of bucket_duration when that bucket is no
// longer than the window, else of the finest bucket; a window shorter than
// every bucket is refused, as a declared one would be. Before, "3h" on 1d
// tiles answered the complete buckets before B(t) that intersect it (none:
// 0 offline, the whole open day online), and "12h" read 1d tiles though 6h
// ones exist.
func TestAdHocWindowBuckets(t *testing.T) {
	prepare := tilesPlanner(t)
	for _, tc := range []struct{ out, table string }{
		{"total__1209600__", "fletch_tiles__user__total__86400 (1d buckets, B(t - 14d)"},
		{`total["36h"]`, "fletch_tiles__user__total__86400 (1d buckets, B(t - 36h)"},
		{`total["12h"]`, "fletch_tiles__user__total__21600 (6h buckets, B(t - 12h)"},
		{`total["6h"]`, "fletch_tiles__user__total__21600 (6h buckets, B(t - 6h)"},
	} {
		text, err := prepare(tc.out)
		if err != nil || !strings.Contains(text, "merge tiles "+tc.table) {
			t.Errorf("%s: %v\n%s\nwant it from %s", tc.out, err, text, tc.table)
		}
	}
	for _, out := range []string{`total["3h"]`, "total__3600__"} {
		_, err := prepare(out)
		var se *statement.Error
		if !errors.As(err, &se) || se.Kind != statement.InvalidInput ||
			!strings.Contains(se.Msg, "user.total has no ") || !strings.Contains(se.Msg, "window shorter than its finest bucket (6h): declare it") {
			t.Errorf("%s: %v, want it refused: shorter than every bucket", out, err)
		}
	}
}

// tilesPlanner returns a function that plans one output of the tiles
// repository's user class (with __as_of__ in the input when asOf) and
// returns its plan's text; no data.
func tilesPlanner(t *testing.T) func(out string, asOf ...bool) (string, error) {
	dir := t.TempDir()
	for name, text := range map[string]string{"m.py": tilesRepo, "txns.chalk.sql": tilesResolver} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := planner.NewEngine(g, nil, memory.NewCheckedAllocator(memory.NewGoAllocator()))
	t.Cleanup(func() { e.Close() })
	return func(out string, asOf ...bool) (string, error) {
		inputs := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}
		if len(asOf) > 0 && asOf[0] {
			inputs = append(inputs, arrow.Field{Name: statement.AsOfColumn, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}})
		}
		p, err := e.Prepare(&statement.Statement{Class: g.Class("user"), Inputs: inputs,
			Outputs: []statement.Output{{Expr: &expr.Ref{Path: []string{out}}}}})
		if err != nil {
			return "", err
		}
		return p.Explain(), nil
	}
}

// TestExplainServedTiles: the plan of an online query (no __as_of__) says
// that a materialized window is served from the online store's tiles and
// the raw events after them (the aligned window), not computed over the
// related rows as its compute line reads; an offline plan does not.
// Before, `fletch plan` showed only the exact and materialized paths.
func TestExplainServedTiles(t *testing.T) {
	prepare := tilesPlanner(t)
	online, err := prepare(`total["14d"]`)
	want := "served online: tiles fletch_tiles__user__total__86400 (1d buckets) from the online store, then the raw events after them at source events (B(t - 14d) <= time <= t)"
	if err != nil || !strings.Contains(online, want) {
		t.Errorf("online plan: %v\n%s\nwant %q", err, online, want)
	}
	offline, err := prepare(`total["14d"]`, true)
	if err != nil || strings.Contains(offline, "served online") || !strings.Contains(offline, "with use_materialized_offline_query: merge tiles") {
		t.Errorf("offline plan: %v\n%s\nwant no online line", err, offline)
	}
}

// TestSlidingWindowsMatchDuckDB: windows of the related rows' event time,
// with no other aggregation over the relation, are computed over the
// related rows once each, by key and time (window.go) rather than over
// (row, related row) pairs; both against DuckDB SQL on the tiles fixture's
// edges: heavy hitters, nulls, events exactly at t and t − w, rows before
// any event and keys with none. max_by and approx_count_distinct over the
// same relation keep the pairs.
func TestSlidingWindowsMatchDuckDB(t *testing.T) {
	_, src, g := tilesFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, &countingSources{src: src}, mem)
	rows := tileSpine()
	windows := []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour}
	buckets := []time.Duration{6 * time.Hour, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for _, tc := range []struct {
		names   []string
		sliding bool
	}{
		{[]string{"cnt", "cnt_amount", "big", "total", "qty_sum", "avg", "sd", "qvar", "lo", "hi", "some", "every"}, true},
		{[]string{"total", "last_amount", "kinds"}, false},
	} {
		t.Run(fmt.Sprint(tc.names), func(t *testing.T) {
			var outs []string
			for _, n := range tc.names {
				for _, w := range windows {
					outs = append(outs, features.WindowFQN(n, w))
				}
			}
			ref := tileReference(t, src.DB(), rows, tc.names, windows, buckets, exactWindow)
			in := spineInput(t, mem, rows)
			defer in.Release()
			res := runUsers(t, e, in, outs, planner.RunOptions{Analyze: true})
			defer res.Release()
			for i, o := range outs {
				check(t, res.Record, rows, ref, o, i, 1e-9)
			}
			sliding := false
			for _, s := range res.Analysis.Stages {
				sliding = sliding || strings.Contains(s.Note, "sliding windows")
			}
			if sliding != tc.sliding {
				t.Errorf("sliding frame: %v, want %v", sliding, tc.sliding)
			}
		})
	}
}
