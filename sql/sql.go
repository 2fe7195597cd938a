// Package sql is the SQL front end: it reads the SQL text of fletch's Flight
// SQL surface (with pg_query, PostgreSQL's own parser) into statements: the
// table is a feature class, the select list becomes the statement's outputs
// (expression trees), and WHERE names the input rows — key values, `?` /
// `$n` parameters and the `__as_of__` pseudo-column.
//
// It knows the feature graph and the statement type, and nothing of gRPC,
// Flight, the other front ends or execution: the transport calls it, the
// planner plans what it builds. Every error is a *statement.Error carrying
// the line:col of the offending text.
package sql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// Parse reads sql against g as a feature lookup.
func Parse(g *features.Graph, sql string) (*statement.Statement, error) {
	p := &parser{graph: g, src: sql}
	stmt, explain, err := p.read()
	if err != nil {
		return nil, err
	}
	return p.lookup(stmt, explain)
}

// ParseQueryVisible is ParseQuery for a reader who may know only the
// classes visible says: any other is an unknown table, exactly like one
// that does not exist, and no name of one is suggested. A `*` reads the
// columns readable says the reader may read (nil: every column).
func ParseQueryVisible(g *features.Graph, sql string, visible func(table string) bool, readable func(*features.Feature) bool) (*statement.Statement, *statement.Relational, error) {
	return (&parser{graph: g, src: sql, visible: visible, readable: readable}).parseQuery()
}

// ParseQuery reads sql against g: a feature lookup is a Statement, any
// other SELECT (see isLookup) a Relational; exactly one is not nil.
// `EXPLAIN` before either asks for its plan.
func ParseQuery(g *features.Graph, sql string) (*statement.Statement, *statement.Relational, error) {
	return (&parser{graph: g, src: sql}).parseQuery()
}

func (p *parser) parseQuery() (*statement.Statement, *statement.Relational, error) {
	stmt, explain, err := p.read()
	if err != nil {
		return nil, nil, err
	}
	if sel := stmt.GetSelectStmt(); sel != nil && !p.isLookup(sel) {
		if p.analyze {
			return nil, nil, p.errAt(statement.Unsupported, -1, "EXPLAIN ANALYZE is for feature lookups: SQL beyond them takes EXPLAIN")
		}
		rel, err := p.relational(stmt, explain)
		return nil, rel, err
	}
	st, err := p.lookup(stmt, explain)
	return st, nil, err
}

// parser holds what positions and name checks need while one statement is
// read.
type parser struct {
	graph *features.Graph
	src   string // the SQL as the client sent it
	text  string // the SQL as pg_query parses it (see rewrite)
	edits []edit
	class *features.Class
	alias string
	// version is pg_query's parse-tree version, for writing a tree back.
	version int32
	// analyze is EXPLAIN ANALYZE's: run the query, answer the plan with
	// what each stage did.
	analyze bool
	// visible says which classes the reader may know of (nil: all):
	// another is an unknown table, exactly like one that does not exist.
	visible func(table string) bool
	// readable says which columns a `*` reads (nil: every column).
	readable func(*features.Feature) bool
	// last is the most recent position computed: positions are asked for
	// mostly in increasing order (every column of a 250-column select
	// list), and counting from the previous one keeps that linear.
	last struct {
		off int
		pos expr.Pos
	}
}

// edit is one replacement rewrite made: [origStart, origEnd) in src became
// [newStart, newEnd) in text.
type edit struct{ origStart, origEnd, newStart, newEnd int }

// read parses the query text into its one statement, and whether EXPLAIN
// asks for its plan.
func (p *parser) read() (*pg.Node, bool, error) {
	if at := strings.IndexByte(p.src, 0); at >= 0 {
		// pg_query reads C strings: it would read up to the NUL and drop
		// the rest (`id = 1\x00 OR 1=1` answered as `id = 1`).
		return nil, false, p.errAt(statement.InvalidInput, int32(at), "the query text holds a NUL byte: remove it")
	}
	if err := p.rewrite(); err != nil {
		return nil, false, err
	}
	tree, err := pg.Parse(p.text)
	if err != nil {
		msg := err.Error()
		at := -1
		if pe, ok := err.(*pgparser.Error); ok && pe.Cursorpos > 0 {
			at = pe.Cursorpos - 1
		}
		return nil, false, p.errAt(statement.InvalidInput, int32(at), "%s", msg)
	}
	p.version = tree.Version
	switch len(tree.Stmts) {
	case 0:
		return nil, false, p.errAt(statement.InvalidInput, -1, "empty query: expected SELECT <columns> FROM <table> WHERE <keys>")
	case 1:
	default:
		return nil, false, p.errAt(statement.InvalidInput, tree.Stmts[1].StmtLocation, "one statement per query, found %d", len(tree.Stmts))
	}
	stmt := tree.Stmts[0].Stmt
	explain := false
	if ex := stmt.GetExplainStmt(); ex != nil {
		for _, o := range ex.Options {
			if d := o.GetDefElem(); d == nil || d.Defname != "analyze" || d.Arg != nil {
				return nil, false, p.errAt(statement.Unsupported, -1, "EXPLAIN takes no options in fletch but ANALYZE: write EXPLAIN SELECT … or EXPLAIN ANALYZE SELECT …")
			}
			p.analyze = true
		}
		stmt, explain = ex.Query, true
	}
	if stmt.GetSelectStmt() == nil {
		return nil, false, p.errAt(statement.Unsupported, tree.Stmts[0].StmtLocation, "fletch is read-only: only SELECT queries are supported")
	}
	return stmt, explain, nil
}

// lookup reads a SELECT as a feature lookup (its plan, with explain).
func (p *parser) lookup(stmt *pg.Node, explain bool) (*statement.Statement, error) {
	st, err := p.selectStmt(stmt.GetSelectStmt())
	if err == nil && explain {
		st.Options.Explain, st.Options.Analyze = true, p.analyze
	}
	return st, err
}

// rewrite makes the text pg_query can parse: bare keywords that name a
// class table in a table position (`FROM user`, `user.id`) are quoted, and
// `?` placeholders become `$1`, `$2`, ... in order. String literals and
// quoted identifiers are single tokens of the scanner, so they are never
// touched.
func (p *parser) rewrite() error {
	res, err := pg.Scan(p.src)
	if err != nil {
		return p.errAt(statement.InvalidInput, -1, "%s", err.Error())
	}
	var b strings.Builder
	last, nparam, dollar := 0, 0, false
	toks := res.Tokens
	for i, t := range toks {
		start, end := int(t.Start), int(t.End)
		word := p.src[start:end]
		var repl string
		switch {
		case t.Token == pg.Token_PARAM:
			dollar = true
		case t.Token == pg.Token_Op && word == "?":
			nparam++
			repl = "$" + strconv.Itoa(nparam)
		case t.KeywordKind != pg.KeywordKind_NO_KEYWORD && p.graph.Class(strings.ToLower(word)) != nil:
			prevFrom := i > 0 && (tablePosition[toks[i-1].Token] || p.src[toks[i-1].Start:toks[i-1].End] == ".")
			nextDot := i+1 < len(toks) && p.src[toks[i+1].Start:toks[i+1].End] == "."
			if prevFrom || nextDot {
				repl = `"` + strings.ToLower(word) + `"`
			}
		}
		if repl == "" {
			continue
		}
		b.WriteString(p.src[last:start])
		ns := b.Len()
		b.WriteString(repl)
		p.edits = append(p.edits, edit{start, end, ns, b.Len()})
		last = end
	}
	if nparam > 0 && dollar {
		return p.errAt(statement.InvalidInput, -1, "a query uses either ? or $n parameters, not both")
	}
	b.WriteString(p.src[last:])
	p.text = b.String()
	return nil
}

// tablePosition are the tokens a table name follows.
var tablePosition = map[pg.Token]bool{pg.Token_FROM: true, pg.Token_JOIN: true, pg.Token_INTO: true, pg.Token_UPDATE: true, pg.Token_TABLE: true}

// origOffset maps a byte offset of the rewritten text to the original.
func (p *parser) origOffset(off int) int {
	delta := 0
	for _, e := range p.edits {
		if off < e.newStart {
			break
		}
		if off < e.newEnd {
			return e.origStart
		}
		delta = e.newEnd - e.origEnd
	}
	return off - delta
}

// pos turns a location of the parse tree (a byte offset in the rewritten
// text, -1 when unknown) into line:col of the original text.
func (p *parser) pos(loc int32) expr.Pos {
	if loc < 0 {
		return expr.Pos{}
	}
	off := min(p.origOffset(int(loc)), len(p.src))
	from, at := 0, expr.Pos{Line: 1, Col: 1}
	if p.last.off <= off && p.last.pos.Line > 0 {
		from, at = p.last.off, p.last.pos
	}
	seg := p.src[from:off]
	if nl := strings.Count(seg, "\n"); nl > 0 {
		at.Line += nl
		at.Col = 1
		seg = seg[strings.LastIndexByte(seg, '\n')+1:]
	}
	at.Col += utf8.RuneCountInString(seg)
	p.last.off, p.last.pos = off, at
	return at
}

func (p *parser) errAt(kind statement.ErrorKind, loc int32, format string, args ...any) *statement.Error {
	return &statement.Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Pos: p.pos(loc)}
}

func (p *parser) selectStmt(sel *pg.SelectStmt) (*statement.Statement, error) {
	if sel.Op != pg.SetOperation_SETOP_NONE {
		return nil, p.errAt(statement.Unsupported, -1, "UNION, INTERSECT and EXCEPT are not supported: a fletch query reads one table")
	}
	if sel.WithClause != nil {
		return nil, p.errAt(statement.Unsupported, sel.WithClause.Location, "WITH is not supported: a fletch query reads one table")
	}
	if len(sel.ValuesLists) > 0 {
		return nil, p.errAt(statement.Unsupported, -1, "VALUES is not supported: a fletch query reads one table")
	}
	for _, c := range []struct {
		nodes []*pg.Node
		what  string
	}{
		{sel.DistinctClause, "DISTINCT"},
		{sel.GroupClause, "GROUP BY"},
		{sel.WindowClause, "WINDOW"},
		{sel.SortClause, "ORDER BY (results come in input order)"},
		{sel.LockingClause, "FOR UPDATE/SHARE"},
	} {
		if len(c.nodes) > 0 {
			return nil, p.errAt(statement.Unsupported, location(c.nodes[0]), "%s is not supported in a fletch query", c.what)
		}
	}
	if sel.HavingClause != nil {
		return nil, p.errAt(statement.Unsupported, location(sel.HavingClause), "HAVING is not supported in a fletch query")
	}
	if sel.IntoClause != nil {
		return nil, p.errAt(statement.Unsupported, -1, "SELECT INTO is not supported: fletch is read-only")
	}
	if err := p.from(sel.FromClause); err != nil {
		return nil, err
	}
	outs, err := p.selectList(sel.TargetList)
	if err != nil {
		return nil, err
	}
	conds, err := p.where(sel.WhereClause)
	if err != nil {
		return nil, err
	}
	if sel.LimitOffset != nil {
		return nil, p.errAt(statement.InvalidInput, location(sel.LimitOffset), "OFFSET is not supported: the input rows in WHERE are the rows of the result")
	}
	limit := int64(-1)
	if sel.LimitCount != nil {
		c := sel.LimitCount.GetAConst()
		switch {
		case c != nil && c.Isnull: // LIMIT ALL
		case c != nil && c.GetIval() != nil && c.GetIval().Ival >= 0:
			limit = int64(c.GetIval().Ival)
		case c != nil && c.GetVal() == nil && !c.Isnull:
			limit = 0 // LIMIT 0: pg_query leaves a zero integer empty
		default:
			return nil, p.errAt(statement.InvalidInput, location(sel.LimitCount), "LIMIT takes a non-negative integer literal")
		}
	}
	st, err := statement.Build(p.class, outs, conds, limit)
	if err != nil {
		return nil, err
	}
	st.Text = p.src
	return st, nil
}

// from resolves the one table of the query.
func (p *parser) from(from []*pg.Node) error {
	if len(from) == 0 {
		return p.errAt(statement.InvalidInput, -1, "missing FROM: a fletch query reads one feature class, one of %s", strings.Join(p.graph.ClassNames(), ", "))
	}
	if len(from) > 1 {
		return p.errAt(statement.Unsupported, location(from[1]), "a fletch query reads one table; follow relations with dotted columns (\"item.title\") instead of joins")
	}
	rv := from[0].GetRangeVar()
	if rv == nil {
		return p.errAt(statement.Unsupported, location(from[0]), "a fletch query reads one table by name; joins and subqueries are not supported")
	}
	class, err := p.table(rv)
	if err != nil {
		return err
	}
	p.class = class
	if rv.Alias != nil {
		p.alias = rv.Alias.Aliasname
	}
	return nil
}

// table resolves a table name to its class (statement.LookupTable), for
// the reader's eyes only (visible).
func (p *parser) table(rv *pg.RangeVar) (*features.Class, error) {
	at := p.pos(rv.Location)
	class, err := statement.LookupTable(p.graph, []string{rv.Catalogname, rv.Schemaname, rv.Relname}, at)
	if p.visible == nil {
		return class, err
	}
	var se *statement.Error
	if err != nil && errors.As(err, &se) && se.Suggestion != "" && !p.visible(se.Suggestion) {
		e := *se
		e.Suggestion = ""
		return nil, &e
	}
	if err == nil && !p.visible(class.Table) {
		return nil, statement.Errorf(statement.InvalidInput, at, "unknown table %q", rv.Relname)
	}
	return class, err
}

// columnPath resolves the fields of a column reference to a feature path of
// the query's class: leading catalog/schema/table (or alias) qualifiers are
// dropped and quoted dotted names (`"item.title"`) split on their dots. It
// reports the name as written after the qualifiers (the output name), and
// whether the reference is a star.
func (p *parser) columnPath(cr *pg.ColumnRef) (path []string, written string, star bool) {
	var names []string
	for _, f := range cr.Fields {
		if f.GetAStar() != nil {
			star = true
			continue
		}
		names = append(names, f.GetString_().Sval)
	}
	// A reference needs at least one name after the qualifiers, except a
	// star (`user.*`), which may consume them all.
	keep := 1
	if star {
		keep = 0
	}
	strip := func(q string) bool {
		if len(names) > keep && strings.EqualFold(names[0], q) {
			names = names[1:]
			return true
		}
		return false
	}
	if strip(statement.Catalog) {
		strip(statement.Schema)
	} else {
		strip(statement.Schema)
	}
	if !strip(p.class.Table) && p.alias != "" {
		strip(p.alias)
	}
	written = strings.Join(names, ".")
	for _, n := range names {
		path = append(path, strings.Split(n, ".")...)
	}
	return path, written, star
}

// checkPath is CheckPath at a location of the parse tree.
func (p *parser) checkPath(path []string, loc int32) error {
	return statement.CheckPath(p.class, path, p.pos(loc))
}

// location is the parse-tree location of the nodes this package reports
// errors on, -1 for others.
func location(n *pg.Node) int32 {
	switch {
	case n == nil:
		return -1
	case n.GetColumnRef() != nil:
		return n.GetColumnRef().Location
	case n.GetAConst() != nil:
		return n.GetAConst().Location
	case n.GetAExpr() != nil:
		return n.GetAExpr().Location
	case n.GetFuncCall() != nil:
		return n.GetFuncCall().Location
	case n.GetBoolExpr() != nil:
		return n.GetBoolExpr().Location
	case n.GetParamRef() != nil:
		return n.GetParamRef().Location
	case n.GetTypeCast() != nil:
		return n.GetTypeCast().Location
	case n.GetCaseExpr() != nil:
		return n.GetCaseExpr().Location
	case n.GetRowExpr() != nil:
		return n.GetRowExpr().Location
	case n.GetNullTest() != nil:
		return n.GetNullTest().Location
	case n.GetRangeVar() != nil:
		return n.GetRangeVar().Location
	case n.GetSubLink() != nil:
		return n.GetSubLink().Location
	case n.GetResTarget() != nil:
		return n.GetResTarget().Location
	case n.GetSortBy() != nil:
		return location(n.GetSortBy().Node)
	case n.GetJoinExpr() != nil:
		return location(n.GetJoinExpr().Larg)
	case n.GetRangeSubselect() != nil:
		return -1
	}
	return -1
}
