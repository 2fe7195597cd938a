package pyload

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/features/pysym"
	"github.com/fletch-engine/fletch/internal/suggest"
)

// linker turns the declarations of all files into graph classes. It runs
// after every file is parsed, so a class may be used before its definition.
type linker struct {
	g    *features.Graph
	errs []error
	seen map[string]bool
	// anns are the read annotations of the features being linked.
	anns map[*features.Feature]*annotation
	// decls are the declarations of the features being linked.
	decls map[*features.Feature]*FeatureDecl
}

// annotation is what a feature's annotation says.
type annotation struct {
	kind      features.FeatureKind
	typ       features.Type
	primary   bool
	eventTime bool
	// fkClass and fkFeature are set for `Class.feature` (a foreign key).
	fkClass   *features.Class
	fkFeature string
	te        *TypeExpr
}

var scalarTypes = map[string]features.TypeKind{
	"int": features.Int, "float": features.Float, "str": features.String, "bool": features.Bool,
	"datetime": features.Datetime, "date": features.Date,
}

// typeNames are the annotation names Link knows besides class names.
var typeNames = []string{
	"int", "float", "str", "bool", "datetime", "date", "list", "List", "Optional",
	"Primary", "FeatureTime", "Windowed", "DataFrame",
}

// Link adds the classes and resolvers declared in files to g, checking
// names, types, relations and expressions. It returns every error found,
// joined; g then holds what could be linked.
func Link(g *features.Graph, files []*File) error {
	l := &linker{g: g, seen: map[string]bool{},
		anns: map[*features.Feature]*annotation{}, decls: map[*features.Feature]*FeatureDecl{}}
	type pending struct {
		c    *features.Class
		decl *ClassDecl
	}
	var classes []pending
	for _, f := range files {
		for _, cd := range f.Classes {
			c := &features.Class{Name: cd.Name, Options: cd.Options, Pos: cd.Pos}
			if err := g.AddClass(c); err != nil {
				l.add(err)
				continue
			}
			if ms, ok := cd.Options["max_staleness"]; ok {
				c.MaxStaleness = l.staleness(ms)
			}
			if v, ok := cd.Options["etl_offline_to_online"]; ok {
				l.boolOption(v, "etl_offline_to_online")
			}
			for _, name := range sortedKeys(cd.Options) {
				l.unhandled(cd.Options[name].Position(), "@features(...)", name, classKeywords)
			}
			classes = append(classes, pending{c, cd})
		}
	}
	for _, p := range classes {
		for _, fd := range p.decl.Features {
			l.declare(p.c, fd)
		}
	}
	for _, p := range classes {
		l.materialize(p.c, p.decl)
	}
	for _, p := range classes {
		for _, f := range p.c.Features {
			l.foreignKey(f, nil)
		}
	}
	for _, p := range classes {
		l.keys(p.c)
	}
	for _, p := range classes {
		for _, f := range p.c.Features {
			if f.Kind == features.HasOne || f.Kind == features.HasMany {
				l.relation(f)
			}
		}
	}
	for _, p := range classes {
		for _, f := range p.c.Features {
			l.expression(f)
		}
	}
	warned := map[*features.Class]bool{}
	for _, p := range classes {
		l.timeless(p.c, warned)
	}
	for _, f := range files {
		for i := range f.Skipped {
			l.skipped(&f.Skipped[i])
		}
		for _, rd := range f.Resolvers {
			call := "@offline(...)"
			if rd.Online {
				call = "@online(...)"
			}
			for _, name := range sortedKeys(rd.Options) {
				l.unhandled(rd.Options[name].Position(), call, name, resolverKeywords)
			}
			if r := l.resolver(rd); r != nil {
				l.compile(r, rd, f.Module)
				g.PyResolvers = append(g.PyResolvers, r)
			}
		}
	}
	return errors.Join(l.errs...)
}

func (l *linker) add(err error) {
	if !l.seen[err.Error()] {
		l.seen[err.Error()] = true
		l.errs = append(l.errs, err)
	}
}

func (l *linker) errorf(pos expr.Pos, format string, args ...any) {
	l.add(features.Errorf(pos, format, args...))
}

// className finds a class by its Python name.
func (l *linker) className(name string, pos expr.Pos) *features.Class {
	if c := l.g.Class(name); c != nil && c.Name == name {
		return c
	}
	names := make([]string, 0, len(l.g.Classes))
	for _, c := range l.g.Classes {
		names = append(names, c.Name)
	}
	l.errorf(pos, "unknown feature class %s%s", name, suggest.DidYouMean(name, names))
	return nil
}

func (l *linker) staleness(n expr.Node) features.Staleness {
	s, ok := literalString(asLiteral(n))
	if !ok {
		l.errorf(n.Position(), `max_staleness must be a duration string like "1h" or "infinity", found %s`, n)
		return features.Staleness{}
	}
	st, err := features.ParseStaleness(s)
	if err != nil {
		l.errorf(n.Position(), "max_staleness: %v", err)
	}
	return st
}

// declare adds the feature fd (and the windows of a windowed feature) to c.
func (l *linker) declare(c *features.Class, fd *FeatureDecl) {
	a := l.annotation(fd.Type, true)
	if a == nil {
		return
	}
	f := &features.Feature{Name: fd.Name, Kind: a.kind, Type: a.typ, Primary: a.primary,
		EventTime: a.eventTime, Default: fd.Default, Options: fd.Options, Pos: fd.Pos}
	l.options(c, f, fd)
	if f.Description == "" {
		f.Description = fd.Doc
	}
	if err := c.AddFeature(f); err != nil {
		l.add(err)
		return
	}
	l.anns[f], l.decls[f] = a, fd
	switch {
	case a.kind == features.WindowedGroup && fd.Func != "windowed":
		l.errorf(fd.Pos, `%s.%s is Windowed[...]: define it with windowed("7d", ..., expression=...)`, c.Name, f.Name)
	case a.kind != features.WindowedGroup && fd.Func == "windowed":
		l.errorf(fd.Pos, "%s.%s is defined with windowed(...): annotate it Windowed[%s]", c.Name, f.Name, fd.Type)
	case a.kind == features.WindowedGroup:
		l.windows(c, f, fd)
	}
	if fd.Expr != nil && (a.kind == features.HasOne || a.kind == features.HasMany) {
		l.errorf(fd.Expr.Position(), "%s.%s is a relation; relations are joined by foreign keys, not defined by expressions", c.Name, f.Name)
	}
}

// options copies the known keyword arguments of feature(...) into f.
func (l *linker) options(c *features.Class, f *features.Feature, fd *FeatureDecl) {
	for _, name := range sortedKeys(fd.Options) {
		v := fd.Options[name]
		switch name {
		case "min", "max":
			lit := asLiteral(v)
			if lit == nil {
				l.errorf(v.Position(), "%s= must be a literal number, found %s", name, v)
				continue
			}
			if name == "min" {
				f.Min = lit
			} else {
				f.Max = lit
			}
		case "min_length", "max_length", "strict", "validations":
			// read by validation, with min= and max=
		case "description":
			s, ok := literalString(asLiteral(v))
			if !ok {
				l.errorf(v.Position(), "description= must be a string, found %s", v)
			}
			f.Description = s
		case "max_staleness":
			f.MaxStaleness = l.staleness(v)
		case "primary":
			var b, ok bool
			if lit := asLiteral(v); lit != nil {
				b, ok = lit.Value.(bool)
			}
			if !ok {
				l.errorf(v.Position(), "primary= must be True or False, found %s", v)
			}
			f.Primary = f.Primary || b
		case "materialization":
			// Read by materialize, once the windows are declared.
		case "etl_offline_to_online":
			l.boolOption(v, name) // read by Feature.ETLOfflineToOnline
		default:
			l.unhandled(v.Position(), fd.Func+"(...)", name, featureKeywords)
		}
	}
	l.validation(c, f, fd)
}

// validation reads the bounds of f: the keyword arguments min=, max=,
// min_length=, max_length= and strict=, and each Validation(...) of
// validations=[...] (Chalk's form for several, some strict), refusing a
// bound the feature's type cannot have (min= of a str, min_length= of an
// int).
func (l *linker) validation(c *features.Class, f *features.Feature, fd *FeatureDecl) {
	if v := l.bounds(c, f, fd.Options); v != nil {
		f.Validations = append(f.Validations, v)
	}
	list, ok := fd.Options["validations"]
	if !ok {
		return
	}
	items, isList := list.(*expr.Call)
	if !isList || items.Func != "list" {
		l.errorf(list.Position(), "validations= must be a list: validations=[Validation(...), ...]")
		return
	}
	for _, item := range items.Args {
		call, ok := item.(*expr.Call)
		if !ok || (call.Func != "Validation" && !strings.HasSuffix(call.Func, ".Validation")) || len(call.Args) > 0 {
			l.errorf(item.Position(), "validations= takes Validation(min=..., max=..., min_length=..., max_length=..., strict=...) items")
			continue
		}
		opts := map[string]expr.Node{}
		for _, a := range call.Named {
			switch a.Name {
			case "min", "max", "min_length", "max_length", "strict":
				opts[a.Name] = a.Value
			default:
				known := []string{"min", "max", "min_length", "max_length", "strict"}
				l.errorf(a.Value.Position(), "Validation(...) has no keyword %s=%s", a.Name, suggest.DidYouMean(a.Name, known))
			}
		}
		if v := l.bounds(c, f, opts); v != nil {
			f.Validations = append(f.Validations, v)
		} else if _, ok := opts["strict"]; !ok {
			l.g.Warnf(call.At, "%s.%s: a Validation(...) without min=, max=, min_length= or max_length= checks nothing", c.Name, f.Name)
		}
	}
}

// bounds reads one validation from the options min=, max=, min_length=,
// max_length= and strict=; nil when they bound nothing.
func (l *linker) bounds(c *features.Class, f *features.Feature, opts map[string]expr.Node) *features.Validation {
	v := &features.Validation{MinLength: -1, MaxLength: -1}
	bounded := false
	numeric := f.Type.Kind == features.Int || f.Type.Kind == features.Float
	sized := f.Type.Kind == features.String || f.Type.Kind == features.List
	for _, name := range []string{"min", "max"} {
		n, ok := opts[name]
		if !ok {
			continue
		}
		lit := asLiteral(n)
		if lit == nil {
			l.errorf(n.Position(), "%s= must be a literal number, found %s", name, n)
			continue
		}
		if !numeric {
			l.errorf(n.Position(), "%s.%s: %s= bounds a number, and %s is %s%s", c.Name, f.Name, name, f.Name, f.Type, lengthHint(sized, name))
			continue
		}
		var b features.Bound
		switch x := lit.Value.(type) {
		case int64:
			b = features.Bound{Int: x, Float: float64(x), IsInt: true}
		case float64:
			b = features.Bound{Float: x}
		default:
			l.errorf(n.Position(), "%s= must be a literal number, found %s", name, n)
			continue
		}
		if name == "min" {
			v.Min = &b
		} else {
			v.Max = &b
		}
		bounded = true
	}
	for _, name := range []string{"min_length", "max_length"} {
		n, ok := opts[name]
		if !ok {
			continue
		}
		var length int64 = -1
		if lit := asLiteral(n); lit != nil {
			if x, isInt := lit.Value.(int64); isInt && x >= 0 {
				length = x
			}
		}
		switch {
		case length < 0:
			l.errorf(n.Position(), "%s= must be a literal int of 0 or more, found %s", name, n)
			continue
		case !sized:
			l.errorf(n.Position(), "%s.%s: %s= bounds the length of a str or a list, and %s is %s", c.Name, f.Name, name, f.Name, f.Type)
			continue
		}
		if name == "min_length" {
			v.MinLength = length
		} else {
			v.MaxLength = length
		}
		bounded = true
	}
	if n, ok := opts["strict"]; ok {
		lit := asLiteral(n)
		b, isBool := false, false
		if lit != nil {
			b, isBool = lit.Value.(bool)
		}
		switch {
		case !isBool:
			l.errorf(n.Position(), "strict= must be True or False, found %s", n)
		case !bounded && b:
			l.g.Warnf(n.Position(), "%s.%s: strict=True without min=, max=, min_length= or max_length= checks nothing", c.Name, f.Name)
		}
		v.Strict = b
	}
	if !bounded {
		return nil
	}
	return v
}

// boolOption checks that keyword argument name is True or False.
func (l *linker) boolOption(v expr.Node, name string) {
	if lit := asLiteral(v); lit != nil {
		if _, ok := lit.Value.(bool); ok {
			return
		}
	}
	l.errorf(v.Position(), "%s= must be True or False, found %s", name, v)
}

// lengthHint suggests min_length= for a min= of a str or list.
func lengthHint(sized bool, name string) string {
	if sized {
		return fmt.Sprintf(" (its length is bounded by %s_length=)", name)
	}
	return ""
}

// The keyword arguments of feature(...) and windowed(...), and of
// @features(...): what fletch implements, what documents the feature and
// nothing else, and Chalk's that fletch does not implement yet. Anything
// else is a typo or unknown, and said so (never silently ignored).
var (
	featureKeywords = keywords{
		implemented:   []string{"expression", "default", "min", "max", "min_length", "max_length", "strict", "validations", "description", "max_staleness", "primary", "materialization", "cache_nulls", "cache_defaults", "etl_offline_to_online"},
		documentation: []string{"owner", "tags", "name", "version"},
		notYet:        []string{"offline_ttl", "encoder", "decoder", "store_online", "store_offline", "dtype"},
	}
	classKeywords = keywords{
		implemented:   []string{"max_staleness", "materialization", "etl_offline_to_online"},
		documentation: []string{"owner", "tags", "name"},
		notYet:        []string{"offline_ttl", "singleton"},
	}
)

type keywords struct{ implemented, documentation, notYet []string }

// The keyword arguments of @online(...) and @offline(...): fletch acts on
// none of them yet but the documenting ones.
var resolverKeywords = keywords{
	documentation: []string{"owner", "tags", "name"},
	notYet:        []string{"environment", "cron", "machine_type", "when", "timeout", "resource_hint", "static", "total", "unique_on", "partitioned_by"},
}

// Chalk's decorators of definitions fletch does not take yet, and those it
// does: a skipped definition under one of the first is not supported yet,
// under a near miss of either a typo; any other decorator is the user's own
// (a helper function's functools.cache) and said nothing of.
var (
	notYetDecorators   = []string{"stream", "sink"}
	resolverDecorators = []string{"online", "offline", "stream", "sink"}
	classDecorators    = []string{"features"}
)

// skipped warns about a class or function pyload did not read as a
// definition when its decorator says the user meant one.
func (l *linker) skipped(sd *SkippedDecl) {
	known := resolverDecorators
	if sd.Class {
		known = classDecorators
	}
	switch {
	case !sd.Class && slices.Contains(notYetDecorators, sd.Decorator):
		l.g.Warnf(sd.Pos, "@%s is not supported yet: %s is ignored", sd.Decorator, sd.Name)
	case suggest.Nearest(sd.Decorator, known) != "":
		l.g.Warnf(sd.Pos, "unknown decorator @%s: %s is ignored%s", sd.Decorator, sd.Name, suggest.DidYouMean(sd.Decorator, known))
	}
}

// unhandled warns about a keyword argument of call that fletch does not act
// on: a known one not supported yet, or an unknown one with the nearest
// known keyword.
func (l *linker) unhandled(pos expr.Pos, call, name string, k keywords) {
	switch {
	case slices.Contains(k.implemented, name), slices.Contains(k.documentation, name):
	case slices.Contains(k.notYet, name):
		l.g.Warnf(pos, "%s: %s= is not supported yet: it is ignored", call, name)
	default:
		known := append(append(slices.Clone(k.implemented), k.documentation...), k.notYet...)
		l.g.Warnf(pos, "%s: unknown keyword %s=: it is ignored%s", call, name, suggest.DidYouMean(name, known))
	}
}

func sortedKeys(m map[string]expr.Node) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// annotation reads te; top is false inside list[...] and the like, where
// relations and markers are not allowed.
func (l *linker) annotation(te *TypeExpr, top bool) *annotation {
	nullable := false
	if te.Name == "|" {
		var rest []*TypeExpr
		for _, alt := range te.Args {
			if alt.Name == "None" {
				nullable = true
			} else {
				rest = append(rest, alt)
			}
		}
		if len(rest) != 1 {
			l.errorf(te.Pos, "unsupported union %s: only `T | None` is supported", te)
			return nil
		}
		te = rest[0]
	}
	if te.Name == "Optional" {
		if len(te.Args) != 1 {
			l.errorf(te.Pos, "Optional takes one type: Optional[int]")
			return nil
		}
		nullable = true
		te = te.Args[0]
	}
	a := l.plainAnnotation(te, top)
	if a != nil && nullable {
		a.typ.Nullable = true
	}
	return a
}

func (l *linker) plainAnnotation(te *TypeExpr, top bool) *annotation {
	args := func(n int) bool {
		if len(te.Args) != n {
			l.errorf(te.Pos, "%s takes %d type argument(s), found %s", te.Name, n, te)
			return false
		}
		return true
	}
	marker := func() bool {
		if !top {
			l.errorf(te.Pos, "%s is only valid as a feature's own annotation, not inside another type", te.Name)
		}
		return top
	}
	if kind, ok := scalarTypes[te.Name]; ok {
		if !args(0) {
			return nil
		}
		return &annotation{typ: features.Type{Kind: kind}, te: te}
	}
	switch te.Name {
	case "list", "List":
		if !args(1) {
			return nil
		}
		elem := l.annotation(te.Args[0], false)
		if elem == nil {
			return nil
		}
		return &annotation{typ: features.Type{Kind: features.List, Elem: &elem.typ}, te: te}
	case "FeatureTime":
		if !args(0) || !marker() {
			return nil
		}
		return &annotation{typ: features.Type{Kind: features.Datetime}, eventTime: true, te: te}
	case "Primary", "Windowed":
		if !args(1) || !marker() {
			return nil
		}
		a := l.annotation(te.Args[0], te.Name == "Primary")
		if a == nil {
			return nil
		}
		if te.Name == "Primary" {
			a.primary = true
		} else {
			a.kind = features.WindowedGroup
		}
		a.te = te
		return a
	case "DataFrame":
		if !args(1) || !marker() {
			return nil
		}
		c := l.className(te.Args[0].Name, te.Args[0].Pos)
		if c == nil {
			return nil
		}
		elem := features.Type{Kind: features.Struct, Class: c}
		return &annotation{kind: features.HasMany, typ: features.Type{Kind: features.List, Elem: &elem}, te: te}
	}
	if len(te.Args) > 0 {
		l.errorf(te.Pos, "unknown generic type %s%s", te.Name, suggest.DidYouMean(te.Name, typeNames))
		return nil
	}
	if cls, feat, ok := strings.Cut(te.Name, "."); ok {
		c := l.className(cls, te.Pos)
		if c == nil {
			return nil
		}
		return &annotation{fkClass: c, fkFeature: feat, te: te}
	}
	if c := l.g.Class(te.Name); c != nil && c.Name == te.Name {
		if !marker() {
			return nil
		}
		return &annotation{kind: features.HasOne, typ: features.Type{Kind: features.Struct, Class: c}, te: te}
	}
	candidates := append([]string(nil), typeNames...)
	for _, c := range l.g.Classes {
		candidates = append(candidates, c.Name)
	}
	hint := suggest.DidYouMean(te.Name, candidates)
	if te.Name == "id" {
		hint = " (did you mean \"str\" or \"int\"?)"
	}
	l.errorf(te.Pos, "unknown type %s%s", te.Name, hint)
	return nil
}

// timeless warns, once per class aggregated over, about an aggregation of
// a has-many whose class has no event time (DESIGN.md §4): rows dated
// after a query's time are counted too (a training set leaks the
// future), where a class with one is bounded by it.
func (l *linker) timeless(c *features.Class, warned map[*features.Class]bool) {
	for _, f := range c.Features {
		expr.Walk(f.Expr, func(n expr.Node) bool {
			a, ok := n.(*expr.Agg)
			if !ok || a.Source == nil {
				return true
			}
			ref, ok := a.Source.Rel.(*expr.Ref)
			if !ok || len(ref.Path) != 1 {
				return true
			}
			rel := c.Feature(ref.Path[0])
			if rel == nil || rel.Kind != features.HasMany || rel.Relation == nil || rel.Relation.To.EventTime != nil || warned[rel.Relation.To] {
				return true
			}
			warned[rel.Relation.To] = true
			to := rel.Relation.To
			l.g.Warnf(a.At, "%s.%s aggregates %s.%s, and %s has no event time (no FeatureTime, no datetime ts, not exactly one datetime feature): its rows are counted whatever their date, later than a query's time too; annotate its time FeatureTime", c.Name, f.Name, c.Name, rel.Name, to.Name)
			return true
		})
	}
}

// windows adds the window instances of the windowed feature group.
func (l *linker) windows(c *features.Class, group *features.Feature, fd *FeatureDecl) {
	elem := group.Type
	for _, wd := range fd.Windows {
		d, err := features.ParseDuration(wd.Label)
		if err != nil {
			l.errorf(wd.Pos, "window of %s.%s: %v", c.Name, group.Name, err)
			continue
		}
		inst := &features.Feature{Name: features.WindowFQN(group.Name, d), Kind: features.Scalar, Type: elem,
			Default: group.Default, MaxStaleness: group.MaxStaleness, Description: group.Description,
			Min: group.Min, Max: group.Max, Validations: group.Validations, Options: group.Options, Pos: wd.Pos,
			Window: &features.Window{Label: wd.Label, Duration: d, Group: group}}
		if prev := c.Feature(inst.Name); prev != nil && prev.Window != nil && prev.Window.Group == group {
			l.errorf(wd.Pos, "window %q of %s.%s repeats %q", wd.Label, c.Name, group.Name, prev.Window.Label)
			continue
		}
		if err := c.AddFeature(inst); err != nil {
			l.add(err)
			continue
		}
		group.Windows = append(group.Windows, inst)
	}
}

// foreignKey resolves `user_id: User.id`: f references User.id and has its
// type. visiting guards against reference cycles.
func (l *linker) foreignKey(f *features.Feature, visiting map[*features.Feature]bool) {
	a := l.anns[f]
	if a == nil || a.fkClass == nil || f.References != nil {
		return
	}
	target := a.fkClass.Feature(a.fkFeature)
	if target == nil || target.Kind != features.Scalar {
		l.errorf(a.te.Pos, "unknown feature %s.%s%s", a.fkClass.Name, a.fkFeature,
			suggest.DidYouMean(a.fkFeature, scalarNames(a.fkClass)))
		a.fkClass = nil
		return
	}
	if visiting == nil {
		visiting = map[*features.Feature]bool{}
	}
	if visiting[f] {
		l.errorf(f.Pos, "%s.%s: foreign keys reference each other in a cycle", f.Class.Name, f.Name)
		a.fkClass = nil
		return
	}
	visiting[f] = true
	l.foreignKey(target, visiting)
	f.References = target
	nullable := a.typ.Nullable
	f.Type = target.Type
	f.Type.Nullable = nullable
}

func scalarNames(c *features.Class) []string {
	var names []string
	for _, f := range c.Features {
		if f.Kind == features.Scalar {
			names = append(names, f.Name)
		}
	}
	return names
}

// keys finds c's primary key and event time.
func (l *linker) keys(c *features.Class) {
	var primary, times []*features.Feature
	for _, f := range c.Features {
		if f.Primary {
			primary = append(primary, f)
		}
		if f.EventTime {
			times = append(times, f)
		}
	}
	switch {
	case len(primary) > 1:
		l.errorf(primary[1].Pos, "class %s has two primary keys: %s and %s", c.Name, primary[0].Name, primary[1].Name)
	case len(primary) == 1:
		c.Primary = primary[0]
	default:
		if id := c.Feature("id"); id != nil && id.Kind == features.Scalar {
			id.Primary = true
			c.Primary = id
		} else {
			l.errorf(c.Pos, "class %s has no primary key: name a feature `id`, annotate one Primary[...], or use feature(primary=True)", c.Name)
		}
	}
	switch {
	case len(times) > 1:
		l.errorf(times[1].Pos, "class %s has two FeatureTime features: %s and %s", c.Name, times[0].Name, times[1].Name)
	case len(times) == 1:
		c.EventTime = times[0]
	default:
		if ts := c.Feature("ts"); ts != nil && ts.Kind == features.Scalar && ts.Type.Kind == features.Datetime {
			ts.EventTime = true
			c.EventTime = ts
			break
		}
		// DESIGN §4: else the class's only datetime feature (the seeds'
		// Review.created_at): rows later than a query's time are unseen.
		// A computed datetime (seed 004's Document.earliest_large_revision_ts)
		// is no row's time; expressions are bound after keys, so ask the
		// declaration.
		var dts []*features.Feature
		for _, f := range c.Features {
			computed := f.Expr != nil || (l.decls[f] != nil && l.decls[f].Expr != nil)
			if f.Kind == features.Scalar && f.Type.Kind == features.Datetime && !computed && f.Window == nil {
				dts = append(dts, f)
			}
		}
		if len(dts) == 1 {
			dts[0].EventTime = true
			c.EventTime = dts[0]
			l.g.Warnf(dts[0].Pos, "class %s has no FeatureTime: its only datetime feature, %s, is its event time (rows later than a query's time are not seen); annotate it FeatureTime to say so", c.Name, dts[0].Name)
		}
	}
}

// referencing lists the features of from that are foreign keys into to.
func referencing(from, to *features.Class) []*features.Feature {
	var out []*features.Feature
	for _, f := range from.Features {
		if f.References != nil && f.References.Class == to {
			out = append(out, f)
		}
	}
	return out
}

func names(fs []*features.Feature) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Name
	}
	return strings.Join(s, ", ")
}

// relation joins a has-one or has-many feature through the foreign key
// between the two classes.
func (l *linker) relation(f *features.Feature) {
	from := f.Class
	to := f.Type.Class
	if f.Kind == features.HasMany {
		to = f.Type.Elem.Class
	}
	rel := &features.Relation{From: from, To: to, Many: f.Kind == features.HasMany}
	if f.Kind == features.HasOne {
		// The usual has-one: a local foreign key (`user_id: User.id`).
		fks := referencing(from, to)
		if len(fks) > 1 {
			for _, fk := range fks {
				if fk.Name == f.Name+"_id" {
					fks = []*features.Feature{fk}
				}
			}
		}
		switch len(fks) {
		case 1:
			rel.FromKey, rel.ToKey = fks[0], fks[0].References
			f.Relation = rel
			return
		case 0:
			// The other side of a one-to-one: the target holds the key.
		default:
			l.errorf(f.Pos, "%s.%s: %s has several foreign keys into %s (%s); name the relation after one of them, e.g. `%s: %s` beside `%s_id`",
				from.Name, f.Name, from.Name, to.Name, names(fks), strings.TrimSuffix(fks[0].Name, "_id"), to.Name, strings.TrimSuffix(fks[0].Name, "_id"))
			return
		}
	}
	back := referencing(to, from)
	switch len(back) {
	case 1:
		rel.FromKey, rel.ToKey = back[0].References, back[0]
		f.Relation = rel
	case 0:
		key := "id"
		if from.Primary != nil {
			key = from.Primary.Name
		}
		l.errorf(f.Pos, "%s.%s: no join path between %s and %s: add a foreign key such as `%s_id: %s.%s` to %s",
			from.Name, f.Name, from.Name, to.Name, from.Table, from.Name, key, to.Name)
	default:
		l.errorf(f.Pos, "%s.%s: ambiguous join: %s has several foreign keys into %s (%s)", from.Name, f.Name, to.Name, from.Name, names(back))
	}
}

// expression binds f's defining expression; a windowed feature gets one
// bound copy per window.
func (l *linker) expression(f *features.Feature) {
	fd := l.decls[f]
	if fd == nil || fd.Expr == nil || f.Window != nil {
		return
	}
	switch f.Kind {
	case features.Scalar:
		f.Expr = l.bind(fd.Expr, f.Class, nil)
	case features.WindowedGroup:
		f.Expr = fd.Expr // as written; each window has its own bound copy
		for _, w := range f.Windows {
			w.Expr = l.bind(fd.Expr, f.Class, w.Window)
		}
	}
}

// resolve walks path from c through relations, returning the features
// along it, or nil after reporting the first name that does not exist.
func (l *linker) resolve(path []string, c *features.Class, at expr.Pos) []*features.Feature {
	out := make([]*features.Feature, 0, len(path))
	cur := c
	for i, name := range path {
		f := cur.Feature(name)
		if f == nil {
			l.errorf(at, "%s has no feature %s%s", cur.Name, name, suggest.DidYouMean(name, cur.FeatureNames()))
			return nil
		}
		out = append(out, f)
		if i == len(path)-1 {
			break
		}
		if f.Relation == nil {
			l.errorf(at, "%s.%s is not a relation: _.%s cannot continue with .%s", cur.Name, name,
				strings.Join(path[:i+1], "."), path[i+1])
			return nil
		}
		cur = f.Relation.To
	}
	return out
}

// bind checks n against class c and returns it in its linked form: has-many
// paths made selections, windows named by their FQNs. win is the window
// being computed inside windowed(...), else nil.
func (l *linker) bind(n expr.Node, c *features.Class, win *features.Window) expr.Node {
	switch n := n.(type) {
	case *expr.Literal:
		return n
	case *expr.ChalkWindow:
		if win == nil {
			l.errorf(n.At, "_.chalk_window is only defined inside windowed(..., expression=...)")
			return nil
		}
		return n
	case *expr.Ref:
		fs := l.resolve(n.Path, c, n.At)
		if fs == nil {
			return nil
		}
		for i, f := range fs {
			if f.Kind == features.HasMany && i < len(fs)-1 {
				l.errorf(n.At, "%s goes through the has-many %s: aggregate it, e.g. %s.mean()", n, f.Name, n)
				return nil
			}
		}
		if last := fs[len(fs)-1]; last.Kind == features.WindowedGroup {
			if len(last.Windows) > 0 { // else its declaration's error says why it has none
				l.errorf(n.At, `%s is windowed: pick a window, e.g. %s["%s"]`, n, n, last.Windows[0].Window.Label)
			}
			return nil
		}
		return &expr.Ref{Path: n.Path, At: n.At}
	case *expr.Binary:
		L, R := l.bind(n.L, c, win), l.bind(n.R, c, win)
		if L == nil || R == nil {
			return nil
		}
		return &expr.Binary{Op: n.Op, L: L, R: R, At: n.At}
	case *expr.Unary:
		x := l.bind(n.X, c, win)
		if x == nil {
			return nil
		}
		return &expr.Unary{Op: n.Op, X: x, At: n.At}
	case *expr.Alias:
		x := l.bind(n.X, c, win)
		if x == nil {
			return nil
		}
		return &expr.Alias{X: x, Name: n.Name, At: n.At}
	case *expr.Call:
		out := &expr.Call{Func: n.Func, At: n.At}
		ok := true
		for _, a := range n.Args {
			b := l.bind(a, c, win)
			ok = ok && b != nil
			out.Args = append(out.Args, b)
		}
		for _, a := range n.Named {
			b := l.bind(a.Value, c, win)
			ok = ok && b != nil
			out.Named = append(out.Named, expr.NamedArg{Name: a.Name, Value: b})
		}
		if !ok {
			return nil
		}
		return out
	case *expr.When:
		out := &expr.When{At: n.At}
		ok := true
		for i := range n.Conds {
			cond, then := l.bind(n.Conds[i], c, win), l.bind(n.Thens[i], c, win)
			ok = ok && cond != nil && then != nil
			out.Conds, out.Thens = append(out.Conds, cond), append(out.Thens, then)
		}
		if n.Else != nil {
			out.Else = l.bind(n.Else, c, win)
			ok = ok && out.Else != nil
		}
		if !ok {
			return nil
		}
		return out
	case *expr.Index:
		return l.bindIndex(n, c, win)
	case *expr.Select:
		s, _ := l.bindSelect(n, c, win)
		if s == nil {
			return nil
		}
		return s
	case *expr.Agg:
		return l.bindAgg(n, c, win)
	}
	l.errorf(n.Position(), "unsupported expression %s", n)
	return nil
}

// bindIndex names a window of a windowed feature: `_.x["30d"]` and, inside
// windowed(...), `_.x[_.chalk_window]` become a Ref to the window's FQN.
func (l *linker) bindIndex(n *expr.Index, c *features.Class, win *features.Window) expr.Node {
	ref, ok := n.X.(*expr.Ref)
	if !ok {
		l.errorf(n.At, "only a windowed feature takes a window: %s", n)
		return nil
	}
	fs := l.resolve(ref.Path, c, ref.At)
	if fs == nil {
		return nil
	}
	group := fs[len(fs)-1]
	if group.Kind != features.WindowedGroup {
		l.errorf(n.At, "%s is not a windowed feature: %s", ref, n)
		return nil
	}
	var d time.Duration
	label := ""
	switch k := n.Key.(type) {
	case *expr.ChalkWindow:
		if win == nil {
			l.errorf(k.At, "%s: _.chalk_window is only defined inside windowed(..., expression=...)", n)
			return nil
		}
		d, label = win.Duration, win.Label
	case *expr.Literal:
		label, _ = k.Value.(string)
		var err error
		if d, err = features.ParseDuration(label); err != nil {
			l.errorf(k.At, "%s: %v", n, err)
			return nil
		}
	}
	var labels []string
	for _, w := range group.Windows {
		if w.Window.Duration == d {
			path := append(append([]string(nil), ref.Path[:len(ref.Path)-1]...), w.Name)
			return &expr.Ref{Path: path, At: ref.At}
		}
		labels = append(labels, w.Window.Label)
	}
	if len(group.Windows) == 0 {
		return nil // its declaration's error says why it has none
	}
	if _, agg := group.Windows[0].Expr.(*expr.Agg); agg && win == nil && d > 0 && group.Materialization != nil {
		// A window a materialized feature does not declare, asked by a
		// query: the planner merges other tiles for it (docs/TILES.md).
		if bucket, ok := group.Materialization.AdHocBucket(group.Windows, d); !ok {
			l.errorf(n.At, "%s has no %s window, and its tiles cannot answer a window shorter than its finest bucket (%s): declare it in windowed(...) with a bucket no longer than it", ref, label, features.FormatDuration(bucket))
			return nil
		}
		path := append(append([]string(nil), ref.Path[:len(ref.Path)-1]...), features.WindowFQN(group.Name, d))
		return &expr.Ref{Path: path, At: ref.At}
	}
	l.errorf(n.At, "%s has no %s window (its windows: %s)%s", ref, label, strings.Join(labels, ", "), suggest.DidYouMean(label, labels))
	return nil
}

// bindSelect binds a selection over a has-many. It returns the selection
// and the related class its filters and projection are evaluated on.
func (l *linker) bindSelect(n *expr.Select, c *features.Class, win *features.Window) (*expr.Select, *features.Class) {
	ref, ok := n.Rel.(*expr.Ref)
	if !ok {
		l.errorf(n.At, "only a has-many relation can be selected from: %s", n)
		return nil, nil
	}
	fs := l.resolve(ref.Path, c, ref.At)
	if fs == nil {
		return nil, nil
	}
	rel := fs[len(fs)-1]
	if rel.Kind != features.HasMany {
		if rel.Kind == features.WindowedGroup {
			l.errorf(n.At, `%s is windowed: pick a window with a string like "30d" or _.chalk_window`, ref)
		} else {
			l.errorf(n.At, "%s is not a has-many relation (DataFrame[...]): %s", ref, n)
		}
		return nil, nil
	}
	for _, f := range fs[:len(fs)-1] {
		if f.Kind == features.HasMany {
			l.errorf(n.At, "%s goes through two has-many relations (%s, %s)", ref, f.Name, rel.Name)
			return nil, nil
		}
	}
	if rel.Relation == nil {
		return nil, nil // the relation's own error is reported
	}
	row := rel.Relation.To
	out := &expr.Select{Rel: &expr.Ref{Path: ref.Path, At: ref.At}, At: n.At}
	ok = true
	for _, f := range n.Filters {
		b := l.bind(f, row, win)
		ok = ok && b != nil
		out.Filters = append(out.Filters, b)
	}
	if n.Project != nil {
		out.Project = l.bind(n.Project, row, win)
		ok = ok && out.Project != nil
	}
	if !ok {
		return nil, nil
	}
	return out, row
}

// bindAgg binds an aggregation; `_.reviews.star_rating.mean()` is read as
// `_.reviews[_.star_rating].mean()`.
func (l *linker) bindAgg(n *expr.Agg, c *features.Class, win *features.Window) expr.Node {
	src := n.Source
	if ref, ok := src.Rel.(*expr.Ref); ok && len(src.Filters) == 0 && src.Project == nil {
		fs := l.resolve(ref.Path, c, ref.At)
		if fs == nil {
			return nil
		}
		for i, f := range fs[:len(fs)-1] {
			if f.Kind == features.HasMany {
				src = &expr.Select{
					Rel:     &expr.Ref{Path: ref.Path[:i+1], At: ref.At},
					Project: &expr.Ref{Path: ref.Path[i+1:], At: ref.At},
					At:      src.At,
				}
				break
			}
		}
	}
	sel, row := l.bindSelect(src, c, win)
	if sel == nil {
		return nil
	}
	out := &expr.Agg{Func: n.Func, Source: sel, At: n.At}
	if n.Func != "count" && sel.Project == nil {
		l.errorf(n.At, ".%s() needs a column to aggregate: %s", n.Func, fmt.Sprintf("%s[_.column].%s()", sel.Rel, n.Func))
		return nil
	}
	if n.SortBy != nil {
		if out.SortBy = l.bind(n.SortBy, row, win); out.SortBy == nil {
			return nil
		}
	}
	return out
}

// resolver links the signature of a Python resolver.
func (l *linker) resolver(rd *ResolverDecl) *features.PyResolver {
	r := &features.PyResolver{Name: rd.Name, Online: rd.Online, Pos: rd.Pos, File: rd.Pos.File}
	ok := true
	for _, p := range rd.Params {
		root, fs := l.featurePath(p.Path)
		if fs == nil {
			ok = false
			continue
		}
		if last := fs[len(fs)-1]; last.Kind == features.WindowedGroup {
			if len(last.Windows) > 0 { // else its declaration's error says why it has none
				l.errorf(p.Path.Pos, `resolver %s: %s is windowed: pick a window, e.g. %s["%s"]`, rd.Name, p.Path, p.Path, last.Windows[0].Window.Label)
			}
			ok = false
			continue
		}
		r.Inputs = append(r.Inputs, features.PyInput{Param: p.Name, Path: p.Path.Path, Root: root})
	}
	for _, o := range rd.Outputs {
		_, fs := l.featurePath(o)
		if fs == nil {
			ok = false
			continue
		}
		if len(fs) != 1 {
			l.errorf(o.Pos, "resolver %s: an output must be a feature of the class itself, not %s", rd.Name, o)
			ok = false
			continue
		}
		if fs[0].Kind != features.Scalar {
			l.errorf(o.Pos, "resolver %s: %s is not a scalar feature", rd.Name, o)
			ok = false
			continue
		}
		if fs[0].Expr != nil {
			l.errorf(o.Pos, "resolver %s: %s is already defined by its expression at %s", rd.Name, o, fs[0].Pos)
			ok = false
			continue
		}
		if len(r.Outputs) > 0 && fs[0].Class != r.Outputs[0].Class {
			l.errorf(o.Pos, "resolver %s: its outputs belong to one class (%s and %s)", rd.Name, r.Outputs[0].Class.Name, fs[0].Class.Name)
			ok = false
			continue
		}
		r.Outputs = append(r.Outputs, fs[0])
	}
	if len(rd.Outputs) == 0 {
		ok = false
	}
	for i, in := range r.Inputs {
		if ok && in.Root != r.Outputs[0].Class {
			l.errorf(rd.Params[i].Path.Pos, "resolver %s: parameter %s reads %s, but the resolver computes features of %s: inputs are paths from %s (e.g. %s.id)",
				rd.Name, in.Param, rd.Params[i].Path, r.Outputs[0].Class.Name, r.Outputs[0].Class.Name, r.Outputs[0].Class.Name)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return r
}

func (l *linker) featurePath(p FeaturePath) (*features.Class, []*features.Feature) {
	root := l.className(p.Root, p.Pos)
	if root == nil {
		return nil, nil
	}
	if len(p.Path) == 0 {
		l.errorf(p.Pos, "expected a feature of %s, e.g. %s.id", p.Root, p.Root)
		return nil, nil
	}
	return root, l.resolve(p.Path, root, p.Pos)
}

// compile interprets r's body (features/pysym): its outputs become
// expressions, or, for what needs Python, r runs in a worker and Why says
// which construct, where.
func (l *linker) compile(r *features.PyResolver, rd *ResolverDecl, m *pysym.Module) {
	pr := &pysym.Resolver{Name: r.Name, Fn: rd.Fn, Module: m, Class: r.Outputs[0].Class.Name}
	for _, in := range r.Inputs {
		fs := l.resolve(in.Path, in.Root, r.Pos)
		pr.Inputs = append(pr.Inputs, pysym.Input{Param: in.Param, Path: in.Path, Type: fs[len(fs)-1].Type})
	}
	for _, o := range r.Outputs {
		pr.Outputs = append(pr.Outputs, pysym.Output{Name: o.Name, Type: o.Type})
	}
	res, err := pysym.Compile(pr)
	if err != nil {
		var u *pysym.Unsupported
		if !errors.As(err, &u) {
			panic(err)
		}
		at := u.At
		if rel, err := filepath.Rel(l.g.Dir, at.File); err == nil && l.g.Dir != "" {
			at.File = rel
		}
		r.Mode, r.Why = features.PyWorker, fmt.Sprintf("%s: %s", at, u.What)
		return
	}
	r.Mode, r.Why = features.PyExpression, fmt.Sprintf("%d expression nodes (gas limit %d)", res.Size, pysym.GasLimit)
	for i, o := range r.Outputs {
		o.Expr, o.Raises = res.Values[i], res.Raises
	}
}
