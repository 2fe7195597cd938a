package console

import (
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// What each feature is computed from, read off the definitions (not a
// plan): the catalogue's "computed by" and the lineage pages.

// node kinds of a lineage graph.
const (
	kindFeature  = "feature"
	kindSQL      = "sql resolver"
	kindPython   = "python resolver"
	kindSource   = "source"
	kindRelation = "relation"
)

// ref is one node of the dependency graph: a feature, a resolver or a
// source.
type ref struct {
	feature *features.Feature
	sql     *features.SQLResolver
	py      *features.PyResolver
	source  string
}

func (r ref) id() string {
	switch {
	case r.feature != nil:
		return "f:" + r.feature.QualifiedName()
	case r.sql != nil:
		return "sql:" + r.sql.Name
	case r.py != nil:
		return "py:" + r.py.Name
	}
	return "src:" + r.source
}

// class is the table of the class r belongs to ("" for a source).
func (r ref) class() string {
	switch {
	case r.feature != nil:
		return r.feature.Class.Table
	case r.sql != nil:
		return r.sql.Resolves.Table
	case r.py != nil && len(r.py.Outputs) > 0:
		return r.py.Outputs[0].Class.Table
	}
	return ""
}

// deps is the graph's dependency index: what each node reads, and what
// reads each feature.
type deps struct {
	g      *features.Graph
	sqlOf  map[*features.Feature]*features.SQLResolver
	pyOf   map[*features.Feature]*features.PyResolver
	memo   map[string][]ref
	byID   map[string]ref
	readBy map[string][]ref // feature id → the features and resolvers reading it
}

func newDeps(g *features.Graph) *deps {
	d := &deps{g: g, sqlOf: map[*features.Feature]*features.SQLResolver{}, pyOf: map[*features.Feature]*features.PyResolver{},
		memo: map[string][]ref{}, byID: map[string]ref{}, readBy: map[string][]ref{}}
	for _, r := range g.SQLResolvers {
		for _, cm := range r.Columns {
			if cm.Feature != nil && d.sqlOf[cm.Feature] == nil {
				d.sqlOf[cm.Feature] = r
			}
		}
	}
	for _, r := range g.PyResolvers {
		for _, f := range r.Outputs {
			d.pyOf[f] = r
		}
	}
	for _, c := range g.Classes {
		for _, f := range c.Features {
			x := ref{feature: f}
			for _, dep := range d.of(x) {
				d.readBy[dep.id()] = append(d.readBy[dep.id()], x)
			}
		}
	}
	// Every node's dependencies are read here, once: the index is shared
	// by concurrent pages, which then only read it.
	for _, r := range g.SQLResolvers {
		d.of(ref{sql: r})
		d.of(ref{source: r.Source})
	}
	for _, r := range g.PyResolvers {
		d.of(ref{py: r})
	}
	return d
}

// of lists what r is computed from, in the order the definitions read it.
// Past newDeps it only reads the index.
func (d *deps) of(r ref) []ref {
	id := r.id()
	if out, ok := d.memo[id]; ok {
		return out
	}
	d.byID[id] = r
	var out []ref
	seen := map[string]bool{}
	add := func(x ref) {
		if k := x.id(); !seen[k] && k != id {
			seen[k] = true
			d.byID[k] = x
			out = append(out, x)
		}
	}
	switch {
	case r.sql != nil:
		for _, p := range r.sql.Params {
			if p.Feature != nil {
				add(ref{feature: p.Feature})
			}
		}
		add(ref{source: r.sql.Source})
	case r.py != nil:
		for _, in := range r.py.Inputs {
			d.path(in.Root, in.Path, add)
		}
	case r.feature != nil:
		f := r.feature
		switch {
		case d.pyOf[f] != nil:
			add(ref{py: d.pyOf[f]})
		case f.Kind == features.HasOne || f.Kind == features.HasMany:
			add(ref{feature: f.Relation.FromKey})
			add(ref{feature: f.Relation.ToKey})
		case f.Kind == features.WindowedGroup:
			for _, w := range f.Windows {
				add(ref{feature: w})
			}
		case f.Expr != nil:
			d.expr(f.Class, f.Expr, add)
		case d.sqlOf[f] != nil:
			add(ref{sql: d.sqlOf[f]})
		}
	}
	d.memo[id] = out
	return out
}

// producer says how f gets its value: "sql resolver items", "python
// resolver get_normalized_rating", "expression", "relation", "windows" or
// "input" (nothing computes it: a key given by the query).
func (d *deps) producer(f *features.Feature) (kind, name string) {
	switch {
	case d.pyOf[f] != nil:
		return kindPython, d.pyOf[f].Name
	case f.Kind == features.HasOne || f.Kind == features.HasMany:
		return kindRelation, ""
	case f.Kind == features.WindowedGroup:
		return "windows", ""
	case f.Expr != nil:
		return "expression", ""
	case d.sqlOf[f] != nil:
		return kindSQL, d.sqlOf[f].Name
	}
	return "input", ""
}

// path adds the features along a path of names from class c:
// `item.most_recent_price` reads the relation `item` and the feature.
func (d *deps) path(c *features.Class, path []string, add func(ref)) *features.Class {
	for _, name := range path {
		if c == nil {
			return nil
		}
		f := c.Feature(name)
		if f == nil {
			return nil
		}
		add(ref{feature: f})
		if f.Relation == nil {
			return nil
		}
		c = f.Relation.To
	}
	return c
}

// expr adds the features n reads, evaluated on a row of c.
func (d *deps) expr(c *features.Class, n expr.Node, add func(ref)) {
	expr.Walk(n, func(x expr.Node) bool {
		switch x := x.(type) {
		case *expr.Ref:
			d.path(c, x.Path, add)
			return false
		case *expr.Select:
			d.sel(c, x, add)
			return false
		case *expr.Agg:
			if rel := d.sel(c, x.Source, add); rel != nil && x.SortBy != nil {
				d.expr(rel, x.SortBy, add)
			}
			return false
		}
		return true
	})
}

// sel adds what a has-many selection reads and returns its rows' class.
func (d *deps) sel(c *features.Class, s *expr.Select, add func(ref)) *features.Class {
	if s == nil {
		return nil
	}
	var rel *features.Class
	if r, ok := s.Rel.(*expr.Ref); ok {
		rel = d.path(c, r.Path, add)
	} else {
		d.expr(c, s.Rel, add)
	}
	if rel == nil {
		return nil
	}
	for _, f := range s.Filters {
		d.expr(rel, f, add)
	}
	if s.Project != nil {
		d.expr(rel, s.Project, add)
	}
	return rel
}
