package planner

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
)

// Entity enumeration: the keys of a class's entities, listed by the SQL
// resolver that returns its primary key, so that a scan (`SELECT … FROM
// "user" LIMIT 100`) can compute their features with the lookup plan of
// those keys. Listing is the resolver's query wrapped as a subquery: keys
// in key order (so that pages follow each other: `key > last`), at or
// before the evaluation time for a class with an event time, filtered by
// the predicates on the resolver's own columns. Nothing of the caller's
// SQL text reaches the source: filters are values fletch quotes itself.

// Lister lists the entity keys of one class.
type Lister struct {
	engine   *Engine
	class    *features.Class
	resolver *features.SQLResolver
	keyCol   string
	keyType  arrow.DataType
	timeCol  string // the event time's column, "" when the class has none
}

// Lister returns the lister of class's entities (at: where the query
// names the class), or an error naming the
// input columns a query must give when the class cannot be listed (a key
// derived from other features, or no SQL resolver that returns the key).
func (e *Engine) Lister(class *features.Class, at expr.Pos) (*Lister, error) {
	primary, parts := statement.KeyColumns(class)
	if primary == nil {
		return nil, statement.Errorf(statement.InvalidInput, at, "table %s has no primary key, so its rows cannot be listed: name them in WHERE", class.Table)
	}
	if len(parts) > 0 {
		names := make([]string, len(parts))
		for i, p := range parts {
			names[i] = p.Name + " = <value>"
		}
		return nil, statement.Errorf(statement.InvalidInput, at, "the rows of %s cannot be listed: its key %s is derived from other features; name the rows in WHERE: %s", class.Table, primary.Name, strings.Join(names, " AND "))
	}
	pl := &planner{e: e}
	r := pl.resolverFor(primary)
	if r == nil {
		return nil, statement.Errorf(statement.InvalidInput, at, "the rows of %s cannot be listed: no SQL resolver returns %s; name the rows in WHERE: %s = <value> or %s IN (<values>)", class.Table, primary.Name, primary.Name, primary.Name)
	}
	for _, p := range r.Params {
		if !p.Now {
			return nil, statement.Errorf(statement.InvalidInput, at, "the rows of %s cannot be listed: its resolver %s reads ${%s}; name the rows in WHERE: %s = <value>", class.Table, r.Name, p.Text, primary.Name)
		}
	}
	l := &Lister{engine: e, class: class, resolver: r, keyCol: columnFor(r, primary), keyType: primary.Type.Arrow()}
	if et := class.EventTime; et != nil {
		l.timeCol = columnFor(r, et)
	}
	return l, nil
}

// KeyType is the Arrow type of the keys the lister answers.
func (l *Lister) KeyType() arrow.DataType { return l.keyType }

// Resolver is the name of the resolver that lists the keys.
func (l *Lister) Resolver() string { return l.resolver.Name }

// Pushable says whether f can go into the listing query: its feature is a
// column of the listing resolver, with no default (a default changes what
// the feature's value is where the column is null).
func (l *Lister) Pushable(f statement.Filter) bool {
	feat := l.class.Feature(f.Feature)
	if feat == nil || feat.Default != nil || feat.Kind != features.Scalar || columnFor(l.resolver, feat) == "" {
		return false
	}
	if _, ok := sqlOps[f.Op]; !ok {
		return false
	}
	for _, v := range f.Values {
		if _, ok := sqlLiteral(v); !ok || !literalFits(v, feat.Type.Arrow()) {
			return false
		}
	}
	return true
}

// literalFits says whether a literal compares with a column of type dt
// alike in every source: `id = 5` on a string column is an error in
// Postgres and a cast of every id in DuckDB, so it is not pushed (the SQL
// over the features decides what it means).
func literalFits(v any, dt arrow.DataType) bool {
	switch v.(type) {
	case int64:
		return dt.ID() == arrow.INT64 || dt.ID() == arrow.FLOAT64
	case float64:
		return dt.ID() == arrow.FLOAT64
	case string:
		return dt.ID() == arrow.STRING || dt.ID() == arrow.LARGE_STRING || dt.ID() == arrow.STRING_VIEW
	case bool:
		return dt.ID() == arrow.BOOL
	}
	return false
}

var sqlOps = map[string]string{"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN", "null": "IS NULL", "notnull": "IS NOT NULL"}

// ListOptions say which keys one call of List answers.
type ListOptions struct {
	// Now is the evaluation time: a class with an event time lists only
	// the rows at or before it.
	Now time.Time
	// After, when not nil, lists only keys greater than it (the last key
	// of the previous page): int64 or string, as KeyType.
	After any
	// Limit is the most keys answered (at least 1).
	Limit int64
	// Filters are pushable filters (Pushable), joined by AND.
	Filters []statement.Filter
}

// List answers the next keys in key order, at most opts.Limit of them;
// fewer means there are no more. A key may repeat (adjacent) where the
// resolver has several rows of an entity: Distinct drops the repeats. The
// caller releases the array.
func (l *Lister) List(ctx context.Context, opts ListOptions) (arrow.Array, error) {
	src, err := l.engine.sources.Source(l.resolver.Source)
	if err != nil {
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("resolver %s: %v", l.resolver.Name, err)}
	}
	req := stores.FetchRequest{Timeout: l.resolver.Timeout}
	for range l.resolver.Params { // only ${now}: checked by Lister
		req.Params = append(req.Params, stores.ParamValue{Time: opts.Now})
	}
	key := "_r." + stores.QuoteIdent(l.keyCol)
	conds := []string{key + " IS NOT NULL"}
	if l.timeCol != "" {
		req.Params = append(req.Params, stores.ParamValue{Time: opts.Now})
		conds = append(conds, "_r."+stores.QuoteIdent(l.timeCol)+" <= $"+strconv.Itoa(len(req.Params)))
	}
	if opts.After != nil {
		lit, ok := sqlLiteral(opts.After)
		if !ok {
			return nil, fmt.Errorf("planner: key %v of type %T cannot be listed after", opts.After, opts.After)
		}
		conds = append(conds, key+" > "+lit)
	}
	for _, f := range opts.Filters {
		c, err := l.condition(f)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	limit := max(opts.Limit, 1)
	req.SQL = stores.Restrict(l.resolver.Query, nil, strings.Join(conds, " AND "))
	// Restrict selected every column: keep the key alone. A top-N, not a
	// GROUP BY: keys are mostly unique, and aggregating every remaining
	// row made each page cost the whole table. Repeated keys are adjacent
	// once ordered; the caller drops them (Distinct).
	req.SQL = "SELECT " + stores.QuoteIdent(l.keyCol) + " FROM (\n" + req.SQL + "\n) AS _k ORDER BY 1 LIMIT " + strconv.FormatInt(limit, 10)
	req.Schema = arrow.NewSchema([]arrow.Field{{Name: l.keyCol, Type: l.keyType, Nullable: true}}, nil)
	rec, err := src.Fetch(ctx, l.engine.mem, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("listing %s with resolver %s (source %s): %v", l.class.Table, l.resolver.Name, l.resolver.Source, err)}
	}
	defer rec.Release()
	i := fieldIndex(rec, l.keyCol)
	if i < 0 || !arrow.TypeEqual(rec.Column(i).DataType(), l.keyType) {
		return nil, &statement.Error{Kind: statement.SourceFailure, Msg: fmt.Sprintf("listing %s: resolver %s did not return %q as %s", l.class.Table, l.resolver.Name, l.keyCol, l.keyType)}
	}
	col := rec.Column(i)
	col.Retain()
	return col, nil
}

// condition is f over the listing subquery's columns.
func (l *Lister) condition(f statement.Filter) (string, error) {
	if !l.Pushable(f) {
		return "", fmt.Errorf("planner: filter on %s cannot be pushed into %s", f.Feature, l.resolver.Name)
	}
	col := "_r." + stores.QuoteIdent(columnFor(l.resolver, l.class.Feature(f.Feature)))
	op := sqlOps[f.Op]
	switch f.Op {
	case "null", "notnull":
		return col + " " + op, nil
	case "in":
		if len(f.Values) == 0 {
			return "FALSE", nil
		}
		lits := make([]string, len(f.Values))
		for i, v := range f.Values {
			lits[i], _ = sqlLiteral(v)
		}
		return col + " IN (" + strings.Join(lits, ", ") + ")", nil
	}
	if len(f.Values) != 1 {
		return "", fmt.Errorf("planner: %s %s takes one value", f.Feature, f.Op)
	}
	lit, _ := sqlLiteral(f.Values[0])
	return col + " " + op + " " + lit, nil
}

// sqlLiteral is v as a SQL literal both Postgres and DuckDB read alike.
// Strings are quoted by the standard rule (quotes doubled; backslashes are
// plain characters in both, with Postgres' standard_conforming_strings).
func sqlLiteral(v any) (string, bool) {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false
		}
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return "", false
		}
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", true
	case bool:
		return strconv.FormatBool(v), true
	case time.Time:
		return "CAST('" + v.UTC().Format("2006-01-02 15:04:05.999999") + "+00' AS TIMESTAMPTZ)", true
	}
	return "", false
}

// Distinct is keys (ordered, as List answers them) without repeats: keys
// itself, retained, when it has none. The caller releases it.
func Distinct(mem memory.Allocator, keys arrow.Array) (arrow.Array, error) {
	keep := make([]int32, 0, keys.Len())
	for i := 0; i < keys.Len(); i++ {
		if i == 0 || KeyAt(keys, i) != KeyAt(keys, i-1) {
			keep = append(keep, int32(i))
		}
	}
	if len(keep) == keys.Len() {
		keys.Retain()
		return keys, nil
	}
	return operators.Gather(mem, keys, keep)
}

// KeyAt is the key at row i of keys (as List answers them), for After.
func KeyAt(keys arrow.Array, i int) any {
	switch k := keys.(type) {
	case *array.Int64:
		return k.Value(i)
	case *array.String:
		return k.Value(i)
	case *array.LargeString:
		return k.Value(i)
	case *array.StringView:
		return k.Value(i)
	}
	return nil
}
