package planner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// countingSource counts the queries each resolver sends to a real source,
// and can be switched off to play a database that went down.
type countingSource struct {
	db    stores.Source
	mu    sync.Mutex
	calls map[string]int
	down  bool
}

func (c *countingSource) Source(string) (stores.Source, error) { return c, nil }

func (c *countingSource) Close() error { return nil }

func (c *countingSource) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (arrow.RecordBatch, error) {
	c.mu.Lock()
	c.calls[req.SQL]++
	down := c.down
	c.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	return c.db.Fetch(ctx, mem, req)
}

func (c *countingSource) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

const accountRepo = `from chalk.features import features, feature, DataFrame, _

@features
class Account:
    id: int
    name: str | None = feature(max_staleness="1h", cache_nulls=False)
    score: float = feature(max_staleness="1h")
    label: str = _.name + "!"
    balance: float
    payments: "DataFrame[Payment]"
    paid: float = feature(max_staleness="infinity", expression=_.payments[_.amount].sum())
    tier: str | None

@features
class Payment:
    id: int
    account_id: Account.id
    account: Account
    amount: float
`

// accountFixture is a small repository whose features have max_staleness,
// over a DuckDB database: account 3 has a null name.
func accountFixture(t *testing.T) (*features.Graph, *duckdb.Source) {
	t.Helper()
	return repoWithDuckDB(t, map[string]string{
		"accounts.py":  accountRepo,
		"accounts.sql": "-- resolves: Account\n-- source: db\nselect id, name, score, balance from accounts\n",
		"payments.sql": "-- resolves: Payment\n-- source: db\nselect id, account_id, amount from payments\n",
		// ${account.id} is bound as one list of the request's ids.
		"tiers.sql": "-- resolves: Account\n-- source: db\nselect account as id, tier from tiers where account in (select unnest(${account.id}))\n",
	},
		"CREATE TABLE accounts (id BIGINT, name VARCHAR, score DOUBLE, balance DOUBLE)",
		"INSERT INTO accounts VALUES (1, 'ada', 0.5, 10), (2, 'bob', 0.25, 20), (3, NULL, 0.75, 30)",
		"CREATE TABLE payments (id BIGINT, account_id BIGINT, amount DOUBLE)",
		"INSERT INTO payments VALUES (1, 1, 5), (2, 1, 7), (3, 2, 1)",
		"CREATE TABLE tiers (account BIGINT, tier VARCHAR)",
		"INSERT INTO tiers VALUES (1, 'gold'), (3, 'silver'), (4, 'bronze')",
	)
}

// repoWithDuckDB loads a repository of files (name → text) and an
// in-memory DuckDB source made by the statements ddl; the source is closed
// when the test ends.
func repoWithDuckDB(t testing.TB, files map[string]string, ddl ...string) (*features.Graph, *duckdb.Source) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for _, q := range ddl {
		if _, err := src.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return g, src
}

func accountInputs(mem memory.Allocator, ids ...int64) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(ids, nil)
	arr := b.NewArray()
	defer arr.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{arr}, int64(len(ids)))
}

// cells renders a result as Go values per column, for comparison.
func cells(rec arrow.RecordBatch) [][]any {
	out := make([][]any, rec.NumCols())
	for i, c := range rec.Columns() {
		for r := 0; r < c.Len(); r++ {
			out[i] = append(out[i], operators.GoValue(c, r))
		}
	}
	return out
}

func hitsOf(res *planner.Result) [][]bool {
	out := make([][]bool, len(res.Hits))
	for i, h := range res.Hits {
		b := h.(*array.Boolean)
		for r := 0; r < b.Len(); r++ {
			out[i] = append(out[i], b.Value(r))
		}
	}
	return out
}

func TestOnlineStoreServesWithinMaxStaleness(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{db: db, calls: map[string]int{}}
	store := onlinemem.New()
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(store))
	in := accountInputs(mem, 1, 2, 1)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score"), ref("paid"), ref("balance")}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	want := [][]any{{0.5, 0.25, 0.5}, {12.0, 1.0, 12.0}, {10.0, 20.0, 10.0}}
	run := func(now time.Time, opts planner.RunOptions) ([][]any, [][]bool, int) {
		t.Helper()
		before := src.total()
		opts.Now, opts.Meta = now, true
		res, err := plan.Run(context.Background(), in, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		e.Flush()
		return cells(res.Record), hitsOf(res), src.total() - before
	}
	steps := []struct {
		name    string
		at      time.Time
		opts    planner.RunOptions
		hits    []bool // per output, every row
		queries int
	}{
		{"cold: computed and written back", t0, planner.RunOptions{}, []bool{false, false, false}, 2},
		{"within max_staleness: served, only balance is queried", t0.Add(30 * time.Minute), planner.RunOptions{}, []bool{true, true, false}, 1},
		{"past 1h: score recomputed; paid (infinity) still served", t0.Add(61 * time.Minute), planner.RunOptions{}, []bool{false, true, false}, 1},
		{"override 0s bypasses the store", t0.Add(62 * time.Minute), planner.RunOptions{Staleness: map[string]time.Duration{"*": 0}}, []bool{false, false, false}, 2},
		{"override caches balance too", t0.Add(63 * time.Minute), planner.RunOptions{Staleness: map[string]time.Duration{"account.balance": time.Hour}}, []bool{true, true, false}, 1},
		{"balance now cached", t0.Add(64 * time.Minute), planner.RunOptions{Staleness: map[string]time.Duration{"account.balance": time.Hour}}, []bool{true, true, true}, 0},
		{"a value observed after the run's time is not visible", t0.Add(-time.Minute), planner.RunOptions{}, []bool{false, false, false}, 2},
	}
	for _, s := range steps {
		got, hits, queries := run(s.at, s.opts)
		if !equalCells(got, want) {
			t.Errorf("%s: values %v, want %v", s.name, got, want)
		}
		for i, h := range hits {
			for _, v := range h {
				if v != s.hits[i] {
					t.Errorf("%s: output %d hits %v, want %v", s.name, i, h, s.hits[i])
					break
				}
			}
		}
		if queries != s.queries {
			t.Errorf("%s: %d source queries, want %d", s.name, queries, s.queries)
		}
	}
}

func equalCells(a, b [][]any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

// cache_nulls=False: a null is recomputed every time; others are cached.
func TestCacheNullsFalse(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{db: db, calls: map[string]int{}}
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(onlinemem.New()))
	now := time.Now()
	for _, c := range []struct {
		id   int64
		hit2 bool
	}{{1, true}, {3, false}} {
		in := accountInputs(mem, c.id)
		plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("name")}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now, Meta: true})
			if err != nil {
				t.Fatal(err)
			}
			e.Flush()
			if got := res.Hits[0].(*array.Boolean).Value(0); got != (i == 1 && c.hit2) {
				t.Errorf("account %d run %d: hit %v", c.id, i, got)
			}
			res.Release()
		}
		in.Release()
	}
}

// A point-in-time run (__as_of__) never reads the store: a cached value is
// what was true when it was observed.
func TestPointInTimeBypassesStore(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{db: db, calls: map[string]int{}}
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(onlinemem.New()))
	ids := accountInputs(mem, 1)
	defer ids.Release()
	tb := array.NewTimestampBuilder(mem, features.TimestampType)
	tb.Append(arrow.Timestamp(time.Now().UnixMicro()))
	ts := tb.NewArray()
	tb.Release()
	defer ts.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: statement.AsOfColumn, Type: features.TimestampType}}, nil), []arrow.Array{ids.Column(0), ts}, 1)
	defer in.Release()
	for range 2 {
		rec, err := e.Execute(context.Background(), &statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score")}}, in)
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
		e.Flush()
	}
	if n := src.total(); n != 2 {
		t.Errorf("%d source queries, want 2 (no cache on the point-in-time path)", n)
	}
}

// Partial runs: a source that fails nulls and reports exactly the outputs
// that need it, caches none of them, and the next run recovers.
func TestPartialFailureReportsAffectedOutputs(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{db: db, calls: map[string]int{}}
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(onlinemem.New()))
	in := accountInputs(mem, 1, 2)
	defer in.Release()
	outs := []statement.Output{ref("id"), ref("label"), ref("paid")}
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: outs})
	if err != nil {
		t.Fatal(err)
	}
	src.down = true
	now := time.Now()
	if _, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now}); statement.KindOf(err) != statement.SourceFailure {
		t.Fatalf("not partial: got %v, want a SourceFailure", err)
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	e.Flush()
	got := cells(res.Record)
	res.Release()
	if want := [][]any{{int64(1), int64(2)}, {nil, nil}, {nil, nil}}; !equalCells(got, want) {
		t.Errorf("values %v, want %v", got, want)
	}
	if len(res.Errors) != 2 || res.Errors[0].Output != 1 || res.Errors[0].Resolver != "accounts" || res.Errors[1].Output != 2 || res.Errors[1].Resolver != "payments" {
		t.Errorf("errors %+v, want outputs 1 (accounts) and 2 (payments)", res.Errors)
	}
	src.down = false
	res, err = plan.Run(context.Background(), in, planner.RunOptions{Now: now, Partial: true, Meta: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if want := [][]any{{int64(1), int64(2)}, {"ada!", "bob!"}, {12.0, 1.0}}; !equalCells(cells(res.Record), want) || len(res.Errors) != 0 {
		t.Errorf("after recovery: %v %+v", cells(res.Record), res.Errors)
	}
	if res.Hits[2].(*array.Boolean).Value(0) {
		t.Error("a value computed from a failed source was cached")
	}
	e.Flush()
}

// A has-one's features are cached per related key, and the hit shows
// through the path (`account.score` of a payment).
func TestHasOneFeaturesServedFromStore(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src := &countingSource{db: db, calls: map[string]int{}}
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(onlinemem.New()))
	in := accountInputs(mem, 1, 3, 2)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("payment"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("amount"), ref("account.score")}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, wantHits := range [][]bool{{false, false, false}, {true, true, true}} {
		before := src.total()
		res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now, Meta: true})
		if err != nil {
			t.Fatal(err)
		}
		e.Flush()
		if want := [][]any{{5.0, 1.0, 7.0}, {0.5, 0.25, 0.5}}; !equalCells(cells(res.Record), want) {
			t.Errorf("run %d: %v, want %v", i, cells(res.Record), want)
		}
		if got := hitsOf(res)[1]; !equalBools(got, wantHits) {
			t.Errorf("run %d: account.score hits %v, want %v", i, got, wantHits)
		}
		if queries := src.total() - before; i == 1 && queries != 1 {
			t.Errorf("run %d: %d queries, want only the payments one", i, queries)
		}
		res.Release()
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A `${class.feature}` parameter is bound to the distinct values of that
// feature over the request's rows, as one list parameter, never spliced.
func TestFeatureParameterIsBound(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	in := accountInputs(mem, 3, 1, 2, 3)
	defer in.Release()
	rec, err := e.Execute(context.Background(), &statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("tier")}}, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var want [][]any
	rows, err := db.DB().Query("SELECT t.tier FROM (VALUES (0, 3), (1, 1), (2, 2), (3, 3)) AS i(n, id) LEFT JOIN tiers t ON t.account = i.id ORDER BY i.n")
	if err != nil {
		t.Fatal(err)
	}
	var col []any
	for rows.Next() {
		var v *string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			col = append(col, nil)
		} else {
			col = append(col, *v)
		}
	}
	rows.Close()
	want = append(want, col)
	if got := cells(rec); !equalCells(got, want) {
		t.Errorf("tiers %v, want %v", got, want)
	}
}
