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
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// BenchmarkComputeTotal runs the talk's compute_total compiled to
// expressions over 1M input rows through the planner, and reports
// CPython's time for the same function called row by row
// (testdata/bench_compute_total.py, same run) as cpython-ns/row beside
// fletch's ns/row (docs/BENCHMARKS.md).
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
	runtime.GC()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		res.Release()
	}
	b.StopTimer()
	// CPU time, not wall time: the benchmark machine is shared, and both
	// sides are measured the same way (CPython with time.process_time).
	cpuNs := float64(cpuTime()-cpu0) / float64(b.N) / n
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "wall-ns/row")
	b.ReportMetric(cpuNs, "cpu-ns/row")
	out, err := exec.Command(python(b), "testdata/bench_compute_total.py", strconv.Itoa(n)).Output()
	if err != nil {
		b.Logf("CPython: %v", err)
		return
	}
	ns, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	b.ReportMetric(ns, "cpython-cpu-ns/row")
	b.ReportMetric(ns/cpuNs, "speedup")
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
