package sql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/statement"
)

// Queries beyond a feature lookup. A SELECT that is not a lookup (no WHERE
// naming input rows, aggregates, GROUP BY, ORDER BY, joins, sub-selects,
// CTEs, SELECT 1, ...) is read into a statement.Relational: every table
// that names a class becomes a scan, renamed to the scan's view, and the
// tree is written back as SQL to run over the scans' results. The SQL is
// checked here for what must never run there: only SELECT, no table
// functions (they read files or memory), no tables but classes and CTEs,
// no parameters.

// isLookup says whether sel is a feature lookup, read by selectStmt: one
// class table, a WHERE that names input rows by their keys (or parameters),
// and nothing a lookup cannot answer. Anything else is relational.
func (p *parser) isLookup(sel *pg.SelectStmt) bool {
	if sel.Op != pg.SetOperation_SETOP_NONE || sel.WithClause != nil || len(sel.ValuesLists) > 0 ||
		len(sel.DistinctClause) > 0 || len(sel.GroupClause) > 0 || len(sel.WindowClause) > 0 ||
		len(sel.SortClause) > 0 || sel.HavingClause != nil || sel.LimitOffset != nil || sel.WhereClause == nil ||
		len(sel.FromClause) != 1 {
		return false
	}
	rv := sel.FromClause[0].GetRangeVar()
	if rv == nil {
		return false
	}
	class, err := statement.LookupTable(p.graph, []string{rv.Catalogname, rv.Schemaname, rv.Relname}, expr.Pos{})
	if err != nil {
		return true // the lookup's reader says what is wrong with the name
	}
	for _, t := range sel.TargetList {
		if beyondLookup(t) {
			return false
		}
	}
	keys := map[string]bool{statement.AsOfColumn: true}
	// A derived primary key counts too: naming it is a lookup whose error
	// says which columns name the rows.
	primary, parts := statement.KeyColumns(class)
	for _, f := range parts {
		keys[f.Name] = true
	}
	if primary != nil {
		keys[primary.Name] = true
	}
	named := false // some key column is named, not only __as_of__
	for _, c := range conjuncts(sel.WhereClause) {
		ae := c.GetAExpr()
		if ae == nil || len(ae.Name) != 1 || ae.Name[0].GetString_().Sval != "=" ||
			(ae.Kind != pg.A_Expr_Kind_AEXPR_OP && ae.Kind != pg.A_Expr_Kind_AEXPR_IN) {
			return false
		}
		cols := []*pg.Node{ae.Lexpr}
		if ae.Kind == pg.A_Expr_Kind_AEXPR_OP && ae.Lexpr.GetColumnRef() == nil {
			cols = []*pg.Node{ae.Rexpr}
		}
		if re := cols[0].GetRowExpr(); re != nil {
			cols = re.Args
		}
		for _, col := range cols {
			name := lastName(col.GetColumnRef())
			if !keys[strings.ToLower(name)] && !strings.EqualFold(name, statement.AsOfColumn) {
				return false
			}
			if !strings.EqualFold(name, statement.AsOfColumn) {
				named = true
			}
		}
	}
	return named
}

// aggregates are the SQL aggregate functions a select list may hold: a
// query with one is not a lookup (fletch's own function library has none).
var aggregates = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true, "stddev": true, "stddev_samp": true,
	"stddev_pop": true, "variance": true, "var_samp": true, "var_pop": true, "string_agg": true, "array_agg": true,
	"bool_and": true, "bool_or": true, "every": true, "median": true, "mode": true, "any_value": true,
	"first": true, "last": true, "approx_count_distinct": true, "count_star": true, "list": true,
	"arg_max": true, "arg_min": true, "max_by": true, "min_by": true, "quantile_cont": true, "quantile_disc": true,
	"percentile_cont": true, "percentile_disc": true, "corr": true, "covar_pop": true, "covar_samp": true,
}

// beyondLookup says whether n holds what only SQL over the features can
// answer: an aggregate or window function, or a sub-select.
func beyondLookup(n *pg.Node) bool {
	found := false
	walk(n.ProtoReflect(), func(m proto.Message) bool {
		switch m := m.(type) {
		case *pg.FuncCall:
			if m.AggStar || m.AggDistinct || m.Over != nil || m.AggFilter != nil || len(m.AggOrder) > 0 || aggregates[strings.ToLower(funcName(m))] {
				found = true
			}
		case *pg.SubLink:
			found = true
		}
		return !found
	})
	return found
}

// conjuncts are the conditions of a WHERE joined by AND.
func conjuncts(w *pg.Node) []*pg.Node {
	if w == nil {
		return nil
	}
	if be := w.GetBoolExpr(); be != nil && be.Boolop == pg.BoolExprType_AND_EXPR {
		var out []*pg.Node
		for _, a := range be.Args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*pg.Node{w}
}

// lastName is the last name of a column reference, "" for a star or none.
func lastName(cr *pg.ColumnRef) string {
	if cr == nil || len(cr.Fields) == 0 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
}

// qualifier is the name before the last of a column reference ("" when
// none): the table or alias it names.
func qualifier(cr *pg.ColumnRef) string {
	if len(cr.Fields) < 2 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-2].GetString_().GetSval()
}

// walk calls fn on every message of the tree under m, parents first; fn
// returns false to stop descending (and walking).
func walk(m protoreflect.Message, fn func(proto.Message) bool) bool {
	if !fn(m.Interface()) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walk(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			ok = walk(v.Message(), fn)
		}
		return ok
	})
	return ok
}

// scanOf is a scan being read, with the names the SQL qualifies its
// columns by.
type scanOf struct {
	*statement.Scan
	names map[string]bool // lower case: the alias, or the table as written and the class's table
}

// relational reads sel (the query's one statement) as a relational query.
func (p *parser) relational(stmt *pg.Node, explain bool) (*statement.Relational, error) {
	sel := stmt.GetSelectStmt()
	ctes := map[string]bool{}
	var selects []*pg.SelectStmt
	var refs []*pg.ColumnRef
	var bad error
	windows := false
	walk(stmt.ProtoReflect(), func(m proto.Message) bool {
		switch m := m.(type) {
		case *pg.CommonTableExpr:
			ctes[strings.ToLower(m.Ctename)] = true
			if m.Ctequery.GetSelectStmt() == nil {
				bad = p.errAt(statement.Unsupported, m.Location, "fletch is read-only: a WITH query may only SELECT")
			}
		case *pg.SelectStmt:
			selects = append(selects, m)
			switch {
			case m.IntoClause != nil:
				bad = p.errAt(statement.Unsupported, -1, "SELECT INTO is not supported: fletch is read-only")
			case len(m.LockingClause) > 0:
				bad = p.errAt(statement.Unsupported, -1, "FOR UPDATE/SHARE is not supported: fletch is read-only")
			}
		case *pg.ColumnRef:
			refs = append(refs, m)
		case *pg.FuncCall:
			windows = windows || m.Over != nil
			// The embedded DuckDB's settings are the server's (its home in
			// secret_directory, its working directory in allowed_paths).
			if strings.EqualFold(funcName(m), "current_setting") {
				bad = p.errAt(statement.Unsupported, m.Location, "current_setting is not supported: the settings of SQL over features are the server's")
			}
		case *pg.ParamRef:
			bad = p.errAt(statement.Unsupported, m.Location, "parameters are supported in feature lookups only (WHERE id = ?): give the values as literals")
		case *pg.RangeFunction:
			bad = p.errAt(statement.Unsupported, -1, "table functions are not supported: a query reads feature classes (tables of schema %s)", statement.Schema)
		case *pg.RangeTableFunc, *pg.RangeTableSample, *pg.RangeTableFuncCol:
			bad = p.errAt(statement.Unsupported, -1, "this FROM item is not supported: a query reads feature classes (tables of schema %s)", statement.Schema)
		case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
			bad = p.errAt(statement.Unsupported, -1, "fletch is read-only: only SELECT queries are supported")
		}
		return bad == nil
	})
	if bad != nil {
		return nil, bad
	}
	rel := &statement.Relational{Text: p.src, Explain: explain, Windows: windows, Columns: map[string]expr.Pos{}}
	for _, cr := range refs {
		if name := strings.ToLower(lastName(cr)); name != "" {
			if _, ok := rel.Columns[name]; !ok {
				rel.Columns[name] = p.pos(cr.Location)
			}
		}
	}
	var scans []*scanOf
	asOfUsed := map[*pg.ColumnRef]bool{}
	for _, s := range selects {
		var mine []*scanOf
		var rvs []*pg.RangeVar
		for _, f := range s.FromClause {
			rvs = fromRangeVars(f, rvs)
		}
		for _, rv := range rvs {
			if rv.Catalogname == "" && rv.Schemaname == "" && ctes[strings.ToLower(rv.Relname)] {
				continue
			}
			class, err := p.table(rv)
			if err != nil {
				return nil, err
			}
			sc := &scanOf{
				Scan:  &statement.Scan{View: fmt.Sprintf("__fletch_scan_%d", len(scans)+1), Class: class, Limit: -1, Pos: p.pos(rv.Location)},
				names: map[string]bool{},
			}
			alias := rv.Relname
			if rv.Alias != nil {
				alias = rv.Alias.Aliasname
			} else {
				sc.names[class.Table] = true
				rv.Alias = &pg.Alias{}
			}
			sc.names[strings.ToLower(alias)] = true
			rv.Alias.Aliasname = alias
			rv.Catalogname, rv.Schemaname, rv.Relname = "", "", sc.View
			mine = append(mine, sc)
			scans = append(scans, sc)
		}
		if err := p.asOf(s, mine, asOfUsed); err != nil {
			return nil, err
		}
		if len(mine) == 1 && len(s.FromClause) == 1 && s.FromClause[0].GetRangeVar() != nil {
			p.filters(s, mine[0])
		}
	}
	for _, cr := range refs {
		if strings.EqualFold(lastName(cr), statement.AsOfColumn) && !asOfUsed[cr] {
			return nil, p.errAt(statement.InvalidInput, cr.Location, "%s is the evaluation time of a table's rows: it is only allowed as %s = <timestamp> in the WHERE that reads the table", statement.AsOfColumn, statement.AsOfColumn)
		}
	}
	for _, sc := range scans {
		sc.Outputs = p.columnsRead(sc, refs)
		rel.Scans = append(rel.Scans, sc.Scan)
	}
	text, err := pg.Deparse(&pg.ParseResult{Version: p.version, Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}})
	if err != nil {
		return nil, p.errAt(statement.Unsupported, -1, "this query cannot be run over features: %v", err)
	}
	rel.SQL = text
	return rel, nil
}

// fromRangeVars appends the tables a FROM item reads directly (through
// joins; sub-selects are selects of their own).
func fromRangeVars(n *pg.Node, rvs []*pg.RangeVar) []*pg.RangeVar {
	switch {
	case n.GetRangeVar() != nil:
		return append(rvs, n.GetRangeVar())
	case n.GetJoinExpr() != nil:
		return fromRangeVars(n.GetJoinExpr().Rarg, fromRangeVars(n.GetJoinExpr().Larg, rvs))
	}
	return rvs
}

// trueNode is the condition an __as_of__ condition is replaced by.
func trueNode() *pg.Node {
	return &pg.Node{Node: &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Boolval{Boolval: &pg.Boolean{Boolval: true}}, Location: -1}}}
}

// asOf reads the `[t.]__as_of__ = <timestamp>` conditions of s's WHERE
// into the evaluation time of its scans (all of them when unqualified),
// replacing each by TRUE.
func (p *parser) asOf(s *pg.SelectStmt, mine []*scanOf, used map[*pg.ColumnRef]bool) error {
	replace := func(c *pg.Node) bool {
		ae := c.GetAExpr()
		if ae == nil || ae.Kind != pg.A_Expr_Kind_AEXPR_OP || len(ae.Name) != 1 || ae.Name[0].GetString_().Sval != "=" {
			return false
		}
		cr := ae.Lexpr.GetColumnRef()
		if cr == nil {
			cr = ae.Rexpr.GetColumnRef()
		}
		return cr != nil && strings.EqualFold(lastName(cr), statement.AsOfColumn)
	}
	var err error
	apply := func(c *pg.Node) {
		ae := c.GetAExpr()
		col, val := ae.Lexpr, ae.Rexpr
		if col.GetColumnRef() == nil {
			col, val = val, col
		}
		cr := col.GetColumnRef()
		v, e := p.whereValue(val)
		if e != nil {
			err = e
			return
		}
		t, e := asOfTime(v)
		if e != nil {
			err = p.errAt(statement.InvalidInput, location(val), "%s = %v: %v", statement.AsOfColumn, v.Lit, e)
			return
		}
		q := strings.ToLower(qualifier(cr))
		hit := false
		for _, sc := range mine {
			if q == "" || sc.names[q] {
				sc.AsOf = t
				hit = true
			}
		}
		switch {
		case !hit && q == "":
			err = p.errAt(statement.InvalidInput, cr.Location, "%s: this SELECT reads no feature class to evaluate as of that time", statement.AsOfColumn)
			return
		case !hit:
			err = p.errAt(statement.InvalidInput, cr.Location, "%s.%s: this SELECT reads no table %q", qualifier(cr), statement.AsOfColumn, qualifier(cr))
			return
		}
		used[cr] = true
	}
	if s.WhereClause == nil {
		return nil
	}
	if replace(s.WhereClause) {
		apply(s.WhereClause)
		s.WhereClause = trueNode()
		return err
	}
	var walkAnd func(n *pg.Node)
	walkAnd = func(n *pg.Node) {
		be := n.GetBoolExpr()
		if be == nil || be.Boolop != pg.BoolExprType_AND_EXPR {
			return
		}
		for i, a := range be.Args {
			if replace(a) {
				apply(a)
				be.Args[i] = trueNode()
			} else {
				walkAnd(a)
			}
		}
	}
	walkAnd(s.WhereClause)
	return err
}

// asOfTime is the evaluation time a literal gives.
func asOfTime(v statement.Value) (time.Time, error) {
	switch l := v.Lit.(type) {
	case time.Time:
		return l, nil
	case string:
		return coerce.ParseTime(l)
	}
	return time.Time{}, fmt.Errorf("expected a timestamp ('2026-01-01T00:00:00Z')")
}

// filters reads the conditions of s's WHERE on the features of its one
// scan, for the listing of entities to apply, and the LIMIT when nothing
// but those conditions stands between the listing and the result.
func (p *parser) filters(s *pg.SelectStmt, sc *scanOf) {
	complete := true
	for _, c := range conjuncts(s.WhereClause) {
		if ac := c.GetAConst(); ac != nil && ac.GetBoolval() != nil && ac.GetBoolval().Boolval {
			continue // an __as_of__ condition, read already
		}
		f, ok := p.filter(c, sc)
		if !ok {
			complete = false
			continue
		}
		sc.Filters = append(sc.Filters, f)
	}
	sc.WhereComplete = complete
	if s.LimitCount == nil || s.Op != pg.SetOperation_SETOP_NONE || len(s.DistinctClause) > 0 || len(s.GroupClause) > 0 ||
		len(s.WindowClause) > 0 || len(s.SortClause) > 0 || s.HavingClause != nil {
		return
	}
	for _, t := range s.TargetList {
		if beyondLookup(t) {
			return
		}
	}
	n, ok := intConst(s.LimitCount)
	if !ok {
		return
	}
	if s.LimitOffset != nil {
		off, ok := intConst(s.LimitOffset)
		if !ok {
			return
		}
		n += off
	}
	sc.Limit = n
}

// intConst is the value of a non-negative integer constant.
func intConst(n *pg.Node) (int64, bool) {
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return 0, false
	}
	if c.GetIval() != nil {
		return int64(c.GetIval().Ival), c.GetIval().Ival >= 0
	}
	return 0, c.GetVal() == nil // pg_query leaves a zero integer empty
}

// filterOps are the comparisons a filter may be, as a feature's
// condition, and their mirror (`5 < x` is `x > 5`).
var filterOps = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// filter reads c as a condition on one feature of sc.
func (p *parser) filter(c *pg.Node, sc *scanOf) (statement.Filter, bool) {
	feature := func(n *pg.Node) string {
		cr := n.GetColumnRef()
		if cr == nil || len(cr.Fields) > 2 || lastName(cr) == "" {
			return ""
		}
		if q := qualifier(cr); q != "" && !sc.names[strings.ToLower(q)] {
			return ""
		}
		f := sc.Class.Feature(lastName(cr))
		if f == nil || f.Kind != features.Scalar {
			return ""
		}
		return f.Name
	}
	if nt := c.GetNullTest(); nt != nil {
		name := feature(nt.Arg)
		op := "null"
		if nt.Nulltesttype == pg.NullTestType_IS_NOT_NULL {
			op = "notnull"
		}
		return statement.Filter{Feature: name, Op: op}, name != ""
	}
	ae := c.GetAExpr()
	if ae == nil || len(ae.Name) != 1 {
		return statement.Filter{}, false
	}
	op := ae.Name[0].GetString_().Sval
	switch ae.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		mirror, ok := filterOps[op]
		if !ok {
			return statement.Filter{}, false
		}
		name, val := feature(ae.Lexpr), ae.Rexpr
		if name == "" {
			name, val, op = feature(ae.Rexpr), ae.Lexpr, mirror
		}
		v, ok := filterValue(val)
		if name == "" || !ok {
			return statement.Filter{}, false
		}
		if op == "!=" {
			op = "<>"
		}
		return statement.Filter{Feature: name, Op: op, Values: []any{v}}, true
	case pg.A_Expr_Kind_AEXPR_IN:
		name := feature(ae.Lexpr)
		if name == "" || op != "=" {
			return statement.Filter{}, false
		}
		f := statement.Filter{Feature: name, Op: "in"}
		for _, item := range ae.Rexpr.GetList().GetItems() {
			v, ok := filterValue(item)
			if !ok {
				return statement.Filter{}, false
			}
			f.Values = append(f.Values, v)
		}
		return f, true
	}
	return statement.Filter{}, false
}

// filterValue is a constant's value (not NULL): int64, float64, string or
// bool.
func filterValue(n *pg.Node) (any, bool) {
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return nil, false
	}
	switch {
	case c.GetIval() != nil:
		return int64(c.GetIval().Ival), true
	case c.GetFval() != nil:
		s := c.GetFval().Fval
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	case c.GetSval() != nil:
		return c.GetSval().Sval, true
	case c.GetBoolval() != nil:
		return c.GetBoolval().Boolval, true
	case c.GetVal() == nil:
		return int64(0), true
	}
	return nil, false
}

// columnsRead are the columns of sc's result: the features (and has-one
// paths, `"item.title"`) of its class that some column reference of the
// query may name — every column for a `*` that may read it. A query may
// name none (`count(*)`): the primary key is always there.
func (p *parser) columnsRead(sc *scanOf, refs []*pg.ColumnRef) []statement.Output {
	var outs []statement.Output
	seen := map[string]bool{}
	add := func(name string, path []string) {
		if !seen[name] {
			seen[name] = true
			outs = append(outs, statement.Output{Expr: &expr.Ref{Path: path, At: sc.Pos}, Name: name})
		}
	}
	if sc.Class.Primary != nil {
		add(sc.Class.Primary.Name, []string{sc.Class.Primary.Name})
	}
	all := false
	for _, cr := range refs {
		if len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			q := ""
			if len(cr.Fields) > 1 {
				q = cr.Fields[len(cr.Fields)-2].GetString_().GetSval()
			}
			all = all || q == "" || sc.names[strings.ToLower(q)]
		}
	}
	if all {
		for _, f := range p.starColumns(sc.Class) {
			add(f.Name, []string{f.Name})
		}
	}
	for _, cr := range refs {
		name := lastName(cr)
		if name == "" {
			continue
		}
		if f := sc.Class.Feature(name); f != nil && f.Kind == features.Scalar {
			add(f.Name, []string{f.Name})
			continue
		}
		if path := strings.Split(name, "."); len(path) > 1 && hasOnePath(sc.Class, path) {
			add(name, path)
		}
	}
	return outs
}

// hasOnePath says whether path follows has-one relations of c to a scalar
// feature.
func hasOnePath(c *features.Class, path []string) bool {
	for i, name := range path {
		f := c.Feature(name)
		if f == nil {
			return false
		}
		if i == len(path)-1 {
			return f.Kind == features.Scalar
		}
		if f.Kind != features.HasOne || f.Relation == nil {
			return false
		}
		c = f.Relation.To
	}
	return false
}
