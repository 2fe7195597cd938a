package coerce

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Plain is the type a column is handed to other software in (Flight SQL
// clients, BI drivers, DuckDB's Arrow scan): string and binary views as
// plain strings and binaries and dictionaries decoded, which every reader
// handles, nested types likewise inside. With utc, a naive timestamp
// becomes tz-aware UTC (a naive timestamp is a UTC instant in fletch).
func Plain(dt arrow.DataType, utc bool) arrow.DataType {
	switch t := dt.(type) {
	case *arrow.StringViewType:
		return arrow.BinaryTypes.String
	case *arrow.BinaryViewType:
		return arrow.BinaryTypes.Binary
	case *arrow.DictionaryType:
		return Plain(t.ValueType, utc)
	case *arrow.TimestampType:
		if utc && t.TimeZone == "" {
			return &arrow.TimestampType{Unit: t.Unit, TimeZone: "UTC"}
		}
	case *arrow.ListType:
		f := t.ElemField()
		f.Type = Plain(f.Type, utc)
		return arrow.ListOfField(f)
	case *arrow.StructType:
		fs := t.Fields()
		for i := range fs {
			fs[i].Type = Plain(fs[i].Type, utc)
		}
		return arrow.StructOf(fs...)
	}
	return dt
}

// Record converts rec's columns to schema's types (same number of
// columns), sharing the ones already right. It returns a new reference; the
// caller still releases rec.
func Record(mem memory.Allocator, rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	if int(rec.NumCols()) != schema.NumFields() {
		return nil, fmt.Errorf("%d columns for a schema of %d", rec.NumCols(), schema.NumFields())
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		want := schema.Field(i).Type
		switch {
		case arrow.TypeEqual(c.DataType(), want):
			c.Retain()
			cols[i] = c
		case c.DataType().ID() == arrow.TIMESTAMP && want.ID() == arrow.TIMESTAMP &&
			c.DataType().(*arrow.TimestampType).Unit == want.(*arrow.TimestampType).Unit:
			// Only the zone differs: same values, new type.
			d := array.NewSliceData(c.Data(), 0, int64(c.Len()))
			retagged := array.NewData(want, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
			cols[i] = array.MakeFromData(retagged)
			retagged.Release()
			d.Release()
		default:
			out, err := Array(mem, c, want)
			if err != nil {
				return nil, fmt.Errorf("column %q: %s does not convert to %s: %w", schema.Field(i).Name, c.DataType(), want, err)
			}
			cols[i] = out
		}
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows()), nil
}
