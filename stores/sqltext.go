package stores

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TrimStatement drops what may end a resolver file but is not allowed
// inside a subquery, where sources put the resolver's query to push keys
// into it: the statement's semicolon, and whole-line comments after it.
func TrimStatement(sql string) string {
	for {
		sql = strings.TrimRight(sql, "; \t\r\n")
		i := strings.LastIndexByte(sql, '\n')
		if !strings.HasPrefix(strings.TrimSpace(sql[i+1:]), "--") {
			return sql
		}
		sql = sql[:i+1]
	}
}

// Restrict wraps a resolver's query as a subquery aliased _r and keeps the
// rows where cond holds (cond names the subquery's columns as _r."col").
// With a schema it selects only the schema's columns, so that a source
// reads no column the plan does not use (a review's body, say) from a
// columnar table; without one, every column.
func Restrict(sql string, schema *arrow.Schema, cond string) string {
	cols := "*"
	if schema != nil && schema.NumFields() > 0 {
		names := make([]string, schema.NumFields())
		for i, f := range schema.Fields() {
			names[i] = "_r." + QuoteIdent(f.Name)
		}
		cols = strings.Join(names, ", ")
	}
	// The newline before ")" ends a trailing "-- comment" in the resolver.
	return "SELECT " + cols + " FROM (\n" + TrimStatement(sql) + "\n) AS _r WHERE " + cond
}

// QuoteIdent quotes a column name for SQL (DuckDB and Postgres alike).
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// GoSlice turns an Arrow array into the Go slice database drivers bind as
// one list or array parameter ([]int64, []float64, []string, []bool or
// []time.Time). Nulls are left out: they never equal anything in IN or ANY.
func GoSlice(a arrow.Array) (any, error) {
	switch a := a.(type) {
	case *array.Int64:
		return collect(a, a.Value), nil
	case *array.Int32:
		return collect(a, func(i int) int64 { return int64(a.Value(i)) }), nil
	case *array.Float64:
		return collect(a, a.Value), nil
	case *array.String:
		return collect(a, a.Value), nil
	case *array.LargeString:
		return collect(a, a.Value), nil
	case *array.StringView:
		return collect(a, a.Value), nil
	case *array.Boolean:
		return collect(a, a.Value), nil
	case *array.Timestamp:
		toTime, err := a.DataType().(*arrow.TimestampType).GetToTimeFunc()
		if err != nil {
			return nil, err
		}
		return collect(a, func(i int) time.Time { return toTime(a.Value(i)) }), nil
	case *array.Date32:
		return collect(a, func(i int) time.Time { return a.Value(i).ToTime() }), nil
	}
	return nil, fmt.Errorf("cannot bind values of type %s (want int64, float64, utf8, bool, timestamp or date32)", a.DataType())
}

func collect[T any](a arrow.Array, value func(int) T) []T {
	out := make([]T, 0, a.Len()-a.NullN())
	for i := range a.Len() {
		if a.IsValid(i) {
			out = append(out, value(i))
		}
	}
	return out
}

// ParamArgs are the driver arguments of a resolver's parameters, in order:
// a time for ${now}, a Go slice (GoSlice) for ${class.feature}. The error
// names the parameter ($1 first).
func ParamArgs(params []ParamValue) ([]any, error) {
	args := make([]any, 0, len(params)+1)
	for i, p := range params {
		if p.Values == nil {
			args = append(args, p.Time)
			continue
		}
		v, err := GoSlice(p.Values)
		if err != nil {
			return nil, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		args = append(args, v)
	}
	return args, nil
}
