package planner

import (
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// Classes lists the table names of every feature class the plan reads: the
// root class and each class reached through has-one and has-many relations
// (however deep, and whether the query names them or a feature's expression
// does). Access control checks all of them before anything runs.
func (p *Plan) Classes() []string {
	seen := map[string]bool{}
	var walk func(f *frameNode)
	walk = func(f *frameNode) {
		seen[f.class.Table] = true
		for _, c := range f.children {
			walk(c)
		}
	}
	walk(p.root)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Reads lists the table names of every feature class the value of f reads
// (its own class included), as Classes does for a plan of f alone by its
// class's key; nil when f cannot be planned so. Remembered per feature:
// access control asks it of every column a `*` may read.
func (e *Engine) Reads(f *features.Feature) []string {
	if r, ok := e.reads.Load(f); ok {
		return r.([]string)
	}
	var classes []string
	if c := f.Class; c != nil && c.Primary != nil {
		in := []arrow.Field{{Name: c.Primary.Name, Type: c.Primary.Type.Arrow()}}
		st, err := statement.New(c, in, []statement.Output{{Expr: &expr.Ref{Path: []string{f.Name}}, Name: f.Name}})
		if err == nil {
			if p, err := e.Prepare(st); err == nil {
				classes = p.Classes()
			}
		}
	}
	e.reads.Store(f, classes)
	return classes
}
