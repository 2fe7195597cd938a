package planner

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Explain renders the plan as indented text: each frame, the resolver
// queries that fill it, and the columns computed in it, in execution order.
func (p *Plan) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "query %s -> %s\n", p.root.class.Table, strings.Join(p.schemaNames(), ", "))
	p.root.explain(&b, "  ", p.tiledReads(), p.timeCol < 0)
	return b.String()
}

// tiledReads are the frames a materialized run reads: those some needed
// column reads, where aggregations with tiles read only their parent key.
func (p *Plan) tiledReads() map[*frameNode]bool {
	reads := map[*frameNode]bool{p.root: true}
	for _, f := range p.frames {
		for _, c := range f.cols {
			for _, d := range c.tiledDeps {
				if d.frame != f {
					reads[d.frame] = true
				}
			}
		}
	}
	return reads
}

func (p *Plan) schemaNames() []string {
	names := make([]string, 0, len(p.schema.Fields()))
	for _, f := range p.schema.Fields() {
		names = append(names, f.Name)
	}
	return names
}

func (f *frameNode) title() string {
	switch {
	case f.rel == nil:
		return fmt.Sprintf("frame %s (input rows)", f.class.Table)
	case f.rel.Many:
		seen := "every row: " + f.class.Table + " has no event time" // the filter hasMany runs
		if f.class.EventTime != nil && f.origin != nil && f.origin.eventTime != "" {
			seen = fmt.Sprintf("%s.%s <= row time", f.class.Table, f.class.EventTime.Name)
		}
		return fmt.Sprintf("frame %s (has-many: rows with %s = %s.%s, %s)", f.class.Table, f.rel.ToKey.QualifiedName(), f.parent.class.Table, f.rel.FromKey.Name, seen)
	default:
		return fmt.Sprintf("frame %s (has-one: distinct %s.%s)", f.class.Table, f.parent.class.Table, f.rel.FromKey.Name)
	}
}

func (l *lookup) describe(by string) string {
	return fmt.Sprintf("fetch %s [source %s] where %s in (%s) -> %s", l.resolver.Name, l.resolver.Source, l.keyColumn, by, strings.Join(l.fields, ", "))
}

// online: the plan serves (no __as_of__), where materialized windows merge
// the online store's tiles by default (run.servesTiles).
func (f *frameNode) explain(b *strings.Builder, indent string, tiledReads map[*frameNode]bool, online bool) {
	fmt.Fprintf(b, "%s%s\n", indent, f.title())
	in := indent + "  "
	if f.rel != nil && f.rel.Many && !tiledReads[f] {
		fmt.Fprintf(b, "%swith use_materialized_offline_query: not read (its aggregations merge tiles)\n", in)
	}
	if f.origin != nil {
		fmt.Fprintf(b, "%s%s\n", in, f.origin.describe("distinct parent keys"))
	}
	for _, l := range f.lookups {
		fmt.Fprintf(b, "%s%s\n", in, l.describe("distinct "+f.cols[l.keyCol].name))
	}
	for _, c := range f.children {
		c.explain(b, in, tiledReads, online)
	}
	for _, c := range f.cols {
		fmt.Fprintf(b, "%s%s\n", in, c.describe())
		if a := tiledAggregation(c.expr); a != nil {
			fmt.Fprintf(b, "%s  %s\n", in, a.tile.describe())
			if online && a.tile.spec != nil {
				fmt.Fprintf(b, "%s  %s\n", in, a.tile.describeServed())
			}
		}
	}
}

func (c *column) describe() string {
	var s string
	switch c.kind {
	case colInput:
		s = fmt.Sprintf("input %s", c.name)
	case colLookup, colOrigin:
		s = fmt.Sprintf("column %s <- %s.%s", c.name, c.lookup.resolver.Name, c.field)
	case colExpr:
		s = fmt.Sprintf("compute %s = %s", c.name, c.expr)
		if c.py != nil {
			raises := ""
			if c.raises != nil {
				raises = ", exceptions per row"
			}
			s = fmt.Sprintf("compute %s <- python %s as an expression [%s%s] = %s", c.name, c.py.Name, c.py.Why, raises, c.expr)
		}
		if a, ok := c.expr.(*aggregation); ok && len(a.filters) > 0 {
			// the filters as bound: the window's both bounds, in row time
			conds := make([]string, len(a.filters))
			for i, flt := range a.filters {
				conds[i] = infix(flt)
			}
			s += " over rows where " + strings.Join(conds, " and ")
		}
	case colPython:
		s = fmt.Sprintf("column %s <- %s", c.name, c.lookup.py)
	}
	if c.def != nil {
		s += " default " + c.def.String()
	}
	return s + " : " + c.typ.String()
}

// Graph renders the plan as a Mermaid flowchart: frames as subgraphs,
// resolver queries and computed columns as nodes, data flow as edges.
func (p *Plan) Graph() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	ids := map[any]string{}
	id := func(k any) string {
		if s, ok := ids[k]; ok {
			return s
		}
		s := fmt.Sprintf("n%d", len(ids))
		ids[k] = s
		return s
	}
	var walk func(f *frameNode)
	walk = func(f *frameNode) {
		fmt.Fprintf(&b, "  subgraph %s[\"%s\"]\n", id(f), f.title())
		lookups := f.lookups
		if f.origin != nil {
			lookups = append([]*lookup{f.origin}, lookups...)
		}
		for _, l := range lookups {
			fmt.Fprintf(&b, "    %s[(\"%s\")]\n", id(l), l.resolver.Name)
		}
		for _, c := range f.cols {
			if _, seen := ids[c.lookup]; c.kind == colPython && !seen {
				fmt.Fprintf(&b, "    %s[[\"python %s\"]]\n", id(c.lookup), c.lookup.name())
			}
		}
		for _, c := range f.cols {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", id(c), strings.ReplaceAll(c.name, `"`, "'"))
		}
		b.WriteString("  end\n")
		for _, c := range f.children {
			walk(c)
		}
		for _, c := range f.cols {
			if c.lookup != nil {
				fmt.Fprintf(&b, "  %s --> %s\n", id(c.lookup), id(c))
			}
			if c.expr != nil {
				for _, dep := range deps(f, c.expr) {
					fmt.Fprintf(&b, "  %s --> %s\n", id(dep), id(c))
				}
			}
		}
	}
	walk(p.root)
	return b.String()
}

// deps lists the columns (of f or of its children) that b reads.
func deps(f *frameNode, b bexpr) []*column {
	var out []*column
	var visit func(f *frameNode, b bexpr)
	visit = func(f *frameNode, b bexpr) {
		switch b := b.(type) {
		case *colRef:
			out = append(out, f.cols[b.idx])
		case *call:
			for _, a := range b.args {
				visit(f, a)
			}
		case *castTo:
			visit(f, b.x)
		case *hasOneRef:
			visit(b.child, b.inner)
		case *manyRows:
			for _, idx := range b.cols {
				out = append(out, b.child.cols[idx])
			}
		case *aggregation:
			for _, x := range b.filters {
				visit(b.child, x)
			}
			if b.value != nil {
				visit(b.child, b.value)
			}
			if b.sortBy != nil {
				visit(b.child, b.sortBy)
			}
		}
	}
	visit(f, b)
	return out
}

// comparisons print as operators in filters.
var comparisons = map[string]string{"greater": ">", "greater_equal": ">=", "less": "<", "less_equal": "<=",
	"equal": "==", "not_equal": "!=", "and": "and", "or": "or"}

// infix renders a bound condition with infix comparisons:
// `created_at > row time - 7d`.
func infix(b bexpr) string {
	c, ok := b.(*call)
	if !ok {
		return b.String()
	}
	if op, ok := comparisons[c.fn.Name]; ok && len(c.args) == 2 {
		return "(" + infix(c.args[0]) + " " + op + " " + infix(c.args[1]) + ")"
	}
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = infix(a)
	}
	return c.fn.Name + "(" + strings.Join(args, ", ") + ")"
}

// formatWindow writes a window as the seeds do: 7d, 1h, 10m, else Go's
// duration.
func formatWindow(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}
