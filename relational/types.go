package relational

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators/coerce"
)

// duckType is the type a feature column is handed to DuckDB in: string
// views as strings and dictionaries decoded (what DuckDB's Arrow scan
// reads everywhere), nested types likewise inside.
func duckType(dt arrow.DataType) arrow.DataType {
	switch t := dt.(type) {
	case *arrow.StringViewType:
		return arrow.BinaryTypes.String
	case *arrow.BinaryViewType:
		return arrow.BinaryTypes.Binary
	case *arrow.DictionaryType:
		return duckType(t.ValueType)
	case *arrow.ListType:
		f := t.ElemField()
		f.Type = duckType(f.Type)
		return arrow.ListOfField(f)
	case *arrow.StructType:
		fs := t.Fields()
		for i := range fs {
			fs[i].Type = duckType(fs[i].Type)
		}
		return arrow.StructOf(fs...)
	}
	return dt
}

func duckSchema(s *arrow.Schema) *arrow.Schema {
	fs := s.Fields()
	for i := range fs {
		fs[i].Type = duckType(fs[i].Type)
		fs[i].Nullable = true
	}
	return arrow.NewSchema(fs, nil)
}

// toDuck is rec in schema's types (duckSchema of its own). The caller
// releases both.
func toDuck(mem memory.Allocator, rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		out, err := coerce.Array(mem, c, schema.Field(i).Type)
		if err != nil {
			return nil, fmt.Errorf("relational: column %q: %w", schema.Field(i).Name, err)
		}
		cols[i] = out
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows()), nil
}
