package planner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/operators/functions"
	"github.com/fletch-engine/fletch/statement"
)

// A plan is a tree of frames. A frame is a set of rows of one feature class
// that the query needs features for: the root frame holds the input rows; a
// has-one frame the distinct related rows of its parent's rows; a has-many
// frame the related rows of each parent row (each tagged with its parent
// row). Each frame lists the columns to compute for its rows, in dependency
// order, and the resolver lookups that fill some of them.
type frameNode struct {
	class *features.Class
	// rel is the relation from the parent frame (nil for the root).
	rel    *features.Relation
	parent *frameNode
	// parentKey is the parent column holding the relation's FromKey.
	parentKey int

	cols      []*column
	byFeature map[*features.Feature]int
	inFlight  map[*features.Feature]bool // cycle detection while planning

	// keyCol is the column the frame's rows are identified by: the root's
	// primary key, a has-one frame's rel.ToKey (filled from the parent).
	// -1 for has-many frames, whose rows come from their origin fetch.
	keyCol int
	// lookups are resolver queries keyed by keyCol (or, in a has-many
	// frame, by the primary key the origin provides).
	lookups []*lookup
	// origin is the fetch a has-many frame's rows come from.
	origin   *lookup
	children []*frameNode

	id      int          // index in Plan.frames
	subtree []*frameNode // the frame and every frame below it
	// sliding: a has-many frame of the related rows once each, by key and
	// event time, which only sliding windows read (window.go).
	sliding bool
}

type colKind int

const (
	colInput  colKind = iota // from the query's input record (root) or the parent (has-one key)
	colLookup                // a resolver column, matched by key
	colOrigin                // a has-many frame's own resolver rows
	colExpr                  // computed
	colTime                  // the evaluation time of each row
	colPython                // an output of a Python resolver's call (python.go)
)

type column struct {
	name    string
	feature *features.Feature
	typ     arrow.DataType
	kind    colKind
	input   int     // colInput at the root: index in the input record
	lookup  *lookup // colLookup, colOrigin, colPython
	field   string  // resolver result column
	expr    bexpr   // colExpr
	// py is the Python resolver a colExpr's feature is an output of
	// (compiled to expressions), and raises the exception it raises per
	// row (features.Feature.Raises).
	py     *features.PyResolver
	raises bexpr
	// def is the feature's default and fill the coalesce that applies it.
	def  *expr.Literal
	fill *functions.Bound

	// Set by Plan.index.
	deps      []colID       // the columns it reads directly
	tiledDeps []colID       // the same in a materialized run (tiles.go)
	srcs      []*lookup     // every resolver lookup its value comes from
	fqn       string        // table.feature, for staleness overrides
	staleness time.Duration // its max_staleness by default, 0 for none
}

// lookup is one resolver query per request for a frame: the resolver's rows
// for the frame's distinct keys.
type lookup struct {
	resolver  *features.SQLResolver
	keyColumn string   // the resolver's result column matched against keys
	keyCol    int      // the frame column holding the keys (-1: the parent's key, for origins)
	fields    []string // the result columns used
	fieldType map[string]arrow.DataType
	eventTime string // the resolver column of the class's event time, "" if none
	// params are, per resolver parameter, the column of the keyed frame
	// (a has-many origin: of the parent frame) whose distinct values bind
	// a `${class.feature}`; -1 for `${now}`.
	params []int
	// py, instead of resolver, is a Python resolver's call for the frame's
	// rows: it fails and taints the columns that read it like a query.
	py *pyCall
}

// Prepare plans st, or returns the cached plan of a statement with the same
// key (statement.Statement.Key).
func (e *Engine) Prepare(st *statement.Statement) (*Plan, error) {
	p, _, err := e.PrepareCached(context.Background(), st)
	return p, err
}

// PrepareCached is Prepare for a caller that may give up (ctx: planning a
// big expression stops within a few nodes of its cancellation or
// deadline, with ctx's error), telling whether the plan came from the
// cache.
func (e *Engine) PrepareCached(ctx context.Context, st *statement.Statement) (p *Plan, cached bool, err error) {
	if st.Class == nil {
		return nil, false, invalid(expr.Pos{}, "the statement names no feature class")
	}
	key := st.Key()
	if p, ok := e.plans.Get(key); ok {
		return p, true, nil
	}
	if p, err = e.plan(ctx, st); err != nil {
		return nil, false, err
	}
	e.plans.Add(key, p, p.size(key))
	return p, false, nil
}

// size estimates the memory a cached plan holds: its key, and per column
// of every frame the column, its bound expression and its dependencies.
// The constants were fitted to a server's resident memory over 200,000
// distinct statements (docs/BENCHMARKS.md, "The plan cache's bound").
func (p *Plan) size(key string) int64 {
	n := int64(2*len(key)) + 2048
	for _, f := range p.frames {
		n += 1024 + 512*int64(len(f.cols))
	}
	return n
}

type planner struct {
	e     *Engine
	funcs *functions.Registry
	// adHoc are the windows this plan names that their windowed feature
	// does not declare (adHocWindow), by table and name.
	adHoc map[string]*features.Feature
	// widest is, per tile table, the longest window the plan reads from it.
	widest map[string]*time.Duration
	// rawGroups are the tile tables read from one relation's rows
	// (tiles.go, rawGroup).
	rawGroups map[string]*rawGroup
	// keys interns the memo keys of the plan's calls (callKey).
	keys map[string]string
	// ctx is the caller's: binding checks it every few nodes (bound).
	ctx   context.Context
	bound int
}

// feature returns c's feature name; last allows an ad-hoc window of a
// windowed aggregation (`total_spend__1209600__` on a feature declaring 7d
// and 30d), one per plan. An error is a window its tiles cannot answer, at.
func (pl *planner) feature(c *features.Class, name string, last bool, at expr.Pos) (*features.Feature, error) {
	if f := c.Feature(name); f != nil || !last {
		return f, nil
	}
	key := c.Table + "." + name
	if f, ok := pl.adHoc[key]; ok {
		return f, nil
	}
	f, err := adHocWindow(c, name)
	if err != nil {
		return nil, invalid(at, "%v", err)
	}
	if f != nil {
		if pl.adHoc == nil {
			pl.adHoc = map[string]*features.Feature{}
		}
		pl.adHoc[key] = f
	}
	return f, nil
}

func invalid(pos expr.Pos, format string, args ...any) *statement.Error {
	return &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf(format, args...), Pos: pos}
}

func (e *Engine) plan(ctx context.Context, st *statement.Statement) (*Plan, error) {
	pl := &planner{e: e, funcs: e.funcs, ctx: ctx}
	class := e.graph.Class(st.Class.Table)
	if class != st.Class {
		return nil, invalid(expr.Pos{}, "feature class %s is not of this engine's feature graph", st.Class.Name)
	}
	root := newFrame(class, nil, nil)
	p := &Plan{engine: e, root: root, timeCol: -1}
	// The input columns.
	for i, f := range st.Inputs {
		if f.Name == statement.AsOfColumn {
			if f.Type.ID() != arrow.TIMESTAMP {
				return nil, invalid(expr.Pos{}, "%s must be a timestamp, not %s", statement.AsOfColumn, f.Type)
			}
			p.timeCol = i
			continue
		}
		feat := class.Feature(f.Name)
		if feat == nil || feat.Kind != features.Scalar {
			return nil, invalid(expr.Pos{}, "input column %q is not a feature of %s%s", f.Name, class.Table, suggest.DidYouMean(f.Name, scalarNames(class)))
		}
		want := feat.Type.Arrow()
		if !coerce.Convertible(f.Type, want) {
			return nil, invalid(expr.Pos{}, "input column %q has type %s; %s.%s is %s", f.Name, f.Type, class.Table, feat.Name, feat.Type)
		}
		root.add(&column{name: feat.Name, feature: feat, typ: want, kind: colInput, input: i})
	}
	if class.Primary == nil {
		return nil, invalid(class.Pos, "feature class %s has no primary key", class.Name)
	}
	key, err := pl.need(root, class.Primary, class.Primary.Pos)
	if err != nil {
		if _, given := root.byFeature[class.Primary]; !given {
			return nil, invalid(expr.Pos{}, "the inputs of a %s query must give %s: %v", class.Table, inputsFor(class), err)
		}
		return nil, err
	}
	if root.cols[key].kind != colInput && root.cols[key].kind != colExpr {
		return nil, invalid(expr.Pos{}, "the inputs of a %s query must give %s", class.Table, inputsFor(class))
	}
	root.keyCol = key
	// The outputs.
	var fields []arrow.Field
	for i, o := range st.Outputs {
		outs, err := pl.bindOutput(root, o)
		if err != nil {
			return nil, outputError(st, i, err)
		}
		for _, out := range outs {
			p.outputs = append(p.outputs, out.idx)
			fields = append(fields, arrow.Field{Name: out.name, Type: root.cols[out.idx].typ, Nullable: true})
		}
	}
	if err := pl.planLookups(root); err != nil {
		return nil, err
	}
	p.schema = arrow.NewSchema(fields, nil)
	p.index()
	p.markSliding()
	p.fuse()
	return p, nil
}

// outputError is err, binding output i of st, naming the output when the
// statement has no text for a position to point into (the native query
// lists its outputs as JSON strings).
func outputError(st *statement.Statement, i int, err error) error {
	var se *statement.Error
	if st.Text != "" || !errors.As(err, &se) {
		return err
	}
	e := *se
	e.Msg = fmt.Sprintf("outputs[%d] %q: %s", i, st.Outputs[i].Name, e.Msg)
	if e.Pos.Line > 0 {
		e.Msg = fmt.Sprintf("outputs[%d] %q: %s: %s", i, st.Outputs[i].Name, e.Pos, se.Msg)
		e.Pos = expr.Pos{}
	}
	return &e
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

// inputsFor says which inputs identify rows of c.
func inputsFor(c *features.Class) string {
	if c.Primary.Expr == nil {
		return c.Table + "." + c.Primary.Name
	}
	var refs []string
	expr.Walk(c.Primary.Expr, func(n expr.Node) bool {
		if r, ok := n.(*expr.Ref); ok {
			refs = append(refs, c.Table+"."+strings.Join(r.Path, "."))
		}
		return true
	})
	return c.Table + "." + c.Primary.Name + " or " + strings.Join(refs, " and ")
}

func newFrame(c *features.Class, parent *frameNode, rel *features.Relation) *frameNode {
	f := &frameNode{class: c, parent: parent, rel: rel, keyCol: -1,
		byFeature: map[*features.Feature]int{}, inFlight: map[*features.Feature]bool{}}
	if parent != nil {
		parent.children = append(parent.children, f)
	}
	return f
}

func (f *frameNode) add(c *column) int {
	f.cols = append(f.cols, c)
	i := len(f.cols) - 1
	if c.feature != nil {
		f.byFeature[c.feature] = i
	}
	return i
}

// child returns the frame for relation feature rf of f, creating it.
func (pl *planner) child(f *frameNode, rf *features.Feature) (*frameNode, error) {
	for _, c := range f.children {
		if c.rel == rf.Relation {
			return c, nil
		}
	}
	rel := rf.Relation
	parentKey, err := pl.need(f, rel.FromKey, rf.Pos)
	if err != nil {
		return nil, err
	}
	c := newFrame(rel.To, f, rel)
	c.parentKey = parentKey
	if !rel.Many {
		c.keyCol = c.add(&column{name: rel.ToKey.Name, feature: rel.ToKey, typ: rel.ToKey.Type.Arrow(), kind: colInput})
		return c, nil
	}
	// A has-many frame is made of the rows of the resolver that gives the
	// related class's foreign key.
	r := pl.resolverFor(rel.ToKey)
	if r == nil {
		return nil, &statement.Error{Kind: statement.InvalidInput, Pos: rf.Pos, Msg: fmt.Sprintf("no SQL resolver provides %s, needed to find the %s of a %s", rel.ToKey.QualifiedName(), rf.Name, f.class.Table)}
	}
	c.origin = pl.newLookup(r, rel.ToKey)
	c.origin.keyCol = -1
	if err := pl.bindParams(f, c.origin); err != nil {
		return nil, err
	}
	c.add(&column{name: rel.ToKey.Name, feature: rel.ToKey, typ: rel.ToKey.Type.Arrow(), kind: colOrigin, lookup: c.origin, field: c.origin.keyColumn})
	return c, nil
}

func (pl *planner) resolverFor(feat *features.Feature) *features.SQLResolver {
	for _, r := range pl.e.graph.SQLResolvers {
		if r.Resolves != feat.Class {
			continue
		}
		if columnFor(r, feat) != "" {
			return r
		}
	}
	return nil
}

func columnFor(r *features.SQLResolver, feat *features.Feature) string {
	for _, cm := range r.Columns {
		if cm.Feature == feat {
			return cm.Column
		}
	}
	return ""
}

func (pl *planner) newLookup(r *features.SQLResolver, key *features.Feature) *lookup {
	l := &lookup{resolver: r, keyColumn: columnFor(r, key), fieldType: map[string]arrow.DataType{}}
	l.use(l.keyColumn, key.Type.Arrow())
	if et := r.Resolves.EventTime; et != nil {
		if col := columnFor(r, et); col != "" {
			l.eventTime = col
			l.use(col, et.Type.Arrow())
		}
	}
	return l
}

func (l *lookup) use(field string, dt arrow.DataType) {
	if _, ok := l.fieldType[field]; ok {
		return
	}
	l.fields = append(l.fields, field)
	l.fieldType[field] = dt
}

// need plans feature feat in frame f and returns its column.
func (pl *planner) need(f *frameNode, feat *features.Feature, at expr.Pos) (int, error) {
	if i, ok := f.byFeature[feat]; ok {
		return i, nil
	}
	if f.inFlight[feat] {
		return 0, &statement.Error{Kind: statement.InvalidInput, Pos: feat.Pos, Msg: fmt.Sprintf("feature %s depends on itself", feat.QualifiedName())}
	}
	f.inFlight[feat] = true
	defer delete(f.inFlight, feat)
	col := &column{name: feat.Name, feature: feat, typ: feat.Type.Arrow(), def: feat.Default}
	if col.def != nil {
		lit, err := bindLiteral(col.def)
		if err != nil {
			return 0, err
		}
		if col.fill, err = pl.funcs.Bind("coalesce", []arrow.DataType{col.typ, lit.dataType()}); err != nil {
			return 0, invalid(feat.Pos, "default of %s: %v", feat.QualifiedName(), err)
		}
		if !arrow.TypeEqual(col.fill.Out, col.typ) {
			return 0, invalid(feat.Pos, "default %s of %s is not a %s", col.def, feat.QualifiedName(), feat.Type)
		}
	}
	switch {
	case feat.Kind != features.Scalar:
		return 0, invalid(at, "%s is a relation, not a value: name one of its features (%s.<feature>)", feat.QualifiedName(), feat.Name)
	case f.origin != nil && columnFor(f.origin.resolver, feat) != "":
		col.kind, col.lookup, col.field = colOrigin, f.origin, columnFor(f.origin.resolver, feat)
		f.origin.use(col.field, col.typ)
	case feat.Expr != nil:
		w := time.Duration(0)
		if feat.Window != nil {
			w = feat.Window.Duration
		}
		b, err := pl.bind(f, feat.Expr, w)
		if err != nil {
			return 0, err
		}
		if b, err = pl.coerce(b, col.typ, feat); err != nil {
			return 0, err
		}
		pl.attachTiles(feat, b)
		col.kind, col.expr = colExpr, b
		if col.py = pl.pyResolverFor(feat); col.py != nil && feat.Raises != nil {
			if col.raises, err = pl.bind(f, feat.Raises, w); err != nil {
				return 0, err
			}
		}
	default:
		r := pl.resolverFor(feat)
		if r == nil {
			if pr := pl.pyResolverFor(feat); pr != nil {
				return pl.needPython(f, col, pr)
			}
			return 0, &statement.Error{Kind: statement.InvalidInput, Pos: at, Msg: fmt.Sprintf("nothing provides %s: no SQL resolver returns it and it has no expression; give it as an input", feat.QualifiedName())}
		}
		l, err := pl.lookupIn(f, r, at)
		if err != nil {
			return 0, err
		}
		col.kind, col.lookup, col.field = colLookup, l, columnFor(r, feat)
		l.use(col.field, col.typ)
	}
	return f.add(col), nil
}

// lookupIn returns frame f's lookup of resolver r, keyed by the frame's key
// (a has-many frame's key is its class's primary key, from its origin).
func (pl *planner) lookupIn(f *frameNode, r *features.SQLResolver, at expr.Pos) (*lookup, error) {
	for _, l := range f.lookups {
		if l.resolver == r {
			return l, nil
		}
	}
	keyFeat := f.class.Primary
	keyCol := f.keyCol
	if f.rel != nil && !f.rel.Many {
		keyFeat = f.rel.ToKey
	}
	if keyCol < 0 {
		if keyFeat == nil {
			return nil, invalid(at, "%s has no primary key to look up resolver %s by", f.class.Name, r.Name)
		}
		k, err := pl.need(f, keyFeat, at)
		if err != nil {
			return nil, err
		}
		keyCol = k
	}
	if columnFor(r, keyFeat) == "" {
		return nil, invalid(r.Pos, "resolver %s cannot be looked up: it does not return %s", r.Name, keyFeat.QualifiedName())
	}
	l := pl.newLookup(r, keyFeat)
	l.keyCol = keyCol
	if err := pl.bindParams(f, l); err != nil {
		return nil, err
	}
	f.lookups = append(f.lookups, l)
	return l, nil
}

// bindParams plans the columns of frame f that l's `${class.feature}`
// parameters read: features of f's class.
func (pl *planner) bindParams(f *frameNode, l *lookup) error {
	for _, p := range l.resolver.Params {
		if p.Now {
			l.params = append(l.params, -1)
			continue
		}
		if p.Feature.Class != f.class {
			return &statement.Error{Kind: statement.Unsupported, Pos: l.resolver.Pos, Msg: fmt.Sprintf("resolver %s: ${%s} names a feature of %s, but the resolver is looked up for rows of %s: a parameter must be a feature of those rows", l.resolver.Name, p.Text, p.Feature.Class.Name, f.class.Name)}
		}
		idx, err := pl.need(f, p.Feature, l.resolver.Pos)
		if err != nil {
			return err
		}
		l.params = append(l.params, idx)
	}
	return nil
}

// planLookups orders each frame's lookups deterministically (for explain)
// and checks every frame below f.
func (pl *planner) planLookups(f *frameNode) error {
	sort.SliceStable(f.lookups, func(i, j int) bool { return f.lookups[i].resolver.Name < f.lookups[j].resolver.Name })
	for _, c := range f.children {
		if err := pl.planLookups(c); err != nil {
			return err
		}
	}
	return nil
}

type boundOutput struct {
	name string
	idx  int
}

// bindOutput plans one requested output in the root frame. A windowed
// feature named without a window expands to all its windows.
func (pl *planner) bindOutput(root *frameNode, o statement.Output) ([]boundOutput, error) {
	x := o.Expr
	name := o.Name
	if a, ok := x.(*expr.Alias); ok {
		x, name = a.X, a.Name
	}
	if ref, ok := x.(*expr.Ref); ok {
		_, feat, err := pl.resolvePath(root, ref)
		if err != nil {
			return nil, err
		}
		if feat.Kind == features.WindowedGroup {
			var outs []boundOutput
			prefix := strings.Join(ref.Path[:len(ref.Path)-1], ".")
			for _, w := range feat.Windows {
				wref := &expr.Ref{Path: append(append([]string{}, ref.Path[:len(ref.Path)-1]...), w.Name), At: ref.At}
				b, err := pl.bind(root, wref, 0)
				if err != nil {
					return nil, err
				}
				n := w.Name
				if prefix != "" {
					n = prefix + "." + n
				}
				outs = append(outs, boundOutput{name: n, idx: outputColumn(root, n, b)})
			}
			return outs, nil
		}
		switch feat.Kind {
		case features.HasOne:
			// A has-one names all the related row's features: one column each.
			var outs []boundOutput
			for _, sf := range feat.Relation.To.Features {
				if sf.Kind != features.Scalar {
					continue
				}
				path := append(append([]string{}, ref.Path...), sf.Name)
				b, err := pl.bind(root, &expr.Ref{Path: path, At: ref.At}, 0)
				if err != nil {
					return nil, err
				}
				n := strings.Join(path, ".")
				outs = append(outs, boundOutput{name: n, idx: outputColumn(root, n, b)})
			}
			return outs, nil
		case features.HasMany:
			b, err := pl.bindMany(root, ref)
			if err != nil {
				return nil, err
			}
			if name == "" {
				name = strings.Join(ref.Path, ".")
			}
			return []boundOutput{{name: name, idx: root.add(&column{name: name, typ: b.dataType(), kind: colExpr, expr: b})}}, nil
		}
		if name == "" {
			name = strings.Join(ref.Path, ".")
		}
	}
	if name == "" {
		name = x.String()
	}
	b, err := pl.bind(root, x, 0)
	if err != nil {
		return nil, err
	}
	return []boundOutput{{name: name, idx: outputColumn(root, name, b)}}, nil
}

// outputColumn is the root column of an output bound to b: a feature of the
// root frame is its own column (so it is read from and written to the
// online store as the feature, and its cells' hits are its own), anything
// else a column computing b.
func outputColumn(root *frameNode, name string, b bexpr) int {
	if c, ok := b.(*colRef); ok {
		return c.idx
	}
	return root.add(&column{name: name, typ: b.dataType(), kind: colExpr, expr: b})
}

// bindMany binds a has-many relation named as an output (`reviews`,
// `user.reviews`): the related rows with all their scalar features.
func (pl *planner) bindMany(f *frameNode, ref *expr.Ref) (bexpr, error) {
	if len(ref.Path) > 1 {
		child, err := pl.child(f, f.class.Feature(ref.Path[0]))
		if err != nil {
			return nil, err
		}
		inner, err := pl.bindMany(child, &expr.Ref{Path: ref.Path[1:], At: ref.At})
		if err != nil {
			return nil, err
		}
		return &hasOneRef{child: child, inner: inner, path: strings.Join(ref.Path, ".")}, nil
	}
	child, err := pl.child(f, f.class.Feature(ref.Path[0]))
	if err != nil {
		return nil, err
	}
	m := &manyRows{child: child, path: ref.Path[0]}
	var fields []arrow.Field
	for _, sf := range child.class.Features {
		if sf.Kind != features.Scalar {
			continue
		}
		idx, err := pl.need(child, sf, ref.At)
		if err != nil {
			return nil, err
		}
		m.cols = append(m.cols, idx)
		m.names = append(m.names, sf.Name)
		fields = append(fields, arrow.Field{Name: sf.Name, Type: child.cols[idx].typ, Nullable: true})
	}
	m.typ = arrow.ListOf(arrow.StructOf(fields...))
	return m, nil
}

// resolvePath follows a reference's path from frame f's class: every name but
// the last must be a has-one relation.
func (pl *planner) resolvePath(f *frameNode, ref *expr.Ref) (*features.Class, *features.Feature, error) {
	c := f.class
	for i, name := range ref.Path {
		feat, err := pl.feature(c, name, i == len(ref.Path)-1, ref.At)
		if err != nil {
			return nil, nil, err
		}
		if feat == nil {
			return nil, nil, invalid(ref.At, "%s has no feature %q%s", c.Table, name, suggest.DidYouMean(name, c.FeatureNames()))
		}
		if i == len(ref.Path)-1 {
			return c, feat, nil
		}
		if feat.Kind == features.HasMany {
			return nil, nil, invalid(ref.At, "%s.%s is a has-many relation (DataFrame): aggregate it, e.g. %s[_.%s].mean()", c.Table, name, name, ref.Path[i+1])
		}
		if feat.Kind != features.HasOne {
			return nil, nil, invalid(ref.At, "%s.%s is not a relation, so %q cannot follow it", c.Table, name, ref.Path[i+1])
		}
		c = feat.Relation.To
	}
	return nil, nil, invalid(ref.At, "empty reference")
}
