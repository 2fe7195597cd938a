package planner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	memstore "github.com/fletch-engine/fletch/stores/memory"
	"github.com/fletch-engine/fletch/tiles"
)

// BenchmarkTrainingSet builds one training set — TILES_SPINE spine rows
// (default 100,000) × 3 windows × 2 aggregations over TILES_EVENTS events
// (default 1,000,000; keys 0 and 1 are heavy hitters with 2.5 % of the
// events each) — exact, from tiles, and with the fastest DuckDB SQL for the
// exact answer (a range join with one FILTER per window). docs/BENCHMARKS.md
// §14 and §22 record the figures. TILES_NO_BACKFILL=1 skips the backfill
// (for the exact path's own peak memory).

const benchRepo = `from chalk.features import features, DataFrame, FeatureTime, _
from chalk import Windowed, windowed

@features
class Txn:
    id: int
    user_id: "User.id"
    amount: float | None
    at: FeatureTime

@features
class User:
    id: int
    txns: DataFrame[Txn]
    total: Windowed[float] = windowed("7d", "30d", "90d", expression=_.txns[_.amount, _.at > _.chalk_window].sum(), materialization={"bucket_duration": "1d"})
    cnt: Windowed[int] = windowed("7d", "30d", "90d", expression=_.txns[_.at > _.chalk_window].count(), materialization={"bucket_duration": "1d"})
`

type benchFixture struct {
	src   *duckdb.Source
	g     *features.Graph
	st    *tiles.Store
	spine arrow.RecordBatch
	n     int
	fill  time.Duration
	rep   []tiles.Report
}

var (
	benchOnce sync.Once
	bench     *benchFixture
	benchErr  error
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func tilesBench(b *testing.B) *benchFixture {
	benchOnce.Do(func() { bench, benchErr = newBenchFixture() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func newBenchFixture() (*benchFixture, error) {
	events, n := envInt("TILES_EVENTS", 1_000_000), envInt("TILES_SPINE", 100_000)
	dir, err := os.MkdirTemp("", "fletch-tiles-bench-")
	if err != nil {
		return nil, err
	}
	for name, text := range map[string]string{"m.py": benchRepo,
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, ts as \"at\" from txns\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	src, err := duckdb.Open(filepath.Join(dir, "events.duckdb"))
	if err != nil {
		return nil, err
	}
	if _, err := src.DB().Exec(fmt.Sprintf(`SET TimeZone = 'UTC';
		CREATE TABLE txns AS SELECT i AS id,
			CASE WHEN i %% 20 = 0 THEN i %% 2 ELSE 2 + (hash(i) %% 50000) END AS user_id,
			CASE WHEN i %% 13 = 0 THEN NULL ELSE (hash(i * 7) %% 10000) / 100.0 END AS amount,
			TIMESTAMPTZ '2026-01-01' + to_microseconds(CAST(hash(i * 3) %% (90 * 86400000000) AS BIGINT)) AS ts
		FROM range(%d) r(i);
		CREATE TABLE spine AS SELECT i, CAST(CASE WHEN i %% 500 = 0 THEN i %% 2 ELSE 2 + (hash(i * 11) %% 50000) END AS BIGINT) AS id,
			TIMESTAMPTZ '2026-02-01' + to_microseconds(CAST(hash(i * 17) %% (59 * 86400000000) AS BIGINT)) AS t
		FROM range(%d) r(i)`, events, n)); err != nil {
		return nil, err
	}
	g, err := features.Load(dir)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	st, err := tiles.Open(ctx, src.DB(), src)
	if err != nil {
		return nil, err
	}
	f := &benchFixture{src: src, g: g, st: st, n: n}
	start := time.Now()
	for _, group := range tiles.Materialized(g) {
		if os.Getenv("TILES_NO_BACKFILL") != "" {
			break // the exact path alone, its peak memory its own
		}
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			return nil, err
		}
		rep, err := tiles.Backfill(ctx, memory.DefaultAllocator, src, st, spec, tiles.BackfillOptions{})
		if err != nil {
			return nil, err
		}
		f.rep = append(f.rep, rep...)
	}
	f.fill = time.Since(start)
	spine, err := src.Fetch(ctx, memory.DefaultAllocator, stores.FetchRequest{SQL: "SELECT id, t FROM spine ORDER BY i"})
	if err != nil {
		return nil, err
	}
	f.spine = spine
	return f, nil
}

// benchRun runs the training set b.N times; a materialized run is warm
// (the tile store's resident tiles read before the timer starts) unless
// cold, where each run reads them again.
func benchRun(b *testing.B, f *benchFixture, materialized, cold bool) {
	e := planner.NewEngine(f.g, markettest.OneSource{Src: f.src}, nil, planner.WithTiles(f.st))
	keys, times := f.spine.Column(0), f.spine.Column(1)
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: keys.DataType()}, {Name: statement.AsOfColumn, Type: times.DataType()}}, nil),
		[]arrow.Array{keys, times}, f.spine.NumRows())
	defer in.Release()
	q := &statement.Statement{Class: f.g.Class("user"), Inputs: in.Schema().Fields()}
	for _, name := range []string{"total", "cnt"} {
		for _, w := range []time.Duration{7, 30, 90} {
			q.Outputs = append(q.Outputs, statement.Output{Expr: &expr.Ref{Path: []string{features.WindowFQN(name, w*24*time.Hour)}}})
		}
	}
	p, err := e.Prepare(q)
	if err != nil {
		b.Fatal(err)
	}
	run := func() {
		res, err := p.Run(context.Background(), in, planner.RunOptions{Materialized: materialized})
		if err != nil {
			b.Fatal(err)
		}
		res.Release()
	}
	if materialized && !cold {
		run()
	}
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if cold {
			f.st.Close() // forgets the resident tiles
		}
		run()
	}
	reportRows(b, f.n, cpu)
}

// cpuTime is the process's CPU time so far (user and system, DuckDB's
// threads included): on a machine shared with other work, the CPU an
// operation took says more than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRows reports spine rows per second of wall time and the CPU time
// per operation since cpu.
func reportRows(b *testing.B, rows int, cpu time.Duration) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "spine_rows/s")
	b.ReportMetric(float64(cpuTime()-cpu)/1e6/float64(b.N), "cpu-ms/op")
}

func BenchmarkTrainingSet(b *testing.B) {
	f := tilesBench(b)
	b.Logf("backfill: %v in %s", f.rep, f.fill)
	b.Run("exact", func(b *testing.B) { benchRun(b, f, false, false) })
	b.Run("tiled", func(b *testing.B) { benchRun(b, f, true, false) })
	b.Run("tiled_cold", func(b *testing.B) { benchRun(b, f, true, true) })
	b.Run("duckdb_sql_exact", func(b *testing.B) {
		q := `SELECT s.i,
			coalesce(sum(e.amount) FILTER (WHERE e.ts > s.t - INTERVAL 7 DAY), 0),
			coalesce(sum(e.amount) FILTER (WHERE e.ts > s.t - INTERVAL 30 DAY), 0),
			coalesce(sum(e.amount), 0),
			count(e.id) FILTER (WHERE e.ts > s.t - INTERVAL 7 DAY),
			count(e.id) FILTER (WHERE e.ts > s.t - INTERVAL 30 DAY),
			count(e.id)
			FROM spine s LEFT JOIN txns e ON e.user_id = s.id AND e.ts <= s.t AND e.ts > s.t - INTERVAL 90 DAY
			GROUP BY s.i ORDER BY s.i`
		cpu := cpuTime()
		for range b.N {
			rec, err := f.src.Fetch(context.Background(), memory.DefaultAllocator, stores.FetchRequest{SQL: q})
			if err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
		reportRows(b, f.n, cpu)
	})
}

// BenchmarkOnlineTiles: one online query of the 6 windowed features of
// BenchmarkTrainingSet's repository for one heavy hitter (25,000 events in
// 90 days at the default size), one light key, or 100 keys, at 12:00 on the
// last day: from tiles published to a memory online store (then the
// half-day of raw events after them), from raw events only (nothing
// published: the whole aligned window read raw), and the exact path for
// the same rows (a point-in-time query, which computes from the related
// rows).
//
//	go test -tags duckdb_arrow -run '^$' -bench BenchmarkOnlineTiles -benchtime 200x ./planner
func BenchmarkOnlineTiles(b *testing.B) {
	f := tilesBench(b)
	ctx := context.Background()
	published := memstore.New()
	for _, group := range tiles.Materialized(f.g) {
		spec, err := tiles.SpecFor(f.g, group)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tiles.PublishAll(ctx, memory.DefaultAllocator, f.st, published, spec); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	light := make([]int64, 100)
	for i := range light {
		light[i] = int64(2 + i*397)
	}
	var outs []statement.Output
	for _, name := range []string{"total", "cnt"} {
		for _, w := range []time.Duration{7, 30, 90} {
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: []string{features.WindowFQN(name, w*24*time.Hour)}}})
		}
	}
	run := func(b *testing.B, e *planner.Engine, keys []int64, asOf bool) {
		kb := array.NewInt64Builder(memory.DefaultAllocator)
		kb.AppendValues(keys, nil)
		ka := kb.NewArray()
		defer ka.Release()
		fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}
		cols := []arrow.Array{ka}
		if asOf {
			tb := array.NewTimestampBuilder(memory.DefaultAllocator, features.TimestampType)
			for range keys {
				tb.Append(arrow.Timestamp(now.UnixMicro()))
			}
			ta := tb.NewArray()
			defer ta.Release()
			fields = append(fields, arrow.Field{Name: statement.AsOfColumn, Type: features.TimestampType})
			cols = append(cols, ta)
		}
		in := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(keys)))
		defer in.Release()
		p, err := e.Prepare(&statement.Statement{Class: f.g.Class("user"), Inputs: fields, Outputs: outs})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			res, err := p.Run(ctx, in, planner.RunOptions{Now: now})
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
	}
	src := markettest.OneSource{Src: f.src}
	for _, k := range []struct {
		name string
		keys []int64
	}{{"heavy", []int64{0}}, {"light", light[:1]}, {"100_keys", light}} {
		b.Run("tiles/"+k.name, func(b *testing.B) {
			run(b, planner.NewEngine(f.g, src, nil, planner.WithOnlineStore(published)), k.keys, false)
		})
		b.Run("raw/"+k.name, func(b *testing.B) {
			run(b, planner.NewEngine(f.g, src, nil, planner.WithOnlineStore(memstore.New())), k.keys, false)
		})
		b.Run("exact/"+k.name, func(b *testing.B) {
			run(b, planner.NewEngine(f.g, src, nil), k.keys, true)
		})
	}
}
