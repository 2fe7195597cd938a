// Package features is the feature graph: feature classes, their features and
// types, the relations between classes, windowed features and the resolvers
// that produce values. Loaders (pyload for `@features` Python files, sqlload
// for SQL resolvers) build a Graph from a repository folder.
//
// This package reads files and nothing else: it knows no database, no online
// store and no query; the planner turns a Graph into plans.
package features

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fletch-engine/fletch/features/expr"
)

// Pos is a position in a definition file.
type Pos = expr.Pos

// Graph is a loaded feature repository.
type Graph struct {
	Classes      []*Class
	SQLResolvers []*SQLResolver
	PyResolvers  []*PyResolver
	// Dir is the repository's folder as Load was given it ("" for a graph
	// built otherwise): the positions of its definitions start with it.
	Dir string
	// Warnings are what the loaders accepted but would rather the user
	// knew (a resolver column that fills no feature, and is ignored), each
	// a *DefinitionError at its position. `fletch validate` prints them
	// (`--strict` fails on them), `fletch serve` logs them at start.
	Warnings []error

	byName map[string]*Class // by Python name and by table name
}

// Class is a `@features` class. It is a table of the SQL surface.
type Class struct {
	Name     string // Python name: UserItem
	Table    string // snake case: user_item
	Features []*Feature
	// Primary is the primary key feature: `id`, `Primary[...]` or
	// `feature(primary=True)`.
	Primary *Feature
	// EventTime is the FeatureTime feature (or a datetime `ts`); nil when
	// the class is timeless.
	EventTime *Feature
	// Options are the decorator's keyword arguments (owner, tags,
	// max_staleness, ...), as written.
	Options map[string]expr.Node
	// MaxStaleness is the class-wide max_staleness, 0 when none.
	MaxStaleness Staleness
	Pos          Pos

	byName map[string]*Feature
}

// FeatureKind says what a feature is.
type FeatureKind int

const (
	// Scalar is a value per row: a column, or an expression.
	Scalar FeatureKind = iota
	// HasOne is a related row of another class (`user: User`).
	HasOne
	// HasMany is the related rows of another class (`reviews: DataFrame[Review]`).
	HasMany
	// WindowedGroup is the `review_count: Windowed[int] = windowed(...)`
	// feature itself; each of its windows is a Scalar feature of its own
	// (see Feature.Windows).
	WindowedGroup
)

// Feature is one feature of a class.
type Feature struct {
	Class *Class
	Name  string // review_count__604800__ for a window of a windowed feature
	Kind  FeatureKind
	Type  Type // for HasOne/HasMany: the element type is Struct of the related class

	Primary   bool
	EventTime bool

	// References is set for a foreign key: `user_id: User.id` → User.id.
	References *Feature
	// Relation is set for HasOne and HasMany features.
	Relation *Relation

	// Expr is the defining expression, nil for a feature a resolver or an
	// input provides. For a window of a windowed feature, the window's own
	// expression (with chalk_window meaning that window).
	Expr expr.Node
	// Raises is set on the outputs of a Python resolver run as expressions
	// (PyExpression): per row, the exception the function raises there, as
	// a string ("ZeroDivisionError: division by zero (get_ratio, line 7)"),
	// null where it raises none. Such rows get a null value and a per-row
	// error. Relative to `_` of the class, as Expr.
	Raises expr.Node
	// Default is the value used where the result would be null.
	Default *expr.Literal

	// Window is set on a window instance: its duration and its group.
	Window *Window
	// Windows lists the window instances of a WindowedGroup.
	Windows []*Feature
	// Materialization is the windowed feature's aggregation tiles
	// (`materialization=` of windowed(...), else of its class's
	// @features(...)); nil when it has none. Set on the group and on each
	// of its windows.
	Materialization *Materialization

	MaxStaleness Staleness
	Min, Max     *expr.Literal
	// Validations bound the feature's values: the keyword arguments
	// min=, max=, min_length=, max_length=, strict= make one, each
	// Validation(...) of validations=[...] another; none without bounds.
	Validations []*Validation
	Description string
	// Options holds every keyword argument of feature(...) / windowed(...)
	// as written, including the ones above.
	Options map[string]expr.Node
	Pos     Pos
}

// ETLOfflineToOnline says whether offline queries write f's values to the
// online store (docs/STORES.md, "Reverse ETL"): its
// feature(etl_offline_to_online=...), else its class's
// @features(etl_offline_to_online=...), else false.
func (f *Feature) ETLOfflineToOnline() bool {
	if b, ok := boolOption(f.Options, "etl_offline_to_online"); ok {
		return b
	}
	if f.Class != nil {
		b, _ := boolOption(f.Class.Options, "etl_offline_to_online")
		return b
	}
	return false
}

// boolOption is the literal True or False of keyword argument name.
func boolOption(opts map[string]expr.Node, name string) (value, ok bool) {
	lit, isLit := opts[name].(*expr.Literal)
	if !isLit {
		return false, false
	}
	value, ok = lit.Value.(bool)
	return value, ok
}

// Validation is the bounds of a feature's values, as Chalk's feature(min=,
// max=, min_length=, max_length=, strict=) give them: inclusive, a null
// value never violates them. A value outside them is an error for its row
// when Strict (it is neither served nor stored), else served and counted.
type Validation struct {
	// Min and Max bound a number (nil: no bound). An int feature's bound
	// written as an int is compared exactly.
	Min, Max *Bound
	// MinLength and MaxLength bound a string's characters (Unicode code
	// points, Python's len) or a list's elements; -1: no bound.
	MinLength, MaxLength int64
	Strict               bool
}

// Bound is one numeric bound as written: an int, or a float.
type Bound struct {
	Int   int64
	Float float64
	IsInt bool
}

func (b *Bound) String() string {
	if b.IsInt {
		return strconv.FormatInt(b.Int, 10)
	}
	return strconv.FormatFloat(b.Float, 'g', -1, 64)
}

// Window is one window of a windowed feature.
type Window struct {
	Label    string        // as written: "7d"
	Duration time.Duration // 7 * 24h
	Group    *Feature      // the WindowedGroup feature
}

// Materialization is a windowed feature's tile configuration, as the seeds
// write it: `{"bucket_duration": "1d"}` or
// `MaterializationWindowConfig(bucket_duration="3d",
// backfill_schedule="0 0 * * *", bucket_durations={"10m": "1d"})`.
// docs/TILES.md says what tiles are.
type Materialization struct {
	// BucketDuration is the bucket of the windows BucketDurations does not
	// name (0: none; then every window must be named there).
	BucketDuration time.Duration
	// BucketDurations maps a window's duration to its bucket duration.
	BucketDurations map[time.Duration]time.Duration
	// BackfillSchedule is the cron of the periodic backfill, "" for none
	// (checked by the loader).
	BackfillSchedule string
	Pos              Pos
}

// Bucket returns the bucket duration of window w (0: w is not covered).
func (m *Materialization) Bucket(w time.Duration) time.Duration {
	if d, ok := m.BucketDurations[w]; ok {
		return d
	}
	return m.BucketDuration
}

// AdHocBucket returns the bucket whose tiles answer a window d that the
// feature does not declare (an ad-hoc "14d"): bucket_duration when set and
// no longer than d, else the finest bucket of the declared windows. ok is
// false when that bucket is longer than d: tiles of complete buckets cannot
// answer a window shorter than one (a declared window's bucket must not be
// longer than it either), so such a window must be declared.
func (m *Materialization) AdHocBucket(windows []*Feature, d time.Duration) (bucket time.Duration, ok bool) {
	bucket = m.BucketDuration
	if bucket == 0 || bucket > d {
		if bs := m.Buckets(windows); len(bs) > 0 && (bucket == 0 || bs[0] < bucket) {
			bucket = bs[0]
		}
	}
	return bucket, bucket > 0 && bucket <= d
}

// Buckets lists the distinct bucket durations of windows, ascending.
func (m *Materialization) Buckets(windows []*Feature) []time.Duration {
	var out []time.Duration
	for _, w := range windows {
		d := m.Bucket(w.Window.Duration)
		if d > 0 && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// Relation joins a class to another. For HasOne, each row of From has at most
// one row of To where To.ToKey == From.FromKey. For HasMany, each row of From
// has the rows of To where To.ToKey == From.FromKey.
type Relation struct {
	From, To *Class
	FromKey  *Feature // User.id for User.reviews; UserItem.user_id for UserItem.user
	ToKey    *Feature // Review.user_id for User.reviews; User.id for UserItem.user
	Many     bool
}

// Staleness is a max_staleness setting. Zero means none (always compute);
// Infinite means a stored value never goes stale.
type Staleness struct {
	Set      bool
	Infinite bool
	Duration time.Duration
}

// SQLResolver is a `.sql` / `.chalk.sql` file.
type SQLResolver struct {
	Name     string // file name without extension
	File     string
	Resolves *Class
	Source   string // the `-- source:` name
	// Headers holds every `-- key: value` header line, source and resolves
	// included.
	Headers map[string]string
	// Timeout bounds each query of the resolver (`-- timeout: 2s`); 0 is
	// the source's own statement timeout.
	Timeout time.Duration
	// Query is the SQL text (headers removed).
	Query string
	// Columns maps result column names to the features they fill, in the
	// order of the select list. Filled by the loader when the select list can
	// be read; otherwise at first execution.
	Columns []ColumnMap
	// Params are the `${now}` / `${class.feature}` placeholders, in order of
	// first appearance; the loader rewrites them to `$1`, `$2`, ...
	Params []Param
	Pos    Pos
}

// ColumnMap maps one result column of a SQL resolver to a feature.
type ColumnMap struct {
	Column  string
	Feature *Feature
}

// Param is a placeholder of a SQL resolver: `${now}` (Now) or
// `${user.id}` (Feature).
type Param struct {
	Text    string
	Now     bool
	Feature *Feature
}

// PyResolver is an `@online` / `@offline` function. Its body runs either as
// fletch expressions (symbolic interpretation at load, Mode PyExpression:
// the outputs' Expr are set) or in a pool of Python worker processes
// (Mode PyWorker), which import File's module and call Name.
type PyResolver struct {
	Name    string
	Online  bool
	Inputs  []PyInput
	Outputs []*Feature
	Pos     Pos

	Mode PyMode
	// Why says why Mode was chosen: for PyWorker the construct (and its
	// position) that needs Python, for PyExpression the size estimate.
	Why string
	// File is the path of the module that defines the function, as loaded.
	File string
}

// PyMode is how a Python resolver's body runs.
type PyMode int

const (
	// PyExpression: compiled to fletch expressions at load time.
	PyExpression PyMode = iota
	// PyWorker: run by CPython in a worker process.
	PyWorker
)

func (m PyMode) String() string {
	if m == PyWorker {
		return "python"
	}
	return "expression"
}

// PyInput is one parameter of a Python resolver.
type PyInput struct {
	Param string
	Path  []string // Review.item.review_count["30d"] → ["item", "review_count__2592000__"]
	Root  *Class
}

// NewGraph returns an empty graph.
func NewGraph() *Graph { return &Graph{byName: map[string]*Class{}} }

// Warnf records a warning at pos.
func (g *Graph) Warnf(pos Pos, format string, args ...any) {
	g.Warnings = append(g.Warnings, Errorf(pos, format, args...))
}

// AddClass adds c to the graph. It returns an error when the name is taken.
func (g *Graph) AddClass(c *Class) error {
	if g.byName == nil {
		g.byName = map[string]*Class{}
	}
	if prev, ok := g.byName[c.Name]; ok {
		return Errorf(c.Pos, "class %s is already defined at %s", c.Name, prev.Pos)
	}
	if c.Table == "" {
		c.Table = SnakeCase(c.Name)
	}
	g.Classes = append(g.Classes, c)
	g.byName[c.Name] = c
	g.byName[c.Table] = c
	return nil
}

// Restricted is g as a reader who may know only the classes visible says
// (by table name) sees it, for reading queries: the other classes are
// unknown to Class and ClassNames, exactly like classes that do not exist.
// The classes are g's own (relations still reach the others; authorizing
// a plan is the caller's work).
func (g *Graph) Restricted(visible func(table string) bool) *Graph {
	r := *g
	r.Classes, r.byName = nil, map[string]*Class{}
	for _, c := range g.Classes {
		if visible(c.Table) {
			r.Classes = append(r.Classes, c)
			r.byName[c.Name] = c
			r.byName[c.Table] = c
		}
	}
	return &r
}

// Class returns the class named name (Python name or table name; case
// insensitive for table names), or nil.
func (g *Graph) Class(name string) *Class {
	if c, ok := g.byName[name]; ok {
		return c
	}
	return g.byName[strings.ToLower(name)]
}

// ClassNames lists the table names of all classes, sorted.
func (g *Graph) ClassNames() []string {
	names := make([]string, 0, len(g.Classes))
	for _, c := range g.Classes {
		names = append(names, c.Table)
	}
	sort.Strings(names)
	return names
}

// AddFeature adds f to c. It returns an error when the name is taken.
func (c *Class) AddFeature(f *Feature) error {
	if c.byName == nil {
		c.byName = map[string]*Feature{}
	}
	if prev, ok := c.byName[f.Name]; ok {
		return Errorf(f.Pos, "feature %s.%s is already defined at %s", c.Name, f.Name, prev.Pos)
	}
	f.Class = c
	c.Features = append(c.Features, f)
	c.byName[f.Name] = f
	return nil
}

// Feature returns the feature named name, or nil. A windowed feature's window
// may be named by its FQN (`review_count__604800__`) or as
// `review_count[7d]`.
func (c *Class) Feature(name string) *Feature {
	if f, ok := c.byName[name]; ok {
		return f
	}
	if i := strings.IndexByte(name, '['); i > 0 && strings.HasSuffix(name, "]") {
		group := c.byName[name[:i]]
		label := strings.Trim(name[i+1:len(name)-1], `"'`)
		if group != nil && group.Kind == WindowedGroup {
			d, err := ParseDuration(label)
			if err != nil {
				return nil
			}
			for _, w := range group.Windows {
				if w.Window.Duration == d {
					return w
				}
			}
		}
	}
	return nil
}

// FeatureNames lists the names of c's features, in definition order.
func (c *Class) FeatureNames() []string {
	names := make([]string, 0, len(c.Features))
	for _, f := range c.Features {
		names = append(names, f.Name)
	}
	return names
}

// QualifiedName is class.feature in table names: user.full_name.
func (f *Feature) QualifiedName() string { return f.Class.Table + "." + f.Name }

// WindowFQN is the fully qualified name of a window of a windowed feature:
// name__<seconds>__.
func WindowFQN(name string, d time.Duration) string {
	return fmt.Sprintf("%s__%d__", name, int64(d/time.Second))
}

// SnakeCase turns a class name into its table name: UserItem → user_item.
func SnakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				prev := s[i-1]
				next := byte(0)
				if i+1 < len(s) {
					next = s[i+1]
				}
				if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') || (next >= 'a' && next <= 'z' && prev >= 'A' && prev <= 'Z') {
					b.WriteByte('_')
				}
			}
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FormatDuration spells d as the seeds write windows and buckets, in its
// largest whole unit: 7d, 36h, 90m, 45s (ParseDuration reads it back);
// any other duration as Go prints it.
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d && d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.name)
		}
	}
	return d.String()
}

// ParseDuration reads a Chalk duration: "7d", "1h30m", "10m", "90s", "2w",
// "infinity" is not a duration (see ParseStaleness).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number", s)
		}
		var n int64
		for _, ch := range rest[:i] {
			n = n*10 + int64(ch-'0')
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		var u time.Duration
		switch unit {
		case "w":
			u = 7 * 24 * time.Hour
		case "d":
			u = 24 * time.Hour
		case "h":
			u = time.Hour
		case "m":
			u = time.Minute
		case "s":
			u = time.Second
		case "ms":
			u = time.Millisecond
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use w, d, h, m, s, ms)", s, unit)
		}
		total += time.Duration(n) * u
	}
	return total, nil
}

// ParseStaleness reads a max_staleness value: a duration or "infinity".
func ParseStaleness(s string) (Staleness, error) {
	if strings.EqualFold(s, "infinity") || strings.EqualFold(s, "inf") {
		return Staleness{Set: true, Infinite: true}, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return Staleness{}, err
	}
	return Staleness{Set: true, Duration: d}, nil
}
