package planner

import "sort"

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
