package functions

import (
	"math"
	"math/bits"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// The fused forms of the kernels: each computes what its kernel computes
// (ops.go, control.go, casts.go, math.go, python.go) over one chunk.
// fused_test.go checks every one against its kernel on random data.

// opBuilder makes the step computing register d from registers a.
type opBuilder func(d int, a []int) step

// fusedOp returns the fused form of fn, if it has one.
func fusedOp(fn *Bound) (opBuilder, bool) {
	t := fixedType(fn.Args[0])
	two := len(fn.Args) == 2 && arrow.TypeEqual(fn.Args[0], fn.Args[1])
	switch fn.Name {
	case "add", "subtract", "multiply":
		op := arithOp(fn.Name)
		switch {
		case !two:
		case t == tyFloat:
			return floatArith(op), true
		case t == tyInt:
			return intArith(op, false), true
		}
	case "try_add", "try_subtract", "try_multiply":
		op := arithOp(strings.TrimPrefix(fn.Name, "try_"))
		switch {
		case !two:
		case t == tyFloat:
			return floatArith(op), true
		case t == tyInt:
			return intArith(op, true), true
		}
	case "divide":
		if two && t == tyFloat {
			return floatArith('/'), true
		}
	case "floor_divide":
		switch {
		case !two:
		case t == tyFloat:
			return zipOK(floats, floatScratch, pyFloorDivFloat), true
		case t == tyInt:
			return zipOK(ints, intScratch, pyFloorDivInt), true
		}
	case "mod":
		switch {
		case !two:
		case t == tyFloat:
			return zipOK(floats, floatScratch, pyModFloat), true
		case t == tyInt:
			return zipOK(ints, intScratch, pyModInt), true
		}
	case "power", "pow":
		if two && t == tyFloat {
			return floatZip(math.Pow), true
		}
	case "fill_nan":
		if two && t == tyFloat {
			return floatZip(func(x, v float64) float64 {
				if x != x {
					return v
				}
				return x
			}), true
		}
	case "negate":
		switch t {
		case tyFloat:
			return mapOp(floats, floatScratch, func(res, in []float64) {
				for i, v := range in {
					res[i] = -v
				}
			}), true
		case tyInt:
			return mapOp(ints, intScratch, func(res, in []int64) {
				for i, v := range in {
					res[i] = -v
				}
			}), true
		}
	case "abs":
		switch t {
		case tyFloat:
			return mapOp(floats, floatScratch, func(res, in []float64) {
				for i, v := range in {
					res[i] = max(v, -v)
				}
			}), true
		case tyInt:
			return mapOp(ints, intScratch, func(res, in []int64) {
				for i, v := range in {
					res[i] = max(v, -v)
				}
			}), true
		}
	case "floor", "ceil", "trunc":
		switch t {
		case tyInt:
			return alias, true
		case tyFloat:
			switch fn.Name {
			case "floor":
				return mapOp(floats, floatScratch, func(res, in []float64) {
					for i, v := range in {
						res[i] = math.Floor(v)
					}
				}), true
			case "ceil":
				return mapOp(floats, floatScratch, func(res, in []float64) {
					for i, v := range in {
						res[i] = math.Ceil(v)
					}
				}), true
			}
			return mapOp(floats, floatScratch, func(res, in []float64) {
				for i, v := range in {
					res[i] = math.Trunc(v)
				}
			}), true
		}
	case "round":
		if len(fn.Args) == 1 && t == tyFloat {
			return mapOp(floats, floatScratch, func(res, in []float64) {
				for i, v := range in {
					res[i] = math.RoundToEven(v)
				}
			}), true
		}
	case "sqrt":
		if t == tyFloat {
			return mapOp(floats, floatScratch, func(res, in []float64) {
				for i, v := range in {
					res[i] = math.Sqrt(v)
				}
			}), true
		}
	case "is_nan", "is_inf", "is_finite":
		if t == tyFloat {
			switch fn.Name {
			case "is_nan":
				return floatPred(math.IsNaN), true
			case "is_inf":
				return floatPred(func(v float64) bool { return math.IsInf(v, 0) }), true
			}
			return floatPred(func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }), true
		}
	case "equal", "not_equal", "less", "less_equal", "greater", "greater_equal":
		op := cmpOpOf(fn.Name)
		switch {
		case !two:
		case t == tyFloat:
			return compareOp(floats, op), true
		case t == tyInt:
			return compareOp(ints, op), true
		case t == tyBool:
			return compareBool(op), true
		}
	case "and", "or":
		if two && t == tyBool {
			return kleeneOp(fn.Name == "and"), true
		}
	case "not":
		if t == tyBool {
			return notOp, true
		}
	case "is_null", "is_not_null":
		return nullTestOp(fn.Name == "is_null"), true
	case "if_then_else":
		if t == tyBool && fixedType(fn.Out) != tyNone {
			return chooseOp(fixedType(fn.Out)), true
		}
	case "coalesce":
		if fixedType(fn.Out) != tyNone {
			return coalesceOp(fixedType(fn.Out)), true
		}
	case "mask_null":
		if fixedType(fn.Out) != tyNone && fixedType(fn.Args[1]) == tyBool {
			return maskNullOp, true
		}
	case "to_float":
		switch t {
		case tyFloat:
			return alias, true
		case tyInt:
			return intToFloat, true
		}
	case "to_int":
		switch t {
		case tyInt:
			return alias, true
		case tyBool:
			return boolToInt, true
		case tyFloat:
			return floatToInt, true
		}
	}
	return nil, false
}

func arithOp(name string) byte {
	switch name {
	case "add":
		return '+'
	case "subtract":
		return '-'
	}
	return '*'
}

// floatArithOp is the operation floatArith runs for fn's name over
// floats: +, - or *; 0 for any other function.
func floatArithOp(name string) byte {
	switch strings.TrimPrefix(name, "try_") {
	case "add", "subtract", "multiply":
		return arithOp(strings.TrimPrefix(name, "try_"))
	}
	return 0
}

func cmpOpOf(name string) cmpOp {
	switch name {
	case "equal":
		return cmpEq
	case "not_equal":
		return cmpNe
	case "less":
		return cmpLt
	case "less_equal":
		return cmpLe
	case "greater":
		return cmpGt
	}
	return cmpGe
}

// mayPass lists the arguments whose vectors fn's fused form may pass on
// as its own values, without a copy: who may read a vector later, for an
// if_then_else in place (Program.placeSelects). Conservative: more than
// passesValues.
func mayPass(fn *Bound) []int {
	switch fn.Name {
	case "if_then_else":
		return []int{1, 2}
	case "coalesce":
		all := make([]int, len(fn.Args))
		for i := range all {
			all[i] = i
		}
		return all
	case "mask_null", "floor", "ceil", "trunc", "to_int", "to_float":
		return []int{0}
	}
	return nil
}

// passesValues says whether fn's fused form passes its first argument's
// values on unchanged (fusedOp's alias and maskNullOp).
func passesValues(fn *Bound) bool {
	t := fixedType(fn.Args[0])
	switch fn.Name {
	case "mask_null":
		return true
	case "floor", "ceil", "trunc", "to_int":
		return t == tyInt
	case "to_float":
		return t == tyFloat
	}
	return false
}

// words is the number of 64-bit words of n bits.
func words(n int) int { return (n + 63) / 64 }

// and2 is the validity of a row valid in both a and b (nil: all valid),
// into dst when both have nulls.
func and2(dst, a, b []uint64, n int) []uint64 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	dst = dst[:words(n)]
	for k := range dst {
		dst[k] = a[k] & b[k]
	}
	return dst
}

// ones is a full validity word list for a nil validity.
var ones = func() []uint64 {
	w := make([]uint64, chunkWords)
	for k := range w {
		w[k] = ^uint64(0)
	}
	return w
}()

func orOnes(v []uint64) []uint64 {
	if v == nil {
		return ones
	}
	return v
}

// alias is an identity (floor of an int, to_float of a float).
func alias(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		o.f, o.i, o.b, o.v = r[x].f, r[x].i, r[x].b, r[x].v
		return true
	}
}

// floatArith is arithFloat, and divide (safeDiv: null where b is 0).
//
//go:noinline
func floatArith(op byte) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			res := o.fs[:n]
			av, bv := r[x].f[:len(res)], r[y].f[:len(res)]
			switch op {
			case '+', '-', '*':
				arithFloats(op, res, av, bv)
			case '/':
				valid := orOnes(and2(o.vs, r[x].v, r[y].v, n))
				vo := o.vs[:words(n)]
				for w := range vo {
					lo := w * 64
					hi := min(lo+64, n)
					var zero uint64
					for i := lo; i < hi; i++ {
						res[i] = av[i] / bv[i]
						zero |= uint64(bit(bv[i] == 0)) << (i - lo)
					}
					vo[w] = valid[w] &^ zero
				}
				o.f, o.v = res, vo
				return true
			}
			o.f, o.v = res, and2(o.vs, r[x].v, r[y].v, n)
			return true
		}
	}
}

// intArith is arithInt (an overflow in a valid row fails the kernel: fall
// back) or, with try, try_add & co. (null where it overflows).
//
//go:noinline
func intArith(op byte, try bool) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			res := o.is[:n]
			av, bv := r[x].i[:len(res)], r[y].i[:len(res)]
			may := arithInts(op, res, av, bv)
			o.i, o.v = res, and2(o.vs, r[x].v, r[y].v, n)
			if !may {
				return true
			}
			valid := orOnes(o.v)
			if !try {
				for i := range res {
					if valid[i>>6]>>(i&63)&1 == 1 && overflows(op, av[i], bv[i]) {
						return false
					}
				}
				return true
			}
			vo := o.vs[:words(n)]
			for w := range vo {
				var bad uint64
				for i := w * 64; i < min(w*64+64, n); i++ {
					bad |= uint64(bit(overflows(op, av[i], bv[i]))) << (i & 63)
				}
				vo[w] = valid[w] &^ bad
			}
			o.v = vo
			return true
		}
	}
}

// zipOK is zipFixedOK: f's !ok rows are null. f is not called on rows
// already null (a division by a null slot's 0 must not matter).
//
//go:noinline
func zipOK[T int64 | float64](get, scratch func(*vec) []T, f func(a, b T) (T, bool)) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			res := scratch(o)[:n]
			av, bv := get(&r[x])[:len(res)], get(&r[y])[:len(res)]
			valid := orOnes(and2(o.vs, r[x].v, r[y].v, n))
			vo := o.vs[:words(n)]
			for w := range vo {
				vw := valid[w]
				var bad uint64
				for i := w * 64; i < min(w*64+64, n); i++ {
					if vw>>(i&63)&1 == 0 {
						continue
					}
					v, ok := f(av[i], bv[i])
					res[i] = v
					bad |= uint64(bit(!ok)) << (i & 63)
				}
				vo[w] = vw &^ bad
			}
			setValues(o, res)
			o.v = vo
			return true
		}
	}
}

//go:noinline
func floatZip(f func(a, b float64) float64) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			res := o.fs[:n]
			av, bv := r[x].f[:len(res)], r[y].f[:len(res)]
			for i := range res {
				res[i] = f(av[i], bv[i])
			}
			o.f, o.v = res, and2(o.vs, r[x].v, r[y].v, n)
			return true
		}
	}
}

// mapOp is a one-argument operation over ints or floats: f maps a chunk
// (called once per chunk, the operation inlined in its loop: a function
// value called per row costs ~3 ns a row here, docs/BENCHMARKS.md §12.2).
//
//go:noinline
func mapOp[T int64 | float64](get, scratch func(*vec) []T, f func(res, in []T)) opBuilder {
	return func(d int, a []int) step {
		x := a[0]
		return func(r []vec, n int) bool {
			o := &r[d]
			res := scratch(o)[:n]
			f(res, get(&r[x])[:n])
			setValues(o, res)
			o.v = r[x].v
			return true
		}
	}
}

// floats, ints, floatScratch and intScratch give generic operations a
// vector's values or scratch of one type.
func floats(v *vec) []float64       { return v.f }
func ints(v *vec) []int64           { return v.i }
func floatScratch(v *vec) []float64 { return v.fs }
func intScratch(v *vec) []int64     { return v.is }

// setValues sets v's values of res's type.
func setValues[T int64 | float64](v *vec, res []T) {
	switch p := any(res).(type) {
	case []float64:
		v.f = p
	case []int64:
		v.i = p
	}
}

//go:noinline
func floatPred(f func(float64) bool) opBuilder {
	return func(d int, a []int) step {
		x := a[0]
		return func(r []vec, n int) bool {
			o := &r[d]
			in := r[x].f[:n]
			out := o.bs[:words(n)]
			for w := range out {
				var m uint64
				for i := w * 64; i < min(w*64+64, n); i++ {
					m |= uint64(bit(f(in[i]))) << (i & 63)
				}
				out[w] = m
			}
			o.b, o.v = out, r[x].v
			return true
		}
	}
}

// floatToInt is to_int of a float: truncated, null for NaN and beyond the
// int64 range.
func floatToInt(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		res := o.is[:n]
		in := r[x].f[:len(res)]
		valid := orOnes(r[x].v)
		vo := o.vs[:words(n)]
		for w := range vo {
			var bad uint64
			for i := w * 64; i < min(w*64+64, n); i++ {
				v := math.Trunc(in[i])
				ok := !math.IsNaN(v) && v < 9.223372036854775807e18 && v >= -9.223372036854775808e18
				if ok {
					res[i] = int64(v)
				}
				bad |= uint64(bit(!ok)) << (i & 63)
			}
			vo[w] = valid[w] &^ bad
		}
		o.i, o.v = res, vo
		return true
	}
}

// castIntFloat is coerce's safe cast of an int to a float: it fails for
// values beyond ±2**53 (not exactly representable), so those fall back.
func castIntFloat(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		res := o.fs[:n]
		in := r[x].i[:len(res)]
		var out bool
		for i, v := range in {
			res[i] = float64(v)
			out = out || v > 1<<53 || v < -(1<<53)
		}
		o.f, o.v = res, r[x].v
		if out {
			valid := orOnes(o.v)
			for i, v := range in {
				if valid[i>>6]>>(i&63)&1 == 1 && (v > 1<<53 || v < -(1<<53)) {
					return false
				}
			}
		}
		return true
	}
}

// compareOp is compareKernel over ints or floats.
//
//go:noinline
func compareOp[T int64 | float64](get func(*vec) []T, op cmpOp) opBuilder {
	// x > y is y < x, x >= y is y <= x and x != y is not x == y, exactly
	// (NaN included): three loops.
	swap, not := op == cmpGt || op == cmpGe, op == cmpNe
	switch op {
	case cmpGt:
		op = cmpLt
	case cmpGe:
		op = cmpLe
	case cmpNe:
		op = cmpEq
	}
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		if swap {
			x, y = y, x
		}
		return func(r []vec, n int) bool {
			o := &r[d]
			out := o.bs[:words(n)]
			av, bv := get(&r[x])[:n], get(&r[y])[:n]
			for w := range out {
				lo := w * 64
				xs := av[lo:min(lo+64, n)]
				m := cmpWord(op, xs, bv[lo:][:len(xs)])
				if not {
					m = ^m & (^uint64(0) >> (64 - len(xs)))
				}
				out[w] = m
			}
			o.b, o.v = out, and2(o.vs, r[x].v, r[y].v, n)
			return true
		}
	}
}

// cmpWord compares up to 64 rows (op: cmpLt, cmpLe or cmpEq) into a word.
// Four rows an iteration into four words: 3–4× faster than one row an
// iteration (each OR waits for the last); the comparison written out in
// each loop because Go inlines neither a function value nor a type
// parameter's method here, and a bool switched per row costs 5× more
// (docs/BENCHMARKS.md §12).
func cmpWord[T int64 | float64](op cmpOp, xs, ys []T) uint64 {
	ys = ys[:len(xs)]
	var m0, m1, m2, m3 uint64
	j := 0
	if fx, ok := any(xs).([]float64); ok {
		m0, j = cmpFloatsWide(op, fx, any(ys).([]float64))
	}
	switch op {
	case cmpLt:
		for ; j+4 <= len(xs); j += 4 {
			x, y := xs[j:j+4:j+4], ys[j:j+4:j+4]
			m0 |= uint64(bit(x[0] < y[0])) << j
			m1 |= uint64(bit(x[1] < y[1])) << (j + 1)
			m2 |= uint64(bit(x[2] < y[2])) << (j + 2)
			m3 |= uint64(bit(x[3] < y[3])) << (j + 3)
		}
		for ; j < len(xs); j++ {
			m0 |= uint64(bit(xs[j] < ys[j])) << j
		}
	case cmpLe:
		for ; j+4 <= len(xs); j += 4 {
			x, y := xs[j:j+4:j+4], ys[j:j+4:j+4]
			m0 |= uint64(bit(x[0] <= y[0])) << j
			m1 |= uint64(bit(x[1] <= y[1])) << (j + 1)
			m2 |= uint64(bit(x[2] <= y[2])) << (j + 2)
			m3 |= uint64(bit(x[3] <= y[3])) << (j + 3)
		}
		for ; j < len(xs); j++ {
			m0 |= uint64(bit(xs[j] <= ys[j])) << j
		}
	default:
		for ; j+4 <= len(xs); j += 4 {
			x, y := xs[j:j+4:j+4], ys[j:j+4:j+4]
			m0 |= uint64(bit(x[0] == y[0])) << j
			m1 |= uint64(bit(x[1] == y[1])) << (j + 1)
			m2 |= uint64(bit(x[2] == y[2])) << (j + 2)
			m3 |= uint64(bit(x[3] == y[3])) << (j + 3)
		}
		for ; j < len(xs); j++ {
			m0 |= uint64(bit(xs[j] == ys[j])) << j
		}
	}
	return m0 | m1 | m2 | m3
}

//go:noinline
func compareBool(op cmpOp) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			out := o.bs[:words(n)]
			xb, yb := r[x].b[:len(out)], r[y].b[:len(out)]
			for k := range out {
				switch op {
				case cmpEq:
					out[k] = ^(xb[k] ^ yb[k])
				case cmpNe:
					out[k] = xb[k] ^ yb[k]
				case cmpLt:
					out[k] = ^xb[k] & yb[k]
				case cmpLe:
					out[k] = ^xb[k] | yb[k]
				case cmpGt:
					out[k] = ^yb[k] & xb[k]
				case cmpGe:
					out[k] = ^yb[k] | xb[k]
				}
			}
			o.b, o.v = out, and2(o.vs, r[x].v, r[y].v, n)
			return true
		}
	}
}

// kleeneOp is kleene: SQL's three-valued and / or.
//
//go:noinline
func kleeneOp(isAnd bool) opBuilder {
	return func(d int, a []int) step {
		x, y := a[0], a[1]
		return func(r []vec, n int) bool {
			o := &r[d]
			out := o.bs[:words(n)]
			xb, yb := r[x].b[:len(out)], r[y].b[:len(out)]
			if r[x].v == nil && r[y].v == nil {
				for k := range out {
					if isAnd {
						out[k] = xb[k] & yb[k]
					} else {
						out[k] = xb[k] | yb[k]
					}
				}
				o.b, o.v = out, nil
				return true
			}
			va, vb := orOnes(r[x].v), orOnes(r[y].v)
			vo := o.vs[:len(out)]
			for k := range out {
				out[k], vo[k] = kleeneBits(isAnd, xb[k], va[k], yb[k], vb[k])
			}
			o.b, o.v = out, vo
			return true
		}
	}
}

func notOp(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		out := o.bs[:words(n)]
		for k, w := range r[x].b[:len(out)] {
			out[k] = ^w
		}
		o.b, o.v = out, r[x].v
		return true
	}
}

// nullTestOp is is_null / is_not_null: never null.
//
//go:noinline
func nullTestOp(isNull bool) opBuilder {
	return func(d int, a []int) step {
		x := a[0]
		return func(r []vec, n int) bool {
			o := &r[d]
			out := o.bs[:words(n)]
			v := orOnes(r[x].v)
			for k := range out {
				if isNull {
					out[k] = ^v[k]
				} else {
					out[k] = v[k]
				}
			}
			o.b, o.v = out, nil
			return true
		}
	}
}

// chooseOp is if_then_else: then where cond is true (a null cond picks
// otherwise), branch-free.
func chooseOp(ty vty) opBuilder { return choice{ty: ty}.build }

// lazyArith is the float operation an if_then_else in place computes
// itself (Program.deferArith): a op b, whose own step computes it in
// every row.
type lazyArith struct {
	op   byte
	a, b int
	step step
}

// choice is an if_then_else of type ty; with into > 0, in place over the
// vector of its argument into (which nothing reads afterwards), patching
// in the other branch's rows: most rows stay where they are. With lazy,
// that argument is a float operation not computed yet; with hold, the
// patch is left pending for the if_then_else in place over this one.
type choice struct {
	ty   vty
	into int
	lazy *lazyArith
	hold bool
}

func (ch choice) build(d int, a []int) step {
	ty, into, lazy := ch.ty, ch.into, ch.lazy
	c, x, y := a[0], a[1], a[2]
	return func(r []vec, n int) bool {
		o := &r[d]
		o.pend = nil
		var pickArr [chunkWords]uint64
		pick := pickArr[:words(n)]
		cb := r[c].b[:len(pick)]
		if cv := r[c].v; cv != nil {
			for k := range pick {
				pick[k] = cb[k] & cv[k]
			}
		} else {
			copy(pick, cb)
		}
		// One branch for the whole chunk: its values as they are.
		all, none := ^uint64(0), uint64(0)
		for k, p := range pick {
			if k == len(pick)-1 && n%64 != 0 {
				p |= ^uint64(0) << (n % 64) // rows beyond n agree
				all &= p
				none |= p & (^uint64(0) >> (64 - n%64))
				continue
			}
			all &= p
			none |= p
		}
		if ty != tyBool && (all == ^uint64(0) || none == 0) {
			s := y
			if none != 0 {
				s = x
			}
			src := &r[s]
			if into > 0 && s == a[into] {
				switch {
				case lazy != nil:
					lazy.step(r, n)
				case src.pend != nil:
					src.f = patchRows(src.f[:n], r[src.pendFrom].f, src.pend)
				}
			}
			o.f, o.i, o.v = src.f, src.i, src.v
			o.own = into > 0 && s == a[into] && src.owns()
			return true
		}
		dst := &r[a[into]]
		if lazy != nil {
			// The operation's vector and validity; its values come below.
			dst.f = dst.fs[:n]
			dst.v = and2(dst.vs, r[lazy.a].v, r[lazy.b].v, n)
		}
		switch {
		case into > 0 && dst.owns():
			take := pick // the rows of then, into else
			if into == 1 {
				var notArr [chunkWords]uint64
				take = notArr[:len(pick)]
				for w, p := range pick {
					take[w] = ^p
				}
			}
			from := a[3-into]
			switch {
			case lazy != nil:
				o.f = arithPatchRows(lazy.op, dst.f, r[lazy.a].f, r[lazy.b].f, r[from].f, take)
			case ch.hold:
				o.pend, o.pendFrom = o.ps[:copy(o.ps[:], take)], from
				o.f = dst.f[:n]
			case dst.pend != nil:
				o.f = patch2Rows(dst.f[:n], r[dst.pendFrom].f, dst.pend, r[from].f, take)
			case ty == tyFloat:
				o.f = patchRows(dst.f[:n], r[from].f, take)
			default:
				o.i = patchRows(dst.i[:n], r[from].i, take)
			}
			o.own = true
		case ty == tyFloat:
			o.f = selectRows(o.fs[:n], r[x].f, r[y].f, pick)
			o.own = false
		case ty == tyInt:
			o.i = selectRows(o.is[:n], r[x].i, r[y].i, pick)
			o.own = false
		default:
			out := o.bs[:len(pick)]
			ab, bb := r[x].b[:len(pick)], r[y].b[:len(pick)]
			for k := range out {
				out[k] = pick[k]&ab[k] | ^pick[k]&bb[k]
			}
			o.b = out
		}
		if r[x].v == nil && r[y].v == nil {
			o.v = nil
			return true
		}
		va, vb := orOnes(r[x].v), orOnes(r[y].v)
		vo := o.vs[:len(pick)]
		for k := range vo {
			vo[k] = pick[k]&va[k] | ^pick[k]&vb[k]
		}
		o.v = vo
		return true
	}
}

func coalesceOp(ty vty) opBuilder {
	return func(d int, a []int) step {
		args := append([]int(nil), a...)
		return func(r []vec, n int) bool {
			o := &r[d]
			// Arguments after one without nulls never matter.
			last := len(args) - 1
			for k, x := range args {
				if r[x].v == nil {
					last = k
					break
				}
			}
			if last == 0 {
				x := args[0]
				o.f, o.i, o.b, o.v = r[x].f, r[x].i, r[x].b, r[x].v
				return true
			}
			nw := words(n)
			l := &r[args[last]]
			switch ty {
			case tyFloat:
				res := o.fs[:n]
				copy(res, l.f[:n])
				for k := last - 1; k >= 0; k-- {
					patchRows(res, r[args[k]].f, r[args[k]].v)
				}
				o.f = res
			case tyInt:
				res := o.is[:n]
				copy(res, l.i[:n])
				for k := last - 1; k >= 0; k-- {
					patchRows(res, r[args[k]].i, r[args[k]].v)
				}
				o.i = res
			case tyBool:
				out := o.bs[:nw]
				copy(out, l.b[:nw])
				for k := last - 1; k >= 0; k-- {
					ab, va := r[args[k]].b, r[args[k]].v
					for w := range out {
						out[w] = va[w]&ab[w] | ^va[w]&out[w]
					}
				}
				o.b = out
			}
			if l.v == nil {
				o.v = nil
				return true
			}
			vo := o.vs[:nw]
			copy(vo, l.v[:nw])
			for k := last - 1; k >= 0; k-- {
				for w, x := range r[args[k]].v[:nw] {
					vo[w] |= x
				}
			}
			o.v = vo
			return true
		}
	}
}

// maskNullOp is mask_null: x's values, null where cond is true.
func maskNullOp(d int, a []int) step {
	x, c := a[0], a[1]
	return func(r []vec, n int) bool {
		o := &r[d]
		o.f, o.i, o.b = r[x].f, r[x].i, r[x].b
		vx, vc := orOnes(r[x].v), orOnes(r[c].v)
		cb := r[c].b
		vo := o.vs[:words(n)]
		for k := range vo {
			vo[k] = vx[k] &^ (vc[k] & cb[k])
		}
		o.v = vo
		return true
	}
}

// selectRows sets res to a where pick is set, else b. Per 64 rows it
// copies the branch most rows take and patches the others in: conditions
// on data are often uniform over runs of rows (a copy) or sparse, and a
// copy plus a few stores beats a branch-free select of every row.
func selectRows[T int64 | float64](res, a, b []T, pick []uint64) []T {
	n := len(res)
	a, b = a[:n], b[:n]
	for w, p := range pick {
		lo := w * 64
		hi := min(lo+64, n)
		full := ^uint64(0) >> (64 - (hi - lo))
		p &= full
		src, other := b, a
		if bits.OnesCount64(p) > (hi-lo)/2 {
			src, other, p = a, b, ^p&full
		}
		copy(res[lo:hi], src[lo:hi])
		for ; p != 0; p &= p - 1 {
			j := lo + bits.TrailingZeros64(p)
			res[j] = other[j]
		}
	}
	return res
}

// patchRows sets res to a where take is set, and returns it (coalesce's
// earlier arguments, an if_then_else in place). Where most of 64 rows
// are taken, it copies them all and puts the others back.
func patchRows[T int64 | float64](res, a []T, take []uint64) []T {
	n := len(res)
	a = a[:n]
	for w, p := range take[:words(n)] {
		lo := w * 64
		hi := min(lo+64, n)
		full := ^uint64(0) >> (64 - (hi - lo))
		p &= full
		if f, ok := any(res).([]float64); ok && hi-lo == 64 && patchWordWide(f[lo:hi], any(a).([]float64)[lo:hi], p) {
			continue
		}
		switch c := bits.OnesCount64(p); {
		case c == hi-lo:
			copy(res[lo:hi], a[lo:hi])
		case c <= 40:
			for ; p != 0; p &= p - 1 {
				j := lo + bits.TrailingZeros64(p)
				res[j] = a[j]
			}
		default:
			var keep [64]T
			q := ^p & full
			for m := q; m != 0; m &= m - 1 {
				j := bits.TrailingZeros64(m)
				keep[j] = res[lo+j]
			}
			copy(res[lo:hi], a[lo:hi])
			for m := q; m != 0; m &= m - 1 {
				j := bits.TrailingZeros64(m)
				res[lo+j] = keep[j]
			}
		}
	}
	return res
}

// arithPatchRows sets res to x where take is set, else to a op b (+, -
// or *), and returns it: a float operation and the if_then_else in place
// over it in one pass.
func arithPatchRows(op byte, res, a, b, x []float64, take []uint64) []float64 {
	n := len(res)
	a, b, x = a[:n], b[:n], x[:n]
	i := arithPatchWide(op, res, a, b, x, take)
	if i < n {
		arithFloats(op, res[i:], a[i:], b[i:])
		patchRows(res[i:], x[i:], take[i/64:])
	}
	return res
}

// patch2Rows sets res to a where ta is set, then to b where tb is set,
// and returns it: two if_then_else in place, one over the other, in one
// pass.
func patch2Rows(res, a []float64, ta []uint64, b []float64, tb []uint64) []float64 {
	n := len(res)
	a, b = a[:n], b[:n]
	i := patch2Wide(res, a, ta, b, tb)
	if i < n {
		patchRows(res[i:], a[i:], ta[i/64:])
		patchRows(res[i:], b[i:], tb[i/64:])
	}
	return res
}

func intToFloat(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		res := o.fs[:n]
		in := r[x].i[:len(res)]
		for i, v := range in {
			res[i] = float64(v)
		}
		o.f, o.v = res, r[x].v
		return true
	}
}

func boolToInt(d int, a []int) step {
	x := a[0]
	return func(r []vec, n int) bool {
		o := &r[d]
		b, res := r[x].b, o.is[:n]
		for i := range res {
			res[i] = int64(b[i>>6] >> (i & 63) & 1)
		}
		o.i, o.v = res, r[x].v
		return true
	}
}
