package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Big spines (issue 13 item 5, docs/FLIGHTSQL.md "Big spines"): a
// training set of 250,000 spine rows over the tiles acceptance's events,
// served with small chunks and endpoints (20,000 and 60,000 rows) so that
// every path crosses both bounds many times. Flight SQL from Go (the spine
// bound to a prepared statement, its endpoints read in parallel), and the
// Python SDK (DoPut and endpoints, one DoExchange, materialized, and
// Flight SQL through ADBC) each match DuckDB SQL computing the same
// point-in-time windows, cell by cell.

const bigSpineRows = 250_000

const bigSpineConfig = "server:\n  spine:\n    chunk_rows: 20000\n    endpoint_rows: 60000\n"

// bigSpineSQL is the spine of integration/testdata/tiles_training_set.py:
// heavy hitters 0 and 1, keys with no event, rows before any event and at
// exact midnights.
func bigSpineSQL(n int) string {
	return fmt.Sprintf(`CREATE TEMP TABLE spine AS SELECT i,
		CAST(CASE WHEN i %% 50 = 0 THEN i %% 2 ELSE 2 + (hash(i * 11) %% 5100) END AS BIGINT) AS id,
		CASE WHEN i %% 997 = 0 THEN TIMESTAMPTZ '2025-06-01'
		     WHEN i %% 101 = 0 THEN TIMESTAMPTZ '2026-02-01' + to_days(CAST(i %% 50 AS INTEGER))
		     ELSE TIMESTAMPTZ '2026-02-01' + to_microseconds(CAST(hash(i * 17) %% (59 * 86400000000) AS BIGINT)) END AS t
		FROM range(%d) r(i)`, n)
}

func TestBigSpine(t *testing.T) {
	need(t, "python3")
	root := repoRoot(t)
	dir := writeTilesRepo(t, 100_000)
	f, err := os.OpenFile(filepath.Join(dir, "fletch.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(bigSpineConfig); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ref := filepath.Join(t.TempDir(), "reference.duckdb")
	copyFile(t, filepath.Join(dir, "events.duckdb"), ref)
	if out, err := exec.Command(bin, "aggregate", "backfill", "--repo", dir).CombinedOutput(); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	addr, _ := startServe(t, dir)

	t.Run("flightsql", func(t *testing.T) { bigSpineFlightSQL(t, addr, ref) })
	t.Run("python", func(t *testing.T) {
		runTool(t, root, os.Environ(), "bash", filepath.Join(root, "clients/python/setup.sh"))
		env := append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "clients/python"), "FLETCH_URL=grpc://"+addr, "FLETCH_REFERENCE_DB="+ref, fmt.Sprintf("SPINE_ROWS=%d", bigSpineRows+50_000),
			"MODES=exact-endpoints,tiled,sql")
		runTool(t, root, env, filepath.Join(root, ".venv/bin/python"), filepath.Join(root, "integration/testdata/tiles_training_set.py"))
	})
}

// bigSpineFlightSQL binds the spine to a prepared statement, reads the
// FlightInfo's endpoints in parallel, and compares every cell with DuckDB.
func bigSpineFlightSQL(t *testing.T, addr, ref string) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db, err := sql.Open("duckdb", ref+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'; "+bigSpineSQL(bigSpineRows)); err != nil {
		t.Fatal(err)
	}

	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	stmt, err := cl.Prepare(ctx, `SELECT "total[7d]", "total[30d]", "total[90d]", "cnt[7d]", "cnt[30d]", "cnt[90d]" FROM user WHERE id = ? AND __as_of__ = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	// Microseconds, as the spine's times are: the declared parameter
	// schema says milliseconds for JDBC's sake, and binding takes any unit.
	b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "__as_of__", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}}}, nil))
	rows, err := conn.QueryContext(ctx, "SELECT id, t FROM spine ORDER BY i")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		b.Field(0).(*array.Int64Builder).Append(id)
		ts, _ := arrow.TimestampFromTime(at, arrow.Microsecond)
		b.Field(1).(*array.TimestampBuilder).Append(ts)
	}
	rows.Close()
	params := b.NewRecordBatch()
	b.Release()
	stmt.SetParameters(params)
	params.Release()
	start := time.Now()
	info, err := stmt.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (bigSpineRows + 59_999) / 60_000; len(info.Endpoint) != want || !info.Ordered {
		t.Fatalf("FlightInfo of %d spine rows: %d endpoints (ordered %v), want %d ordered", bigSpineRows, len(info.Endpoint), info.Ordered, want)
	}
	parts := make([][]arrow.RecordBatch, len(info.Endpoint))
	errs := make([]error, len(info.Endpoint))
	var wg sync.WaitGroup
	for i, ep := range info.Endpoint {
		wg.Go(func() {
			rdr, err := cl.DoGet(ctx, ep.Ticket)
			if err != nil {
				errs[i] = err
				return
			}
			defer rdr.Release()
			for rdr.Next() {
				rec := rdr.RecordBatch()
				rec.Retain()
				parts[i] = append(parts[i], rec)
			}
			errs[i] = rdr.Err()
		})
	}
	wg.Wait()
	defer func() {
		for _, p := range parts {
			for _, r := range p {
				r.Release()
			}
		}
	}()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d spine rows over Flight SQL, %d endpoints read in parallel: %s", bigSpineRows, len(info.Endpoint), time.Since(start).Round(time.Millisecond))

	const dayUS = 86_400_000_000
	var cols []string
	for _, agg := range []string{"coalesce(sum(e.amount) FILTER (WHERE epoch_us(e.ts) > epoch_us(s.t) - %d), 0)", "count(e.id) FILTER (WHERE epoch_us(e.ts) > epoch_us(s.t) - %d)"} {
		for _, w := range []int64{7, 30, 90} {
			cols = append(cols, fmt.Sprintf(agg, w*dayUS))
		}
	}
	want, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT %s, %s, %s, %s, %s, %s FROM spine s LEFT JOIN txns e
		ON e.user_id = s.id AND e.ts <= s.t AND epoch_us(e.ts) > epoch_us(s.t) - %d GROUP BY s.i ORDER BY s.i`,
		cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], 90*dayUS))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	bad, row := 0, 0
	next := func() func() (arrow.RecordBatch, int) { // the answer's rows in order
		p, r, i := 0, 0, 0
		return func() (arrow.RecordBatch, int) {
			for p < len(parts) && (r >= len(parts[p]) || int64(i) >= parts[p][r].NumRows()) {
				if r < len(parts[p]) && int64(i) >= parts[p][r].NumRows() {
					r, i = r+1, 0
				} else {
					p, r, i = p+1, 0, 0
				}
			}
			if p >= len(parts) {
				return nil, 0
			}
			i++
			return parts[p][r], i - 1
		}
	}()
	for want.Next() {
		var w [6]float64
		if err := want.Scan(&w[0], &w[1], &w[2], &w[3], &w[4], &w[5]); err != nil {
			t.Fatal(err)
		}
		rec, i := next()
		if rec == nil {
			t.Fatalf("the answer has %d rows, the spine %d", row, bigSpineRows)
		}
		for c := range 6 {
			got := math.NaN()
			switch col := rec.Column(c).(type) {
			case *array.Float64:
				if col.IsValid(i) {
					got = col.Value(i)
				}
			case *array.Int64:
				if col.IsValid(i) {
					got = float64(col.Value(i))
				}
			}
			if math.Abs(got-w[c]) > 1e-6*math.Max(1, math.Abs(w[c])) || math.IsNaN(got) {
				if bad++; bad <= 5 {
					t.Errorf("row %d column %s: got %v, DuckDB says %v", row, rec.Schema().Field(c).Name, got, w[c])
				}
			}
		}
		row++
	}
	if rec, _ := next(); rec != nil || row != bigSpineRows {
		t.Errorf("the answer and the spine differ in length (%d reference rows)", row)
	}
	if bad > 0 {
		t.Errorf("%d cells differ", bad)
	}
}
