package relational_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/examples/wide"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// BenchmarkScan measures scans of the wide repository's live_user (every
// feature computed from its DuckDB table on each query) through the
// relational engine: a browse (LIMIT 200 × 40 features), and streaming
// every entity × 20 features at two sizes (rows/s, and the peak Go heap:
// flat when memory is bounded by the page, not the entities), beside
// DuckDB reading the same columns of the same table. FLETCH_SCAN_ENTITIES
// sets the larger size (default 1,000,000).
func BenchmarkScan(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("FLETCH_SCAN_ENTITIES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	if err := wide.WriteRepo(dir, 40); err != nil {
		b.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	src, err := duckdb.Open("")
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	if err := wide.LoadDuckDB(ctx, src.DB(), 40, n); err != nil {
		b.Fatal(err)
	}
	pe := planner.NewEngine(g, markettest.OneSource{Src: src}, memory.DefaultAllocator)
	defer pe.Close()
	e, err := relational.New(pe, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cols := func(k int) string { return strings.Join(wide.FeatureNames(k), ", ") }

	run := func(b *testing.B, text string) (rows int64) {
		_, rel, err := sql.ParseQuery(g, text)
		if err != nil || rel == nil {
			b.Fatalf("%s: %v", text, err)
		}
		q, err := e.Prepare(ctx, rel)
		if err != nil {
			b.Fatal(err)
		}
		err = q.Run(ctx, time.Now(), func(rec arrow.RecordBatch) error {
			rows += rec.NumRows()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return rows
	}
	b.Run("browse/limit200x40", func(b *testing.B) {
		q := "SELECT id, " + cols(40) + " FROM live_user LIMIT 200"
		for b.Loop() {
			if got := run(b, q); got != 200 {
				b.Fatalf("%d rows", got)
			}
		}
	})
	for _, size := range []int{n / 4, n} {
		q := fmt.Sprintf("SELECT id, %s FROM live_user WHERE id <= %d", cols(20), size)
		b.Run(fmt.Sprintf("stream/%dx20", size), func(b *testing.B) {
			peak := heapPeak()
			var rows int64
			for b.Loop() {
				rows += run(b, q)
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
		})
		b.Run(fmt.Sprintf("duckdb/%dx20", size), func(b *testing.B) {
			var rows int64
			for b.Loop() {
				r, err := src.DB().QueryContext(ctx, fmt.Sprintf("SELECT id, %s FROM %s WHERE id <= %d", cols(20), wide.Table, size))
				if err != nil {
					b.Fatal(err)
				}
				vals := make([]any, 21)
				ptrs := make([]any, 21)
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				for r.Next() {
					if err := r.Scan(ptrs...); err != nil {
						b.Fatal(err)
					}
					rows++
				}
				r.Close()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// heapPeak samples the Go heap in use every few milliseconds from a
// collection on; the function it returns stops sampling and answers the
// peak in bytes.
func heapPeak() func() uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}
