package wide

import (
	"context"
	"fmt"
	"strings"
	"testing"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkOneEntity asks one cached entity's 50 or 250 features over
// Flight SQL on loopback, as the floor's flight mode does (a statement:
// GetFlightInfo + DoGet; prepared: DoPut of the id, GetFlightInfo, DoGet),
// served from the in-memory online store. Run with -cpuprofile to see
// where the server's time goes as the width grows (the client shares the
// process).
//
//	go test -tags duckdb_arrow -run '^$' -bench OneEntity -benchtime 2s ./examples/wide/
func BenchmarkOneEntity(b *testing.B) {
	const n, m = 250, 1000
	fx := newFixture(b, memory.DefaultAllocator, n, m)
	addr := serve(b, fx.engine)
	ctx := context.Background()
	if _, err := Warm(ctx, WarmOptions{Addr: addr, Class: CachedClass, Features: n, Entities: m}); err != nil {
		b.Fatal(err)
	}
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for _, width := range []int{50, 250} {
		sql := fmt.Sprintf("SELECT %s FROM %s WHERE id = ", strings.Join(FeatureNames(width), ", "), CachedClass)
		b.Run(fmt.Sprintf("1x%d/statement", width), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				info, err := cl.Execute(ctx, fmt.Sprint(sql, i%m+1))
				if err != nil {
					b.Fatal(err)
				}
				readOne(b, ctx, cl, info)
			}
		})
		b.Run(fmt.Sprintf("1x%d/prepared", width), func(b *testing.B) {
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

// readOne reads every endpoint of info and fails unless they hold one row.
func readOne(b *testing.B, ctx context.Context, cl *flightsql.Client, info *arrowflight.FlightInfo) {
	var rows int64
	for _, ep := range info.Endpoint {
		rdr, err := cl.DoGet(ctx, ep.Ticket)
		if err != nil {
			b.Fatal(err)
		}
		for rdr.Next() {
			rows += rdr.RecordBatch().NumRows()
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			b.Fatal(err)
		}
	}
	if rows != 1 {
		b.Fatalf("%d rows, want 1", rows)
	}
}

// BenchmarkBrowse is a BI tool's first query over Flight SQL on loopback:
// the first 200 entities × 40 features of a class computed from its DuckDB
// table (SQL over features: the entities listed, their features computed,
// DuckDB over the result), statement and JDBC's prepare-then-execute.
//
//	go test -tags duckdb_arrow -run '^$' -bench Browse -benchtime 2s ./examples/wide/
func BenchmarkBrowse(b *testing.B) {
	const n, m = 40, 100_000
	fx := newFixture(b, memory.DefaultAllocator, n, m)
	addr := serve(b, fx.engine)
	ctx := context.Background()
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	sql := fmt.Sprintf("SELECT id, %s FROM %s LIMIT 200", strings.Join(FeatureNames(n), ", "), LiveClass)
	rows := func(info *arrowflight.FlightInfo) int64 {
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			b.Fatal(err)
		}
		defer rdr.Release()
		var got int64
		for rdr.Next() {
			got += rdr.RecordBatch().NumRows()
		}
		if err := rdr.Err(); err != nil {
			b.Fatal(err)
		}
		return got
	}
	b.Run("statement", func(b *testing.B) {
		for b.Loop() {
			info, err := cl.Execute(ctx, sql)
			if err != nil {
				b.Fatal(err)
			}
			if got := rows(info); got != 200 {
				b.Fatalf("%d rows", got)
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		for b.Loop() {
			stmt, err := cl.Prepare(ctx, sql)
			if err != nil {
				b.Fatal(err)
			}
			info, err := stmt.Execute(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if got := rows(info); got != 200 {
				b.Fatalf("%d rows", got)
			}
			stmt.Close(ctx)
		}
	})
}
