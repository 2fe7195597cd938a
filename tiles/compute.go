package tiles

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/stores"
)

// Dialect is the SQL a source speaks.
type Dialect int

const (
	DuckDB Dialect = iota
	Postgres
)

// DialectOf returns the dialect of a source fletch opened; a source that
// wraps another (metrics, tests) says so with `Unwrap() stores.Source`.
func DialectOf(src stores.Source) (Dialect, error) {
	for {
		w, ok := src.(interface{ Unwrap() stores.Source })
		if !ok {
			break
		}
		src = w.Unwrap()
	}
	if d, ok := src.(interface{ SQLDialect() string }); ok {
		switch d.SQLDialect() {
		case "duckdb":
			return DuckDB, nil
		case "postgres":
			return Postgres, nil
		}
	}
	return 0, fmt.Errorf("tiles are computed in DuckDB or Postgres SQL, and this source speaks neither")
}

// epochUS is the SQL of a timestamp column in µs since the epoch, exactly.
func (d Dialect) epochUS(col string) string {
	if d == DuckDB {
		return "epoch_us(" + col + ")"
	}
	return "CAST(EXTRACT(EPOCH FROM " + col + ") * 1000000 AS BIGINT)"
}

func (d Dialect) double() string {
	if d == DuckDB {
		return "DOUBLE"
	}
	return "DOUBLE PRECISION"
}

// Bucket is the start of the bucket of duration d holding t (µs since the
// epoch): buckets are aligned to the epoch, [s, s + d).
func Bucket(t int64, d time.Duration) int64 {
	du := d.Microseconds()
	return t - ((t%du)+du)%du
}

// Range is a half-open interval of µs since the epoch.
type Range struct{ Lo, Hi int64 }

// Fields are the columns of s's tiles: key, bucket_start, the states,
// and the events each tile summarizes.
func (s *Spec) Fields() []arrow.Field {
	f := []arrow.Field{
		{Name: "key", Type: s.KeyType, Nullable: true},
		{Name: "bucket_start", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}
	f = append(f, s.States...)
	return append(f, arrow.Field{Name: "events", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
}

// distinctValues says whether the source answers the distinct values per
// tile rather than states (approx_count_distinct: sketches are built here).
func (s *Spec) distinctValues() bool { return s.Fn == "approx_count_distinct" }

// query is the SQL computing s's tiles of duration d for the events in r:
// the bucketing and the aggregation pushed down to the source.
func (s *Spec) query(dl Dialect, d time.Duration, r Range) string {
	du := strconv.FormatInt(d.Microseconds(), 10)
	us := dl.epochUS("_r." + quote(s.Time))
	cols := []string{"_r." + quote(s.Key) + " AS key", "(" + us + " - (((" + us + " % " + du + ") + " + du + ") % " + du + ")) AS bucket_start"}
	if s.Value != "" {
		cols = append(cols, s.Value+" AS v")
	}
	if s.SortBy != "" {
		cols = append(cols, s.SortBy+" AS k")
	}
	conds := []string{"_r." + quote(s.Key) + " IS NOT NULL", "_r." + quote(s.Time) + " IS NOT NULL",
		us + " >= " + strconv.FormatInt(r.Lo, 10), us + " < " + strconv.FormatInt(r.Hi, 10)}
	if s.Where != "" {
		conds = append(conds, s.Where)
	}
	inner := "SELECT " + strings.Join(cols, ", ") + " FROM (\n" + stores.TrimStatement(s.Resolver.Query) + "\n) AS _r WHERE " + strings.Join(conds, " AND ")
	if s.distinctValues() {
		return "SELECT key, bucket_start, v, count(*) AS events FROM (" + inner + ") AS _t GROUP BY key, bucket_start, v"
	}
	return "SELECT key, bucket_start, " + strings.Join(s.stateSQL(dl), ", ") + ", count(*) AS events FROM (" + inner + ") AS _t GROUP BY key, bucket_start"
}

// stateSQL is the SQL of each state column over the rows `v` (and `k`).
func (s *Spec) stateSQL(dl Dialect) []string {
	dbl := dl.double()
	switch s.Fn {
	case "count":
		if s.Value == "" {
			return []string{"count(*) AS n"}
		}
		return []string{"count(v) AS n"}
	case "sum":
		t := dbl
		if s.ValueType.ID() == arrow.INT64 {
			t = "BIGINT"
		}
		return []string{"CAST(coalesce(sum(v), 0) AS " + t + ") AS sum"}
	case "mean":
		return []string{"count(v) AS n", "CAST(coalesce(sum(CAST(v AS " + dbl + ")), 0) AS " + dbl + ") AS sum"}
	case "var", "std":
		return []string{"count(v) AS n", "coalesce(avg(CAST(v AS " + dbl + ")), 0) AS mean",
			"coalesce(var_pop(CAST(v AS " + dbl + ")), 0) * count(v) AS m2"}
	case "min", "max":
		return []string{s.Fn + "(v) AS v"}
	case "max_by", "min_by":
		both := " FILTER (WHERE v IS NOT NULL AND k IS NOT NULL)"
		ext, dir := "max", "DESC"
		if s.Fn == "min_by" {
			ext, dir = "min", "ASC"
		}
		if dl == DuckDB {
			return []string{"arg_" + ext + "(v, k)" + both + " AS v", ext + "(k)" + both + " AS k"}
		}
		return []string{"(array_agg(v ORDER BY k " + dir + ")" + both + ")[1] AS v", ext + "(k)" + both + " AS k"}
	case "any":
		return []string{"coalesce(bool_or(v), false) AS b"}
	case "all":
		return []string{"coalesce(bool_and(v), true) AS b"}
	}
	return nil
}

// Compute computes s's tiles of duration d for the events in r at src
// (only those of keys when keys is not nil): one record of Fields, one
// row per (key, bucket) with events.
func (s *Spec) Compute(ctx context.Context, mem memory.Allocator, src stores.Source, d time.Duration, r Range, keys arrow.Array) (arrow.RecordBatch, error) {
	dl, err := DialectOf(src)
	if err != nil {
		return nil, err
	}
	req := stores.FetchRequest{SQL: s.query(dl, d, r), Timeout: s.Resolver.Timeout}
	for range s.Resolver.Params { // ${now} only (SpecFor): the end of the range
		req.Params = append(req.Params, stores.ParamValue{Time: time.UnixMicro(r.Hi).UTC()})
	}
	if keys != nil {
		req.KeyColumn, req.Keys = "key", keys
	}
	if !s.distinctValues() {
		req.Schema = arrow.NewSchema(s.Fields(), nil)
		rec, err := src.Fetch(ctx, mem, req)
		if err != nil {
			return nil, fmt.Errorf("resolver %s: %w", s.Resolver.Name, err)
		}
		return rec, nil
	}
	req.Schema = arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: s.KeyType, Nullable: true},
		{Name: "bucket_start", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "v", Type: s.ValueType, Nullable: true},
		{Name: "events", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	rec, err := src.Fetch(ctx, mem, req)
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", s.Resolver.Name, err)
	}
	defer rec.Release()
	return s.sketch(mem, rec)
}

// sketch turns the distinct (key, bucket, value) rows of rec into tiles of
// sketches.
func (s *Spec) sketch(mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	buckets := rec.Column(1).(*array.Int64).Int64Values()
	firsts, pos, err := operators.Distinct(rec.Column(0), buckets)
	if err != nil {
		return nil, err
	}
	states, err := aggregate.Partial(mem, s.Fn, rec.Column(2), nil, pos, len(firsts))
	if err != nil {
		return nil, err
	}
	events := make([]int64, len(firsts))
	ev := rec.Column(3).(*array.Int64).Int64Values()
	for i, g := range pos {
		events[g] += ev[i]
	}
	key, err := operators.Gather(mem, rec.Column(0), firsts)
	if err != nil {
		release(states)
		return nil, err
	}
	bucket, err := operators.Gather(mem, rec.Column(1), firsts)
	if err != nil {
		key.Release()
		release(states)
		return nil, err
	}
	eb := array.NewInt64Builder(mem)
	defer eb.Release()
	eb.AppendValues(events, nil)
	cols := append(append([]arrow.Array{key, bucket}, states...), eb.NewArray())
	defer release(cols)
	return array.NewRecordBatch(arrow.NewSchema(s.Fields(), nil), cols, int64(len(firsts))), nil
}

func release(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

// rawFields are the columns of Raw's answer.
func (s *Spec) rawFields() []arrow.Field {
	fields := []arrow.Field{{Name: "key", Type: s.KeyType, Nullable: true}, {Name: "us", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	if s.Value != "" {
		fields = append(fields, arrow.Field{Name: "v", Type: s.ValueType, Nullable: true})
	}
	if s.SortBy != "" {
		fields = append(fields, arrow.Field{Name: "k", Type: s.SortType, Nullable: true})
	}
	return fields
}

// Raw returns the events of s at src in r (of keys when keys is not nil)
// that pass its filters, one row each: key, us (the event time, µs since
// the epoch), and v and k when s has a value and a sort key. Aligned
// windows add the raw events of each row's open bucket to its tiles.
func (s *Spec) Raw(ctx context.Context, mem memory.Allocator, src stores.Source, r Range, keys arrow.Array) (arrow.RecordBatch, error) {
	dl, err := DialectOf(src)
	if err != nil {
		return nil, err
	}
	us := dl.epochUS("_r." + quote(s.Time))
	cols := []string{"_r." + quote(s.Key) + " AS key", us + " AS us"}
	if s.Value != "" {
		cols = append(cols, s.Value+" AS v")
	}
	if s.SortBy != "" {
		cols = append(cols, s.SortBy+" AS k")
	}
	fields := s.rawFields()
	conds := []string{"_r." + quote(s.Key) + " IS NOT NULL", "_r." + quote(s.Time) + " IS NOT NULL",
		us + " >= " + strconv.FormatInt(r.Lo, 10), us + " < " + strconv.FormatInt(r.Hi, 10)}
	if s.Where != "" {
		conds = append(conds, s.Where)
	}
	req := stores.FetchRequest{SQL: "SELECT " + strings.Join(cols, ", ") + " FROM (\n" + stores.TrimStatement(s.Resolver.Query) + "\n) AS _r WHERE " + strings.Join(conds, " AND "),
		Schema: arrow.NewSchema(fields, nil), Timeout: s.Resolver.Timeout}
	for range s.Resolver.Params {
		req.Params = append(req.Params, stores.ParamValue{Time: time.UnixMicro(r.Hi).UTC()})
	}
	if keys != nil {
		req.KeyColumn, req.Keys = "key", keys
	}
	rec, err := src.Fetch(ctx, mem, req)
	if err != nil {
		return nil, fmt.Errorf("resolver %s: %w", s.Resolver.Name, err)
	}
	return rec, nil
}

// RawColumns are where RawAll answers one spec's columns: -1 for none.
type RawColumns struct{ Value, SortBy, Where int }

// RawAll is Raw for several specs over the same resolver, key and time
// (the windowed features of one relation) in one query: key, us, then each
// distinct value, sort key and filter of the specs (a filter as a boolean,
// null counting as false), with where each spec's are. Online serving reads
// the raw events after the tiles of all of a relation's tile tables so, in
// one round trip, as the exact path reads the relation's rows.
func RawAll(ctx context.Context, mem memory.Allocator, src stores.Source, specs []*Spec, r Range, keys arrow.Array) (arrow.RecordBatch, []RawColumns, error) {
	s := specs[0]
	dl, err := DialectOf(src)
	if err != nil {
		return nil, nil, err
	}
	us := dl.epochUS("_r." + quote(s.Time))
	cols := []string{"_r." + quote(s.Key) + " AS key", us + " AS us"}
	fields := []arrow.Field{{Name: "key", Type: s.KeyType, Nullable: true}, {Name: "us", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	seen := map[string]int{}
	add := func(sql string, t arrow.DataType) int {
		if sql == "" {
			return -1
		}
		id := sql + "\x00" + t.String()
		if i, ok := seen[id]; ok {
			return i
		}
		i := len(cols)
		seen[id] = i
		name := "c" + strconv.Itoa(i)
		cols = append(cols, sql+" AS "+name)
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: true})
		return i
	}
	out := make([]RawColumns, len(specs))
	for i, sp := range specs {
		out[i].Value = add(sp.Value, sp.ValueType)
		out[i].SortBy = add(sp.SortBy, sp.SortType)
		where := ""
		if sp.Where != "" {
			where = "coalesce(" + sp.Where + ", false)"
		}
		out[i].Where = add(where, arrow.FixedWidthTypes.Boolean)
	}
	conds := []string{"_r." + quote(s.Key) + " IS NOT NULL", "_r." + quote(s.Time) + " IS NOT NULL",
		us + " >= " + strconv.FormatInt(r.Lo, 10), us + " < " + strconv.FormatInt(r.Hi, 10)}
	req := stores.FetchRequest{SQL: "SELECT " + strings.Join(cols, ", ") + " FROM (\n" + stores.TrimStatement(s.Resolver.Query) + "\n) AS _r WHERE " + strings.Join(conds, " AND "),
		Schema: arrow.NewSchema(fields, nil), Timeout: s.Resolver.Timeout}
	for range s.Resolver.Params {
		req.Params = append(req.Params, stores.ParamValue{Time: time.UnixMicro(r.Hi).UTC()})
	}
	if keys != nil {
		req.KeyColumn, req.Keys = "key", keys
	}
	rec, err := src.Fetch(ctx, mem, req)
	if err != nil {
		return nil, nil, fmt.Errorf("resolver %s: %w", s.Resolver.Name, err)
	}
	return rec, out, nil
}

// SharesRaw reports whether RawAll may read s and o together.
func (s *Spec) SharesRaw(o *Spec) bool {
	return s.Resolver == o.Resolver && s.Key == o.Key && s.Time == o.Time && arrow.TypeEqual(s.KeyType, o.KeyType)
}
