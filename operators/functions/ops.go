package functions

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/fletch-engine/fletch/operators"
)

// The operators of expressions: arithmetic, comparison and boolean logic.

var (
	tInt   = arrow.PrimitiveTypes.Int64
	tFloat = arrow.PrimitiveTypes.Float64
	tBool  = arrow.FixedWidthTypes.Boolean
	tStr   = arrow.BinaryTypes.String
)

func init() {
	num := func(name, doc string, intK, floatK Kernel, extra ...overload) *Func {
		return &Func{Name: name, Params: []string{"a", "b"}, Doc: doc, Nulls: propagates,
			overloads: append([]overload{
				{args: []kind{kInt, kInt}, out: kInt, kernel: intK},
				{args: []kind{kFloat, kFloat}, out: kFloat, kernel: floatK},
			}, extra...)}
	}
	builtin(num("add", "a + b; on strings, concatenation; integer overflow is an error",
		arithInt('+'), arithFloat('+'),
		overload{args: []kind{kStr, kStr}, out: kStr, kernel: concatKernel("")}))
	builtin(num("subtract", "a - b; datetime - datetime is the difference in seconds (float); integer overflow is an error",
		arithInt('-'), arithFloat('-'),
		overload{args: []kind{kTs, kTs}, out: kFloat, kernel: zipFixed(tFloat, func(a, b arrow.Timestamp) float64 {
			return float64(a-b) / 1e6
		})}))
	builtin(num("multiply", "a * b; integer overflow is an error", arithInt('*'), arithFloat('*')))
	builtin(&Func{Name: "divide", Params: []string{"a", "b"}, Nulls: propagates + "; null when b is 0 (as DuckDB)",
		Doc:       "a / b, always float",
		overloads: []overload{{args: []kind{kFloat, kFloat}, out: kFloat, kernel: zipFixedOK(tFloat, safeDiv)}}})
	builtin(num("floor_divide", "a // b, rounded toward negative infinity (Python); null when b is 0",
		zipFixedOK(tInt, pyFloorDivInt),
		zipFixedOK(tFloat, pyFloorDivFloat)))
	modDoc := "a % b with the sign of b (Python); null when b is 0"
	builtin(num("mod", modDoc, zipFixedOK(tInt, pyModInt), zipFixedOK(tFloat, pyModFloat)))
	builtin(&Func{Name: "power", Params: []string{"a", "b"}, Doc: "a ** b, always float (IEEE: 0 ** -1 is +inf)", Nulls: propagates,
		overloads: []overload{{args: []kind{kFloat, kFloat}, out: kFloat, kernel: zipFixed(tFloat, math.Pow)}}})
	builtin(&Func{Name: "negate", Params: []string{"x"}, Doc: "-x", Nulls: propagates, overloads: []overload{
		{args: []kind{kInt}, out: kInt, kernel: mapFixed(tInt, func(v int64) int64 { return -v })},
		{args: []kind{kFloat}, out: kFloat, kernel: mapFixed(tFloat, func(v float64) float64 { return -v })},
	}})

	cmp := func(name, sym string, op cmpOp) {
		f := &Func{Name: name, Params: []string{"a", "b"}, Nulls: propagates,
			Doc: "a " + sym + " b on numbers (int against float compares as float), strings (bytewise), bools, datetimes, dates; NaN compares unequal to everything (IEEE)"}
		for _, k := range []kind{kInt, kFloat, kStr, kBool, kTs, kDate} {
			f.overloads = append(f.overloads, overload{args: []kind{k, k}, out: kBool, kernel: compareKernel(op)})
		}
		builtin(f)
	}
	cmp("equal", "==", cmpEq)
	cmp("not_equal", "!=", cmpNe)
	cmp("less", "<", cmpLt)
	cmp("less_equal", "<=", cmpLe)
	cmp("greater", ">", cmpGt)
	cmp("greater_equal", ">=", cmpGe)

	builtin(&Func{Name: "and", Params: []string{"a", "b"}, Doc: "a and b",
		Nulls:     "three-valued (SQL): false and null is false, true and null is null",
		overloads: []overload{{args: []kind{kBool, kBool}, out: kBool, kernel: kleene(true)}}})
	builtin(&Func{Name: "or", Params: []string{"a", "b"}, Doc: "a or b",
		Nulls:     "three-valued (SQL): true or null is true, false or null is null",
		overloads: []overload{{args: []kind{kBool, kBool}, out: kBool, kernel: kleene(false)}}})
	builtin(&Func{Name: "not", Params: []string{"x"}, Doc: "not x", Nulls: propagates,
		overloads: []overload{{args: []kind{kBool}, out: kBool, kernel: notKernel}}})
}

func safeDiv(a, b float64) (float64, bool) {
	if b == 0 {
		return 0, false
	}
	return a / b, true
}

func pyFloorDivInt(a, b int64) (int64, bool) {
	if b == 0 {
		return 0, false
	}
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q, true
}

func pyModInt(a, b int64) (int64, bool) {
	if b == 0 {
		return 0, false
	}
	m := a % b
	if m != 0 && (m < 0) != (b < 0) {
		m += b
	}
	return m, true
}

// pyModFloat is CPython's float_rem: the sign of b, a zero signed as b.
func pyModFloat(a, b float64) (float64, bool) {
	if b == 0 {
		return 0, false
	}
	m := math.Mod(a, b)
	if m != 0 {
		if (m < 0) != (b < 0) {
			m += b
		}
	} else {
		m = math.Copysign(0, b)
	}
	return m, true
}

// pyFloorDivFloat is CPython's float_floor_div (floor(a / b) is not: 1 //
// 0.1 is 9.0 there, as a - a % b is 0.9 short of 1 in binary).
func pyFloorDivFloat(a, b float64) (float64, bool) {
	if b == 0 {
		return 0, false
	}
	mod := math.Mod(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div -= 1.0
	}
	if div == 0 {
		return math.Copysign(0, a/b), true
	}
	f := math.Floor(div)
	if div-f > 0.5 {
		f += 1.0
	}
	return f, true
}

// arithFloat is a tight loop per operator (arithFloats): this is the hot
// path of expressions, so no function value per element.
func arithFloat(op byte) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		a, b := values[float64](args[0]), values[float64](args[1])
		buf, res := allocFixed[float64](ctx.Mem, n)
		arithFloats(op, res[:len(a)], a, b)
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(tFloat, n, valid, nulls, buf), nil
	}
}

// arithInt accumulates an overflow flag without branching and only looks
// for the offending row (which may be a null slot's garbage) when set.
func arithInt(op byte) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		a, b := values[int64](args[0]), values[int64](args[1])
		buf, res := allocFixed[int64](ctx.Mem, n)
		b = b[:len(a)]
		if arithInts(op, res[:len(a)], a, b) {
			for i := range a {
				if rowValid(args, i) && overflows(op, a[i], b[i]) {
					buf.Release()
					return nil, fmt.Errorf("integer overflow: %d %c %d does not fit in int64", a[i], op, b[i])
				}
			}
		}
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(tInt, n, valid, nulls, buf), nil
	}
}

// arithInts sets res to a op b (+, - or *) and says whether a row may have
// overflowed (then overflows finds which): a flag accumulated without
// branching.
func arithInts(op byte, res, a, b []int64) bool {
	a, b = a[:len(res)], b[:len(res)]
	var ovf int64
	var big bool
	switch op {
	case '+':
		for i := range res {
			c := a[i] + b[i]
			ovf |= (c ^ a[i]) & (c ^ b[i])
			res[i] = c
		}
	case '-':
		for i := range res {
			c := a[i] - b[i]
			ovf |= (a[i] ^ b[i]) & (a[i] ^ c)
			res[i] = c
		}
	case '*':
		for i := range res {
			res[i] = a[i] * b[i]
			big = big || math.Abs(float64(a[i])*float64(b[i])) >= 9.2e18
		}
	}
	return ovf < 0 || big
}

// arithFloats sets res to a op b (+, - or *), four rows an iteration: Go
// does not vectorize, and unrolled the loop runs twice as fast
// (docs/BENCHMARKS.md §12.1).
func arithFloats(op byte, res, a, b []float64) {
	a, b = a[:len(res)], b[:len(res)]
	i := arithFloatsWide(op, res, a, b)
	switch op {
	case '+':
		for ; i+4 <= len(res); i += 4 {
			o, x, y := res[i:i+4:i+4], a[i:i+4:i+4], b[i:i+4:i+4]
			o[0], o[1], o[2], o[3] = x[0]+y[0], x[1]+y[1], x[2]+y[2], x[3]+y[3]
		}
		for ; i < len(res); i++ {
			res[i] = a[i] + b[i]
		}
	case '-':
		for ; i+4 <= len(res); i += 4 {
			o, x, y := res[i:i+4:i+4], a[i:i+4:i+4], b[i:i+4:i+4]
			o[0], o[1], o[2], o[3] = x[0]-y[0], x[1]-y[1], x[2]-y[2], x[3]-y[3]
		}
		for ; i < len(res); i++ {
			res[i] = a[i] - b[i]
		}
	case '*':
		for ; i+4 <= len(res); i += 4 {
			o, x, y := res[i:i+4:i+4], a[i:i+4:i+4], b[i:i+4:i+4]
			o[0], o[1], o[2], o[3] = x[0]*y[0], x[1]*y[1], x[2]*y[2], x[3]*y[3]
		}
		for ; i < len(res); i++ {
			res[i] = a[i] * b[i]
		}
	}
}

// kleeneBits is and / or of bits a and b (valid where va, vb are set) in
// three-valued logic: false and null is false, true or null is true.
func kleeneBits[T uint8 | uint64](isAnd bool, a, va, b, vb T) (val, valid T) {
	at, af := va&a, va&^a
	bt, bf := vb&b, vb&^b
	if isAnd {
		return at & bt, (at & bt) | af | bf
	}
	return at | bt, at | bt | (af & bf)
}

func overflows(op byte, a, b int64) bool {
	switch op {
	case '+':
		c := a + b
		return (c^a)&(c^b) < 0
	case '-':
		c := a - b
		return (a^b)&(a^c) < 0
	}
	if a == 0 || b == 0 {
		return false
	}
	c := a * b
	return c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64)
}

type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// compareKernel reduces the six comparisons to ==, < and <= (swapping the
// operands for > and >=, negating == for !=, which is right for NaN too).
func compareKernel(op cmpOp) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		x, y := args[0], args[1]
		base := op
		switch op {
		case cmpNe:
			base = cmpEq
		case cmpGt:
			x, y, base = y, x, cmpLt
		case cmpGe:
			x, y, base = y, x, cmpLe
		}
		out := allocBits(ctx.Mem, n)
		bits := out.Bytes()
		switch x.DataType().ID() {
		case arrow.INT64:
			cmpFixed(values[int64](x), values[int64](y), bits, base)
		case arrow.FLOAT64:
			cmpFixed(values[float64](x), values[float64](y), bits, base)
		case arrow.TIMESTAMP:
			cmpFixed(values[arrow.Timestamp](x), values[arrow.Timestamp](y), bits, base)
		case arrow.DATE32:
			cmpFixed(values[arrow.Date32](x), values[arrow.Date32](y), bits, base)
		case arrow.STRING:
			cmpStrings(x.(*array.String), y.(*array.String), bits, base)
		case arrow.BOOL:
			xb, rx := bitsOf(ctx.Mem, x)
			yb, ry := bitsOf(ctx.Mem, y)
			for i := range bits {
				switch base {
				case cmpEq:
					bits[i] = ^(xb[i] ^ yb[i])
				case cmpLt:
					bits[i] = ^xb[i] & yb[i]
				case cmpLe:
					bits[i] = ^xb[i] | yb[i]
				}
			}
			rx()
			ry()
		default:
			out.Release()
			return nil, fmt.Errorf("cannot compare %s", x.DataType())
		}
		if op == cmpNe {
			for i := range bits {
				bits[i] = ^bits[i]
			}
		}
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(tBool, n, valid, nulls, out), nil
	}
}

type ordered interface {
	int64 | float64 | arrow.Timestamp | arrow.Date32
}

// cmpFixed packs eight comparisons into each output byte. The eight are
// spelled out per operator because Go neither unrolls loops nor inlines a
// comparison passed as a function value or type parameter: this way each
// (type, operator) pair is straight-line compare-and-set code without bounds
// checks, about twice as fast as a loop over the bits. out arrives cleared
// (the tail's bits are or-ed in).
func cmpFixed[T ordered](a, b []T, out []byte, op cmpOp) {
	b = b[:len(a)]
	full := len(a) / 8
	o := out[:full]
	switch op {
	case cmpEq:
		for i := range o {
			x, y := a[i*8:][:8], b[i*8:][:8]
			o[i] = pack8(bit(x[0] == y[0]), bit(x[1] == y[1]), bit(x[2] == y[2]), bit(x[3] == y[3]), bit(x[4] == y[4]), bit(x[5] == y[5]), bit(x[6] == y[6]), bit(x[7] == y[7]))
		}
	case cmpLt:
		for i := range o {
			x, y := a[i*8:][:8], b[i*8:][:8]
			o[i] = pack8(bit(x[0] < y[0]), bit(x[1] < y[1]), bit(x[2] < y[2]), bit(x[3] < y[3]), bit(x[4] < y[4]), bit(x[5] < y[5]), bit(x[6] < y[6]), bit(x[7] < y[7]))
		}
	case cmpLe:
		for i := range o {
			x, y := a[i*8:][:8], b[i*8:][:8]
			o[i] = pack8(bit(x[0] <= y[0]), bit(x[1] <= y[1]), bit(x[2] <= y[2]), bit(x[3] <= y[3]), bit(x[4] <= y[4]), bit(x[5] <= y[5]), bit(x[6] <= y[6]), bit(x[7] <= y[7]))
		}
	}
	for j := full * 8; j < len(a); j++ {
		out[full] |= bit(compare(a[j], b[j], op)) << (j - full*8)
	}
}

// compare is one row of a base operator.
func compare[T ordered | string](x, y T, op cmpOp) bool {
	switch op {
	case cmpEq:
		return x == y
	case cmpLt:
		return x < y
	}
	return x <= y
}

// pack8 takes bit's results, not bools, to stay within the inliner's budget.
func pack8(b0, b1, b2, b3, b4, b5, b6, b7 byte) byte {
	return b0 | b1<<1 | b2<<2 | b3<<3 | b4<<4 | b5<<5 | b6<<6 | b7<<7
}

// bit is written so the compiler emits a flag set, not a branch: random
// comparisons would mispredict half the time.
func bit(b bool) byte {
	var x byte
	if b {
		x = 1
	}
	return x
}

// cmpStrings compares bytewise (Go's string order is UTF-8 code point
// order, as DuckDB's), eight rows to a byte.
func cmpStrings(a, b *array.String, out []byte, op cmpOp) {
	var w byte
	n := a.Len()
	for i := range n {
		w |= bit(compare(a.Value(i), b.Value(i), op)) << (i & 7)
		if i&7 == 7 {
			out[i>>3], w = w, 0
		}
	}
	if n&7 != 0 {
		out[n>>3] = w
	}
}

// kleene computes SQL's three-valued and (isAnd) / or over whole bytes: a
// row is known when both sides are, or when one side alone decides it.
func kleene(isAnd bool) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		a, ra := bitsOf(ctx.Mem, args[0])
		b, rb := bitsOf(ctx.Mem, args[1])
		defer ra()
		defer rb()
		out := allocBits(ctx.Mem, n)
		ob := out.Bytes()
		if args[0].NullN() == 0 && args[1].NullN() == 0 {
			if isAnd {
				bitutil.BitmapAnd(a, b, 0, 0, ob, 0, int64(n))
			} else {
				bitutil.BitmapOr(a, b, 0, 0, ob, 0, int64(n))
			}
			return operators.FromBuffers(tBool, n, nil, 0, out), nil
		}
		va, rva := validBits(ctx.Mem, args[0])
		vb, rvb := validBits(ctx.Mem, args[1])
		defer rva()
		defer rvb()
		valid := allocBits(ctx.Mem, n)
		vo := valid.Bytes()
		for i := range ob {
			ob[i], vo[i] = kleeneBits(isAnd, a[i], va[i], b[i], vb[i])
		}
		return operators.FromBuffers(tBool, n, valid, n-bitutil.CountSetBits(vo, 0, n), out), nil
	}
}

func notKernel(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	n := args[0].Len()
	a, ra := bitsOf(ctx.Mem, args[0])
	defer ra()
	out := allocBits(ctx.Mem, n)
	ob := out.Bytes()
	for i := range ob {
		ob[i] = ^a[i]
	}
	valid, nulls := validity(ctx.Mem, n, args...)
	return operators.FromBuffers(tBool, n, valid, nulls, out), nil
}
