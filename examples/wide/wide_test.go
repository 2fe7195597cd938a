package wide

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

const (
	nFeatures = 7
	nEntities = 60
)

// fixture is a generated repository over a DuckDB file, opened as fletch
// serve opens it (fletch.yaml, config.Open): the engine and, for the
// reference, the same database.
type fixture struct {
	graph  *features.Graph
	env    *config.Env
	engine *planner.Engine
	db     *sql.DB
}

// newFixture generates n features of entities 1..m.
func newFixture(t testing.TB, mem memory.Allocator, n, m int) *fixture {
	t.Helper()
	fx := openFixture(t, func(repo string) error { return WriteRepo(repo, n) },
		func(db *sql.DB) error { return LoadDuckDB(context.Background(), db, n, m) })
	fx.engine = planner.NewEngine(fx.graph, fx.env, mem, planner.WithOnlineStore(fx.env.OnlineStore()))
	return fx
}

// openFixture writes a repository with write, loads its data into a new
// DuckDB file with load, and opens both as fletch serve does; the engine is
// the caller's to make.
func openFixture(t testing.TB, write func(repo string) error, load func(*sql.DB) error) *fixture {
	t.Helper()
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	if err := write(repo); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "wide.duckdb")
	src, err := duckdb.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := load(src.DB()); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	yaml := filepath.Join(dir, "fletch.yaml")
	if err := os.WriteFile(yaml, []byte(fmt.Sprintf("sources:\n  %s:\n    kind: duckdb\n    path: %s\n", Source, dbPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Find(repo, yaml)
	if err != nil {
		t.Fatal(err)
	}
	env, err := config.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	d, err := env.DuckDB(Source)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{graph: g, env: env, db: d.DB()}
}

// reference reads the features of ids from the table with DuckDB SQL.
func (fx *fixture) reference(t *testing.T, ids []int64) [][]float64 {
	t.Helper()
	out := make([][]float64, len(ids))
	q := fmt.Sprintf("SELECT %s FROM %s WHERE id = ?", strings.Join(FeatureNames(nFeatures), ", "), Table)
	for i, id := range ids {
		out[i] = make([]float64, nFeatures)
		dest := make([]any, nFeatures)
		for f := range dest {
			dest[f] = &out[i][f]
		}
		if err := fx.db.QueryRow(q, id).Scan(dest...); err != nil {
			t.Fatalf("reference for id %d: %v", id, err)
		}
	}
	return out
}

func TestRepoLoads(t *testing.T) {
	repo := t.TempDir()
	if err := WriteRepo(repo, nFeatures); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table    string
		infinite bool
	}{{CachedClass, true}, {LiveClass, false}} {
		cls := g.Class(c.table)
		if cls == nil {
			t.Fatalf("no class %s in %v", c.table, g.ClassNames())
		}
		var sources []string
		for _, r := range g.SQLResolvers {
			if r.Resolves == cls {
				sources = append(sources, r.Source)
			}
		}
		if len(sources) != 1 || sources[0] != Source {
			t.Errorf("%s: resolved from sources %v, want one resolver on %s", c.table, sources, Source)
		}
		if got := cls.MaxStaleness.Infinite; got != c.infinite {
			t.Errorf("%s: max_staleness infinite = %v, want %v", c.table, got, c.infinite)
		}
		for _, name := range append([]string{"id"}, FeatureNames(nFeatures)...) {
			f := cls.Feature(name)
			if f == nil {
				t.Fatalf("%s has no feature %s", c.table, name)
			}
			want := features.Float
			if name == "id" {
				want = features.Int
			}
			if f.Type.Kind != want {
				t.Errorf("%s.%s: type %v, want %v", c.table, name, f.Type, want)
			}
		}
	}
	if err := WriteRepo(repo, 0); err == nil {
		t.Error("WriteRepo with 0 features: no error")
	}
}

func idBatch(mem memory.Allocator, ids []int64) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(ids, nil)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, int64(len(ids)))
}

// TestEngineAnswersAsDuckDB runs both classes through the planner with the
// configuration fletch serve uses and compares every value with DuckDB SQL
// over the table; User is served from the online store once written back,
// LiveUser never is.
func TestEngineAnswersAsDuckDB(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fx := newFixture(t, mem, nFeatures, nEntities)
	ids := []int64{3, 1, nEntities, 17, 3}
	want := fx.reference(t, ids)
	in := idBatch(mem, ids)
	defer in.Release()
	for _, class := range []string{CachedClass, LiveClass} {
		shape := &statement.Statement{Class: fx.engine.Graph().Class(class), Inputs: []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}}
		for _, f := range FeatureNames(nFeatures) {
			shape.Outputs = append(shape.Outputs, statement.Output{Expr: &expr.Ref{Path: []string{f}}, Name: f})
		}
		plan, err := fx.engine.Prepare(shape)
		if err != nil {
			t.Fatal(err)
		}
		for pass := range 2 {
			res, err := plan.Run(context.Background(), in, planner.RunOptions{Meta: true})
			if err != nil {
				t.Fatal(err)
			}
			for f := range nFeatures {
				col := res.Record.Column(f).(*array.Float64)
				hits := res.Hits[f].(*array.Boolean)
				for r := range ids {
					if col.Value(r) != want[r][f] || col.IsNull(r) {
						t.Errorf("%s pass %d: id %d f%d = %v, DuckDB says %v", class, pass, ids[r], f, col.ValueStr(r), want[r][f])
					}
					if wantHit := class == CachedClass && pass == 1; hits.Value(r) != wantHit {
						t.Errorf("%s pass %d: id %d f%d hit = %v, want %v", class, pass, ids[r], f, hits.Value(r), wantHit)
					}
				}
			}
			res.Release()
			fx.engine.Flush()
		}
	}
}

// serve runs a Flight SQL server over engine on a free loopback port until
// the test ends.
func serve(t testing.TB, engine *planner.Engine) string {
	t.Helper()
	srv := flight.NewServer(engine, flight.Options{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), lis)
	t.Cleanup(srv.GracefulStop)
	return lis.Addr().String()
}

// TestWarm warms a real server's memory online store over the wire, then
// reads the store directly: every entity's values are there and equal the
// table's.
func TestWarm(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fx := newFixture(t, mem, nFeatures, nEntities)
	addr := serve(t, fx.engine)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := Warm(ctx, WarmOptions{Addr: addr, Class: CachedClass, Features: nFeatures, Entities: nEntities, Chunk: 25})
	if err != nil {
		t.Fatal(err)
	}
	if st.Queries < 6 { // 3 chunks computed, then 3 checked
		t.Errorf("%d queries, want at least 6", st.Queries)
	}
	ids := make([]int64, nEntities)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	want := fx.reference(t, ids)
	keys := idBatch(mem, ids)
	defer keys.Release()
	fields := make([]arrow.Field, nFeatures)
	for f, name := range FeatureNames(nFeatures) {
		fields[f] = arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	got, err := fx.env.OnlineStore().Get(ctx, mem, CachedClass, keys.Column(0), arrow.NewSchema(fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	for f := range nFeatures {
		col := got.Values.Column(f).(*array.Float64)
		for r := range ids {
			if col.IsNull(r) || col.Value(r) != want[r][f] || got.Observed[f].IsNull(r) {
				t.Fatalf("store: id %d f%d = %v (observed null: %v), DuckDB says %v", ids[r], f, col.ValueStr(r), got.Observed[f].IsNull(r), want[r][f])
			}
		}
	}

	// A server that answers other values fails the warm-up, naming the entity.
	if _, err := fx.db.Exec("UPDATE " + Table + " SET f2 = f2 + 1 WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	_, err = Warm(ctx, WarmOptions{Addr: addr, Class: LiveClass, Features: nFeatures, Entities: 10})
	if err == nil || !strings.Contains(err.Error(), "entity 7: f2") {
		t.Errorf("warming changed data: %v, want an error naming entity 7 and f2", err)
	}
}

// TestPostgresMatchesDuckDB loads the same data into Postgres: every row
// equals DuckDB's, and the bare pgx load reads them without errors.
func TestPostgresMatchesDuckDB(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := LoadPostgres(ctx, pool, nFeatures, nEntities); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, memory.NewGoAllocator(), nFeatures, nEntities)
	q := fmt.Sprintf("SELECT id, %s FROM %s ORDER BY id", strings.Join(FeatureNames(nFeatures), ", "), Table)
	rows, err := pool.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var pgRows []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		pgRows = append(pgRows, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	drows, err := fx.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer drows.Close()
	var i int
	for ; drows.Next(); i++ {
		vals := make([]any, nFeatures+1)
		ptrs := make([]any, len(vals))
		for j := range vals {
			ptrs[j] = &vals[j]
		}
		if err := drows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if i >= len(pgRows) || fmt.Sprint(vals...) != pgRows[i] {
			t.Fatalf("row %d: DuckDB %v, Postgres %v", i, vals, pgRows[min(i, len(pgRows)-1)])
		}
	}
	if i != len(pgRows) || i != nEntities {
		t.Fatalf("%d rows in DuckDB, %d in Postgres, want %d", i, len(pgRows), nEntities)
	}

	rep, err := PgxLoad(ctx, pool, PgxOptions{Features: nFeatures, Entities: nEntities, Rate: 0, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Requests == 0 || rep.RowsPerReq != 1 || rep.P50 <= 0 || rep.P99 < rep.P50 {
		t.Errorf("pgx load: %+v", rep)
	}
}

// The bare read of a PostgreSQL online store's entity (widegen pgx
// --online-table): the row of each id is read, and an id the table does
// not hold is an error of the run, not a fast empty answer.
func TestPgxOnlineTable(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE online (class text, entity text, packed bytea NOT NULL, PRIMARY KEY (class, entity));
		INSERT INTO online SELECT 'user', 'i:' || i, '\x0301'::bytea FROM generate_series(1, 5) i`); err != nil {
		t.Fatal(err)
	}
	rep, err := PgxLoad(ctx, pool, PgxOptions{Features: 50, Entities: 5, Duration: 100 * time.Millisecond, OnlineTable: "online"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Requests == 0 || rep.RowsPerReq != 1 {
		t.Errorf("5 ids held: %+v", rep)
	}
	rep, err = PgxLoad(ctx, pool, PgxOptions{Features: 50, Entities: 10, Duration: 100 * time.Millisecond, OnlineTable: "online"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors == 0 || !strings.Contains(rep.FirstError, "no rows") {
		t.Errorf("ids 6..10 missing: %d errors, first %q", rep.Errors, rep.FirstError)
	}
}
