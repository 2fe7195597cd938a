package functions

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Each fletch kernel beside arrow-go's compute kernel for the same
// operation on 1M rows (10% nulls in the first argument), so the ratio
// reads off one run:
// go test -tags duckdb_arrow -run XXX -bench . ./operators/functions
func BenchmarkKernels(b *testing.B) {
	mem := memory.NewGoAllocator()
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(7, 8))
	fa, fb := array.NewFloat64Builder(mem), array.NewFloat64Builder(mem)
	ia, ib := array.NewInt64Builder(mem), array.NewInt64Builder(mem)
	ba, bb := array.NewBooleanBuilder(mem), array.NewBooleanBuilder(mem)
	sa, sb := array.NewStringBuilder(mem), array.NewStringBuilder(mem)
	for i := range n {
		if i%10 == 0 {
			fa.AppendNull()
			ia.AppendNull()
			ba.AppendNull()
			sa.AppendNull()
		} else {
			fa.Append(rng.Float64())
			ia.Append(rng.Int64N(1 << 30))
			ba.Append(rng.IntN(2) == 0)
			sa.Append(strings.Repeat("AbC", 1+rng.IntN(4)))
		}
		fb.Append(rng.Float64())
		ib.Append(rng.Int64N(1 << 30))
		bb.Append(rng.IntN(2) == 0)
		sb.Append(strings.Repeat("AbC", 1+rng.IntN(4)))
	}
	arrs := map[string]arrow.Array{}
	for name, bld := range map[string]array.Builder{"fa": fa, "fb": fb, "ia": ia, "ib": ib, "ba": ba, "bb": bb, "sa": sa, "sb": sb} {
		arrs[name] = bld.NewArray()
		defer arrs[name].Release()
	}
	type kernelCase struct {
		fn, arrowFn string
		args        []string
	}
	cases := []kernelCase{
		{"add", "add", []string{"fa", "fb"}},
		{"add", "add", []string{"ia", "ib"}},
		{"multiply", "multiply", []string{"fa", "fb"}},
		{"and", "and_kleene", []string{"ba", "bb"}},
		{"abs", "abs", []string{"fa"}},
		{"abs", "abs", []string{"ia"}},
		{"lower", "", []string{"sa"}},
	}
	for _, op := range []string{"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"} {
		for _, args := range [][]string{{"fa", "fb"}, {"ia", "ib"}, {"sa", "sb"}} {
			cases = append(cases, kernelCase{op, op, args})
		}
	}
	ctx := &Context{Mem: mem}
	for _, c := range cases {
		var args []arrow.Array
		var types []arrow.DataType
		for _, a := range c.args {
			args = append(args, arrs[a])
			types = append(types, arrs[a].DataType())
		}
		bound, err := Default().Bind(c.fn, types)
		if err != nil {
			b.Fatal(err)
		}
		name := c.fn + "/" + types[0].String()
		b.Run(name+"/fletch", func(b *testing.B) {
			for b.Loop() {
				out, err := bound.Exec(ctx, args)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
		if c.arrowFn == "" {
			continue
		}
		b.Run(name+"/arrow", func(b *testing.B) {
			datums := make([]compute.Datum, len(args))
			for i, a := range args {
				datums[i] = compute.NewDatum(a)
			}
			for b.Loop() {
				out, err := compute.CallFunction(context.Background(), c.arrowFn, nil, datums...)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
	}
}
