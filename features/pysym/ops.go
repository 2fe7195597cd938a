package pysym

import (
	"fmt"
	"math"

	"github.com/fletch-engine/fletch/features/expr"
)

var mathConsts = map[string]float64{"pi": math.Pi, "e": math.E, "tau": 2 * math.Pi, "inf": math.Inf(1), "nan": math.NaN()}

func isNum(t pyType) bool { return t == tBool || t == tInt || t == tFloat }

// numeric makes a bool an int (True + 1 is 2).
func numeric(v *val) *val {
	if v.t != tBool {
		return v
	}
	return &val{n: fcall("to_int", v.n), t: tInt, null: v.null}
}

// asFloat is v's expression as a float: an int converts as Python's
// float(int) does (to the nearest float, with no error beyond 2**53).
func asFloat(v *val) expr.Node {
	if v.t != tInt && v.t != tBool {
		return v.n
	}
	if x, ok := litOf(v.n); ok {
		if i, isInt := x.(int64); isInt {
			return lit(float64(i))
		}
	}
	return fcall("to_float", numeric(v).n)
}

// noneOperand is the TypeError of an operator applied to None.
func (c *compiler) noneOperand(op string, a, b *val, at Pos) expr.Node {
	if !a.null && !b.null {
		return nil
	}
	name := func(v *val, isNull bool) string {
		if isNull {
			return "NoneType"
		}
		return v.t.String()
	}
	text := func(an, bn bool) string {
		return fmt.Sprintf("TypeError: unsupported operand type(s) for %s: '%s' and '%s'", op, name(a, an), name(b, bn))
	}
	na, nb := isNone(a), isNone(b)
	return ite(na, ite(nb, c.msg(at, text(true, true)), c.msg(at, text(true, false))),
		ite(nb, c.msg(at, text(false, true)), lit(nil)))
}

// binop is Python's `a op b`.
func (c *compiler) binop(op string, a, b *val, at Pos) (*val, expr.Node) {
	if a.t == tOther || b.t == tOther || a.t == tSeq || b.t == tSeq {
		c.fail(at, fmt.Sprintf("operator %s on %s and %s", op, describe(a), describe(b)))
	}
	if a.t == tNone || b.t == tNone {
		return none, c.noneOperand(op, a, b, at)
	}
	nullErr := c.noneOperand(op, a, b, at)
	null := a.null || b.null
	switch {
	case a.t == tStr && b.t == tStr && op == "+":
		return &val{n: bin("+", a.n, b.n), t: tStr, null: null}, nullErr
	case a.t == tStr && (b.t == tInt || b.t == tBool) && op == "*":
		return &val{n: fcall("repeat", a.n, numeric(b).n), t: tStr, null: null}, nullErr
	case (a.t == tInt || a.t == tBool) && b.t == tStr && op == "*":
		return &val{n: fcall("repeat", b.n, numeric(a).n), t: tStr, null: null}, nullErr
	case !isNum(a.t) || !isNum(b.t):
		return none, c.msg(at, fmt.Sprintf("TypeError: unsupported operand type(s) for %s: '%s' and '%s'", op, a.t, b.t))
	}
	a, b = numeric(a), numeric(b)
	isInt := a.t == tInt && b.t == tInt
	out := &val{t: tFloat, null: null, mixed: a.mixed || b.mixed}
	if isInt {
		out.t = tInt
	}
	zero := bin("==", b.n, lit(int64(0)))
	an, bn := a.n, b.n
	if !isInt {
		an, bn = asFloat(a), asFloat(b)
		zero = bin("==", bn, lit(0.0))
	}
	var err expr.Node
	switch op {
	case "+", "-", "*":
		if !isInt {
			out.n = bin(op, an, bn)
			break
		}
		// Python's ints do not overflow; fletch's are 64-bit: a result
		// beyond them is an error of the row, never a wrapped value.
		fn := map[string]string{"+": "try_add", "-": "try_subtract", "*": "try_multiply"}[op]
		out.n = fcall(fn, a.n, b.n)
		err = c.raiseIf(and(fcall("is_null", out.n), and(fcall("is_not_null", a.n), fcall("is_not_null", b.n))), at,
			"OverflowError: integer result out of the 64-bit range")
	case "/":
		out.t, out.mixed = tFloat, false
		out.n = bin("/", asFloat(a), asFloat(b))
		text := "ZeroDivisionError: division by zero"
		if !isInt {
			text = "ZeroDivisionError: float division by zero"
		}
		err = c.raiseIf(zero, at, text)
	case "//", "%":
		out.n = bin(op, an, bn)
		text := "ZeroDivisionError: integer division or modulo by zero"
		if !isInt && op == "//" {
			text = "ZeroDivisionError: float floor division by zero"
		} else if !isInt {
			text = "ZeroDivisionError: float modulo"
		}
		err = c.raiseIf(zero, at, text)
	case "**":
		return c.power(a, b, at, nullErr)
	default:
		c.fail(at, "operator "+op)
	}
	return out, seqErr(nullErr, guardErr(not(or(isNone(a), isNone(b))), err))
}

// power is `a ** b`: an int for an int base and a non-negative constant
// exponent (multiplications), else a float.
func (c *compiler) power(a, b *val, at Pos, nullErr expr.Node) (*val, expr.Node) {
	if a.t == tInt && b.t == tInt {
		k, isConst := litOf(b.n)
		e, _ := k.(int64)
		switch {
		case isConst && e >= 0 && e <= 16:
			acc := &val{n: lit(int64(1)), t: tInt}
			var err expr.Node
			for i := int64(0); i < e; i++ {
				var ei expr.Node
				acc, ei = c.binop("*", acc, &val{n: a.n, t: tInt}, at)
				err = seqErr(err, ei)
			}
			acc.null = a.null
			return acc, seqErr(nullErr, guardErr(not(isNone(a)), err))
		case !isConst || e > 16:
			c.fail(at, "int ** int with a variable or large exponent (Python's result is an unbounded int)")
		}
	}
	af, bf := asFloat(a), asFloat(b)
	out := &val{n: fcall("power", af, bf), t: tFloat, null: a.null || b.null}
	zeroNeg := and(bin("==", af, lit(0.0)), bin("<", bf, lit(0.0)))
	negFrac := and(and(bin("<", af, lit(0.0)), fcall("is_finite", af)), and(fcall("is_finite", bf), bin("!=", bf, fcall("floor", bf))))
	over := and(fcall("is_inf", out.n), and(fcall("is_finite", af), fcall("is_finite", bf)))
	complexOver := and(negFrac, fcall("is_inf", fcall("power", fcall("abs", af), bf)))
	err := seqErr(c.raiseIf(zeroNeg, at, "ZeroDivisionError: 0.0 cannot be raised to a negative power"),
		seqErr(c.raiseIf(complexOver, at, "OverflowError: complex exponentiation"),
			c.raiseIf(negFrac, at, "ValueError: a negative number to a fractional power is complex")))
	err = seqErr(err,
		c.raiseIf(over, at, "OverflowError: (34, 'Numerical result out of range')"))
	return out, seqErr(nullErr, guardErr(not(or(isNone(a), isNone(b))), err))
}

func (c *compiler) unary(op string, x *val, at Pos) (*val, expr.Node) {
	if op == "not" {
		return &val{n: not(c.truth(x)), t: tBool}, nil
	}
	if !isNum(x.t) {
		if x.t == tNone {
			return none, c.msg(at, fmt.Sprintf("TypeError: bad operand type for unary %s: 'NoneType'", op))
		}
		c.fail(at, fmt.Sprintf("unary %s on %s", op, describe(x)))
	}
	x = numeric(x)
	var err expr.Node
	if x.null {
		err = c.raiseIf(isNone(x), at, fmt.Sprintf("TypeError: bad operand type for unary %s: 'NoneType'", op))
	}
	out := *x
	switch op {
	case "+":
	case "-":
		if v, ok := litOf(x.n); ok {
			switch v := v.(type) {
			case int64:
				out.n = lit(-v)
				return &out, err
			case float64:
				out.n = lit(-v)
				return &out, err
			}
		}
		out.n = &expr.Unary{Op: "-", X: x.n}
	case "~":
		if x.t != tInt || x.mixed {
			c.fail(at, "~ on a float")
		}
		out.n = bin("-", &expr.Unary{Op: "-", X: x.n}, lit(int64(1)))
	default:
		c.fail(at, "unary "+op)
	}
	return &out, err
}

// compare evaluates a comparison chain; each link is evaluated only when
// the ones before it hold.
func (c *compiler) compare(n *Compare, e env) (*val, expr.Node) {
	left, err := c.eval(n.Xs[0], e)
	var acc expr.Node = lit(true)
	for i, op := range n.Ops {
		right, er := c.eval(n.Xs[i+1], e)
		cmp, ec := c.compare1(op, left, right, n.At)
		err = seqErr(err, guardErr(acc, seqErr(er, ec)))
		acc = and(acc, cmp)
		left = right
	}
	return &val{n: acc, t: tBool}, err
}

// compare1 is one comparison as a never-null condition.
func (c *compiler) compare1(op string, a, b *val, at Pos) (expr.Node, expr.Node) {
	switch op {
	case "is", "is not":
		var cond expr.Node
		switch {
		case b.t == tNone:
			cond = isNone(a)
		case a.t == tNone:
			cond = isNone(b)
		default:
			c.fail(at, "`is` with something other than None")
		}
		if op == "is not" {
			cond = not(cond)
		}
		return cond, nil
	case "==", "!=":
		cond := c.equal(a, b, at)
		if op == "!=" {
			cond = not(cond)
		}
		return cond, nil
	case "in", "not in":
		cond, err := c.contains(b, a, at)
		if op == "not in" {
			cond = not(cond)
		}
		return cond, err
	case "<", "<=", ">", ">=":
		if a.t == tSeq || b.t == tSeq || a.t == tOther || b.t == tOther {
			c.fail(at, fmt.Sprintf("%s between %s and %s", op, describe(a), describe(b)))
		}
		text := func(x, y string) string {
			return fmt.Sprintf("TypeError: '%s' not supported between instances of '%s' and '%s'", op, x, y)
		}
		if a.t == tNone || b.t == tNone {
			return lit(false), c.msg(at, text(a.t.String(), b.t.String()))
		}
		if !(isNum(a.t) && isNum(b.t)) && !(a.t == tStr && b.t == tStr) {
			return lit(false), c.msg(at, text(a.t.String(), b.t.String()))
		}
		var err expr.Node
		if a.null || b.null {
			err = ite(isNone(a), c.msg(at, text("NoneType", b.t.String())), ite(isNone(b), c.msg(at, text(a.t.String(), "NoneType")), lit(nil)))
		}
		an, bn := numeric(a).n, numeric(b).n
		if a.t != b.t && (a.t == tFloat || b.t == tFloat) {
			an, bn = asFloat(a), asFloat(b)
		}
		cond := bin(op, an, bn)
		if a.null || b.null {
			cond = fcall("coalesce", cond, lit(false))
		}
		return cond, err
	}
	c.fail(at, "comparison "+op)
	return nil, nil
}

// equal is Python's a == b as a never-null condition: None equals only
// None, values of unrelated types are unequal, NaN is unequal to itself.
func (c *compiler) equal(a, b *val, at Pos) expr.Node {
	if a.t == tSeq || b.t == tSeq || a.t == tOther || b.t == tOther {
		c.fail(at, fmt.Sprintf("== between %s and %s", describe(a), describe(b)))
	}
	if a.t == tNone || b.t == tNone {
		return and(isNone(a), isNone(b))
	}
	comparable := (isNum(a.t) && isNum(b.t)) || a.t == b.t
	if !comparable {
		return and(isNone(a), isNone(b))
	}
	an, bn := a.n, b.n
	if a.t != b.t {
		an, bn = numeric(a).n, numeric(b).n
		if a.t == tFloat || b.t == tFloat {
			an, bn = asFloat(a), asFloat(b)
		}
	}
	eq := bin("==", an, bn)
	if !a.null && !b.null {
		return eq
	}
	return fcall("coalesce", eq, and(isNone(a), isNone(b)))
}

// contains is `x in coll` for a tuple, list or set display, or a string.
func (c *compiler) contains(coll, x *val, at Pos) (expr.Node, expr.Node) {
	switch coll.t {
	case tSeq:
		var cond expr.Node = lit(false)
		for _, el := range coll.elts {
			cond = or(cond, c.equal(x, el, at))
		}
		return cond, nil
	case tStr:
		if x.t != tStr {
			if x.t == tNone || x.null {
				return lit(false), c.raiseIf(isNone(x), at, "TypeError: 'in <string>' requires string as left operand, not NoneType")
			}
			return lit(false), c.msg(at, fmt.Sprintf("TypeError: 'in <string>' requires string as left operand, not %s", x.t))
		}
		var err expr.Node
		if coll.null {
			err = c.raiseIf(isNone(coll), at, "TypeError: argument of type 'NoneType' is not iterable")
		}
		cond := fcall("contains", coll.n, x.n)
		if coll.null || x.null {
			cond = fcall("coalesce", cond, lit(false))
		}
		return cond, seqErr(c.raiseIf(isNone(x), at, "TypeError: 'in <string>' requires string as left operand, not NoneType"), err)
	case tNone:
		return lit(false), c.msg(at, "TypeError: argument of type 'NoneType' is not iterable")
	}
	c.fail(at, "`in` over "+describe(coll))
	return nil, nil
}
