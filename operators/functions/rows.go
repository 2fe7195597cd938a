package functions

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Row-at-a-time kernels for functions whose per-row work (string scans,
// parsing, hashing) dwarfs the loop: the null check and the append are
// shared here so each function is one small closure.

// rows builds a kernel that calls f on every row where no argument is null;
// f appends exactly one value (or null) to b.
func rows(out arrow.DataType, f func(b array.Builder, args []arrow.Array, i int)) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := batchLen(args)
		b := array.NewBuilder(ctx.Mem, out)
		defer b.Release()
		b.Reserve(n)
		for i := 0; i < n; i++ {
			if !rowValid(args, i) {
				b.AppendNull()
				continue
			}
			f(b, args, i)
		}
		return b.NewArray(), nil
	}
}

func str(a arrow.Array, i int) string   { return a.(*array.String).Value(i) }
func i64(a arrow.Array, i int) int64    { return a.(*array.Int64).Value(i) }
func f64(a arrow.Array, i int) float64  { return a.(*array.Float64).Value(i) }
func boolean(a arrow.Array, i int) bool { return a.(*array.Boolean).Value(i) }

// Typed appenders for rows closures.
func putStr(b array.Builder, v string)    { b.(*array.StringBuilder).Append(v) }
func putInt(b array.Builder, v int64)     { b.(*array.Int64Builder).Append(v) }
func putFloat(b array.Builder, v float64) { b.(*array.Float64Builder).Append(v) }
func putBool(b array.Builder, v bool)     { b.(*array.BooleanBuilder).Append(v) }

// strToStr maps one string argument.
func strToStr(f func(string) string) Kernel {
	return rows(tStr, func(b array.Builder, args []arrow.Array, i int) { putStr(b, f(str(args[0], i))) })
}

// strToInt maps one string argument to an int.
func strToInt(f func(string) int64) Kernel {
	return rows(tInt, func(b array.Builder, args []arrow.Array, i int) { putInt(b, f(str(args[0], i))) })
}

// strStrToBool maps two strings to a bool.
func strStrToBool(f func(a, b string) bool) Kernel {
	return rows(tBool, func(b array.Builder, args []arrow.Array, i int) {
		putBool(b, f(str(args[0], i), str(args[1], i)))
	})
}

// fn builds a Func with propagating nulls from its overloads.
func fn(name string, params []string, doc string, overloads ...overload) *Func {
	return &Func{Name: name, Params: params, Doc: doc, Nulls: propagates, overloads: overloads}
}

// sig builds an overload: the kinds are the arguments then the result.
func sig(k Kernel, kinds ...kind) overload {
	return overload{args: kinds[:len(kinds)-1], out: kinds[len(kinds)-1], kernel: k}
}

// variadic is sig whose last argument repeats.
func variadic(k Kernel, kinds ...kind) overload {
	o := sig(k, kinds...)
	o.variadic = true
	return o
}

// withNulls replaces f's null behaviour description.
func withNulls(f *Func, nulls string) *Func {
	f.Nulls = nulls
	return f
}
