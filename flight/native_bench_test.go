package flight

import (
	"context"
	"encoding/json"
	"slices"
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
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// nativeBulkFeatures are twenty user_item features: the tutorial's bulk
// query and eight more reaching through both relations.
var nativeBulkFeatures = append(slices.Clone(bulkFeatures),
	"user.full_name", "user.review_count__604800__", "user.average_rating_given",
	"item.review_count__2592000__", "item.purchase_count__604800__", "item.lowest_price",
	"item.rating_stddev", "item.is_discounted")

// oneEntityFeatures are the single-entity query, the same through both
// front ends.
var oneEntityFeatures = []string{"full_name", "email", "review_count__604800__", "review_count__2592000__", "average_rating_given"}

// latencies records each iteration's wall time and reports its median.
type latencies []time.Duration

func (l *latencies) time(fn func()) {
	t := time.Now()
	fn()
	*l = append(*l, time.Since(t))
}

func (l latencies) report(b *testing.B) {
	slices.Sort(l)
	if len(l) > 0 {
		b.ReportMetric(float64(l[len(l)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkNative measures the native feature query over real loopback
// gRPC on the generated marketplace: 10,000 user_item rows × 20 features in
// one exchange, and one entity through the native query beside the same
// query as a Flight SQL statement (GetFlightInfo + DoGet) in the same run.
func BenchmarkNative(b *testing.B) {
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
	engine := planner.NewEngine(marketplace(b), sources{"marketplace": src}, mem, planner.WithOnlineStore(onlinemem.New()))
	srv := NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return example.DefaultAnchor }})
	cl := serve(b, srv)

	users, items := bulkPairs(10_000)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_item.user_id", Type: arrow.BinaryTypes.String},
		{Name: "user_item.item_id", Type: arrow.BinaryTypes.String},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	rb.Field(0).(*array.StringBuilder).AppendValues(users, nil)
	rb.Field(1).(*array.StringBuilder).AppendValues(items, nil)
	in := rb.NewRecordBatch()
	rb.Release()
	defer in.Release()

	// bulk times cmd over the 10,000 rows, each answer checked for its
	// size.
	bulk := func(b *testing.B, cmd string, cols int) {
		var lat latencies
		b.ResetTimer()
		for b.Loop() {
			lat.time(func() {
				a, err := exchange(ctx, mem, cl, cmd, schema, in)
				if err != nil {
					b.Fatal(err)
				}
				if a.summary.Rows != 10_000 || a.schema.NumFields() != cols {
					b.Fatalf("%d rows × %d columns", a.summary.Rows, a.schema.NumFields())
				}
				a.release()
			})
		}
		lat.report(b)
	}

	b.Run("bulk_10000x20", func(b *testing.B) {
		outs, _ := json.Marshal(nativeBulkFeatures)
		bulk(b, `{"query": {"outputs": `+string(outs)+`}}`, 20)
	})

	// The same query with every feature served from the in-memory online
	// store (a staleness override for all of them; warmed by a first run):
	// what the native query costs when the engine has nothing to compute.
	b.Run("bulk_10000x20_cached", func(b *testing.B) {
		outs, _ := json.Marshal(nativeBulkFeatures)
		// The marketplace's features have no max_staleness of their own: one
		// override per feature (a "*" override only changes features that
		// have one).
		staleness := map[string]string{}
		for _, f := range nativeBulkFeatures {
			if !strings.Contains(f, ".") {
				f = "user_item." + f
			}
			staleness[f] = "infinity"
		}
		st, _ := json.Marshal(staleness)
		cmd := `{"query": {"outputs": ` + string(outs) + `, "staleness": ` + string(st) + `, "meta": true}}`
		a, err := exchange(ctx, mem, cl, cmd, schema, in)
		if err != nil {
			b.Fatal(err)
		}
		a.release()
		engine.Flush()
		bulk(b, cmd, 40) // 20 outputs and their hit columns
	})

	// The engine alone on the same rows: what the wire adds is the difference.
	b.Run("bulk_10000x20_in_process", func(b *testing.B) {
		var outs []statement.Output
		for _, f := range nativeBulkFeatures {
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: strings.Split(f, ".")}})
		}
		fields := schema.Fields()
		for i := range fields {
			fields[i].Name = strings.TrimPrefix(fields[i].Name, "user_item.")
		}
		named := arrow.NewSchema(fields, nil)
		p, err := engine.Prepare(&statement.Statement{Class: engine.Graph().Class("user_item"), Inputs: named.Fields(), Outputs: outs})
		if err != nil {
			b.Fatal(err)
		}
		rows := array.NewRecordBatch(named, in.Columns(), in.NumRows())
		defer rows.Release()
		for b.Loop() {
			res, err := p.Run(ctx, rows, planner.RunOptions{Now: example.DefaultAnchor})
			if err != nil {
				b.Fatal(err)
			}
			res.Release()
		}
	})

	// One entity through each protocol: the native query is one DoExchange,
	// the statement GetFlightInfo + DoGet.
	oneNative := func(b *testing.B, cmd string, in arrow.RecordBatch) {
		var lat latencies
		b.ResetTimer()
		for b.Loop() {
			lat.time(func() {
				a, err := exchange(ctx, mem, cl, cmd, in.Schema(), in)
				if err != nil {
					b.Fatal(err)
				}
				if a.summary.Rows != 1 {
					b.Fatalf("%d rows", a.summary.Rows)
				}
				a.release()
			})
		}
		lat.report(b)
	}
	oneStatement := func(b *testing.B, q string) {
		var lat latencies
		b.ResetTimer()
		for b.Loop() {
			lat.time(func() {
				info, err := cl.Execute(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				_, recs := fetch(b, ctx, cl, info)
				if len(recs) != 1 || recs[0].NumRows() != 1 {
					b.Fatalf("%d batches", len(recs))
				}
				releaseAll(recs)
			})
		}
		lat.report(b)
	}

	user50 := stringBatch(mem, "user.id", "50")
	defer user50.Release()
	b.Run("one_entity_native", func(b *testing.B) {
		outs, _ := json.Marshal(oneEntityFeatures)
		oneNative(b, `{"query": {"outputs": `+string(outs)+`}}`, user50)
	})
	b.Run("one_entity_flight_sql_statement", func(b *testing.B) {
		oneStatement(b, "SELECT "+strings.Join(oneEntityFeatures, ", ")+" FROM user WHERE id = '50'")
	})

	// One feature served from the online store (item.genre_from_llm has
	// max_staleness infinity; the first call computes and writes it back):
	// the engine does one Get, so what is left is each protocol's own cost.
	// cmd/fletchload measures the same pair open-loop against a server.
	item50 := stringBatch(mem, "item.id", "50")
	defer item50.Release()
	cachedSQL := "SELECT genre_from_llm FROM item WHERE id = '50'"
	info, err := cl.Execute(ctx, cachedSQL)
	if err != nil {
		b.Fatal(err)
	}
	_, recs := fetch(b, ctx, cl, info)
	releaseAll(recs)
	engine.Flush()
	b.Run("one_cached_native", func(b *testing.B) {
		oneNative(b, `{"query": {"outputs": ["genre_from_llm"]}}`, item50)
	})
	b.Run("one_cached_flight_sql_statement", func(b *testing.B) {
		oneStatement(b, cachedSQL)
	})
}
