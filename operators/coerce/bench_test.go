package coerce

import (
	"context"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const benchRows = 10_000

func BenchmarkStringToInt64(b *testing.B) {
	mem := memory.NewGoAllocator()
	for _, kind := range stringKinds {
		bld := array.NewBuilder(mem, kind)
		for i := range benchRows {
			bld.AppendValueFromString(strconv.Itoa(i*7919 - 40_000_000))
		}
		in := bld.NewArray()
		bld.Release()
		b.Run(kind.String()+"/coerce", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := Array(mem, in, i64)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
		if kind.ID() != arrow.STRING_VIEW { // compute has no kernel for it
			benchCompute(b, mem, in, i64)
		}
		in.Release()
	}
}

func BenchmarkInt32ToInt64(b *testing.B) {
	mem := memory.NewGoAllocator()
	bld := array.NewInt32Builder(mem)
	for i := range benchRows {
		bld.Append(int32(i*7919 - 40_000_000))
	}
	in := bld.NewArray()
	bld.Release()
	defer in.Release()
	b.Run("int32/coerce", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := Array(mem, in, i64)
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
	})
	benchCompute(b, mem, in, i64)
}

func benchCompute(b *testing.B, mem memory.Allocator, in arrow.Array, to arrow.DataType) {
	b.Run(in.DataType().String()+"/compute", func(b *testing.B) {
		b.ReportAllocs()
		ctx := compute.WithAllocator(context.Background(), mem)
		for b.Loop() {
			out, err := compute.CastArray(ctx, in, compute.SafeCastOptions(to))
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
	})
}
