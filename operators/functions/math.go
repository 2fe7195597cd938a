package functions

import (
	"math"
	"math/big"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/fletch-engine/fletch/operators"
)

func init() {
	x := []string{"x"}
	unary := func(name, doc string, f func(float64) float64) *Func {
		return fn(name, x, doc, sig(mapFixed(tFloat, f), kFloat, kFloat))
	}
	builtin(
		fn("abs", x, "absolute value",
			sig(absKernel[int64](tInt), kInt, kInt),
			sig(absKernel[float64](tFloat), kFloat, kFloat)),
		fn("sign", x, "-1, 0 or 1 by the sign of x",
			sig(mapFixed(tInt, func(v int64) int64 { return int64(max(-1, min(1, v))) }), kInt, kInt),
			sig(mapFixed(tInt, func(v float64) int64 {
				switch {
				case v > 0:
					return 1
				case v < 0:
					return -1
				}
				return 0
			}), kFloat, kInt)),
		unary("sqrt", "square root (NaN below 0)", math.Sqrt),
		unary("cbrt", "cube root", math.Cbrt),
		unary("exp", "e ** x", math.Exp),
		unary("ln", "natural logarithm (IEEE: -inf at 0, NaN below)", math.Log),
		unary("log2", "base-2 logarithm", math.Log2),
		unary("log10", "base-10 logarithm", math.Log10),
		fn("log", []string{"x", "base"}, "natural logarithm of x, or logarithm in base (Python's math.log)",
			sig(mapFixed(tFloat, math.Log), kFloat, kFloat),
			sig(zipFixed(tFloat, func(v, b float64) float64 { return math.Log(v) / math.Log(b) }), kFloat, kFloat, kFloat)),
		unary("sin", "sine (radians)", math.Sin),
		unary("cos", "cosine (radians)", math.Cos),
		unary("tan", "tangent (radians)", math.Tan),
		unary("asin", "arc sine", math.Asin),
		unary("acos", "arc cosine", math.Acos),
		unary("atan", "arc tangent", math.Atan),
		unary("sinh", "hyperbolic sine", math.Sinh),
		unary("cosh", "hyperbolic cosine", math.Cosh),
		unary("tanh", "hyperbolic tangent", math.Tanh),
		fn("atan2", []string{"y", "x"}, "arc tangent of y/x in the right quadrant",
			sig(zipFixed(tFloat, math.Atan2), kFloat, kFloat, kFloat)),
		unary("degrees", "radians to degrees", func(v float64) float64 { return v * 180 / math.Pi }),
		unary("radians", "degrees to radians", func(v float64) float64 { return v * math.Pi / 180 }),
		unary("sigmoid", "1 / (1 + e ** -x)", func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }),
		fn("floor", x, "largest integer ≤ x (float in, float out)",
			sig(mapFixed(tInt, func(v int64) int64 { return v }), kInt, kInt),
			sig(mapFixed(tFloat, math.Floor), kFloat, kFloat)),
		fn("ceil", x, "smallest integer ≥ x",
			sig(mapFixed(tInt, func(v int64) int64 { return v }), kInt, kInt),
			sig(mapFixed(tFloat, math.Ceil), kFloat, kFloat)),
		fn("trunc", x, "x rounded toward zero",
			sig(mapFixed(tInt, func(v int64) int64 { return v }), kInt, kInt),
			sig(mapFixed(tFloat, math.Trunc), kFloat, kFloat)),
		fn("round", []string{"x", "digits"}, "x rounded to digits decimals (default 0), halves to even as Python's round; always float",
			sig(mapFixed(tFloat, math.RoundToEven), kFloat, kFloat),
			sig(zipFixed(tFloat, roundDigits), kFloat, kInt, kFloat)),
		fn("power", []string{"a", "b"}, "a ** b, always float", sig(zipFixed(tFloat, math.Pow), kFloat, kFloat, kFloat)),
		fn("pow", []string{"a", "b"}, "alias of power", sig(zipFixed(tFloat, math.Pow), kFloat, kFloat, kFloat)),
		withNulls(fn("safe_divide", []string{"a", "b"}, "a / b, null when b is 0",
			sig(zipFixedOK(tFloat, safeDiv), kFloat, kFloat, kFloat)), propagates+"; null when b is 0"),
		fn("clamp", []string{"x", "lo", "hi"}, "x limited to [lo, hi]",
			sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
				putInt(b, max(i64(a[1], i), min(i64(a[2], i), i64(a[0], i))))
			}), kInt, kInt, kInt, kInt),
			sig(rows(tFloat, func(b array.Builder, a []arrow.Array, i int) {
				putFloat(b, math.Max(f64(a[1], i), math.Min(f64(a[2], i), f64(a[0], i))))
			}), kFloat, kFloat, kFloat, kFloat)),
		withNulls(fn("greatest", []string{"values"}, "the largest argument (numbers, strings, datetimes, dates)",
			variadic(extremum(true), kT, kT)), "ignores nulls; null only when all are null"),
		withNulls(fn("least", []string{"values"}, "the smallest argument",
			variadic(extremum(false), kT, kT)), "ignores nulls; null only when all are null"),
		fn("is_nan", x, "x is NaN", sig(floatPredicate(math.IsNaN), kFloat, kBool)),
		fn("is_inf", x, "x is +inf or -inf", sig(floatPredicate(func(v float64) bool { return math.IsInf(v, 0) }), kFloat, kBool)),
		fn("is_finite", x, "x is neither NaN nor infinite",
			sig(floatPredicate(func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }), kFloat, kBool)),
	)
}

// roundDigits is CPython's round(v, d): the decimal closest to v's exact
// binary value, halves to even (round(2.675, 2) is 2.67: 2.675 is stored
// as 2.67499999...).
func roundDigits(v float64, d int64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) || v == 0 || d > 325 {
		return v
	}
	if d >= 0 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', int(d), 64), 64)
		return math.Copysign(r, v)
	}
	if d < -330 {
		return math.Copysign(0, v)
	}
	// Negative digits: round v / 10^-d to an integer exactly.
	x := new(big.Rat).SetFloat64(v)
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(-d), nil)
	q := new(big.Rat).Quo(x, new(big.Rat).SetInt(p))
	n := new(big.Int).Quo(q.Num(), q.Denom())
	rem := new(big.Rat).Sub(q, new(big.Rat).SetInt(n))
	half := big.NewRat(1, 2)
	switch c := new(big.Rat).Abs(rem).Cmp(half); {
	case c > 0, c == 0 && n.Bit(0) == 1:
		if rem.Sign() > 0 {
			n.Add(n, big.NewInt(1))
		} else {
			n.Sub(n, big.NewInt(1))
		}
	}
	r, _ := new(big.Rat).SetInt(n.Mul(n, p)).Float64()
	return math.Copysign(r, v)
}

// absKernel is a tight loop rather than mapFixed's call per row. max(v, -v)
// is math.Abs for floats (max orders -0 below +0) and, for ints, leaves
// math.MinInt64 as it is, as two's complement negation does.
func absKernel[T int64 | float64](dt arrow.DataType) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		in := values[T](args[0])
		buf, res := allocFixed[T](ctx.Mem, n)
		res = res[:len(in)]
		for i, v := range in {
			res[i] = max(v, -v)
		}
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(dt, n, valid, nulls, buf), nil
	}
}

func floatPredicate(f func(float64) bool) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		out := allocBits(ctx.Mem, n)
		for i, v := range values[float64](args[0]) {
			if f(v) {
				bitutil.SetBit(out.Bytes(), i)
			}
		}
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(tBool, n, valid, nulls, out), nil
	}
}

// extremum picks, per row, the greatest (or least) non-null argument: the
// comparisons reuse the compare kernels on whole arrays.
func extremum(greatest bool) Kernel {
	op := cmpGt
	if !greatest {
		op = cmpLt
	}
	better := compareKernel(op)
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		best := args[0]
		best.Retain()
		for _, cand := range args[1:] {
			c, err := better(ctx, []arrow.Array{cand, best})
			if err != nil {
				best.Release()
				return nil, err
			}
			// take cand where it is better or best is null.
			next, err := choose(ctx, c.(*array.Boolean), cand, best, true)
			c.Release()
			best.Release()
			if err != nil {
				return nil, err
			}
			best = next
		}
		return best, nil
	}
}
