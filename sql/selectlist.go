package sql

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// selectList turns the select list into outputs.
func (p *parser) selectList(targets []*pg.Node) ([]statement.Output, error) {
	var outs []statement.Output
	for _, t := range targets {
		rt := t.GetResTarget()
		if cr := rt.Val.GetColumnRef(); cr != nil {
			path, written, star := p.columnPath(cr)
			if star {
				if len(path) > 0 {
					return nil, p.errAt(statement.Unsupported, cr.Location, "%s.* is not supported: name the columns of a relation one by one", strings.Join(path, "."))
				}
				outs = append(outs, p.star(cr.Location)...)
				continue
			}
			if err := p.checkPath(path, cr.Location); err != nil {
				return nil, err
			}
			name := rt.Name
			if name == "" {
				name = written
			}
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: path, At: p.pos(cr.Location)}, Name: name})
			continue
		}
		e, err := p.expr(rt.Val)
		if err != nil {
			return nil, err
		}
		name := rt.Name
		if name == "" {
			if fc := rt.Val.GetFuncCall(); fc != nil {
				name = funcName(fc)
			}
		}
		outs = append(outs, statement.Output{Expr: e, Name: name})
	}
	return outs, nil
}

// star is every scalar feature of the class the reader may read, windows
// by their FQN.
func (p *parser) star(loc int32) []statement.Output {
	var outs []statement.Output
	for _, f := range p.starColumns(p.class) {
		outs = append(outs, statement.Output{Expr: &expr.Ref{Path: []string{f.Name}, At: p.pos(loc)}, Name: f.Name})
	}
	return outs
}

// starColumns are the columns of c a `*` reads: its scalar features, but
// for a reader who may not read some (p.readable), those it may.
func (p *parser) starColumns(c *features.Class) []*features.Feature {
	all := statement.Columns(c)
	if p.readable == nil {
		return all
	}
	var mine []*features.Feature
	for _, f := range all {
		if p.readable(f) {
			mine = append(mine, f)
		}
	}
	return mine
}

func funcName(fc *pg.FuncCall) string {
	return fc.Funcname[len(fc.Funcname)-1].GetString_().Sval
}

// binaryOps maps SQL operators to the operators of features/expr.
var binaryOps = map[string]string{
	"+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "^": "**",
	"=": "==", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
	"||": "+", // string concatenation is + in fletch expressions
}

// expr converts a select-list expression.
func (p *parser) expr(n *pg.Node) (expr.Node, error) {
	at := p.pos(location(n))
	switch {
	case n.GetColumnRef() != nil:
		cr := n.GetColumnRef()
		path, _, star := p.columnPath(cr)
		if star {
			return nil, p.errAt(statement.InvalidInput, cr.Location, "* is only allowed on its own in the select list")
		}
		if err := p.checkPath(path, cr.Location); err != nil {
			return nil, err
		}
		return &expr.Ref{Path: path, At: at}, nil
	case n.GetAConst() != nil:
		return p.constant(n.GetAConst())
	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		if c := tc.Arg.GetAConst(); c != nil {
			return p.castConstant(c, tc)
		}
		return nil, p.errAt(statement.Unsupported, tc.Location, "CAST of a column is not supported yet; use a function such as to_float or to_str if the function library has it")
	case n.GetParamRef() != nil:
		return nil, p.errAt(statement.InvalidInput, n.GetParamRef().Location, "parameters are only allowed in WHERE, where they name input rows")
	case n.GetAExpr() != nil:
		return p.aexpr(n.GetAExpr())
	case n.GetBoolExpr() != nil:
		be := n.GetBoolExpr()
		args := make([]expr.Node, len(be.Args))
		for i, a := range be.Args {
			x, err := p.expr(a)
			if err != nil {
				return nil, err
			}
			args[i] = x
		}
		switch be.Boolop {
		case pg.BoolExprType_NOT_EXPR:
			return &expr.Unary{Op: "not", X: args[0], At: at}, nil
		case pg.BoolExprType_AND_EXPR, pg.BoolExprType_OR_EXPR:
			op := "and"
			if be.Boolop == pg.BoolExprType_OR_EXPR {
				op = "or"
			}
			x := args[0]
			for _, a := range args[1:] {
				x = &expr.Binary{Op: op, L: x, R: a, At: at}
			}
			return x, nil
		}
	case n.GetFuncCall() != nil:
		return p.call(n.GetFuncCall())
	case n.GetCaseExpr() != nil:
		ce := n.GetCaseExpr()
		w := &expr.When{At: at}
		var subject expr.Node
		if ce.Arg != nil {
			s, err := p.expr(ce.Arg)
			if err != nil {
				return nil, err
			}
			subject = s
		}
		for _, a := range ce.Args {
			cw := a.GetCaseWhen()
			cond, err := p.expr(cw.Expr)
			if err != nil {
				return nil, err
			}
			if subject != nil {
				cond = &expr.Binary{Op: "==", L: subject, R: cond, At: p.pos(cw.Location)}
			}
			then, err := p.expr(cw.Result)
			if err != nil {
				return nil, err
			}
			w.Conds = append(w.Conds, cond)
			w.Thens = append(w.Thens, then)
		}
		if ce.Defresult != nil {
			e, err := p.expr(ce.Defresult)
			if err != nil {
				return nil, err
			}
			w.Else = e
		}
		return w, nil
	case n.GetSubLink() != nil:
		return nil, p.errAt(statement.Unsupported, n.GetSubLink().Location, "subqueries are not supported: follow relations with dotted columns (\"item.title\")")
	case n.GetNullTest() != nil:
		return nil, p.errAt(statement.Unsupported, n.GetNullTest().Location, "IS NULL is not supported in the select list yet")
	}
	return nil, p.errAt(statement.Unsupported, location(n), "this expression is not supported in a fletch query")
}

func (p *parser) aexpr(ae *pg.A_Expr) (expr.Node, error) {
	at := p.pos(ae.Location)
	if ae.Kind != pg.A_Expr_Kind_AEXPR_OP || len(ae.Name) != 1 {
		return nil, p.errAt(statement.Unsupported, ae.Location, "this operator is not supported in the select list; use arithmetic, comparisons, AND/OR/NOT, CASE and functions")
	}
	sqlOp := ae.Name[0].GetString_().Sval
	op, ok := binaryOps[sqlOp]
	if !ok {
		return nil, p.errAt(statement.Unsupported, ae.Location, "operator %s is not supported", sqlOp)
	}
	r, err := p.expr(ae.Rexpr)
	if err != nil {
		return nil, err
	}
	if ae.Lexpr == nil {
		if sqlOp == "-" {
			return &expr.Unary{Op: "-", X: r, At: at}, nil
		}
		if sqlOp == "+" {
			return r, nil
		}
		return nil, p.errAt(statement.Unsupported, ae.Location, "prefix operator %s is not supported", sqlOp)
	}
	l, err := p.expr(ae.Lexpr)
	if err != nil {
		return nil, err
	}
	return &expr.Binary{Op: op, L: l, R: r, At: at}, nil
}

func (p *parser) call(fc *pg.FuncCall) (expr.Node, error) {
	name := funcName(fc)
	switch {
	case fc.AggStar || fc.AggDistinct || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.Over != nil:
		return nil, p.errAt(statement.Unsupported, fc.Location, "%s: aggregates and window functions over the result are not supported; aggregations are features of the class", name)
	}
	c := &expr.Call{Func: name, At: p.pos(fc.Location)}
	for _, a := range fc.Args {
		if na := a.GetNamedArgExpr(); na != nil {
			v, err := p.expr(na.Arg)
			if err != nil {
				return nil, err
			}
			c.Named = append(c.Named, expr.NamedArg{Name: na.Name, Value: v})
			continue
		}
		v, err := p.expr(a)
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, v)
	}
	return c, nil
}

// constant is a literal of the select list.
func (p *parser) constant(c *pg.A_Const) (expr.Node, error) {
	at := p.pos(c.Location)
	if c.Isnull {
		return &expr.Literal{Value: nil, At: at}, nil
	}
	switch {
	case c.GetIval() != nil:
		return &expr.Literal{Value: int64(c.GetIval().Ival), At: at}, nil
	case c.GetFval() != nil:
		s := c.GetFval().Fval
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return &expr.Literal{Value: i, At: at}, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, p.errAt(statement.InvalidInput, c.Location, "number %s is out of range", s)
		}
		return &expr.Literal{Value: f, At: at}, nil
	case c.GetSval() != nil:
		return &expr.Literal{Value: c.GetSval().Sval, At: at}, nil
	case c.GetBoolval() != nil:
		return &expr.Literal{Value: c.GetBoolval().Boolval, At: at}, nil
	case c.GetBsval() != nil:
		return nil, p.errAt(statement.Unsupported, c.Location, "bit strings are not supported")
	}
	// pg_query leaves the value of a zero integer empty.
	return &expr.Literal{Value: int64(0), At: at}, nil
}

// castConstant folds `'1.5'::float`, `CAST(1 AS float)` and similar casts of
// a constant into a literal of the target type.
func (p *parser) castConstant(c *pg.A_Const, tc *pg.TypeCast) (expr.Node, error) {
	lit, err := p.constant(c)
	if err != nil {
		return nil, err
	}
	l := lit.(*expr.Literal)
	if l.Value == nil {
		return l, nil
	}
	typ := typeName(tc)
	text := literalText(l.Value)
	switch typ {
	case "int2", "int4", "int8", "integer", "bigint", "smallint":
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, p.errAt(statement.InvalidInput, c.Location, "%s is not an integer", text)
		}
		l.Value = v
	case "float4", "float8", "real", "double precision", "numeric", "decimal":
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, p.errAt(statement.InvalidInput, c.Location, "%s is not a number", text)
		}
		l.Value = v
	case "text", "varchar", "bpchar", "char":
		l.Value = text
	case "bool", "boolean":
		v, err := strconv.ParseBool(text)
		if err != nil {
			return nil, p.errAt(statement.InvalidInput, c.Location, "%s is not a boolean", text)
		}
		l.Value = v
	default:
		return nil, p.errAt(statement.Unsupported, tc.Location, "CAST to %s is not supported in the select list", typ)
	}
	return l, nil
}

func typeName(tc *pg.TypeCast) string {
	names := tc.TypeName.Names
	return strings.ToLower(names[len(names)-1].GetString_().Sval)
}

func literalText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}
