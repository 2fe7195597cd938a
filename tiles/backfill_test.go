package tiles_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/guard"
	"github.com/fletch-engine/fletch/tiles"
)

const repo = `from chalk.features import features, DataFrame, FeatureTime, _
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
    total: Windowed[float] = windowed("1d", "7d", expression=_.txns[_.amount, _.amount > 10, _.at > _.chalk_window].sum(), materialization={"bucket_duration": "1h"})
    spread: Windowed[float | None] = windowed("1d", "7d", expression=_.txns[_.amount, _.at > _.chalk_window].std(), materialization={"bucket_duration": "1h"})
`

func fixture(t *testing.T) (*duckdb.Source, *features.Graph) {
	dir := t.TempDir()
	for name, text := range map[string]string{"m.py": repo,
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, ts as \"at\" from txns\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := duckdb.Open(filepath.Join(dir, "events.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if _, err := src.DB().Exec(`SET TimeZone = 'UTC';
		CREATE TABLE txns AS SELECT i AS id, i % 7 AS user_id,
			CASE WHEN i % 11 = 0 THEN NULL ELSE (hash(i) % 1000) / 10.0 END AS amount,
			TIMESTAMPTZ '2026-01-01' + to_microseconds(CAST(hash(i * 3) % (30 * 86400000000) AS BIGINT)) AS ts
		FROM range(20000) r(i)`); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src, g
}

func openStore(t *testing.T) (*tiles.Store, *sql.DB) {
	src, err := duckdb.Open(filepath.Join(t.TempDir(), "tiles.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	st, err := tiles.Open(context.Background(), src.DB(), src)
	if err != nil {
		t.Fatal(err)
	}
	return st, src.DB()
}

func dump(t *testing.T, db *sql.DB, table string) [][]any {
	rows, err := db.Query(fmt.Sprintf(`SELECT * FROM %q ORDER BY key, bucket_start`, table))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	return out
}

// TestInterruptedBackfillResumes: a backfill cancelled after its first
// chunk, run again, gives the same tiles as one clean run, and the tiles
// hold what DuckDB computes from the events directly.
func TestInterruptedBackfillResumes(t *testing.T) {
	src, g := fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clean, cleanDB := openStore(t)
	resumed, resumedDB := openStore(t)
	for _, group := range tiles.Materialized(g) {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tiles.Backfill(context.Background(), mem, src, clean, spec, tiles.BackfillOptions{Now: now}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		_, err = tiles.Backfill(ctx, mem, src, resumed, spec, tiles.BackfillOptions{Now: now, Progress: func(tiles.Report) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: the interrupted backfill returned %v", group.Name, err)
		}
		cancel()
		reps, err := tiles.Backfill(context.Background(), mem, src, resumed, spec, tiles.BackfillOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if reps[0].Skipped != 1 || reps[0].Done != reps[0].Chunks || reps[0].Chunks < 3 {
			t.Errorf("%s: the rerun %+v: want the first chunk skipped and the rest done", group.Name, reps[0])
		}
		table := spec.Table(time.Hour)
		a, b := dump(t, cleanDB, table), dump(t, resumedDB, table)
		if len(a) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %d tiles after a clean run, %d after an interrupted one, or they differ", group.Name, len(a), len(b))
		}
	}
	// The tiles against DuckDB: per (user, hour), the filtered sum.
	spec, err := tiles.SpecFor(g, g.Class("user").Feature("total"))
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, cleanDB, spec.Table(time.Hour))
	rows, err := src.DB().Query(`SELECT user_id, epoch_us(ts) - epoch_us(ts) % 3600000000 AS b, sum(amount), count(*)
		FROM txns WHERE amount > 10 GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for ; rows.Next(); n++ {
		var key, bucket, events int64
		var sum float64
		if err := rows.Scan(&key, &bucket, &sum, &events); err != nil {
			t.Fatal(err)
		}
		if n >= len(got) {
			continue
		}
		g := got[n]
		if g[0] != key || g[1] != bucket || fmt.Sprintf("%.6f", g[2]) != fmt.Sprintf("%.6f", sum) || g[3] != events {
			t.Errorf("tile %d: %v, DuckDB says (%d, %d, %v, %d)", n, g, key, bucket, sum, events)
			break
		}
	}
	if n != len(got) {
		t.Errorf("%d tiles, DuckDB has %d groups", len(got), n)
	}
}

// TestBackfillThroughGuardedSource: a source behind its bulkhead and
// breaker (sources.<name>.max_concurrent, breaker:) is still known as
// DuckDB SQL, and backfills to the tiles of the bare source.
func TestBackfillThroughGuardedSource(t *testing.T) {
	src, g := fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	guarded := guard.Source{Source: src, Guard: guard.New(guard.Options{Name: "source events", MaxConcurrent: 2, Failures: 3})}
	if d, err := tiles.DialectOf(guarded); err != nil || d != tiles.DuckDB {
		t.Fatalf("DialectOf the guarded source: %v, %v; want DuckDB", d, err)
	}
	spec, err := tiles.SpecFor(g, g.Class("user").Feature("total"))
	if err != nil {
		t.Fatal(err)
	}
	bare, bareDB := openStore(t)
	through, throughDB := openStore(t)
	for st, s := range map[*tiles.Store]stores.Source{bare: src, through: guarded} {
		if _, err := tiles.Backfill(context.Background(), mem, s, st, spec, tiles.BackfillOptions{Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := dump(t, bareDB, spec.Table(time.Hour)), dump(t, throughDB, spec.Table(time.Hour))
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Errorf("%d tiles from the bare source, %d through its guard, or they differ", len(a), len(b))
	}
}
