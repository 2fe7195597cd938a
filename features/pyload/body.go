package pyload

import (
	"fmt"
	"math/big"
	"strings"

	sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/fletch-engine/fletch/features/pysym"
)

// This file reads function bodies — of resolvers and of the helpers and
// constants of their module — into pysym's syntax tree. It never fails:
// what pysym does not handle becomes a Bad node naming the construct, so
// that the resolver runs in Python instead (features/pysym decides).

// function reads a function definition.
func (p *parser) function(def *sitter.Node) *pysym.Func {
	f := &pysym.Func{Name: p.text(def.ChildByFieldName("name")), At: p.pos(def)}
	params := def.ChildByFieldName("parameters")
	for i := uint(0); i < params.NamedChildCount(); i++ {
		prm := params.NamedChild(i)
		switch prm.Kind() {
		case "comment":
		case "identifier":
			f.Params = append(f.Params, p.text(prm))
		case "typed_parameter":
			f.Params = append(f.Params, p.text(prm.NamedChild(0)))
		case "default_parameter", "typed_default_parameter":
			f.Params = append(f.Params, p.text(prm.ChildByFieldName("name")))
			f.Defaults = append(f.Defaults, p.pyExpr(prm.ChildByFieldName("value")))
		default:
			f.Body = []pysym.Stmt{&pysym.BadStmt{What: "parameter " + firstLine(p.text(prm)), At: p.pos(prm)}}
			return f
		}
	}
	if len(f.Defaults) > 0 && len(f.Defaults) != len(f.Params)-indexOfFirstDefault(params) {
		f.Body = []pysym.Stmt{&pysym.BadStmt{What: "parameters with and without defaults interleaved", At: p.pos(params)}}
		return f
	}
	f.Body = p.block(def.ChildByFieldName("body"))
	return f
}

func indexOfFirstDefault(params *sitter.Node) int {
	k := 0
	for i := uint(0); i < params.NamedChildCount(); i++ {
		switch params.NamedChild(i).Kind() {
		case "comment":
		case "default_parameter", "typed_default_parameter":
			return k
		default:
			k++
		}
	}
	return k
}

func (p *parser) block(n *sitter.Node) []pysym.Stmt {
	var out []pysym.Stmt
	for i := uint(0); i < n.NamedChildCount(); i++ {
		if s := p.stmt(n.NamedChild(i)); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) stmt(n *sitter.Node) pysym.Stmt {
	at := p.pos(n)
	switch n.Kind() {
	case "comment", "pass_statement":
		return nil
	case "return_statement":
		if n.NamedChildCount() == 0 {
			return &pysym.Return{At: at}
		}
		return &pysym.Return{Value: p.pyExpr(n.NamedChild(0)), At: at}
	case "expression_statement":
		e := n.NamedChild(0)
		switch e.Kind() {
		case "assignment":
			return p.assignment(e)
		case "augmented_assignment":
			op := strings.TrimSuffix(p.text(e.ChildByFieldName("operator")), "=")
			left := e.ChildByFieldName("left")
			if left.Kind() != "identifier" {
				return &pysym.BadStmt{What: "assignment to " + firstLine(p.text(left)), At: at}
			}
			return &pysym.AugAssign{Target: p.text(left), Op: op, Value: p.pyExpr(e.ChildByFieldName("right")), At: at}
		}
		if n.NamedChildCount() != 1 {
			return &pysym.BadStmt{What: "statement " + firstLine(p.text(n)), At: at}
		}
		return &pysym.ExprStmt{X: p.pyExpr(e), At: at}
	case "if_statement":
		s := &pysym.If{Cond: p.pyExpr(n.ChildByFieldName("condition")), Body: p.block(n.ChildByFieldName("consequence")), At: at}
		cur := s
		for i := uint(0); i < n.ChildCount(); i++ {
			if n.FieldNameForChild(uint32(i)) != "alternative" {
				continue
			}
			alt := n.Child(i)
			switch alt.Kind() {
			case "elif_clause":
				next := &pysym.If{Cond: p.pyExpr(alt.ChildByFieldName("condition")), Body: p.block(alt.ChildByFieldName("consequence")), At: p.pos(alt)}
				cur.Else = []pysym.Stmt{next}
				cur = next
			case "else_clause":
				cur.Else = p.block(alt.ChildByFieldName("body"))
			}
		}
		return s
	}
	what := map[string]string{
		"for_statement": "a for loop", "while_statement": "a while loop", "try_statement": "try/except",
		"raise_statement": "raise", "with_statement": "with", "import_statement": "import",
		"import_from_statement": "import", "global_statement": "global", "nonlocal_statement": "nonlocal",
		"function_definition": "a nested function", "class_definition": "a nested class",
		"assert_statement": "assert", "delete_statement": "del", "match_statement": "match",
	}[n.Kind()]
	if what == "" {
		what = "statement " + firstLine(p.text(n))
	}
	return &pysym.BadStmt{What: what, At: at}
}

func (p *parser) assignment(e *sitter.Node) pysym.Stmt {
	at := p.pos(e)
	right := e.ChildByFieldName("right")
	if right == nil {
		return nil // `x: int` declares, assigns nothing
	}
	if right.Kind() == "assignment" {
		return &pysym.BadStmt{What: "chained assignment", At: at}
	}
	left := e.ChildByFieldName("left")
	var targets []string
	switch left.Kind() {
	case "identifier":
		targets = []string{p.text(left)}
	case "pattern_list", "tuple_pattern":
		for i := uint(0); i < left.NamedChildCount(); i++ {
			t := left.NamedChild(i)
			if t.Kind() != "identifier" {
				return &pysym.BadStmt{What: "assignment to " + firstLine(p.text(t)), At: at}
			}
			targets = append(targets, p.text(t))
		}
	default:
		return &pysym.BadStmt{What: "assignment to " + firstLine(p.text(left)), At: at}
	}
	return &pysym.Assign{Targets: targets, Value: p.pyExpr(right), At: at}
}

// pyExpr reads an expression of a function body.
func (p *parser) pyExpr(n *sitter.Node) pysym.Node {
	at := p.pos(n)
	bad := func(what string) pysym.Node { return &pysym.Bad{What: what, At: at} }
	switch n.Kind() {
	case "parenthesized_expression":
		if n.NamedChildCount() == 1 {
			return p.pyExpr(n.NamedChild(0))
		}
	case "identifier":
		return &pysym.Name{ID: p.text(n), At: at}
	case "integer":
		v, err := parseInt(p.text(n))
		if err != nil {
			if b, ok := new(big.Int).SetString(strings.ReplaceAll(p.text(n), "_", ""), 0); ok {
				return bad(fmt.Sprintf("integer %s beyond 64 bits", b))
			}
			return bad("integer " + p.text(n))
		}
		return &pysym.Const{Value: v, At: at}
	case "float":
		text := strings.ReplaceAll(p.text(n), "_", "")
		if strings.HasSuffix(text, "j") || strings.HasSuffix(text, "J") {
			return bad("complex number " + text)
		}
		v, err := parseFloat(text)
		if err != nil {
			return bad("float " + text)
		}
		return &pysym.Const{Value: v, At: at}
	case "true":
		return &pysym.Const{Value: true, At: at}
	case "false":
		return &pysym.Const{Value: false, At: at}
	case "none":
		return &pysym.Const{Value: nil, At: at}
	case "ellipsis":
		return &pysym.Const{Value: "...", At: at}
	case "string":
		return p.pyString2(n)
	case "concatenated_string":
		var parts []pysym.FPart
		for i := uint(0); i < n.NamedChildCount(); i++ {
			switch s := p.pyString2(n.NamedChild(i)).(type) {
			case *pysym.Const:
				parts = append(parts, pysym.FPart{Lit: s.Value.(string)})
			case *pysym.FString:
				parts = append(parts, s.Parts...)
			default:
				return s
			}
		}
		return &pysym.FString{Parts: parts, At: at}
	case "binary_operator":
		return &pysym.BinOp{Op: p.text(n.ChildByFieldName("operator")), L: p.pyExpr(n.ChildByFieldName("left")), R: p.pyExpr(n.ChildByFieldName("right")), At: at}
	case "unary_operator":
		return &pysym.Unary{Op: p.text(n.ChildByFieldName("operator")), X: p.pyExpr(n.ChildByFieldName("argument")), At: at}
	case "not_operator":
		return &pysym.Unary{Op: "not", X: p.pyExpr(n.ChildByFieldName("argument")), At: at}
	case "boolean_operator":
		return &pysym.BoolOp{Op: p.text(n.ChildByFieldName("operator")), L: p.pyExpr(n.ChildByFieldName("left")), R: p.pyExpr(n.ChildByFieldName("right")), At: at}
	case "comparison_operator":
		c := &pysym.Compare{At: at}
		for i := uint(0); i < n.ChildCount(); i++ {
			ch := n.Child(i)
			if n.FieldNameForChild(uint32(i)) == "operators" {
				c.Ops = append(c.Ops, strings.Join(strings.Fields(p.text(ch)), " "))
			} else if ch.IsNamed() && ch.Kind() != "comment" {
				c.Xs = append(c.Xs, p.pyExpr(ch))
			}
		}
		return c
	case "conditional_expression":
		return &pysym.IfExp{Then: p.pyExpr(n.NamedChild(0)), Cond: p.pyExpr(n.NamedChild(1)), Else: p.pyExpr(n.NamedChild(2)), At: at}
	case "call":
		args := n.ChildByFieldName("arguments")
		if args.Kind() != "argument_list" {
			return bad("a generator expression")
		}
		c := &pysym.Call{Fn: p.pyExpr(n.ChildByFieldName("function")), At: at}
		for i := uint(0); i < args.NamedChildCount(); i++ {
			a := args.NamedChild(i)
			switch a.Kind() {
			case "comment":
			case "keyword_argument":
				c.Kw = append(c.Kw, pysym.Keyword{Name: p.text(a.ChildByFieldName("name")), Value: p.pyExpr(a.ChildByFieldName("value"))})
			case "list_splat", "dictionary_splat":
				return bad("*args / **kwargs")
			default:
				c.Args = append(c.Args, p.pyExpr(a))
			}
		}
		return c
	case "attribute":
		return &pysym.Attr{X: p.pyExpr(n.ChildByFieldName("object")), Name: p.text(n.ChildByFieldName("attribute")), At: at}
	case "subscript":
		keys := subscripts(n)
		if len(keys) != 1 {
			return bad("subscript with several keys")
		}
		return &pysym.Subscript{X: p.pyExpr(n.ChildByFieldName("value")), Key: p.pyExpr(keys[0]), At: at}
	case "slice":
		// lo:hi:step; the grammar gives the parts as children around ':'
		sl := &pysym.Slice{At: at}
		part := 0
		for i := uint(0); i < n.ChildCount(); i++ {
			ch := n.Child(i)
			switch {
			case !ch.IsNamed() && p.text(ch) == ":":
				part++
			case ch.IsNamed() && ch.Kind() != "comment":
				x := p.pyExpr(ch)
				switch part {
				case 0:
					sl.Lo = x
				case 1:
					sl.Hi = x
				default:
					sl.Step = x
				}
			}
		}
		return sl
	case "tuple", "list", "set", "expression_list":
		kind := n.Kind()
		if kind == "expression_list" {
			kind = "tuple"
		}
		s := &pysym.Seq{Kind: kind, At: at}
		for i := uint(0); i < n.NamedChildCount(); i++ {
			if c := n.NamedChild(i); c.Kind() != "comment" {
				s.Elts = append(s.Elts, p.pyExpr(c))
			}
		}
		return s
	case "lambda":
		return bad("lambda")
	case "list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression":
		return bad("a comprehension")
	case "dictionary":
		return bad("a dict")
	case "await":
		return bad("await")
	case "named_expression":
		return bad("the walrus operator :=")
	}
	return bad(fmt.Sprintf("%s %q", strings.ReplaceAll(n.Kind(), "_", " "), firstLine(p.text(n))))
}

// pyString2 reads a string literal of a body: a Const, or an FString.
func (p *parser) pyString2(n *sitter.Node) pysym.Node {
	at := p.pos(n)
	start := p.text(n.NamedChild(0))
	prefix := strings.ToLower(strings.TrimRight(start, `"'`))
	if strings.Contains(prefix, "b") {
		return &pysym.Bad{What: "a bytes literal", At: at}
	}
	raw := strings.Contains(prefix, "r")
	isF := strings.Contains(prefix, "f")
	var parts []pysym.FPart
	for i := uint(0); i < n.NamedChildCount(); i++ {
		c := n.NamedChild(i)
		switch c.Kind() {
		case "string_content":
			s := p.text(c)
			if !raw {
				var err error
				if s, err = unescape(s); err != nil {
					return &pysym.Bad{What: err.Error(), At: p.pos(c)}
				}
			}
			if isF {
				s = strings.ReplaceAll(strings.ReplaceAll(s, "{{", "{"), "}}", "}")
			}
			parts = append(parts, pysym.FPart{Lit: s})
		case "escape_sequence":
			s, err := unescape(p.text(c))
			if err != nil {
				return &pysym.Bad{What: err.Error(), At: p.pos(c)}
			}
			parts = append(parts, pysym.FPart{Lit: s})
		case "interpolation":
			fp := pysym.FPart{X: p.pyExpr(c.ChildByFieldName("expression"))}
			if conv := c.ChildByFieldName("type_conversion"); conv != nil {
				fp.Conv = strings.TrimPrefix(p.text(conv), "!")
			}
			if spec := c.ChildByFieldName("format_specifier"); spec != nil {
				if spec.NamedChildCount() > 0 {
					return &pysym.Bad{What: "a nested replacement field in a format spec", At: p.pos(spec)}
				}
				fp.Spec = strings.TrimPrefix(p.text(spec), ":")
			}
			parts = append(parts, fp)
		}
	}
	if !isF {
		var b strings.Builder
		for _, fp := range parts {
			b.WriteString(fp.Lit)
		}
		return &pysym.Const{Value: b.String(), At: at}
	}
	return &pysym.FString{Parts: parts, At: at}
}
