package pysym

import (
	"fmt"
	"math"
	"regexp"

	"github.com/fletch-engine/fletch/features/expr"
)

// call evaluates a call: a builtin, a math function, a str method, a
// helper of the module or the output class (several outputs by name).
func (c *compiler) call(n *Call, e env) (*val, expr.Node) {
	switch fn := n.Fn.(type) {
	case *Name:
		if f, ok := c.r.Module.Funcs[fn.ID]; ok {
			if _, shadowed := e[fn.ID]; !shadowed {
				return c.helper(f, n, e)
			}
		}
		if fn.ID == c.r.Class && len(c.r.Outputs) > 1 {
			return c.construct(n, e)
		}
		if b, ok := builtins[fn.ID]; ok {
			args, err := c.args(n, e, fn.ID)
			v, err2 := b(c, args, n.At)
			return v, seqErr(err, err2)
		}
		c.fail(n.At, fmt.Sprintf("call of %s (not a builtin the interpreter knows, nor a function of this module)", fn.ID))
	case *Attr:
		if m, ok := fn.X.(*Name); ok && m.ID == "math" {
			if _, local := e["math"]; !local {
				f, ok := mathFuncs[fn.Name]
				if !ok {
					c.fail(n.At, "math."+fn.Name)
				}
				args, err := c.args(n, e, "math."+fn.Name)
				v, err2 := f(c, args, n.At)
				return v, seqErr(err, err2)
			}
		}
		recv, err := c.eval(fn.X, e)
		args, err2 := c.args(n, e, fn.Name)
		v, err3 := c.method(fn.Name, recv, args, n.At)
		return v, seqErr(err, seqErr(err2, err3))
	}
	c.fail(n.At, "call of a computed function")
	return nil, nil
}

// args evaluates positional arguments; keyword arguments need Python.
func (c *compiler) args(n *Call, e env, name string) ([]*val, expr.Node) {
	if len(n.Kw) > 0 {
		c.fail(n.At, fmt.Sprintf("keyword argument %s= of %s", n.Kw[0].Name, name))
	}
	var err expr.Node
	out := make([]*val, len(n.Args))
	for i, a := range n.Args {
		v, ea := c.eval(a, e)
		out[i], err = v, seqErr(err, ea)
	}
	return out, err
}

// construct is `Class(a=..., b=...)` returning several outputs.
func (c *compiler) construct(n *Call, e env) (*val, expr.Node) {
	if len(n.Args) > 0 {
		c.fail(n.At, c.r.Class+"(...) with positional arguments")
	}
	out := &val{t: tSeq, kind: "tuple", elts: make([]*val, len(c.r.Outputs))}
	var err expr.Node
	for _, kw := range n.Kw {
		i := -1
		for j, o := range c.r.Outputs {
			if o.Name == kw.Name {
				i = j
			}
		}
		if i < 0 {
			c.fail(n.At, fmt.Sprintf("%s(%s=...) is not an output of the resolver", c.r.Class, kw.Name))
		}
		v, ek := c.eval(kw.Value, e)
		out.elts[i], err = v, seqErr(err, ek)
	}
	for i := range out.elts {
		if out.elts[i] == nil {
			out.elts[i] = none
		}
	}
	return out, err
}

type builtin func(c *compiler, args []*val, at Pos) (*val, expr.Node)

var builtins map[string]builtin

func init() {
	builtins = map[string]builtin{
		"abs":   builtinAbs,
		"max":   func(c *compiler, a []*val, at Pos) (*val, expr.Node) { return c.extremum(">", "max", a, at) },
		"min":   func(c *compiler, a []*val, at Pos) (*val, expr.Node) { return c.extremum("<", "min", a, at) },
		"round": builtinRound,
		"len":   builtinLen,
		"int":   builtinInt,
		"float": builtinFloat,
		"str": func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
			c.arity("str", a, 1, at)
			return c.str(a[0], at), nil
		},
		"bool": func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
			c.arity("bool", a, 1, at)
			return &val{n: c.truth(a[0]), t: tBool}, nil
		},
	}
}

func (c *compiler) arity(name string, args []*val, n int, at Pos) {
	if len(args) != n {
		c.fail(at, fmt.Sprintf("%s with %d arguments", name, len(args)))
	}
}

// number checks a numeric argument of fn: None is a TypeError of the row.
func (c *compiler) number(fn string, v *val, at Pos) (*val, expr.Node) {
	if v.t == tNone {
		return none, c.msg(at, fmt.Sprintf("TypeError: bad operand type for %s(): 'NoneType'", fn))
	}
	if !isNum(v.t) {
		if v.t == tStr {
			return none, c.msg(at, fmt.Sprintf("TypeError: bad operand type for %s(): 'str'", fn))
		}
		c.fail(at, fmt.Sprintf("%s of %s", fn, describe(v)))
	}
	var err expr.Node
	if v.null {
		err = c.raiseIf(isNone(v), at, fmt.Sprintf("TypeError: must be real number, not NoneType (%s)", fn))
	}
	return numeric(v), err
}

func builtinAbs(c *compiler, a []*val, at Pos) (*val, expr.Node) {
	c.arity("abs", a, 1, at)
	x, err := c.number("abs", a[0], at)
	if x.t == tNone {
		return x, err
	}
	return &val{n: fcall("abs", x.n), t: x.t, null: x.null, mixed: x.mixed}, err
}

// extremum is max / min over arguments or one tuple/list display: Python
// keeps the first and replaces it by each later one that compares greater
// (less), so NaN and ties behave as in CPython.
func (c *compiler) extremum(op, name string, args []*val, at Pos) (*val, expr.Node) {
	if len(args) == 1 && args[0].t == tSeq {
		args = args[0].elts
	}
	if len(args) == 0 {
		return none, c.msg(at, fmt.Sprintf("ValueError: %s() arg is an empty sequence", name))
	}
	acc := args[0]
	var err expr.Node
	for _, x := range args[1:] {
		cond, ec := c.compare1(op, x, acc, at)
		err = seqErr(err, ec)
		acc = c.merge(cond, x, acc, at)
	}
	return acc, err
}

func builtinRound(c *compiler, a []*val, at Pos) (*val, expr.Node) {
	if len(a) != 1 && len(a) != 2 {
		c.fail(at, "round with more than 2 arguments")
	}
	x, err := c.number("round", a[0], at)
	if x.t == tNone {
		return x, err
	}
	if len(a) == 2 {
		if a[1].t == tNone {
			return c.roundInt(x, at, err)
		}
		if a[1].t != tInt || a[1].null {
			c.fail(at, "round(x, n) with n not an int")
		}
		if x.t == tInt {
			if d, ok := litOf(a[1].n); ok && d.(int64) >= 0 {
				return x, err
			}
			c.fail(at, "round(int, n) with a negative or variable n")
		}
		return &val{n: fcall("round", asFloat(x), a[1].n), t: tFloat, null: x.null}, err
	}
	return c.roundInt(x, at, err)
}

// roundInt is round(x) with one argument: an int, halves to even.
func (c *compiler) roundInt(x *val, at Pos, err expr.Node) (*val, expr.Node) {
	if x.t == tInt && !x.mixed {
		return x, err
	}
	return c.toInt(fcall("round", x.n), x, at, err)
}

// toInt converts a float expression f (derived from x) to an int as
// Python's int(), math.floor, round do: NaN and ±inf raise, and so does a
// value beyond fletch's 64-bit ints.
func (c *compiler) toInt(f expr.Node, x *val, at Pos, err expr.Node) (*val, expr.Node) {
	out := &val{n: fcall("to_int", f), t: tInt, null: x.null}
	valid := not(isNone(x))
	e := seqErr(c.raiseIf(and(valid, fcall("is_nan", x.n)), at, "ValueError: cannot convert float NaN to integer"),
		seqErr(c.raiseIf(and(valid, fcall("is_inf", x.n)), at, "OverflowError: cannot convert float infinity to integer"),
			c.raiseIf(and(valid, and(fcall("is_finite", x.n), fcall("is_null", out.n))), at, "OverflowError: int beyond the 64-bit range")))
	return out, seqErr(err, e)
}

func builtinLen(c *compiler, a []*val, at Pos) (*val, expr.Node) {
	c.arity("len", a, 1, at)
	x := a[0]
	switch x.t {
	case tSeq:
		return &val{n: lit(int64(len(x.elts))), t: tInt}, nil
	case tStr:
		var err expr.Node
		if x.null {
			err = c.raiseIf(isNone(x), at, "TypeError: object of type 'NoneType' has no len()")
		}
		return &val{n: fcall("length", x.n), t: tInt, null: x.null}, err
	case tNone:
		return none, c.msg(at, "TypeError: object of type 'NoneType' has no len()")
	case tOther:
		c.fail(at, "len of "+x.kind)
	}
	return none, c.msg(at, fmt.Sprintf("TypeError: object of type '%s' has no len()", x.t))
}

func builtinInt(c *compiler, a []*val, at Pos) (*val, expr.Node) {
	c.arity("int", a, 1, at)
	x := a[0]
	switch x.t {
	case tNone:
		return none, c.msg(at, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
	case tBool, tInt:
		if !x.mixed {
			v := numeric(x)
			return v, c.noneArg(x, at, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
		}
		return c.toInt(fcall("trunc", x.n), x, at, c.noneArg(x, at, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"))
	case tFloat:
		return c.toInt(fcall("trunc", x.n), x, at, c.noneArg(x, at, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"))
	case tStr:
		out := &val{n: fcall("to_int", x.n), t: tInt, null: x.null}
		err := c.noneArg(x, at, "TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'")
		bad := and(fcall("is_null", out.n), not(isNone(x)))
		if v, ok := litBool(bad); !ok || v {
			err = seqErr(err, ite(bad, fcall("concat", lit("ValueError: invalid literal for int() with base 10: "), quoted(x.n), c.msgSuffix(at)), lit(nil)))
		}
		return out, err
	}
	c.fail(at, "int of "+describe(x))
	return nil, nil
}

func builtinFloat(c *compiler, a []*val, at Pos) (*val, expr.Node) {
	c.arity("float", a, 1, at)
	x := a[0]
	const noneText = "TypeError: float() argument must be a string or a real number, not 'NoneType'"
	switch x.t {
	case tNone:
		return none, c.msg(at, noneText)
	case tBool, tInt, tFloat:
		v := numeric(x)
		return &val{n: fcall("to_float", v.n), t: tFloat, null: x.null}, c.noneArg(x, at, noneText)
	case tStr:
		out := &val{n: fcall("to_float", x.n), t: tFloat, null: x.null}
		bad := and(fcall("is_null", out.n), not(isNone(x)))
		err := seqErr(c.noneArg(x, at, noneText),
			ite(bad, fcall("concat", lit("ValueError: could not convert string to float: "), quoted(x.n), c.msgSuffix(at)), lit(nil)))
		return out, err
	}
	c.fail(at, "float of "+describe(x))
	return nil, nil
}

func (c *compiler) noneArg(x *val, at Pos, text string) expr.Node {
	if !x.null {
		return nil
	}
	return c.raiseIf(isNone(x), at, text)
}

func (c *compiler) msgSuffix(at Pos) expr.Node {
	return lit(fmt.Sprintf(" (%s, line %d)", c.r.Name, at.Line))
}

// str is Python's str(v).
func (c *compiler) str(v *val, at Pos) *val {
	var n expr.Node
	switch v.t {
	case tNone:
		return &val{n: lit("None"), t: tStr}
	case tStr:
		n = v.n
	case tBool:
		n = ite(v.n, lit("True"), lit("False"))
	case tInt, tFloat:
		if v.mixed {
			c.fail(at, "str of a value that is an int in some rows and a float in others")
		}
		n = fcall("to_string", v.n)
	default:
		c.fail(at, "str of "+describe(v))
	}
	if v.null {
		n = ite(isNone(v), lit("None"), n)
	}
	return &val{n: n, t: tStr}
}

type mathFunc func(c *compiler, args []*val, at Pos) (*val, expr.Node)

var mathFuncs map[string]mathFunc

// unaryMath is a math function of one float: fn is the kernel, domain the
// condition (on x) where CPython raises ValueError, and overflow whether a
// finite x giving ±inf raises OverflowError.
func unaryMath(fn string, domain func(x expr.Node) expr.Node, overflow bool) mathFunc {
	return func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
		c.arity("math."+fn, a, 1, at)
		x, err := c.number("math."+fn, a[0], at)
		if x.t == tNone {
			return x, err
		}
		xf := asFloat(x)
		out := &val{n: fcall(fn, xf), t: tFloat, null: x.null}
		valid := not(isNone(x))
		if domain != nil {
			err = seqErr(err, c.raiseIf(and(valid, fcall("coalesce", domain(xf), lit(false))), at, "ValueError: math domain error"))
		}
		if overflow {
			err = seqErr(err, c.raiseIf(and(valid, and(fcall("is_inf", out.n), fcall("is_finite", xf))), at, "OverflowError: math range error"))
		}
		return out, err
	}
}

// intMath is math.floor / ceil / trunc: an int.
func intMath(fn string) mathFunc {
	return func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
		c.arity("math."+fn, a, 1, at)
		x, err := c.number("math."+fn, a[0], at)
		if x.t == tNone || (x.t == tInt && !x.mixed) {
			return x, err
		}
		return c.toInt(fcall(fn, x.n), x, at, err)
	}
}

func floatPred(fn string) mathFunc {
	return func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
		c.arity("math."+fn, a, 1, at)
		x, err := c.number("math."+fn, a[0], at)
		if x.t == tNone {
			return x, err
		}
		return &val{n: fcall(fn, asFloat(x)), t: tBool, null: x.null}, err
	}
}

func init() {
	nonPositive := func(x expr.Node) expr.Node { return bin("<=", x, lit(0.0)) }
	mathFuncs = map[string]mathFunc{
		"sqrt":     unaryMath("sqrt", func(x expr.Node) expr.Node { return bin("<", x, lit(0.0)) }, false),
		"exp":      unaryMath("exp", nil, true),
		"log10":    unaryMath("log10", nonPositive, false),
		"log2":     unaryMath("log2", nonPositive, false),
		"sin":      unaryMath("sin", func(x expr.Node) expr.Node { return fcall("is_inf", x) }, false),
		"cos":      unaryMath("cos", func(x expr.Node) expr.Node { return fcall("is_inf", x) }, false),
		"tan":      unaryMath("tan", func(x expr.Node) expr.Node { return fcall("is_inf", x) }, false),
		"asin":     unaryMath("asin", func(x expr.Node) expr.Node { return bin(">", fcall("abs", x), lit(1.0)) }, false),
		"acos":     unaryMath("acos", func(x expr.Node) expr.Node { return bin(">", fcall("abs", x), lit(1.0)) }, false),
		"atan":     unaryMath("atan", nil, false),
		"degrees":  unaryMath("degrees", nil, false),
		"radians":  unaryMath("radians", nil, false),
		"fabs":     unaryMath("abs", nil, false),
		"floor":    intMath("floor"),
		"ceil":     intMath("ceil"),
		"trunc":    intMath("trunc"),
		"isnan":    floatPred("is_nan"),
		"isinf":    floatPred("is_inf"),
		"isfinite": floatPred("is_finite"),
		"log": func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
			if len(a) == 1 {
				return unaryMath("ln", nonPositive, false)(c, a, at)
			}
			c.arity("math.log", a, 2, at)
			x, e1 := unaryMath("ln", nonPositive, false)(c, a[:1], at)
			b, e2 := unaryMath("ln", nonPositive, false)(c, a[1:], at)
			v, e3 := c.binop("/", x, b, at)
			return v, seqErr(e1, seqErr(e2, e3))
		},
		"pow": func(c *compiler, a []*val, at Pos) (*val, expr.Node) {
			c.arity("math.pow", a, 2, at)
			x, e1 := c.number("math.pow", a[0], at)
			y, e2 := c.number("math.pow", a[1], at)
			if x.t == tNone || y.t == tNone {
				return none, seqErr(e1, e2)
			}
			xf, yf := asFloat(x), asFloat(y)
			out := &val{n: fcall("power", xf, yf), t: tFloat, null: x.null || y.null}
			valid := not(or(isNone(x), isNone(y)))
			dom := or(and(bin("==", xf, lit(0.0)), bin("<", yf, lit(0.0))),
				and(and(bin("<", xf, lit(0.0)), fcall("is_finite", xf)), and(fcall("is_finite", yf), bin("!=", yf, fcall("floor", yf)))))
			over := and(fcall("is_inf", out.n), and(fcall("is_finite", xf), fcall("is_finite", yf)))
			err := seqErr(c.raiseIf(and(valid, fcall("coalesce", dom, lit(false))), at, "ValueError: math domain error"),
				c.raiseIf(and(valid, fcall("coalesce", over, lit(false))), at, "OverflowError: math range error"))
			return out, seqErr(e1, seqErr(e2, err))
		},
	}
}

// method is a str method call.
func (c *compiler) method(name string, recv *val, args []*val, at Pos) (*val, expr.Node) {
	if recv.t == tNone {
		return none, c.msg(at, fmt.Sprintf("AttributeError: 'NoneType' object has no attribute '%s'", name))
	}
	if recv.t != tStr {
		c.fail(at, fmt.Sprintf("method .%s of %s", name, describe(recv)))
	}
	var err expr.Node
	if recv.null {
		err = c.raiseIf(isNone(recv), at, fmt.Sprintf("AttributeError: 'NoneType' object has no attribute '%s'", name))
	}
	strArgs := func(n int) []expr.Node {
		if len(args) != n {
			c.fail(at, fmt.Sprintf(".%s with %d arguments", name, len(args)))
		}
		out := []expr.Node{recv.n}
		for _, a := range args {
			if a.t != tStr || a.null {
				c.fail(at, fmt.Sprintf(".%s with a %s argument", name, describe(a)))
			}
			out = append(out, a.n)
		}
		return out
	}
	res := func(fn string, t pyType, n int) (*val, expr.Node) {
		return &val{n: fcall(fn, strArgs(n)...), t: t, null: recv.null}, err
	}
	switch name {
	case "lower":
		return res("py_lower", tStr, 0)
	case "upper":
		return res("py_upper", tStr, 0)
	case "strip":
		return res("py_strip", tStr, 0)
	case "lstrip":
		return res("py_lstrip", tStr, 0)
	case "rstrip":
		return res("py_rstrip", tStr, 0)
	case "startswith":
		return res("starts_with", tBool, 1)
	case "endswith":
		return res("ends_with", tBool, 1)
	case "replace":
		return res("replace", tStr, 2)
	case "find":
		return res("strpos", tInt, 1)
	}
	c.fail(at, "str method ."+name)
	return nil, nil
}

// fstring concatenates literal text and the str() of each field.
func (c *compiler) fstring(n *FString, e env) (*val, expr.Node) {
	var parts []expr.Node
	var err expr.Node
	for _, p := range n.Parts {
		if p.X == nil {
			parts = append(parts, lit(p.Lit))
			continue
		}
		v, ev := c.eval(p.X, e)
		err = seqErr(err, ev)
		if p.Conv == "r" && v.t == tStr {
			c.fail(n.At, "!r of a str in an f-string")
		}
		if p.Spec == "" {
			parts = append(parts, c.str(v, n.At).n)
			continue
		}
		parts = append(parts, c.format(v, p.Spec, n.At))
	}
	if len(parts) == 0 {
		return &val{n: lit(""), t: tStr}, err
	}
	if len(parts) == 1 {
		return &val{n: fcall("concat", parts[0], lit("")), t: tStr}, err
	}
	return &val{n: fcall("concat", parts...), t: tStr}, err
}

// format is format(v, spec) for a literal spec.
func (c *compiler) format(v *val, spec string, at Pos) expr.Node {
	if v.mixed || v.null || !(v.t == tInt || v.t == tFloat || v.t == tStr) || !specRE.MatchString(spec) {
		c.fail(at, fmt.Sprintf("format spec %q of %s", spec, describeMixed(v)))
	}
	fn := map[pyType]string{tInt: "py_format_int", tFloat: "py_format_float", tStr: "py_format_str"}[v.t]
	return fcall(fn, v.n, lit(spec))
}

// subscript is s[i] or s[lo:hi] on a str with int indices.
func (c *compiler) subscript(n *Subscript, e env) (*val, expr.Node) {
	x, err := c.eval(n.X, e)
	if !(x.t == tStr || x.t == tNone) {
		c.fail(n.At, "subscript of "+describe(x))
	}
	if sl, isSlice := n.Key.(*Slice); isSlice {
		return c.slice(x, sl, e, err)
	}
	i, ei := c.eval(n.Key, e)
	if !(i.t == tInt || i.t == tNone) || i.mixed {
		c.fail(n.At, "str index of "+describe(i))
	}
	err = seqErr(err, ei)
	if x.t == tNone {
		return none, seqErr(err, c.msg(n.At, "TypeError: 'NoneType' object is not subscriptable"))
	}
	if i.t == tNone {
		return none, seqErr(err, c.msg(n.At, "TypeError: string indices must be integers, not 'NoneType'"))
	}
	out := &val{n: fcall("substr", x.n, i.n, lit(int64(1))), t: tStr, null: x.null || i.null}
	l := fcall("length", x.n)
	oob := fcall("coalesce", or(bin(">=", i.n, l), bin("<", i.n, &expr.Unary{Op: "-", X: l})), lit(false))
	err = seqErr(err, seqErr(c.raiseIf(isNone(x), n.At, "TypeError: 'NoneType' object is not subscriptable"),
		seqErr(c.raiseIf(isNone(i), n.At, "TypeError: string indices must be integers, not 'NoneType'"),
			c.raiseIf(oob, n.At, "IndexError: string index out of range"))))
	return out, err
}

// slice is s[lo:hi] (no step): bounds default to the ends.
func (c *compiler) slice(x *val, sl *Slice, e env, err expr.Node) (*val, expr.Node) {
	if sl.Step != nil {
		c.fail(sl.At, "a slice with a step")
	}
	bound := func(b Node, def int64) expr.Node {
		if b == nil {
			return lit(def)
		}
		v, eb := c.eval(b, e)
		if v.t != tInt || v.null || v.mixed {
			c.fail(sl.At, "a slice bound of "+describe(v))
		}
		err = seqErr(err, eb)
		return v.n
	}
	lo, hi := bound(sl.Lo, 0), bound(sl.Hi, math.MaxInt64)
	if x.t == tNone {
		return none, seqErr(err, c.msg(sl.At, "TypeError: 'NoneType' object is not subscriptable"))
	}
	err = seqErr(err, c.raiseIf(isNone(x), sl.At, "TypeError: 'NoneType' object is not subscriptable"))
	return &val{n: fcall("py_slice", x.n, lo, hi), t: tStr, null: x.null}, err
}

// specRE is the part of Python's format-spec mini-language that the
// py_format_* kernels implement (operators/functions/python.go).
var specRE = regexp.MustCompile(`^(?:(.)?([<>=^]))?([-+ ])?(0)?([0-9]+)?([,_])?(?:\.([0-9]+))?([bdeEfFgGosxX%])?$`)
