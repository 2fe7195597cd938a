package functions

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
)

// Fused evaluation. A tree of kernel calls over ints, floats and bools
// (arithmetic, comparisons, boolean logic, if_then_else, coalesce, null
// tests, ...) is compiled once into a Program that evaluates the whole tree
// per chunk of rows: each node's values live in a chunk-sized vector reused
// from chunk to chunk (it stays in the CPU's cache), and only the root's
// values are written to an Arrow array. Evaluated call by call, each kernel
// allocates, writes and later frees an array the size of the batch, which
// is most of the cost of a compiled Python resolver over many rows
// (docs/BENCHMARKS.md, "Compiled Python resolvers").
//
// A Program computes exactly what the kernels compute: the same values in
// valid rows, the same validity. Where a kernel fails for a batch (an int
// overflow, an int beyond 2**53 converted to a float), Run returns
// ErrFallback instead, and the caller evaluates the tree with the kernels,
// which report the error as they always do.

// chunkRows is the rows per chunk: 4 KiB per int or float vector, so that
// the vectors of a tree of a few dozen nodes stay in L2 (256 to 2,048 rows
// measured within the machine's noise of each other; BenchmarkFused).
const (
	chunkRows  = 512
	chunkWords = chunkRows / 64
)

// ErrFallback says that Program.Run could not reproduce the kernels'
// result for this batch (a kernel would fail): evaluate it with them.
var ErrFallback = errors.New("fused evaluation falls back to the kernels")

type nodeKind uint8

const (
	nInput nodeKind = iota
	nConst
	nCall
	nCast
)

// Node is an expression to compile: an input column, a constant, a call of
// a Bound function or a conversion.
type Node struct {
	kind  nodeKind
	typ   arrow.DataType
	fn    *Bound
	args  []*Node
	input int
	value any
}

// Input is input column i of Program.Run, of type t. Any type is accepted
// where only its validity is read (is_null).
func Input(i int, t arrow.DataType) *Node { return &Node{kind: nInput, typ: t, input: i} }

// Const is a constant (nil: null) of type t.
func Const(v any, t arrow.DataType) *Node { return &Node{kind: nConst, typ: t, value: v} }

// Call is fn over args; CanFuse(fn) must hold.
func Call(fn *Bound, args ...*Node) *Node {
	return &Node{kind: nCall, typ: fn.Out, fn: fn, args: args}
}

// Cast converts x to t as coerce.Array does (int to float, null to any).
func Cast(x *Node, t arrow.DataType) *Node { return &Node{kind: nCast, typ: t, args: []*Node{x}} }

// CanCast says whether Cast from → to compiles.
func CanCast(from, to arrow.DataType) bool {
	return arrow.TypeEqual(from, to) && fixedType(to) != tyNone ||
		from.ID() == arrow.INT64 && to.ID() == arrow.FLOAT64 ||
		from.ID() == arrow.NULL && fixedType(to) != tyNone
}

// CanFuse says whether a Program evaluates calls of fn.
func CanFuse(fn *Bound) bool { return fn != nil && fn.fused != nil }

// vty is the type of a vector: its values' representation.
type vty uint8

const (
	tyNone  vty = iota
	tyInt       // []int64
	tyFloat     // []float64
	tyBool      // bits, 64 rows a word
	tyAny       // no values: only the validity is read
)

func fixedType(dt arrow.DataType) vty {
	switch dt.ID() {
	case arrow.INT64:
		return tyInt
	case arrow.FLOAT64:
		return tyFloat
	case arrow.BOOL:
		return tyBool
	}
	return tyNone
}

// vec is a node's vector for the current chunk. Values and validity may
// alias another node's (or an input's) when equal; a node writes only its
// own scratch (fs, is, bs, vs).
type vec struct {
	f  []float64
	i  []int64
	b  []uint64
	v  []uint64 // validity; nil: every row valid
	fs []float64
	is []int64
	bs []uint64
	vs []uint64
	// own says that f or i is a scratch vector taken over from a dead
	// register (an if_then_else in place); set only by such steps.
	own bool
	// pend is, for an if_then_else in place whose reader applies its
	// patch (Program.holdPatches), the rows f still takes from register
	// pendFrom; nil: none. ps is its storage.
	pend     []uint64
	pendFrom int
	ps       [chunkWords]uint64
}

// owns says whether v's values are a scratch vector of its own (computed
// into, or taken over), not another register's or an input's.
func (v *vec) owns() bool {
	switch {
	case v.own:
		return true
	case len(v.f) > 0:
		return len(v.fs) > 0 && &v.f[0] == &v.fs[0]
	case len(v.i) > 0:
		return len(v.is) > 0 && &v.i[0] == &v.is[0]
	}
	return false
}

// step computes one node over the current chunk of n rows; false: fall
// back to the kernels.
type step func(r []vec, n int) bool

// reg is a compiled node: its register and how it is computed.
type reg struct {
	ty    vty
	input int // nInput: the input column, else -1
	konst bool
	value any
	build opBuilder // nil: not computed (an input or a constant)
	args  []int
	// passes are the registers whose vectors this one may pass on as its
	// own, without a copy (mask_null, if_then_else, ...).
	passes []int
	// pass is the register whose values this one passes on unchanged
	// (mask_null, to_float of a float), else -1.
	pass int
	// inPlace is, for an if_then_else computed in place, the argument
	// (1: then, 2: else) whose vector it overwrites; 0: none.
	inPlace int
	// arith is, for float +, - and *, the operation; else 0.
	arith byte
	// lazy says that this register's values are computed by the
	// if_then_else in place over it, only in the rows it keeps
	// (Program.deferArith).
	lazy bool
	// hold says that this if_then_else in place leaves its patch to the
	// if_then_else in place over it (Program.holdPatches).
	hold bool
}

// Program is a compiled tree. It is safe for concurrent use.
type Program struct {
	regs   []reg
	steps  []step
	inputs []int // per input column, its register (-1: unused)
	out    int
	// sink is the register whose values the root passes on: it computes
	// straight into the output array (-1: none, the root's values are
	// copied).
	sink  int
	outTy arrow.DataType
	pool  sync.Pool
	// outs recycles the output arrays' buffers (over the Go allocator).
	outs recycler
}

// Compile compiles the tree rooted at root, sharing equal sub-trees.
func Compile(root *Node) (*Program, error) {
	p := &Program{outTy: root.typ}
	if fixedType(root.typ) == tyNone {
		return nil, fmt.Errorf("cannot fuse a %s result", root.typ)
	}
	c := &compiler{p: p, keys: map[string]int{}}
	out, err := c.node(root)
	if err != nil {
		return nil, err
	}
	p.out, p.sink = out, out
	readers := make([][]int, len(p.regs))
	for id, g := range p.regs {
		for _, a := range g.args {
			readers[a] = append(readers[a], id)
		}
	}
	p.placeSelects(readers)
	p.deferArith(readers)
	p.holdPatches(readers)
	for {
		g := p.regs[p.sink]
		if g.pass >= 0 {
			p.sink = g.pass
		} else if g.inPlace > 0 {
			p.sink = g.args[g.inPlace]
		} else {
			break
		}
	}
	if g := p.regs[p.sink]; g.build == nil || g.ty != tyFloat && g.ty != tyInt {
		p.sink = -1
	}
	for d, g := range p.regs {
		switch {
		case g.build == nil, g.lazy:
		case g.inPlace > 0:
			var lz *lazyArith
			if y := g.args[g.inPlace]; p.regs[y].lazy {
				yg := p.regs[y]
				lz = &lazyArith{op: yg.arith, a: yg.args[0], b: yg.args[1], step: yg.build(y, yg.args)}
			}
			p.steps = append(p.steps, choice{ty: g.ty, into: g.inPlace, lazy: lz, hold: g.hold}.build(d, g.args))
		default:
			p.steps = append(p.steps, g.build(d, g.args))
		}
	}
	p.pool.New = func() any { return p.newState() }
	return p, nil
}

type compiler struct {
	p    *Program
	keys map[string]int
}

// node compiles x and returns its register. Equal sub-trees share one:
// a node's key names its arguments by register.
func (c *compiler) node(x *Node) (int, error) {
	args := make([]int, len(x.args))
	for i, a := range x.args {
		r, err := c.node(a)
		if err != nil {
			return 0, err
		}
		args[i] = r
	}
	r := reg{input: -1, pass: -1}
	var key string
	switch x.kind {
	case nCast:
		return c.cast(args[0], x.args[0].typ, x.typ)
	case nInput:
		key = "$" + strconv.Itoa(x.input) + "::" + x.typ.String()
		r.ty, r.input = fixedType(x.typ), x.input
		if r.ty == tyNone {
			r.ty = tyAny
		}
	case nConst:
		key = fmt.Sprintf("%T:%v::%s", x.value, x.value, x.typ)
		r.ty, r.konst, r.value = fixedType(x.typ), true, x.value
		if x.typ.ID() == arrow.NULL && x.value == nil {
			r.ty = tyAny
		} else if err := checkConst(x.value, r.ty); err != nil {
			return 0, err
		}
	case nCall:
		op := x.fn.fused
		if op == nil || len(x.args) != len(x.fn.Args) {
			return 0, fmt.Errorf("cannot fuse %s", x.fn.Name)
		}
		var b strings.Builder
		b.WriteString(x.fn.Name)
		for i, a := range x.args {
			// The implicit conversions the kernel's binding chose.
			if want := x.fn.Args[i]; fixedType(want) != tyNone {
				var err error
				if args[i], err = c.cast(args[i], a.typ, want); err != nil {
					return 0, err
				}
			}
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(args[i]))
		}
		b.WriteString("::")
		b.WriteString(x.typ.String())
		key = b.String()
		if id, ok := c.keys[key]; ok {
			return id, nil
		}
		r.ty = fixedType(x.typ)
		r.build, r.args = op, args
		if r.ty == tyFloat && len(args) == 2 && c.p.regs[args[0]].ty == tyFloat && c.p.regs[args[1]].ty == tyFloat {
			r.arith = floatArithOp(x.fn.Name)
		}
		for _, k := range mayPass(x.fn) {
			r.passes = append(r.passes, args[k])
		}
		if passesValues(x.fn) {
			r.pass = args[0]
		}
	}
	if id, ok := c.keys[key]; ok {
		return id, nil
	}
	return c.add(r, key)
}

// add appends register r, known by key.
func (c *compiler) add(r reg, key string) (int, error) {
	c.p.regs = append(c.p.regs, r)
	id := len(c.p.regs) - 1
	if r.input >= 0 {
		for len(c.p.inputs) <= r.input {
			c.p.inputs = append(c.p.inputs, -1)
		}
		if c.p.inputs[r.input] >= 0 {
			return 0, fmt.Errorf("input %d given two types", r.input)
		}
		c.p.inputs[r.input] = id
	}
	c.keys[key] = id
	return id, nil
}

// cast compiles the conversion of register a (of type from) to to.
func (c *compiler) cast(a int, from, to arrow.DataType) (int, error) {
	if arrow.TypeEqual(from, to) {
		return a, nil
	}
	key := "cast," + strconv.Itoa(a) + "::" + to.String()
	if r, ok := c.keys[key]; ok {
		return r, nil
	}
	r := reg{input: -1, pass: -1, ty: fixedType(to)}
	src := c.p.regs[a]
	switch {
	case !CanCast(from, to):
		return 0, fmt.Errorf("cannot fuse a conversion from %s to %s", from, to)
	case from.ID() == arrow.NULL:
		r.konst = true
	case src.konst && src.value != nil && src.value.(int64) <= 1<<53 && src.value.(int64) >= -(1<<53):
		r.konst, r.value = true, float64(src.value.(int64))
	default:
		r.build, r.args = castIntFloat, []int{a}
	}
	return c.add(r, key)
}

// placeSelects marks the if_then_else of ints or floats that can write
// their result into a branch's vector (the else branch preferred) instead
// of a vector of their own: the branch is computed by the program and
// nothing reads its values later (directly or through a register passing
// them on). Most rows then stay where they are, and only the rows of the
// other branch are copied in.
func (p *Program) placeSelects(readers [][]int) {
	for u := range p.regs {
		g := &p.regs[u]
		if g.build == nil || len(g.args) != 3 || len(g.passes) != 2 || g.ty != tyFloat && g.ty != tyInt {
			continue
		}
		for _, k := range []int{2, 1} {
			if p.canTake(u, k, readers) {
				g.inPlace = k
				break
			}
		}
	}
}

// deferArith lets an if_then_else in place over a float +, - or * compute
// the operation itself, in one pass with its patch: the operation's
// values in the rows the if_then_else keeps, the other branch's in the
// others (a pass over the chunk saved, and the operation never runs for a
// chunk wholly on the other side). The operation must have no other
// reader, and no step between the two may overwrite a vector in place
// (it could be one the operation reads).
func (p *Program) deferArith(readers [][]int) {
	for u, g := range p.regs {
		if g.inPlace == 0 {
			continue
		}
		y := g.args[g.inPlace]
		if p.regs[y].arith == 0 || len(readers[y]) != 1 {
			continue
		}
		p.regs[y].lazy = p.clearBetween(y, u)
	}
}

// holdPatches lets an if_then_else of floats in place over another one
// apply both patches in one pass: the inner one leaves its rows pending.
// Python's if/elif chains reassigning one variable compile to such
// chains. The inner one must have no other reader, must not compute an
// operation itself (deferArith) or hold its own inner one's patch, and no
// step between the two may overwrite a vector in place.
func (p *Program) holdPatches(readers [][]int) {
	for u, g := range p.regs {
		if g.inPlace == 0 || g.ty != tyFloat {
			continue
		}
		t := g.args[g.inPlace]
		tg := p.regs[t]
		if tg.inPlace == 0 || tg.hold || p.regs[tg.args[tg.inPlace]].lazy || p.regs[tg.args[tg.inPlace]].hold || len(readers[t]) != 1 {
			continue
		}
		if p.clearBetween(t, u) {
			p.regs[t].hold = true
		}
	}
}

// clearBetween says whether no step after register a and before b
// overwrites a vector in place.
func (p *Program) clearBetween(a, b int) bool {
	for v := a + 1; v < b; v++ {
		if p.regs[v].inPlace > 0 {
			return false
		}
	}
	return true
}

// canTake says whether if_then_else u may overwrite the vector of its
// argument k: a computed register (not an input, not a constant), of u's
// type, whose values nobody reads after u, and that u reads once.
func (p *Program) canTake(u, k int, readers [][]int) bool {
	g := p.regs[u]
	t := g.args[k]
	if tg := p.regs[t]; tg.build == nil || tg.ty != g.ty || g.args[3-k] == t {
		return false
	}
	// The registers that may hold t's vector: t and who passes it on.
	holders := []int{t}
	for i := 0; i < len(holders); i++ {
		h := holders[i]
		if h == p.out {
			return false
		}
		for _, v := range readers[h] {
			switch {
			case v == u && h == t:
				// u reading its branch k: the read this is for.
			case v >= u:
				return false
			default:
				for _, x := range p.regs[v].passes {
					if x == h {
						holders = append(holders, v)
					}
				}
			}
		}
	}
	return true
}

func checkConst(v any, t vty) error {
	ok := v == nil
	switch v.(type) {
	case int64:
		ok = t == tyInt
	case float64:
		ok = t == tyFloat
	case bool:
		ok = t == tyBool
	}
	if !ok || t == tyNone {
		return fmt.Errorf("cannot fuse the constant %v", v)
	}
	return nil
}

// state is one Run's registers.
type state struct{ r []vec }

func (p *Program) newState() any {
	s := &state{r: make([]vec, len(p.regs))}
	for i, g := range p.regs {
		v := &s.r[i]
		if g.input >= 0 {
			if g.ty == tyBool {
				v.bs = make([]uint64, chunkWords)
			}
			v.vs = make([]uint64, chunkWords)
			continue
		}
		switch g.ty {
		case tyInt:
			v.is = make([]int64, chunkRows)
		case tyFloat:
			v.fs = make([]float64, chunkRows)
		case tyBool:
			v.bs = make([]uint64, chunkWords)
		}
		v.vs = make([]uint64, chunkWords)
		if g.konst {
			// Constants are filled once per state and never written.
			switch x := g.value.(type) {
			case int64:
				for k := range v.is {
					v.is[k] = x
				}
			case float64:
				for k := range v.fs {
					v.fs[k] = x
				}
			case bool:
				if x {
					for k := range v.bs {
						v.bs[k] = ^uint64(0)
					}
				}
			}
			v.f, v.i, v.b = v.fs, v.is, v.bs
			if g.value == nil {
				v.v = v.vs // all clear: null
			}
		}
	}
	return s
}

// Run evaluates the program over n rows of inputs (arrays of n rows, of
// the types given to Input) into a new array allocated with ctx.Mem.
func (p *Program) Run(ctx *Context, inputs []arrow.Array, n int) (arrow.Array, error) {
	if len(inputs) < len(p.inputs) {
		return nil, fmt.Errorf("fused program: %d inputs for %d", len(inputs), len(p.inputs))
	}
	s := p.pool.Get().(*state)
	defer func() {
		for _, id := range p.inputs {
			if id >= 0 {
				v := &s.r[id]
				v.f, v.i, v.b, v.v = nil, nil, nil, nil
			}
		}
		p.pool.Put(s)
	}()
	out := &s.r[p.out]
	ty := p.regs[p.out].ty
	var of []float64
	var oi []int64
	var ob []uint64
	words := (n + 63) / 64
	// Every byte of both buffers is written below: recycled, not cleared.
	mem := p.outs.over(ctx.Mem)
	vals := memory.NewResizableBuffer(mem)
	switch ty {
	case tyFloat:
		vals.Resize(n * 8)
		of = arrow.GetData[float64](vals.Bytes())[:n]
	case tyInt:
		vals.Resize(n * 8)
		oi = arrow.GetData[int64](vals.Bytes())[:n]
	case tyBool:
		vals.Resize(words * 8)
		ob = asWords(vals.Bytes())
	}
	valid := memory.NewResizableBuffer(mem)
	valid.Resize(words * 8)
	ov := asWords(valid.Bytes())
	anyNull := false
	var sink *vec
	if p.sink >= 0 {
		sink = &s.r[p.sink]
		fs, is := sink.fs, sink.is
		defer func() { sink.fs, sink.is = fs, is }()
	}
	for lo := 0; lo < n; lo += chunkRows {
		m := min(chunkRows, n-lo)
		if sink != nil {
			switch ty {
			case tyFloat:
				sink.fs = of[lo : lo+m]
			case tyInt:
				sink.is = oi[lo : lo+m]
			}
		}
		for k, id := range p.inputs {
			if id >= 0 {
				load(&s.r[id], p.regs[id].ty, inputs[k], lo, m)
			}
		}
		for _, st := range p.steps {
			if !st(s.r, m) {
				vals.Release()
				valid.Release()
				return nil, ErrFallback
			}
		}
		w0, mw := lo/64, (m+63)/64
		switch ty {
		case tyFloat:
			if &out.f[0] != &of[lo] {
				copy(of[lo:lo+m], out.f[:m])
			}
		case tyInt:
			if &out.i[0] != &oi[lo] {
				copy(oi[lo:lo+m], out.i[:m])
			}
		case tyBool:
			copy(ob[w0:w0+mw], out.b[:mw])
		}
		if out.v == nil {
			for k := range ov[w0 : w0+mw] {
				ov[w0+k] = ^uint64(0)
			}
		} else {
			copy(ov[w0:w0+mw], out.v[:mw])
			anyNull = true
		}
	}
	nulls := 0
	if anyNull {
		nulls = n - bitutil.CountSetBits(valid.Bytes(), 0, n)
	}
	if nulls == 0 {
		valid.Release()
		valid = nil
	}
	return operators.FromBuffers(p.outTy, n, valid, nulls, vals), nil
}

// recycler is an allocator over the Go allocator that keeps the large
// buffers freed (by the release of a program's output arrays) for the
// program's next runs: a 1M-row float output is 8 MB, which the Go
// allocator clears (~0.5 ns a row) or, fresh from the kernel, faults in
// page by page (~4 ns a row on the benchmark machine; docs/BENCHMARKS.md
// §12.2). The buffers are not cleared: Run writes every byte of its
// output. Kept in a sync.Pool, so the GC still reclaims them when idle.
// Over another allocator (a checked one in tests, cgo) it is not used:
// that allocator accounts for, or frees, its memory itself.
type recycler struct {
	free sync.Map // size class → *sync.Pool of *[]byte from the Go allocator
}

// goMem allocates the recycled buffers: Go allocators are stateless, one
// is any other.
var goMem = memory.NewGoAllocator()

// recycleBytes is the size from which freed buffers are kept.
const recycleBytes = 64 << 10

// over returns the allocator for output buffers over mem.
func (c *recycler) over(mem memory.Allocator) memory.Allocator {
	if _, ok := mem.(*memory.GoAllocator); !ok {
		return mem
	}
	return c
}

func (c *recycler) Allocate(size int) []byte {
	if size < recycleBytes {
		return goMem.Allocate(size)
	}
	class := sizeClass(size)
	if free, ok := c.free.Load(class); ok {
		if b, ok := free.(*sync.Pool).Get().(*[]byte); ok {
			return (*b)[:size]
		}
	}
	return goMem.Allocate(class)[:size]
}

// sizeClass rounds n up to a multiple of an eighth of the power of two
// above it: at most 25 % more, and a bounded number of classes (five an
// octave) however batch sizes vary.
func sizeClass(n int) int {
	step := 1 << max(bits.Len(uint(n-1))-3, 0)
	return (n + step - 1) &^ (step - 1)
}

func (c *recycler) Reallocate(size int, b []byte) []byte { return goMem.Reallocate(size, b) }

func (c *recycler) Free(b []byte) {
	if len(b) >= recycleBytes {
		b = b[:cap(b)]
		free, _ := c.free.LoadOrStore(len(b), &sync.Pool{})
		free.(*sync.Pool).Put(&b)
	}
}

// asWords views a buffer's bytes (a multiple of 8) as 64-bit words.
func asWords(b []byte) []uint64 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
}

// load points v at rows [lo, lo+m) of a: the values in place for ints and
// floats, bits copied for bools and validity.
func load(v *vec, ty vty, a arrow.Array, lo, m int) {
	d := a.Data()
	off := d.Offset() + lo
	switch ty {
	case tyFloat:
		v.f = arrow.GetData[float64](d.Buffers()[1].Bytes())[off : off+m]
	case tyInt:
		v.i = arrow.GetData[int64](d.Buffers()[1].Bytes())[off : off+m]
	case tyBool:
		v.b = copyBits(v.bs, d.Buffers()[1].Bytes(), off, m)
	}
	switch {
	case a.NullN() == 0:
		v.v = nil
	case d.Buffers()[0] == nil: // a null-typed array
		v.v = v.vs[:(m+63)/64]
		clear(v.v)
	default:
		v.v = copyBits(v.vs, d.Buffers()[0].Bytes(), off, m)
	}
}

func copyBits(dst []uint64, src []byte, off, m int) []uint64 {
	dst = dst[:(m+63)/64]
	db := unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(dst)*8)
	if off%8 == 0 {
		copy(db, src[off/8:min(len(src), off/8+(m+7)/8)])
	} else {
		bitutil.CopyBitmap(src, off, m, db, 0)
	}
	return dst
}
