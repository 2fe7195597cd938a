package memory

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores/storetest"
)

// The shape of the floor benchmarks: 100,000 entities × 250 float64
// features cached, written 1,000 entities a Set.
const (
	benchEntities = 100_000
	benchFeatures = 250
	benchBatch    = 1_000
)

var benchT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func benchNames(n, step int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("feature_%d", i*step)
	}
	return names
}

// fill writes benchEntities × benchFeatures into a new store.
func fill(b *testing.B) *Store {
	mem := memory.NewGoAllocator()
	rec := storetest.FloatRecord(mem, benchNames(benchFeatures, 1), benchBatch, func(r, i int) float64 { return float64(r*benchFeatures + i) })
	defer rec.Release()
	observed := make([]time.Time, benchBatch)
	for i := range observed {
		observed[i] = benchT0
	}
	ids := make([]int64, benchBatch)
	s := New()
	for start := 0; start < benchEntities; start += benchBatch {
		for i := range ids {
			ids[i] = int64(start + i)
		}
		keys := storetest.Int64Keys(mem, ids...)
		err := s.Set(context.Background(), "User", keys, rec, observed)
		keys.Release()
		if err != nil {
			b.Fatal(err)
		}
	}
	return s
}

var (
	filledOnce  sync.Once
	filledStore *Store
)

// Get of K entities × 50 of the 250 features every entity stores (every
// fifth one), from a store of 100,000 entities.
func BenchmarkGet(b *testing.B) {
	filledOnce.Do(func() { filledStore = fill(b) })
	s := filledStore
	want := storetest.FloatRecord(memory.NewGoAllocator(), benchNames(50, 5), 0, nil)
	defer want.Release()
	for _, k := range []int{1, 100} {
		b.Run(fmt.Sprintf("%dx50", k), func(b *testing.B) {
			mem := memory.NewGoAllocator()
			ids := make([]int64, k)
			for i := range ids {
				ids[i] = int64(i * (benchEntities / k))
			}
			keys := storetest.Int64Keys(mem, ids...)
			defer keys.Release()
			b.ReportAllocs()
			for b.Loop() {
				v, err := s.Get(context.Background(), mem, "User", keys, want.Schema())
				if err != nil {
					b.Fatal(err)
				}
				if v.Values.Column(0).IsNull(k - 1) {
					b.Fatal("a stored value reads as missing")
				}
				v.Release()
			}
		})
	}
}

// What a filled store costs the garbage collector: the heap objects it
// holds (each one the GC marks on every cycle) and the time of one full
// collection with the store live. Run with -benchtime 1x.
func BenchmarkHeap(b *testing.B) {
	var s *Store
	for b.Loop() {
		s = fill(b)
	}
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	runtime.GC()
	gc := time.Since(start)
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	b.ReportMetric(float64(after.HeapObjects), "heap-objects")
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(gc.Microseconds())/1000, "gc-ms")
	b.ReportMetric(float64(after.PauseTotalNs-before.PauseTotalNs)/1e6, "gc-pause-ms")
}
