package planner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
)

// BenchmarkWindowedExact is issue 13's exact-path case: WIN_SPINE spine
// rows (default 20,000) × 35 windowed aggregations (7 expressions × 5
// windows) over WIN_EVENTS transactions (default 1,000,000; users 0 and 1
// are heavy hitters with a tenth of the events each, the rest spread over
// 50,000 users; WIN_HEAVY_PCT % of the spine rows, default 1, on the
// heavy hitters), one prepared
// statement bound to the spine, in process; and the fastest DuckDB SQL
// for the same answer (a range join with one FILTER per window) in the
// same run. docs/BENCHMARKS.md §22 records the figures.
//
//	go test -tags duckdb_arrow -run '^$' -bench BenchmarkWindowedExact -benchtime 1x ./planner
func BenchmarkWindowedExact(b *testing.B) {
	events, n, every := envInt("WIN_EVENTS", 1_000_000), envInt("WIN_SPINE", 20_000), 100/envInt("WIN_HEAVY_PCT", 1)
	windows := []string{"1d", "7d", "30d", "90d", "180d"}
	// Each aggregation as fletch, as the range join's FILTER, and as a
	// window function over frame %s.
	exprs := []struct{ name, typ, expr, sql, win string }{
		{"total", "float", "_.txns[_.amount, _.at > _.chalk_window].sum()", "coalesce(sum(e.amount) FILTER (WHERE %s), 0)", "coalesce(sum(amount) OVER %s, 0)"},
		{"cnt", "int", "_.txns[_.at > _.chalk_window].count()", "count(e.id) FILTER (WHERE %s)", "count(eid) OVER %s"},
		{"avg", "float | None", "_.txns[_.amount, _.at > _.chalk_window].mean()", "avg(e.amount) FILTER (WHERE %s)", "avg(amount) OVER %s"},
		{"lo", "float | None", "_.txns[_.amount, _.at > _.chalk_window].min()", "min(e.amount) FILTER (WHERE %s)", "min(amount) OVER %s"},
		{"hi", "float | None", "_.txns[_.amount, _.at > _.chalk_window].max()", "max(e.amount) FILTER (WHERE %s)", "max(amount) OVER %s"},
		{"big", "int", "_.txns[_.amount > 50, _.at > _.chalk_window].count()", "count(e.id) FILTER (WHERE e.amount > 50 AND %s)", "count(eid) FILTER (WHERE amount > 50) OVER %s"},
		{"sd", "float | None", "_.txns[_.amount, _.at > _.chalk_window].std()", "stddev_samp(e.amount) FILTER (WHERE %s)", "stddev_samp(amount) OVER %s"},
	}
	var repo strings.Builder
	repo.WriteString(`from chalk.features import features, DataFrame, FeatureTime, _
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
`)
	quoted := make([]string, len(windows))
	for i, w := range windows {
		quoted[i] = `"` + w + `"`
	}
	for _, e := range exprs {
		fmt.Fprintf(&repo, "    %s: Windowed[%s] = windowed(%s, expression=%s)\n", e.name, e.typ, strings.Join(quoted, ", "), e.expr)
	}
	dir := b.TempDir()
	for name, text := range map[string]string{"m.py": repo.String(),
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, ts as \"at\" from txns\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	src, err := duckdb.Open(filepath.Join(dir, "events.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.DB().Exec(fmt.Sprintf(`SET TimeZone = 'UTC';
		CREATE TABLE txns AS SELECT i AS id,
			CASE WHEN i %% 10 = 0 THEN (i // 10) %% 2 ELSE 2 + (hash(i) %% 50000) END AS user_id,
			CASE WHEN i %% 13 = 0 THEN NULL ELSE (hash(i * 7) %% 10000) / 100.0 END AS amount,
			TIMESTAMPTZ '2026-01-01' + to_microseconds(CAST(hash(i * 3) %% (365 * 86400000000) AS BIGINT)) AS ts
		FROM range(%d) r(i);
		CREATE TABLE spine AS SELECT i, CAST(CASE WHEN i %% %d = 0 THEN (i // %d) %% 2 ELSE 2 + (hash(i * 11) %% 50000) END AS BIGINT) AS id,
			TIMESTAMPTZ '2026-07-01' + to_microseconds(CAST(hash(i * 17) %% (180 * 86400000000) AS BIGINT)) AS t
		FROM range(%d) r(i)`, events, every, every, n)); err != nil {
		b.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	spine, err := src.Fetch(ctx, memory.DefaultAllocator, stores.FetchRequest{SQL: "SELECT id, t FROM spine ORDER BY i"})
	if err != nil {
		b.Fatal(err)
	}
	defer spine.Release()
	keys, times := spine.Column(0), spine.Column(1)
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: keys.DataType()}, {Name: statement.AsOfColumn, Type: times.DataType()}}, nil),
		[]arrow.Array{keys, times}, spine.NumRows())
	defer in.Release()
	q := &statement.Statement{Class: g.Class("user"), Inputs: in.Schema().Fields()}
	var cols, winCols, frames []string
	for _, e := range exprs {
		for i, w := range windows {
			d, err := features.ParseDuration(w)
			if err != nil {
				b.Fatal(err)
			}
			q.Outputs = append(q.Outputs, statement.Output{Expr: &expr.Ref{Path: []string{features.WindowFQN(e.name, d)}}})
			cols = append(cols, fmt.Sprintf(e.sql, fmt.Sprintf("e.ts > s.t - INTERVAL %d SECOND", int64(d/time.Second))))
			winCols = append(winCols, fmt.Sprintf(e.win, fmt.Sprintf("w%d", i)))
		}
	}
	for i, w := range windows {
		d, _ := features.ParseDuration(w)
		// t - w < ts <= t: the frame's start is inclusive, so 1 µs later.
		frames = append(frames, fmt.Sprintf("w%d AS (PARTITION BY id ORDER BY ts RANGE BETWEEN to_microseconds(%d) PRECEDING AND CURRENT ROW)", i, d.Microseconds()-1))
	}
	b.Run("fletch", func(b *testing.B) {
		e := planner.NewEngine(g, markettest.OneSource{Src: src}, nil, planner.WithMaxHasManyRows(1<<30))
		p, err := e.Prepare(q)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu := cpuTime()
		for range b.N {
			res, err := p.Run(ctx, in, planner.RunOptions{})
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
		reportRows(b, n, cpu)
	})
	duck := func(sql string) func(b *testing.B) {
		return func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				rec, err := src.Fetch(ctx, memory.DefaultAllocator, stores.FetchRequest{SQL: sql})
				if err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
			reportRows(b, n, cpu)
		}
	}
	// A range join: every (spine row, event) pair of the widest window.
	b.Run("duckdb_sql", duck("SELECT s.i, "+strings.Join(cols, ", ")+` FROM spine s LEFT JOIN txns e
			ON e.user_id = s.id AND e.ts <= s.t AND e.ts > s.t - INTERVAL 180 DAY GROUP BY s.i ORDER BY s.i`))
	// Window functions over the events and the spine rows of each user
	// by time: DuckDB's segment trees, no pairs (the same answers as the
	// range join, checked on a smaller copy with the Python client).
	b.Run("duckdb_sql_window", duck("SELECT si, "+strings.Join(winCols, ", ")+` FROM (
			SELECT user_id AS id, ts, amount, id AS eid, NULL::BIGINT AS si FROM txns WHERE user_id IN (SELECT id FROM spine)
			UNION ALL SELECT id, t, NULL, NULL, i FROM spine)
			WINDOW `+strings.Join(frames, ", ")+` QUALIFY si IS NOT NULL ORDER BY si`))
}
