package duckdb

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators"
)

// fletchType is the fletch type (DESIGN §4) of a column DuckDB answers as
// dt. DECIMAL(p, 0) is an integer: it is also how DuckDB's Arrow interface
// answers HUGEINT, the type of sum() over integers.
func fletchType(dt arrow.DataType) (arrow.DataType, bool) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return arrow.PrimitiveTypes.Int64, true
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return arrow.PrimitiveTypes.Float64, true
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		if dt.(arrow.DecimalType).GetScale() == 0 {
			return arrow.PrimitiveTypes.Int64, true
		}
		return arrow.PrimitiveTypes.Float64, true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return arrow.BinaryTypes.String, true
	case arrow.BOOL:
		return arrow.FixedWidthTypes.Boolean, true
	case arrow.TIMESTAMP:
		return features.TimestampType, true
	case arrow.DATE32, arrow.DATE64:
		return arrow.FixedWidthTypes.Date32, true
	case arrow.NULL:
		return arrow.Null, true
	case arrow.LIST, arrow.LARGE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW, arrow.FIXED_SIZE_LIST:
		elem, ok := fletchType(dt.(arrow.ListLikeType).Elem())
		if !ok {
			return nil, false
		}
		return arrow.ListOf(elem), true
	}
	return nil, false
}

// targetType is the type a result column is answered in: the caller's
// schema type when it names the column, else the column's fletch type.
func targetType(name string, dt arrow.DataType, want *arrow.Schema) (arrow.DataType, error) {
	if want != nil {
		if idx := want.FieldIndices(name); len(idx) > 0 {
			return want.Field(idx[0]).Type, nil
		}
	}
	t, ok := fletchType(dt)
	if !ok {
		return nil, unsupportedType(name, dt.String())
	}
	return t, nil
}

func unsupportedType(column, typ string) error {
	return fmt.Errorf("column %q has type %s, which has no fletch feature type; cast it in the resolver's SQL or leave it out", column, typ)
}

// castColumn returns arr as type to (arr itself, retained, when it already
// is). Lists are cast element-wise here rather than by compute.CastArray,
// whose list and to-string kernels leak buffers in arrow-go v18.8.
func castColumn(mem memory.Allocator, name string, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), to) {
		arr.Retain()
		return arr, nil
	}
	if to.ID() == arrow.LIST {
		return castList(mem, name, arr, to.(*arrow.ListType))
	}
	if to.ID() == arrow.STRING && !isString(arr.DataType()) {
		return intsToString(mem, name, arr)
	}
	out, err := compute.CastArray(compute.WithAllocator(context.Background(), mem), arr, compute.SafeCastOptions(to))
	if err != nil {
		return nil, fmt.Errorf("column %q: cannot convert %s to %s: %w", name, arr.DataType(), to, err)
	}
	return out, nil
}

func isString(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	}
	return false
}

// castList casts a list's values and keeps its offsets and validity.
func castList(mem memory.Allocator, name string, arr arrow.Array, to *arrow.ListType) (arrow.Array, error) {
	list, ok := arr.(*array.List)
	if !ok {
		return nil, fmt.Errorf("column %q: cannot convert %s to %s", name, arr.DataType(), to)
	}
	values, err := castColumn(mem, name, list.ListValues(), to.Elem())
	if err != nil {
		return nil, err
	}
	defer values.Release()
	src := list.Data()
	data := array.NewData(to, src.Len(), src.Buffers(), []arrow.ArrayData{values.Data()}, src.NullN(), src.Offset())
	defer data.Release()
	return array.MakeFromData(data), nil
}

// intsToString answers integer keys stored as numbers for a feature that
// is a string (`id: str` over a BIGINT column).
func intsToString(mem memory.Allocator, name string, arr arrow.Array) (arrow.Array, error) {
	switch arr.DataType().ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
	default:
		return nil, fmt.Errorf("column %q: cannot convert %s to a string; cast it in the resolver's SQL", name, arr.DataType())
	}
	ints, err := castColumn(mem, name, arr, arrow.PrimitiveTypes.Int64)
	if err != nil {
		return nil, err
	}
	defer ints.Release()
	return operators.DecimalText(mem, ints.(*array.Int64)), nil
}

// normalize assembles columns (each already one contiguous array, owned by
// the caller) into a record of the target types.
func normalize(mem memory.Allocator, names []string, cols []arrow.Array, want *arrow.Schema) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, len(cols))
	out := make([]arrow.Array, 0, len(cols))
	defer func() {
		for _, c := range out {
			c.Release()
		}
	}()
	for i, col := range cols {
		to, err := targetType(names[i], col.DataType(), want)
		if err != nil {
			return nil, err
		}
		c, err := castColumn(mem, names[i], col, to)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		fields[i] = arrow.Field{Name: names[i], Type: to, Nullable: true}
	}
	rows := int64(0)
	if len(out) > 0 {
		rows = int64(out[0].Len())
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), out, rows), nil
}
