package sql

import (
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// where reads WHERE into Conds: a conjunction of `=` and IN conditions.
func (p *parser) where(w *pg.Node) ([]statement.Cond, error) {
	var conds []statement.Cond
	var conj func(n *pg.Node) error
	conj = func(n *pg.Node) error {
		if be := n.GetBoolExpr(); be != nil {
			if be.Boolop != pg.BoolExprType_AND_EXPR {
				return p.errAt(statement.InvalidInput, be.Location, "OR and NOT are not allowed in WHERE (list several keys with IN instead): %s", statement.WhereHelp(p.class))
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
func (p *parser) predicate(n *pg.Node) (statement.Cond, error) {
	ae := n.GetAExpr()
	if ae == nil || len(ae.Name) != 1 {
		return statement.Cond{}, p.errAt(statement.InvalidInput, location(n), "unsupported condition: %s", statement.WhereHelp(p.class))
	}
	op := ae.Name[0].GetString_().Sval
	switch {
	case ae.Kind == pg.A_Expr_Kind_AEXPR_OP && op == "=":
		col, val := ae.Lexpr, ae.Rexpr
		if col.GetColumnRef() == nil {
			col, val = val, col
		}
		if col.GetColumnRef() == nil {
			return statement.Cond{}, p.errAt(statement.InvalidInput, ae.Location, "a condition compares a key column with a value: %s", statement.WhereHelp(p.class))
		}
		name, at, err := p.whereColumn(col)
		if err != nil {
			return statement.Cond{}, err
		}
		v, err := p.whereValue(val)
		if err != nil {
			return statement.Cond{}, err
		}
		return statement.Cond{Cols: []string{name}, At: []expr.Pos{at}, Tuples: [][]statement.Value{{v}}}, nil
	case ae.Kind == pg.A_Expr_Kind_AEXPR_IN && op == "=":
		if ae.Rexpr.GetSubLink() != nil {
			return statement.Cond{}, p.errAt(statement.InvalidInput, location(ae.Rexpr), "IN takes a list of values, not a subquery")
		}
		colNodes := []*pg.Node{ae.Lexpr}
		if re := ae.Lexpr.GetRowExpr(); re != nil {
			colNodes = re.Args
		}
		cd := statement.Cond{In: true}
		for _, c := range colNodes {
			name, at, err := p.whereColumn(c)
			if err != nil {
				return statement.Cond{}, err
			}
			cd.Cols = append(cd.Cols, name)
			cd.At = append(cd.At, at)
		}
		for _, item := range ae.Rexpr.GetList().GetItems() {
			nodes := []*pg.Node{item}
			if re := item.GetRowExpr(); re != nil {
				nodes = re.Args
			}
			tuple := make([]statement.Value, len(nodes))
			for i, v := range nodes {
				val, err := p.whereValue(v)
				if err != nil {
					return statement.Cond{}, err
				}
				tuple[i] = val
			}
			cd.Tuples = append(cd.Tuples, tuple)
		}
		return cd, nil
	}
	return statement.Cond{}, p.errAt(statement.InvalidInput, ae.Location, "unsupported condition (operator %s): %s", op, statement.WhereHelp(p.class))
}

// whereColumn reads a column of WHERE: one name after the qualifiers, which
// inputRows resolves.
func (p *parser) whereColumn(n *pg.Node) (string, expr.Pos, error) {
	cr := n.GetColumnRef()
	if cr == nil {
		return "", expr.Pos{}, p.errAt(statement.InvalidInput, location(n), "expected a key column: %s", statement.WhereHelp(p.class))
	}
	path, written, star := p.columnPath(cr)
	if star || len(path) != 1 {
		return "", expr.Pos{}, p.errAt(statement.InvalidInput, cr.Location, "%s is not a key column of %s: %s", written, p.class.Table, statement.WhereHelp(p.class))
	}
	return path[0], p.pos(cr.Location), nil
}

// whereValue reads the values WHERE compares keys with: constants (maybe
// cast) and parameters.
func (p *parser) whereValue(n *pg.Node) (statement.Value, error) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	at := p.pos(location(n))
	if pref := n.GetParamRef(); pref != nil {
		if pref.Number < 1 {
			return statement.Value{}, p.errAt(statement.InvalidInput, pref.Location, "parameters are numbered from $1")
		}
		return statement.Value{Param: int(pref.Number), At: at}, nil
	}
	c := n.GetAConst()
	if c == nil {
		return statement.Value{}, p.errAt(statement.InvalidInput, location(n), "expected a literal value or a ? parameter: %s", statement.WhereHelp(p.class))
	}
	lit, err := p.constant(c)
	if err != nil {
		return statement.Value{}, err
	}
	return statement.Value{Lit: lit.(*expr.Literal).Value, At: at}, nil
}
