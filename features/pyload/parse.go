// Package pyload reads the Python files of a feature repository — `@features`
// classes, their `_` expressions, `windowed(...)` and `feature(...)` calls,
// and the signatures of `@online` / `@offline` resolvers — into the feature
// graph. The files are parsed with tree-sitter's Python grammar and never
// executed: no Python interpreter is involved.
//
// ParseFile reads one file into declarations (syntax only); Link turns the
// declarations of all files into classes of a features.Graph, which is when
// names, types and relations are checked. The package knows nothing about
// SQL, sources, stores or queries.
package pyload

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	sitter "github.com/tree-sitter/go-tree-sitter"
	python "github.com/tree-sitter/tree-sitter-python/bindings/go"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/features/pysym"
)

// File is the declarations of one Python file.
type File struct {
	Path      string
	Classes   []*ClassDecl
	Resolvers []*ResolverDecl
	// Module holds the file's top-level functions and constants, which
	// resolver bodies may use.
	Module *pysym.Module
	// Skipped are the decorated classes and functions that are neither
	// @features classes nor @online/@offline resolvers: Link says which
	// of them a user meant as definitions fletch does not take.
	Skipped []SkippedDecl
}

// SkippedDecl is one decorator of a class or function pyload does not
// read as a definition: `@stream(...)` over `def user_stream`.
type SkippedDecl struct {
	Decorator string
	// Name is the function's name, or "class Name".
	Name  string
	Class bool
	Pos   expr.Pos
}

// ClassDecl is a `@features` class as written.
type ClassDecl struct {
	Name string
	// Options are the decorator's keyword arguments.
	Options  map[string]expr.Node
	Features []*FeatureDecl
	Pos      expr.Pos
}

// FeatureDecl is one annotated attribute of a `@features` class.
type FeatureDecl struct {
	Name string
	Type *TypeExpr
	// Expr is the defining expression: the right-hand side, or the
	// expression= argument of feature(...) / windowed(...).
	Expr expr.Node
	// Default is a bare literal right-hand side (`x: int = 0`) or the
	// default= argument.
	Default *expr.Literal
	// Func is "feature" or "windowed" when the right-hand side is that call.
	Func string
	// Options are the keyword arguments of feature(...) / windowed(...).
	Options map[string]expr.Node
	// Windows are the positional arguments of windowed(...).
	Windows []WindowDecl
	Pos     expr.Pos
	// Doc is the feature's description as Chalk reads it from the code:
	// the comment lines directly above it, else the string statement
	// right after it (an attribute docstring). description= wins over it.
	Doc string
}

// WindowDecl is one window of windowed(...): "7d".
type WindowDecl struct {
	Label string
	Pos   expr.Pos
}

// TypeExpr is an annotation: `int`, `str | None`, `DataFrame[Review]`,
// `User.id`. String annotations are parsed into the same form.
type TypeExpr struct {
	// Name is the dotted name (`User.id`), or "|" for a union, or "None".
	Name string
	// Args are the subscript arguments (`list[int]` → [int]), or the
	// alternatives of a union.
	Args []*TypeExpr
	Pos  expr.Pos
}

func (t *TypeExpr) String() string {
	if t.Name == "|" {
		parts := make([]string, len(t.Args))
		for i, a := range t.Args {
			parts[i] = a.String()
		}
		return strings.Join(parts, " | ")
	}
	if len(t.Args) == 0 {
		return t.Name
	}
	parts := make([]string, len(t.Args))
	for i, a := range t.Args {
		parts[i] = a.String()
	}
	return t.Name + "[" + strings.Join(parts, ", ") + "]"
}

// ResolverDecl is the signature of an `@online` / `@offline` function.
type ResolverDecl struct {
	Name   string
	Online bool
	// Options are the decorator's keyword arguments: @online(owner=...).
	Options map[string]expr.Node
	Params  []ParamDecl
	Outputs []FeaturePath
	// Fn is the function itself, body included.
	Fn  *pysym.Func
	Pos expr.Pos
}

// ParamDecl is one parameter of a resolver.
type ParamDecl struct {
	Name string
	Path FeaturePath
}

// FeaturePath is a feature reference in a resolver signature:
// `Review.item.review_count["30d"]` is Root "Review", Path ["item",
// "review_count__2592000__"].
type FeaturePath struct {
	Root string
	Path []string
	Pos  expr.Pos
}

func (p FeaturePath) String() string { return p.Root + "." + strings.Join(p.Path, ".") }

// parser is the state of reading one source text. A string annotation is
// read by a parser of its own whose positions are shifted to the string's
// place in the file.
type parser struct {
	file string
	src  []byte
	// line and col are where src starts in the file (1-based).
	line, col int
	errs      []error
}

var language = sitter.NewLanguage(python.Language())

func parseTree(src []byte) *sitter.Tree {
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(language); err != nil {
		panic(err) // the grammar is compiled in: a mismatch is a build problem
	}
	return p.Parse(src, nil)
}

// ParseFile reads the declarations of one Python file. path is used in
// positions. It returns what it could read along with every error, joined.
func ParseFile(path string, src []byte) (*File, error) {
	p := &parser{file: path, src: src, line: 1, col: 1}
	tree := parseTree(src)
	defer tree.Close()
	root := tree.RootNode()
	f := &File{Path: path, Module: &pysym.Module{Funcs: map[string]*pysym.Func{}, Consts: map[string]pysym.Node{}}}
	if root.HasError() {
		p.syntaxErrors(root)
		return f, errors.Join(p.errs...)
	}
	for i := uint(0); i < root.NamedChildCount(); i++ {
		n := root.NamedChild(i)
		switch n.Kind() {
		case "function_definition":
			fn := p.function(n)
			f.Module.Funcs[fn.Name] = fn
			continue
		case "expression_statement":
			p.moduleConst(f.Module, n)
			continue
		case "decorated_definition":
		default:
			continue // imports and the like
		}
		def := n.ChildByFieldName("definition")
		switch def.Kind() {
		case "class_definition":
			if c := p.class(n, def); c != nil {
				f.Classes = append(f.Classes, c)
			} else {
				f.Skipped = append(f.Skipped, p.skipped(n, "class "+p.text(def.ChildByFieldName("name")), true)...)
			}
		case "function_definition":
			if r := p.resolver(n, def); r != nil {
				f.Resolvers = append(f.Resolvers, r)
			} else {
				fn := p.function(def)
				f.Module.Funcs[fn.Name] = fn
				f.Skipped = append(f.Skipped, p.skipped(n, fn.Name, false)...)
			}
		}
	}
	return f, errors.Join(p.errs...)
}

// pos is the 1-based position of n's start; the column counts characters.
func (p *parser) pos(n *sitter.Node) expr.Pos {
	pt := n.StartPosition()
	lineStart := int(n.StartByte()) - int(pt.Column)
	col := utf8.RuneCount(p.src[lineStart:n.StartByte()]) + 1
	if pt.Row == 0 {
		return expr.Pos{File: p.file, Line: p.line, Col: p.col + col - 1}
	}
	return expr.Pos{File: p.file, Line: p.line + int(pt.Row), Col: col}
}

func (p *parser) text(n *sitter.Node) string { return n.Utf8Text(p.src) }

func (p *parser) errorf(n *sitter.Node, format string, args ...any) {
	p.errs = append(p.errs, features.Errorf(p.pos(n), format, args...))
}

// syntaxErrors reports the innermost ERROR and MISSING nodes under n.
func (p *parser) syntaxErrors(n *sitter.Node) {
	if len(p.errs) >= 10 {
		return
	}
	if n.IsMissing() {
		p.errorf(n, "syntax error: expected %q", n.Kind())
		return
	}
	if !n.HasError() {
		return
	}
	before := len(p.errs)
	for i := uint(0); i < n.ChildCount(); i++ {
		p.syntaxErrors(n.Child(i))
	}
	if n.IsError() && len(p.errs) == before {
		text := p.text(n)
		p.errorf(n, "syntax error: unexpected %q%s", firstLine(text), lookalikeHint(text))
	}
}

// lookalikes are characters that typesetting puts in copied code (slides,
// documents) in place of the Python tokens they look like.
var lookalikes = []struct{ char, python string }{
	{"→", "->"}, {"“", `"`}, {"”", `"`}, {"‘", "'"}, {"’", "'"},
	{"–", "-"}, {"—", "-"}, {"−", "-"}, {"×", "*"}, {"≤", "<="}, {"≥", ">="}, {"≠", "!="},
}

// lookalikeHint names the first lookalike character in text and the
// token to write instead, or returns "".
func lookalikeHint(text string) string {
	first, hint := len(text), ""
	for _, l := range lookalikes {
		if i := strings.Index(text, l.char); i >= 0 && i < first {
			first, hint = i, fmt.Sprintf(" (%s is not Python: write %s)", l.char, l.python)
		}
	}
	return hint
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

// decoratorName returns the name of a decorator (`features` for
// `@features(...)` and `@chalk.features`) and its call arguments, if any.
func (p *parser) decoratorName(d *sitter.Node) (string, *sitter.Node) {
	e := d.NamedChild(0)
	var args *sitter.Node
	if e.Kind() == "call" {
		args = e.ChildByFieldName("arguments")
		e = e.ChildByFieldName("function")
	}
	name := p.text(e)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name, args
}

// skipped lists the decorators of a definition read as neither a class
// nor a resolver.
func (p *parser) skipped(decorated *sitter.Node, name string, class bool) []SkippedDecl {
	var out []SkippedDecl
	for i := uint(0); i < decorated.NamedChildCount(); i++ {
		if d := decorated.NamedChild(i); d.Kind() == "decorator" {
			dec, _ := p.decoratorName(d)
			out = append(out, SkippedDecl{Decorator: dec, Name: name, Class: class, Pos: p.pos(d.NamedChild(0))})
		}
	}
	return out
}

func (p *parser) class(decorated, def *sitter.Node) *ClassDecl {
	var c *ClassDecl
	for i := uint(0); i < decorated.NamedChildCount(); i++ {
		d := decorated.NamedChild(i)
		if d.Kind() != "decorator" {
			continue
		}
		if name, args := p.decoratorName(d); name == "features" {
			c = &ClassDecl{Options: map[string]expr.Node{}}
			if args != nil {
				p.kwargsOnly(args, "@features", c.Options)
			}
		}
	}
	if c == nil {
		return nil
	}
	name := def.ChildByFieldName("name")
	c.Name = p.text(name)
	c.Pos = p.pos(name)
	body := def.ChildByFieldName("body")
	// comments: the block of comment lines just read, ending on row
	// commentEnd; last: the feature just declared and the row it ends on
	// (a comment on that row trails it and describes nothing).
	var comments []string
	commentEnd, lastEnd := -1, -1
	var last *FeatureDecl
	for i := uint(0); i < body.NamedChildCount(); i++ {
		st := body.NamedChild(i)
		row := int(st.StartPosition().Row)
		switch st.Kind() {
		case "comment":
			if row == lastEnd {
				continue
			}
			if row != commentEnd+1 {
				comments = comments[:0]
			}
			comments = append(comments, strings.TrimSpace(strings.TrimPrefix(p.text(st), "#")))
			commentEnd = row
			continue
		case "pass_statement":
			continue
		case "expression_statement":
			e := st.NamedChild(0)
			switch e.Kind() {
			case "assignment":
				last = p.feature(e)
				if last != nil {
					if len(comments) > 0 && commentEnd == row-1 {
						last.Doc = docText(strings.Join(comments, " "))
					}
					c.Features = append(c.Features, last)
				}
				comments, lastEnd = comments[:0], int(st.EndPosition().Row)
				continue
			case "string":
				if last != nil && last.Doc == "" {
					last.Doc = p.docString(e)
				}
				last = nil
				continue
			case "ellipsis":
				continue // `...`
			}
		}
		p.errorf(st, "class %s: expected a feature (`name: type` or `name: type = ...`), found %q", c.Name, firstLine(p.text(st)))
	}
	return c
}

// docString is the text of a string statement read as a docstring, ""
// for an f-string or bytes (Python takes neither as one). Escapes are kept
// as written: a description is shown, never computed with.
func (p *parser) docString(n *sitter.Node) string {
	if strings.ContainsAny(strings.ToLower(strings.TrimRight(p.text(n.NamedChild(0)), `"'`)), "fb") {
		return ""
	}
	var b strings.Builder
	for i := uint(0); i < n.NamedChildCount(); i++ {
		if c := n.NamedChild(i); c.Kind() == "string_content" {
			b.WriteString(p.text(c))
		}
	}
	return docText(b.String())
}

// docText is a description from comments or a docstring on one line, as
// catalogue remarks show it: its words separated by single spaces.
func docText(s string) string { return strings.Join(strings.Fields(s), " ") }

// kwargsOnly reads keyword arguments into opts; positional ones are errors.
func (p *parser) kwargsOnly(args *sitter.Node, what string, opts map[string]expr.Node) {
	for i := uint(0); i < args.NamedChildCount(); i++ {
		a := args.NamedChild(i)
		switch a.Kind() {
		case "comment":
		case "keyword_argument":
			if v := p.expr(a.ChildByFieldName("value")); v != nil {
				opts[p.text(a.ChildByFieldName("name"))] = v
			}
		default:
			p.errorf(a, "%s takes keyword arguments only, found %q", what, firstLine(p.text(a)))
		}
	}
}

func (p *parser) feature(a *sitter.Node) *FeatureDecl {
	left := a.ChildByFieldName("left")
	if left.Kind() != "identifier" {
		p.errorf(left, "expected a feature name, found %q", firstLine(p.text(left)))
		return nil
	}
	fd := &FeatureDecl{Name: p.text(left), Pos: p.pos(left)}
	typ := a.ChildByFieldName("type")
	if typ == nil {
		p.errorf(left, "feature %s needs a type annotation: `%s: float = ...`", fd.Name, fd.Name)
		return nil
	}
	if fd.Type = p.typeExpr(typ); fd.Type == nil {
		return nil
	}
	right := a.ChildByFieldName("right")
	if right == nil {
		return fd
	}
	if right.Kind() == "call" {
		fn := p.text(right.ChildByFieldName("function"))
		if fn == "feature" || fn == "windowed" {
			p.featureCall(fd, fn, right.ChildByFieldName("arguments"))
			return fd
		}
	}
	v := p.expr(right)
	if lit, ok := v.(*expr.Literal); ok {
		fd.Default = lit
	} else {
		fd.Expr = v
	}
	return fd
}

// featureCall reads `feature(...)` or `windowed(...)`.
func (p *parser) featureCall(fd *FeatureDecl, fn string, args *sitter.Node) {
	fd.Func = fn
	fd.Options = map[string]expr.Node{}
	for i := uint(0); i < args.NamedChildCount(); i++ {
		a := args.NamedChild(i)
		switch {
		case a.Kind() == "comment":
		case a.Kind() == "keyword_argument":
			name := p.text(a.ChildByFieldName("name"))
			v := p.expr(a.ChildByFieldName("value"))
			if v == nil {
				continue
			}
			fd.Options[name] = v
			switch name {
			case "expression":
				fd.Expr = v
			case "default":
				lit, ok := v.(*expr.Literal)
				if !ok {
					p.errorf(a.ChildByFieldName("value"), "%s(default=...) must be a literal (a number, string, True, False or None), found %s", fn, v)
					continue
				}
				fd.Default = lit
			}
		case fn == "windowed":
			v := p.expr(a)
			lit, ok := v.(*expr.Literal)
			if s, isStr := literalString(lit); ok && isStr {
				fd.Windows = append(fd.Windows, WindowDecl{Label: s, Pos: lit.At})
			} else if v != nil {
				p.errorf(a, `windowed(...) windows are duration strings like "7d", found %s`, v)
			}
		default:
			p.errorf(a, "feature(...) takes keyword arguments only (min=, max=, default=, max_staleness=, description=, primary=, expression=, ...), found %q", firstLine(p.text(a)))
		}
	}
	if fn == "windowed" && len(fd.Windows) == 0 {
		p.errorf(args, `windowed(...) needs at least one window, e.g. windowed("7d", "30d", expression=...)`)
	}
}

func literalString(l *expr.Literal) (string, bool) {
	if l == nil {
		return "", false
	}
	s, ok := l.Value.(string)
	return s, ok
}

// typeExpr reads an annotation.
func (p *parser) typeExpr(n *sitter.Node) *TypeExpr {
	switch n.Kind() {
	case "type", "parenthesized_expression":
		return p.typeExpr(n.NamedChild(0))
	case "identifier", "attribute":
		return &TypeExpr{Name: p.text(n), Pos: p.pos(n)}
	case "none":
		return &TypeExpr{Name: "None", Pos: p.pos(n)}
	case "generic_type":
		t := &TypeExpr{Name: p.text(n.NamedChild(0)), Pos: p.pos(n)}
		params := n.NamedChild(1)
		for i := uint(0); i < params.NamedChildCount(); i++ {
			a := p.typeExpr(params.NamedChild(i))
			if a == nil {
				return nil
			}
			t.Args = append(t.Args, a)
		}
		return t
	case "subscript":
		base := p.typeExpr(n.ChildByFieldName("value"))
		if base == nil {
			return nil
		}
		t := &TypeExpr{Name: base.Name, Pos: base.Pos}
		for _, s := range subscripts(n) {
			a := p.typeExpr(s)
			if a == nil {
				return nil
			}
			t.Args = append(t.Args, a)
		}
		return t
	case "binary_operator", "union_type":
		// `A | B` is a union_type where the grammar expects a type and a
		// binary_operator elsewhere (inside a subscript).
		var sides []*sitter.Node
		if n.Kind() == "union_type" {
			sides = []*sitter.Node{n.NamedChild(0), n.NamedChild(1)}
		} else if p.text(n.ChildByFieldName("operator")) == "|" {
			sides = []*sitter.Node{n.ChildByFieldName("left"), n.ChildByFieldName("right")}
		} else {
			break
		}
		t := &TypeExpr{Name: "|", Pos: p.pos(n)}
		for _, sn := range sides {
			side := p.typeExpr(sn)
			if side == nil {
				return nil
			}
			if side.Name == "|" {
				t.Args = append(t.Args, side.Args...)
			} else {
				t.Args = append(t.Args, side)
			}
		}
		return t
	case "string":
		sub, node, done := p.subParse(n)
		if sub == nil {
			return nil
		}
		defer done()
		t := sub.typeExpr(node)
		p.errs = append(p.errs, sub.errs...)
		return t
	}
	p.errorf(n, "expected a type (int, float, str, bool, datetime, date, list[T], T | None, DataFrame[Class], Class or Class.id), found %q", firstLine(p.text(n)))
	return nil
}

// subParse parses the content of a string annotation (`"DataFrame[Item]"`)
// as an expression, with positions in the enclosing file. done releases the
// tree.
func (p *parser) subParse(n *sitter.Node) (*parser, *sitter.Node, func()) {
	var content *sitter.Node
	for i := uint(0); i < n.NamedChildCount(); i++ {
		if c := n.NamedChild(i); c.Kind() == "string_content" {
			content = c
		}
	}
	if content == nil || n.NamedChildCount() != 3 {
		p.errorf(n, "expected a type inside the string annotation, found %s", p.text(n))
		return nil, nil, nil
	}
	at := p.pos(content)
	sub := &parser{file: p.file, src: []byte(p.text(content)), line: at.Line, col: at.Col}
	tree := parseTree(sub.src)
	root := tree.RootNode()
	if root.HasError() || root.NamedChildCount() != 1 || root.NamedChild(0).Kind() != "expression_statement" {
		tree.Close()
		p.errorf(content, "expected a type inside the string annotation, found %q", sub.src)
		return nil, nil, nil
	}
	return sub, root.NamedChild(0).NamedChild(0), tree.Close
}

func (p *parser) resolver(decorated, def *sitter.Node) *ResolverDecl {
	var r *ResolverDecl
	for i := uint(0); i < decorated.NamedChildCount(); i++ {
		d := decorated.NamedChild(i)
		if d.Kind() != "decorator" {
			continue
		}
		if name, args := p.decoratorName(d); name == "online" || name == "offline" {
			r = &ResolverDecl{Online: name == "online", Options: map[string]expr.Node{}}
			if args != nil {
				p.kwargsOnly(args, "@"+name, r.Options)
			}
		}
	}
	if r == nil {
		return nil
	}
	name := def.ChildByFieldName("name")
	r.Name = p.text(name)
	r.Pos = p.pos(def)
	r.Fn = p.function(def)
	params := def.ChildByFieldName("parameters")
	for i := uint(0); i < params.NamedChildCount(); i++ {
		prm := params.NamedChild(i)
		if prm.Kind() == "comment" {
			continue
		}
		if prm.Kind() != "typed_parameter" {
			p.errorf(prm, "resolver %s: parameter %s needs a feature annotation, e.g. `%s: User.id`", r.Name, p.text(prm), p.text(prm))
			continue
		}
		pname := p.text(prm.NamedChild(0))
		if path, ok := p.featurePath(prm.ChildByFieldName("type")); ok {
			r.Params = append(r.Params, ParamDecl{Name: pname, Path: path})
		}
	}
	ret := def.ChildByFieldName("return_type")
	if ret == nil {
		p.errorf(name, "resolver %s needs a return annotation naming the features it computes: `-> User.score`", r.Name)
		return r
	}
	if ret.NamedChild(0).Kind() == "ellipsis" {
		p.errorf(ret, "resolver %s: `-> ...` names no feature: annotate the output, e.g. `-> User.score`, or `-> Features[User.a, User.b]`", r.Name)
		return r
	}
	if ret.NamedChild(0).Kind() == "generic_type" && p.text(ret.NamedChild(0).NamedChild(0)) == "Features" {
		args := ret.NamedChild(0).NamedChild(1)
		for i := uint(0); i < args.NamedChildCount(); i++ {
			if path, ok := p.featurePath(args.NamedChild(i)); ok {
				r.Outputs = append(r.Outputs, path)
			}
		}
	} else if path, ok := p.featurePath(ret); ok {
		r.Outputs = append(r.Outputs, path)
	}
	return r
}

// featurePath reads `Class.a.b["30d"]`.
func (p *parser) featurePath(n *sitter.Node) (FeaturePath, bool) {
	switch n.Kind() {
	case "type":
		return p.featurePath(n.NamedChild(0))
	case "string":
		sub, node, done := p.subParse(n)
		if sub == nil {
			return FeaturePath{}, false
		}
		defer done()
		fp, ok := sub.featurePath(node)
		p.errs = append(p.errs, sub.errs...)
		return fp, ok
	case "attribute":
		base, ok := p.featurePath(n.ChildByFieldName("object"))
		if ok {
			base.Path = append(base.Path, p.text(n.ChildByFieldName("attribute")))
		}
		return base, ok
	case "identifier":
		return FeaturePath{Root: p.text(n), Pos: p.pos(n)}, true
	case "subscript":
		base, ok := p.featurePath(n.ChildByFieldName("value"))
		key := n.ChildByFieldName("subscript")
		if !ok || len(base.Path) == 0 {
			break
		}
		label, isStr := literalString(p.literal(key))
		if !isStr {
			p.errorf(key, `expected a window like "30d" in %s`, p.text(n))
			return FeaturePath{}, false
		}
		d, err := features.ParseDuration(label)
		if err != nil {
			p.errorf(key, "%v", err)
			return FeaturePath{}, false
		}
		last := len(base.Path) - 1
		base.Path[last] = features.WindowFQN(base.Path[last], d)
		return base, true
	}
	p.errorf(n, "expected a feature like User.id or Review.item.review_count[\"30d\"], found %q", firstLine(p.text(n)))
	return FeaturePath{}, false
}

// literal reads n when it is a literal, else nil (no error).
func (p *parser) literal(n *sitter.Node) *expr.Literal {
	switch n.Kind() {
	case "string", "concatenated_string", "integer", "float", "true", "false", "none":
		if l, ok := p.expr(n).(*expr.Literal); ok {
			return l
		}
	}
	return nil
}

// pyString decodes a Python string literal (prefixes, quotes, escapes).
func (p *parser) pyString(n *sitter.Node) (string, bool) {
	start := p.text(n.NamedChild(0))
	prefix := strings.ToLower(strings.TrimRight(start, `"'`))
	if strings.ContainsAny(prefix, "fb") {
		p.errorf(n, "f-strings and bytes literals are not supported, found %s", firstLine(p.text(n)))
		return "", false
	}
	var b strings.Builder
	for i := uint(0); i < n.NamedChildCount(); i++ {
		c := n.NamedChild(i)
		if c.Kind() == "interpolation" {
			p.errorf(c, "f-strings are not supported")
			return "", false
		}
		if c.Kind() != "string_content" {
			continue
		}
		raw := p.text(c)
		if strings.Contains(prefix, "r") {
			b.WriteString(raw)
			continue
		}
		s, err := unescape(raw)
		if err != nil {
			p.errorf(c, "%v", err)
			return "", false
		}
		b.WriteString(s)
	}
	return b.String(), true
}

// unescape decodes the backslash escapes of Python string content.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case '\n':
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+1+width > len(s) {
				return "", fmt.Errorf(`truncated \%c escape`, c)
			}
			r, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
			if err != nil {
				return "", fmt.Errorf(`invalid \%c escape %q`, c, s[i-1:i+1+width])
			}
			b.WriteRune(rune(r))
			i += width
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func parseInt(text string) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64)
}

func parseFloat(text string) (float64, error) {
	f, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
	if err == nil && math.IsInf(f, 0) {
		return 0, fmt.Errorf("float literal %s is out of range", text)
	}
	return f, err
}

// moduleConst records a top-level `NAME = literal` (or a tuple of them)
// for resolver bodies; anything else at the top level is not read.
func (p *parser) moduleConst(m *pysym.Module, st *sitter.Node) {
	a := st.NamedChild(0)
	if a == nil || a.Kind() != "assignment" || a.ChildByFieldName("right") == nil {
		return
	}
	left := a.ChildByFieldName("left")
	if left.Kind() != "identifier" {
		return
	}
	v := p.pyExpr(a.ChildByFieldName("right"))
	if constant(v) {
		m.Consts[p.text(left)] = v
	}
}

func constant(n pysym.Node) bool {
	switch n := n.(type) {
	case *pysym.Const:
		return true
	case *pysym.Unary:
		return constant(n.X)
	case *pysym.Seq:
		for _, e := range n.Elts {
			if !constant(e) {
				return false
			}
		}
		return true
	}
	return false
}
