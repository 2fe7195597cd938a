package sqlfront

import (
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
)

// where reads WHERE into Conds: a conjunction of `=` and IN conditions.
func (p *parser) where(w *pg.Node) ([]Cond, error) {
	var conds []Cond
	var conj func(n *pg.Node) error
	conj = func(n *pg.Node) error {
		if be := n.GetBoolExpr(); be != nil {
			if be.Boolop != pg.BoolExprType_AND_EXPR {
				return p.errAt(planner.InvalidInput, be.Location, "OR and NOT are not allowed in WHERE (list several keys with IN instead): %s", whereHelp(p.class))
			}
			for _, a := range be.Args {
				if err := conj(a); err != nil {
					return err
				}
			}
			return nil
		}
		cd, err := p.predicate(n)
		if err != nil {
			return err
		}
		conds = append(conds, cd)
		return nil
	}
	if w != nil {
		if err := conj(w); err != nil {
			return nil, err
		}
	}
	return conds, nil
}

// predicate reads one conjunct: `col = v`, `v = col`, `col IN (v, ...)` or
// `(a, b) IN ((v, w), ...)`.
func (p *parser) predicate(n *pg.Node) (Cond, error) {
	ae := n.GetAExpr()
	if ae == nil || len(ae.Name) != 1 {
		return Cond{}, p.errAt(planner.InvalidInput, location(n), "unsupported condition: %s", whereHelp(p.class))
	}
	op := ae.Name[0].GetString_().Sval
	switch {
	case ae.Kind == pg.A_Expr_Kind_AEXPR_OP && op == "=":
		col, val := ae.Lexpr, ae.Rexpr
		if col.GetColumnRef() == nil {
			col, val = val, col
		}
		if col.GetColumnRef() == nil {
			return Cond{}, p.errAt(planner.InvalidInput, ae.Location, "a condition compares a key column with a value: %s", whereHelp(p.class))
		}
		name, at, err := p.whereColumn(col)
		if err != nil {
			return Cond{}, err
		}
		v, err := p.whereValue(val)
		if err != nil {
			return Cond{}, err
		}
		return Cond{Cols: []string{name}, At: []expr.Pos{at}, Tuples: [][]Value{{v}}}, nil
	case ae.Kind == pg.A_Expr_Kind_AEXPR_IN && op == "=":
		if ae.Rexpr.GetSubLink() != nil {
			return Cond{}, p.errAt(planner.InvalidInput, location(ae.Rexpr), "IN takes a list of values, not a subquery")
		}
		colNodes := []*pg.Node{ae.Lexpr}
		if re := ae.Lexpr.GetRowExpr(); re != nil {
			colNodes = re.Args
		}
		cd := Cond{In: true}
		for _, c := range colNodes {
			name, at, err := p.whereColumn(c)
			if err != nil {
				return Cond{}, err
			}
			cd.Cols = append(cd.Cols, name)
			cd.At = append(cd.At, at)
		}
		for _, item := range ae.Rexpr.GetList().GetItems() {
			nodes := []*pg.Node{item}
			if re := item.GetRowExpr(); re != nil {
				nodes = re.Args
			}
			tuple := make([]Value, len(nodes))
			for i, v := range nodes {
				val, err := p.whereValue(v)
				if err != nil {
					return Cond{}, err
				}
				tuple[i] = val
			}
			cd.Tuples = append(cd.Tuples, tuple)
		}
		return cd, nil
	}
	return Cond{}, p.errAt(planner.InvalidInput, ae.Location, "unsupported condition (operator %s): %s", op, whereHelp(p.class))
}

// whereColumn reads a column of WHERE: one name after the qualifiers, which
// inputRows resolves.
func (p *parser) whereColumn(n *pg.Node) (string, expr.Pos, error) {
	cr := n.GetColumnRef()
	if cr == nil {
		return "", expr.Pos{}, p.errAt(planner.InvalidInput, location(n), "expected a key column: %s", whereHelp(p.class))
	}
	path, written, star := p.columnPath(cr)
	if star || len(path) != 1 {
		return "", expr.Pos{}, p.errAt(planner.InvalidInput, cr.Location, "%s is not a key column of %s: %s", written, p.class.Table, whereHelp(p.class))
	}
	return path[0], p.pos(cr.Location), nil
}

// whereValue reads the values WHERE compares keys with: constants (maybe
// cast) and parameters.
func (p *parser) whereValue(n *pg.Node) (Value, error) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	at := p.pos(location(n))
	if pref := n.GetParamRef(); pref != nil {
		if pref.Number < 1 {
			return Value{}, p.errAt(planner.InvalidInput, pref.Location, "parameters are numbered from $1")
		}
		return Value{Param: int(pref.Number), At: at}, nil
	}
	c := n.GetAConst()
	if c == nil {
		return Value{}, p.errAt(planner.InvalidInput, location(n), "expected a literal value or a ? parameter: %s", whereHelp(p.class))
	}
	lit, err := p.constant(c)
	if err != nil {
		return Value{}, err
	}
	return Value{Lit: lit.(*expr.Literal).Value, At: at}, nil
}
