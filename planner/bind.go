package planner

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/operators/functions"
)

// bexpr is a bound expression: typed, with every name resolved to a column
// of a frame. It is evaluated over all rows of its frame at once.
type bexpr interface {
	dataType() arrow.DataType
	String() string
}

// colRef is a column of the frame the expression is bound in.
type colRef struct {
	idx  int
	name string
	typ  arrow.DataType
}

// hasOneRef evaluates inner in a has-one child frame and gathers it back to
// the parent's rows.
type hasOneRef struct {
	child *frameNode
	inner bexpr
	path  string
}

type literal struct {
	value any
	typ   arrow.DataType
}

type call struct {
	fn   *functions.Bound
	args []bexpr
	// key identifies the call's value in its frame (see frameData.memo).
	key string
	// fused, when set, computes the call and the calls below it in one
	// program over large frames (fuse.go).
	fused *fusion
}

// windowStart is `_.chalk_window`: each row's evaluation time minus the
// window (the row's time itself for a zero window).
type windowStart struct{ window time.Duration }

// aggregation aggregates a has-many child frame per parent row.
type aggregation struct {
	tile    *tileInfo // set when a materialized feature's window computes it
	slide   *slide    // set when its window slides over the related rows' event time (window.go)
	child   *frameNode
	fn      string
	filters []bexpr // in the child frame
	value   bexpr   // in the child frame; nil for count
	sortBy  bexpr   // max_by / min_by
	typ     arrow.DataType
	text    string
}

// manyRows is a has-many relation as a value: per parent row, the list of
// its related rows as structs of their scalar features.
type manyRows struct {
	child *frameNode
	cols  []int // child columns
	names []string
	typ   arrow.DataType
	path  string
}

// castTo converts x to typ (int → float, date → timestamp, ...).
type castTo struct {
	x   bexpr
	typ arrow.DataType
}

func (b *colRef) dataType() arrow.DataType      { return b.typ }
func (b *hasOneRef) dataType() arrow.DataType   { return b.inner.dataType() }
func (b *literal) dataType() arrow.DataType     { return b.typ }
func (b *call) dataType() arrow.DataType        { return b.fn.Out }
func (b *windowStart) dataType() arrow.DataType { return features.TimestampType }
func (b *aggregation) dataType() arrow.DataType { return b.typ }
func (b *castTo) dataType() arrow.DataType      { return b.typ }
func (b *manyRows) dataType() arrow.DataType    { return b.typ }

func (b *colRef) String() string    { return b.name }
func (b *hasOneRef) String() string { return b.path }
func (b *literal) String() string   { return (&expr.Literal{Value: b.value}).String() }
func (b *call) String() string {
	args := make([]string, len(b.args))
	for i, a := range b.args {
		args[i] = a.String()
	}
	return b.fn.Name + "(" + strings.Join(args, ", ") + ")"
}
func (b *windowStart) String() string {
	if b.window == 0 {
		return "row time"
	}
	return "row time - " + formatWindow(b.window)
}
func (b *aggregation) String() string { return b.text }
func (b *castTo) String() string      { return fmt.Sprintf("cast(%s as %s)", b.x, b.typ) }

var binaryFuncs = map[string]string{
	"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "//": "floor_divide",
	"%": "mod", "**": "power", "==": "equal", "!=": "not_equal", "<": "less",
	"<=": "less_equal", ">": "greater", ">=": "greater_equal",
	"&": "and", "and": "and", "|": "or", "or": "or",
}

var unaryFuncs = map[string]string{"-": "negate", "~": "not", "not": "not"}

// bind binds x in frame f. window is the window of the windowed feature
// being bound (0 outside one): the value of `_.chalk_window`.
func (pl *planner) bind(f *frameNode, x expr.Node, window time.Duration) (bexpr, error) {
	if pl.bound++; pl.bound%64 == 0 && pl.ctx != nil {
		if err := pl.ctx.Err(); err != nil {
			return nil, err
		}
	}
	switch x := x.(type) {
	case *expr.Literal:
		return bindLiteral(x)
	case *expr.ChalkWindow:
		if window == 0 {
			return nil, invalid(x.At, "_.chalk_window is only defined inside windowed(...) expressions")
		}
		return &windowStart{window: window}, nil
	case *expr.Ref:
		return pl.bindRef(f, x, x.Path, window)
	case *expr.Alias:
		return pl.bind(f, x.X, window)
	case *expr.Unary:
		a, err := pl.bind(f, x.X, window)
		if err != nil {
			return nil, err
		}
		return pl.bindCall(x.At, unaryFuncs[x.Op], []bexpr{a})
	case *expr.Binary:
		l, err := pl.bind(f, x.L, window)
		if err != nil {
			return nil, err
		}
		r, err := pl.bind(f, x.R, window)
		if err != nil {
			return nil, err
		}
		name, ok := binaryFuncs[x.Op]
		if !ok {
			return nil, invalid(x.At, "unsupported operator %q", x.Op)
		}
		if x.Op == "+" && (l.dataType().ID() == arrow.STRING || r.dataType().ID() == arrow.STRING) {
			name = "concat"
		}
		return pl.bindCall(x.At, name, []bexpr{l, r})
	case *expr.Call:
		return pl.bindFuncCall(f, x, window)
	case *expr.When:
		return pl.bindWhen(f, x, window)
	case *expr.Agg:
		return pl.bindAgg(f, x, window)
	case *expr.Select:
		return nil, invalid(x.At, "%s is a DataFrame: aggregate it (.count(), .sum(), ...)", x)
	case *expr.Index:
		return nil, invalid(x.At, "cannot index %s here", x.X)
	}
	return nil, invalid(x.Position(), "unsupported expression %s", x)
}

// windowed returns X of a window's lower bound, `X > _.chalk_window` or
// `X >= _.chalk_window` (or `_.chalk_window < X`, `<=`); nil for another
// condition.
func windowed(cond expr.Node) expr.Node {
	b, ok := cond.(*expr.Binary)
	if !ok {
		return nil
	}
	_, lw := b.L.(*expr.ChalkWindow)
	_, rw := b.R.(*expr.ChalkWindow)
	switch {
	case rw && !lw && (b.Op == ">" || b.Op == ">="):
		return b.L
	case lw && !rw && (b.Op == "<" || b.Op == "<="):
		return b.R
	}
	return nil
}

// isFeature says whether x is `_.<feat>` in frame f.
func isFeature(f *frameNode, x expr.Node, feat *features.Feature) bool {
	r, ok := x.(*expr.Ref)
	return ok && feat != nil && len(r.Path) == 1 && f.class.Feature(r.Path[0]) == feat
}

func bindLiteral(x *expr.Literal) (bexpr, error) {
	switch v := x.Value.(type) {
	case nil:
		return &literal{typ: arrow.Null}, nil
	case bool:
		return &literal{value: v, typ: arrow.FixedWidthTypes.Boolean}, nil
	case int64:
		return &literal{value: v, typ: arrow.PrimitiveTypes.Int64}, nil
	case int:
		return &literal{value: int64(v), typ: arrow.PrimitiveTypes.Int64}, nil
	case float64:
		return &literal{value: v, typ: arrow.PrimitiveTypes.Float64}, nil
	case string:
		return &literal{value: v, typ: arrow.BinaryTypes.String}, nil
	}
	return nil, invalid(x.At, "unsupported literal %v", x.Value)
}

func (pl *planner) bindRef(f *frameNode, ref *expr.Ref, path []string, window time.Duration) (bexpr, error) {
	feat, err := pl.feature(f.class, path[0], len(path) == 1, ref.At)
	if err != nil {
		return nil, err
	}
	if feat == nil {
		return nil, invalid(ref.At, "%s has no feature %q%s", f.class.Table, path[0], suggest.DidYouMean(path[0], f.class.FeatureNames()))
	}
	if len(path) > 1 {
		if feat.Kind != features.HasOne {
			if feat.Kind == features.HasMany {
				return pl.bindAgg(f, &expr.Agg{Func: "", Source: &expr.Select{Rel: &expr.Ref{Path: path[:1], At: ref.At}, Project: &expr.Ref{Path: path[1:], At: ref.At}, At: ref.At}, At: ref.At}, window)
			}
			return nil, invalid(ref.At, "%s.%s is not a relation, so %q cannot follow it", f.class.Table, path[0], path[1])
		}
		child, err := pl.child(f, feat)
		if err != nil {
			return nil, err
		}
		inner, err := pl.bindRef(child, ref, path[1:], window)
		if err != nil {
			return nil, err
		}
		return &hasOneRef{child: child, inner: inner, path: strings.Join(path, ".")}, nil
	}
	switch feat.Kind {
	case features.HasOne, features.HasMany:
		return nil, invalid(ref.At, "%s.%s is a relation; name one of its features (%s.<feature>)", f.class.Table, feat.Name, feat.Name)
	case features.WindowedGroup:
		return nil, invalid(ref.At, "%s.%s is windowed: name a window, e.g. %s", f.class.Table, feat.Name, feat.Windows[0].Name)
	}
	idx, err := pl.need(f, feat, ref.At)
	if err != nil {
		return nil, err
	}
	return &colRef{idx: idx, name: feat.Name, typ: f.cols[idx].typ}, nil
}

func (pl *planner) bindCall(at expr.Pos, name string, args []bexpr) (bexpr, error) {
	types := make([]arrow.DataType, len(args))
	for i, a := range args {
		types[i] = a.dataType()
	}
	fn, err := pl.funcs.Bind(name, types)
	if err != nil {
		return nil, invalid(at, "%v", err)
	}
	c := &call{fn: fn, args: args}
	c.key = pl.callKey(c)
	return c, nil
}

// callKey is c's memo key, interned: a short name per distinct call of
// the plan, made of its arguments' keys, so a key's length is the call's
// arity and binding stays linear in the expression's size (spelling every
// call's sub-tree out made binding quadratic in its depth). Equal calls
// get the same name, which is what shares their value in a frame.
func (pl *planner) callKey(c *call) string {
	full := memoKey(c)
	if k, ok := pl.keys[full]; ok {
		return k
	}
	if pl.keys == nil {
		pl.keys = map[string]string{}
	}
	k := "#" + strconv.Itoa(len(pl.keys))
	pl.keys[full] = k
	return k
}

// memoKey is a bound expression's identity within its frame: equal keys
// are equal values. Unlike String it names columns and child frames by
// position and includes what binding decided (an aggregation's window
// filter), so two windows of one windowed feature never share a key.
func memoKey(b bexpr) string {
	switch b := b.(type) {
	case *colRef:
		return "$" + strconv.Itoa(b.idx)
	case *hasOneRef:
		return "one" + strconv.Itoa(b.child.id) + "." + memoKey(b.inner)
	case *literal:
		return b.String() + "::" + b.typ.String()
	case *call:
		if b.key != "" { // computed once, when it was bound
			return b.key
		}
		args := make([]string, len(b.args))
		for i, a := range b.args {
			args[i] = memoKey(a)
		}
		return b.fn.Name + "(" + strings.Join(args, ", ") + ")::" + b.fn.Out.String()
	case *castTo:
		return "cast(" + memoKey(b.x) + ")::" + b.typ.String()
	case *aggregation:
		parts := []string{b.fn, strconv.Itoa(b.child.id)}
		for _, x := range []bexpr{b.value, b.sortBy} {
			if x != nil {
				parts = append(parts, memoKey(x))
			} else {
				parts = append(parts, "-")
			}
		}
		for _, flt := range b.filters {
			parts = append(parts, memoKey(flt))
		}
		return "agg(" + strings.Join(parts, "; ") + ")"
	case *manyRows:
		return "rows" + strconv.Itoa(b.child.id)
	}
	return b.String()
}

func (pl *planner) bindFuncCall(f *frameNode, x *expr.Call, window time.Duration) (bexpr, error) {
	args := make([]bexpr, len(x.Args))
	for i, a := range x.Args {
		b, err := pl.bind(f, a, window)
		if err != nil {
			return nil, err
		}
		args[i] = b
	}
	if len(x.Named) > 0 {
		params := pl.funcs.Params(x.Func)
		for _, na := range x.Named {
			pos := -1
			for i, p := range params {
				if p == na.Name {
					pos = i
				}
			}
			if pos < 0 {
				return nil, invalid(x.At, "F.%s has no parameter %q%s", x.Func, na.Name, suggest.DidYouMean(na.Name, params))
			}
			for len(args) <= pos {
				args = append(args, nil)
			}
			if args[pos] != nil {
				return nil, invalid(x.At, "F.%s: parameter %q given twice", x.Func, na.Name)
			}
			b, err := pl.bind(f, na.Value, window)
			if err != nil {
				return nil, err
			}
			args[pos] = b
		}
		for i, a := range args {
			if a == nil {
				return nil, invalid(x.At, "F.%s: missing parameter %q", x.Func, params[i])
			}
		}
	}
	return pl.bindCall(x.At, x.Func, args)
}

// bindWhen turns when/then/otherwise into nested if_then_else calls.
func (pl *planner) bindWhen(f *frameNode, x *expr.When, window time.Duration) (bexpr, error) {
	var acc bexpr
	if x.Else != nil {
		b, err := pl.bind(f, x.Else, window)
		if err != nil {
			return nil, err
		}
		acc = b
	} else {
		acc = &literal{typ: arrow.Null}
	}
	for i := len(x.Conds) - 1; i >= 0; i-- {
		c, err := pl.bind(f, x.Conds[i], window)
		if err != nil {
			return nil, err
		}
		t, err := pl.bind(f, x.Thens[i], window)
		if err != nil {
			return nil, err
		}
		if acc, err = pl.bindCall(x.At, "if_then_else", []bexpr{c, t, acc}); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func (pl *planner) bindAgg(f *frameNode, x *expr.Agg, window time.Duration) (bexpr, error) {
	sel := x.Source
	ref, ok := sel.Rel.(*expr.Ref)
	if !ok {
		return nil, invalid(x.At, "%s: aggregations apply to a has-many relation such as _.reviews", x)
	}
	// Follow has-one links up to the has-many relation: _.user.reviews[...].
	if len(ref.Path) > 1 {
		feat := f.class.Feature(ref.Path[0])
		if feat == nil || feat.Kind != features.HasOne {
			if feat == nil {
				return nil, invalid(ref.At, "%s has no feature %q%s", f.class.Table, ref.Path[0], suggest.DidYouMean(ref.Path[0], f.class.FeatureNames()))
			}
			return nil, invalid(ref.At, "%s.%s is not a has-one relation", f.class.Table, ref.Path[0])
		}
		child, err := pl.child(f, feat)
		if err != nil {
			return nil, err
		}
		inner := *x
		innerSel := *sel
		innerSel.Rel = &expr.Ref{Path: ref.Path[1:], At: ref.At}
		inner.Source = &innerSel
		b, err := pl.bindAgg(child, &inner, window)
		if err != nil {
			return nil, err
		}
		return &hasOneRef{child: child, inner: b, path: x.String()}, nil
	}
	feat := f.class.Feature(ref.Path[0])
	if feat == nil {
		return nil, invalid(ref.At, "%s has no feature %q%s", f.class.Table, ref.Path[0], suggest.DidYouMean(ref.Path[0], f.class.FeatureNames()))
	}
	if feat.Kind != features.HasMany {
		return nil, invalid(ref.At, "%s.%s is not a has-many relation (DataFrame), so it cannot be aggregated", f.class.Table, feat.Name)
	}
	fn := x.Func
	if fn == "" {
		return nil, invalid(x.At, "%s is a list of values: aggregate it (.sum(), .mean(), ...)", x)
	}
	if !expr.IsAggregation(fn) {
		return nil, invalid(x.At, "unknown aggregation %q%s", fn, suggest.DidYouMean(fn, expr.Aggregations))
	}
	child, err := pl.child(f, feat)
	if err != nil {
		return nil, err
	}
	a := &aggregation{child: child, fn: fn, text: x.String()}
	var slides []*slide
	for _, cond := range sel.Filters {
		b, err := pl.bind(child, cond, window)
		if err != nil {
			return nil, err
		}
		if b.dataType().ID() != arrow.BOOL {
			return nil, invalid(cond.Position(), "filter %s is %s, not a condition", cond, b.dataType())
		}
		if at := windowed(cond); at != nil && isFeature(child, at, child.class.EventTime) {
			op := cond.(*expr.Binary).Op
			slides = append(slides, &slide{filter: len(a.filters), window: window, strict: op == ">" || op == "<"})
		}
		a.filters = append(a.filters, b)
		// A window is bounded on both sides by the datetime it compares
		// with _.chalk_window (DESIGN.md §4): `_.at > _.chalk_window`
		// keeps `now - w < at <= now`. The frame's event time is bounded
		// by the frame already.
		if at := windowed(cond); at != nil && !isFeature(child, at, child.class.EventTime) {
			x, err := pl.bind(child, at, window)
			if err != nil {
				return nil, err
			}
			upper, err := pl.bindCall(cond.Position(), "less_equal", []bexpr{x, &windowStart{}})
			if err != nil {
				return nil, err
			}
			a.filters = append(a.filters, upper)
		}
	}
	var valueType arrow.DataType = arrow.Null
	if sel.Project != nil {
		if a.value, err = pl.bind(child, sel.Project, window); err != nil {
			return nil, err
		}
		valueType = a.value.dataType()
	} else if fn != "count" {
		return nil, invalid(x.At, "%s: %s needs a column to aggregate, e.g. _.%s[_.<column>].%s()", x, fn, feat.Name, fn)
	}
	if x.SortBy != nil {
		if a.sortBy, err = pl.bind(child, x.SortBy, window); err != nil {
			return nil, err
		}
	} else if fn == "max_by" || fn == "min_by" {
		return nil, invalid(x.At, "%s needs a sort key: %s(_.<column>)", fn, fn)
	}
	if a.typ, err = aggregate.OutputType(fn, valueType); err != nil {
		return nil, invalid(x.At, "%s: %v", x, err)
	}
	if len(slides) == 1 && slidable(a, slides[0]) {
		a.slide = slides[0]
	}
	return a, nil
}

// coerce makes b produce feat's declared type, adding its default.
func (pl *planner) coerce(b bexpr, want arrow.DataType, feat *features.Feature) (bexpr, error) {
	got := b.dataType()
	if !arrow.TypeEqual(got, want) {
		switch {
		case got.ID() == arrow.NULL:
			b = &castTo{x: b, typ: want}
		case got.ID() == arrow.INT64 && want.ID() == arrow.FLOAT64,
			got.ID() == arrow.DATE32 && want.ID() == arrow.TIMESTAMP,
			got.ID() == arrow.TIMESTAMP && want.ID() == arrow.TIMESTAMP:
			b = &castTo{x: b, typ: want}
		default:
			return nil, invalid(feat.Pos, "%s is declared %s but its expression %s gives %s", feat.QualifiedName(), feat.Type, feat.Expr, got)
		}
	}
	return b, nil
}

func (b *manyRows) String() string {
	return fmt.Sprintf("%s[%s]", b.path, strings.Join(b.names, ", "))
}
