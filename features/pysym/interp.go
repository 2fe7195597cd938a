package pysym

import (
	"fmt"
	"sort"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// GasLimit bounds the size of a compiled resolver, in expression nodes
// after inlining branches and helpers: beyond it the expression would cost
// more than running the function (each `if` followed by a `return` on some
// paths only copies the rest of the body into both branches), and the
// resolver runs in Python instead (docs/PYTHON.md).
const GasLimit = 4000

// maxInline bounds the nesting of inlined helper calls (recursion).
const maxInline = 8

// Input is a parameter of the resolver: the feature it reads, as a path
// from the output class (`_.item.review_count__2592000__`), and its type.
type Input struct {
	Param string
	Path  []string
	Type  features.Type
}

// Output is a feature the resolver computes.
type Output struct {
	Name string
	Type features.Type
}

// Resolver is what Compile needs of a Python resolver.
type Resolver struct {
	Name string
	Fn   *Func
	// Module holds the helpers and constants of the resolver's file.
	Module *Module
	Inputs []Input
	// Class is the Python name of the output class: `Class(a=..., b=...)`
	// returns several outputs by name.
	Class   string
	Outputs []Output
}

// Result is a compiled resolver.
type Result struct {
	// Values are the outputs' expressions, relative to `_` of the output
	// class; rows where the function raises hold any value (see Raises).
	Values []expr.Node
	// Raises is, per row, the exception the function raises
	// ("ZeroDivisionError: division by zero (get_ratio, line 7)"), null
	// where it returns; nil when it never raises. Rows where an input of a
	// non-optional type is null are null in both: the function is not
	// called for them.
	Raises expr.Node
	// Size is the expressions' size in nodes, checked against GasLimit.
	Size int
}

// bail stops the interpretation at an unsupported construct.
type bail struct{ u *Unsupported }

type compiler struct {
	r     *Resolver
	depth int
	// steps counts evaluations: the body is copied into branches, so a
	// body beyond the gas limit is stopped before it is built whole.
	steps int
}

// env binds local names to values; it is copied on write.
type env map[string]*val

func (e env) with(name string, v *val) env {
	out := make(env, len(e)+1)
	for k, x := range e {
		out[k] = x
	}
	out[name] = v
	return out
}

// Compile interprets r's body symbolically. It returns *Unsupported when a
// construct needs Python, or when the result is beyond GasLimit.
func Compile(r *Resolver) (res *Result, err error) {
	c := &compiler{r: r}
	defer func() {
		if p := recover(); p != nil {
			b, ok := p.(bail)
			if !ok {
				panic(p)
			}
			res, err = nil, b.u
		}
	}()
	if len(r.Fn.Params) != len(r.Inputs) {
		c.fail(r.Fn.At, "parameters without a feature annotation")
	}
	e := env{}
	var skip expr.Node = lit(false)
	for _, in := range r.Inputs {
		ref := &expr.Ref{Path: in.Path}
		v := &val{n: ref, null: in.Type.Nullable}
		switch in.Type.Kind {
		case features.Int:
			v.t = tInt
		case features.Float:
			v.t = tFloat
		case features.String:
			v.t = tStr
		case features.Bool:
			v.t = tBool
		default:
			v.t, v.kind = tOther, in.Type.String()
		}
		e[in.Param] = v
		if !in.Type.Nullable {
			// Chalk does not call a resolver whose required input is
			// missing: its outputs are null for that row, with no error.
			skip = or(skip, fcall("is_null", ref))
		}
	}
	out := c.run(r.Fn.Body, e, func(env) outcome { return outcome{ret: none} })
	rets := []*val{out.ret}
	if len(r.Outputs) > 1 {
		if out.ret.t != tSeq || len(out.ret.elts) != len(r.Outputs) {
			c.fail(r.Fn.At, fmt.Sprintf("returns %s where %d outputs (a tuple or %s(...)) are expected", describe(out.ret), len(r.Outputs), r.Class))
		}
		rets = out.ret.elts
	}
	res = &Result{}
	for i, o := range r.Outputs {
		n := c.output(rets[i], o)
		n = ite(skip, lit(nil), n)
		res.Values = append(res.Values, n)
		res.Size += size(n)
	}
	if out.err != nil {
		res.Raises = ite(skip, lit(nil), out.err)
		res.Size += size(res.Raises)
	}
	if res.Size > GasLimit {
		return nil, &Unsupported{What: fmt.Sprintf("gas: %d > %d expression nodes", res.Size, GasLimit), At: r.Fn.At}
	}
	return res, nil
}

func describe(v *val) string {
	if v.t == tSeq {
		return fmt.Sprintf("a %s of %d", v.kind, len(v.elts))
	}
	return v.t.String()
}

// output converts a returned value to the output feature's type as Chalk
// does (an int for a float feature); other mismatches need Python.
func (c *compiler) output(v *val, o Output) expr.Node {
	if v.t == tNone {
		return lit(nil)
	}
	ok := false
	switch o.Type.Kind {
	case features.Float:
		ok = v.t == tInt || v.t == tFloat || v.t == tBool
		if ok {
			return asFloat(v)
		}
	case features.Int:
		ok = (v.t == tInt && !v.mixed) || v.t == tBool
		if v.t == tBool {
			return fcall("to_int", v.n)
		}
	case features.String:
		ok = v.t == tStr
	case features.Bool:
		ok = v.t == tBool
	}
	if !ok {
		c.fail(c.r.Fn.At, fmt.Sprintf("returns %s for the %s feature %s", describeMixed(v), o.Type, o.Name))
	}
	return v.n
}

func describeMixed(v *val) string {
	if v.mixed {
		return "int or float"
	}
	return describe(v)
}

func (c *compiler) fail(at Pos, what string) {
	panic(bail{&Unsupported{What: what, At: at}})
}

// msg is an exception message as a row's error: the exception, the
// resolver and the line.
func (c *compiler) msg(at Pos, text string) expr.Node {
	return lit(fmt.Sprintf("%s (%s, line %d)", text, c.r.Name, at.Line))
}

// raiseIf is the error text where cond holds, nil when it never does.
func (c *compiler) raiseIf(cond expr.Node, at Pos, text string) expr.Node {
	if v, ok := litBool(cond); ok && !v {
		return nil
	}
	return ite(cond, c.msg(at, text), lit(nil))
}

// outcome is the result of running statements to the function's end: the
// value returned and the error raised.
type outcome struct {
	ret *val
	err expr.Node
}

// run interprets stmts in e, then k (the statements after them).
func (c *compiler) run(stmts []Stmt, e env, k func(env) outcome) outcome {
	if len(stmts) == 0 {
		return k(e)
	}
	rest := stmts[1:]
	switch s := stmts[0].(type) {
	case *Return:
		if s.Value == nil {
			return outcome{ret: none}
		}
		v, err := c.eval(s.Value, e)
		return outcome{ret: v, err: err}
	case *Assign:
		v, err := c.eval(s.Value, e)
		e = c.bind(s.Targets, v, e, s.At)
		out := c.run(rest, e, k)
		out.err = seqErr(err, out.err)
		return out
	case *AugAssign:
		old := c.lookup(s.Target, e, s.At)
		x, err := c.eval(s.Value, e)
		v, err2 := c.binop(s.Op, old, x, s.At)
		out := c.run(rest, e.with(s.Target, v), k)
		out.err = seqErr(err, seqErr(err2, out.err))
		return out
	case *ExprStmt:
		if _, isConst := s.X.(*Const); isConst {
			return c.run(rest, e, k) // a docstring, `...`
		}
		_, err := c.eval(s.X, e)
		out := c.run(rest, e, k)
		out.err = seqErr(err, out.err)
		return out
	case *If:
		cond, cerr := c.cond(s.Cond, e)
		if b, ok := litBool(cond); ok {
			branch := s.Else
			if b {
				branch = s.Body
			}
			out := c.run(join(branch, rest), e, k)
			out.err = seqErr(cerr, out.err)
			return out
		}
		if !returns(s.Body) && !returns(s.Else) {
			// Both branches fall through: merge their variables and go on
			// once.
			var ea, eb env
			oa := c.run(s.Body, c.narrow(s.Cond, e, true), func(x env) outcome { ea = x; return outcome{} })
			ob := c.run(s.Else, c.narrow(s.Cond, e, false), func(x env) outcome { eb = x; return outcome{} })
			out := c.run(rest, c.mergeEnv(cond, ea, eb), k)
			out.err = seqErr(cerr, seqErr(iteErr(cond, oa.err, ob.err), out.err))
			return out
		}
		next := func(x env) outcome { return c.run(rest, x, k) }
		oa := c.run(s.Body, c.narrow(s.Cond, e, true), next)
		ob := c.run(s.Else, c.narrow(s.Cond, e, false), next)
		return outcome{ret: c.merge(cond, oa.ret, ob.ret, s.At), err: seqErr(cerr, iteErr(cond, oa.err, ob.err))}
	case *BadStmt:
		c.fail(s.At, s.What)
	}
	c.fail(stmts[0].Position(), fmt.Sprintf("unsupported statement %T", stmts[0]))
	return outcome{}
}

func join(a, b []Stmt) []Stmt {
	out := make([]Stmt, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// returns reports whether a return statement occurs in stmts.
func returns(stmts []Stmt) bool {
	for _, s := range stmts {
		switch s := s.(type) {
		case *Return:
			return true
		case *If:
			if returns(s.Body) || returns(s.Else) {
				return true
			}
		}
	}
	return false
}

// bind assigns v to targets (several: tuple unpacking).
func (c *compiler) bind(targets []string, v *val, e env, at Pos) env {
	if len(targets) == 1 {
		return e.with(targets[0], v)
	}
	if v.t != tSeq || len(v.elts) != len(targets) {
		c.fail(at, fmt.Sprintf("unpacking %s into %d names", describe(v), len(targets)))
	}
	for i, t := range targets {
		e = e.with(t, v.elts[i])
	}
	return e
}

func (c *compiler) lookup(name string, e env, at Pos) *val {
	if v, ok := e[name]; ok {
		switch {
		case v.unbound:
			c.fail(at, fmt.Sprintf("%s is assigned on some paths only (UnboundLocalError on the others)", name))
		case v.t == tOther:
			c.fail(at, fmt.Sprintf("%s is a %s: the interpreter computes on int, float, str and bool", name, v.kind))
		}
		return v
	}
	if n, ok := c.r.Module.Consts[name]; ok {
		v, err := c.eval(n, env{})
		if err != nil {
			c.fail(at, fmt.Sprintf("module constant %s raises", name))
		}
		return v
	}
	c.fail(at, fmt.Sprintf("name %s (a global, an import or a builtin the interpreter does not know)", name))
	return nil
}

// narrow refines e for the path where cond's truth is truth: after `x is
// not None` (or `x`) holds, x is not None there; where `x is None` holds,
// x is None. The expressions stay; only what is known of them changes, so
// None checks that cannot fail on that path are left out.
func (c *compiler) narrow(cond Node, e env, truth bool) env {
	switch n := cond.(type) {
	case *Unary:
		if n.Op == "not" {
			return c.narrow(n.X, e, !truth)
		}
	case *BoolOp:
		if (n.Op == "and") == truth {
			return c.narrow(n.R, c.narrow(n.L, e, truth), truth)
		}
	case *Name:
		if v, ok := e[n.ID]; ok && truth && v.null && v.t != tNone {
			u := *v
			u.null = false
			return e.with(n.ID, &u)
		}
	case *Compare:
		if len(n.Ops) != 1 || (n.Ops[0] != "is" && n.Ops[0] != "is not") {
			break
		}
		name, isName := n.Xs[0].(*Name)
		k, isConst := n.Xs[1].(*Const)
		if !isName || !isConst || k.Value != nil {
			break
		}
		v, ok := e[name.ID]
		if !ok || !v.null || v.t == tNone || v.unbound {
			break
		}
		if (n.Ops[0] == "is not") == truth {
			u := *v
			u.null = false
			return e.with(name.ID, &u)
		}
		return e.with(name.ID, none)
	}
	return e
}

// mergeEnv joins the variables of two branches.
func (c *compiler) mergeEnv(cond expr.Node, a, b env) env {
	out := env{}
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case oka && okb:
			out[k] = c.tryMerge(cond, va, vb)
		case oka:
			u := *va
			u.unbound = true
			out[k] = &u
		default:
			u := *vb
			u.unbound = true
			out[k] = &u
		}
	}
	return out
}

// tryMerge merges, or leaves a value that fails when used (a variable
// whose types differ by branch but that is never read after).
func (c *compiler) tryMerge(cond expr.Node, a, b *val) (v *val) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(bail); !ok {
				panic(p)
			}
			v = &val{t: tOther, kind: "value of different types by branch"}
		}
	}()
	return c.merge(cond, a, b, Pos{})
}

// merge is the value of `a if cond else b`.
func (c *compiler) merge(cond expr.Node, a, b *val, at Pos) *val {
	if a == b {
		return a
	}
	if v, ok := litBool(cond); ok {
		if v {
			return a
		}
		return b
	}
	if a.unbound || b.unbound {
		return &val{t: tOther, unbound: true}
	}
	if a.t == tSeq || b.t == tSeq {
		if a.t != b.t || len(a.elts) != len(b.elts) {
			c.fail(at, fmt.Sprintf("branches give %s and %s", describe(a), describe(b)))
		}
		out := &val{t: tSeq, kind: a.kind}
		for i := range a.elts {
			out.elts = append(out.elts, c.merge(cond, a.elts[i], b.elts[i], at))
		}
		return out
	}
	switch {
	case a.t == tNone && b.t == tNone:
		return none
	case a.t == tNone:
		return &val{n: ite(cond, lit(nil), b.n), t: b.t, null: true, mixed: b.mixed}
	case b.t == tNone:
		return &val{n: ite(cond, a.n, lit(nil)), t: a.t, null: true, mixed: a.mixed}
	}
	out := &val{null: a.null || b.null, mixed: a.mixed || b.mixed, t: a.t}
	an, bn := a.n, b.n
	if a.t != b.t {
		num := func(t pyType) bool { return t == tBool || t == tInt || t == tFloat }
		if !num(a.t) || !num(b.t) {
			c.fail(at, fmt.Sprintf("branches give %s and %s", a.t, b.t))
		}
		if a.t == tBool {
			an = fcall("to_int", an)
		}
		if b.t == tBool {
			bn = fcall("to_int", bn)
		}
		out.t, out.mixed = tInt, true
		if a.t == tFloat || b.t == tFloat {
			out.t = tFloat
			an, bn = asFloat(&val{n: an, t: a.t}), asFloat(&val{n: bn, t: b.t})
		}
	}
	out.n = ite(cond, an, bn)
	return out
}

// truth is Python's bool(v) as a never-null condition.
func (c *compiler) truth(v *val) expr.Node {
	var base expr.Node
	switch v.t {
	case tNone:
		return lit(false)
	case tSeq:
		return lit(len(v.elts) > 0)
	case tBool:
		base = v.n
	case tInt:
		base = bin("!=", v.n, lit(int64(0)))
	case tFloat:
		base = bin("!=", v.n, lit(0.0))
	case tStr:
		base = bin("!=", v.n, lit(""))
	default:
		c.fail(Pos{}, "truth of "+v.t.String())
	}
	if x, ok := litOf(v.n); ok {
		switch x := x.(type) {
		case bool:
			return lit(x)
		case int64:
			return lit(x != 0)
		case float64:
			return lit(x != 0)
		case string:
			return lit(x != "")
		}
	}
	if v.null {
		return and(fcall("is_not_null", v.n), base)
	}
	return base
}

// cond is bool(n) where only its truth matters (if, elif, a conditional
// expression, not): `a and b` there needs no common type for a and b.
func (c *compiler) cond(n Node, e env) (expr.Node, expr.Node) {
	switch n := n.(type) {
	case *BoolOp:
		l, el := c.cond(n.L, e)
		r, er := c.cond(n.R, c.narrow(n.L, e, n.Op == "and"))
		if n.Op == "and" {
			return and(l, r), seqErr(el, guardErr(l, er))
		}
		return or(l, r), seqErr(el, guardErr(not(l), er))
	case *Unary:
		if n.Op == "not" {
			x, err := c.cond(n.X, e)
			return not(x), err
		}
	}
	v, err := c.eval(n, e)
	return c.truth(v), err
}

// eval evaluates n in e: its value and the error it raises.
func (c *compiler) eval(n Node, e env) (*val, expr.Node) {
	if c.steps++; c.steps > GasLimit {
		c.fail(c.r.Fn.At, fmt.Sprintf("gas: more than %d expression nodes", GasLimit))
	}
	switch n := n.(type) {
	case *Name:
		return c.lookup(n.ID, e, n.At), nil
	case *Const:
		return constVal(n.Value), nil
	case *BinOp:
		l, el := c.eval(n.L, e)
		r, er := c.eval(n.R, e)
		v, err := c.binop(n.Op, l, r, n.At)
		return v, seqErr(el, seqErr(er, err))
	case *Unary:
		if n.Op == "not" {
			t, err := c.cond(n.X, e)
			return &val{n: not(t), t: tBool}, err
		}
		x, err := c.eval(n.X, e)
		v, err2 := c.unary(n.Op, x, n.At)
		return v, seqErr(err, err2)
	case *BoolOp:
		l, el := c.eval(n.L, e)
		r, er := c.eval(n.R, c.narrow(n.L, e, n.Op == "and"))
		t := c.truth(l)
		if n.Op == "and" {
			if l.t == tBool && r.t == tBool && !l.null && !r.null {
				return &val{n: and(l.n, r.n), t: tBool}, seqErr(el, guardErr(t, er))
			}
			return c.merge(t, r, l, n.At), seqErr(el, guardErr(t, er))
		}
		if l.t == tBool && r.t == tBool && !l.null && !r.null {
			return &val{n: or(l.n, r.n), t: tBool}, seqErr(el, guardErr(not(t), er))
		}
		return c.merge(t, l, r, n.At), seqErr(el, guardErr(not(t), er))
	case *IfExp:
		t, ec := c.cond(n.Cond, e)
		a, ea := c.eval(n.Then, c.narrow(n.Cond, e, true))
		b, eb := c.eval(n.Else, c.narrow(n.Cond, e, false))
		return c.merge(t, a, b, n.At), seqErr(ec, iteErr(t, ea, eb))
	case *Compare:
		return c.compare(n, e)
	case *Seq:
		out := &val{t: tSeq, kind: n.Kind}
		var err expr.Node
		for _, x := range n.Elts {
			v, ex := c.eval(x, e)
			out.elts = append(out.elts, v)
			err = seqErr(err, ex)
		}
		return out, err
	case *Call:
		return c.call(n, e)
	case *Attr:
		if m, ok := n.X.(*Name); ok && m.ID == "math" {
			if v, ok := mathConsts[n.Name]; ok {
				return &val{n: lit(v), t: tFloat}, nil
			}
		}
		c.fail(n.At, fmt.Sprintf("attribute .%s", n.Name))
	case *FString:
		return c.fstring(n, e)
	case *Subscript:
		return c.subscript(n, e)
	case *Bad:
		c.fail(n.At, n.What)
	}
	c.fail(n.Position(), fmt.Sprintf("unsupported expression %T", n))
	return nil, nil
}

func constVal(v any) *val {
	switch v := v.(type) {
	case nil:
		return none
	case bool:
		return &val{n: lit(v), t: tBool}
	case int64:
		return &val{n: lit(v), t: tInt}
	case float64:
		return &val{n: lit(v), t: tFloat}
	case string:
		return &val{n: lit(v), t: tStr}
	}
	panic(fmt.Sprintf("constant %T", v))
}

// helper inlines a call of a function of the module.
func (c *compiler) helper(f *Func, call *Call, e env) (*val, expr.Node) {
	if c.depth >= maxInline {
		c.fail(call.At, fmt.Sprintf("calls of %s nest deeper than %d (recursion)", f.Name, maxInline))
	}
	var err expr.Node
	args := make([]*val, len(f.Params))
	if len(call.Args) > len(f.Params) {
		c.fail(call.At, fmt.Sprintf("%s takes %d arguments", f.Name, len(f.Params)))
	}
	for i, a := range call.Args {
		v, ea := c.eval(a, e)
		args[i], err = v, seqErr(err, ea)
	}
	for _, kw := range call.Kw {
		i := indexOf(f.Params, kw.Name)
		if i < 0 || args[i] != nil {
			c.fail(call.At, fmt.Sprintf("%s has no parameter %s (or it is given twice)", f.Name, kw.Name))
		}
		v, ea := c.eval(kw.Value, e)
		args[i], err = v, seqErr(err, ea)
	}
	local := env{}
	for i, p := range f.Params {
		if args[i] == nil {
			d := i - (len(f.Params) - len(f.Defaults))
			if d < 0 {
				c.fail(call.At, fmt.Sprintf("%s: missing argument %s", f.Name, p))
			}
			v, ed := c.eval(f.Defaults[d], env{})
			args[i], err = v, seqErr(err, ed)
		}
		local[p] = args[i]
	}
	c.depth++
	out := c.run(f.Body, local, func(env) outcome { return outcome{ret: none} })
	c.depth--
	return out.ret, seqErr(err, out.err)
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// quoted is Python's repr of a string for the common case (no quote
// inside): messages such as invalid literal for int() show it.
func quoted(n expr.Node) expr.Node {
	return fcall("concat", lit("'"), n, lit("'"))
}
