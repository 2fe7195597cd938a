package wide

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
)

// The split repository at the width of issue 11's performance item: one
// entity × 1,000 features from three DuckDB resolvers, computed in process.
const (
	splitFeatures = 1000
	splitParts    = 3
)

func newSplitFixture(t testing.TB, m int) *fixture {
	t.Helper()
	return openFixture(t, func(repo string) error { return WriteSplitRepo(repo, splitFeatures, splitParts) },
		func(db *sql.DB) error { return LoadSplitDuckDB(context.Background(), db, splitFeatures, splitParts, m) })
}

// splitQuery is an engine over fx with no online store, and the statement
// of SplitUser's features names for an int64 id column, as a front end
// builds it (its plan key computed once). prepare plans the statement
// again (a plan-cache hit); run executes the plan prepared once, for one
// batch of ids.
func splitQuery(t testing.TB, fx *fixture, mem memory.Allocator, names []string) (prepare func() error, run func(context.Context, arrow.RecordBatch) (arrow.RecordBatch, error)) {
	t.Helper()
	e := planner.NewEngine(fx.graph, fx.env, mem)
	var outs []statement.Output
	for _, f := range names {
		outs = append(outs, statement.Output{Expr: &expr.Ref{Path: []string{f}}, Name: f})
	}
	shape, err := statement.New(fx.graph.Class(SplitClass), []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, outs)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := e.Prepare(shape)
	if err != nil {
		t.Fatal(err)
	}
	prepare = func() error {
		_, err := e.Prepare(shape)
		return err
	}
	run = func(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
		return plan.Execute(ctx, in, time.Time{})
	}
	return prepare, run
}

// splitResolvers are the split class's resolvers, in table order.
func splitResolvers(t testing.TB, g *features.Graph) []*features.SQLResolver {
	t.Helper()
	var rs []*features.SQLResolver
	for _, r := range g.SQLResolvers {
		if r.Resolves.Table == SplitClass {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *features.SQLResolver) int { return strings.Compare(a.Query, b.Query) })
	if len(rs) != splitParts {
		t.Fatalf("%d resolvers for %s, want %d", len(rs), SplitClass, splitParts)
	}
	for k, r := range rs {
		if !strings.Contains(r.Query, SplitTable(k)) {
			t.Fatalf("resolver %d (%s) does not read %s", k, r.Name, SplitTable(k))
		}
	}
	return rs
}

// TestSplitAnswersAsDuckDB asks every feature of a few entities through the
// planner and compares each value with the row DuckDB SQL joins from the
// three tables.
func TestSplitAnswersAsDuckDB(t *testing.T) {
	const m = 50
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fx := newSplitFixture(t, m)
	names := FeatureNames(splitFeatures)
	_, run := splitQuery(t, fx, mem, names)
	ids := []int64{m, 1, 17, 1}
	in := idBatch(mem, ids)
	defer in.Release()
	got, err := run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if got.NumCols() != splitFeatures || got.NumRows() != int64(len(ids)) {
		t.Fatalf("answer is %d rows × %d columns, want %d × %d", got.NumRows(), got.NumCols(), len(ids), splitFeatures)
	}
	from := SplitTable(0)
	for k := 1; k < splitParts; k++ {
		from += " JOIN " + SplitTable(k) + " USING (id)"
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE id = ?", strings.Join(names, ", "), from)
	want := make([]any, splitFeatures)
	dest := make([]any, splitFeatures)
	for f := range dest {
		dest[f] = &want[f]
	}
	kinds := map[string]int{}
	for r, id := range ids {
		if err := fx.db.QueryRow(q, id).Scan(dest...); err != nil {
			t.Fatalf("reference for id %d: %v", id, err)
		}
		for f := range splitFeatures {
			var v any
			switch col := got.Column(f).(type) {
			case *array.Float64:
				v = col.Value(r)
			case *array.Int64:
				v = col.Value(r)
			case *array.String:
				v = col.Value(r)
			default:
				t.Fatalf("f%d answered as %s", f, col.DataType())
			}
			kinds[SplitKind(f)]++
			if got.Column(f).IsNull(r) || v != want[f] || v != splitValue(id, f) {
				t.Fatalf("id %d f%d = %#v, DuckDB says %#v, the generator %#v", id, f, v, want[f], splitValue(id, f))
			}
		}
	}
	if kinds["float"] == 0 || kinds["int"] == 0 || kinds["str"] == 0 {
		t.Errorf("kinds compared: %v, want floats, ints and strings", kinds)
	}
}

// BenchmarkSplit1000 is issue 11's computed path: one entity × 1,000
// features from three DuckDB resolvers (334, 333 and 333 columns over
// tables of 10,000 rows), in process, against p99 ≤ 5 ms; and the stages it
// is made of, each alone, for the breakdown (docs/BENCHMARKS.md):
//
//   - query: Prepare (a plan-cache hit) and run, as a statement is served;
//     run: the prepared plan alone; prepare: the cache hit alone.
//   - fetch/<table>: one resolver's Source.Fetch for the key, the request
//     the planner sends (the prepared query, its row scanned into Arrow
//     builders and normalized); fetch/concurrent: the three at once, as
//     the planner runs them.
//   - sql/<table>: the same SQL prepared once, its row scanned into Go
//     values through database/sql: the floor of a fetch; arrow/<table>:
//     the same SQL through DuckDB's Arrow interface (parsed and planned
//     every time, nothing copied), the floor of the path of many keys.
//
// Every sub-benchmark reports the p50 and p99 of its iterations.
//
//	go test -tags duckdb_arrow -run '^$' -bench Split1000 -benchtime 2s ./examples/wide/
func BenchmarkSplit1000(b *testing.B) {
	const m = 10_000
	fx := newSplitFixture(b, m)
	mem := memory.DefaultAllocator
	ctx := context.Background()
	prepare, run := splitQuery(b, fx, mem, FeatureNames(splitFeatures))
	// One batch per entity of a few hundred, made before timing.
	batches := make([]arrow.RecordBatch, 256)
	for i := range batches {
		batches[i] = idBatch(mem, []int64{int64(i*37%m + 1)})
		defer batches[i].Release()
	}
	id := func(i int) int64 { return batches[i%len(batches)].Column(0).(*array.Int64).Value(0) }
	b.Run("query", func(b *testing.B) {
		percentiles(b, func(i int) error {
			if err := prepare(); err != nil {
				return err
			}
			rec, err := run(ctx, batches[i%len(batches)])
			if err != nil {
				return err
			}
			rec.Release()
			return nil
		})
	})
	b.Run("run", func(b *testing.B) {
		percentiles(b, func(i int) error {
			rec, err := run(ctx, batches[i%len(batches)])
			if err != nil {
				return err
			}
			if rec.NumCols() != splitFeatures {
				return fmt.Errorf("%d columns", rec.NumCols())
			}
			rec.Release()
			return nil
		})
	})
	b.Run("prepare", func(b *testing.B) {
		percentiles(b, func(int) error { return prepare() })
	})

	src, err := fx.env.DuckDB(Source)
	if err != nil {
		b.Fatal(err)
	}
	resolvers := splitResolvers(b, fx.graph)
	reqs := make([]stores.FetchRequest, len(resolvers))
	for k, r := range resolvers {
		// The schema the planner asks for: the key, then the features in
		// the resolver's order, in their fletch types.
		fields := make([]arrow.Field, len(r.Columns))
		for j, c := range r.Columns {
			fields[j] = arrow.Field{Name: c.Column, Type: c.Feature.Type.Arrow(), Nullable: true}
		}
		reqs[k] = stores.FetchRequest{SQL: r.Query, KeyColumn: "id", Schema: arrow.NewSchema(fields, nil), Timeout: r.Timeout}
	}
	fetch := func(k, i int) error {
		req := reqs[k]
		req.Keys = batches[i%len(batches)].Column(0)
		rec, err := src.Fetch(ctx, mem, req)
		if err != nil {
			return err
		}
		if rec.NumRows() != 1 {
			return fmt.Errorf("%s: %d rows", SplitTable(k), rec.NumRows())
		}
		rec.Release()
		return nil
	}
	for k := range reqs {
		b.Run("fetch/"+SplitTable(k), func(b *testing.B) {
			percentiles(b, func(i int) error { return fetch(k, i) })
		})
	}
	b.Run("fetch/concurrent", func(b *testing.B) {
		percentiles(b, func(i int) error {
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			for k := range reqs {
				wg.Go(func() { errs[k] = fetch(k, i) })
			}
			wg.Wait()
			return errors.Join(errs...)
		})
	})
	for k, req := range reqs {
		// Source.Fetch's text for one key: the resolver restricted to it.
		q := stores.Restrict(req.SQL, req.Schema, `_r."id" IN ($1)`)
		arrowFloor(b, "arrow/"+SplitTable(k), src.DB(), q, id)
		b.Run("sql/"+SplitTable(k), func(b *testing.B) {
			stmt, err := src.DB().PrepareContext(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			dest := make([]any, req.Schema.NumFields())
			for j := range dest {
				dest[j] = new(any)
			}
			percentiles(b, func(i int) error { return stmt.QueryRowContext(ctx, id(i)).Scan(dest...) })
		})
	}
}

// percentiles times fn(i) for each iteration and reports the p50 and p99
// of the iterations, in µs, and the process's CPU time per iteration
// (cpu-µs/op: every thread, DuckDB's included; on a shared machine it moves
// less than wall time, which waits for other processes).
func percentiles(b *testing.B, fn func(i int) error) {
	durs := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	cpu0, cpuOK := processCPU()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := fn(i); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1e3/float64(len(durs)), "cpu-µs/op")
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds())/1e3, "p99-µs")
}
