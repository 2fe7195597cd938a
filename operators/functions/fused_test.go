package functions

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// tnode is a random expression of the differential test: evaluated by the
// kernels call by call (the reference) and compiled into a Program.
type tnode struct {
	fn    *Bound
	args  []*tnode
	input int // -1: not an input
	konst bool
	value any
	typ   arrow.DataType
	cast  bool // an explicit conversion of args[0] to typ
}

func (t *tnode) String() string {
	switch {
	case t.input >= 0:
		return fmt.Sprintf("$%d:%s", t.input, t.typ)
	case t.konst:
		return fmt.Sprintf("%v:%s", t.value, t.typ)
	case t.cast:
		return fmt.Sprintf("cast(%s as %s)", t.args[0], t.typ)
	}
	parts := make([]string, len(t.args))
	for i, a := range t.args {
		parts[i] = a.String()
	}
	return t.fn.Name + "(" + strings.Join(parts, ", ") + ")"
}

// fusedGen makes random trees over a fixed set of input columns.
type fusedGen struct {
	r    *rand.Rand
	cols []arrow.DataType
}

var (
	numFuncs  = []string{"add", "subtract", "multiply", "divide", "floor_divide", "mod", "power", "try_add", "try_subtract", "try_multiply", "fill_nan"}
	unaryNum  = []string{"negate", "abs", "floor", "ceil", "trunc", "round", "sqrt", "to_float", "to_int"}
	cmpFuncs  = []string{"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
	boolPreds = []string{"is_nan", "is_inf", "is_finite"}
)

// gen returns a tree giving a bool (want tyBool) or a number.
func (g *fusedGen) gen(want vty, depth int) *tnode {
	for {
		if t := g.try(want, depth); t != nil {
			return t
		}
	}
}

func (g *fusedGen) try(want vty, depth int) *tnode {
	r := g.r
	if depth <= 0 || r.IntN(5) == 0 {
		return g.leaf(want)
	}
	num := func() *tnode { return g.gen(tyInt, depth-1) } // int or float
	bl := func() *tnode { return g.gen(tyBool, depth-1) }
	anyT := func() *tnode {
		if r.IntN(3) == 0 {
			return bl()
		}
		return num()
	}
	var name string
	var args []*tnode
	switch {
	case want == tyBool:
		switch r.IntN(8) {
		case 0:
			name, args = cmpFuncs[r.IntN(len(cmpFuncs))], []*tnode{num(), num()}
		case 1:
			name, args = cmpFuncs[r.IntN(len(cmpFuncs))], []*tnode{bl(), bl()}
		case 2:
			name, args = []string{"and", "or"}[r.IntN(2)], []*tnode{bl(), bl()}
		case 3:
			name, args = "not", []*tnode{bl()}
		case 4:
			name, args = []string{"is_null", "is_not_null"}[r.IntN(2)], []*tnode{anyT()}
		case 5:
			name, args = boolPreds[r.IntN(len(boolPreds))], []*tnode{num()}
		case 6:
			name, args = "if_then_else", []*tnode{bl(), bl(), bl()}
		default:
			return g.control(bl, bl)
		}
	default:
		switch r.IntN(7) {
		case 0, 1, 2:
			name, args = numFuncs[r.IntN(len(numFuncs))], []*tnode{num(), num()}
		case 3:
			name, args = unaryNum[r.IntN(len(unaryNum))], []*tnode{num()}
		case 4:
			name, args = "if_then_else", []*tnode{bl(), num(), num()}
		case 5:
			x := num()
			if x.typ.ID() != arrow.INT64 {
				return nil
			}
			return &tnode{input: -1, cast: true, typ: arrow.PrimitiveTypes.Float64, args: []*tnode{x}}
		default:
			return g.control(num, bl)
		}
	}
	return g.call(name, args)
}

// control is coalesce or mask_null over values of val.
func (g *fusedGen) control(val, cond func() *tnode) *tnode {
	if g.r.IntN(2) == 0 {
		return g.call("mask_null", []*tnode{val(), cond()})
	}
	args := []*tnode{val(), val()}
	for g.r.IntN(2) == 0 {
		args = append(args, val())
	}
	return g.call("coalesce", args)
}

func (g *fusedGen) call(name string, args []*tnode) *tnode {
	types := make([]arrow.DataType, len(args))
	for i, a := range args {
		types[i] = a.typ
	}
	fn, err := Default().Bind(name, types)
	if err != nil || fixedType(fn.Out) == tyNone || !CanFuse(fn) {
		return nil
	}
	return &tnode{fn: fn, args: args, input: -1, typ: fn.Out}
}

var (
	specialFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -2.5, 3, 1e300, -1e300, math.Inf(1), math.Inf(-1), math.NaN(), 0.1, 7.5, -7}
	specialInts   = []int64{0, 1, -1, 2, -3, 7, math.MaxInt64, math.MinInt64, 1 << 53, 1<<53 + 1, -(1 << 53) - 1, 3037000500, -3037000500, 1 << 62}
)

func (g *fusedGen) leaf(want vty) *tnode {
	r := g.r
	if r.IntN(4) == 0 {
		switch {
		case r.IntN(8) == 0:
			return &tnode{input: -1, konst: true, typ: arrow.Null}
		case want == tyBool:
			return &tnode{input: -1, konst: true, value: r.IntN(2) == 0, typ: arrow.FixedWidthTypes.Boolean}
		case r.IntN(2) == 0:
			return &tnode{input: -1, konst: true, value: specialFloats[r.IntN(len(specialFloats))], typ: arrow.PrimitiveTypes.Float64}
		case r.IntN(12) == 0:
			return &tnode{input: -1, konst: true, value: specialInts[r.IntN(len(specialInts))], typ: arrow.PrimitiveTypes.Int64}
		default:
			return &tnode{input: -1, konst: true, value: r.Int64N(11) - 3, typ: arrow.PrimitiveTypes.Int64}
		}
	}
	for {
		i := r.IntN(len(g.cols))
		id := g.cols[i].ID()
		if (want == tyBool) == (id == arrow.BOOL) || id == arrow.STRING && want == tyBool && r.IntN(3) == 0 {
			if id == arrow.STRING {
				// only is_null reads a string
				continue
			}
			return &tnode{input: i, typ: g.cols[i]}
		}
	}
}

// randomColumn makes n rows of dt with some nulls (none in some columns),
// sliced from a longer array at a random offset half of the time.
func randomColumn(r *rand.Rand, mem memory.Allocator, dt arrow.DataType, n int) arrow.Array {
	off := 0
	if r.IntN(2) == 0 {
		off = r.IntN(70)
	}
	nullRate := []int{0, 2, 5, 50}[r.IntN(4)]
	bigInts := r.IntN(3) == 0 // values that overflow or do not convert to floats
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for i := 0; i < n+off; i++ {
		if nullRate > 0 && r.IntN(nullRate) == 0 {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.Int64Builder:
			if bigInts && r.IntN(40) == 0 {
				b.Append(specialInts[r.IntN(len(specialInts))])
			} else {
				b.Append(r.Int64N(21) - 10)
			}
		case *array.Float64Builder:
			if r.IntN(4) == 0 {
				b.Append(specialFloats[r.IntN(len(specialFloats))])
			} else {
				b.Append(float64(r.IntN(41)-20) / 4)
			}
		case *array.BooleanBuilder:
			b.Append(r.IntN(2) == 0)
		case *array.StringBuilder:
			b.Append("s")
		}
	}
	full := b.NewArray()
	defer full.Release()
	return array.NewSlice(full, int64(off), int64(off+n))
}

// reference evaluates t with the kernels, as the planner does without
// fusion.
func reference(ctx *Context, t *tnode, inputs []arrow.Array, n int) (arrow.Array, error) {
	switch {
	case t.input >= 0:
		inputs[t.input].Retain()
		return inputs[t.input], nil
	case t.konst:
		return operators.Constant(ctx.Mem, t.typ, t.value, n)
	}
	args := make([]arrow.Array, len(t.args))
	defer func() {
		for _, a := range args {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, a := range t.args {
		v, err := reference(ctx, a, inputs, n)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	if t.cast {
		return coerce.Array(ctx.Mem, args[0], t.typ)
	}
	return t.fn.Exec(ctx, args)
}

func toNode(t *tnode) *Node {
	switch {
	case t.input >= 0:
		return Input(t.input, t.typ)
	case t.konst:
		return Const(t.value, t.typ)
	case t.cast:
		return Cast(toNode(t.args[0]), t.typ)
	}
	args := make([]*Node, len(t.args))
	for i, a := range t.args {
		args[i] = toNode(a)
	}
	return Call(t.fn, args...)
}

// sameArrays says how want and got differ (""): validity, and values bit
// for bit in valid rows.
func sameArrays(want, got arrow.Array) string {
	if !arrow.TypeEqual(want.DataType(), got.DataType()) || want.Len() != got.Len() {
		return fmt.Sprintf("%s[%d] vs %s[%d]", want.DataType(), want.Len(), got.DataType(), got.Len())
	}
	if want.NullN() != got.NullN() {
		return fmt.Sprintf("%d nulls vs %d", want.NullN(), got.NullN())
	}
	for i := 0; i < want.Len(); i++ {
		if want.IsNull(i) != got.IsNull(i) {
			return fmt.Sprintf("row %d: null %v vs %v", i, want.IsNull(i), got.IsNull(i))
		}
		if want.IsNull(i) {
			continue
		}
		var eq bool
		switch w := want.(type) {
		case *array.Float64:
			eq = math.Float64bits(w.Value(i)) == math.Float64bits(got.(*array.Float64).Value(i))
		case *array.Int64:
			eq = w.Value(i) == got.(*array.Int64).Value(i)
		case *array.Boolean:
			eq = w.Value(i) == got.(*array.Boolean).Value(i)
		}
		if !eq {
			return fmt.Sprintf("row %d: %s vs %s", i, want.ValueStr(i), got.ValueStr(i))
		}
	}
	return ""
}

// TestFusedMatchesKernels evaluates random trees over random columns with
// nulls both ways: same validity, same values to the bit, and a fallback
// exactly where a kernel fails.
func TestFusedMatchesKernels(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := &Context{Mem: mem}
	r := rand.New(rand.NewPCG(12, 34))
	cols := []arrow.DataType{
		arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64,
		arrow.PrimitiveTypes.Float64, arrow.FixedWidthTypes.Boolean, arrow.FixedWidthTypes.Boolean,
		arrow.BinaryTypes.String,
	}
	sizes := []int{1, 2, 63, 64, 65, 200, 1023, 1024, 1025, 2500}
	trees, fallbacks, inPlace, lazy, held := 0, 0, 0, 0, 0
	for round := 0; round < 100; round++ {
		n := sizes[r.IntN(len(sizes))]
		inputs := make([]arrow.Array, len(cols))
		for i, dt := range cols {
			inputs[i] = randomColumn(r, mem, dt, n)
		}
		g := &fusedGen{r: r, cols: cols}
		for k := 0; k < 40; k++ {
			want := []vty{tyInt, tyBool}[r.IntN(2)]
			tree := g.gen(want, 1+r.IntN(5))
			if tree.input >= 0 || tree.konst || fixedType(tree.typ) == tyNone {
				continue
			}
			trees++
			ref, refErr := reference(ctx, tree, inputs, n)
			prog, err := Compile(toNode(tree))
			if err != nil {
				t.Fatalf("%s: %v", tree, err)
			}
			for _, g := range prog.regs {
				if g.inPlace > 0 {
					inPlace++
				}
				if g.lazy {
					lazy++
				}
				if g.hold {
					held++
				}
			}
			got, err := prog.Run(ctx, inputs, n)
			switch {
			case refErr != nil:
				if !errors.Is(err, ErrFallback) {
					t.Fatalf("%s over %d rows: the kernels fail (%v), fused gives %v", tree, n, refErr, err)
				}
				fallbacks++
				if got != nil {
					got.Release()
				}
				continue
			case err != nil:
				ref.Release()
				t.Fatalf("%s over %d rows: %v", tree, n, err)
			}
			if d := sameArrays(ref, got); d != "" {
				t.Errorf("%s over %d rows: kernels vs fused: %s", tree, n, d)
			}
			ref.Release()
			got.Release()
		}
		for _, a := range inputs {
			a.Release()
		}
	}
	t.Logf("%d trees, %d where the kernels fail, %d if_then_else in place, %d over an operation they compute, %d leaving their patch to the next", trees, fallbacks, inPlace, lazy, held)
	if inPlace == 0 || lazy == 0 || held == 0 {
		t.Error("a way of computing if_then_else in place is never tried")
	}
}

// BenchmarkFused evaluates the talk's compute_total as the symbolic
// interpreter compiles it (features/pysym) over 1M rows (FUSEDN=rows
// for another size: 8192 keeps the inputs in L2), call by call and fused:
// go test -run '^$' -bench Fused ./operators/functions
func BenchmarkFused(b *testing.B) {
	mem := memory.NewGoAllocator()
	ctx := &Context{Mem: mem}
	n := 1_000_000
	if os.Getenv("FUSEDN") != "" {
		n, _ = strconv.Atoi(os.Getenv("FUSEDN"))
	}
	r := rand.New(rand.NewPCG(1, 1))
	sub, disc, rate := array.NewFloat64Builder(mem), array.NewFloat64Builder(mem), array.NewFloat64Builder(mem)
	tax := array.NewBooleanBuilder(mem)
	for i := 0; i < n; i++ {
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
	inputs := []arrow.Array{sub.NewArray(), disc.NewArray(), rate.NewArray(), tax.NewArray()}
	defer func() {
		for _, a := range inputs {
			a.Release()
		}
	}()
	g := &fusedGen{}
	in := func(i int) *tnode { return &tnode{input: i, typ: inputs[i].DataType()} }
	f := func(v float64) *tnode {
		return &tnode{input: -1, konst: true, value: v, typ: arrow.PrimitiveTypes.Float64}
	}
	diff := g.call("subtract", []*tnode{in(0), in(1)})
	x := g.call("if_then_else", []*tnode{g.call("is_not_null", []*tnode{in(1)}),
		g.call("if_then_else", []*tnode{g.call("greater", []*tnode{f(0), diff}), f(0), diff}), in(0)})
	tree := g.call("mask_null", []*tnode{
		g.call("if_then_else", []*tnode{
			g.call("or", []*tnode{g.call("not", []*tnode{in(3)}), g.call("is_null", []*tnode{in(2)})}),
			x, g.call("multiply", []*tnode{x, g.call("add", []*tnode{f(1), in(2)})})}),
		g.call("or", []*tnode{g.call("is_null", []*tnode{in(0)}), g.call("is_null", []*tnode{in(3)})})})
	b.Run("kernels", func(b *testing.B) {
		cpu0 := cpuTime()
		for range b.N {
			out, err := reference(ctx, tree, inputs, n)
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/float64(n), "cpu-ns/row")
	})
	b.Run("fused", func(b *testing.B) {
		prog, err := Compile(toNode(tree))
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := cpuTime()
		for range b.N {
			out, err := prog.Run(ctx, inputs, n)
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/float64(n), "cpu-ns/row")
	})
}

// cpuTime is the process's user and system CPU time, in ns: the machine
// is shared, so wall time says little.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestFusedConcurrentRuns runs one program from several goroutines at once
// (a prepared plan serving concurrent queries): each run has its own
// vectors.
func TestFusedConcurrentRuns(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := &Context{Mem: mem}
	r := rand.New(rand.NewPCG(3, 4))
	cols := []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64, arrow.FixedWidthTypes.Boolean}
	g := &fusedGen{r: r, cols: cols}
	var tree *tnode
	for tree == nil || tree.fn == nil {
		tree = g.gen(tyInt, 5)
	}
	prog, err := Compile(toNode(tree))
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		go func(seed uint64) {
			rr := rand.New(rand.NewPCG(seed, seed))
			msg := ""
			for k := 0; k < 20 && msg == ""; k++ {
				n := 1 + rr.IntN(3000)
				inputs := make([]arrow.Array, len(cols))
				for i, dt := range cols {
					inputs[i] = randomColumn(rr, mem, dt, n)
				}
				ref, refErr := reference(ctx, tree, inputs, n)
				got, err := prog.Run(ctx, inputs, n)
				switch {
				case refErr != nil:
					if !errors.Is(err, ErrFallback) {
						msg = fmt.Sprintf("%s: the kernels fail (%v), fused gives %v", tree, refErr, err)
					}
				case err != nil:
					msg = fmt.Sprintf("%s: %v", tree, err)
				default:
					if d := sameArrays(ref, got); d != "" {
						msg = fmt.Sprintf("%s over %d rows: %s", tree, n, d)
					}
				}
				for _, a := range append(inputs, ref, got) {
					if a != nil {
						a.Release()
					}
				}
			}
			errs <- msg
		}(uint64(w))
	}
	for w := 0; w < workers; w++ {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}

// TestFusedInPlace checks the if_then_else written into a branch's vector
// where that branch's values are read elsewhere too (before, after, through
// a register passing them on) against the kernels, and that it is chosen
// only where nothing reads the branch afterwards.
func TestFusedInPlace(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := &Context{Mem: mem}
	r := rand.New(rand.NewPCG(5, 6))
	cols := []arrow.DataType{arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float64,
		arrow.FixedWidthTypes.Boolean, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64}
	g := &fusedGen{}
	in := func(i int) *tnode { return &tnode{input: i, typ: cols[i]} }
	f := func(v float64) *tnode {
		return &tnode{input: -1, konst: true, value: v, typ: arrow.PrimitiveTypes.Float64}
	}
	call := func(name string, args ...*tnode) *tnode {
		c := g.call(name, args)
		if c == nil {
			t.Fatalf("cannot bind %s", name)
		}
		return c
	}
	y := call("add", in(0), in(1))                                   // computed: may be overwritten
	iy := call("multiply", in(3), in(4))                             // the same over ints
	clamp := call("if_then_else", call("greater", f(0), y), f(0), y) // y read before: in place
	cases := []struct {
		tree    *tnode
		inPlace int // if_then_else in place
	}{
		{clamp, 1},
		{call("if_then_else", call("less", iy, iy), iy, call("subtract", in(3), iy)), 1},
		// y read after the select: never in place.
		{call("add", call("if_then_else", in(2), f(1), y), y), 0},
		// y read after through mask_null, which passes its vector on.
		{call("add", call("mask_null", y, in(2)), call("if_then_else", in(2), f(1), y)), 0},
		{call("add", call("if_then_else", in(2), f(1), y), call("mask_null", y, in(2))), 0},
		// A select of a select: the clamped vector taken over again.
		{call("if_then_else", call("is_null", in(1)), in(0), clamp), 2},
		// Both branches the same register.
		{call("if_then_else", in(2), y, y), 0},
		// The root itself and a chain to the output (the output's vector).
		{call("mask_null", call("if_then_else", in(2), in(0), call("multiply", clamp, call("add", f(1), in(1)))), call("is_null", in(0))), 2},
		// Then in place (else an input).
		{call("if_then_else", in(2), call("subtract", in(0), in(1)), in(0)), 1},
	}
	for _, n := range []int{1, 63, 64, 65, 511, 512, 513, 1100, 3000} {
		inputs := make([]arrow.Array, len(cols))
		for i, dt := range cols {
			inputs[i] = randomColumn(r, mem, dt, n)
		}
		for _, c := range cases {
			prog, err := Compile(toNode(c.tree))
			if err != nil {
				t.Fatalf("%s: %v", c.tree, err)
			}
			got := 0
			for _, g := range prog.regs {
				if g.inPlace > 0 {
					got++
				}
			}
			if got != c.inPlace {
				t.Errorf("%s: %d if_then_else in place, want %d", c.tree, got, c.inPlace)
			}
			ref, refErr := reference(ctx, c.tree, inputs, n)
			out, err := prog.Run(ctx, inputs, n)
			if refErr != nil && errors.Is(err, ErrFallback) {
				continue // an int overflow: the kernels report it
			}
			if refErr != nil || err != nil {
				t.Fatalf("%s over %d rows: %v, %v", c.tree, n, refErr, err)
			}
			if d := sameArrays(ref, out); d != "" {
				t.Errorf("%s over %d rows: kernels vs fused: %s", c.tree, n, d)
			}
			ref.Release()
			out.Release()
		}
		for _, a := range inputs {
			a.Release()
		}
	}
}

// TestFusedRecycledOutputs runs programs over the Go allocator, whose
// output buffers (values and, past 524,288 rows, validity) are recycled
// from the released outputs of earlier runs without being cleared: every
// answer must still be the kernels', whatever the earlier runs left in
// the buffers (other values, other nulls).
func TestFusedRecycledOutputs(t *testing.T) {
	ctx := &Context{Mem: memory.NewGoAllocator()}
	r := rand.New(rand.NewPCG(7, 8))
	cols := []arrow.DataType{arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float64,
		arrow.FixedWidthTypes.Boolean, arrow.PrimitiveTypes.Int64}
	g := &fusedGen{}
	in := func(i int) *tnode { return &tnode{input: i, typ: cols[i]} }
	trees := []*tnode{
		g.call("if_then_else", []*tnode{in(2), in(0), g.call("multiply", []*tnode{in(0), in(1)})}),
		g.call("try_add", []*tnode{in(3), in(3)}),
		g.call("less", []*tnode{in(0), in(1)}),
	}
	reused := 0
	for _, tree := range trees {
		prog, err := Compile(toNode(tree))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uintptr]bool{}
		for round, n := range []int{600_000, 600_000, 20_000, 600_000, 20_000, 20_000, 599_999} {
			inputs := make([]arrow.Array, len(cols))
			for i, dt := range cols {
				inputs[i] = randomColumn(r, ctx.Mem, dt, n)
			}
			ref, err := reference(ctx, tree, inputs, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := prog.Run(ctx, inputs, n)
			if err != nil {
				t.Fatalf("%s, run %d: %v", tree, round, err)
			}
			if d := sameArrays(ref, got); d != "" {
				t.Errorf("%s, run %d over %d rows: kernels vs fused: %s", tree, round, n, d)
			}
			for _, b := range got.Data().Buffers() {
				if b != nil && b.Len() > 0 {
					p := uintptr(unsafe.Pointer(&b.Bytes()[0]))
					if seen[p] {
						reused++
					}
					seen[p] = true
				}
			}
			got.Release()
			ref.Release()
		}
	}
	// Back to back, nothing else allocating: the buffer released is the
	// next one's. sync.Pool may drop what it holds (a GC, the race
	// detector): most runs, not all.
	prog, err := Compile(toNode(trees[0]))
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([]arrow.Array, len(cols))
	for i, dt := range cols {
		inputs[i] = randomColumn(r, ctx.Mem, dt, 20_000)
	}
	last := uintptr(0)
	for range 20 {
		got, err := prog.Run(ctx, inputs, 20_000)
		if err != nil {
			t.Fatal(err)
		}
		p := uintptr(unsafe.Pointer(&got.Data().Buffers()[1].Bytes()[0]))
		if p == last {
			reused++
		}
		last = p
		got.Release()
	}
	if reused < 5 {
		t.Errorf("%d output buffers recycled", reused)
	}
	t.Logf("%d buffers recycled", reused)
}
