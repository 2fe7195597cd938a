package functions

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"

	"github.com/fletch-engine/fletch/operators"
)

func init() {
	builtin(
		withNulls(fn("coalesce", []string{"values"}, "the first non-null argument",
			variadic(coalesceKernel, kT, kT)), "null only when all arguments are"),
		withNulls(fn("if_then_else", []string{"cond", "then", "otherwise"}, "then where cond is true, else otherwise",
			sig(func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
				return choose(ctx, args[0].(*array.Boolean), args[1], args[2], false)
			}, kBool, kT, kT, kT)), "a null cond picks otherwise (as SQL CASE)"),
		withNulls(fn("is_null", []string{"x"}, "x is null", sig(nullTest(true), kT, kBool)), "never null"),
		withNulls(fn("is_not_null", []string{"x"}, "x is not null", sig(nullTest(false), kT, kBool)), "never null"),
		withNulls(fn("nullif", []string{"a", "b"}, "null where a equals b, else a",
			sig(nullifKernel, kT, kT, kT)), "null when a is null; a null b keeps a"),
		fn("between", []string{"x", "lo", "hi"}, "lo <= x <= hi (inclusive)",
			sig(betweenKernel, kT, kT, kT, kBool)),
		withNulls(fn("fill_nan", []string{"x", "value"}, "value where x is NaN, else x",
			sig(zipFixed(tFloat, func(x, v float64) float64 {
				if x != x {
					return v
				}
				return x
			}), kFloat, kFloat, kFloat)), propagates),
	)
}

// choose takes a where cond is true and b elsewhere; with fill, also a
// where b is null. It gathers from [a, b] concatenated, so it works for
// every type.
func choose(ctx *Context, cond *array.Boolean, a, b arrow.Array, fill bool) (arrow.Array, error) {
	n := a.Len()
	idx := array.NewInt32Builder(ctx.Mem)
	defer idx.Release()
	idx.Reserve(n)
	for i := 0; i < n; i++ {
		if (cond.IsValid(i) && cond.Value(i)) || (fill && b.IsNull(i)) {
			idx.UnsafeAppend(int32(i))
		} else {
			idx.UnsafeAppend(int32(n + i))
		}
	}
	return gather(ctx, idx, a, b)
}

// gather takes rows of the concatenation of arrs at the indices in idx.
func gather(ctx *Context, idx *array.Int32Builder, arrs ...arrow.Array) (arrow.Array, error) {
	indices := idx.NewArray()
	defer indices.Release()
	all, err := array.Concatenate(arrs, ctx.Mem)
	if err != nil {
		return nil, err
	}
	defer all.Release()
	return compute.TakeArray(exec.WithAllocator(context.Background(), ctx.Mem), all, indices)
}

func coalesceKernel(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	n := batchLen(args)
	idx := array.NewInt32Builder(ctx.Mem)
	defer idx.Release()
	idx.Reserve(n)
	for i := 0; i < n; i++ {
		pick := -1
		for k, a := range args {
			if a.IsValid(i) {
				pick = k*n + i
				break
			}
		}
		if pick < 0 {
			idx.UnsafeAppendBoolToBitmap(false)
		} else {
			idx.UnsafeAppend(int32(pick))
		}
	}
	return gather(ctx, idx, args...)
}

func nullTest(isNull bool) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		out := allocBits(ctx.Mem, n)
		for i := 0; i < n; i++ {
			if args[0].IsNull(i) == isNull {
				bitutil.SetBit(out.Bytes(), i)
			}
		}
		return operators.FromBuffers(tBool, n, nil, 0, out), nil
	}
}

func nullifKernel(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	eq, err := compareKernel(cmpEq)(ctx, args)
	if err != nil {
		return nil, err
	}
	defer eq.Release()
	nulls := array.MakeArrayOfNull(ctx.Mem, args[0].DataType(), args[0].Len())
	defer nulls.Release()
	return choose(ctx, eq.(*array.Boolean), nulls, args[0], false)
}

func betweenKernel(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	lo, err := compareKernel(cmpGe)(ctx, args[:2])
	if err != nil {
		return nil, err
	}
	defer lo.Release()
	hi, err := compareKernel(cmpLe)(ctx, []arrow.Array{args[0], args[2]})
	if err != nil {
		return nil, err
	}
	defer hi.Release()
	return kleene(true)(ctx, []arrow.Array{lo, hi})
}
