package planner

import (
	"errors"

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

// fusion is a fused sub-tree rooted at a call.
type fusion struct {
	prog   *functions.Program
	inputs []bexpr
}

// fuse compiles the fusable sub-trees of every column's expressions.
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

// fuseTree fuses the largest fusable sub-trees of b.
func fuseTree(b bexpr) {
	switch b := b.(type) {
	case *call:
		if b.fused == nil && functions.CanFuse(b.fn) {
			fz := &fusion{}
			keys := map[string]int{}
			root, calls := fz.node(b, keys)
			if calls >= 2 {
				if prog, err := functions.Compile(root); err == nil {
					fz.prog = prog
					b.fused = fz
					return
				}
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

// node translates b for the program; what it cannot compute becomes an
// input (one per distinct value, fused inside itself). calls counts the
// calls fused.
func (fz *fusion) node(b bexpr, keys map[string]int) (*functions.Node, int) {
	switch b := b.(type) {
	case *call:
		if functions.CanFuse(b.fn) {
			args := make([]*functions.Node, len(b.args))
			calls := 1
			for i, a := range b.args {
				n, c := fz.node(a, keys)
				args[i], calls = n, calls+c
			}
			return functions.Call(b.fn, args...), calls
		}
	case *castTo:
		if functions.CanCast(b.x.dataType(), b.typ) {
			x, calls := fz.node(b.x, keys)
			return functions.Cast(x, b.typ), calls
		}
	case *literal:
		if b.typ.ID() == arrow.NULL || functions.CanCast(b.typ, b.typ) {
			return functions.Const(b.value, b.typ), 0
		}
	}
	key := memoKey(b)
	i, ok := keys[key]
	if !ok {
		fuseTree(b)
		i = len(fz.inputs)
		keys[key] = i
		fz.inputs = append(fz.inputs, b)
	}
	return functions.Input(i, b.dataType()), 0
}

// evalFused runs b's program over frame f; ok false when the kernels must
// compute it (a kernel fails for these rows: they report it).
func (r *run) evalFused(f *frameData, b *call) (arrow.Array, bool, error) {
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
