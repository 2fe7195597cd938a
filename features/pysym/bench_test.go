package pysym_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// BenchmarkComputeTotal runs the talk's compute_total compiled to
// expressions over 1M input rows through the planner, and reports
// CPython's time for the same function called row by row
// (testdata/bench_compute_total.py, same run) beside fletch's, both in CPU
// time (docs/BENCHMARKS.md §12), in two shapes:
//
//   - batch: one Plan.Run of all 1M rows, whose input columns (24 MB of
//     floats) were last read an iteration ago: every pass's first read of
//     a column waits on memory.
//   - served: the 1M rows as the Flight server runs a big input, chunks of
//     server.spine.chunk_rows (flight.DefaultSpineChunkRows) through
//     Plan.Run, each chunk's columns written just before it runs, as the
//     source's decoding writes a resolver's inputs (a copy here, not timed).
func BenchmarkComputeTotal(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	src, err := os.ReadFile("testdata/compute_total_flat.py")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "repo.py"), src, 0o644); err != nil {
		b.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	r := rand.New(rand.NewPCG(1, 1))
	ids := array.NewInt64Builder(mem)
	sub := array.NewFloat64Builder(mem)
	disc := array.NewFloat64Builder(mem)
	rate := array.NewFloat64Builder(mem)
	tax := array.NewBooleanBuilder(mem)
	for i := 0; i < n; i++ {
		ids.Append(int64(i))
		sub.Append(r.Float64() * 200)
		if i%2 == 1 {
			disc.Append(r.Float64() * 20)
		} else {
			disc.AppendNull()
		}
		if i%10 == 0 {
			rate.AppendNull()
		} else {
			rate.Append(0.05 + r.Float64()*0.1)
		}
		tax.Append(i%5 != 0)
	}
	cols := []arrow.Array{ids.NewArray(), sub.NewArray(), disc.NewArray(), rate.NewArray(), tax.NewArray()}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "subtotal", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "discount", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, {Name: "sales_tax_rate", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "taxable", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	in := array.NewRecordBatch(schema, cols, n)
	defer in.Release()
	e := planner.NewEngine(g, markettest.OneSource{}, mem)
	st := &statement.Statement{Class: g.Class("transaction"), Inputs: schema.Fields(),
		Outputs: []statement.Output{{Name: "total", Expr: &expr.Ref{Path: []string{"total"}}}}}
	plan, err := e.Prepare(st)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	run := func(b *testing.B, in arrow.RecordBatch) {
		res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		res.Release()
	}
	cpython := func(b *testing.B) float64 {
		out, err := exec.Command(python(b), "testdata/bench_compute_total.py", strconv.Itoa(n)).Output()
		if err != nil {
			b.Logf("CPython: %v", err)
			return 0
		}
		ns, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		return ns
	}
	// report puts the run's CPU (not wall) time per row beside CPython's:
	// the benchmark machine is shared, and both sides are measured the
	// same way (CPython with time.process_time).
	report := func(b *testing.B, cpuNs int64) {
		b.StopTimer()
		perRow := float64(cpuNs) / float64(b.N) / n
		b.ReportMetric(perRow, "cpu-ns/row")
		if ns := cpython(b); ns > 0 {
			b.ReportMetric(ns, "cpython-cpu-ns/row")
			b.ReportMetric(ns/perRow, "speedup")
		}
	}
	b.Run("batch", func(b *testing.B) {
		runtime.GC()
		cpu0 := cpuTime()
		for range b.N {
			run(b, in)
		}
		report(b, cpuTime()-cpu0)
	})
	b.Run("served", func(b *testing.B) {
		per := int64(flight.DefaultSpineChunkRows)
		chunk := newChunk(in.Schema(), per)
		runtime.GC()
		var cpu int64
		for range b.N {
			for lo := int64(0); lo < n; lo += per {
				rec := chunk.fill(in, lo, min(lo+per, n))
				cpu0 := cpuTime()
				run(b, rec)
				cpu += cpuTime() - cpu0
				rec.Release()
			}
		}
		report(b, cpu)
	})
}

// chunkBuffers hold one chunk of the input, rewritten for each chunk: its
// columns just written, as a source's decoding leaves a resolver's inputs
// (and no garbage for the collector to run on during the timed runs).
type chunkBuffers struct {
	schema *arrow.Schema
	vals   [][]byte // per column: values
	valid  [][]byte // per column: validity
}

func newChunk(schema *arrow.Schema, rows int64) *chunkBuffers {
	c := &chunkBuffers{schema: schema}
	for _, f := range schema.Fields() {
		width := int64(8)
		if f.Type.ID() == arrow.BOOL {
			width = 0
		}
		c.vals = append(c.vals, make([]byte, max(rows*width, (rows+7)/8)))
		c.valid = append(c.valid, make([]byte, (rows+7)/8))
	}
	return c
}

// fill copies rows [lo, hi) of in into the buffers and returns them as a
// record.
func (c *chunkBuffers) fill(in arrow.RecordBatch, lo, hi int64) arrow.RecordBatch {
	n := int(hi - lo)
	cols := make([]arrow.Array, in.NumCols())
	for i, col := range in.Columns() {
		d := col.Data()
		off := d.Offset() + int(lo)
		var valid *memory.Buffer
		nulls := 0
		if col.NullN() > 0 {
			bitutil.CopyBitmap(d.Buffers()[0].Bytes(), off, n, c.valid[i], 0)
			valid = memory.NewBufferBytes(c.valid[i])
			nulls = n - bitutil.CountSetBits(c.valid[i], 0, n)
		}
		if col.DataType().ID() == arrow.BOOL {
			bitutil.CopyBitmap(d.Buffers()[1].Bytes(), off, n, c.vals[i], 0)
		} else {
			copy(c.vals[i], d.Buffers()[1].Bytes()[off*8:(off+n)*8])
		}
		data := array.NewData(col.DataType(), n, []*memory.Buffer{valid, memory.NewBufferBytes(c.vals[i])}, nil, nulls, 0)
		cols[i] = array.MakeFromData(data)
		data.Release()
	}
	rec := array.NewRecordBatch(c.schema, cols, int64(n))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

// cpuTime is the process's user and system CPU time, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkLoad500Resolvers loads a repository of 500 resolvers, each
// with branches, an early return, a helper call and an f-string: the
// symbolic interpretation happens here, at load, never per query.
func BenchmarkLoad500Resolvers(b *testing.B) {
	dir := repo500(b)
	b.ResetTimer()
	for range b.N {
		g, err := features.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(g.PyResolvers) != 500 || g.PyResolvers[499].Mode != features.PyExpression {
			b.Fatalf("%d resolvers, the last %s: %s", len(g.PyResolvers), g.PyResolvers[499].Mode, g.PyResolvers[499].Why)
		}
	}
}

// BenchmarkPrepare500Resolvers prepares one statement of the 1,000
// outputs of BenchmarkLoad500Resolvers' repository, in a new engine each
// time (no plan cache): what binding compiled expressions costs.
func BenchmarkPrepare500Resolvers(b *testing.B) {
	g, err := features.Load(repo500(b))
	if err != nil {
		b.Fatal(err)
	}
	st := &statement.Statement{Class: g.Class("row"), Inputs: []arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "a", Type: arrow.PrimitiveTypes.Int64},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64}, {Name: "s", Type: arrow.BinaryTypes.String}}}
	for i := range 500 {
		st.Outputs = append(st.Outputs, statement.Output{Expr: &expr.Ref{Path: []string{fmt.Sprintf("out_%d", i)}}},
			statement.Output{Expr: &expr.Ref{Path: []string{fmt.Sprintf("tag_%d", i)}}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e := planner.NewEngine(g, markettest.OneSource{}, memory.NewGoAllocator())
		if _, err := e.Prepare(st); err != nil {
			b.Fatal(err)
		}
	}
}

// repo500 writes a repository of 500 resolvers into a temporary folder.
func repo500(b *testing.B) string {
	var src strings.Builder
	src.WriteString("from chalk.features import Features, features, online\n\n\ndef clamp(v, lo=0.0, hi=100.0):\n    return max(lo, min(v, hi))\n\n\n@features\nclass Row:\n    id: int\n    a: int | None\n    x: float | None\n    s: str | None\n")
	for i := range 500 {
		fmt.Fprintf(&src, "    out_%d: float | None\n    tag_%d: str | None\n", i, i)
	}
	for i := range 500 {
		fmt.Fprintf(&src, `

@online
def r_%d(a: Row.a, x: Row.x, s: Row.s) -> Features[Row.out_%d, Row.tag_%d]:
    if a is None or x is None:
        return None, "missing"
    y = x * %d.5 - a // 3
    if y > %d:
        y = clamp(y, hi=%d.0)
    elif s and s.startswith("v"):
        y = -y
    return round(y, 2), f"{s or ''}:{a %% 7}"
`, i, i, i, i%13, i, i+50)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "repo.py"), []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}
