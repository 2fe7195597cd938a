package flight

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	example "github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// bulkFeatures are the tutorial's bulk query: twelve features of each
// user_item pair.
var bulkFeatures = []string{
	"item.title", "price_diff", "price_diff_ratio", "affordability_cap", "price_fit",
	"item.times_purchased", "item.most_recent_price", "item.average_price",
	"item.average_rating", "item.total_reviews", "user.id", "user.created_at",
}

// bulkPairs are n deterministic, distinct (for n ≤ 500,000) pairs of the
// generated users 1..1000 and items 1..500.
func bulkPairs(n int) (users, items []string) {
	for i := range n {
		users = append(users, fmt.Sprint(i%1000+1))
		items = append(items, fmt.Sprint((i/1000+i*7)%500+1))
	}
	return users, items
}

// BenchmarkBulkUserItem runs the tutorial's bulk query for 10,000 user_item
// pairs on the generated marketplace: through Flight SQL on loopback (a
// prepared statement, the pairs bound as one parameter batch; each
// iteration is DoPut + GetFlightInfo + DoGet of every endpoint), and in
// process on the same engine, so the two are measured side by side.
func BenchmarkBulkUserItem(b *testing.B) {
	mem := memory.NewGoAllocator()
	src, err := duckdb.Open("")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	if err := example.Generate(ctx, src.DB(), example.Options{}); err != nil {
		b.Fatal(err)
	}
	engine := planner.NewEngine(marketplace(b), sources{"marketplace": src}, mem)
	users, items := bulkPairs(10_000)

	b.Run("flight_sql", func(b *testing.B) {
		srv := NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return example.DefaultAnchor }})
		cl := serve(b, srv)
		var cols []string
		for _, f := range bulkFeatures {
			cols = append(cols, `"`+f+`"`)
		}
		stmt, err := cl.Prepare(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM user_item WHERE user_id = ? AND item_id = ?")
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close(ctx)
		pb := array.NewRecordBuilder(mem, stmt.ParameterSchema())
		pb.Field(0).(*array.StringBuilder).AppendValues(users, nil)
		pb.Field(1).(*array.StringBuilder).AppendValues(items, nil)
		params := pb.NewRecordBatch()
		pb.Release()
		defer params.Release()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			stmt.SetParameters(params)
			info, err := stmt.Execute(ctx)
			if err != nil {
				b.Fatal(err)
			}
			_, recs := fetch(b, ctx, cl, info)
			rows := 0
			for _, r := range recs {
				rows += int(r.NumRows())
			}
			releaseAll(recs)
			if rows != len(users) {
				b.Fatalf("%d rows for %d pairs", rows, len(users))
			}
		}
	})

	b.Run("in_process", func(b *testing.B) {
		var fields []arrow.Field
		var arrs []arrow.Array
		for _, c := range []struct {
			name string
			vals []string
		}{{"user_id", users}, {"item_id", items}} {
			sb := array.NewStringBuilder(mem)
			sb.AppendValues(c.vals, nil)
			arrs = append(arrs, sb.NewArray())
			sb.Release()
			fields = append(fields, arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true})
		}
		in := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(len(users)))
		for _, a := range arrs {
			a.Release()
		}
		defer in.Release()
		var outs []statement.Output
		for _, f := range bulkFeatures {
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: strings.Split(f, ".")}})
		}
		p, err := engine.Prepare(&statement.Statement{Class: engine.Graph().Class("user_item"), Inputs: fields, Outputs: outs})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rec, err := p.Execute(ctx, in, example.DefaultAnchor)
			if err != nil {
				b.Fatal(err)
			}
			if rec.NumRows() != int64(len(users)) || rec.NumCols() != int64(len(bulkFeatures)) {
				b.Fatalf("result %d×%d, want %d×%d", rec.NumRows(), rec.NumCols(), len(users), len(bulkFeatures))
			}
			rec.Release()
		}
	})
}
