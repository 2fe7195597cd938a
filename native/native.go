// Package native is the front end of the native feature query: a JSON
// command (docs/NATIVE.md) and the schema of the Arrow input rows that
// follow it become a statement. It is what the SDKs' query, query_bulk and
// offline_query send, with no SQL in between.
//
// It knows the command's JSON, the feature graph and the statement type,
// and nothing of Flight, gRPC, the other front ends or execution. `_`
// expressions among the outputs are read by the parser it is given
// (Expressions): the feature loader's own, so that users meet one dialect,
// without this package linking it.
package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/statement"
)

// Command is the JSON a native feature query's FlightDescriptor carries
// (type CMD). The top-level key names the command, so more can be added
// without ambiguity.
type Command struct {
	Query *Query `json:"query"`
}

// Query is one feature query. See docs/NATIVE.md for the meaning of each
// field; the zero value of every optional field is the default.
type Query struct {
	// Class is the feature class (table or Python name). Empty means the
	// class the input columns are qualified by (`user.id`).
	Class string `json:"class,omitempty"`
	// Outputs are feature paths (`full_name`, `user.full_name`,
	// `item.title`, `review_count__604800__`, `review_count[7d]`) or `_`
	// expressions (`F.lower(_.first_name)`). Empty means every scalar
	// feature of the class.
	Outputs []string `json:"outputs,omitempty"`
	// Now is the evaluation time of rows without their own __as_of__
	// (RFC 3339); empty is the server's clock.
	Now string `json:"now,omitempty"`
	// Staleness overrides max_staleness: `class.feature` or "*" to a
	// duration ("0s" always computes, "infinity" accepts any age).
	Staleness map[string]string `json:"staleness,omitempty"`
	// Meta adds a `<output>.__hit__` boolean column per output: whether each
	// cell came from the online store.
	Meta bool `json:"meta,omitempty"`
	// Partial nulls the outputs whose source fails and reports them in the
	// summary instead of failing the query.
	Partial bool `json:"partial,omitempty"`
	// Explain answers the plan (in the summary) instead of running it.
	Explain bool `json:"explain,omitempty"`
	// Analyze runs the input rows and answers the plan (in the summary)
	// with what each of its stages did, instead of the answer: EXPLAIN
	// ANALYZE.
	Analyze bool `json:"analyze,omitempty"`
	// PlannerOptions are Chalk's planner options (docs/TILES.md):
	// use_materialized_offline_query and
	// align_offline_chalk_window_with_materialization (true or false).
	PlannerOptions map[string]any `json:"planner_options,omitempty"`
	// RecomputeFeatures is Chalk's recompute_features: true (the default)
	// computes every output; false reads the outputs that are features of
	// the class from the offline store, as of each row's time (the values
	// served then); a list of features recomputes those and reads the
	// others (docs/STORES.md, "Reading the offline store").
	RecomputeFeatures any `json:"recompute_features,omitempty"`
}

// plannerOptions are the planner_options a native query takes.
var plannerOptions = []string{"use_materialized_offline_query", "align_offline_chalk_window_with_materialization"}

// Expressions reads one `_` expression over class c (`F.lower(_.first_name)`)
// into its linked syntax tree, with positions within src.
type Expressions func(c *features.Class, src string) (expr.Node, error)

// Reader reads native queries against one feature graph. A service sends
// the same few commands again and again, so the statements of the commands
// read last are remembered (decoding the JSON was 7% of a cached
// one-entity query), within a bounded memory. It is safe for concurrent
// use.
type Reader struct {
	graph *features.Graph
	exprs Expressions
	read  *lru.Cache[readKey, *statement.Statement]
}

// readKey is a command and the input columns it is read with.
type readKey struct {
	cmd, inputs string
}

// NewReader returns a reader of native queries against g, reading `_`
// expressions with exprs and remembering at most maxEntries statements in
// about maxBytes.
func NewReader(g *features.Graph, exprs Expressions, maxEntries int, maxBytes int64) *Reader {
	return &Reader{graph: g, exprs: exprs, read: lru.New[readKey, *statement.Statement](maxEntries, maxBytes, nil)}
}

// Read is the statement of cmd over input rows of schema inputs, whose
// columns name features of the class (`id`, or qualified: `user.id`) or
// __as_of__. A statement with Options.Now zero runs at the server's clock.
func (r *Reader) Read(cmd []byte, inputs *arrow.Schema) (*statement.Statement, error) {
	k := readKey{cmd: string(cmd), inputs: inputs.String()}
	if st, ok := r.read.Get(k); ok {
		return st, nil
	}
	q, err := Decode(cmd)
	if err != nil {
		return nil, err
	}
	st, err := r.statement(q, inputs)
	if err != nil {
		return nil, err
	}
	r.read.Add(k, st, int64(len(k.cmd)+len(k.inputs)+len(st.Key()))*4+512)
	return st, nil
}

// ErrorAsSeen is the error of reading cmd for a caller who may know only
// the classes visible says (by table name), against the graph as it sees
// it (features.Graph.Restricted): a class it may not read is unknown to
// it, exactly like one that does not exist, and no name of one is
// suggested. Nil when cmd reads fine so. Not cached: the server asks it
// only of queries that fail or name a hidden class (NamesHidden).
func (r *Reader) ErrorAsSeen(cmd []byte, inputs *arrow.Schema, visible func(table string) bool) error {
	q, err := Decode(cmd)
	if err != nil {
		return err
	}
	_, err = (&Reader{graph: r.graph.Restricted(visible), exprs: r.exprs}).statement(q, inputs)
	return err
}

// NamesHidden says whether st names a class visible does not show: its
// class or a staleness key's.
func NamesHidden(st *statement.Statement, visible func(table string) bool) bool {
	if !visible(st.Class.Table) {
		return true
	}
	for k := range st.Options.Staleness {
		if c, _, ok := strings.Cut(k, "."); ok && !visible(c) {
			return true
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return statement.Errorf(statement.InvalidInput, expr.Pos{}, "native query: "+format, args...)
}

// Decode reads a command strictly: an unknown field is a typo worth naming,
// not something to ignore.
func Decode(cmd []byte) (*Query, error) {
	if len(bytes.TrimSpace(cmd)) == 0 || bytes.TrimSpace(cmd)[0] != '{' {
		return nil, statement.Errorf(statement.InvalidInput, expr.Pos{}, `the descriptor must be a CMD holding a native feature query, {"query": {...}} (docs/NATIVE.md)`)
	}
	var c Command
	d := json.NewDecoder(bytes.NewReader(cmd))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, invalid("invalid JSON at byte %d: %v", se.Offset, se)
		case errors.As(err, &te):
			return nil, invalid("%q at byte %d must be a %s, not a JSON %s", te.Field, te.Offset, te.Type, te.Value)
		}
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return nil, invalid("unknown field %q%s", f, suggest.DidYouMean(f, jsonFields()))
		}
		return nil, invalid("%v", err)
	}
	if d.More() {
		return nil, invalid("one JSON object expected, found more after it")
	}
	if c.Query == nil {
		return nil, invalid(`missing "query": the command is {"query": {"outputs": [...], ...}}`)
	}
	return c.Query, nil
}

func jsonFields() []string {
	return []string{"query", "class", "outputs", "now", "staleness", "meta", "partial", "explain", "analyze", "planner_options", "recompute_features"}
}

// statement checks q against the graph and the input schema.
func (r *Reader) statement(q *Query, inputs *arrow.Schema) (*statement.Statement, error) {
	c, err := r.classOf(q, inputs)
	if err != nil {
		return nil, err
	}
	var outputs []statement.Output
	if len(q.Outputs) == 0 {
		for _, f := range statement.Columns(c) {
			outputs = append(outputs, statement.Output{Expr: &expr.Ref{Path: []string{f.Name}}, Name: f.Name})
		}
	}
	for i, text := range q.Outputs {
		o, err := r.output(c, i, text)
		if err != nil {
			return nil, err
		}
		outputs = append(outputs, o)
	}
	fields := inputs.Fields()
	for i := range fields {
		fields[i].Name = unqualified(c, fields[i].Name)
	}
	st, err := statement.New(c, fields, outputs)
	if err != nil {
		return nil, err
	}
	st.Options = statement.Options{Meta: q.Meta, Partial: q.Partial, Explain: q.Explain || q.Analyze, Analyze: q.Analyze}
	if q.Now != "" {
		if st.Options.Now, err = coerce.ParseTime(q.Now); err != nil {
			return nil, invalid("now: %v (use RFC 3339, e.g. 2026-03-01T12:00:00Z)", err)
		}
	}
	if st.Options.Staleness, err = r.staleness(q.Staleness); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(q.PlannerOptions)) {
		b, ok := q.PlannerOptions[k].(bool)
		switch {
		case !slices.Contains(plannerOptions, k):
			return nil, invalid("unknown planner option %q%s (known: %s)", k, suggest.DidYouMean(k, plannerOptions), strings.Join(plannerOptions, ", "))
		case !ok:
			return nil, invalid("planner option %s must be true or false, not %v", k, q.PlannerOptions[k])
		case k == plannerOptions[0]:
			st.Options.Materialized = b
		default:
			st.Options.AlignWindows = b
		}
	}
	if st.Options.FromLog, st.Options.Recompute, err = recomputeFeatures(c, q.RecomputeFeatures); err != nil {
		return nil, err
	}
	return st, nil
}

// recomputeFeatures reads recompute_features: true or absent computes
// everything, false reads every output it can from the offline store, a
// list of feature names recomputes those and reads the others. A window
// written as outputs write them (`total["7d"]`, `user.total[7d]`) is named
// by its FQN, as the planner knows it.
func recomputeFeatures(c *features.Class, v any) (fromLog bool, recompute []string, err error) {
	switch v := v.(type) {
	case nil:
		return false, nil, nil
	case bool:
		return !v, nil, nil
	case []any:
		for _, f := range v {
			name, ok := f.(string)
			if !ok {
				return false, nil, invalid("recompute_features must be true, false or a list of feature names, found %v in the list", f)
			}
			if m := windowPath.FindStringSubmatch(strings.TrimSpace(name)); m != nil {
				d, err := features.ParseDuration(m[2] + m[3] + m[4])
				if err != nil {
					return false, nil, invalid("recompute_features: %q: %v", name, err)
				}
				name = c.Table + "." + features.WindowFQN(unqualified(c, m[1]), d)
			}
			recompute = append(recompute, name)
		}
		return true, recompute, nil
	}
	return false, nil, invalid("recompute_features must be true, false or a list of feature names, not %v", v)
}

// classOf finds the query's class: named, or the qualifier of the inputs.
func (r *Reader) classOf(q *Query, inputs *arrow.Schema) (*features.Class, error) {
	name := q.Class
	if name == "" {
		for _, f := range inputs.Fields() {
			if c, _, ok := strings.Cut(f.Name, "."); ok {
				name = c
				break
			}
		}
	}
	if name == "" {
		return nil, invalid(`name the class ("class": "user") or qualify the input columns ("user.id")`)
	}
	c := r.graph.Class(name)
	if c == nil {
		e := statement.Errorf(statement.InvalidInput, expr.Pos{}, "native query: unknown feature class %q", name)
		e.Suggestion = suggest.Nearest(name, r.graph.ClassNames())
		return nil, e
	}
	return c, nil
}

// unqualified strips the class qualifier from a name (`user.full_name` on
// a user query is `full_name`), unless the class has a feature of that name.
func unqualified(c *features.Class, name string) string {
	for _, q := range []string{c.Table, c.Name} {
		if rest, ok := strings.CutPrefix(name, q+"."); ok && c.Feature(q) == nil {
			return rest
		}
	}
	return name
}

var (
	featurePath = regexp.MustCompile(`^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$`)
	// windowPath is the SQL surface's `review_count[7d]`, and the seeds'
	// `review_count["7d"]` and `User.review_count['7d']`.
	windowPath = regexp.MustCompile(`^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\[(?:(\w+)|"(\w+)"|'(\w+)')\]$`)
)

// output reads one requested output: a feature path, or an expression.
func (r *Reader) output(c *features.Class, i int, text string) (statement.Output, error) {
	src := strings.TrimSpace(text)
	if featurePath.MatchString(src) {
		return statement.Output{Expr: &expr.Ref{Path: strings.Split(unqualified(c, src), ".")}, Name: text}, nil
	}
	if m := windowPath.FindStringSubmatch(src); m != nil {
		src = fmt.Sprintf("_.%s[%q]", unqualified(c, m[1]), m[2]+m[3]+m[4])
	}
	x, err := r.exprs(c, src)
	if err != nil {
		kind := statement.InvalidInput
		if statement.KindOf(err) == statement.Unsupported {
			kind = statement.Unsupported
		}
		return statement.Output{}, statement.Errorf(kind, expr.Pos{}, "native query: outputs[%d] %q: %v", i, text, err)
	}
	name := text
	if a, ok := x.(*expr.Alias); ok {
		name = a.Name
	}
	return statement.Output{Expr: x, Name: name}, nil
}

// staleness reads the overrides: keys are `class.feature` (windows by their
// FQN) or "*"; values durations or "infinity".
func (r *Reader) staleness(in map[string]string) (map[string]time.Duration, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]time.Duration, len(in))
	for k, v := range in {
		if k != "*" {
			cname, fname, ok := strings.Cut(k, ".")
			c := r.graph.Class(cname)
			switch {
			case !ok:
				return nil, invalid(`staleness key %q: expected class.feature (user.full_name) or "*"`, k)
			case c == nil:
				return nil, invalid("staleness key %q: unknown feature class %q%s", k, cname, suggest.DidYouMean(cname, r.graph.ClassNames()))
			case c.Feature(fname) == nil:
				return nil, invalid("staleness key %q: %s has no feature %q%s", k, c.Table, fname, suggest.DidYouMean(fname, c.FeatureNames()))
			}
			k = c.Table + "." + c.Feature(fname).Name
		}
		st, err := features.ParseStaleness(v)
		if err != nil {
			return nil, invalid("staleness of %s: %v", k, err)
		}
		if st.Infinite {
			out[k] = -1
		} else {
			out[k] = st.Duration
		}
	}
	return out, nil
}
