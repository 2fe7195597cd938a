package wide

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/observe"
	"github.com/fletch-engine/fletch/planner"
)

// BenchmarkObserved asks one cached entity's 50 features over Flight SQL on
// loopback, as BenchmarkOneEntity does, of two servers over one warmed
// online store: one plain ("off"), one with what `fletch serve
// --http-listen` adds ("on": the Prometheus metrics of the server and the
// engine, docs/OPERATIONS.md). The trace id and the log's level check are
// in both: they are not optional. Alternate -count runs of both to compare
// them on a shared machine:
//
//	go test -tags duckdb_arrow -run '^$' -bench Observed -benchtime 2s -count 4 ./examples/wide/
func BenchmarkObserved(b *testing.B) {
	const n, m = 50, 1000
	fx := newFixture(b, memory.DefaultAllocator, n, m)
	ctx := context.Background()
	if _, err := Warm(ctx, WarmOptions{Addr: serve(b, fx.engine), Class: CachedClass, Features: n, Entities: m}); err != nil {
		b.Fatal(err)
	}
	metrics := observe.NewMetrics()
	observed := planner.NewEngine(fx.graph, fx.env, memory.DefaultAllocator, planner.WithOnlineStore(fx.env.OnlineStore()), planner.WithObserver(metrics))
	metrics.PlanCache(observed.PlanCacheStats)
	srv := flight.NewServer(observed, flight.Options{Observer: metrics})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ctx, lis)
	b.Cleanup(srv.GracefulStop)
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE id = ", strings.Join(FeatureNames(n), ", "), CachedClass)
	for _, mode := range []struct{ name, addr string }{{"off", serve(b, fx.engine)}, {"on", lis.Addr().String()}} {
		cl, err := flightsql.NewClient(mode.addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		b.Run("1x50/statement/metrics="+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				info, err := cl.Execute(ctx, fmt.Sprint(sql, i%m+1))
				if err != nil {
					b.Fatal(err)
				}
				readOne(b, ctx, cl, info)
			}
		})
		b.Run("1x50/prepared/metrics="+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			stmt, err := cl.Prepare(ctx, sql+"?")
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close(ctx)
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
