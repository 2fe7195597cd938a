// Package tiles is aggregation tiles (docs/TILES.md): the partial state of
// a windowed aggregation per (key, bucket_start), computed at the source
// (`GROUP BY key, bucket` in its SQL), kept in the offline store, and
// merged per spine row by the planner for materialized offline queries.
//
// It reads feature definitions and talks to sources and the tile store;
// it knows no plan, no query front end and no configuration file: the
// command line opens what it is given, the planner asks it for tiles.
package tiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/aggregate"
)

// Spec is what tiling one windowed aggregation needs, read from its
// definition: `windowed(..., expression=_.rel[value, filters...,
// _.at > _.chalk_window].fn(), materialization=...)`.
type Spec struct {
	Group *features.Feature // the windowed feature (WindowedGroup)
	Rel   *features.Relation
	// Resolver is the SQL resolver of the related class the planner reads
	// the relation's rows from; its columns Key (the relation's foreign
	// key) and Time (the window's datetime feature).
	Resolver  *features.SQLResolver
	Key, Time string
	Fn        string
	// Value and SortBy are SQL over the resolver's row `_r` ("" for none);
	// Where the filters other than the window's, ANDed ("" for none).
	Value, SortBy, Where string
	ValueType            arrow.DataType // nil for count without a projection
	SortType             arrow.DataType
	KeyType              arrow.DataType
	// States are the state columns (aggregate.StateFields).
	States []arrow.Field
}

// Error is a definition that cannot be tiled, at its position.
type Error struct {
	Pos features.Pos
	Msg string
}

func (e *Error) Error() string {
	if e.Pos.Line > 0 {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Msg
}

// Materialized lists the windowed features of g that have a
// materialization, in definition order.
func Materialized(g *features.Graph) []*features.Feature {
	var out []*features.Feature
	for _, c := range g.Classes {
		for _, f := range c.Features {
			if f.Kind == features.WindowedGroup && f.Materialization != nil {
				out = append(out, f)
			}
		}
	}
	return out
}

// SpecFor reads the tiles of windowed feature group from its first
// window's bound expression (every window's differs only in its window).
func SpecFor(g *features.Graph, group *features.Feature) (*Spec, error) {
	name := group.QualifiedName()
	fail := func(pos features.Pos, format string, args ...any) (*Spec, error) {
		return nil, &Error{Pos: pos, Msg: name + ": cannot tile: " + fmt.Sprintf(format, args...)}
	}
	if group.Kind != features.WindowedGroup || len(group.Windows) == 0 || group.Materialization == nil {
		return fail(group.Pos, "it is not a materialized windowed feature")
	}
	agg, ok := group.Windows[0].Expr.(*expr.Agg)
	if !ok || agg.Source == nil {
		return fail(group.Pos, "its expression is not an aggregation over a relation")
	}
	ref, ok := agg.Source.Rel.(*expr.Ref)
	if !ok || len(ref.Path) != 1 {
		return fail(agg.At, "tiles aggregate a has-many relation of %s itself (_.rel[...]), not %s", group.Class.Name, agg.Source.Rel)
	}
	relFeat := group.Class.Feature(ref.Path[0])
	if relFeat == nil || relFeat.Kind != features.HasMany {
		return fail(agg.At, "%s is not a has-many relation", ref)
	}
	s := &Spec{Group: group, Rel: relFeat.Relation, Fn: agg.Func}
	to := s.Rel.To
	for _, r := range g.SQLResolvers {
		if r.Resolves == to && column(r, s.Rel.ToKey) != "" {
			s.Resolver = r
			break
		}
	}
	if s.Resolver == nil {
		return fail(agg.At, "no SQL resolver of %s returns %s", to.Name, s.Rel.ToKey.QualifiedName())
	}
	for _, p := range s.Resolver.Params {
		if !p.Now {
			return fail(s.Resolver.Pos, "resolver %s takes ${%s}: a backfill reads the resolver's whole table, so it may only take ${now}", s.Resolver.Name, p.Text)
		}
	}
	s.Key = column(s.Resolver, s.Rel.ToKey)
	s.KeyType = s.Rel.ToKey.Type.Arrow()
	tr := &translator{r: s.Resolver, class: to}
	var where []string
	for _, f := range agg.Source.Filters {
		if t := windowFilter(f, to); t != nil {
			if s.Time != "" {
				return fail(f.Position(), "two window filters")
			}
			if s.Time = column(s.Resolver, t); s.Time == "" {
				return fail(f.Position(), "the window's %s is not a column of resolver %s", t.QualifiedName(), s.Resolver.Name)
			}
			continue
		}
		sql, err := tr.sql(f)
		if err != nil {
			return fail(f.Position(), "filter %s: %v", f, err)
		}
		where = append(where, "("+sql+")")
	}
	if s.Time == "" {
		return fail(agg.At, "no filter bounds the window: write _.<time> > _.chalk_window")
	}
	s.Where = strings.Join(where, " AND ")
	var err error
	if agg.Source.Project != nil {
		if s.Value, s.ValueType, err = tr.typed(agg.Source.Project); err != nil {
			return fail(agg.Source.Project.Position(), "value %s: %v", agg.Source.Project, err)
		}
	}
	if agg.SortBy != nil {
		if s.SortBy, s.SortType, err = tr.typed(agg.SortBy); err != nil {
			return fail(agg.SortBy.Position(), "sort key %s: %v", agg.SortBy, err)
		}
	}
	if s.States, err = aggregate.StateFields(s.Fn, s.ValueType, s.SortType); err != nil {
		return fail(agg.At, "%v", err)
	}
	return s, nil
}

func column(r *features.SQLResolver, f *features.Feature) string {
	for _, cm := range r.Columns {
		if cm.Feature == f {
			return cm.Column
		}
	}
	return ""
}

// windowFilter returns the datetime feature of class c a filter compares
// with _.chalk_window (`_.at > _.chalk_window`), nil for another filter.
func windowFilter(n expr.Node, c *features.Class) *features.Feature {
	b, ok := n.(*expr.Binary)
	if !ok {
		return nil
	}
	l, r := b.L, b.R
	switch b.Op {
	case ">", ">=":
	case "<", "<=":
		l, r = r, l
	default:
		return nil
	}
	if _, ok := r.(*expr.ChalkWindow); !ok {
		return nil
	}
	ref, ok := l.(*expr.Ref)
	if !ok || len(ref.Path) != 1 {
		return nil
	}
	return c.Feature(ref.Path[0])
}

// Table is the tile table of s at bucket duration d.
func (s *Spec) Table(d time.Duration) string {
	return "fletch_tiles__" + s.Group.Class.Table + "__" + s.Group.Name + "__" + strconv.FormatInt(int64(d/time.Second), 10)
}

// Definition fingerprints what the tiles of s depend on: a tile table
// written under another definition is stale (rebuilt by the next backfill,
// never read by a query).
func (s *Spec) Definition() string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", s.Fn, s.Value, s.SortBy, s.Where, s.Key, s.Time, s.Resolver.Query, s.KeyType)
	for _, f := range s.States {
		fmt.Fprintf(h, "\x00%s %s", f.Name, f.Type)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// translator writes the expressions of a relation's rows as SQL over the
// resolver's row `_r`: columns, literals, arithmetic, comparisons and
// boolean logic, with SQL's null semantics (which are fletch's, DESIGN §4).
type translator struct {
	r     *features.SQLResolver
	class *features.Class
	depth int
}

func (t *translator) typed(n expr.Node) (string, arrow.DataType, error) {
	ref, ok := n.(*expr.Ref)
	if !ok || len(ref.Path) != 1 {
		return "", nil, fmt.Errorf("tiles aggregate a feature of the related rows (_.amount), not an expression")
	}
	f := t.class.Feature(ref.Path[0])
	if f == nil || f.Kind != features.Scalar {
		return "", nil, fmt.Errorf("%s has no feature %q", t.class.Name, ref.Path[0])
	}
	sql, err := t.sql(n)
	return sql, f.Type.Arrow(), err
}

var sqlOps = map[string]string{
	"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
	"+": "+", "-": "-", "*": "*", "and": "AND", "or": "OR", "&": "AND", "|": "OR",
}

func (t *translator) sql(n expr.Node) (string, error) {
	t.depth++
	defer func() { t.depth-- }()
	if t.depth > 32 {
		return "", fmt.Errorf("too deep")
	}
	switch n := n.(type) {
	case *expr.Ref:
		if len(n.Path) != 1 {
			return "", fmt.Errorf("%s goes through a relation: tiles read the related rows' own columns", n)
		}
		f := t.class.Feature(n.Path[0])
		if f == nil || f.Kind != features.Scalar {
			return "", fmt.Errorf("%s has no feature %q", t.class.Name, n.Path[0])
		}
		if c := column(t.r, f); c != "" {
			return `_r.` + quote(c), nil
		}
		if f.Expr != nil && f.Window == nil {
			inner, err := t.sql(f.Expr)
			return "(" + inner + ")", err
		}
		return "", fmt.Errorf("%s is not a column of resolver %s", f.QualifiedName(), t.r.Name)
	case *expr.Literal:
		switch v := n.Value.(type) {
		case nil:
			return "NULL", nil
		case bool:
			return strings.ToUpper(strconv.FormatBool(v)), nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64) + "::DOUBLE PRECISION", nil
		case string:
			return "'" + strings.ReplaceAll(v, "'", "''") + "'", nil
		}
	case *expr.Binary:
		l, err := t.sql(n.L)
		if err != nil {
			return "", err
		}
		r, err := t.sql(n.R)
		if err != nil {
			return "", err
		}
		if n.Op == "/" {
			// fletch divides as floats and answers null on zero.
			return "(CAST(" + l + " AS DOUBLE PRECISION) / NULLIF(CAST(" + r + " AS DOUBLE PRECISION), 0))", nil
		}
		if op, ok := sqlOps[n.Op]; ok {
			return "(" + l + " " + op + " " + r + ")", nil
		}
	case *expr.Unary:
		x, err := t.sql(n.X)
		if err != nil {
			return "", err
		}
		switch n.Op {
		case "not", "~":
			return "(NOT " + x + ")", nil
		case "-":
			return "(-" + x + ")", nil
		}
	}
	return "", fmt.Errorf("%s cannot be computed at the source yet (columns, literals, arithmetic, comparisons, and/or/not)", n)
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
