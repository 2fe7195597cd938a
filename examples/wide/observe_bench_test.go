package wide

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/observe"
	"github.com/fletch-engine/fletch/planner"
)

// BenchmarkObserved asks one cached entity's 50 features over Flight SQL on
// loopback, as BenchmarkOneEntity does, of servers over one warmed online
// store: one plain ("off"); one with what `fletch serve --http-listen`
// adds ("metrics": the Prometheus metrics of the server and the engine,
// docs/OPERATIONS.md); the metrics and OpenTelemetry traces exported in
// batches to an exporter that drops them, every query sampled
// ("trace=1") or one in a hundred ("trace=0.01"); and the plain server
// with a per-query memory budget ("budget": server.limits.max_query_memory
// 256MiB). The trace id and the log's level check are in all: they are
// not optional. Alternate -count runs to compare them on a shared
// machine:
//
//	go test -tags duckdb_arrow -run '^$' -bench Observed -benchtime 2s -count 4 ./examples/wide/
func BenchmarkObserved(b *testing.B) {
	// reportCPU reports the process's CPU time per iteration (client and
	// server, every thread): on a shared machine, a steadier measure than
	// ns/op of what the observers cost.
	reportCPU := func(b *testing.B) func() {
		cpu0, ok0 := processCPU()
		return func() {
			if cpu1, ok1 := processCPU(); ok0 && ok1 && b.N > 0 {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		}
	}
	const n, m = 50, 1000
	fx := newFixture(b, memory.DefaultAllocator, n, m)
	ctx := context.Background()
	if _, err := Warm(ctx, WarmOptions{Addr: serve(b, fx.engine), Class: CachedClass, Features: n, Entities: m}); err != nil {
		b.Fatal(err)
	}
	server := func(metrics bool, ratio float64, budget int64) string {
		var engineOpts []planner.EngineOption
		var opts flight.Options
		if metrics {
			m := observe.NewMetrics()
			engineOpts = append(engineOpts, planner.WithObserver(m))
			opts.Observer = m
		}
		if ratio > 0 {
			tp := observe.ExportingProvider(tracetest.NewNoopExporter(), observe.Tracing{SampleRatio: ratio})
			b.Cleanup(func() { tp.Shutdown(context.Background()) })
			engineOpts = append(engineOpts, planner.WithTracerProvider(tp))
			opts.TracerProvider = tp
		}
		if budget > 0 {
			engineOpts = append(engineOpts, planner.WithMaxQueryMemory(budget))
		}
		engine := planner.NewEngine(fx.graph, fx.env, memory.DefaultAllocator, append(engineOpts, planner.WithOnlineStore(fx.env.OnlineStore()))...)
		srv := flight.NewServer(engine, opts)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ctx, lis)
		b.Cleanup(srv.GracefulStop)
		return lis.Addr().String()
	}
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE id = ", strings.Join(FeatureNames(n), ", "), CachedClass)
	for _, mode := range []struct{ name, addr string }{
		{"off", serve(b, fx.engine)},
		{"metrics", server(true, 0, 0)},
		{"trace=1", server(true, 1, 0)},
		{"trace=0.01", server(true, 0.01, 0)},
		{"budget", server(false, 0, 256<<20)},
	} {
		cl, err := flightsql.NewClient(mode.addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		b.Run("1x50/statement/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				info, err := cl.Execute(ctx, fmt.Sprint(sql, i%m+1))
				if err != nil {
					b.Fatal(err)
				}
				readOne(b, ctx, cl, info)
			}
		})
		b.Run("1x50/prepared/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			stmt, err := cl.Prepare(ctx, sql+"?")
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close(ctx)
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				ids := idBatch(memory.DefaultAllocator, []int64{int64(i%m + 1)})
				stmt.SetParameters(ids)
				info, err := stmt.Execute(ctx)
				ids.Release()
				if err != nil {
					b.Fatal(err)
				}
				readOne(b, ctx, cl, info)
			}
		})
	}
}
