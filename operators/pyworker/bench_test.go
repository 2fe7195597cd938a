package pyworker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators/pyworker"
)

// benchSrc is the cheapest resolver (what a call costs beyond the
// function) and a typical one (a library call over a string).
const benchSrc = `import hashlib

from chalk import online
from chalk.features import features


@features
class T:
    id: int
    s: str
    same: int
    digest: str


@online
def same(id: T.id) -> T.same:
    return id


@online
def digest(id: T.id, s: T.s) -> T.digest:
    return hashlib.sha1(s.encode()).hexdigest()[:8] + str(id)
`

var (
	benchSame   = &pyworker.Function{File: "bench.py", Name: "same", Params: []string{"id"}, Outputs: []arrow.Field{{Name: "same", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}}
	benchDigest = &pyworker.Function{File: "bench.py", Name: "digest", Params: []string{"id", "s"}, Outputs: []arrow.Field{{Name: "digest", Type: arrow.BinaryTypes.String, Nullable: true}}}
)

func benchBatch(fn *pyworker.Function, n int) arrow.RecordBatch {
	mem := memory.DefaultAllocator
	ib := array.NewInt64Builder(mem)
	defer ib.Release()
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	for i := range n {
		ib.Append(int64(i))
		sb.Append(fmt.Sprintf("user-%d@example.com", i))
	}
	ids, strs := ib.NewArray(), sb.NewArray()
	defer ids.Release()
	defer strs.Release()
	cols := []arrow.Array{ids, strs}[:len(fn.Params)]
	fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}[:len(fn.Params)]
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
}

// BenchmarkCall is one call of a batch of rows in one worker, after the
// worker started: the fallback's cost per batch (ns/op) and per row.
func BenchmarkCall(b *testing.B) {
	p := newPool(b, pyworker.Config{Dir: benchRepo(b), Workers: 1}, nil)
	for _, fn := range []*pyworker.Function{benchSame, benchDigest} {
		for _, n := range []int{1, 100, 10000} {
			b.Run(fmt.Sprintf("%s/rows=%d", fn.Name, n), func(b *testing.B) {
				callBench(b, p, fn, n)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
}

// BenchmarkThroughput is calls from many goroutines over a pool of 2
// workers: what the fallback sustains (rows/s).
func BenchmarkThroughput(b *testing.B) {
	p := newPool(b, pyworker.Config{Dir: benchRepo(b), Workers: 2}, nil)
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("digest/workers=2/rows=%d", n), func(b *testing.B) {
			in := benchBatch(benchDigest, n)
			defer in.Release()
			warm(b, p, benchDigest, in)
			b.SetParallelism(2) // 2×GOMAXPROCS callers: the workers are never idle
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := p.Call(context.Background(), benchDigest, in)
					if err != nil {
						b.Error(err)
						return
					}
					res.Record.Release()
				}
			})
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func callBench(b *testing.B, p *pyworker.Pool, fn *pyworker.Function, n int) {
	in := benchBatch(fn, n)
	defer in.Release()
	warm(b, p, fn, in)
	b.ResetTimer()
	for b.Loop() {
		res, err := p.Call(context.Background(), fn, in)
		if err != nil {
			b.Fatal(err)
		}
		res.Record.Release()
	}
}

// warm starts the workers and imports the module before timing.
func warm(b *testing.B, p *pyworker.Pool, fn *pyworker.Function, in arrow.RecordBatch) {
	for range p.Config().Workers * 2 {
		res, err := p.Call(context.Background(), fn, in)
		if err != nil {
			b.Fatal(err)
		}
		res.Record.Release()
	}
}

func benchRepo(b *testing.B) string {
	return writeRepo(b, map[string]string{"bench.py": benchSrc})
}
