package pysym

import (
	"fmt"

	"github.com/fletch-engine/fletch/features/expr"
)

// pyType is the Python type of a symbolic value. A value that may be None
// has its other type and null set; tNone is a value that is always None.
type pyType uint8

const (
	tNone pyType = iota
	tBool
	tInt
	tFloat
	tStr
	tSeq   // a tuple, list or set display: its elements are values
	tOther // a parameter of a type the interpreter does not compute on
)

var typeNames = [...]string{tNone: "NoneType", tBool: "bool", tInt: "int", tFloat: "float", tStr: "str", tSeq: "tuple", tOther: "object"}

func (t pyType) String() string { return typeNames[t] }

// val is a symbolic value: the expression of its value in every row (Arrow
// null where it is None) and its Python type.
type val struct {
	n    expr.Node
	t    pyType
	null bool // may be None in some rows
	// mixed: an int in some rows and a float in others (`a or 1.5`); the
	// expression is float. Only what tells them apart (str, repr) refuses it.
	mixed bool
	elts  []*val // tSeq
	kind  string // tSeq: "tuple", "list" or "set"; tOther: the feature type
	// unbound: assigned on some paths only (using it would raise
	// UnboundLocalError on the others).
	unbound bool
}

var none = &val{n: lit(nil), t: tNone, null: true}

func lit(v any) expr.Node { return &expr.Literal{Value: v} }

func fcall(name string, args ...expr.Node) expr.Node { return &expr.Call{Func: name, Args: args} }

func bin(op string, l, r expr.Node) expr.Node { return &expr.Binary{Op: op, L: l, R: r} }

func litOf(n expr.Node) (any, bool) {
	if l, ok := n.(*expr.Literal); ok {
		return l.Value, true
	}
	return nil, false
}

func litBool(n expr.Node) (bool, bool) {
	v, ok := litOf(n)
	b, isBool := v.(bool)
	return b, ok && isBool
}

// ite is `if c then a else b`, folded when c is a constant; a None branch
// is a mask over the other (no copy of its values).
func ite(c, a, b expr.Node) expr.Node {
	if v, ok := litBool(c); ok {
		if v {
			return a
		}
		return b
	}
	av, aLit := litOf(a)
	bv, bLit := litOf(b)
	switch {
	case aLit && av == nil && bLit && bv == nil:
		return a
	case aLit && av == nil:
		return fcall("mask_null", b, c)
	case bLit && bv == nil:
		return fcall("mask_null", a, not(c))
	}
	if u, ok := c.(*expr.Unary); ok && u.Op == "not" {
		return fcall("if_then_else", u.X, b, a)
	}
	return fcall("if_then_else", c, a, b)
}

// and / or / not of never-null conditions, folded on constants.
func and(a, b expr.Node) expr.Node {
	if v, ok := litBool(a); ok {
		if !v {
			return a
		}
		return b
	}
	if v, ok := litBool(b); ok && v {
		return a
	}
	return bin("and", a, b)
}

func or(a, b expr.Node) expr.Node {
	if v, ok := litBool(a); ok {
		if v {
			return a
		}
		return b
	}
	if v, ok := litBool(b); ok && !v {
		return a
	}
	return bin("or", a, b)
}

func not(a expr.Node) expr.Node {
	if v, ok := litBool(a); ok {
		return lit(!v)
	}
	if c, ok := a.(*expr.Call); ok && len(c.Args) == 1 {
		switch c.Func {
		case "is_null":
			return fcall("is_not_null", c.Args[0])
		case "is_not_null":
			return fcall("is_null", c.Args[0])
		}
	}
	if u, ok := a.(*expr.Unary); ok && u.Op == "not" {
		return u.X
	}
	return &expr.Unary{Op: "not", X: a}
}

// isNone is the condition "v is None" (never null).
func isNone(v *val) expr.Node {
	switch {
	case v.t == tNone:
		return lit(true)
	case !v.null:
		return lit(false)
	}
	return fcall("is_null", v.n)
}

// Errors. An error expression is a string per row: the exception the
// function raises there, null where it raises none; nil means it never
// raises. Python raises the first exception on its path, so errors compose
// in evaluation order (coalesce) and only on the path taken (guard).

func seqErr(a, b expr.Node) expr.Node {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	if v, ok := litOf(a); ok && v != nil {
		return a
	}
	return fcall("coalesce", a, b)
}

func guardErr(cond, e expr.Node) expr.Node {
	if e == nil {
		return nil
	}
	return ite(cond, e, lit(nil))
}

func iteErr(cond, a, b expr.Node) expr.Node {
	if a == nil && b == nil {
		return nil
	}
	if a == nil {
		a = lit(nil)
	}
	if b == nil {
		b = lit(nil)
	}
	return ite(cond, a, b)
}

// size counts the nodes of n as a tree: shared sub-expressions count once
// per use, as they are written out after inlining branches.
func size(n expr.Node) int {
	count := 0
	expr.Walk(n, func(expr.Node) bool { count++; return true })
	return count
}

// Unsupported is a construct the interpreter does not convert: the
// resolver runs in Python.
type Unsupported struct {
	What string
	At   Pos
}

func (u *Unsupported) Error() string { return fmt.Sprintf("%s: %s", u.At, u.What) }
