package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// queryPrepared runs query as a statement prepared once and kept in
// s.stmts, and scans its rows into Arrow builders: the path of lookups of
// a few keys in either build. DuckDB parses, binds and plans a query on
// every execution otherwise, and its Arrow interface takes no prepared
// statement; for one row of 334 columns the two together cost ~40 % more
// CPU than this (BenchmarkSplit1000 in examples/wide, docs/BENCHMARKS.md).
func (s *Source) queryPrepared(ctx context.Context, mem memory.Allocator, query string, args []any, want *arrow.Schema) (arrow.RecordBatch, error) {
	stmt, release, err := s.stmts.get(ctx, s.db, query)
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanRows(mem, rows, want)
}

// scanRows scans each value of rows straight into the Arrow builder of its
// column.
func scanRows(mem memory.Allocator, rows *sql.Rows, want *arrow.Schema) (arrow.RecordBatch, error) {
	colTypes, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(colTypes))
	builders := make([]array.Builder, 0, len(colTypes))
	defer func() {
		for _, b := range builders {
			b.Release()
		}
	}()
	targets := make([]any, len(colTypes))
	for i, ct := range colTypes {
		names[i] = ct.Name()
		natural := arrowTypeOf(ct.DatabaseTypeName())
		if natural == nil {
			return nil, unsupportedType(names[i], ct.DatabaseTypeName())
		}
		dt, ok := coerce.Canonical(natural)
		if !ok {
			return nil, unsupportedType(names[i], ct.DatabaseTypeName())
		}
		b := array.NewBuilder(mem, dt)
		builders = append(builders, b)
		targets[i] = builderScanner{b}
	}
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cols := make([]arrow.Array, 0, len(builders))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, b := range builders {
		cols = append(cols, b.NewArray())
	}
	return normalize(mem, names, cols, want)
}

// arrowTypeOf is the Arrow type DuckDB's Arrow interface answers for a
// column of the named DuckDB type (nil when fletch has none), so both
// paths share coerce.Canonical's rules.
func arrowTypeOf(duckType string) arrow.DataType {
	if elem, ok := strings.CutSuffix(duckType, "[]"); ok {
		if e := arrowTypeOf(elem); e != nil {
			return arrow.ListOf(e)
		}
		return nil
	}
	if args, ok := strings.CutPrefix(duckType, "DECIMAL("); ok {
		var p, s int32
		if _, err := fmt.Sscanf(args, "%d,%d)", &p, &s); err != nil {
			return nil
		}
		return &arrow.Decimal128Type{Precision: p, Scale: s}
	}
	switch duckType {
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "UTINYINT":
		return arrow.PrimitiveTypes.Uint8
	case "USMALLINT":
		return arrow.PrimitiveTypes.Uint16
	case "UINTEGER":
		return arrow.PrimitiveTypes.Uint32
	case "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case "HUGEINT", "UHUGEINT":
		return &arrow.Decimal128Type{Precision: 38, Scale: 0}
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "VARCHAR":
		return arrow.BinaryTypes.String
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "NULL", `"NULL"`:
		return arrow.Null
	}
	return nil
}

// builderScanner is a sql.Scanner that appends the scanned value to its
// column's builder: typed, and no intermediate row.
type builderScanner struct{ b array.Builder }

func (s builderScanner) Scan(v any) error { return appendValue(s.b, v) }

func appendValue(b array.Builder, v any) error {
	if v == nil {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		if n, ok := asInt64(v); ok {
			b.Append(n)
			return nil
		}
	case *array.Float64Builder:
		if f, ok := asFloat64(v); ok {
			b.Append(f)
			return nil
		}
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			b.Append(s)
			return nil
		}
	case *array.BooleanBuilder:
		if x, ok := v.(bool); ok {
			b.Append(x)
			return nil
		}
	case *array.TimestampBuilder:
		if t, ok := v.(time.Time); ok {
			b.Append(arrow.Timestamp(t.UnixMicro()))
			return nil
		}
	case *array.Date32Builder:
		if t, ok := v.(time.Time); ok {
			b.Append(arrow.Date32FromTime(t))
			return nil
		}
	case *array.ListBuilder:
		if xs, ok := v.([]any); ok {
			b.Append(true)
			for _, x := range xs {
				if err := appendValue(b.ValueBuilder(), x); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return fmt.Errorf("cannot store a %T in a %s column", v, b.Type())
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case *big.Int:
		return x.Int64(), x.IsInt64()
	case duckdb.Decimal:
		return x.Value.Int64(), x.Scale == 0 && x.Value.IsInt64()
	}
	return 0, false
}

func asFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case duckdb.Decimal:
		return x.Float64(), true
	}
	return 0, false
}
