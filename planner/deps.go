package planner

import "time"

// What each column needs, worked out once per plan so that every run can
// compute only what its outputs still need: a column served from the online
// store needs nothing below it, and a failing resolver taints exactly the
// columns that read from it.

// colID names a column of one frame of the plan.
type colID struct {
	frame *frameNode
	idx   int
}

// index numbers the plan's frames and records each column's direct
// dependencies, transitive resolver lookups and staleness. Called once, at
// the end of planning.
func (p *Plan) index() {
	var walk func(f *frameNode)
	walk = func(f *frameNode) {
		f.id = len(p.frames)
		p.frames = append(p.frames, f)
		for _, c := range f.children {
			walk(c)
		}
	}
	walk(p.root)
	for _, f := range p.frames {
		for i := len(p.frames) - 1; i >= 0; i-- {
			if p.frames[i].within(f) {
				f.subtree = append(f.subtree, p.frames[i])
			}
		}
		for _, c := range f.cols {
			c.deps = directDeps(f, c, false)
			c.tiledDeps = directDeps(f, c, true)
			if c.feature != nil {
				c.fqn = c.feature.Class.Table + "." + c.feature.Name
				c.staleness = stalenessOf(c)
			}
		}
	}
	memo := map[colID][]*lookup{}
	for _, f := range p.frames {
		for i, c := range f.cols {
			c.srcs = sourcesOf(colID{f, i}, memo)
		}
	}
}

// within reports whether f is g or below it.
func (f *frameNode) within(g *frameNode) bool {
	for ; f != nil; f = f.parent {
		if f == g {
			return true
		}
	}
	return false
}

// directDeps are what c reads; tiled: in a materialized run, where the
// aggregations with tiles read only their parent key (the related rows are
// not fetched).
func directDeps(f *frameNode, c *column, tiled bool) []colID {
	var deps []colID
	switch c.kind {
	case colLookup:
		deps = append(deps, colID{f, c.lookup.keyCol})
		deps = appendParamDeps(deps, f, c.lookup)
	case colExpr:
		exprDeps(f, c.expr, tiled, &deps)
		if c.raises != nil {
			exprDeps(f, c.raises, tiled, &deps)
		}
	case colPython:
		for _, b := range c.lookup.py.inputs {
			exprDeps(f, b, tiled, &deps)
		}
	}
	return deps
}

// exprDeps appends the columns b reads when evaluated in frame f: its own
// frame's, and those of the child frames it reaches (with the parent column
// that keys each child).
func exprDeps(f *frameNode, b bexpr, tiled bool, deps *[]colID) {
	switch b := b.(type) {
	case *colRef:
		*deps = append(*deps, colID{f, b.idx})
	case *call:
		for _, a := range b.args {
			exprDeps(f, a, tiled, deps)
		}
	case *castTo:
		exprDeps(f, b.x, tiled, deps)
	case *hasOneRef:
		*deps = append(*deps, colID{f, b.child.parentKey})
		exprDeps(b.child, b.inner, tiled, deps)
	case *aggregation:
		*deps = append(*deps, colID{f, b.child.parentKey})
		if tiled && b.tile != nil && b.tile.spec != nil {
			return
		}
		*deps = appendParamDeps(*deps, f, b.child.origin)
		for _, x := range append(append([]bexpr{}, b.filters...), b.value, b.sortBy) {
			if x != nil {
				exprDeps(b.child, x, tiled, deps)
			}
		}
	case *manyRows:
		*deps = append(*deps, colID{f, b.child.parentKey})
		*deps = appendParamDeps(*deps, f, b.child.origin)
		for _, idx := range b.cols {
			*deps = append(*deps, colID{b.child, idx})
		}
	}
}

// appendParamDeps appends the columns of f that bind l's parameters (l
// may be nil: a has-one frame has no origin).
func appendParamDeps(deps []colID, f *frameNode, l *lookup) []colID {
	if l == nil {
		return deps
	}
	for _, idx := range l.params {
		if idx >= 0 {
			deps = append(deps, colID{f, idx})
		}
	}
	return deps
}

// sourcesOf returns every resolver lookup column id's value comes from:
// its own, its dependencies', and the origins that make the rows of its
// frame and of the has-many frames it reads.
func sourcesOf(id colID, memo map[colID][]*lookup) []*lookup {
	if s, ok := memo[id]; ok {
		return s
	}
	memo[id] = nil // a cycle cannot happen (the planner rejects them); this only stops recursion
	seen := map[*lookup]bool{}
	var out []*lookup
	add := func(l *lookup) {
		if l != nil && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	for g := id.frame; g != nil; g = g.parent {
		add(g.origin)
	}
	c := id.frame.cols[id.idx]
	if c.kind == colLookup || c.kind == colPython {
		add(c.lookup)
	}
	for _, d := range c.deps {
		for _, l := range sourcesOf(d, memo) {
			add(l)
		}
	}
	memo[id] = out
	return out
}

// stalenessOf is how long a value of c may be served from the online store
// by default: the feature's max_staleness, else its class's; 0 is never.
// Only features a frame computes for its own key can be cached.
func stalenessOf(c *column) time.Duration {
	if c.kind != colLookup && c.kind != colExpr && c.kind != colPython {
		return 0
	}
	st := c.feature.MaxStaleness
	if !st.Set {
		st = c.feature.Class.MaxStaleness
	}
	switch {
	case !st.Set:
		return 0
	case st.Infinite:
		return infinite
	}
	return st.Duration
}

// infinite is max_staleness="infinity".
const infinite = time.Duration(1<<63 - 1)
