package console

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/internal/suggest"
)

// Lineage is one feature's neighbourhood: everything it is computed from,
// back to the resolvers and sources (layers < 0), and everything computed
// from it (layers > 0). Edges point the way data flows.
type Lineage struct {
	Feature string        `json:"feature"`
	Nodes   []LineageNode `json:"nodes"`
	Edges   []LineageEdge `json:"edges"`
	// Hidden counts the dependencies and dependents in classes the viewer
	// may not read: they are left out, unnamed.
	Hidden int `json:"hidden,omitempty"`
}

// LineageNode is a feature, a resolver or a source.
type LineageNode struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Label string `json:"label"`
	Class string `json:"class,omitempty"`
	// Detail is how a feature is computed (its expression, its resolver),
	// a resolver's source, a source's name.
	Detail string `json:"detail,omitempty"`
	// Layer is the node's distance from the feature: negative upstream
	// (the longest path), positive downstream, 0 the feature itself.
	Layer int `json:"layer"`
}

// LineageEdge says From is read by To.
type LineageEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// lineage is the lineage of fqn (table.feature) as v may see it. A
// feature of a class v may not read is unknown, like one that does not
// exist.
func lineage(g *features.Graph, d *deps, v viewer, fqn string) (*Lineage, error) {
	f, err := findFeature(g, v, fqn)
	if err != nil {
		return nil, err
	}
	root := ref{feature: f}
	l := &Lineage{Feature: f.QualifiedName(), Nodes: []LineageNode{}, Edges: []LineageEdge{}}
	layer := map[string]int{root.id(): 0}
	hidden := map[string]bool{}
	edges := map[LineageEdge]bool{}
	// Upstream: the longest path from the feature, so that a node is left
	// of everything it feeds.
	var up func(r ref, depth int)
	up = func(r ref, depth int) {
		for _, x := range d.of(r) {
			if !v.canSee(x) {
				hidden[x.id()] = true
				continue
			}
			edges[LineageEdge{From: x.id(), To: r.id()}] = true
			if cur, ok := layer[x.id()]; ok && cur <= -(depth+1) {
				continue
			}
			if depth > 64 { // a cycle would have failed loading; this bounds a bug
				continue
			}
			layer[x.id()] = -(depth + 1)
			up(x, depth+1)
		}
	}
	up(root, 0)
	var down func(r ref, depth int)
	down = func(r ref, depth int) {
		readers := d.readBy[r.id()]
		if f := r.feature; f != nil && f.Kind == features.WindowedGroup {
			// A windowed feature is read window by window: what reads its
			// windows (other than itself) depends on it.
			for _, w := range f.Windows {
				for _, x := range d.readBy[ref{feature: w}.id()] {
					if x.feature != f {
						readers = append(readers, x)
					}
				}
			}
		}
		for _, x := range readers {
			if !v.canSee(x) {
				hidden[x.id()] = true
				continue
			}
			edges[LineageEdge{From: r.id(), To: x.id()}] = true
			if cur, ok := layer[x.id()]; ok && (cur >= depth+1 || cur < 0) {
				continue
			}
			if depth > 64 {
				continue
			}
			layer[x.id()] = depth + 1
			down(x, depth+1)
		}
	}
	down(root, 0)
	for id, n := range layer {
		node := nodeView(d, d.byID[id], n)
		if r := d.byID[id]; r.feature != nil && !v.canReadAll(classesOf(d, r)) {
			node.Detail = "hidden" // as the catalogue shows it
		}
		l.Nodes = append(l.Nodes, node)
	}
	sort.Slice(l.Nodes, func(i, j int) bool {
		a, b := l.Nodes[i], l.Nodes[j]
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		return a.ID < b.ID
	})
	for e := range edges {
		if _, ok := layer[e.From]; ok {
			if _, ok := layer[e.To]; ok {
				l.Edges = append(l.Edges, e)
			}
		}
	}
	sort.Slice(l.Edges, func(i, j int) bool {
		if l.Edges[i].From != l.Edges[j].From {
			return l.Edges[i].From < l.Edges[j].From
		}
		return l.Edges[i].To < l.Edges[j].To
	})
	l.Hidden = len(hidden)
	return l, nil
}

func nodeView(d *deps, r ref, layer int) LineageNode {
	n := LineageNode{ID: r.id(), Layer: layer, Class: r.class()}
	switch {
	case r.feature != nil:
		f := r.feature
		n.Kind, n.Label = kindFeature, f.QualifiedName()
		kind, name := d.producer(f)
		switch {
		case kind == "expression":
			n.Detail = "= " + f.Expr.String()
		case f.Relation != nil:
			n.Kind, n.Detail = kindRelation, f.Relation.FromKey.QualifiedName()+" = "+f.Relation.ToKey.QualifiedName()
		case name != "":
			n.Detail = "<- " + kind + " " + name
		default:
			n.Detail = kind
		}
	case r.sql != nil:
		n.Kind, n.Label, n.Detail = kindSQL, r.sql.Name, "source "+r.sql.Source
	case r.py != nil:
		n.Kind, n.Label, n.Detail = kindPython, r.py.Name+"()", "runs as "+r.py.Mode.String()
	default:
		n.Kind, n.Label = kindSource, r.source
	}
	return n
}

// findFeature finds table.feature among what v may read, with the nearest
// visible name when there is none.
func findFeature(g *features.Graph, v viewer, fqn string) (*features.Feature, error) {
	table, name, _ := strings.Cut(fqn, ".")
	var names []string
	for _, c := range g.Classes {
		if !v.canRead(c.Table) {
			continue
		}
		if c.Table == table {
			if f := c.Feature(name); f != nil && v.canSee(ref{feature: f}) {
				return f, nil
			}
		}
		for _, f := range c.Features {
			if v.canSee(ref{feature: f}) {
				names = append(names, f.QualifiedName())
			}
		}
	}
	return nil, fmt.Errorf("no feature %q%s", fqn, suggest.DidYouMean(fqn, names))
}
