// Package expr is the untyped syntax tree of fletch expressions: the `_`
// expressions of feature definitions (`_.first_name + " " + _.last_name`,
// `_.reviews[_.created_at > _.chalk_window].count()`) and the select-list
// expressions of SQL queries (`lower(full_name)`).
//
// It knows nothing about feature classes, types or execution: the planner
// binds these trees against the feature graph, and the operators evaluate the
// bound form. Loaders (Python definitions, SQL text, Substrait) produce them.
package expr

import (
	"fmt"
	"strconv"
	"strings"
)

// Pos is a position in a source file or query text. Line and Col are
// 1-based; a zero Pos means "unknown".
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.File == "":
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Node is an expression.
type Node interface {
	Position() Pos
	String() string
}

// Ref is a path of names from the row the expression is evaluated on:
// `_.item.most_recent_price` is Ref{Path: ["item", "most_recent_price"]}.
// A SQL column reference `"item.title"` is the same Ref.
type Ref struct {
	Path []string
	At   Pos
}

// ChalkWindow is `_.chalk_window`: the lower bound of the window a windowed
// feature is being computed for (the row's time minus the window).
type ChalkWindow struct{ At Pos }

// Literal is a constant. Value is nil, bool, int64, float64 or string.
type Literal struct {
	Value any
	At    Pos
}

// Binary is `L Op R`. Op is one of + - * / // % ** == != < <= > >= & | and or.
type Binary struct {
	Op   string
	L, R Node
	At   Pos
}

// Unary is `Op X`: Op is "-", "~" or "not".
type Unary struct {
	Op string
	X  Node
	At Pos
}

// Call is a function call: `F.lower(_.name)`, `lower(name)`, or a method on
// a value other than an aggregation. Named holds keyword arguments in the
// order they were written.
type Call struct {
	Func  string
	Args  []Node
	Named []NamedArg
	At    Pos
}

// NamedArg is a keyword argument of a Call.
type NamedArg struct {
	Name  string
	Value Node
}

// Select is a DataFrame selection over a has-many relation:
// `_.prices[_.type == "purchase", _.value]`. Inside Filters and Project the
// `_` is the related row. Project is nil when no column was named.
type Select struct {
	Rel     Node // a Ref to the has-many feature
	Filters []Node
	Project Node
	At      Pos
}

// Agg is an aggregation of a has-many selection: `sel.count()`,
// `_.reviews.star_rating.mean()` (Source is then a Select with Project), or
// `sel.max_by(_.created_at)` / `F.max_by(sel, sort=_.created_at)` (SortBy).
type Agg struct {
	Func   string
	Source *Select
	SortBy Node
	At     Pos
}

// Index is `X[Key]` where X is not a DataFrame: a windowed feature indexed by
// a window (`_.sum_txns[_.chalk_window]`, `_.review_count["30d"]`).
type Index struct {
	X   Node
	Key Node
	At  Pos
}

// Alias names the result of an expression: `(...).alias("name")` or SQL `AS`.
type Alias struct {
	X    Node
	Name string
	At   Pos
}

// When is a conditional: `F.when(c1).then(v1).when(c2).then(v2).otherwise(e)`
// or SQL CASE. Else is nil when no otherwise was given (null).
type When struct {
	Conds, Thens []Node
	Else         Node
	At           Pos
}

func (n *Ref) Position() Pos         { return n.At }
func (n *ChalkWindow) Position() Pos { return n.At }
func (n *Literal) Position() Pos     { return n.At }
func (n *Binary) Position() Pos      { return n.At }
func (n *Unary) Position() Pos       { return n.At }
func (n *Call) Position() Pos        { return n.At }
func (n *Select) Position() Pos      { return n.At }
func (n *Agg) Position() Pos         { return n.At }
func (n *Index) Position() Pos       { return n.At }
func (n *Alias) Position() Pos       { return n.At }
func (n *When) Position() Pos        { return n.At }

func (n *Ref) String() string         { return "_." + strings.Join(n.Path, ".") }
func (n *ChalkWindow) String() string { return "_.chalk_window" }
func (n *Literal) String() string {
	switch v := n.Value.(type) {
	case nil:
		return "None"
	case string:
		return strconv.Quote(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	default:
		return fmt.Sprint(v)
	}
}
func (n *Binary) String() string { return "(" + n.L.String() + " " + n.Op + " " + n.R.String() + ")" }
func (n *Unary) String() string {
	if n.Op == "not" {
		return "not " + n.X.String()
	}
	return n.Op + n.X.String()
}
func (n *Call) String() string {
	parts := make([]string, 0, len(n.Args)+len(n.Named))
	for _, a := range n.Args {
		parts = append(parts, a.String())
	}
	for _, a := range n.Named {
		parts = append(parts, a.Name+"="+a.Value.String())
	}
	return "F." + n.Func + "(" + strings.Join(parts, ", ") + ")"
}
func (n *Select) String() string {
	parts := make([]string, 0, len(n.Filters)+1)
	for _, f := range n.Filters {
		parts = append(parts, f.String())
	}
	if n.Project != nil {
		parts = append(parts, n.Project.String())
	}
	if len(parts) == 0 {
		return n.Rel.String()
	}
	return n.Rel.String() + "[" + strings.Join(parts, ", ") + "]"
}
func (n *Agg) String() string {
	if n.SortBy != nil {
		return n.Source.String() + "." + n.Func + "(" + n.SortBy.String() + ")"
	}
	return n.Source.String() + "." + n.Func + "()"
}
func (n *Index) String() string { return n.X.String() + "[" + n.Key.String() + "]" }
func (n *Alias) String() string { return n.X.String() + ".alias(" + strconv.Quote(n.Name) + ")" }
func (n *When) String() string {
	var b strings.Builder
	for i := range n.Conds {
		fmt.Fprintf(&b, "F.when(%s).then(%s).", n.Conds[i], n.Thens[i])
	}
	if n.Else != nil {
		fmt.Fprintf(&b, "otherwise(%s)", n.Else)
	} else {
		b.WriteString("otherwise(None)")
	}
	return b.String()
}

// Walk calls fn for n and each node below it, depth first, until fn returns false.
func Walk(n Node, fn func(Node) bool) {
	if n == nil || !fn(n) {
		return
	}
	switch n := n.(type) {
	case *Binary:
		Walk(n.L, fn)
		Walk(n.R, fn)
	case *Unary:
		Walk(n.X, fn)
	case *Call:
		for _, a := range n.Args {
			Walk(a, fn)
		}
		for _, a := range n.Named {
			Walk(a.Value, fn)
		}
	case *Select:
		Walk(n.Rel, fn)
		for _, f := range n.Filters {
			Walk(f, fn)
		}
		Walk(n.Project, fn)
	case *Agg:
		Walk(n.Source, fn)
		Walk(n.SortBy, fn)
	case *Index:
		Walk(n.X, fn)
		Walk(n.Key, fn)
	case *Alias:
		Walk(n.X, fn)
	case *When:
		for i := range n.Conds {
			Walk(n.Conds[i], fn)
			Walk(n.Thens[i], fn)
		}
		Walk(n.Else, fn)
	}
}

// Aggregations lists the aggregation functions a has-many selection accepts.
var Aggregations = []string{
	"sum", "min", "max", "mean", "count", "std", "var",
	"approx_count_distinct", "any", "all", "max_by", "min_by",
}

// IsAggregation reports whether name is an aggregation function.
func IsAggregation(name string) bool {
	for _, a := range Aggregations {
		if a == name {
			return true
		}
	}
	return false
}
