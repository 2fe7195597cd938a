package planner_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// The benchmarks of docs/BENCHMARKS.md: the online path (one entity, every
// scalar feature of its class, plan prepared once) against its 100 µs p50
// goal, and the DuckDB round trip it is made of. The tutorial's bulk query
// is in flight/bench_test.go, over Flight SQL and in process side by side.

// scalarOutputs requests every Scalar feature of class, windows included.
func scalarOutputs(b *testing.B, g *features.Graph, class string) []statement.Output {
	b.Helper()
	c := g.Class(class)
	if c == nil {
		b.Fatalf("no class %s", class)
	}
	var outs []statement.Output
	for _, f := range c.Features {
		if f.Kind == features.Scalar {
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: []string{f.Name}}})
		}
	}
	return outs
}

// stringInputs is a record of string columns named by cols.
func stringInputs(mem memory.Allocator, cols map[string][]string, order ...string) arrow.RecordBatch {
	var fields []arrow.Field
	var arrs []arrow.Array
	for _, name := range order {
		sb := array.NewStringBuilder(mem)
		sb.AppendValues(cols[name], nil)
		arrs = append(arrs, sb.NewArray())
		sb.Release()
		fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(arrs[0].Len()))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// reportPercentiles reports the p50 and p99 of the timed executions.
func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkOnlineOne is one entity × every scalar feature of User (its
// fields, full_name, the review and purchase aggregations and their
// windows) and of Item, with the plan prepared outside the loop: the
// online serving path. "computed" reads DuckDB on every execution;
// "cached" serves every feature from the in-memory online store (a
// staleness of one hour for each, as a query-level override; the store is
// warmed by the first execution).
func BenchmarkOnlineOne(b *testing.B) {
	src, g := markettest.Fixture(b)
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	for _, tc := range []struct{ class, key string }{{"user", "50"}, {"item", "200"}} {
		for _, cached := range []bool{false, true} {
			name := tc.class + "/computed"
			var opts []planner.EngineOption
			run := planner.RunOptions{Now: marketplace.DefaultAnchor}
			outs := scalarOutputs(b, g, tc.class)
			if cached {
				name = tc.class + "/cached"
				opts = append(opts, planner.WithOnlineStore(onlinemem.New()))
				run.Staleness = map[string]time.Duration{}
				for _, o := range outs {
					run.Staleness[tc.class+"."+o.Expr.(*expr.Ref).Path[0]] = time.Hour
				}
			}
			e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, opts...)
			b.Run(name, func(b *testing.B) {
				in := stringInputs(mem, map[string][]string{"id": {tc.key}}, "id")
				defer in.Release()
				p, err := e.Prepare(&statement.Statement{Class: e.Graph().Class(tc.class), Inputs: in.Schema().Fields(), Outputs: outs})
				if err != nil {
					b.Fatal(err)
				}
				warm, err := p.Run(ctx, in, run)
				if err != nil {
					b.Fatal(err)
				}
				warm.Release()
				e.Flush()
				durs := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					start := time.Now()
					res, err := p.Run(ctx, in, run)
					if err != nil {
						b.Fatal(err)
					}
					res.Release()
					durs = append(durs, time.Since(start))
				}
				b.StopTimer()
				b.ReportMetric(float64(len(outs)), "features")
				reportPercentiles(b, durs)
			})
		}
	}
}

// BenchmarkFetchOne is the DuckDB round trip of the online path alone: one
// Source.Fetch of a resolver restricted to one key, for each fetch the
// User query makes (its row, its reviews, its purchases) and Item's row.
func BenchmarkFetchOne(b *testing.B) {
	src, g := markettest.Fixture(b)
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	resolver := func(class string) *features.SQLResolver {
		for _, r := range g.SQLResolvers {
			if r.Resolves.Table == class {
				return r
			}
		}
		b.Fatalf("no SQL resolver for %s", class)
		return nil
	}
	for _, tc := range []struct{ name, class, keyColumn, key string }{
		{"user_by_id", "user", "id", "50"},
		{"reviews_by_user_id", "review", "user_id", "50"},
		{"item_prices_by_user_id", "item_price", "user_id", "50"},
		{"item_by_id", "item", "id", "200"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := resolver(tc.class)
			kb := array.NewStringBuilder(mem)
			kb.Append(tc.key)
			keys := kb.NewArray()
			kb.Release()
			defer keys.Release()
			req := stores.FetchRequest{SQL: r.Query, KeyColumn: tc.keyColumn, Keys: keys}
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				rec, err := src.Fetch(ctx, mem, req)
				if err != nil {
					b.Fatal(err)
				}
				rec.Release()
				durs = append(durs, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, durs)
		})
	}
}

// BenchmarkPrepareCached is the plan-cache lookup every query pays: a
// statement as a front end builds it (its key computed once, when it is
// built) looked up among 1,000 cached plans. Goal: under 2 µs.
func BenchmarkPrepareCached(b *testing.B) {
	_, g := markettest.Fixture(b)
	e := planner.NewEngine(g, nil, nil)
	user := g.Class("user")
	in := []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}
	var stmts []*statement.Statement
	for i := range 1000 {
		outs := append(scalarOutputs(b, g, "user"), statement.Output{
			Expr: &expr.Binary{Op: "+", L: &expr.Ref{Path: []string{"review_count__604800__"}}, R: &expr.Literal{Value: int64(i)}}, Name: "r"})
		st, err := statement.New(user, in, outs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Prepare(st); err != nil {
			b.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	i := 0
	for b.Loop() {
		if _, err := e.Prepare(stmts[i%len(stmts)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(stmts[0].Outputs)), "outputs")
}
