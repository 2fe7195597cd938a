package pyload

import (
	sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/fletch-engine/fletch/features/expr"
)

// This file turns Python expression syntax into expr trees. It is purely
// syntactic: whether `_.x[...]` selects from a has-many or picks a window of
// a windowed feature is settled by Link, which knows the classes. Here a
// subscript by one string or by `_.chalk_window` is read as an Index, any
// other as a Select.

// subscripts returns the subscript keys of a subscript node.
func subscripts(n *sitter.Node) []*sitter.Node {
	var keys []*sitter.Node
	for i := uint(0); i < n.ChildCount(); i++ {
		if n.FieldNameForChild(uint32(i)) == "subscript" {
			keys = append(keys, n.Child(i))
		}
	}
	return keys
}

var binaryOps = map[string]bool{
	"+": true, "-": true, "*": true, "/": true, "//": true, "%": true, "**": true, "&": true, "|": true,
}

var comparisonOps = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

// expr converts n, reporting what it cannot; nil after an error.
func (p *parser) expr(n *sitter.Node) expr.Node {
	at := p.pos(n)
	switch n.Kind() {
	case "parenthesized_expression":
		if n.NamedChildCount() != 1 {
			break
		}
		return p.expr(n.NamedChild(0))
	case "integer":
		v, err := parseInt(p.text(n))
		if err != nil {
			p.errorf(n, "integer %s is out of range", p.text(n))
			return nil
		}
		return &expr.Literal{Value: v, At: at}
	case "float":
		v, err := parseFloat(p.text(n))
		if err != nil {
			p.errorf(n, "invalid float %s", p.text(n))
			return nil
		}
		return &expr.Literal{Value: v, At: at}
	case "true":
		return &expr.Literal{Value: true, At: at}
	case "false":
		return &expr.Literal{Value: false, At: at}
	case "none":
		return &expr.Literal{Value: nil, At: at}
	case "string":
		s, ok := p.pyString(n)
		if !ok {
			return nil
		}
		return &expr.Literal{Value: s, At: at}
	case "concatenated_string":
		var all string
		for i := uint(0); i < n.NamedChildCount(); i++ {
			s, ok := p.pyString(n.NamedChild(i))
			if !ok {
				return nil
			}
			all += s
		}
		return &expr.Literal{Value: all, At: at}
	case "identifier":
		if p.text(n) == "_" {
			p.errorf(n, "`_` alone is not a value: name a feature, e.g. `_.id`")
		} else {
			p.errorf(n, "unknown name %s: features are referenced as `_.%s`, functions as `F.name(...)`", p.text(n), p.text(n))
		}
		return nil
	case "attribute":
		return p.attribute(n)
	case "subscript":
		return p.subscript(n)
	case "call":
		return p.call(n)
	case "unary_operator":
		return p.unary(n)
	case "not_operator":
		x := p.expr(n.ChildByFieldName("argument"))
		if x == nil {
			return nil
		}
		return &expr.Unary{Op: "not", X: x, At: at}
	case "binary_operator":
		op := p.text(n.ChildByFieldName("operator"))
		if !binaryOps[op] {
			p.errorf(n.ChildByFieldName("operator"), "operator %s is not supported (use + - * / // %% ** & | ~)", op)
			return nil
		}
		return p.binary(op, n.ChildByFieldName("left"), n.ChildByFieldName("right"), at)
	case "boolean_operator":
		return p.binary(p.text(n.ChildByFieldName("operator")), n.ChildByFieldName("left"), n.ChildByFieldName("right"), at)
	case "comparison_operator":
		return p.comparison(n)
	case "list", "tuple":
		return p.collection(n, "list")
	case "dictionary":
		return p.dictionary(n)
	}
	p.errorf(n, "unsupported expression %q (a %s)", firstLine(p.text(n)), n.Kind())
	return nil
}

func (p *parser) binary(op string, l, r *sitter.Node, at expr.Pos) expr.Node {
	L, R := p.expr(l), p.expr(r)
	if L == nil || R == nil {
		return nil
	}
	return &expr.Binary{Op: op, L: L, R: R, At: at}
}

func (p *parser) unary(n *sitter.Node) expr.Node {
	op := p.text(n.ChildByFieldName("operator"))
	x := p.expr(n.ChildByFieldName("argument"))
	if x == nil {
		return nil
	}
	at := p.pos(n)
	switch op {
	case "+":
		return x
	case "-":
		// A negative number is a literal, so `min=-1` stays a literal.
		if l, ok := x.(*expr.Literal); ok {
			switch v := l.Value.(type) {
			case int64:
				return &expr.Literal{Value: -v, At: at}
			case float64:
				return &expr.Literal{Value: -v, At: at}
			}
		}
		return &expr.Unary{Op: "-", X: x, At: at}
	case "~":
		return &expr.Unary{Op: "~", X: x, At: at}
	}
	p.errorf(n, "operator %s is not supported", op)
	return nil
}

// comparison reads `a < b`, and chains `a < b <= c` as `(a < b) and (b <= c)`.
func (p *parser) comparison(n *sitter.Node) expr.Node {
	var operands []*sitter.Node
	var ops []string
	for i := uint(0); i < n.ChildCount(); i++ {
		c := n.Child(i)
		if n.FieldNameForChild(uint32(i)) == "operators" {
			ops = append(ops, p.text(c))
		} else if c.IsNamed() && c.Kind() != "comment" {
			operands = append(operands, c)
		}
	}
	var out expr.Node
	for i, op := range ops {
		if !comparisonOps[op] {
			p.errorf(n, "comparison %q is not supported (use == != < <= > >=; F.is_null(x) for `is None`)", op)
			return nil
		}
		cmp := p.binary(op, operands[i], operands[i+1], p.pos(operands[i]))
		if cmp == nil {
			return nil
		}
		if out == nil {
			out = cmp
		} else {
			out = &expr.Binary{Op: "and", L: out, R: cmp, At: out.Position()}
		}
	}
	return out
}

// collection reads a list or tuple literal (tags=["a", "b"]) as
// Call{Func: "list"}: options keep it as written.
func (p *parser) collection(n *sitter.Node, fn string) expr.Node {
	c := &expr.Call{Func: fn, At: p.pos(n)}
	for i := uint(0); i < n.NamedChildCount(); i++ {
		if n.NamedChild(i).Kind() == "comment" {
			continue
		}
		v := p.expr(n.NamedChild(i))
		if v == nil {
			return nil
		}
		c.Args = append(c.Args, v)
	}
	return c
}

// dictionary reads `{"bucket_duration": "1d"}` as Call{Func: "dict"} with the
// entries as named arguments: the same shape as
// MaterializationWindowConfig(bucket_duration="1d").
func (p *parser) dictionary(n *sitter.Node) expr.Node {
	c := &expr.Call{Func: "dict", At: p.pos(n)}
	for i := uint(0); i < n.NamedChildCount(); i++ {
		pair := n.NamedChild(i)
		if pair.Kind() == "comment" {
			continue
		}
		if pair.Kind() != "pair" {
			p.errorf(pair, "expected `key: value` in a dictionary, found %q", firstLine(p.text(pair)))
			return nil
		}
		key, _ := literalString(p.literal(pair.ChildByFieldName("key")))
		if key == "" {
			p.errorf(pair.ChildByFieldName("key"), "dictionary keys must be strings, found %s", p.text(pair.ChildByFieldName("key")))
			return nil
		}
		v := p.expr(pair.ChildByFieldName("value"))
		if v == nil {
			return nil
		}
		c.Named = append(c.Named, expr.NamedArg{Name: key, Value: v})
	}
	return c
}

// attribute reads `_.a.b` (a Ref) and `_.chalk_window`.
func (p *parser) attribute(n *sitter.Node) expr.Node {
	var path []string
	cur := n
	for cur.Kind() == "attribute" {
		path = append([]string{p.text(cur.ChildByFieldName("attribute"))}, path...)
		cur = cur.ChildByFieldName("object")
	}
	if cur.Kind() != "identifier" || p.text(cur) != "_" {
		p.errorf(n, "unsupported expression %q: features are referenced as `_.name`, and `x.%s` is only valid as a call", firstLine(p.text(n)), path[len(path)-1])
		return nil
	}
	if len(path) == 1 && path[0] == "chalk_window" {
		return &expr.ChalkWindow{At: p.pos(cur)}
	}
	return &expr.Ref{Path: path, At: p.pos(cur)}
}

func (p *parser) subscript(n *sitter.Node) expr.Node {
	x := p.expr(n.ChildByFieldName("value"))
	keys := subscripts(n)
	if x == nil {
		return nil
	}
	at := p.pos(n)
	if len(keys) == 1 {
		k := p.expr(keys[0])
		if k == nil {
			return nil
		}
		_, isWindow := k.(*expr.ChalkWindow)
		if _, isLabel := literalString(asLiteral(k)); isLabel || isWindow {
			return &expr.Index{X: x, Key: k, At: at}
		}
		return p.selection(x, []expr.Node{k}, keys, at)
	}
	var ks []expr.Node
	for _, key := range keys {
		k := p.expr(key)
		if k == nil {
			return nil
		}
		ks = append(ks, k)
	}
	return p.selection(x, ks, keys, at)
}

func asLiteral(n expr.Node) *expr.Literal {
	l, _ := n.(*expr.Literal)
	return l
}

// selection builds `rel[k1, k2, ...]`: a bare `_.col` is the projection, the
// other keys are filters.
func (p *parser) selection(rel expr.Node, keys []expr.Node, nodes []*sitter.Node, at expr.Pos) expr.Node {
	s := &expr.Select{Rel: rel, At: at}
	for i, k := range keys {
		if _, isRef := k.(*expr.Ref); isRef {
			if s.Project != nil {
				p.errorf(nodes[i], "a selection projects one column: %s and %s are both bare columns (make one a condition)", s.Project, k)
				return nil
			}
			s.Project = k
			continue
		}
		s.Filters = append(s.Filters, k)
	}
	return s
}

// args reads a call's positional and keyword arguments.
func (p *parser) args(n *sitter.Node) ([]expr.Node, []expr.NamedArg, bool) {
	var pos []expr.Node
	var named []expr.NamedArg
	for i := uint(0); i < n.NamedChildCount(); i++ {
		a := n.NamedChild(i)
		switch a.Kind() {
		case "comment":
		case "keyword_argument":
			v := p.expr(a.ChildByFieldName("value"))
			if v == nil {
				return nil, nil, false
			}
			named = append(named, expr.NamedArg{Name: p.text(a.ChildByFieldName("name")), Value: v})
		default:
			if len(named) > 0 {
				p.errorf(a, "positional argument after keyword argument")
				return nil, nil, false
			}
			v := p.expr(a)
			if v == nil {
				return nil, nil, false
			}
			pos = append(pos, v)
		}
	}
	return pos, named, true
}

func (p *parser) call(n *sitter.Node) expr.Node {
	fn := n.ChildByFieldName("function")
	argsNode := n.ChildByFieldName("arguments")
	at := p.pos(n)
	if argsNode.Kind() != "argument_list" {
		p.errorf(argsNode, "generator arguments are not supported")
		return nil
	}
	switch fn.Kind() {
	case "identifier":
		// A bare call such as MaterializationWindowConfig(...) or abs(x).
		args, named, ok := p.args(argsNode)
		if !ok {
			return nil
		}
		return &expr.Call{Func: p.text(fn), Args: args, Named: named, At: at}
	case "attribute":
	default:
		p.errorf(fn, "unsupported call of %q", firstLine(p.text(fn)))
		return nil
	}
	name := p.text(fn.ChildByFieldName("attribute"))
	obj := fn.ChildByFieldName("object")
	if obj.Kind() == "identifier" && p.text(obj) != "_" {
		return p.moduleCall(n, name, argsNode, at)
	}
	switch name {
	case "when", "then", "otherwise":
		w := p.whenChain(n)
		if w == nil {
			return nil
		}
		if len(w.Thens) != len(w.Conds) {
			p.errorf(n, "F.when(...) needs .then(...) after each condition")
			return nil
		}
		return w
	}
	recv := p.expr(obj)
	if recv == nil {
		return nil
	}
	args, named, ok := p.args(argsNode)
	if !ok {
		return nil
	}
	switch {
	case name == "alias":
		alias, isStr := literalString(singleLiteral(args, named))
		if !isStr {
			p.errorf(argsNode, `.alias(...) takes one string: .alias("name")`)
			return nil
		}
		return &expr.Alias{X: recv, Name: alias, At: at}
	case expr.IsAggregation(name):
		return p.aggregation(n, name, recv, args, named, at)
	}
	// Any other method is a function of its receiver: `x.lower()` is lower(x).
	return &expr.Call{Func: name, Args: append([]expr.Node{recv}, args...), Named: named, At: at}
}

func singleLiteral(args []expr.Node, named []expr.NamedArg) *expr.Literal {
	if len(args) != 1 || len(named) != 0 {
		return nil
	}
	return asLiteral(args[0])
}

// moduleCall reads `F.fn(...)` (any module alias: F, functions, ...).
func (p *parser) moduleCall(n *sitter.Node, name string, argsNode *sitter.Node, at expr.Pos) expr.Node {
	if name == "when" {
		p.errorf(n, "F.when(...) needs .then(...)")
		return nil
	}
	args, named, ok := p.args(argsNode)
	if !ok {
		return nil
	}
	if name == "max_by" || name == "min_by" {
		// F.max_by(_.rel[_.col], sort=_.created_at)
		var sort expr.Node
		rest := named[:0:0]
		for _, a := range named {
			if a.Name == "sort" {
				sort = a.Value
			} else {
				rest = append(rest, a)
			}
		}
		if len(args) == 2 && sort == nil {
			sort, args = args[1], args[:1]
		}
		if len(args) != 1 || sort == nil || len(rest) > 0 {
			p.errorf(n, "F.%s takes a selection and a sort key: F.%s(_.rel[_.col], sort=_.created_at)", name, name)
			return nil
		}
		return p.aggregation(n, name, args[0], []expr.Node{sort}, nil, at)
	}
	return &expr.Call{Func: name, Args: args, Named: named, At: at}
}

// aggregation builds an Agg of recv, a selection or a has-many path.
func (p *parser) aggregation(n *sitter.Node, name string, recv expr.Node, args []expr.Node, named []expr.NamedArg, at expr.Pos) expr.Node {
	var src *expr.Select
	switch r := recv.(type) {
	case *expr.Select:
		src = r
	case *expr.Ref:
		src = &expr.Select{Rel: r, At: r.At}
	default:
		p.errorf(n, ".%s() aggregates a has-many selection like _.reviews[_.star_rating], found %s", name, recv)
		return nil
	}
	agg := &expr.Agg{Func: name, Source: src, At: at}
	if name == "max_by" || name == "min_by" {
		if len(args) == 1 && len(named) == 0 {
			agg.SortBy = args[0]
		} else if len(args) == 0 && len(named) == 1 && named[0].Name == "sort" {
			agg.SortBy = named[0].Value
		} else {
			p.errorf(n, ".%s(...) takes the sort key: .%s(_.created_at)", name, name)
			return nil
		}
		return agg
	}
	if len(args) > 0 || len(named) > 0 {
		p.errorf(n, ".%s() takes no arguments", name)
		return nil
	}
	return agg
}

// whenChain reads F.when(c).then(v).when(c2).then(v2).otherwise(e).
func (p *parser) whenChain(n *sitter.Node) *expr.When {
	if n.Kind() != "call" || n.ChildByFieldName("function").Kind() != "attribute" {
		p.errorf(n, "expected F.when(...) to start the chain, found %q", firstLine(p.text(n)))
		return nil
	}
	fn := n.ChildByFieldName("function")
	name := p.text(fn.ChildByFieldName("attribute"))
	obj := fn.ChildByFieldName("object")
	args, named, ok := p.args(n.ChildByFieldName("arguments"))
	if !ok {
		return nil
	}
	if len(args) != 1 || len(named) != 0 {
		p.errorf(n, ".%s(...) takes one argument", name)
		return nil
	}
	if name == "when" && obj.Kind() == "identifier" {
		return &expr.When{Conds: args, At: p.pos(n)}
	}
	w := p.whenChain(obj)
	if w == nil {
		return nil
	}
	switch {
	case w.Else != nil:
		p.errorf(n, ".otherwise(...) ends an F.when chain; nothing may follow it")
		return nil
	case name == "when" && len(w.Thens) == len(w.Conds):
		w.Conds = append(w.Conds, args[0])
	case name == "then" && len(w.Thens) < len(w.Conds):
		w.Thens = append(w.Thens, args[0])
	case name == "otherwise" && len(w.Thens) == len(w.Conds):
		w.Else = args[0]
	default:
		p.errorf(n, "unexpected .%s(...) in an F.when chain: expected F.when(c).then(v)[.when(c).then(v)...].otherwise(e)", name)
		return nil
	}
	return w
}
