package offline_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores/offline"
)

// BenchmarkAsOf reads a training set's features from the offline log
// (recompute_features=False): a log of logRows values (entities × 3
// features × observations, one a day), and a spine of spineRows (entity,
// time) rows — one as-of query per run. docs/BENCHMARKS.md records it.
//
//	go test -tags duckdb_arrow -run '^$' -bench AsOf -benchtime 5x ./stores/offline/
func BenchmarkAsOf(b *testing.B) {
	const entities, days = 20_000, 17 // × 3 features ≈ 1M logged values
	for _, store := range []struct {
		name string
		open func(t testing.TB) backend
	}{{"duckdb", duckdbBackend}, {"postgres", postgresBackend}} {
		b.Run(store.name, func(b *testing.B) {
			be := store.open(b)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			rows := make([]offline.Row, 0, entities*days*3)
			for d := range days {
				for e := range entities {
					for _, f := range []string{"a", "b", "c"} {
						rows = append(rows, offline.Row{Class: "user", Key: strconv.Itoa(e), Feature: "user." + f,
							Value: []byte(strconv.Itoa(e*days + d)), Observed: start.Add(time.Duration(d) * 24 * time.Hour), TraceID: "bench"})
					}
				}
			}
			for i := 0; i < len(rows); i += 100_000 {
				if err := be.sink.Write(context.Background(), rows[i:min(i+100_000, len(rows))]); err != nil {
					b.Fatal(err)
				}
			}
			logger := offline.NewLogger(be.sink, offline.Options{})
			defer logger.Close()
			for _, spine := range []int{10_000, 100_000} {
				b.Run(fmt.Sprintf("log=%d/spine=%d", len(rows), spine), func(b *testing.B) {
					mem := memory.NewGoAllocator()
					kb := array.NewInt64Builder(mem)
					at := make([]int64, spine)
					for i := range spine {
						kb.Append(int64((i * 7919) % entities))
						at[i] = start.Add(time.Duration((i*104729)%(days*86400)) * time.Second).UnixMicro()
					}
					keys := kb.NewArray()
					defer keys.Release()
					kb.Release()
					want := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
						{Name: "b", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "c", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
					b.ResetTimer()
					for range b.N {
						got, err := logger.AsOf(context.Background(), mem, "user", keys, at, want)
						if err != nil {
							b.Fatal(err)
						}
						got.Release()
					}
					b.ReportMetric(float64(spine)*float64(b.N)/b.Elapsed().Seconds(), "spine-rows/s")
				})
			}
		})
	}
}
