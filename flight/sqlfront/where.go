package sqlfront

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
)

// pred is one conjunct of WHERE: columns and the tuples of values they take
// (one tuple for `=`, one per element for IN).
type pred struct {
	cols   []string
	locs   []int32
	tuples [][]*pg.Node
	in     bool
}

// KeyColumns are the columns that name a row of c in WHERE: the primary key,
// or, when the primary key is an expression (`id = _.user_id + "-" +
// _.item_id`), the features it is built from.
func KeyColumns(c *features.Class) (primary *features.Feature, parts []*features.Feature) {
	primary = c.Primary
	if primary == nil || primary.Expr == nil {
		return primary, nil
	}
	seen := map[string]bool{}
	expr.Walk(primary.Expr, func(n expr.Node) bool {
		if r, ok := n.(*expr.Ref); ok && len(r.Path) == 1 && !seen[r.Path[0]] {
			if f := c.Feature(r.Path[0]); f != nil {
				seen[r.Path[0]] = true
				parts = append(parts, f)
			}
		}
		return true
	})
	return primary, parts
}

// whereHelp says what WHERE may contain, with the class's own key names.
func (p *parser) whereHelp() string {
	primary, parts := KeyColumns(p.class)
	key := "id"
	if primary != nil {
		key = primary.Name
	}
	s := fmt.Sprintf("a fletch query's WHERE names its input rows, with conditions joined by AND: %s = <value>, %s IN (<values>)", key, key)
	if len(parts) > 0 {
		eqs := make([]string, len(parts))
		for i, f := range parts {
			eqs[i] = f.Name + " = <value>"
		}
		s += ", " + strings.Join(eqs, " AND ")
	}
	return s + ", values or ? parameters, and " + planner.AsOfColumn + " = <timestamp> for point-in-time rows"
}

func (p *parser) where(st *Statement, w *pg.Node) error {
	if w == nil {
		return p.errAt(planner.InvalidInput, -1, "missing WHERE: %s", p.whereHelp())
	}
	var preds []pred
	var conj func(n *pg.Node) error
	conj = func(n *pg.Node) error {
		if be := n.GetBoolExpr(); be != nil {
			if be.Boolop != pg.BoolExprType_AND_EXPR {
				return p.errAt(planner.InvalidInput, be.Location, "OR and NOT are not allowed in WHERE (list several keys with IN instead): %s", p.whereHelp())
			}
			for _, a := range be.Args {
				if err := conj(a); err != nil {
					return err
				}
			}
			return nil
		}
		pr, err := p.predicate(n)
		if err != nil {
			return err
		}
		preds = append(preds, pr)
		return nil
	}
	if err := conj(w); err != nil {
		return err
	}

	// Which column comes from which predicate, and which one is the IN.
	byCol := map[string]int{}
	inPred := -1
	for i, pr := range preds {
		for j, c := range pr.cols {
			if _, dup := byCol[c]; dup {
				return p.errAt(planner.InvalidInput, pr.locs[j], "%s is named twice in WHERE", c)
			}
			byCol[c] = i
		}
		if pr.in && len(pr.tuples) > 1 {
			if inPred >= 0 {
				return p.errAt(planner.InvalidInput, pr.locs[0], "only one IN list is allowed in WHERE; for keys of several columns write (%s) IN ((...), (...))", strings.Join(append(preds[inPred].cols, pr.cols...), ", "))
			}
			inPred = i
		}
	}

	cols, err := p.keySet(byCol, preds)
	if err != nil {
		return err
	}
	if _, ok := byCol[planner.AsOfColumn]; ok {
		cols = append(cols, planner.AsOfColumn)
	}
	types := make([]arrow.DataType, len(cols))
	for i, c := range cols {
		types[i] = features.TimestampType
		if c != planner.AsOfColumn {
			types[i] = p.class.Feature(c).Type.Arrow()
		}
		st.Inputs = append(st.Inputs, arrow.Field{Name: c, Type: types[i], Nullable: true})
	}

	nrows := 1
	if inPred >= 0 {
		nrows = len(preds[inPred].tuples)
	}
	params := map[int32]Param{}
	for r := range nrows {
		row := make([]cell, len(cols))
		for i, c := range cols {
			pr := preds[byCol[c]]
			tuple := pr.tuples[0]
			if pr.in && len(pr.tuples) > 1 {
				tuple = pr.tuples[r]
			}
			j := indexOf(pr.cols, c)
			v := tuple[j]
			if pref := v.GetParamRef(); pref != nil {
				if nrows > 1 {
					return p.errAt(planner.InvalidInput, pref.Location, "parameters are not allowed in an IN list: write %s = ? and bind a batch of many parameter rows, one per input row", c)
				}
				if prev, ok := params[pref.Number]; ok && prev.Column != c && !arrow.TypeEqual(prev.Type, types[i]) {
					return p.errAt(planner.InvalidInput, pref.Location, "parameter $%d is used for %s and %s, which have different types", pref.Number, prev.Column, c)
				}
				if _, ok := params[pref.Number]; !ok {
					params[pref.Number] = Param{Column: c, Type: types[i], Pos: p.pos(pref.Location)}
				}
				row[i] = cell{param: int(pref.Number) - 1}
				continue
			}
			val, err := p.keyValue(v, c, types[i])
			if err != nil {
				return err
			}
			row[i] = cell{param: -1, value: val}
		}
		st.rows = append(st.rows, row)
	}
	for n := int32(1); n <= int32(len(params)); n++ {
		pa, ok := params[n]
		if !ok {
			return p.errAt(planner.InvalidInput, -1, "parameter $%d is not used (parameters are numbered from $1 without gaps)", n)
		}
		st.Params = append(st.Params, pa)
	}
	return nil
}

// predicate reads one conjunct: `col = v`, `v = col`, `col IN (v, ...)` or
// `(a, b) IN ((v, w), ...)`.
func (p *parser) predicate(n *pg.Node) (pred, error) {
	ae := n.GetAExpr()
	if ae == nil || len(ae.Name) != 1 {
		return pred{}, p.errAt(planner.InvalidInput, location(n), "unsupported condition: %s", p.whereHelp())
	}
	op := ae.Name[0].GetString_().Sval
	switch {
	case ae.Kind == pg.A_Expr_Kind_AEXPR_OP && op == "=":
		col, val := ae.Lexpr, ae.Rexpr
		if col.GetColumnRef() == nil {
			col, val = val, col
		}
		if col.GetColumnRef() == nil {
			return pred{}, p.errAt(planner.InvalidInput, ae.Location, "a condition compares a key column with a value: %s", p.whereHelp())
		}
		name, loc, err := p.whereColumn(col)
		if err != nil {
			return pred{}, err
		}
		if err := p.checkValue(val); err != nil {
			return pred{}, err
		}
		return pred{cols: []string{name}, locs: []int32{loc}, tuples: [][]*pg.Node{{val}}}, nil
	case ae.Kind == pg.A_Expr_Kind_AEXPR_IN && op == "=":
		var colNodes []*pg.Node
		if re := ae.Lexpr.GetRowExpr(); re != nil {
			colNodes = re.Args
		} else {
			colNodes = []*pg.Node{ae.Lexpr}
		}
		pr := pred{in: true}
		for _, c := range colNodes {
			name, loc, err := p.whereColumn(c)
			if err != nil {
				return pred{}, err
			}
			pr.cols = append(pr.cols, name)
			pr.locs = append(pr.locs, loc)
		}
		for _, item := range ae.Rexpr.GetList().GetItems() {
			tuple := []*pg.Node{item}
			if re := item.GetRowExpr(); re != nil {
				tuple = re.Args
			}
			if len(tuple) != len(pr.cols) {
				return pred{}, p.errAt(planner.InvalidInput, location(item), "IN element has %d values for %d columns (%s)", len(tuple), len(pr.cols), strings.Join(pr.cols, ", "))
			}
			for _, v := range tuple {
				if err := p.checkValue(v); err != nil {
					return pred{}, err
				}
			}
			pr.tuples = append(pr.tuples, tuple)
		}
		if ae.Rexpr.GetSubLink() != nil || len(pr.tuples) == 0 {
			return pred{}, p.errAt(planner.InvalidInput, location(ae.Rexpr), "IN takes a list of values")
		}
		return pr, nil
	}
	return pred{}, p.errAt(planner.InvalidInput, ae.Location, "unsupported condition (operator %s): %s", op, p.whereHelp())
}

// whereColumn resolves a column of WHERE: a key column or __as_of__.
func (p *parser) whereColumn(n *pg.Node) (string, int32, error) {
	cr := n.GetColumnRef()
	if cr == nil {
		return "", location(n), p.errAt(planner.InvalidInput, location(n), "expected a key column: %s", p.whereHelp())
	}
	path, written, star := p.columnPath(cr)
	if star || len(path) != 1 {
		return "", cr.Location, p.errAt(planner.InvalidInput, cr.Location, "%s is not a key column of %s: %s", written, p.class.Table, p.whereHelp())
	}
	name := path[0]
	if strings.EqualFold(name, planner.AsOfColumn) {
		return planner.AsOfColumn, cr.Location, nil
	}
	f := p.class.Feature(name)
	if f == nil {
		return "", cr.Location, p.errAt(planner.InvalidInput, cr.Location, "unknown column %q of table %s%s", name, p.class.Table, features.DidYouMean(name, append(p.class.FeatureNames(), planner.AsOfColumn)))
	}
	primary, parts := KeyColumns(p.class)
	if f == primary || indexOfFeature(parts, f) >= 0 {
		return f.Name, cr.Location, nil
	}
	return "", cr.Location, p.errAt(planner.InvalidInput, cr.Location, "%s is not a key column of %s, so it cannot select rows: %s", f.Name, p.class.Table, p.whereHelp())
}

// checkValue accepts the values WHERE compares keys with: constants (maybe
// cast) and parameters.
func (p *parser) checkValue(n *pg.Node) error {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	if n.GetAConst() != nil || n.GetParamRef() != nil {
		return nil
	}
	return p.errAt(planner.InvalidInput, location(n), "expected a literal value or a ? parameter: %s", p.whereHelp())
}

// keySet checks that the key columns in WHERE name rows of the class, and
// returns them in input order.
func (p *parser) keySet(byCol map[string]int, preds []pred) ([]string, error) {
	primary, parts := KeyColumns(p.class)
	if primary == nil {
		return nil, p.errAt(planner.InvalidInput, -1, "table %s has no primary key, so a query cannot name its rows", p.class.Table)
	}
	if _, ok := byCol[primary.Name]; ok {
		for _, f := range parts {
			if j, ok := byCol[f.Name]; ok {
				return nil, p.errAt(planner.InvalidInput, preds[j].locs[indexOf(preds[j].cols, f.Name)], "name rows of %s either by %s or by %s, not both", p.class.Table, primary.Name, names(parts))
			}
		}
		return []string{primary.Name}, nil
	}
	if len(parts) == 0 {
		return nil, p.errAt(planner.InvalidInput, -1, "WHERE does not name the key %s of %s: %s", primary.Name, p.class.Table, p.whereHelp())
	}
	var cols, missing []string
	for _, f := range parts {
		if _, ok := byCol[f.Name]; ok {
			cols = append(cols, f.Name)
		} else {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return nil, p.errAt(planner.InvalidInput, -1, "WHERE does not name the key of %s: give %s (missing %s): %s", p.class.Table, names(parts), strings.Join(missing, ", "), p.whereHelp())
	}
	return cols, nil
}

func names(fs []*features.Feature) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Name
	}
	return strings.Join(s, " and ")
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func indexOfFeature(fs []*features.Feature, f *features.Feature) int {
	for i, x := range fs {
		if x == f {
			return i
		}
	}
	return -1
}

// keyValue converts a WHERE literal to the Go value of the input column's
// Arrow type. An integer literal is accepted for a str key as its decimal
// text (load tools send `WHERE user.id = 123`).
func (p *parser) keyValue(n *pg.Node, col string, dt arrow.DataType) (any, error) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	lit, err := p.constant(c)
	if err != nil {
		return nil, err
	}
	v := lit.(*expr.Literal).Value
	if v == nil {
		return nil, p.errAt(planner.InvalidInput, c.Location, "%s = NULL names no row: give a key value", col)
	}
	bad := func(want string) error {
		return p.errAt(planner.InvalidInput, c.Location, "%s is not a valid %s for %s (%s)", lit, want, col, dt)
	}
	switch dt.ID() {
	case arrow.INT64:
		switch v := v.(type) {
		case int64:
			return v, nil
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, bad("integer")
			}
			return i, nil
		}
		return nil, bad("integer")
	case arrow.STRING:
		switch v := v.(type) {
		case string:
			return v, nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		}
		return nil, bad("string")
	case arrow.FLOAT64:
		switch v := v.(type) {
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case string:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, bad("number")
			}
			return f, nil
		}
		return nil, bad("number")
	case arrow.BOOL:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad("boolean")
			}
			return b, nil
		}
		return nil, bad("boolean")
	case arrow.TIMESTAMP:
		s, ok := v.(string)
		if !ok {
			return nil, bad("timestamp (write it as a string: '2026-01-01T00:00:00Z')")
		}
		t, err := ParseTime(s)
		if err != nil {
			return nil, bad("timestamp (write it as '2026-01-01T00:00:00Z')")
		}
		return arrow.Timestamp(t.UnixMicro()), nil
	case arrow.DATE32:
		s, ok := v.(string)
		if !ok {
			return nil, bad("date (write it as '2026-01-01')")
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, bad("date (write it as '2026-01-01')")
		}
		return arrow.Date32FromTime(t), nil
	}
	return nil, p.errAt(planner.Unsupported, c.Location, "keys of type %s are not supported in WHERE", dt)
}

// timeLayouts are the timestamp spellings WHERE accepts; a time without a
// zone is UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999-07",
	time.DateOnly,
}

// ParseTime reads a timestamp literal.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
}
