package functions

import (
	"context"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
		withNulls(fn("mask_null", []string{"x", "cond"}, "x, null where cond is true (x's values shared, only the validity is new)",
			sig(maskNull, kT, kBool, kT)), "null where x is null or cond is true; a null cond keeps x"),
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
// every type; ints, floats and bools, the values of compiled Python
// branches, are selected in place (a fifth of the time).
func choose(ctx *Context, cond *array.Boolean, a, b arrow.Array, fill bool) (arrow.Array, error) {
	if !fill && a.Len() > 0 && a.Data().Buffers()[1] != nil && b.Data().Buffers()[1] != nil {
		switch a.DataType().ID() {
		case arrow.FLOAT64:
			return chooseFixed[float64](ctx, cond, a, b), nil
		case arrow.INT64:
			return chooseFixed[int64](ctx, cond, a, b), nil
		case arrow.BOOL:
			return chooseBool(ctx, cond, a, b), nil
		}
	}
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

// pickBits computes, eight rows a byte, which rows take a (cond true and
// valid) and the result's validity; valid is nil when every row is.
func pickBits(ctx *Context, cond *array.Boolean, a, b arrow.Array) (pick []byte, release func(), valid *memory.Buffer, nulls int) {
	n := a.Len()
	c, rc := bitsOf(ctx.Mem, cond)
	pickBuf := allocBits(ctx.Mem, n)
	pick = pickBuf.Bytes()
	if cond.NullN() == 0 {
		copy(pick, c[:len(pick)])
	} else {
		vc, rvc := validBits(ctx.Mem, cond)
		for i := range pick {
			pick[i] = c[i] & vc[i]
		}
		rvc()
	}
	rc()
	if a.NullN() > 0 || b.NullN() > 0 {
		va, rva := validBits(ctx.Mem, a)
		vb, rvb := validBits(ctx.Mem, b)
		valid = allocBits(ctx.Mem, n)
		vo := valid.Bytes()
		for i := range vo {
			vo[i] = (pick[i] & va[i]) | (^pick[i] & vb[i])
		}
		rva()
		rvb()
		nulls = n - bitutil.CountSetBits(vo, 0, n)
	}
	return pick, pickBuf.Release, valid, nulls
}

func chooseFixed[T int64 | float64](ctx *Context, cond *array.Boolean, a, b arrow.Array) arrow.Array {
	n := a.Len()
	pick, release, valid, nulls := pickBits(ctx, cond, a, b)
	defer release()
	av, bv := values[T](a), values[T](b)
	buf, res := allocFixed[T](ctx.Mem, n)
	bv, res = bv[:len(av)], res[:len(av)]
	for i := range av {
		// branch-free: conditions of random data mispredict half the time
		m := uint64(0) - uint64(pick[i>>3]>>(i&7)&1)
		res[i] = fromBits[T](toBits(av[i])&m | toBits(bv[i])&^m)
	}
	return operators.FromBuffers(a.DataType(), n, valid, nulls, buf)
}

func toBits[T int64 | float64](v T) uint64 {
	return *(*uint64)(unsafe.Pointer(&v))
}

func fromBits[T int64 | float64](b uint64) T {
	return *(*T)(unsafe.Pointer(&b))
}

func chooseBool(ctx *Context, cond *array.Boolean, a, b arrow.Array) arrow.Array {
	n := a.Len()
	pick, release, valid, nulls := pickBits(ctx, cond, a, b)
	defer release()
	ab, ra := bitsOf(ctx.Mem, a)
	bb, rb := bitsOf(ctx.Mem, b)
	defer ra()
	defer rb()
	out := allocBits(ctx.Mem, n)
	ob := out.Bytes()
	for i := range ob {
		ob[i] = (pick[i] & ab[i]) | (^pick[i] & bb[i])
	}
	return operators.FromBuffers(tBool, n, valid, nulls, out)
}

// maskNull is `None if cond else x` of compiled Python without copying x.
func maskNull(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	x, cond := args[0], args[1]
	d := x.Data()
	off, n := d.Offset(), d.Len()
	vx, rx := validBits(ctx.Mem, x)
	vc, rvc := validBits(ctx.Mem, cond)
	c, rc := bitsOf(ctx.Mem, cond)
	keep := allocBits(ctx.Mem, n)
	kb := keep.Bytes()
	for i := range kb {
		kb[i] = vx[i] &^ (vc[i] & c[i])
	}
	rx()
	rvc()
	rc()
	valid := keep
	if off != 0 {
		valid = allocBits(ctx.Mem, off+n)
		bitutil.CopyBitmap(kb, 0, n, valid.Bytes(), off)
		keep.Release()
	}
	nulls := n - bitutil.CountSetBits(valid.Bytes(), off, n)
	bufs := append([]*memory.Buffer{valid}, d.Buffers()[1:]...)
	nd := array.NewData(d.DataType(), n, bufs, d.Children(), nulls, off)
	valid.Release()
	defer nd.Release()
	return array.MakeFromData(nd), nil
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
		out, release := validBits(ctx.Mem, args[0])
		defer release()
		res := allocBits(ctx.Mem, n)
		rb := res.Bytes()
		for i := range rb {
			if isNull {
				rb[i] = ^out[i]
			} else {
				rb[i] = out[i]
			}
		}
		return operators.FromBuffers(tBool, n, nil, 0, res), nil
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
