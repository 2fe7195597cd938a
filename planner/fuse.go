package planner

import (
	"errors"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/operators/functions"
)

// Fusion: a sub-tree of calls the function library can evaluate chunk by
// chunk (arithmetic, comparisons, boolean logic, if_then_else, coalesce,
// ... over ints, floats and bools; functions.CanFuse) is compiled at plan
// time into one functions.Program. Over a frame of fuseRows rows or more,
// the sub-tree's root runs the program: the whole sub-tree per chunk, its
// intermediate values never materialized as arrays. What the program
// cannot compute (strings, aggregations, has-one paths, other functions)
// is evaluated as before and enters it as an input column. Smaller frames
// (the online path's one row) evaluate call by call: no program to run,
// and nothing added to their cost but a nil test.

// fuseRows is the frame size from which fused calls run their program.
const fuseRows = memoRows

// fusion is a fused sub-tree rooted at a call. Its program is compiled on
// the first run over a large frame: a plan that only ever serves a few
// rows (the online path) never pays for it.
type fusion struct {
	once   sync.Once
	prog   *functions.Program // nil: the kernels compute the call
	inputs []bexpr
}

// fuse marks the fusable sub-trees of every column's expressions.
func (p *Plan) fuse() {
	for _, f := range p.frames {
		for _, c := range f.cols {
			if c.expr != nil {
				fuseTree(c.expr)
			}
			if c.raises != nil {
				fuseTree(c.raises)
			}
		}
	}
}

// fuseTree marks the largest fusable sub-trees of b (of two calls or more).
func fuseTree(b bexpr) {
	switch b := b.(type) {
	case *call:
		if b.fused == nil && functions.CanFuse(b.fn) {
			var inputs []bexpr
			if fusedCalls(b, &inputs) >= 2 {
				b.fused = &fusion{}
				for _, in := range inputs {
					fuseTree(in)
				}
				return
			}
		}
		for _, a := range b.args {
			fuseTree(a)
		}
	case *castTo:
		fuseTree(b.x)
	case *hasOneRef:
		fuseTree(b.inner)
	case *aggregation:
		for _, x := range append(append([]bexpr{}, b.filters...), b.value, b.sortBy) {
			if x != nil {
				fuseTree(x)
			}
		}
	}
}

// fusable says whether the program computes b itself (rather than taking
// it as an input).
func fusable(b bexpr) bool {
	switch b := b.(type) {
	case *call:
		return functions.CanFuse(b.fn)
	case *castTo:
		return functions.CanCast(b.x.dataType(), b.typ)
	case *literal:
		return b.typ.ID() == arrow.NULL || functions.CanCast(b.typ, b.typ)
	}
	return false
}

// fusedCalls counts the calls of b's fused sub-tree and appends its
// inputs.
func fusedCalls(b bexpr, inputs *[]bexpr) int {
	if !fusable(b) {
		*inputs = append(*inputs, b)
		return 0
	}
	n := 0
	switch b := b.(type) {
	case *call:
		n = 1
		for _, a := range b.args {
			n += fusedCalls(a, inputs)
		}
	case *castTo:
		n = fusedCalls(b.x, inputs)
	}
	return n
}

// compile builds the program of the sub-tree rooted at b.
func (fz *fusion) compile(b *call) {
	root := fz.node(b, map[string]int{})
	if prog, err := functions.Compile(root); err == nil {
		fz.prog = prog
	}
}

// node translates b for the program; what it does not compute becomes an
// input (one per distinct value).
func (fz *fusion) node(b bexpr, keys map[string]int) *functions.Node {
	if fusable(b) {
		switch b := b.(type) {
		case *call:
			args := make([]*functions.Node, len(b.args))
			for i, a := range b.args {
				args[i] = fz.node(a, keys)
			}
			return functions.Call(b.fn, args...)
		case *castTo:
			return functions.Cast(fz.node(b.x, keys), b.typ)
		case *literal:
			return functions.Const(b.value, b.typ)
		}
	}
	key := ""
	if c, ok := b.(*call); ok {
		key = c.key
	} else {
		key = memoKey(b)
	}
	i, ok := keys[key]
	if !ok {
		i = len(fz.inputs)
		keys[key] = i
		fz.inputs = append(fz.inputs, b)
	}
	return functions.Input(i, b.dataType())
}

// evalFused runs b's program over frame f; ok false when the kernels must
// compute it (a kernel fails for these rows: they report it).
func (r *run) evalFused(f *frameData, b *call) (arrow.Array, bool, error) {
	b.fused.once.Do(func() { b.fused.compile(b) })
	if b.fused.prog == nil {
		return nil, false, nil
	}
	inputs := make([]arrow.Array, len(b.fused.inputs))
	defer func() {
		for _, a := range inputs {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, x := range b.fused.inputs {
		v, err := r.eval(f, x)
		if err != nil {
			return nil, true, err
		}
		inputs[i] = v
	}
	out, err := b.fused.prog.Run(r.fctx, inputs, f.n)
	if errors.Is(err, functions.ErrFallback) {
		return nil, false, nil
	}
	return out, true, err
}
