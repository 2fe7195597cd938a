package duckdb

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// targetType is the type a result column is answered in: the caller's
// schema type when it names the column, else the column's fletch type.
func targetType(name string, dt arrow.DataType, want *arrow.Schema) (arrow.DataType, error) {
	if want != nil {
		if idx := want.FieldIndices(name); len(idx) > 0 {
			return want.Field(idx[0]).Type, nil
		}
	}
	t, ok := coerce.Canonical(dt)
	if !ok {
		return nil, unsupportedType(name, dt.String())
	}
	return t, nil
}

func unsupportedType(column, typ string) error {
	return fmt.Errorf("column %q has type %s, which has no fletch feature type; cast it in the resolver's SQL or leave it out", column, typ)
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
		c, err := coerce.Array(mem, col, to)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", names[i], err)
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
