package tiles_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores/postgres"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
	"github.com/fletch-engine/fletch/tiles"
)

const pgRepo = `from chalk.features import features, DataFrame, FeatureTime, _
from chalk import Windowed, windowed

@features
class Txn:
    id: int
    user_id: "User.id"
    amount: float | None
    flag: bool | None
    at: FeatureTime

@features(materialization={"bucket_duration": "1h"})
class User:
    id: int
    txns: DataFrame[Txn]
    total: Windowed[float] = windowed("1d", expression=_.txns[_.amount, _.amount > 10, _.at > _.chalk_window].sum())
    spread: Windowed[float | None] = windowed("1d", expression=_.txns[_.amount, _.at > _.chalk_window].std())
    last: Windowed[float | None] = windowed("1d", expression=_.txns[_.amount, _.at > _.chalk_window].max_by(_.at))
    some: Windowed[bool] = windowed("1d", expression=_.txns[_.flag, _.at > _.chalk_window].any())
    kinds: Windowed[int] = windowed("1d", expression=_.txns[_.amount, _.at > _.chalk_window].approx_count_distinct())
`

// TestPostgres: tiles computed in Postgres SQL (the class-wide
// materialization= of every aggregation) and kept in Postgres, resumed
// after an interruption, equal to Postgres' own GROUP BY.
func TestPostgres(t *testing.T) {
	schema := fmt.Sprintf("tiles_test_%d", rand.Int64())
	dsn := pgtest.WithParam(pgtest.DSN(t), "search_path", schema)
	ctx := context.Background()
	admin, err := sql.Open("pgx", pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema + `;
		CREATE TABLE ` + schema + `.txns AS SELECT i AS id, i % 7 AS user_id,
			CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 7919 % 1000) / 10.0 END::float8 AS amount,
			CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
			TIMESTAMPTZ '2026-01-01' + (i * 104729 % (10 * 86400)) * INTERVAL '1 second' AS ts
		FROM generate_series(0, 5999) i`); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	dir := t.TempDir()
	for name, text := range map[string]string{"m.py": pgRepo,
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, flag, ts as \"at\" from txns\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := tiles.Open(ctx, db, src)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	groups := tiles.Materialized(g)
	if len(groups) != 5 {
		t.Fatalf("%d materialized features, want the class's 5", len(groups))
	}
	for _, group := range groups {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		if _, err := tiles.Backfill(cctx, mem, src, st, spec, tiles.BackfillOptions{Now: now, Progress: func(tiles.Report) { cancel() }}); err == nil {
			t.Errorf("%s: the interrupted backfill did not stop", group.Name)
		}
		cancel()
		if _, err := tiles.Backfill(ctx, mem, src, st, spec, tiles.BackfillOptions{Now: now}); err != nil {
			t.Fatalf("%s: %v", group.Name, err)
		}
	}
	spec, err := tiles.SpecFor(g, g.Class("user").Feature("total"))
	if err != nil {
		t.Fatal(err)
	}
	var bad int
	err = db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM (
		SELECT user_id AS key, (extract(epoch FROM ts) * 1000000)::bigint / 3600000000 * 3600000000 AS b, sum(amount) AS s, count(*) AS n
		FROM txns WHERE amount > 10 GROUP BY 1, 2) r
		FULL JOIN %q t ON t.key = r.key AND t.bucket_start = r.b
		WHERE t.key IS NULL OR r.key IS NULL OR abs(t.sum - r.s) > 1e-6 OR t.events <> r.n`, spec.Table(time.Hour))).Scan(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d tiles differ from Postgres' GROUP BY", bad)
	}
}
