package pyload

import (
	"errors"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// Expr reads src, one `_` expression over class c of g, into its linked
// form (ParseExpr, then LinkExpr): what the native query's front end is
// given to read the expressions among its outputs.
func Expr(g *features.Graph, c *features.Class, src string) (expr.Node, error) {
	x, err := ParseExpr(src)
	if err != nil {
		return nil, err
	}
	return LinkExpr(g, c, x)
}

// ParseExpr reads src, one Python expression over `_` such as
// `F.lower(_.first_name)` or `_.review_count["7d"]`, exactly as the loader
// reads a feature's defining expression: front ends that take expressions
// from users (the native feature query) must not grow a second dialect.
// Positions are line:col within src. The tree is syntactic; LinkExpr checks
// it against a class.
func ParseExpr(src string) (expr.Node, error) {
	p := &parser{src: []byte(src), line: 1, col: 1}
	tree := parseTree(p.src)
	defer tree.Close()
	root := tree.RootNode()
	if root.HasError() {
		p.syntaxErrors(root)
		if len(p.errs) == 0 { // tree-sitter flagged an error no node of which syntaxErrors names (`00000000000A`, found by FuzzNativeCommand)
			return nil, features.Errorf(expr.Pos{Line: 1, Col: 1}, "invalid syntax: expected one expression such as F.lower(_.first_name), found %q", firstLine(src))
		}
		return nil, errors.Join(p.errs...)
	}
	if root.NamedChildCount() != 1 || root.NamedChild(0).Kind() != "expression_statement" || root.NamedChild(0).NamedChildCount() != 1 {
		return nil, features.Errorf(expr.Pos{Line: 1, Col: 1}, "expected one expression such as F.lower(_.first_name), found %q", firstLine(src))
	}
	x := p.expr(root.NamedChild(0).NamedChild(0))
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return x, nil
}

// LinkExpr checks x, as ParseExpr returns it, against class c of g and
// returns its linked form, the form the planner binds: windows named by
// their fully-qualified names (`_.review_count["7d"]` is
// `_.review_count__604800__`), has-many paths made selections. Unknown
// names are errors suggesting the nearest valid one.
func LinkExpr(g *features.Graph, c *features.Class, x expr.Node) (expr.Node, error) {
	l := &linker{g: g, seen: map[string]bool{}}
	out := l.bind(x, c, nil)
	if err := errors.Join(l.errs...); err != nil {
		return nil, err
	}
	return out, nil
}
