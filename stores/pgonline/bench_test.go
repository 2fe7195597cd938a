package pgonline

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/redis"
	"github.com/fletch-engine/fletch/stores/storetest"
)

// BenchmarkStores: Get and Set of K entities × F float64 features on
// this store and, in the same run, on the Redis store (the test servers of
// scripts/services), every entity storing those F. A Set writes values
// newer than the stored ones, so every write merges. 100 × 250 is a
// write-back of the wide repository (examples/wide).
//
//	go test -run '^$' -bench BenchmarkStores -benchmem ./stores/pgonline
func BenchmarkStores(b *testing.B) {
	opens := []struct {
		name string
		open func(b *testing.B) stores.OnlineStore
	}{
		{"postgres", func(b *testing.B) stores.OnlineStore { return open(b) }},
		{"redis", func(b *testing.B) stores.OnlineStore {
			addr := storetest.Server(b, "FLETCH_TEST_REDIS")
			s, err := redis.Open(context.Background(), redis.Options{Addrs: []string{addr}, Prefix: fmt.Sprintf("fletchbench:%d:", time.Now().UnixNano())})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() }) // a few hundred small keys are left behind
			return s
		}},
	}
	for _, shape := range [][2]int{{1, 50}, {100, 50}, {100, 250}} {
		k, features := shape[0], shape[1]
		names := make([]string, features)
		for i := range names {
			names[i] = fmt.Sprintf("f%d", i)
		}
		for _, st := range opens {
			b.Run(fmt.Sprintf("%dx%d/%s", k, features, st.name), func(b *testing.B) {
				ctx := context.Background()
				mem := memory.NewGoAllocator()
				s := st.open(b)
				ids := make([]int64, k)
				observed := make([]time.Time, k)
				for i := range ids {
					ids[i] = int64(i)
					observed[i] = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
				}
				keys := storetest.Int64Keys(mem, ids...)
				defer keys.Release()
				rec := storetest.FloatRecord(mem, names, k, func(r, i int) float64 { return float64(r*features + i) })
				defer rec.Release()
				if err := s.Set(ctx, "User", keys, rec, observed); err != nil {
					b.Fatal(err)
				}
				b.Run("get", func(b *testing.B) {
					defer reportCPU(b)()
					for b.Loop() {
						v, err := s.Get(ctx, mem, "User", keys, rec.Schema())
						if err != nil {
							b.Fatal(err)
						}
						v.Release()
					}
				})
				b.Run("set", func(b *testing.B) {
					defer reportCPU(b)()
					for b.Loop() {
						for i := range observed {
							observed[i] = observed[i].Add(time.Second)
						}
						if err := s.Set(ctx, "User", keys, rec, observed); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// reportCPU adds this process's CPU time per operation (every goroutine,
// GC included) to a benchmark's figures; the server's is not in it.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
